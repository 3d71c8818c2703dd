"""BERT (``BertModel``, ``BertLMHeadModel``) and the transformer stack BERT, RoBERTa and
BertGeneration share.

The three families differ only in their embeddings and output heads; below the embeddings
they have the same layers with the same parameter names (``encoder.layer.N.attention.self.query``
...), so this module holds the one implementation of those layers, of the bare-model forward
(:class:`BertStackMixin`) and of the causal-LM forward plus the generation protocol
(:class:`BertCausalLMMixin`). Every attention runs through :func:`pygen.ops.attention` on
``[batch, len, heads, head_dim]`` views of the projections.
"""
from __future__ import annotations

import contextlib
import contextvars
import logging
from typing import Any, Iterator, Optional, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..cache import KVCache
from ..activations import get_activation
from ..configuration_utils import PretrainedConfig, check_sizes, register_config
from ..errors import ConfigError, InputError
from ..generation.mixin import GenerationMixin
from ..generation.protocol import StepOutputs
from ..modeling_outputs import CausalLMOutputWithCrossAttentions, ModelOutput
from ..modeling_utils import PreTrainedModel
from ..ops import Linear, attention
from . import _checks as checks
from ._unpadded import TokenRows

logger = logging.getLogger("pygen")

# Config model types whose checkpoints share the layer layout (transformers reads any of them
# into any of these configs, e.g. a BERT checkpoint into BertGenerationEncoder).
BERT_FAMILY = ("bert", "roberta", "bert-generation")

