"""Perceiver IO for masked language modelling on UTF-8 bytes (``deepmind/language-perceiver``).

Same class and parameter names as transformers' ``modeling_perceiver``, so checkpoints load
unchanged in both directions. The architecture, top to bottom:

* ``PerceiverTextPreprocessor``: byte embeddings + learned positions ``[batch, len, d_model]``.
* ``PerceiverEncoder``: a fixed set of learned latents ``[num_latents, d_latents]`` cross-attends
  to the inputs once (the only attention that sees the padding mask), then runs
  ``num_blocks`` x ``num_self_attends_per_block`` self-attention layers over the latents.
* ``PerceiverBasicDecoder``: one learned query per output position cross-attends to the latents.
* ``PerceiverEmbeddingDecoder``: logits against the (shared) input byte embeddings.

Every attention runs through :func:`pygen.ops.attention`, except when attention
probabilities are requested (``output_attentions``), which only the explicit computation has.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..activations import get_activation
from ..configuration_utils import PretrainedConfig, register_config
from ..errors import ConfigError, InputError
from ..modeling_outputs import ModelOutput
from ..modeling_utils import PreTrainedModel
from ..ops import attention
from . import _checks as checks

# The masked LM decoder's cross-attention shape is fixed by the architecture, not the config.
_DECODER_HEADS = 8
_DECODER_QK_CHANNELS = 8 * 32


@register_config
class PerceiverConfig(PretrainedConfig):
    """Configuration of a Perceiver IO model (defaults: ``deepmind/language-perceiver``)."""

    model_type = "perceiver"
    defaults = {
        "num_latents": 256,
        "d_latents": 1280,
        "d_model": 768,
        "num_blocks": 1,
        "num_self_attends_per_block": 26,
        "num_self_attention_heads": 8,
        "num_cross_attention_heads": 8,
        "qk_channels": None,
        "v_channels": None,
        "cross_attention_shape_for_attention": "kv",
        "self_attention_widening_factor": 1,
        "cross_attention_widening_factor": 1,
        "hidden_act": "gelu",
        "attention_probs_dropout_prob": 0.1,
        "initializer_range": 0.02,
        "layer_norm_eps": 1e-12,
        "use_query_residual": True,
        "vocab_size": 262,
        "max_position_embeddings": 2048,
        # Used only by the image, optical-flow and multimodal models; kept so configs round-trip.
        "train_size": [368, 496],
        "num_frames": 16,
        "audio_samples_per_frame": 1920,
        "samples_per_patch": 16,
        "output_shape": [1, 16, 224, 224],
        "output_num_channels": 512,
        "_label_trainable_num_channels": 1024,
    }

    def __init__(self, **kwargs: Any):
        # image_size is an int or a [height, width] pair, so it stays out of the typed defaults.
        kwargs.setdefault("image_size", 56)
        super().__init__(**kwargs)

    def _validate(self) -> None:
        name = type(self).__name__
        for key in ("num_latents", "d_latents", "d_model", "num_blocks", "num_self_attends_per_block",
                    "num_self_attention_heads", "num_cross_attention_heads", "self_attention_widening_factor",
                    "cross_attention_widening_factor", "vocab_size", "max_position_embeddings"):
            if getattr(self, key) <= 0:
                raise ConfigError(f"{name}.{key} must be positive, got {getattr(self, key)}")
        for key in ("qk_channels", "v_channels"):
            value = getattr(self, key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
                raise ConfigError(f"{name}.{key} must be a positive int or null, got {value!r}")
        get_activation(self.hidden_act, f"{name}.hidden_act")  # raises ConfigError for unknown names
        if self.qk_channels is None and self.cross_attention_shape_for_attention not in ("q", "kv"):
            raise ConfigError(f"{name}.cross_attention_shape_for_attention must be 'q' or 'kv', "
                              f"got {self.cross_attention_shape_for_attention!r}")
        if not 0.0 <= self.attention_probs_dropout_prob < 1.0:
            raise ConfigError(f"{name}.attention_probs_dropout_prob must be in [0, 1), "
                              f"got {self.attention_probs_dropout_prob}")
        # Self-attention adds its output (v channels wide) back onto the latents.
        self_v = self.v_channels or self.qk_channels or self.d_latents
        if self_v != self.d_latents:
            raise ConfigError(f"{name}: the self-attention value width (v_channels, else qk_channels) is {self_v} "
                              f"but must equal d_latents ({self.d_latents}) for the residual connection")


# ---- outputs ------------------------------------------------------------------------------------
class PerceiverModelOutput(ModelOutput):
    logits: Optional[Tensor] = None
    last_hidden_state: Optional[Tensor] = None
    hidden_states: Optional[tuple[Tensor, ...]] = None
    attentions: Optional[tuple[Tensor, ...]] = None
    cross_attentions: Optional[tuple[Tensor, ...]] = None


class PerceiverDecoderOutput(ModelOutput):
    logits: Optional[Tensor] = None
    cross_attentions: Optional[tuple[Tensor, ...]] = None


class PerceiverMaskedLMOutput(ModelOutput):
    loss: Optional[Tensor] = None
    logits: Optional[Tensor] = None
    hidden_states: Optional[tuple[Tensor, ...]] = None
    attentions: Optional[tuple[Tensor, ...]] = None
    cross_attentions: Optional[tuple[Tensor, ...]] = None


# ---- building blocks ----------------------------------------------------------------------------
def _additive_mask(visible: Tensor, dtype: torch.dtype) -> Tensor:
    """``[batch, 1, 1, len]``: 0 where visible, the dtype's lowest value elsewhere (transformers' eager mask)."""
    bias = torch.zeros(visible.shape, dtype=dtype, device=visible.device)
    return bias.masked_fill(~visible, torch.finfo(dtype).min)[:, None, None, :]


class PerceiverEmbeddings(nn.Module):
    """The learned latent array, shared by every example."""

    def __init__(self, config: PerceiverConfig):
        super().__init__()
        self.latents = nn.Parameter(torch.randn(config.num_latents, config.d_latents))

    def forward(self, batch_size: int) -> Tensor:
        return self.latents.expand(batch_size, -1, -1)


class PerceiverSelfAttention(nn.Module):
    """Pre-norm multi-head attention; cross-attention when ``inputs`` are given, else self-attention."""

    def __init__(self, config: PerceiverConfig, is_cross_attention: bool = False, qk_channels: Optional[int] = None,
                 v_channels: Optional[int] = None, num_heads: int = 1, q_dim: Optional[int] = None,
                 kv_dim: Optional[int] = None):
        super().__init__()
        qk_channels = qk_channels or q_dim
        v_channels = v_channels or qk_channels
        for label, channels in (("qk_channels", qk_channels), ("v_channels", v_channels)):
            if channels % num_heads:
                raise ConfigError(f"{label} ({channels}) must be divisible by the number of heads ({num_heads})")
        self.num_heads = num_heads
        self.qk_channels = qk_channels
        self.v_channels = v_channels
        self.qk_channels_per_head = qk_channels // num_heads
        self.v_channels_per_head = v_channels // num_heads
        self.dropout_prob = config.attention_probs_dropout_prob

        self.layernorm1 = nn.LayerNorm(q_dim)
        self.layernorm2 = nn.LayerNorm(kv_dim) if is_cross_attention else nn.Identity()
        self.query = nn.Linear(q_dim, qk_channels)
        self.key = nn.Linear(kv_dim, qk_channels)
        self.value = nn.Linear(kv_dim, v_channels)
        self.dropout = nn.Dropout(config.attention_probs_dropout_prob)

    def forward(self, hidden_states: Tensor, inputs: Optional[Tensor] = None, inputs_mask: Optional[Tensor] = None,
                output_attentions: bool = False) -> tuple[Tensor, Optional[Tensor]]:
        """``inputs_mask``: bool ``[batch, inputs_len]``, True = attend. Returns (context, probabilities or None)."""
        hidden_states = self.layernorm1(hidden_states)
        source = self.layernorm2(inputs) if inputs is not None else hidden_states
        batch, q_len, kv_len = hidden_states.shape[0], hidden_states.shape[1], source.shape[1]
        heads = self.num_heads
        # [batch, len, heads, head_dim]: free views of the projections.
        q = self.query(hidden_states).view(batch, q_len, heads, self.qk_channels_per_head)
        k = self.key(source).view(batch, kv_len, heads, self.qk_channels_per_head)
        v = self.value(source).view(batch, kv_len, heads, self.v_channels_per_head)

        probs = None
        if output_attentions:
            context, probs = self._attention_with_probs(q, k, v, inputs_mask)
        else:
            key_padding_mask = attn_bias = None
            if inputs_mask is not None:
                if bool(inputs_mask.any(dim=1).all()):
                    key_padding_mask = inputs_mask
                else:
                    # transformers adds the dtype's lowest value to masked scores, so a row with
                    # nothing visible attends uniformly to every position; the bias reproduces that.
                    attn_bias = _additive_mask(inputs_mask, q.dtype)
            dropout_p = self.dropout_prob if self.training else 0.0
            context = attention(q, k, v, key_padding_mask=key_padding_mask, attn_bias=attn_bias, dropout_p=dropout_p)
        return context.reshape(batch, q_len, heads * self.v_channels_per_head), probs

    def _attention_with_probs(self, q: Tensor, k: Tensor, v: Tensor,
                              inputs_mask: Optional[Tensor]) -> tuple[Tensor, Tensor]:
        """Explicit attention returning the probabilities ``[batch, heads, q_len, kv_len]`` too."""
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.qk_channels_per_head)
        if inputs_mask is not None:
            scores = scores + _additive_mask(inputs_mask, scores.dtype)
        probs = self.dropout(torch.softmax(scores, dim=-1))
        return torch.matmul(probs, v).transpose(1, 2), probs


class PerceiverSelfOutput(nn.Module):
    def __init__(self, input_channels: int, output_channels: int):
        super().__init__()
        self.dense = nn.Linear(input_channels, output_channels)

    def forward(self, hidden_states: Tensor) -> Tensor:
        return self.dense(hidden_states)


class PerceiverAttention(nn.Module):
    """Attention, its output projection and the optional residual to the queries."""

    def __init__(self, config: PerceiverConfig, is_cross_attention: bool = False, qk_channels: Optional[int] = None,
                 v_channels: Optional[int] = None, num_heads: int = 1, q_dim: Optional[int] = None,
                 kv_dim: Optional[int] = None, use_query_residual: bool = True):
        super().__init__()
        if is_cross_attention and qk_channels is None:
            shape = config.cross_attention_shape_for_attention
            if shape not in ("q", "kv"):
                raise ConfigError(f"cross_attention_shape_for_attention must be 'q' or 'kv', got {shape!r}")
            qk_channels = q_dim if shape == "q" else kv_dim
        self.self = PerceiverSelfAttention(config, is_cross_attention=is_cross_attention, qk_channels=qk_channels,
                                           v_channels=v_channels, num_heads=num_heads, q_dim=q_dim, kv_dim=kv_dim)
        # Cross-attention maps back to the query width; self-attention keeps the value width.
        output_channels = q_dim if is_cross_attention else self.self.v_channels
        self.output = PerceiverSelfOutput(input_channels=self.self.v_channels, output_channels=output_channels)
        self.use_query_residual = use_query_residual

    def forward(self, hidden_states: Tensor, inputs: Optional[Tensor] = None, inputs_mask: Optional[Tensor] = None,
                output_attentions: bool = False) -> tuple[Tensor, Optional[Tensor]]:
        context, probs = self.self(hidden_states, inputs, inputs_mask, output_attentions)
        output = self.output(context)
        if self.use_query_residual:
            output = output + hidden_states
        return output, probs


class PerceiverMLP(nn.Module):
    def __init__(self, config: PerceiverConfig, input_size: int, widening_factor: int):
        super().__init__()
        self.dense1 = nn.Linear(input_size, widening_factor * input_size)
        self.intermediate_act_fn = get_activation(config.hidden_act, "hidden_act")
        self.dense2 = nn.Linear(widening_factor * input_size, input_size)

    def forward(self, hidden_states: Tensor) -> Tensor:
        return self.dense2(self.intermediate_act_fn(self.dense1(hidden_states)))


class PerceiverLayer(nn.Module):
    """Attention followed by a pre-norm MLP with a residual connection."""

    def __init__(self, config: PerceiverConfig, is_cross_attention: bool = False, qk_channels: Optional[int] = None,
                 v_channels: Optional[int] = None, num_heads: int = 1, q_dim: Optional[int] = None,
                 kv_dim: Optional[int] = None, widening_factor: int = 4, use_query_residual: bool = True):
        super().__init__()
        self.attention = PerceiverAttention(config, is_cross_attention=is_cross_attention, qk_channels=qk_channels,
                                            v_channels=v_channels, num_heads=num_heads, q_dim=q_dim, kv_dim=kv_dim,
                                            use_query_residual=use_query_residual)
        self.layernorm = nn.LayerNorm(q_dim)
        self.mlp = PerceiverMLP(config, input_size=q_dim, widening_factor=widening_factor)

    def forward(self, hidden_states: Tensor, inputs: Optional[Tensor] = None, inputs_mask: Optional[Tensor] = None,
                output_attentions: bool = False) -> tuple[Tensor, Optional[Tensor]]:
        attention_output, probs = self.attention(hidden_states, inputs, inputs_mask, output_attentions)
        return self.mlp(self.layernorm(attention_output)) + attention_output, probs


class PerceiverEncoder(nn.Module):
    """Cross-attention from the latents to the inputs, then blocks of latent self-attention."""

    def __init__(self, config: PerceiverConfig, kv_dim: Optional[int] = None):
        super().__init__()
        self.config = config
        for key in ("num_self_attention_heads", "num_cross_attention_heads"):
            if config.d_latents % getattr(config, key):
                raise ConfigError(f"d_latents ({config.d_latents}) must be divisible by {key} "
                                  f"({getattr(config, key)})")
        self.cross_attention = PerceiverLayer(
            config, is_cross_attention=True, qk_channels=config.qk_channels, v_channels=config.v_channels,
            num_heads=config.num_cross_attention_heads, q_dim=config.d_latents, kv_dim=kv_dim,
            widening_factor=config.cross_attention_widening_factor, use_query_residual=config.use_query_residual)
        # One block of layers; deeper models apply the same block num_blocks times.
        self.self_attends = nn.ModuleList(
            PerceiverLayer(config, qk_channels=config.qk_channels, v_channels=config.v_channels,
                           num_heads=config.num_self_attention_heads, q_dim=config.d_latents,
                           kv_dim=config.d_latents, widening_factor=config.self_attention_widening_factor)
            for _ in range(config.num_self_attends_per_block))

    def forward(self, hidden_states: Tensor, inputs: Tensor, inputs_mask: Optional[Tensor] = None,
                output_attentions: bool = False, output_hidden_states: bool = False):
        """Returns (last hidden state, hidden states, self-attentions, cross-attentions); unrequested ones are None."""
        all_hidden = () if output_hidden_states else None
        self_attentions = () if output_attentions else None
        hidden_states, probs = self.cross_attention(hidden_states, inputs, inputs_mask, output_attentions)
        cross_attentions = (probs,) if output_attentions else None
        for _ in range(self.config.num_blocks):
            for layer in self.self_attends:
                if output_hidden_states:
                    all_hidden += (hidden_states,)
                hidden_states, probs = layer(hidden_states, output_attentions=output_attentions)
                if output_attentions:
                    self_attentions += (probs,)
            if output_hidden_states:
                all_hidden += (hidden_states,)
        return hidden_states, all_hidden, self_attentions, cross_attentions


class PerceiverTextPreprocessor(nn.Module):
    """Byte ids ``[batch, len]`` -> byte embeddings plus learned position embeddings ``[batch, len, d_model]``."""

    def __init__(self, config: PerceiverConfig):
        super().__init__()
        self.config = config
        self.embeddings = nn.Embedding(config.vocab_size, config.d_model)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.d_model)

    @property
    def num_channels(self) -> int:
        return self.config.d_model

    def check_inputs(self, inputs: Tensor) -> None:
        if not isinstance(inputs, Tensor) or inputs.dim() != 2 or inputs.is_floating_point() or inputs.is_complex() \
                or inputs.dtype == torch.bool:
            raise InputError("inputs must be an integer tensor of byte ids [batch, length], got "
                             + (f"{inputs.dtype} of shape {tuple(inputs.shape)}" if isinstance(inputs, Tensor)
                                else type(inputs).__name__))
        length, limit = inputs.shape[1], self.config.max_position_embeddings
        if inputs.shape[0] == 0 or not 0 < length <= limit:
            raise InputError(f"inputs of shape {tuple(inputs.shape)}: need a non-empty batch and 1 to "
                             f"max_position_embeddings ({limit}) positions")
        if inputs.dtype not in (torch.int64, torch.int32):  # what embedding lookups take
            raise InputError(f"inputs must hold int64 (or int32) byte ids, got dtype {inputs.dtype}; convert with "
                             ".long()")
        checks.check_device("inputs", inputs, self.embeddings.weight.device)
        low, high = (int(x) for x in torch.aminmax(inputs))
        if low < 0 or high >= self.config.vocab_size:
            raise InputError(f"inputs hold ids in [{low}, {high}], outside [0, vocab_size={self.config.vocab_size})")

    def forward(self, inputs: Tensor) -> Tensor:
        positions = torch.arange(inputs.shape[1], device=inputs.device)
        return self.embeddings(inputs) + self.position_embeddings(positions)


class PerceiverTrainablePositionEncoding(nn.Module):
    """A learned vector per position, the same for every example."""

    def __init__(self, index_dims: int, num_channels: int = 128):
        super().__init__()
        self.position_embeddings = nn.Parameter(torch.randn(index_dims, num_channels))

    def forward(self, batch_size: int) -> Tensor:
        return self.position_embeddings.expand(batch_size, -1, -1)


class PerceiverBasicDecoder(nn.Module):
    """Cross-attention decoder: one learned query per output position reads the latents.

    Supports the trainable position queries the language model uses.
    """

    def __init__(self, config: PerceiverConfig, output_num_channels: int, output_index_dims: int,
                 num_channels: int = 128, qk_channels: Optional[int] = None, v_channels: Optional[int] = None,
                 num_heads: int = 1, widening_factor: int = 1, use_query_residual: bool = False,
                 final_project: bool = True):
        super().__init__()
        self.output_num_channels = output_num_channels
        self.output_index_dims = output_index_dims
        self.num_channels = num_channels
        self.output_position_encodings = PerceiverTrainablePositionEncoding(output_index_dims, num_channels)
        self.decoding_cross_attention = PerceiverLayer(
            config, is_cross_attention=True, qk_channels=qk_channels, v_channels=v_channels, num_heads=num_heads,
            q_dim=num_channels, kv_dim=config.d_latents, widening_factor=widening_factor,
            use_query_residual=use_query_residual)
        self.final_layer = nn.Linear(num_channels, output_num_channels) if final_project else nn.Identity()

    @property
    def num_query_channels(self) -> int:
        return self.output_num_channels if isinstance(self.final_layer, nn.Linear) else self.num_channels

    def decoder_query(self, batch_size: int) -> Tensor:
        return self.output_position_encodings(batch_size)

    def forward(self, query: Tensor, z: Tensor, output_attentions: bool = False) -> PerceiverDecoderOutput:
        # Every latent is visible to every query: no mask.
        output, probs = self.decoding_cross_attention(query, inputs=z, output_attentions=output_attentions)
        return PerceiverDecoderOutput(logits=self.final_layer(output),
                                      cross_attentions=(probs,) if output_attentions else None)


class PerceiverEmbeddingDecoder(nn.Module):
    """Projects decoder outputs onto the input byte embeddings (weights shared with the preprocessor) plus a bias."""

    def __init__(self, config: PerceiverConfig):
        super().__init__()
        self.vocab_size = config.vocab_size
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def forward(self, hidden_states: Tensor, embedding_layer: nn.Embedding) -> Tensor:
        return F.linear(hidden_states, embedding_layer.weight, self.bias)


# ---- models -------------------------------------------------------------------------------------
class PerceiverPreTrainedModel(PreTrainedModel):
    config_class = PerceiverConfig
    base_model_prefix = "perceiver"
    main_input_name = "inputs"

    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        std = self.config.initializer_range
        if isinstance(module, PerceiverEmbeddings):
            nn.init.normal_(module.latents, mean=0.0, std=std)
        elif isinstance(module, PerceiverTrainablePositionEncoding):
            nn.init.normal_(module.position_embeddings, mean=0.0, std=std)


class PerceiverModel(PerceiverPreTrainedModel):
    """The Perceiver: latents read the (preprocessed) inputs, and an optional decoder reads the latents.

    Without ``input_preprocessor`` the inputs are embeddings ``[batch, len, d_model]``; with a
    :class:`PerceiverTextPreprocessor` they are byte ids ``[batch, len]``.
    """

    def __init__(self, config: PerceiverConfig, decoder: Optional[PerceiverBasicDecoder] = None,
                 input_preprocessor: Optional[PerceiverTextPreprocessor] = None,
                 output_postprocessor: Optional[Callable[..., Tensor]] = None):
        super().__init__(config)
        self.input_preprocessor = input_preprocessor
        self.output_postprocessor = output_postprocessor
        self.embeddings = PerceiverEmbeddings(config)
        kv_dim = input_preprocessor.num_channels if input_preprocessor is not None else config.d_model
        self.encoder = PerceiverEncoder(config, kv_dim=kv_dim)
        self.decoder = decoder
        self.init_weights()

    def get_input_embeddings(self) -> Tensor:
        return self.embeddings.latents

    def set_input_embeddings(self, value: Tensor) -> None:
        self.embeddings.latents = value

    def _check_inputs(self, inputs: Tensor, attention_mask: Optional[Tensor]) -> None:
        device = self.embeddings.latents.device
        if self.input_preprocessor is not None:
            self.input_preprocessor.check_inputs(inputs)
        else:
            if not isinstance(inputs, Tensor) or inputs.dim() != 3 or inputs.shape[-1] != self.config.d_model \
                    or not inputs.is_floating_point():
                raise InputError(f"inputs must be float embeddings [batch, length, d_model={self.config.d_model}], "
                                 "got " + (f"{inputs.dtype} of shape {tuple(inputs.shape)}"
                                           if isinstance(inputs, Tensor) else type(inputs).__name__))
            checks.check_embeds("inputs", inputs, self.config.d_model, device, self.embeddings.latents.dtype)
        if attention_mask is not None and (not isinstance(attention_mask, Tensor)
                                           or tuple(attention_mask.shape) != tuple(inputs.shape[:2])):
            got = tuple(attention_mask.shape) if isinstance(attention_mask, Tensor) else type(attention_mask).__name__
            raise InputError(f"attention_mask must have the shape of the inputs' [batch, length] "
                             f"{tuple(inputs.shape[:2])}, got {got}")
        checks.check_mask("attention_mask", attention_mask, tuple(inputs.shape[:2]), device)

    def forward(self, inputs: Tensor, attention_mask: Optional[Tensor] = None,
                subsampled_output_points: Optional[dict[str, Tensor]] = None,
                output_attentions: Optional[bool] = None, output_hidden_states: Optional[bool] = None,
                interpolate_pos_encoding: bool = False, return_dict: Optional[bool] = None):
        """``attention_mask`` ``[batch, length]``: 1 for real inputs, 0 for padding.

        ``interpolate_pos_encoding`` only concerns image inputs; text ignores it, as in transformers.
        """
        if subsampled_output_points is not None:
            raise InputError("subsampled_output_points is only used by the multimodal decoders, which pygen lacks")
        output_attentions = self.config.output_attentions if output_attentions is None else output_attentions
        output_hidden_states = self.config.output_hidden_states if output_hidden_states is None \
            else output_hidden_states
        return_dict = self.config.return_dict if return_dict is None else return_dict

        self._check_inputs(inputs, attention_mask)
        batch_size = inputs.shape[0]
        inputs_mask = attention_mask != 0 if attention_mask is not None else None
        # Preprocessed inline so the embedded inputs are freed once the encoder has read them.
        sequence_output, hidden_states, attentions, cross_attentions = self.encoder(
            self.embeddings(batch_size),
            inputs if self.input_preprocessor is None else self.input_preprocessor(inputs), inputs_mask, output_attentions, output_hidden_states)

        logits = decoder_cross_attentions = None
        if self.decoder is not None:
            decoded = self.decoder(self.decoder.decoder_query(batch_size), sequence_output, output_attentions)
            logits = decoded.logits
            decoder_cross_attentions = decoded.cross_attentions
            if self.output_postprocessor is not None:
                logits = self.output_postprocessor(logits, modality_sizes=None)

        if not return_dict:
            extras = tuple(v for v in (hidden_states, attentions, cross_attentions) if v is not None)
            # transformers appends the decoder's attention maps as one more element here.
            extras += decoder_cross_attentions or ()
            head = (sequence_output,) if logits is None else (logits, sequence_output)
            return head + extras
        if decoder_cross_attentions:
            cross_attentions += decoder_cross_attentions
        return PerceiverModelOutput(logits=logits, last_hidden_state=sequence_output, hidden_states=hidden_states,
                                    attentions=attentions, cross_attentions=cross_attentions)


class PerceiverForMaskedLM(PerceiverPreTrainedModel):
    """Perceiver IO masked language model over UTF-8 bytes.

    The decoder has one query per position up to ``max_position_embeddings``, so the logits
    always cover that many positions whatever the input length.
    """

    def __init__(self, config: PerceiverConfig):
        super().__init__(config)
        preprocessor = PerceiverTextPreprocessor(config)
        if preprocessor.num_channels % _DECODER_HEADS:
            raise ConfigError(f"d_model ({config.d_model}) must be divisible by {_DECODER_HEADS}, the number of "
                              "heads of the masked LM decoder")
        decoder = PerceiverBasicDecoder(
            config, output_num_channels=config.d_latents, output_index_dims=config.max_position_embeddings,
            num_channels=preprocessor.num_channels, qk_channels=_DECODER_QK_CHANNELS,
            v_channels=preprocessor.num_channels, num_heads=_DECODER_HEADS, use_query_residual=False,
            final_project=False)
        self.perceiver = PerceiverModel(config, input_preprocessor=preprocessor, decoder=decoder)
        # Its bias starts at zero; everything else was initialised by PerceiverModel.
        self.embedding_decoder = PerceiverEmbeddingDecoder(config)

    def get_input_embeddings(self) -> Tensor:
        # As transformers: the base model's "input embeddings", i.e. the latents.
        return self.perceiver.get_input_embeddings()

    def _check_labels(self, labels: Tensor, logits: Tensor) -> Tensor:
        """The labels, on the logits' device (moved from another real device, as pygen always did)."""
        if not isinstance(labels, Tensor) or labels.is_floating_point() or labels.is_complex() \
                or labels.dtype == torch.bool or tuple(labels.shape) != tuple(logits.shape[:2]):
            got = f"{labels.dtype} {tuple(labels.shape)}" if isinstance(labels, Tensor) else type(labels).__name__
            raise InputError(f"labels must be integer ids of shape [batch, max_position_embeddings] "
                             f"{tuple(logits.shape[:2])}, got {got}")
        return checks.check_labels("labels", labels, self.config.vocab_size, logits.device, tuple(logits.shape[:2]))

    def forward(self, inputs: Optional[Tensor] = None, attention_mask: Optional[Tensor] = None,
                output_attentions: Optional[bool] = None, output_hidden_states: Optional[bool] = None,
                labels: Optional[Tensor] = None, return_dict: Optional[bool] = None,
                input_ids: Optional[Tensor] = None):
        """``inputs`` (or ``input_ids``): byte ids ``[batch, length]``; ``labels``: ids
        ``[batch, max_position_embeddings]``, -100 where no loss is wanted."""
        if inputs is not None and input_ids is not None:
            raise InputError("pass either inputs or input_ids, not both")
        inputs = input_ids if inputs is None else inputs
        if inputs is None:
            raise InputError("inputs (byte ids [batch, length]) are required")
        return_dict = self.config.return_dict if return_dict is None else return_dict

        outputs = self.perceiver(inputs, attention_mask=attention_mask, output_attentions=output_attentions,
                                 output_hidden_states=output_hidden_states, return_dict=return_dict)
        decoded = outputs.logits if return_dict else outputs[0]
        logits = self.embedding_decoder(decoded, embedding_layer=self.perceiver.input_preprocessor.embeddings)

        loss = None
        if labels is not None:
            labels = self._check_labels(labels, logits)
            loss = F.cross_entropy(logits.reshape(-1, self.config.vocab_size), labels.reshape(-1))

        if not return_dict:
            output = (logits,) + tuple(outputs[2:])
            return output if loss is None else (loss,) + output
        return PerceiverMaskedLMOutput(loss=loss, logits=logits, hidden_states=outputs.hidden_states,
                                       attentions=outputs.attentions, cross_attentions=outputs.cross_attentions)


__all__ = ["PerceiverConfig", "PerceiverModel", "PerceiverForMaskedLM", "PerceiverPreTrainedModel",
           "PerceiverTextPreprocessor", "PerceiverBasicDecoder", "PerceiverEmbeddingDecoder",
           "PerceiverModelOutput", "PerceiverMaskedLMOutput", "PerceiverDecoderOutput"]
