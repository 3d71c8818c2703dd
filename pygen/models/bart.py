"""BART: transformers' ``modeling_bart`` on pygen's fused attention and preallocated KV cache.

Class names, parameter names, forward arguments and outputs follow transformers, so state
dicts load in both directions and code written against transformers runs unchanged.

Attention always goes through :func:`pygen.ops.attention` on ``[batch, len, heads, head_dim]``
views of the projections. The fused kernel does not return probabilities, so
``output_attentions=True`` switches to an explicit softmax with the same result (the probabilities
are transformers' eager attention's, except that a query which sees no key gets 0 everywhere, as
its output does in the default path and in transformers' default sdpa attention).
"""
from __future__ import annotations

import math
from typing import Any, Optional, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..cache import KVCache
from ..activations import get_activation
from ..configuration_utils import PretrainedConfig, check_sizes, register_config
from ..errors import ConfigError, InputError
from ..generation.mixin import GenerationMixin
from ..generation.protocol import StepOutputs
from ..modeling_outputs import (BaseModelOutput, BaseModelOutputWithPastAndCrossAttentions,
                                CausalLMOutputWithCrossAttentions, Seq2SeqLMOutput, Seq2SeqModelOutput,
                                Seq2SeqQuestionAnsweringModelOutput, Seq2SeqSequenceClassifierOutput)
from ..modeling_utils import PreTrainedModel
from ..ops import Linear, attention
from ._checks import check_device, check_embeds, check_ids, check_labels, check_mask, check_tensor
from ._unpadded import TokenRows

# ---------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------


@register_config
class BartConfig(PretrainedConfig):
    """BART hyper-parameters; defaults are those of ``facebook/bart-large`` (as transformers)."""

    model_type = "bart"
    attribute_map = {
        "num_attention_heads": "encoder_attention_heads",
        "hidden_size": "d_model",
        "num_hidden_layers": "encoder_layers",
    }
    defaults = {
        "vocab_size": 50265,
        "max_position_embeddings": 1024,
        "encoder_layers": 12,
        "encoder_ffn_dim": 4096,
        "encoder_attention_heads": 16,
        "decoder_layers": 12,
        "decoder_ffn_dim": 4096,
        "decoder_attention_heads": 16,
        "encoder_layerdrop": 0.0,
        "decoder_layerdrop": 0.0,
        "activation_function": "gelu",
        "d_model": 1024,
        "dropout": 0.1,
        "attention_dropout": 0.0,
        "activation_dropout": 0.0,
        "init_std": 0.02,
        "classifier_dropout": 0.0,
        "scale_embedding": False,
        "use_cache": True,
        "pad_token_id": 1,
        "bos_token_id": 0,
        "is_encoder_decoder": True,
        "decoder_start_token_id": 2,
        "is_decoder": False,
        "tie_word_embeddings": True,
    }

    def __init__(self, **kwargs: Any):
        # These may be an int or a list of ints, so they stay out of the type-checked defaults.
        kwargs.setdefault("eos_token_id", 2)
        kwargs.setdefault("forced_eos_token_id", 2)
        # BART's classification head has 3 labels unless a label map says otherwise; given both,
        # num_labels wins (as in transformers 5).
        if kwargs.get("id2label") is None:
            kwargs.setdefault("num_labels", 3)
        super().__init__(**kwargs)

    def _validate(self) -> None:
        # Divisibility of d_model by the head counts is checked when a model is built (the config
        # may still be edited before that, as in transformers).
        check_sizes(self, positive=("vocab_size", "d_model", "encoder_attention_heads", "decoder_attention_heads",
                                    "max_position_embeddings"),
                    non_negative=("encoder_layers", "decoder_layers", "encoder_ffn_dim", "decoder_ffn_dim"))
        for key in ("eos_token_id", "forced_eos_token_id"):
            value = getattr(self, key)
            ids = value if isinstance(value, list) else [value]
            if value is not None and not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
                raise ConfigError(f"BartConfig.{key} must be an int or a list of ints, got {value!r}")


# ---------------------------------------------------------------------------------------------
# Input checks: bad input fails here with a message naming the argument, never in a kernel.
# ---------------------------------------------------------------------------------------------


_check_tensor = check_tensor
_check_device = check_device


def _check_ids(name: str, ids: Any, vocab_size: int, device: torch.device) -> tuple[int, int]:
    """Validate a ``[batch, length]`` tensor of token ids; return its shape."""
    return check_ids(name, ids, vocab_size, device)


def _check_embeds(name: str, embeds: Any, d_model: int, device: torch.device,
                  dtype: Optional[torch.dtype] = None) -> tuple[int, int]:
    """Validate ``[batch, length, d_model]`` input embeddings; return ``(batch, length)``."""
    return check_embeds(name, embeds, d_model, device, dtype)


_check_mask = check_mask


def _check_positions(name: str, end: int, max_positions: int, past: int = 0) -> None:
    if end > max_positions:
        what = f"{end} positions" if not past else f"{end} positions ({past} cached + {end - past} new)"
        raise InputError(f"{name} reaches {what}, beyond max_position_embeddings={max_positions}")


def _check_same_shape(name: str, value: Tensor, shape: torch.Size) -> None:
    if value.shape != shape:
        raise InputError(f"{name} must have shape {list(shape)} (one per logit row), got {list(value.shape)}")


def shift_tokens_right(input_ids: Tensor, pad_token_id: Optional[int], decoder_start_token_id: Optional[int]) -> Tensor:
    """Decoder inputs from targets: prepend the start token, drop the last, and turn -100 into padding."""
    if pad_token_id is None or decoder_start_token_id is None:
        raise ConfigError("config.pad_token_id and config.decoder_start_token_id must be set to derive "
                          "decoder_input_ids from input_ids or labels")
    shifted = input_ids.new_empty(input_ids.shape)
    shifted[:, 1:] = input_ids[:, :-1]
    shifted[:, 0] = decoder_start_token_id
    return shifted.masked_fill_(shifted == -100, pad_token_id)


def _output_flags(config: BartConfig, output_attentions: Optional[bool], output_hidden_states: Optional[bool],
                  return_dict: Optional[bool]) -> tuple[bool, bool, bool]:
    """Explicit arguments win over the config's defaults."""
    return (config.output_attentions if output_attentions is None else output_attentions,
            config.output_hidden_states if output_hidden_states is None else output_hidden_states,
            config.return_dict if return_dict is None else return_dict)


# ---------------------------------------------------------------------------------------------
# Building blocks
# ---------------------------------------------------------------------------------------------


class BartLearnedPositionalEmbedding(nn.Embedding):
    """Learned absolute positions. fairseq kept the first two rows for padding, so position
    ``p`` reads row ``p + 2`` (``num_embeddings`` is ``max_position_embeddings + 2``)."""

    def __init__(self, num_embeddings: int, embedding_dim: int):
        super().__init__(num_embeddings + 2, embedding_dim)
        self.offset = 2

    def forward(self, seq_len: int, past_key_values_length: int = 0) -> Tensor:
        """Positions ``[past, past + seq_len)`` as ``[seq_len, dim]`` (a slice, broadcast over the batch)."""
        start = past_key_values_length + self.offset
        return self.weight[start:start + seq_len]