def remap_bert_keys(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Checkpoint keys as transformers reads them: old TF-converted checkpoints name LayerNorm
    parameters gamma/beta, and old saves hold the embeddings' position/token-type id buffers,
    which are not weights."""
    out = {}
    for key, value in state.items():
        if key.endswith(("embeddings.position_ids", "embeddings.token_type_ids")):
            continue
        out[key.replace("LayerNorm.gamma", "LayerNorm.weight").replace("LayerNorm.beta", "LayerNorm.bias")] = value
    return out


@register_config
class BertConfig(PretrainedConfig):
    """Configuration of BERT models (defaults: ``bert-base-uncased``)."""

    model_type = "bert"
    defaults = {
        "vocab_size": 30522,
        "hidden_size": 768,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "intermediate_size": 3072,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": 512,
        "type_vocab_size": 2,
        "initializer_range": 0.02,
        "layer_norm_eps": 1e-12,
        "pad_token_id": 0,
        "classifier_dropout": None,
    }

    @classmethod
    def accepts_model_type(cls, model_type: str) -> bool:
        return model_type in BERT_FAMILY

    def _validate(self) -> None:
        validate_bert_sizes(self, "type_vocab_size")


def validate_bert_sizes(config: PretrainedConfig, *extra_positive: str) -> None:
    """Sizes no BERT-family model can be built from (divisibility of hidden_size by the head count is
    checked when the model is built: the config may still be edited before that, as in transformers)."""
    heads = config.num_attention_heads
    if isinstance(heads, int) and not isinstance(heads, bool) and heads < 1:
        raise ConfigError(f"{type(config).__name__}.num_attention_heads must be an integer >= 1 (hidden_size must be "
                          f"a multiple of num_attention_heads), got {heads}")
    check_sizes(config, positive=("vocab_size", "hidden_size", "num_attention_heads", "max_position_embeddings",
                                  *extra_positive),
                non_negative=("num_hidden_layers", "intermediate_size"))


class BaseModelOutputWithPoolingAndCrossAttentions(ModelOutput):
    last_hidden_state: Optional[Tensor] = None
    pooler_output: Optional[Tensor] = None
    hidden_states: Optional[tuple[Tensor, ...]] = None
    past_key_values: Any = None
    attentions: Optional[tuple[Tensor, ...]] = None
    cross_attentions: Optional[tuple[Tensor, ...]] = None


# ---- input checks ------------------------------------------------------------------------
def _check_ids(name: str, ids: Tensor, upper: int, what: str, device: torch.device) -> tuple[int, int]:
    """``ids`` must be a non-empty 2-D integer tensor on ``device`` with values in ``[0, upper)``."""
    return checks.check_ids(name, ids, upper, device, what)


def _check_mask(name: str, mask: Optional[Tensor], shape: tuple[int, int], device: Optional[torch.device] = None) -> None:
    if mask is None:
        return
    if not isinstance(mask, Tensor) or tuple(mask.shape) != shape:
        got = tuple(mask.shape) if isinstance(mask, Tensor) else type(mask).__name__
        raise InputError(f"{name} must have shape {list(shape)} (1 = attend, 0 = padding), got {got}")
    if mask.dtype.is_complex:
        raise InputError(f"{name} must be bool, integer or float (1 = attend, 0 = padding), got dtype {mask.dtype}")
    if device is not None:
        checks.check_device(name, mask, device)


def check_labels(labels: Tensor, shape: tuple[int, ...], vocab_size: int,
                 device: Optional[torch.device] = None) -> Tensor:
    """Returns the labels, moved to ``device`` (the logits') when on another real device."""
    if not isinstance(labels, Tensor) or labels.is_floating_point() or labels.is_complex() \
            or labels.dtype == torch.bool or tuple(labels.shape) != shape:
        got = f"{labels.dtype} {tuple(labels.shape)}" if isinstance(labels, Tensor) else type(labels).__name__
        raise InputError(f"labels must be an integer tensor of shape {list(shape)}, got {got}")
    return checks.check_labels("labels", labels, vocab_size, labels.device if device is None else device, shape)


# How the bare models and the LM heads name their arguments (an EncoderDecoderModel renames them).
ARGUMENT_NAMES = {name: name for name in ("input_ids", "inputs_embeds", "attention_mask", "token_type_ids",
                                          "position_ids", "encoder_hidden_states", "encoder_attention_mask")}


# ---- embeddings --------------------------------------------------------------------------
class BertEmbeddings(nn.Module):
    """Word + token-type + absolute position embeddings, then LayerNorm and dropout."""

    def __init__(self, config: PretrainedConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def max_length(self) -> int:
        """Longest sequence (cached prefix included) the default position ids can address."""
        return self.position_embeddings.num_embeddings

    def default_position_ids(self, input_ids: Optional[Tensor], inputs_embeds: Optional[Tensor],
                             past_key_values_length: int) -> Tensor:
        ref = input_ids if input_ids is not None else inputs_embeds
        length = ref.shape[1]
        return torch.arange(past_key_values_length, past_key_values_length + length, device=ref.device)[None]

    def forward(self, input_ids: Optional[Tensor] = None, token_type_ids: Optional[Tensor] = None,
                position_ids: Optional[Tensor] = None, inputs_embeds: Optional[Tensor] = None,
                past_key_values_length: int = 0) -> Tensor:
        if position_ids is None:
            position_ids = self.default_position_ids(input_ids, inputs_embeds, past_key_values_length)
        if inputs_embeds is None:
            inputs_embeds = self.word_embeddings(input_ids)
        if token_type_ids is None:
            token_type_ids = torch.zeros(inputs_embeds.shape[:2], dtype=torch.long, device=inputs_embeds.device)
        embeddings = inputs_embeds + self.token_type_embeddings(token_type_ids)
        embeddings = embeddings + self.position_embeddings(position_ids)
        return self.dropout(self.LayerNorm(embeddings))


# ---- transformer layers ------------------------------------------------------------------
class BertSelfAttention(nn.Module):
    """Multi-head self-attention; causal (decoders) and KV-cached when given a cache."""

    def __init__(self, config: PretrainedConfig):
        super().__init__()
        if config.num_attention_heads < 1 or config.hidden_size % config.num_attention_heads:
            raise ConfigError(f"hidden_size ({config.hidden_size}) must be a multiple of num_attention_heads "
                              f"({config.num_attention_heads})")
        self.num_attention_heads = config.num_attention_heads
        self.attention_head_size = config.hidden_size // config.num_attention_heads
        self.all_head_size = config.hidden_size
        self.scaling = self.attention_head_size ** -0.5
        self.query = Linear(config.hidden_size, self.all_head_size)
        self.key = Linear(config.hidden_size, self.all_head_size)
        self.value = Linear(config.hidden_size, self.all_head_size)
        self.dropout_prob = config.attention_probs_dropout_prob

    def heads(self, projected: Tensor) -> Tensor:
        """``[batch, len, hidden]`` -> ``[batch, len, heads, head_dim]`` (a view)."""
        return projected.view(*projected.shape[:2], self.num_attention_heads, self.attention_head_size)

    def attend(self, q: Tensor, k: Tensor, v: Tensor, mask: Optional[Tensor], causal: bool = False,
               kv_group: int = 1) -> Tensor:
        out = attention(q, k, v, key_padding_mask=mask, causal=causal, scale=self.scaling, kv_group=kv_group,
                        dropout_p=self.dropout_prob if self.training else 0.0)
        return out.view(*out.shape[:2], self.all_head_size)

    def forward(self, hidden_states: Tensor, attention_mask: Optional[Tensor], causal: bool,
                cache: Optional[KVCache], layer_idx: int, rows: Optional[TokenRows] = None) -> Tensor:
        """With ``rows`` (generation's encoder pass), ``hidden_states`` and the output are the real
        tokens ``[tokens, hidden]`` of a padded batch (:mod:`pygen.models._unpadded`)."""
        if rows is not None:
            q, k, v = (self.heads(rows.unpack(proj(hidden_states))) for proj in (self.query, self.key, self.value))
            return rows.pack(self.attend(q, k, v, attention_mask))
        q = self.heads(self.query(hidden_states))
        k = self.heads(self.key(hidden_states))
        v = self.heads(self.value(hidden_states))
        if cache is not None:
            k, v = cache.append(layer_idx, k, v)
        return self.attend(q, k, v, attention_mask, causal=causal)


class BertCrossAttention(BertSelfAttention):
    """Attention from decoder positions to encoder states; keys/values are cached per source row."""

    def project_kv(self, encoder_hidden_states: Tensor, rows: Optional[TokenRows] = None) -> tuple[Tensor, Tensor]:
        """With ``rows``, ``encoder_hidden_states`` are the real tokens ``[tokens, hidden]`` of a padded
        batch and the padding gets zero keys and values."""
        if rows is None:
            return self.heads(self.key(encoder_hidden_states)), self.heads(self.value(encoder_hidden_states))
        return self.heads(rows.unpack(self.key(encoder_hidden_states))), \
            self.heads(rows.unpack(self.value(encoder_hidden_states)))

    def forward(self, hidden_states: Tensor, encoder_hidden_states: Optional[Tensor],
                encoder_attention_mask: Optional[Tensor], cache: Optional[KVCache], layer_idx: int) -> Tensor:
        q = self.heads(self.query(hidden_states))
        kv = cache.get_cross(layer_idx) if cache is not None else None
        if kv is None:
            kv = self.project_kv(encoder_hidden_states)
            if cache is not None:
                cache.set_cross(layer_idx, *kv)
        kv_group = cache.kv_group if cache is not None else 1
        return self.attend(q, *kv, encoder_attention_mask, kv_group=kv_group)


class BertSelfOutput(nn.Module):
    def __init__(self, config: PretrainedConfig):
        super().__init__()
        self.dense = Linear(config.hidden_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden_states: Tensor, input_tensor: Tensor) -> Tensor:
        return self.LayerNorm(self.dropout(self.dense(hidden_states)) + input_tensor)


class BertAttention(nn.Module):
    def __init__(self, config: PretrainedConfig, is_cross_attention: bool = False):
        super().__init__()
        self.self = (BertCrossAttention if is_cross_attention else BertSelfAttention)(config)
        self.output = BertSelfOutput(config)

    def forward(self, hidden_states: Tensor, *args: Any) -> Tensor:
        return self.output(self.self(hidden_states, *args), hidden_states)


class BertIntermediate(nn.Module):
    def __init__(self, config: PretrainedConfig):
        super().__init__()
        self.dense = Linear(config.hidden_size, config.intermediate_size)
        self.intermediate_act_fn = get_activation(config.hidden_act, "hidden_act")

    def forward(self, hidden_states: Tensor) -> Tensor:
        return self.intermediate_act_fn(self.dense(hidden_states))


class BertOutput(nn.Module):
    def __init__(self, config: PretrainedConfig):
        super().__init__()
        self.dense = Linear(config.intermediate_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden_states: Tensor, input_tensor: Tensor) -> Tensor:
        return self.LayerNorm(self.dropout(self.dense(hidden_states)) + input_tensor)


class BertLayer(nn.Module):
    def __init__(self, config: PretrainedConfig):
        super().__init__()
        self.attention = BertAttention(config)
        self.crossattention = None
        if config.add_cross_attention:
            if not config.is_decoder:
                raise ConfigError("add_cross_attention=True needs is_decoder=True: cross-attention only exists "
                                  "in decoders")
            self.crossattention = BertAttention(config, is_cross_attention=True)
        self.intermediate = BertIntermediate(config)
        self.output = BertOutput(config)

    def forward(self, hidden_states: Tensor, attention_mask: Optional[Tensor], causal: bool,
                encoder_hidden_states: Optional[Tensor], encoder_attention_mask: Optional[Tensor],
                cache: Optional[KVCache], layer_idx: int, rows: Optional[TokenRows] = None) -> Tensor:
        """``rows``: see :meth:`BertSelfAttention.forward`; the rest of the layer works token by token."""
        attention_output = self.attention(hidden_states, attention_mask, causal, cache, layer_idx, rows)
        has_source = encoder_hidden_states is not None or (
            cache is not None and cache.attends_cached_source and cache.get_cross(layer_idx) is not None)
        if self.crossattention is not None and has_source:
            attention_output = self.crossattention(attention_output, encoder_hidden_states, encoder_attention_mask,
                                                   cache, layer_idx)
        return self.output(self.intermediate(attention_output), attention_output)


class BertEncoder(nn.Module):
    """The stack of layers (transformers' name, also when it runs as a decoder)."""

    def __init__(self, config: PretrainedConfig):
        super().__init__()
        self.layer = nn.ModuleList([BertLayer(config) for _ in range(config.num_hidden_layers)])

    @property
    def has_cross_attention(self) -> bool:
        return len(self.layer) > 0 and all(layer.crossattention is not None for layer in self.layer)

    def forward(self, hidden_states: Tensor, attention_mask: Optional[Tensor], causal: bool,
                encoder_hidden_states: Optional[Tensor], encoder_attention_mask: Optional[Tensor],
                cache: Optional[KVCache], output_hidden_states: bool,
                rows: Optional[TokenRows] = None) -> tuple[Tensor, Optional[tuple[Tensor, ...]]]:
        all_hidden = [hidden_states] if output_hidden_states else None
        for i, layer in enumerate(self.layer):
            hidden_states = layer(hidden_states, attention_mask, causal, encoder_hidden_states,
                                  encoder_attention_mask, cache, i, rows)
            if all_hidden is not None:
                all_hidden.append(hidden_states)
        if cache is not None:
            cache.advance(hidden_states.shape[1])
        return hidden_states, tuple(all_hidden) if all_hidden is not None else None


class BertPooler(nn.Module):
    def __init__(self, config: PretrainedConfig):
        super().__init__()
        self.dense = Linear(config.hidden_size, config.hidden_size)

    def forward(self, hidden_states: Tensor) -> Tensor:
        return torch.tanh(self.dense(hidden_states[:, 0]))


# ---- heads -------------------------------------------------------------------------------
class BertPredictionHeadTransform(nn.Module):
    def __init__(self, config: PretrainedConfig):
        super().__init__()
        self.dense = Linear(config.hidden_size, config.hidden_size)
        self.transform_act_fn = get_activation(config.hidden_act, "hidden_act")
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, hidden_states: Tensor) -> Tensor:
        return self.LayerNorm(self.transform_act_fn(self.dense(hidden_states)))


class BertLMPredictionHead(nn.Module):
    def __init__(self, config: PretrainedConfig):
        super().__init__()
        self.transform = BertPredictionHeadTransform(config)
        self.decoder = Linear(config.hidden_size, config.vocab_size)
        # Output-only bias; ``decoder.bias`` is tied to it when the word embeddings are tied.
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def forward(self, hidden_states: Tensor) -> Tensor:
        return self.decoder(self.transform(hidden_states))


class BertOnlyMLMHead(nn.Module):
    def __init__(self, config: PretrainedConfig):
        super().__init__()
        self.predictions = BertLMPredictionHead(config)

    def forward(self, sequence_output: Tensor) -> Tensor:
        return self.predictions(sequence_output)


# ---- shared model logic ------------------------------------------------------------------
_SKIP_INIT = contextvars.ContextVar("pygen_bert_skip_init", default=False)


@contextlib.contextmanager
def skip_init() -> Iterator[None]:
    """Build models without initialising weights (``from_pretrained`` initialises once, after)."""
    token = _SKIP_INIT.set(True)
    try:
        yield
    finally:
        _SKIP_INIT.reset(token)


def init_skipped() -> bool:
    return _SKIP_INIT.get()


class BertFamilyPreTrainedModel(PreTrainedModel):
    """Loading and initialisation shared by the BERT, RoBERTa and BertGeneration classes."""

    def post_init(self) -> None:
        if not init_skipped():
            self.init_weights()

    @classmethod
    def _from_config_for_loading(cls, config: PretrainedConfig, **init_kwargs: Any):
        with skip_init():
            return cls(config, **init_kwargs)

    @classmethod
    def remap_state_dict(cls, state: dict[str, Tensor], config: PretrainedConfig) -> dict[str, Tensor]:
        return remap_bert_keys(state)

    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        # The LM heads' output bias is a bare parameter that no layer type above covers.
        bias = getattr(module, "bias", None)
        if isinstance(bias, nn.Parameter) and not isinstance(module, (nn.Linear, nn.LayerNorm)):
            nn.init.zeros_(bias)


class BertStackMixin:
    """The forward of the bare models: embeddings, then the layer stack.

    The class using it has ``config``, ``embeddings`` (a :class:`BertEmbeddings`-like module)
    and ``encoder`` (a :class:`BertEncoder`).
    """

    config: PretrainedConfig
    embeddings: nn.Module
    encoder: BertEncoder

    def get_input_embeddings(self) -> nn.Module:
        return self.embeddings.word_embeddings

    def _check_inputs(self, input_ids: Optional[Tensor], inputs_embeds: Optional[Tensor],
                      attention_mask: Optional[Tensor], token_type_ids: Optional[Tensor],
                      position_ids: Optional[Tensor], encoder_hidden_states: Optional[Tensor],
                      encoder_attention_mask: Optional[Tensor], cache: Optional[KVCache],
                      names: Optional[dict[str, str]] = None) -> None:
        """Check the inputs before anything runs; ``names`` says how the caller spelled each argument
        (an ``EncoderDecoderModel`` passes ``decoder_input_ids``, ``encoder_outputs``...)."""
        names = names or ARGUMENT_NAMES
        config = self.config
        weight = self.embeddings.word_embeddings.weight
        device = weight.device
        if (input_ids is None) == (inputs_embeds is None):
            raise InputError(f"pass exactly one of {names['input_ids']} and {names['inputs_embeds']}")
        if input_ids is not None:
            main = names["input_ids"]
            batch, length = _check_ids(main, input_ids, config.vocab_size, f"vocab_size is {config.vocab_size}",
                                       device)
        else:
            main = names["inputs_embeds"]
            batch, length = checks.check_embeds(main, inputs_embeds, config.hidden_size, device, weight.dtype)
        past = cache.length if cache is not None else 0
        if position_ids is None:
            if past + length > self.embeddings.max_length():
                cached = f" (cached {past} + new {length})" if past else ""
                raise InputError(f"{main} has {past + length} positions{cached}: longer than the model's maximum "
                                 f"of {self.embeddings.max_length()} (max_position_embeddings)")
        else:
            _check_ids(names["position_ids"], position_ids, config.max_position_embeddings,
                       f"max_position_embeddings is {config.max_position_embeddings}", device)
            if position_ids.shape[1] != length or position_ids.shape[0] not in (1, batch):
                raise InputError(f"{names['position_ids']} must be [{batch}, {length}], "
                                 f"got {tuple(position_ids.shape)}")
        _check_mask(names["attention_mask"], attention_mask, (batch, past + length), device)
        if token_type_ids is not None:
            type_vocab = config.type_vocab_size
            _check_ids(names["token_type_ids"], token_type_ids, type_vocab, f"type_vocab_size is {type_vocab}",
                       device)
            if tuple(token_type_ids.shape) != (batch, length):
                raise InputError(f"{names['token_type_ids']} must be [{batch}, {length}], "
                                 f"got {tuple(token_type_ids.shape)}")
        source = names["encoder_hidden_states"]
        if encoder_hidden_states is not None:
            if not self.encoder.has_cross_attention:
                raise InputError(f"{source} were given but this {type(self).__name__} has no "
                                 "cross-attention (build it with is_decoder=True, add_cross_attention=True)")
            kv_group = cache.kv_group if cache is not None else 1
            checks.check_tensor(source, encoder_hidden_states)
            shape = tuple(encoder_hidden_states.shape)
            if len(shape) != 3 or shape[2] != config.hidden_size or not shape[1] or not shape[0]:
                raise InputError(f"{source} must be [{batch // kv_group}, source_len, "
                                 f"{config.hidden_size}], got {shape}")
            if shape[0] * kv_group != batch:
                need = "they must match" if kv_group == 1 else \
                    f"{batch} rows in groups of {kv_group} need {batch // kv_group} source rows"
                raise InputError(f"{main} has batch {batch} but {source} has batch {shape[0]}: {need}")
            checks.check_embeds(source, encoder_hidden_states, config.hidden_size, device, weight.dtype)
            _check_mask(names["encoder_attention_mask"], encoder_attention_mask, shape[:2], device)
        elif encoder_attention_mask is not None:  # a source cached by an earlier call
            checks.check_tensor(names["encoder_attention_mask"], encoder_attention_mask)
            checks.check_device(names["encoder_attention_mask"], encoder_attention_mask, device)

    def _run_stack(self, input_ids: Optional[Tensor], attention_mask: Optional[Tensor],
                   position_ids: Optional[Tensor], inputs_embeds: Optional[Tensor],
                   encoder_hidden_states: Optional[Tensor], encoder_attention_mask: Optional[Tensor],
                   past_key_values: Optional[KVCache], use_cache: Optional[bool],
                   output_attentions: Optional[bool], output_hidden_states: Optional[bool],
                   token_type_ids: Optional[Tensor] = None, check_inputs: bool = True):
        """Returns (last hidden state, all hidden states or None, cache or None)."""
        config = self.config
        if output_attentions or (output_attentions is None and config.output_attentions):
            raise InputError("output_attentions is not supported: pygen's fused attention does not materialise "
                             "attention probabilities")
        if output_hidden_states is None:
            output_hidden_states = config.output_hidden_states
        # As transformers: only decoders cache, and they do by default.
        use_cache = (config.use_cache if use_cache is None else use_cache) and config.is_decoder
        if past_key_values is not None and not isinstance(past_key_values, KVCache):
            raise InputError(f"past_key_values must be a pygen KVCache, got {type(past_key_values).__name__}")
        cache = past_key_values
        if cache is None and use_cache:
            cache = KVCache(config.num_hidden_layers)
        if check_inputs:
            self._check_inputs(input_ids, inputs_embeds, attention_mask, token_type_ids, position_ids,
                               encoder_hidden_states, encoder_attention_mask, cache)
        past = cache.length if cache is not None else 0
        type_kwargs = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
        embedding_output = self.embeddings(input_ids=input_ids, position_ids=position_ids,
                                           inputs_embeds=inputs_embeds, past_key_values_length=past, **type_kwargs)
        if encoder_attention_mask is None and encoder_hidden_states is None and cache is not None:
            encoder_attention_mask = cache.cross_mask
        hidden, all_hidden = self.encoder(embedding_output, attention_mask, config.is_decoder,
                                          encoder_hidden_states, encoder_attention_mask, cache,
                                          output_hidden_states)
        return hidden, all_hidden, cache if use_cache else None

    @torch.no_grad()
    def encode_unpadded(self, input_ids: Tensor, attention_mask: Optional[Tensor],
                        token_type_ids: Optional[Tensor] = None) -> Tensor:
        """Generation's encoder pass (inside an EncoderDecoderModel): ``forward``'s last hidden state
        at the real tokens and zeros at the padding, which only masked cross-attention keys read.
        The layers run on the real tokens only (:mod:`pygen.models._unpadded`); in training mode
        (dropout) or for a decoder this is ``forward``."""
        types = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
        if self.training or self.config.is_decoder:
            return self(input_ids=input_ids, attention_mask=attention_mask, return_dict=True, **types).last_hidden_state
        self._check_inputs(input_ids, None, attention_mask, token_type_ids, None, None, None, None)
        hidden = self.embeddings(input_ids=input_ids, position_ids=None, inputs_embeds=None, past_key_values_length=0,
                                 **types)
        rows = TokenRows.of(attention_mask)
        if rows is not None:
            hidden = rows.pack(hidden)
        hidden, _ = self.encoder(hidden, attention_mask, False, None, None, None, False, rows)
        return hidden if rows is None else rows.unpack(hidden)


def causal_lm_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """Next-token cross-entropy: position i predicts label i + 1; -100 is ignored (mean over the rest)."""
    shifted = F.pad(labels, (0, 1), value=-100)[:, 1:]
    return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), shifted.reshape(-1), ignore_index=-100)