class BartScaledWordEmbedding(nn.Embedding):
    """Token embedding multiplied by ``embed_scale`` (``sqrt(d_model)`` when ``scale_embedding``)."""

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: Optional[int],
                 embed_scale: float = 1.0):
        super().__init__(num_embeddings, embedding_dim, padding_idx)
        self.embed_scale = embed_scale

    def forward(self, input_ids: Tensor) -> Tensor:
        return super().forward(input_ids) * self.embed_scale


def _eager_attention(q: Tensor, k: Tensor, v: Tensor, key_padding_mask: Optional[Tensor], causal: bool,
                     scale: float, kv_group: int, dropout_p: float) -> tuple[Tensor, Tensor]:
    """Attention output and probabilities ``[batch, heads, q_len, kv_len]`` by an explicit softmax
    (the probabilities are taken after dropout, as transformers' eager attention returns them).

    The output is the default path's (:func:`pygen.ops.attention`, like transformers' default
    sdpa attention), so ``output_attentions`` never changes the logits: a query that sees no key
    gets output 0 and probabilities 0 (transformers' eager attention would spread it evenly over
    all keys instead; its default sdpa attention returns no probabilities at all)."""
    if kv_group > 1:
        k, v = k.repeat_interleave(kv_group, dim=0), v.repeat_interleave(kv_group, dim=0)
        if key_padding_mask is not None:
            key_padding_mask = key_padding_mask.repeat_interleave(kv_group, dim=0)
    q_len, kv_len = q.shape[1], k.shape[1]
    visible = torch.ones(1, 1, q_len, kv_len, dtype=torch.bool, device=q.device)
    if causal:
        visible = visible.tril(kv_len - q_len)
    if key_padding_mask is not None:
        visible = visible & key_padding_mask[:, None, None, :]
    scores = torch.einsum("bqhd,bkhd->bhqk", q, k) * scale
    probs = F.softmax(scores.masked_fill(~visible, float("-inf")), dim=-1)
    if causal or key_padding_mask is not None:  # rows without a visible key: 0, not NaN
        probs = probs.masked_fill(~visible.any(dim=-1, keepdim=True), 0.0)
    probs = F.dropout(probs, p=dropout_p, training=dropout_p > 0.0)
    return torch.einsum("bhqk,bkhd->bqhd", probs, v), probs