def generation_position_ids(attention_mask: Optional[Tensor], past: int, length: int, device) -> Tensor:
    """Position ids of the ``length`` newest tokens as transformers' ``generate`` computes them for
    decoder-only models: the count of real tokens before each one (padding gets 0)."""
    if attention_mask is None:
        return torch.arange(past, past + length, device=device)[None]
    positions = attention_mask.long().cumsum(-1) - 1
    return positions.masked_fill(attention_mask == 0, 0)[:, -length:]


class BertCausalLMMixin(GenerationMixin):
    """Causal-LM forward (logits, shifted loss) and the generation protocol of the LM-head models.

    The class using it holds its bare model under ``base_model_prefix`` and defines
    ``lm_logits(hidden_states)``.
    """

    config: PretrainedConfig
    base_model_prefix: str

    def lm_logits(self, hidden_states: Tensor) -> Tensor:
        raise NotImplementedError

    @property
    def backbone(self) -> BertStackMixin:
        return getattr(self, self.base_model_prefix)

    def get_input_embeddings(self) -> nn.Module:
        return self.backbone.get_input_embeddings()

    @property
    def has_cross_attention(self) -> bool:
        return self.backbone.encoder.has_cross_attention

    def _warn_if_not_decoder(self) -> None:
        if not self.config.is_decoder:
            logger.warning("%s is meant to run as a decoder: pass is_decoder=True to use it standalone",
                           type(self).__name__)

    def _lm_forward(self, input_ids, attention_mask, position_ids, inputs_embeds, encoder_hidden_states,
                    encoder_attention_mask, labels, past_key_values, use_cache, output_attentions,
                    output_hidden_states, return_dict, logits_to_keep, token_type_ids=None):
        if labels is not None:
            use_cache = False
        hidden, all_hidden, cache = self.backbone._run_stack(
            input_ids, attention_mask, position_ids, inputs_embeds, encoder_hidden_states, encoder_attention_mask,
            past_key_values, use_cache, output_attentions, output_hidden_states, token_type_ids)
        if isinstance(logits_to_keep, int):
            hidden = hidden[:, -logits_to_keep:] if logits_to_keep else hidden
        else:
            hidden = hidden[:, logits_to_keep]
        logits = self.lm_logits(hidden)
        loss = None
        if labels is not None:
            labels = check_labels(labels, tuple(logits.shape[:2]), self.config.vocab_size, logits.device)
            loss = causal_lm_loss(logits, labels)
        out = CausalLMOutputWithCrossAttentions(loss=loss, logits=logits, past_key_values=cache,
                                                hidden_states=all_hidden)
        return out if (self.config.return_dict if return_dict is None else return_dict) else out.to_tuple()

    # ---- generation protocol (pygen.generation.protocol) ----------------------------------
    def gen_encode(self, input_ids: Tensor, attention_mask: Tensor) -> None:
        return None

    def gen_new_cache(self, encoder_hidden_states: Optional[Tensor], encoder_attention_mask: Optional[Tensor],
                      batch_size: int, kv_group: int, capacity: int) -> KVCache:
        cache = KVCache(self.config.num_hidden_layers, capacity)
        cache.kv_group = kv_group
        cache.attends_cached_source = True
        if encoder_hidden_states is None:
            return cache
        if not self.has_cross_attention:
            raise InputError(f"encoder_hidden_states were given but this {type(self).__name__} has no "
                             "cross-attention")
        shape = tuple(encoder_hidden_states.shape)
        if len(shape) != 3 or shape[0] * kv_group != batch_size or shape[2] != self.config.hidden_size:
            raise InputError(f"encoder_hidden_states must be [{batch_size // max(kv_group, 1)}, source_len, "
                             f"{self.config.hidden_size}] for {batch_size} rows in groups of {kv_group}, "
                             f"got {shape}")
        _check_mask("encoder_attention_mask", encoder_attention_mask, shape[:2])
        rows = TokenRows.of(encoder_attention_mask)  # keys/values of the real tokens only
        states = encoder_hidden_states if rows is None else rows.pack(encoder_hidden_states)
        for i, layer in enumerate(self.backbone.encoder.layer):
            cache.set_cross(i, *layer.crossattention.self.project_kv(states, rows))
        cache.cross_mask = encoder_attention_mask.bool() if encoder_attention_mask is not None else None
        return cache

    def gen_step(self, input_ids: Tensor, cache: KVCache, attention_mask: Optional[Tensor] = None) -> Tensor:
        return self.gen_step_outputs(input_ids, cache, attention_mask, False, False).logits

    def gen_step_outputs(self, input_ids: Tensor, cache: KVCache, attention_mask: Optional[Tensor],
                         output_attentions: bool, output_hidden_states: bool) -> StepOutputs:
        _check_mask("attention_mask", attention_mask, (input_ids.shape[0], cache.length + input_ids.shape[1]))
        positions = generation_position_ids(attention_mask, cache.length, input_ids.shape[1], input_ids.device)
        return self.decode_step_outputs(input_ids, cache, attention_mask, positions, output_attentions,
                                        output_hidden_states)

    def gen_max_positions(self, explicit_positions: bool = True) -> int:
        """The most positions (prompt + generated, cached included) :meth:`decode_step` accepts: with
        explicit position ids (decoder-only generation) ``max_position_embeddings``, else what the
        model's own position ids can address (RoBERTa's start after the padding id)."""
        if explicit_positions:
            return self.config.max_position_embeddings
        return self.backbone.embeddings.max_length()

    def decode_step(self, input_ids: Tensor, cache: KVCache, attention_mask: Optional[Tensor] = None,
                    position_ids: Optional[Tensor] = None) -> Tensor:
        """Logits of the newest tokens, attending to (and extending) ``cache``; ``position_ids=None``
        uses the model's own positions (as inside an encoder-decoder)."""
        return self.decode_step_outputs(input_ids, cache, attention_mask, position_ids).logits

    def decode_step_outputs(self, input_ids: Tensor, cache: KVCache, attention_mask: Optional[Tensor] = None,
                            position_ids: Optional[Tensor] = None, output_attentions: bool = False,
                            output_hidden_states: bool = False) -> StepOutputs:
        """:meth:`decode_step` with the hidden states on request (attention probabilities are not
        materialised by this family: asking for them is an InputError, as in ``forward``).

        Token values are checked for the prompt only: later tokens come from the model, and
        checking them would cost a device sync per step.
        """
        embeddings = self.backbone.embeddings
        device = embeddings.word_embeddings.weight.device
        if cache.length == 0:
            _check_ids("input_ids", input_ids, self.config.vocab_size, f"vocab_size is {self.config.vocab_size}",
                       device)
        _check_mask("attention_mask", attention_mask, (input_ids.shape[0], cache.length + input_ids.shape[1]))
        total = cache.length + input_ids.shape[1]
        limit = self.gen_max_positions(position_ids is not None)
        if total > limit:
            cached = f" (cached {cache.length} + new {input_ids.shape[1]})" if cache.length else ""
            raise InputError(f"input_ids reach {total} positions{cached}: longer than the model's maximum of {limit} "
                             "(max_position_embeddings)")
        hidden, all_hidden, _ = self.backbone._run_stack(input_ids, attention_mask, position_ids, None, None, None,
                                                         cache, True, output_attentions, output_hidden_states,
                                                         check_inputs=False)
        return StepOutputs(self.lm_logits(hidden), None, None, all_hidden)


# ---- BERT --------------------------------------------------------------------------------
class BertPreTrainedModel(BertFamilyPreTrainedModel):
    config_class = BertConfig
    base_model_prefix = "bert"


class BertModelMixin(BertStackMixin):
    """The bare-model body shared by BertModel and RobertaModel, which differ only in their
    embeddings (``embeddings_class``) and config class."""

    embeddings_class: type

    def __init__(self, config, add_pooling_layer: bool = True):
        super().__init__(config)
        self.embeddings = self.embeddings_class(config)
        self.encoder = BertEncoder(config)
        self.pooler = BertPooler(config) if add_pooling_layer else None
        self.post_init()

    def forward(self, input_ids: Optional[Tensor] = None, attention_mask: Optional[Tensor] = None,
                token_type_ids: Optional[Tensor] = None, position_ids: Optional[Tensor] = None,
                inputs_embeds: Optional[Tensor] = None, encoder_hidden_states: Optional[Tensor] = None,
                encoder_attention_mask: Optional[Tensor] = None, past_key_values: Optional[KVCache] = None,
                use_cache: Optional[bool] = None, output_attentions: Optional[bool] = None,
                output_hidden_states: Optional[bool] = None, return_dict: Optional[bool] = None):
        hidden, all_hidden, cache = self._run_stack(
            input_ids, attention_mask, position_ids, inputs_embeds, encoder_hidden_states, encoder_attention_mask,
            past_key_values, use_cache, output_attentions, output_hidden_states, token_type_ids)
        out = BaseModelOutputWithPoolingAndCrossAttentions(
            last_hidden_state=hidden, pooler_output=self.pooler(hidden) if self.pooler is not None else None,
            past_key_values=cache, hidden_states=all_hidden)
        return out if (self.config.return_dict if return_dict is None else return_dict) else out.to_tuple()