class BartAttention(nn.Module):
    """Multi-head attention: encoder self-attention, causal decoder self-attention, or cross-attention.

    With a :class:`KVCache`, self-attention appends its new keys/values to the cache's buffers and
    cross-attention computes its keys/values once and reuses them on later calls.
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, is_decoder: bool = False,
                 bias: bool = True, is_causal: bool = False, config: Optional[BartConfig] = None,
                 layer_idx: Optional[int] = None, is_cross_attention: bool = False):
        super().__init__()
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.dropout = dropout
        self.head_dim = embed_dim // num_heads
        if self.head_dim * num_heads != embed_dim:
            raise ConfigError(f"d_model ({embed_dim}) must be divisible by the number of attention heads ({num_heads})")
        self.scaling = self.head_dim ** -0.5
        self.is_decoder = is_decoder
        self.is_causal = is_causal
        self.is_cross_attention = is_cross_attention
        self.config = config
        self.layer_idx = layer_idx
        self.k_proj = Linear(embed_dim, embed_dim, bias=bias)
        self.v_proj = Linear(embed_dim, embed_dim, bias=bias)
        self.q_proj = Linear(embed_dim, embed_dim, bias=bias)
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias)

    def project_kv(self, states: Tensor, rows: Optional[TokenRows] = None) -> tuple[Tensor, Tensor]:
        """Keys and values of ``states`` ``[batch, len, embed_dim]`` as ``[batch, len, heads, head_dim]`` views.

        With ``rows``, ``states`` are the real tokens ``[tokens, embed_dim]`` of a padded batch
        (see :mod:`pygen.models._unpadded`) and the padding gets zero keys and values."""
        if rows is None:
            shape = (states.shape[0], states.shape[1], self.num_heads, self.head_dim)
            return self.k_proj(states).view(shape), self.v_proj(states).view(shape)
        shape = (rows.batch, rows.length, self.num_heads, self.head_dim)
        return rows.unpack(self.k_proj(states)).view(shape), rows.unpack(self.v_proj(states)).view(shape)

    def forward(self, hidden_states: Tensor, key_value_states: Optional[Tensor] = None,
                past_key_values: Optional[KVCache] = None, attention_mask: Optional[Tensor] = None,
                output_attentions: bool = False, rows: Optional[TokenRows] = None) -> tuple[Tensor, Optional[Tensor]]:
        """``attention_mask``: bool ``[kv_batch, kv_len]``, True where a key may be attended.

        Returns the output ``[batch, len, embed_dim]`` and, with ``output_attentions``, the probabilities.
        With ``rows`` (self-attention in generation's encoder pass), ``hidden_states`` and the output
        are the real tokens ``[tokens, embed_dim]`` of a padded batch (:mod:`pygen.models._unpadded`).
        """
        if rows is not None:
            shape = (rows.batch, rows.length, self.num_heads, self.head_dim)
            q, k, v = (rows.unpack(proj(hidden_states)).view(shape) for proj in (self.q_proj, self.k_proj, self.v_proj))
            out = attention(q, k, v, key_padding_mask=attention_mask, scale=self.scaling)
            return self.out_proj(rows.pack(out.reshape(rows.batch, rows.length, self.embed_dim))), None
        batch, q_len, _ = hidden_states.shape
        q = self.q_proj(hidden_states).view(batch, q_len, self.num_heads, self.head_dim)
        cache, kv_group = past_key_values, 1
        if not self.is_cross_attention:
            k, v = self.project_kv(hidden_states)
            if cache is not None:
                k, v = cache.append(self.layer_idx, k, v)
        else:
            kv = cache.get_cross(self.layer_idx) if cache is not None else None
            if kv is None:
                kv = self.project_kv(key_value_states)
                if cache is not None:
                    cache.set_cross(self.layer_idx, *kv)
            k, v = kv
            if cache is not None:
                kv_group = cache.kv_group  # beams read their source row's keys/values
        dropout_p = self.dropout if self.training else 0.0
        if output_attentions:
            out, probs = _eager_attention(q, k, v, attention_mask, self.is_causal, self.scaling, kv_group, dropout_p)
        else:
            out = attention(q, k, v, key_padding_mask=attention_mask, causal=self.is_causal, scale=self.scaling,
                            kv_group=kv_group, dropout_p=dropout_p)
            probs = None
        return self.out_proj(out.reshape(batch, q_len, self.embed_dim)), probs


class BartEncoderLayer(nn.Module):
    def __init__(self, config: BartConfig, layer_idx: Optional[int] = None):
        super().__init__()
        self.embed_dim = config.d_model
        self.self_attn = BartAttention(self.embed_dim, config.encoder_attention_heads,
                                       dropout=config.attention_dropout, config=config, layer_idx=layer_idx)
        self.self_attn_layer_norm = nn.LayerNorm(self.embed_dim)
        self.dropout = config.dropout
        self.activation_fn = get_activation(config.activation_function, "BartConfig.activation_function")
        self.activation_dropout = config.activation_dropout
        self.fc1 = Linear(self.embed_dim, config.encoder_ffn_dim)
        self.fc2 = Linear(config.encoder_ffn_dim, self.embed_dim)
        self.final_layer_norm = nn.LayerNorm(self.embed_dim)

    def forward(self, hidden_states: Tensor, attention_mask: Optional[Tensor], output_attentions: bool = False,
                rows: Optional[TokenRows] = None) -> tuple[Tensor, Optional[Tensor]]:
        """``rows``: see :meth:`BartAttention.forward`; the rest of the layer works token by token."""
        # Post-norm: each block is x = LayerNorm(x + Dropout(block(x))).
        residual = hidden_states
        hidden_states, attn_weights = self.self_attn(hidden_states, attention_mask=attention_mask,
                                                     output_attentions=output_attentions, rows=rows)
        hidden_states = F.dropout(hidden_states, p=self.dropout, training=self.training)
        hidden_states = self.self_attn_layer_norm(residual + hidden_states)

        residual = hidden_states
        hidden_states = self.activation_fn(self.fc1(hidden_states))
        hidden_states = F.dropout(hidden_states, p=self.activation_dropout, training=self.training)
        hidden_states = F.dropout(self.fc2(hidden_states), p=self.dropout, training=self.training)
        hidden_states = self.final_layer_norm(residual + hidden_states)

        # fp16 activations can overflow in deep encoders; clamp as the reference does (without
        # padding rows, only the real tokens' overflow triggers it).
        if hidden_states.dtype == torch.float16 and not torch.isfinite(hidden_states).all():
            clamp_value = torch.finfo(hidden_states.dtype).max - 1000
            hidden_states = torch.clamp(hidden_states, min=-clamp_value, max=clamp_value)
        return hidden_states, attn_weights


class BartDecoderLayer(nn.Module):
    def __init__(self, config: BartConfig, layer_idx: Optional[int] = None):
        super().__init__()
        self.embed_dim = config.d_model
        self.layer_idx = layer_idx
        self.self_attn = BartAttention(self.embed_dim, config.decoder_attention_heads,
                                       dropout=config.attention_dropout, is_decoder=True, is_causal=True,
                                       config=config, layer_idx=layer_idx)
        self.dropout = config.dropout
        self.activation_fn = get_activation(config.activation_function, "BartConfig.activation_function")
        self.activation_dropout = config.activation_dropout
        self.self_attn_layer_norm = nn.LayerNorm(self.embed_dim)
        self.encoder_attn = BartAttention(self.embed_dim, config.decoder_attention_heads,
                                          dropout=config.attention_dropout, is_decoder=True, config=config,
                                          layer_idx=layer_idx, is_cross_attention=True)
        self.encoder_attn_layer_norm = nn.LayerNorm(self.embed_dim)
        self.fc1 = Linear(self.embed_dim, config.decoder_ffn_dim)
        self.fc2 = Linear(config.decoder_ffn_dim, self.embed_dim)
        self.final_layer_norm = nn.LayerNorm(self.embed_dim)

    def forward(self, hidden_states: Tensor, attention_mask: Optional[Tensor] = None,
                encoder_hidden_states: Optional[Tensor] = None, encoder_attention_mask: Optional[Tensor] = None,
                past_key_values: Optional[KVCache] = None,
                output_attentions: bool = False) -> tuple[Tensor, Optional[Tensor], Optional[Tensor]]:
        """Returns the new hidden states, and the self- and cross-attention probabilities when asked."""
        residual = hidden_states
        hidden_states, self_attn_weights = self.self_attn(hidden_states, past_key_values=past_key_values,
                                                          attention_mask=attention_mask,
                                                          output_attentions=output_attentions)
        hidden_states = F.dropout(hidden_states, p=self.dropout, training=self.training)
        hidden_states = self.self_attn_layer_norm(residual + hidden_states)

        # Cross-attention runs when there is a source: given now, or held by a generation cache.
        cross_attn_weights = None
        cached_source = past_key_values is not None and past_key_values.attends_cached_source \
            and past_key_values.get_cross(self.layer_idx) is not None
        if encoder_hidden_states is not None or cached_source:
            residual = hidden_states
            hidden_states, cross_attn_weights = self.encoder_attn(
                hidden_states, key_value_states=encoder_hidden_states, past_key_values=past_key_values,
                attention_mask=encoder_attention_mask, output_attentions=output_attentions)
            hidden_states = F.dropout(hidden_states, p=self.dropout, training=self.training)
            hidden_states = self.encoder_attn_layer_norm(residual + hidden_states)

        residual = hidden_states
        hidden_states = self.activation_fn(self.fc1(hidden_states))
        hidden_states = F.dropout(hidden_states, p=self.activation_dropout, training=self.training)
        hidden_states = F.dropout(self.fc2(hidden_states), p=self.dropout, training=self.training)
        hidden_states = self.final_layer_norm(residual + hidden_states)
        return hidden_states, self_attn_weights, cross_attn_weights


class BartClassificationHead(nn.Module):
    """Sentence classifier on the last <eos> state: dropout, dense, tanh, dropout, projection."""

    def __init__(self, input_dim: int, inner_dim: int, num_classes: int, pooler_dropout: float):
        super().__init__()
        self.dense = Linear(input_dim, inner_dim)
        self.dropout = nn.Dropout(p=pooler_dropout)
        self.out_proj = Linear(inner_dim, num_classes)

    def forward(self, hidden_states: Tensor) -> Tensor:
        hidden_states = torch.tanh(self.dense(self.dropout(hidden_states)))
        return self.out_proj(self.dropout(hidden_states))


# ---------------------------------------------------------------------------------------------
# Models. Each constructor initialises the modules it creates itself (sub-models initialise
# their own), then ties embeddings.
# ---------------------------------------------------------------------------------------------


class BartPreTrainedModel(PreTrainedModel):
    config_class = BartConfig
    base_model_prefix = "model"
    ignore_unexpected = ("encoder.version", "decoder.version")  # fairseq leftovers in old checkpoints


def _embed_scale(config: BartConfig) -> float:
    return math.sqrt(config.d_model) if config.scale_embedding else 1.0


class BartEncoder(BartPreTrainedModel):
    """The bidirectional encoder: ``config.encoder_layers`` :class:`BartEncoderLayer`."""

    def __init__(self, config: BartConfig):
        super().__init__(config)
        self.dropout = config.dropout
        self.layerdrop = config.encoder_layerdrop
        self.padding_idx = config.pad_token_id
        self.max_source_positions = config.max_position_embeddings
        self.embed_tokens = BartScaledWordEmbedding(config.vocab_size, config.d_model, self.padding_idx,
                                                    embed_scale=_embed_scale(config))
        self.embed_positions = BartLearnedPositionalEmbedding(config.max_position_embeddings, config.d_model)
        self.layers = nn.ModuleList([BartEncoderLayer(config, layer_idx=i) for i in range(config.encoder_layers)])
        self.layernorm_embedding = nn.LayerNorm(config.d_model)
        self.init_weights()

    def get_input_embeddings(self) -> nn.Module:
        return self.embed_tokens

    def forward(self, input_ids: Optional[Tensor] = None, attention_mask: Optional[Tensor] = None,
                inputs_embeds: Optional[Tensor] = None, output_attentions: Optional[bool] = None,
                output_hidden_states: Optional[bool] = None,
                return_dict: Optional[bool] = None) -> Union[BaseModelOutput, tuple]:
        output_attentions, output_hidden_states, return_dict = _output_flags(
            self.config, output_attentions, output_hidden_states, return_dict)
        hidden_states, attention_mask = self._embed(input_ids, inputs_embeds, attention_mask)

        all_hidden_states = (hidden_states,) if output_hidden_states else None
        all_attentions = () if output_attentions else None
        for layer in self.layers:
            if self.training and self.layerdrop > 0.0 and torch.rand([]) < self.layerdrop:
                continue  # LayerDrop
            hidden_states, attn_weights = layer(hidden_states, attention_mask, output_attentions=output_attentions)
            if output_hidden_states:
                all_hidden_states += (hidden_states,)
            if output_attentions:
                all_attentions += (attn_weights,)

        out = BaseModelOutput(last_hidden_state=hidden_states, hidden_states=all_hidden_states,
                              attentions=all_attentions)
        return out if return_dict else out.to_tuple()

    def _embed(self, input_ids: Optional[Tensor], inputs_embeds: Optional[Tensor],
               attention_mask: Optional[Tensor]) -> tuple[Tensor, Optional[Tensor]]:
        """Checked inputs -> the layers' input ``[batch, len, d_model]`` and the bool mask."""
        if (input_ids is None) == (inputs_embeds is None):
            raise InputError("give exactly one of input_ids or inputs_embeds")
        device, dtype = self.embed_positions.weight.device, self.embed_positions.weight.dtype
        if inputs_embeds is None:
            batch, seq_len = _check_ids("input_ids", input_ids, self.config.vocab_size, device)
            _check_positions("input_ids", seq_len, self.max_source_positions)
            inputs_embeds = self.embed_tokens(input_ids)
        else:
            batch, seq_len = _check_embeds("inputs_embeds", inputs_embeds, self.config.d_model, device, dtype)
            _check_positions("inputs_embeds", seq_len, self.max_source_positions)
        attention_mask = _check_mask("attention_mask", attention_mask, (batch, seq_len), device)
        hidden_states = self.layernorm_embedding(inputs_embeds + self.embed_positions(seq_len))
        return F.dropout(hidden_states, p=self.dropout, training=self.training), attention_mask

    @torch.no_grad()
    def encode_unpadded(self, input_ids: Tensor, attention_mask: Optional[Tensor]) -> Tensor:
        """Generation's encoder pass: :meth:`forward`'s last hidden state at the real tokens and
        zeros at the padding, which only masked cross-attention keys read. The layers run on the
        real tokens only (:mod:`pygen.models._unpadded`); in training mode (dropout, LayerDrop)
        this is :meth:`forward`."""
        if self.training:
            return self(input_ids=input_ids, attention_mask=attention_mask, output_attentions=False,
                        output_hidden_states=False, return_dict=True).last_hidden_state
        hidden_states, attention_mask = self._embed(input_ids, None, attention_mask)
        rows = TokenRows.of(attention_mask)
        if rows is not None:
            hidden_states = rows.pack(hidden_states)
        for layer in self.layers:
            hidden_states = layer(hidden_states, attention_mask, rows=rows)[0]
        return hidden_states if rows is None else rows.unpack(hidden_states)


class BartDecoder(BartPreTrainedModel):
    """The causal decoder: ``config.decoder_layers`` :class:`BartDecoderLayer`, each with cross-attention."""

    def __init__(self, config: BartConfig):
        super().__init__(config)
        self.dropout = config.dropout
        self.layerdrop = config.decoder_layerdrop
        self.padding_idx = config.pad_token_id
        self.max_target_positions = config.max_position_embeddings
        self.embed_tokens = BartScaledWordEmbedding(config.vocab_size, config.d_model, self.padding_idx,
                                                    embed_scale=_embed_scale(config))
        self.embed_positions = BartLearnedPositionalEmbedding(config.max_position_embeddings, config.d_model)
        self.layers = nn.ModuleList([BartDecoderLayer(config, layer_idx=i) for i in range(config.decoder_layers)])
        self.layernorm_embedding = nn.LayerNorm(config.d_model)
        self.init_weights()

    def get_input_embeddings(self) -> nn.Module:
        return self.embed_tokens

    def forward(self, input_ids: Optional[Tensor] = None, attention_mask: Optional[Tensor] = None,
                encoder_hidden_states: Optional[Tensor] = None, encoder_attention_mask: Optional[Tensor] = None,
                past_key_values: Optional[KVCache] = None, inputs_embeds: Optional[Tensor] = None,
                use_cache: Optional[bool] = None, output_attentions: Optional[bool] = None,
                output_hidden_states: Optional[bool] = None, return_dict: Optional[bool] = None,
                _names: Optional[dict[str, str]] = None) -> Union[BaseModelOutputWithPastAndCrossAttentions, tuple]:
        """``attention_mask`` covers the cached and the new positions: ``[batch, past + length]``.

        ``_names`` (internal): how the caller named these arguments, for error messages
        (:class:`BartModel` passes ``decoder_input_ids``, ``encoder_outputs``...)."""
        names = _names or _DECODER_NAMES
        output_attentions, output_hidden_states, return_dict = _output_flags(
            self.config, output_attentions, output_hidden_states, return_dict)
        use_cache = self.config.use_cache if use_cache is None else use_cache
        if (input_ids is None) == (inputs_embeds is None):
            raise InputError(f"give exactly one of {names['input_ids']} or {names['inputs_embeds']}")
        device, dtype = self.embed_positions.weight.device, self.embed_positions.weight.dtype
        if inputs_embeds is None:
            ids_name = names["input_ids"]
            batch, seq_len = _check_ids(ids_name, input_ids, self.config.vocab_size, device)
        else:
            ids_name = names["inputs_embeds"]
            batch, seq_len = _check_embeds(ids_name, inputs_embeds, self.config.d_model, device, dtype)

        cache = past_key_values
        if cache is not None:
            if not isinstance(cache, KVCache):
                raise InputError(f"past_key_values must be a pygen.cache.KVCache, got {type(cache).__name__}")
            if cache.num_layers != len(self.layers):
                raise InputError(f"past_key_values has {cache.num_layers} layers, the decoder {len(self.layers)}")
            if cache.length and cache.keys[0] is not None and cache.keys[0].shape[0] != batch:
                raise InputError(f"past_key_values holds {cache.keys[0].shape[0]} rows, the input {batch}")
        elif use_cache:
            cache = KVCache(len(self.layers))
        past_length = cache.length if cache is not None else 0
        _check_positions(ids_name, past_length + seq_len, self.max_target_positions, past_length)
        attention_mask = _check_mask(names["attention_mask"], attention_mask, (batch, past_length + seq_len), device)
        if encoder_hidden_states is not None:
            kv_group = cache.kv_group if cache is not None else 1
            source_batch = batch // kv_group
            source_name = names["encoder_hidden_states"]
            _check_embeds(source_name, encoder_hidden_states, self.config.d_model, device, dtype)
            if encoder_hidden_states.shape[0] * kv_group != batch:
                need = "they must match" if kv_group == 1 else \
                    f"{batch} rows in groups of {kv_group} need {source_batch} source rows"
                raise InputError(f"{ids_name} has batch {batch} but {source_name} has batch "
                                 f"{encoder_hidden_states.shape[0]}: {need}")
            encoder_attention_mask = _check_mask(names["encoder_attention_mask"], encoder_attention_mask,
                                                 tuple(encoder_hidden_states.shape[:2]), device)
        elif encoder_attention_mask is not None:  # a source cached by an earlier call
            encoder_attention_mask = _check_tensor(names["encoder_attention_mask"], encoder_attention_mask)
            _check_device(names["encoder_attention_mask"], encoder_attention_mask, device)
            encoder_attention_mask = encoder_attention_mask.bool()
        elif cache is not None:
            encoder_attention_mask = cache.cross_mask
        if inputs_embeds is None:
            inputs_embeds = self.embed_tokens(input_ids)

        hidden_states = self.layernorm_embedding(inputs_embeds + self.embed_positions(seq_len, past_length))
        hidden_states = F.dropout(hidden_states, p=self.dropout, training=self.training)

        all_hidden_states = (hidden_states,) if output_hidden_states else None
        all_self_attns = () if output_attentions else None
        all_cross_attns = () if output_attentions else None
        for layer in self.layers:
            if self.training and self.layerdrop > 0.0 and torch.rand([]) < self.layerdrop:
                continue  # LayerDrop
            hidden_states, self_attn, cross_attn = layer(
                hidden_states, attention_mask, encoder_hidden_states, encoder_attention_mask,
                past_key_values=cache, output_attentions=output_attentions)
            if output_hidden_states:
                all_hidden_states += (hidden_states,)
            if output_attentions:
                all_self_attns += (self_attn,)
                if cross_attn is not None:
                    all_cross_attns += (cross_attn,)
        if cache is not None:
            cache.advance(seq_len)

        out = BaseModelOutputWithPastAndCrossAttentions(
            last_hidden_state=hidden_states, past_key_values=cache, hidden_states=all_hidden_states,
            attentions=all_self_attns, cross_attentions=all_cross_attns)
        return out if return_dict else out.to_tuple()

    # ---- generation --------------------------------------------------------------------------
    @torch.no_grad()
    def new_cache(self, encoder_hidden_states: Optional[Tensor], encoder_attention_mask: Optional[Tensor],
                  batch_size: int, kv_group: int, capacity: int) -> KVCache:
        """A cache with cross-attention keys/values computed once per source row and self-attention
        buffers of ``capacity`` positions allocated up front, so decoding never reallocates."""
        device = self.embed_positions.weight.device
        dtype = self.embed_positions.weight.dtype
        if kv_group < 1 or capacity < 1:
            raise InputError(f"kv_group ({kv_group}) and capacity ({capacity}) must be positive")
        cache = KVCache(len(self.layers), capacity)
        cache.kv_group = kv_group
        cache.attends_cached_source = True
        if encoder_hidden_states is not None:
            source_batch, source_len = encoder_hidden_states.shape[:2]
            if batch_size != source_batch * kv_group:
                raise InputError(f"batch_size {batch_size} must be the {source_batch} source rows x kv_group {kv_group}")
            cache.cross_mask = _check_mask("encoder_attention_mask", encoder_attention_mask,
                                           (source_batch, source_len), device)
            rows = TokenRows.of(cache.cross_mask)  # keys/values of the real tokens only
            states = encoder_hidden_states if rows is None else rows.pack(encoder_hidden_states)
            for i, layer in enumerate(self.layers):
                cache.set_cross(i, *layer.encoder_attn.project_kv(states, rows))
        heads = self.config.decoder_attention_heads
        shape = (batch_size, capacity, heads, self.config.d_model // heads)
        for i in range(len(self.layers)):
            cache.keys[i] = torch.empty(shape, dtype=dtype, device=device)
            cache.values[i] = torch.empty(shape, dtype=dtype, device=device)
        return cache

    def step(self, input_ids: Tensor, cache: KVCache, attention_mask: Optional[Tensor] = None) -> Tensor:
        """Hidden states of ``n`` new tokens ``[batch, n]``, continuing the cache; advances it by ``n``.

        The lean path of generation: only O(1) checks (token ids come from the engine, and checking
        their values would synchronise with the device every step) and no output bookkeeping.
        """
        n = input_ids.shape[1]
        _check_positions("generation", cache.length + n, self.max_target_positions)
        if attention_mask is not None:
            if tuple(attention_mask.shape) != (input_ids.shape[0], cache.length + n):
                raise InputError(f"attention_mask must have shape {[input_ids.shape[0], cache.length + n]}, "
                                 f"got {list(attention_mask.shape)}")
            attention_mask = attention_mask.bool()
        hidden_states = self.embed_tokens(input_ids) + self.embed_positions(n, cache.length)
        hidden_states = self.layernorm_embedding(hidden_states)
        for layer in self.layers:
            hidden_states = layer(hidden_states, attention_mask, encoder_attention_mask=cache.cross_mask,
                                  past_key_values=cache)[0]
        cache.advance(n)
        return hidden_states


_DECODER_NAMES = {"input_ids": "input_ids", "inputs_embeds": "inputs_embeds", "attention_mask": "attention_mask",
                  "encoder_hidden_states": "encoder_hidden_states", "encoder_attention_mask": "encoder_attention_mask"}
# How BartModel and its heads name the decoder's arguments.
_SEQ2SEQ_NAMES = {"input_ids": "decoder_input_ids", "inputs_embeds": "decoder_inputs_embeds",
                  "attention_mask": "decoder_attention_mask", "encoder_hidden_states": "encoder_outputs",
                  "encoder_attention_mask": "attention_mask"}


def _as_encoder_output(encoder_outputs: Any) -> BaseModelOutput:
    """Accept the encoder's output object (ours or transformers') or a tuple
    ``(last_hidden_state[, hidden_states[, attentions]])``."""
    if isinstance(encoder_outputs, BaseModelOutput):
        return encoder_outputs
    if hasattr(encoder_outputs, "last_hidden_state"):
        return BaseModelOutput(last_hidden_state=encoder_outputs.last_hidden_state,
                               hidden_states=getattr(encoder_outputs, "hidden_states", None),
                               attentions=getattr(encoder_outputs, "attentions", None))
    if not isinstance(encoder_outputs, (tuple, list)) or not encoder_outputs:
        raise InputError("encoder_outputs must be the encoder's output or a tuple starting with its last hidden "
                         f"state, got {type(encoder_outputs).__name__}")
    return BaseModelOutput(last_hidden_state=encoder_outputs[0],
                           hidden_states=encoder_outputs[1] if len(encoder_outputs) > 1 else None,
                           attentions=encoder_outputs[2] if len(encoder_outputs) > 2 else None)


class BartModel(BartPreTrainedModel):
    """Encoder and decoder sharing one token embedding; returns the decoder's last hidden state."""

    tied_weights = {"encoder.embed_tokens.weight": "shared.weight", "decoder.embed_tokens.weight": "shared.weight"}

    def __init__(self, config: BartConfig):
        super().__init__(config)
        self.shared = BartScaledWordEmbedding(config.vocab_size, config.d_model, config.pad_token_id,
                                              embed_scale=_embed_scale(config))
        self.encoder = BartEncoder(config)
        self.decoder = BartDecoder(config)
        self._init_weights(self.shared)
        self.tie_weights()

    def get_input_embeddings(self) -> nn.Module:
        return self.shared

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.shared = self.encoder.embed_tokens = self.decoder.embed_tokens = value

    def forward(self, input_ids: Optional[Tensor] = None, attention_mask: Optional[Tensor] = None,
                decoder_input_ids: Optional[Tensor] = None, decoder_attention_mask: Optional[Tensor] = None,
                encoder_outputs: Any = None, past_key_values: Optional[KVCache] = None,
                inputs_embeds: Optional[Tensor] = None, decoder_inputs_embeds: Optional[Tensor] = None,
                use_cache: Optional[bool] = None, output_attentions: Optional[bool] = None,
                output_hidden_states: Optional[bool] = None,
                return_dict: Optional[bool] = None) -> Union[Seq2SeqModelOutput, tuple]:
        output_attentions, output_hidden_states, return_dict = _output_flags(
            self.config, output_attentions, output_hidden_states, return_dict)
        # Without decoder inputs BART denoises: the decoder reads the input shifted right.
        if decoder_input_ids is None and decoder_inputs_embeds is None:
            if input_ids is None:
                raise InputError("give decoder_input_ids or decoder_inputs_embeds, or input_ids to derive them from")
            _check_ids("input_ids", input_ids, self.config.vocab_size, self.shared.weight.device)
            decoder_input_ids = shift_tokens_right(input_ids, self.config.pad_token_id,
                                                   self.config.decoder_start_token_id)
        names = _SEQ2SEQ_NAMES
        if encoder_outputs is None:
            encoder_outputs = self.encoder(input_ids=input_ids, attention_mask=attention_mask,
                                           inputs_embeds=inputs_embeds, output_attentions=output_attentions,
                                           output_hidden_states=output_hidden_states, return_dict=True)
            # The source is the encoder's output of this input.
            names = {**names, "encoder_hidden_states": "input_ids" if inputs_embeds is None else "inputs_embeds"}
        else:
            encoder_outputs = _as_encoder_output(encoder_outputs)

        decoder_outputs = self.decoder(
            input_ids=decoder_input_ids, attention_mask=decoder_attention_mask,
            encoder_hidden_states=encoder_outputs.last_hidden_state, encoder_attention_mask=attention_mask,
            past_key_values=past_key_values, inputs_embeds=decoder_inputs_embeds, use_cache=use_cache,
            output_attentions=output_attentions, output_hidden_states=output_hidden_states, return_dict=True,
            _names=names)

        out = Seq2SeqModelOutput(
            last_hidden_state=decoder_outputs.last_hidden_state,
            past_key_values=decoder_outputs.past_key_values,
            decoder_hidden_states=decoder_outputs.hidden_states,
            decoder_attentions=decoder_outputs.attentions,
            cross_attentions=decoder_outputs.cross_attentions,
            encoder_last_hidden_state=encoder_outputs.last_hidden_state,
            encoder_hidden_states=encoder_outputs.hidden_states,
            encoder_attentions=encoder_outputs.attentions,
        )
        return out if return_dict else out.to_tuple()


def _seq2seq_fields(outputs: Seq2SeqModelOutput) -> dict[str, Any]:
    """The fields every BART head passes through from :class:`BartModel`'s output."""
    return {name: getattr(outputs, name) for name in (
        "past_key_values", "decoder_hidden_states", "decoder_attentions", "cross_attentions",
        "encoder_last_hidden_state", "encoder_hidden_states", "encoder_attentions")}


class BartForConditionalGeneration(BartPreTrainedModel, GenerationMixin):
    """BART with its language-modelling head (summarisation, translation, mask filling)."""

    tied_weights = {
        "lm_head.weight": "model.shared.weight",
        "model.encoder.embed_tokens.weight": "model.shared.weight",
        "model.decoder.embed_tokens.weight": "model.shared.weight",
    }
    ignore_missing = ("final_logits_bias",)  # older checkpoints lack it; it is zeros

    def __init__(self, config: BartConfig):
        super().__init__(config)
        self.model = BartModel(config)
        self.register_buffer("final_logits_bias", torch.zeros(1, config.vocab_size))
        self.lm_head = Linear(config.d_model, config.vocab_size, bias=False)
        self._init_weights(self.lm_head)
        self.tie_weights()

    def get_input_embeddings(self) -> nn.Module:
        return self.model.shared

    def get_output_embeddings(self) -> nn.Module:
        return self.lm_head

    def _resize_token_buffers(self, size: int) -> None:
        old = self.final_logits_bias
        grown = torch.zeros(1, size, dtype=old.dtype, device=old.device)
        grown[:, :min(size, old.shape[1])] = old[:, :size]
        self.final_logits_bias = grown

    def get_encoder(self) -> BartEncoder:
        return self.model.encoder

    def get_decoder(self) -> BartDecoder:
        return self.model.decoder

    def prepare_decoder_input_ids_from_labels(self, labels: Tensor) -> Tensor:
        return shift_tokens_right(labels, self.config.pad_token_id, self.config.decoder_start_token_id)

    def forward(self, input_ids: Optional[Tensor] = None, attention_mask: Optional[Tensor] = None,
                decoder_input_ids: Optional[Tensor] = None, decoder_attention_mask: Optional[Tensor] = None,
                encoder_outputs: Any = None, past_key_values: Optional[KVCache] = None,
                inputs_embeds: Optional[Tensor] = None, decoder_inputs_embeds: Optional[Tensor] = None,
                labels: Optional[Tensor] = None, use_cache: Optional[bool] = None,
                output_attentions: Optional[bool] = None, output_hidden_states: Optional[bool] = None,
                return_dict: Optional[bool] = None) -> Union[Seq2SeqLMOutput, tuple]:
        """``labels`` ``[batch, target_len]``: next tokens to predict, -100 where no loss is taken."""
        return_dict = self.config.return_dict if return_dict is None else return_dict
        if labels is not None:
            labels = check_labels("labels", labels, self.config.vocab_size, self.lm_head.weight.device)
            use_cache = False  # training: nothing to continue
            if decoder_input_ids is None and decoder_inputs_embeds is None:
                decoder_input_ids = self.prepare_decoder_input_ids_from_labels(labels)

        outputs = self.model(input_ids, attention_mask=attention_mask, decoder_input_ids=decoder_input_ids,
                             decoder_attention_mask=decoder_attention_mask, encoder_outputs=encoder_outputs,
                             past_key_values=past_key_values, inputs_embeds=inputs_embeds,
                             decoder_inputs_embeds=decoder_inputs_embeds, use_cache=use_cache,
                             output_attentions=output_attentions, output_hidden_states=output_hidden_states,
                             return_dict=True)
        lm_logits = self.lm_logits(outputs.last_hidden_state)

        loss = None
        if labels is not None:
            _check_same_shape("labels", labels, lm_logits.shape[:2])
            loss = F.cross_entropy(lm_logits.view(-1, self.config.vocab_size), labels.reshape(-1))

        out = Seq2SeqLMOutput(loss=loss, logits=lm_logits, **_seq2seq_fields(outputs))
        return out if return_dict else out.to_tuple()

    # ---- generation protocol (pygen.generation.protocol) -------------------------------------
    @torch.no_grad()
    def gen_encode(self, input_ids: Tensor, attention_mask: Optional[Tensor]) -> Tensor:
        return self.model.encoder.encode_unpadded(input_ids, attention_mask)

    def gen_new_cache(self, encoder_hidden_states: Optional[Tensor], encoder_attention_mask: Optional[Tensor],
                      batch_size: int, kv_group: int, capacity: int) -> KVCache:
        if encoder_hidden_states is None:
            raise InputError("BartForConditionalGeneration needs encoder_hidden_states (from gen_encode)")
        return self.model.decoder.new_cache(encoder_hidden_states, encoder_attention_mask, batch_size,
                                            kv_group, capacity)

    def lm_logits(self, hidden_states: Tensor) -> Tensor:
        return self.lm_head(hidden_states) + self.final_logits_bias

    @torch.no_grad()
    def gen_step(self, input_ids: Tensor, cache: KVCache, attention_mask: Optional[Tensor] = None) -> Tensor:
        return self.lm_logits(self.model.decoder.step(input_ids, cache, attention_mask))

    @torch.no_grad()
    def gen_step_outputs(self, input_ids: Tensor, cache: KVCache, attention_mask: Optional[Tensor],
                         output_attentions: bool, output_hidden_states: bool) -> StepOutputs:
        return _step_outputs(self, input_ids, cache, attention_mask, output_attentions, output_hidden_states)


class BartForSequenceClassification(BartPreTrainedModel):
    """BART with a classifier on the decoder state of each example's last <eos> token."""

    tied_weights = {"model.encoder.embed_tokens.weight": "model.shared.weight",
                    "model.decoder.embed_tokens.weight": "model.shared.weight"}

    def __init__(self, config: BartConfig):
        super().__init__(config)
        self.model = BartModel(config)
        self.classification_head = BartClassificationHead(config.d_model, config.d_model, config.num_labels,
                                                          config.classifier_dropout)
        self.classification_head.apply(self._init_weights)
        self.tie_weights()

    def get_input_embeddings(self) -> nn.Module:
        return self.model.shared

    def forward(self, input_ids: Optional[Tensor] = None, attention_mask: Optional[Tensor] = None,
                decoder_input_ids: Optional[Tensor] = None, decoder_attention_mask: Optional[Tensor] = None,
                encoder_outputs: Any = None, inputs_embeds: Optional[Tensor] = None,
                decoder_inputs_embeds: Optional[Tensor] = None, labels: Optional[Tensor] = None,
                use_cache: Optional[bool] = None, output_attentions: Optional[bool] = None,
                output_hidden_states: Optional[bool] = None,
                return_dict: Optional[bool] = None) -> Union[Seq2SeqSequenceClassifierOutput, tuple]:
        return_dict = self.config.return_dict if return_dict is None else return_dict
        if labels is not None:
            use_cache = False
        if input_ids is None:
            raise InputError(f"{type(self).__name__} needs input_ids: it pools at the <eos> tokens")

        outputs = self.model(input_ids, attention_mask=attention_mask, decoder_input_ids=decoder_input_ids,
                             decoder_attention_mask=decoder_attention_mask, encoder_outputs=encoder_outputs,
                             inputs_embeds=inputs_embeds, decoder_inputs_embeds=decoder_inputs_embeds,
                             use_cache=use_cache, output_attentions=output_attentions,
                             output_hidden_states=output_hidden_states, return_dict=True)
        hidden_states = outputs.last_hidden_state
        eos_mask = input_ids.eq(self.config.eos_token_id)
        eos_counts = eos_mask.sum(1)
        if bool((eos_counts != eos_counts[0]).any()):
            raise InputError("All examples must have the same number of <eos> tokens.")
        if int(eos_counts[0]) == 0:
            raise InputError("Each example must contain at least one <eos> token.")
        if eos_mask.shape != hidden_states.shape[:2]:
            raise InputError("the decoder inputs must be as long as input_ids to pool at its <eos> tokens, got "
                             f"{hidden_states.shape[1]} and {eos_mask.shape[1]}")
        sentence_representation = hidden_states[eos_mask, :].view(hidden_states.shape[0], -1,
                                                                  hidden_states.shape[-1])[:, -1, :]
        logits = self.classification_head(sentence_representation)

        loss = None
        if labels is not None:
            loss = self._classification_loss(logits, labels)
        out = Seq2SeqSequenceClassifierOutput(loss=loss, logits=logits, **_seq2seq_fields(outputs))
        return out if return_dict else out.to_tuple()

    def _classification_loss(self, logits: Tensor, labels: Tensor) -> Tensor:
        """Regression, single- or multi-label loss; like transformers, the first call records the
        problem type inferred from the labels in ``config.problem_type``."""
        num_labels = self.config.num_labels
        if self.config.problem_type is None:
            if num_labels == 1:
                self.config.problem_type = "regression"
            elif labels.dtype in (torch.long, torch.int):
                self.config.problem_type = "single_label_classification"
            else:
                self.config.problem_type = "multi_label_classification"
        if self.config.problem_type == "regression":
            if num_labels == 1:
                return F.mse_loss(logits.squeeze(), labels.squeeze())
            return F.mse_loss(logits, labels)
        if self.config.problem_type == "single_label_classification":
            return F.cross_entropy(logits.view(-1, num_labels), labels.view(-1))
        return F.binary_cross_entropy_with_logits(logits, labels)


class BartForQuestionAnswering(BartPreTrainedModel):
    """BART with a span head: start and end logits over the decoder positions."""

    tied_weights = {"model.encoder.embed_tokens.weight": "model.shared.weight",
                    "model.decoder.embed_tokens.weight": "model.shared.weight"}

    def __init__(self, config: BartConfig):
        super().__init__(config)
        config.num_labels = 2  # start, end (transformers sets this on the shared config too)
        self.num_labels = config.num_labels
        self.model = BartModel(config)
        self.qa_outputs = Linear(config.d_model, config.num_labels)
        self._init_weights(self.qa_outputs)
        self.tie_weights()

    def get_input_embeddings(self) -> nn.Module:
        return self.model.shared

    def forward(self, input_ids: Optional[Tensor] = None, attention_mask: Optional[Tensor] = None,
                decoder_input_ids: Optional[Tensor] = None, decoder_attention_mask: Optional[Tensor] = None,
                encoder_outputs: Any = None, start_positions: Optional[Tensor] = None,
                end_positions: Optional[Tensor] = None, inputs_embeds: Optional[Tensor] = None,
                decoder_inputs_embeds: Optional[Tensor] = None, use_cache: Optional[bool] = None,
                output_attentions: Optional[bool] = None, output_hidden_states: Optional[bool] = None,
                return_dict: Optional[bool] = None) -> Union[Seq2SeqQuestionAnsweringModelOutput, tuple]:
        return_dict = self.config.return_dict if return_dict is None else return_dict
        if start_positions is not None and end_positions is not None:
            use_cache = False
        outputs = self.model(input_ids, attention_mask=attention_mask, decoder_input_ids=decoder_input_ids,
                             decoder_attention_mask=decoder_attention_mask, encoder_outputs=encoder_outputs,
                             inputs_embeds=inputs_embeds, decoder_inputs_embeds=decoder_inputs_embeds,
                             use_cache=use_cache, output_attentions=output_attentions,
                             output_hidden_states=output_hidden_states, return_dict=True)
        start_logits, end_logits = self.qa_outputs(outputs.last_hidden_state).split(1, dim=-1)
        start_logits = start_logits.squeeze(-1).contiguous()
        end_logits = end_logits.squeeze(-1).contiguous()

        total_loss = None
        if start_positions is not None and end_positions is not None:
            # Positions outside the sequence are clamped to an ignored index and take no loss.
            ignored_index = start_logits.shape[1]
            start_positions = start_positions.reshape(start_positions.shape[0]).clamp(0, ignored_index)
            end_positions = end_positions.reshape(end_positions.shape[0]).clamp(0, ignored_index)
            start_loss = F.cross_entropy(start_logits, start_positions, ignore_index=ignored_index)
            end_loss = F.cross_entropy(end_logits, end_positions, ignore_index=ignored_index)
            total_loss = (start_loss + end_loss) / 2

        out = Seq2SeqQuestionAnsweringModelOutput(loss=total_loss, start_logits=start_logits, end_logits=end_logits,
                                                  **_seq2seq_fields(outputs))
        return out if return_dict else out.to_tuple()


class BartDecoderWrapper(BartPreTrainedModel):
    """Holds the decoder under ``model.decoder`` so BartForCausalLM's names match full BART checkpoints."""

    def __init__(self, config: BartConfig):
        super().__init__(config)
        self.decoder = BartDecoder(config)

    def forward(self, *args: Any, **kwargs: Any):
        return self.decoder(*args, **kwargs)


def _slice_logits_to_keep(hidden_states: Tensor, logits_to_keep: Union[int, Tensor]) -> Tensor:
    """An int keeps the last ``logits_to_keep`` positions (0 keeps all); a 1-D tensor picks positions."""
    if isinstance(logits_to_keep, int):
        return hidden_states[:, -logits_to_keep:] if logits_to_keep else hidden_states
    return hidden_states[:, logits_to_keep]


class BartForCausalLM(BartPreTrainedModel, GenerationMixin):
    """BART's decoder alone with a language-modelling head (e.g. the decoder of an EncoderDecoderModel)."""

    tied_weights = {"lm_head.weight": "model.decoder.embed_tokens.weight"}

    def __init__(self, config: BartConfig):
        # Like transformers, this marks the shared config as decoder-only.
        config.is_decoder = True
        config.is_encoder_decoder = False
        super().__init__(config)
        self.model = BartDecoderWrapper(config)
        self.lm_head = Linear(config.d_model, config.vocab_size, bias=False)
        self._init_weights(self.lm_head)
        self.tie_weights()

    def get_input_embeddings(self) -> nn.Module:
        return self.model.decoder.embed_tokens

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.model.decoder.embed_tokens = value

    def get_output_embeddings(self) -> nn.Module:
        return self.lm_head

    def get_decoder(self) -> BartDecoder:
        return self.model.decoder

    def forward(self, input_ids: Optional[Tensor] = None, attention_mask: Optional[Tensor] = None,
                encoder_hidden_states: Optional[Tensor] = None, encoder_attention_mask: Optional[Tensor] = None,
                past_key_values: Optional[KVCache] = None, inputs_embeds: Optional[Tensor] = None,
                labels: Optional[Tensor] = None, use_cache: Optional[bool] = None,
                logits_to_keep: Union[int, Tensor] = 0, output_attentions: Optional[bool] = None,
                output_hidden_states: Optional[bool] = None,
                return_dict: Optional[bool] = None) -> Union[CausalLMOutputWithCrossAttentions, tuple]:
        """``labels`` are not shifted: ``labels[:, i]`` is the target of ``logits[:, i]`` (-100 = ignored)."""
        return_dict = self.config.return_dict if return_dict is None else return_dict
        if labels is not None:
            labels = check_labels("labels", labels, self.config.vocab_size, self.lm_head.weight.device)
        outputs = self.model.decoder(input_ids=input_ids, attention_mask=attention_mask,
                                     encoder_hidden_states=encoder_hidden_states,
                                     encoder_attention_mask=encoder_attention_mask, past_key_values=past_key_values,
                                     inputs_embeds=inputs_embeds, use_cache=use_cache,
                                     output_attentions=output_attentions, output_hidden_states=output_hidden_states,
                                     return_dict=True)
        logits = self.lm_head(_slice_logits_to_keep(outputs.last_hidden_state, logits_to_keep))

        loss = None
        if labels is not None:
            _check_same_shape("labels", labels, logits.shape[:2])
            loss = F.cross_entropy(logits.view(-1, self.config.vocab_size), labels.reshape(-1))

        out = CausalLMOutputWithCrossAttentions(loss=loss, logits=logits, past_key_values=outputs.past_key_values,
                                                hidden_states=outputs.hidden_states, attentions=outputs.attentions,
                                                cross_attentions=outputs.cross_attentions)
        return out if return_dict else out.to_tuple()

    # ---- generation protocol (pygen.generation.protocol) -------------------------------------
    def gen_encode(self, input_ids: Tensor, attention_mask: Optional[Tensor]) -> None:
        return None  # decoder-only: the prompt is fed through gen_step

    def gen_new_cache(self, encoder_hidden_states: Optional[Tensor], encoder_attention_mask: Optional[Tensor],
                      batch_size: int, kv_group: int, capacity: int) -> KVCache:
        return self.model.decoder.new_cache(encoder_hidden_states, encoder_attention_mask, batch_size,
                                            kv_group, capacity)

    def lm_logits(self, hidden_states: Tensor) -> Tensor:
        return self.lm_head(hidden_states)

    @torch.no_grad()
    def gen_step(self, input_ids: Tensor, cache: KVCache, attention_mask: Optional[Tensor] = None) -> Tensor:
        return self.lm_logits(self.model.decoder.step(input_ids, cache, attention_mask))

    @torch.no_grad()
    def gen_step_outputs(self, input_ids: Tensor, cache: KVCache, attention_mask: Optional[Tensor],
                         output_attentions: bool, output_hidden_states: bool) -> StepOutputs:
        return _step_outputs(self, input_ids, cache, attention_mask, output_attentions, output_hidden_states)


def _step_outputs(model: Union["BartForConditionalGeneration", BartForCausalLM], input_ids: Tensor, cache: KVCache,
                  attention_mask: Optional[Tensor], output_attentions: bool, output_hidden_states: bool) -> StepOutputs:
    """A generation step through the decoder's ``forward``, which returns the attentions and hidden
    states ``step`` does not (the protocol's ``gen_step_outputs``)."""
    out = model.model.decoder(input_ids=input_ids, attention_mask=attention_mask, past_key_values=cache,
                              output_attentions=output_attentions, output_hidden_states=output_hidden_states,
                              return_dict=True)
    return StepOutputs(model.lm_logits(out.last_hidden_state), out.attentions, out.cross_attentions or None,
                       out.hidden_states)


__all__ = [
    "BartConfig",
    "BartDecoder",
    "BartEncoder",
    "BartForCausalLM",
    "BartForConditionalGeneration",
    "BartForQuestionAnswering",
    "BartForSequenceClassification",
    "BartModel",
    "BartPreTrainedModel",
    "shift_tokens_right",
]