class BertModel(BertModelMixin, BertPreTrainedModel):
    """Bare BERT: an encoder, or (``is_decoder``) a causal decoder with optional cross-attention."""

    embeddings_class = BertEmbeddings


class BertLMHeadModel(BertCausalLMMixin, BertPreTrainedModel):
    """BERT with a language-modelling head, as a causal decoder (``is_decoder=True``)."""

    tied_weights = {
        "cls.predictions.decoder.weight": "bert.embeddings.word_embeddings.weight",
        "cls.predictions.decoder.bias": "cls.predictions.bias",
    }

    def __init__(self, config: BertConfig):
        super().__init__(config)
        self._warn_if_not_decoder()
        with skip_init():  # initialised once, with the head, by post_init below
            self.bert = BertModel(config, add_pooling_layer=False)
        self.cls = BertOnlyMLMHead(config)
        self.post_init()

    def get_output_embeddings(self) -> nn.Module:
        return self.cls.predictions.decoder

    def lm_logits(self, hidden_states: Tensor) -> Tensor:
        return self.cls(hidden_states)

    def forward(self, input_ids: Optional[Tensor] = None, attention_mask: Optional[Tensor] = None,
                token_type_ids: Optional[Tensor] = None, position_ids: Optional[Tensor] = None,
                inputs_embeds: Optional[Tensor] = None, encoder_hidden_states: Optional[Tensor] = None,
                encoder_attention_mask: Optional[Tensor] = None, labels: Optional[Tensor] = None,
                past_key_values: Optional[KVCache] = None, use_cache: Optional[bool] = None,
                output_attentions: Optional[bool] = None, output_hidden_states: Optional[bool] = None,
                return_dict: Optional[bool] = None, logits_to_keep: Union[int, Tensor] = 0):
        return self._lm_forward(input_ids, attention_mask, position_ids, inputs_embeds, encoder_hidden_states,
                                encoder_attention_mask, labels, past_key_values, use_cache, output_attentions,
                                output_hidden_states, return_dict, logits_to_keep, token_type_ids)
