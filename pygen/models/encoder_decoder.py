"""``EncoderDecoderModel``: any BERT-family encoder with any BERT-family causal decoder
(bert2bert, roberta2roberta, BertGeneration, mixed), as transformers' ``EncoderDecoderModel``.

Supported sub-models, by the ``model_type`` of their config (encoder / decoder class):

- ``bert``: ``BertModel`` / ``BertLMHeadModel``
- ``roberta``: ``RobertaModel`` / ``RobertaForCausalLM``
- ``bert-generation``: ``BertGenerationEncoder`` / ``BertGenerationDecoder``

When the hidden sizes differ, ``enc_to_dec_proj`` maps encoder states to the decoder's size.
"""
from __future__ import annotations

import logging
import os
from typing import Any, Optional

import torch.nn.functional as F
from torch import Tensor, nn

from ..cache import KVCache
from ..configuration_utils import AutoConfig, PretrainedConfig, config_class_for, register_config
from ..errors import ConfigError, InputError
from ..generation.mixin import GenerationMixin
from ..generation.protocol import StepOutputs
from ..hub import resolve_pretrained
from ..modeling_outputs import BaseModelOutput, Seq2SeqLMOutput
from ..modeling_utils import PreTrainedModel
from ..ops import Linear
from .bert import (BertCausalLMMixin, BertConfig, BertLMHeadModel, BertModel, check_labels, init_skipped,
                   remap_bert_keys, skip_init)
from . import _checks as checks
from .bert_generation import BertGenerationDecoder, BertGenerationEncoder
from .roberta import RobertaForCausalLM, RobertaModel

logger = logging.getLogger("pygen")

ENCODER_CLASSES: dict[str, type[PreTrainedModel]] = {
    "bert": BertModel, "roberta": RobertaModel, "bert-generation": BertGenerationEncoder}
DECODER_CLASSES: dict[str, type[PreTrainedModel]] = {
    "bert": BertLMHeadModel, "roberta": RobertaForCausalLM, "bert-generation": BertGenerationDecoder}


# How this model names the decoder's arguments (in error messages).
DECODER_ARGUMENT_NAMES = {"input_ids": "decoder_input_ids", "inputs_embeds": "decoder_inputs_embeds",
                          "attention_mask": "decoder_attention_mask", "token_type_ids": "decoder_token_type_ids",
                          "position_ids": "decoder_position_ids", "encoder_hidden_states": "encoder_outputs",
                          "encoder_attention_mask": "attention_mask"}


def _model_class(table: dict[str, type[PreTrainedModel]], config: PretrainedConfig, role: str):
    if config.model_type not in table:
        raise ConfigError(f"{role} of model type {config.model_type!r} is not supported in an EncoderDecoderModel; "
                          f"supported: {', '.join(sorted(table))}")
    return table[config.model_type]


def _sub_config(value: Any, role: str, **init_kwargs: Any) -> PretrainedConfig:
    """A sub-config from a config, a dict with ``model_type`` (config.json) or None (BERT defaults)."""
    if value is None:
        return BertConfig(**init_kwargs)
    if isinstance(value, PretrainedConfig):
        return value
    if isinstance(value, dict):
        if not value.get("model_type"):
            raise ConfigError(f"the {role} config has no 'model_type'")
        return config_class_for(value["model_type"]).from_dict(value)
    raise ConfigError(f"{role} must be a config or a dict, got {type(value).__name__}")


@register_config
class EncoderDecoderConfig(PretrainedConfig):
    """Holds the ``encoder`` and ``decoder`` configs (each with its own ``model_type``)."""

    model_type = "encoder-decoder"
    defaults = {"encoder": None, "decoder": None, "is_encoder_decoder": True}

    def __init__(self, encoder: Any = None, decoder: Any = None, **kwargs: Any):
        super().__init__(encoder=_sub_config(encoder, "encoder"),
                         decoder=_sub_config(decoder, "decoder", is_decoder=True, add_cross_attention=True),
                         **kwargs)

    @classmethod
    def from_encoder_decoder_configs(cls, encoder_config: PretrainedConfig, decoder_config: PretrainedConfig,
                                     **kwargs: Any) -> "EncoderDecoderConfig":
        """Combine two configs; the decoder's is switched (in place, as transformers) to a
        cross-attending decoder."""
        decoder_config.is_decoder = True
        decoder_config.add_cross_attention = True
        return cls(encoder=encoder_config.to_dict(), decoder=decoder_config.to_dict(), **kwargs)


def shift_tokens_right(input_ids: Tensor, pad_token_id: Optional[int], decoder_start_token_id: Optional[int]) -> Tensor:
    """Decoder inputs for teacher forcing: ``decoder_start_token_id`` then the labels minus the last,
    with the ignored label -100 replaced by ``pad_token_id``."""
    if decoder_start_token_id is None:
        raise ConfigError("labels were given without decoder_input_ids, so the decoder inputs are built from the "
                          "labels, which needs model.config.decoder_start_token_id: set it (e.g. to the "
                          "tokenizer's cls_token_id)")
    if pad_token_id is None:
        raise ConfigError("labels were given without decoder_input_ids, so the decoder inputs are built from the "
                          "labels, which needs model.config.pad_token_id: set it (e.g. to the tokenizer's "
                          "pad_token_id)")
    shifted = input_ids.new_empty(input_ids.shape)
    shifted[:, 1:] = input_ids[:, :-1]
    shifted[:, 0] = decoder_start_token_id
    return shifted.masked_fill(shifted == -100, pad_token_id)


def _split_config_kwargs(config: PretrainedConfig, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Set the kwargs that name config fields on ``config``; return the others (loading options)."""
    rest = {}
    for key, value in kwargs.items():
        if key in config.known_keys() or hasattr(config, key):
            setattr(config, key, value)
        else:
            rest[key] = value
    return rest


class EncoderDecoderModel(GenerationMixin, PreTrainedModel):
    """An encoder and a cross-attending causal decoder; the loss is computed here, on unshifted labels."""

    config_class = EncoderDecoderConfig
    base_model_prefix = "encoder_decoder"
    main_input_name = "input_ids"

    def __init__(self, config: Optional[EncoderDecoderConfig] = None, encoder: Optional[PreTrainedModel] = None,
                 decoder: Optional[PreTrainedModel] = None):
        if config is None:
            if encoder is None or decoder is None:
                raise ConfigError("EncoderDecoderModel needs a config, or both an encoder and a decoder")
            config = EncoderDecoderConfig.from_encoder_decoder_configs(encoder.config, decoder.config)
        elif not isinstance(config, EncoderDecoderConfig):
            raise ConfigError(f"EncoderDecoderModel needs an EncoderDecoderConfig, got {type(config).__name__}")
        cross_size = getattr(config.decoder, "cross_attention_hidden_size", None)
        if cross_size is not None and cross_size != config.encoder.hidden_size:
            raise ConfigError(f"decoder cross_attention_hidden_size ({cross_size}) must equal the encoder's "
                              f"hidden_size ({config.encoder.hidden_size})")
        super().__init__(config)

        built = []  # sub-models made here (not passed in) are initialised here
        with skip_init():
            if encoder is None:
                encoder = _model_class(ENCODER_CLASSES, config.encoder, "encoder")(config.encoder)
                built.append(encoder)
            if decoder is None:
                decoder = _model_class(DECODER_CLASSES, config.decoder, "decoder")(config.decoder)
                built.append(decoder)
        self.encoder = encoder
        self.decoder = decoder
        for role, model in (("encoder", encoder), ("decoder", decoder)):
            shared = getattr(config, role)
            if model.config.to_dict() != shared.to_dict():
                logger.warning("Config of the %s %s is overwritten by the shared %s config of the "
                               "EncoderDecoderConfig", role, type(model).__name__, role)
            # Sub-models read the shared config, so later edits of model.config.decoder apply.
            for module in model.modules():
                if isinstance(module, PreTrainedModel):
                    module.config = shared

        if encoder.get_output_embeddings() is not None:
            raise ConfigError(f"the encoder {type(encoder).__name__} has an LM head; use a bare model "
                              "(BertModel, RobertaModel, BertGenerationEncoder)")
        if not isinstance(decoder, BertCausalLMMixin):
            raise ConfigError(f"the decoder {type(decoder).__name__} is not supported; use BertLMHeadModel, "
                              "RobertaForCausalLM or BertGenerationDecoder")
        if not decoder.has_cross_attention:
            raise ConfigError(f"the decoder {type(decoder).__name__} was built without cross-attention layers, so "
                              "it cannot read the encoder: build it with is_decoder=True and "
                              "add_cross_attention=True (from_encoder_decoder_pretrained does this)")

        self.enc_to_dec_proj = None
        if config.encoder.hidden_size != config.decoder.hidden_size and cross_size is None:
            self.enc_to_dec_proj = Linear(config.encoder.hidden_size, config.decoder.hidden_size)
        if not init_skipped():
            for model in built:
                model.init_weights()
            self._init_projection()
            self.tie_weights()

    # ---- weights ------------------------------------------------------------------------
    @property
    def tied_weights(self) -> dict[str, str]:  # type: ignore[override]
        """The sub-models' own ties (each by its own config), under their attribute names."""
        ties = {}
        for role in ("encoder", "decoder"):
            model = getattr(self, role)
            if getattr(model.config, "tie_word_embeddings", True):
                ties.update({f"{role}.{target}": f"{role}.{source}" for target, source in model.tied_weights.items()})
        return ties

    def _init_projection(self) -> None:
        if self.enc_to_dec_proj is not None:
            self.decoder._init_weights(self.enc_to_dec_proj)

    def init_weights(self) -> None:
        self.encoder.init_weights()
        self.decoder.init_weights()
        self._init_projection()
        self.tie_weights()

    @classmethod
    def _from_config_for_loading(cls, config: EncoderDecoderConfig, **init_kwargs: Any):
        with skip_init():
            return cls(config, **init_kwargs)

    @classmethod
    def remap_state_dict(cls, state: dict[str, Tensor], config: PretrainedConfig) -> dict[str, Tensor]:
        return remap_bert_keys(state)

    def load_checkpoint_state(self, state: dict[str, Tensor], **kwargs: Any) -> dict[str, Any]:
        if self.config.tie_encoder_decoder:
            state = self._fill_tied_decoder_weights(remap_bert_keys(state))
        return super().load_checkpoint_state(state, **kwargs)

    def _fill_tied_decoder_weights(self, state: dict[str, Tensor]) -> dict[str, Tensor]:
        """With ``tie_encoder_decoder`` the decoder's layers share the encoder's weights, so checkpoints
        may store them once, under ``encoder.``: take the decoder's copies from there when absent."""
        own = self.state_dict()
        prefix = f"decoder.{self.decoder.base_model_prefix}."
        filled = dict(state)
        for key, value in state.items():
            if key.startswith("encoder."):
                target = prefix + key[len("encoder."):]
                if target in own and target not in state:
                    filled[target] = value
        return filled

    def resize_token_embeddings(self, *args: Any, **kwargs: Any) -> nn.Module:
        raise NotImplementedError("Resizing the embeddings of an EncoderDecoderModel directly is not supported (as in "
                                  "transformers): call resize_token_embeddings on model.encoder and model.decoder")

    def get_input_embeddings(self) -> nn.Module:
        return self.encoder.get_input_embeddings()

    def get_output_embeddings(self) -> nn.Module:
        return self.decoder.get_output_embeddings()

    # ---- construction from two checkpoints ----------------------------------------------
    @classmethod
    def from_encoder_decoder_pretrained(cls, encoder_pretrained_model_name_or_path: Optional[str | os.PathLike] = None,
                                        decoder_pretrained_model_name_or_path: Optional[str | os.PathLike] = None,
                                        *model_args: Any, **kwargs: Any) -> "EncoderDecoderModel":
        """Warm-start from an encoder checkpoint and a decoder checkpoint (often the same one).

        ``encoder_*``/``decoder_*`` kwargs go to the encoder/decoder (config fields, or loading
        options such as ``dtype``; ``encoder_model``/``decoder_model`` pass a built model,
        ``encoder_config``/``decoder_config`` a config); the rest set fields of the
        :class:`EncoderDecoderConfig`. The decoder always gets cross-attention (new weights,
        reported as newly initialised when the checkpoint has none).
        """
        if model_args:
            raise TypeError("from_encoder_decoder_pretrained takes the two paths as its only positional arguments")
        kwargs_encoder = {key[len("encoder_"):]: kwargs.pop(key) for key in list(kwargs) if key.startswith("encoder_")}
        kwargs_decoder = {key[len("decoder_"):]: kwargs.pop(key) for key in list(kwargs) if key.startswith("decoder_")}

        encoder = kwargs_encoder.pop("model", None)
        if encoder is None:
            if encoder_pretrained_model_name_or_path is None:
                raise ConfigError("pass encoder_pretrained_model_name_or_path (or a built encoder_model)")
            # cache_dir / revision select the snapshot once, for the config read and the weights
            encoder_pretrained_model_name_or_path = resolve_pretrained(encoder_pretrained_model_name_or_path,
                                                                       kwargs_encoder)
            config = kwargs_encoder.pop("config", None)
            if config is None:
                config = AutoConfig.from_pretrained(encoder_pretrained_model_name_or_path)
                kwargs_encoder = _split_config_kwargs(config, kwargs_encoder)
                if config.is_decoder or config.add_cross_attention:
                    logger.info("Initialising %s as an encoder: cross-attention and the causal mask are disabled",
                                encoder_pretrained_model_name_or_path)
                    config.is_decoder = False
                    config.add_cross_attention = False
            encoder = _model_class(ENCODER_CLASSES, config, "encoder").from_pretrained(
                encoder_pretrained_model_name_or_path, config=config, **kwargs_encoder)

        decoder = kwargs_decoder.pop("model", None)
        if decoder is None:
            if decoder_pretrained_model_name_or_path is None:
                raise ConfigError("pass decoder_pretrained_model_name_or_path (or a built decoder_model)")
            # cache_dir / revision select the snapshot once, for the config read and the weights
            decoder_pretrained_model_name_or_path = resolve_pretrained(decoder_pretrained_model_name_or_path,
                                                                       kwargs_decoder)
            config = kwargs_decoder.pop("config", None)
            if config is None:
                config = AutoConfig.from_pretrained(decoder_pretrained_model_name_or_path)
                kwargs_decoder = _split_config_kwargs(config, kwargs_decoder)
            if not config.is_decoder or not config.add_cross_attention:
                logger.info("Initialising %s as a decoder: cross-attention layers are added (newly initialised "
                            "unless the checkpoint has them)", decoder_pretrained_model_name_or_path)
                config.is_decoder = True
                config.add_cross_attention = True
            decoder = _model_class(DECODER_CLASSES, config, "decoder").from_pretrained(
                decoder_pretrained_model_name_or_path, config=config, **kwargs_decoder)

        config = EncoderDecoderConfig.from_encoder_decoder_configs(encoder.config, decoder.config, **kwargs)
        return cls(config=config, encoder=encoder, decoder=decoder)

    # ---- forward ------------------------------------------------------------------------
    def project_encoder_states(self, encoder_hidden_states: Tensor) -> Tensor:
        if self.enc_to_dec_proj is None:
            return encoder_hidden_states
        return self.enc_to_dec_proj(encoder_hidden_states)

    def prepare_decoder_input_ids_from_labels(self, labels: Tensor) -> Tensor:
        return shift_tokens_right(labels, self.config.pad_token_id, self.config.decoder_start_token_id)

    def forward(self, input_ids: Optional[Tensor] = None, attention_mask: Optional[Tensor] = None,
                decoder_input_ids: Optional[Tensor] = None, decoder_attention_mask: Optional[Tensor] = None,
                encoder_outputs: Any = None, past_key_values: Optional[KVCache] = None,
                inputs_embeds: Optional[Tensor] = None, decoder_inputs_embeds: Optional[Tensor] = None,
                labels: Optional[Tensor] = None, use_cache: Optional[bool] = None,
                output_attentions: Optional[bool] = None, output_hidden_states: Optional[bool] = None,
                return_dict: Optional[bool] = None, **kwargs: Any):
        """As transformers: other ``decoder_*`` kwargs go to the decoder (prefix removed), the rest
        to the encoder (e.g. ``token_type_ids``)."""
        kwargs_encoder = {key: value for key, value in kwargs.items() if not key.startswith("decoder_")}
        kwargs_decoder = {key[len("decoder_"):]: value for key, value in kwargs.items() if key.startswith("decoder_")}
        device = self.decoder.get_input_embeddings().weight.device
        if labels is not None:
            labels = checks.check_labels("labels", labels, self.decoder.config.vocab_size, device)
        names = DECODER_ARGUMENT_NAMES
        if encoder_outputs is None:
            # The source is the encoder's output of this input.
            names = {**names, "encoder_hidden_states": "input_ids" if inputs_embeds is None else "inputs_embeds"}
            encoder_outputs = self.encoder(input_ids=input_ids, attention_mask=attention_mask,
                                           inputs_embeds=inputs_embeds, output_attentions=output_attentions,
                                           output_hidden_states=output_hidden_states, return_dict=True,
                                           **kwargs_encoder)
        else:
            if isinstance(encoder_outputs, (tuple, list)):
                if not encoder_outputs:
                    raise InputError("encoder_outputs is empty: give the encoder's output or a tuple starting "
                                     "with its last hidden state")
                encoder_outputs = BaseModelOutput(**dict(zip(BaseModelOutput._fields, encoder_outputs)))
            source = checks.first_hidden_state("encoder_outputs", encoder_outputs)
            weight = self.encoder.get_input_embeddings().weight
            checks.check_embeds("encoder_outputs", source, self.config.encoder.hidden_size, weight.device,
                                weight.dtype)
            checks.check_mask("attention_mask", attention_mask, tuple(source.shape[:2]), weight.device)
        encoder_hidden_states = self.project_encoder_states(encoder_outputs[0])

        if labels is not None and decoder_input_ids is None and decoder_inputs_embeds is None:
            decoder_input_ids = self.prepare_decoder_input_ids_from_labels(labels)
            if decoder_attention_mask is None:
                decoder_attention_mask = (decoder_input_ids != self.config.pad_token_id).long()

        # Checked here too, so that the messages name this model's arguments (decoder_input_ids...).
        self.decoder.backbone._check_inputs(
            decoder_input_ids, decoder_inputs_embeds, decoder_attention_mask, kwargs_decoder.get("token_type_ids"),
            kwargs_decoder.get("position_ids"), encoder_hidden_states, attention_mask,
            past_key_values if isinstance(past_key_values, KVCache) else None, names=names)
        decoder_outputs = self.decoder(input_ids=decoder_input_ids, attention_mask=decoder_attention_mask,
                                       encoder_hidden_states=encoder_hidden_states,
                                       encoder_attention_mask=attention_mask, inputs_embeds=decoder_inputs_embeds,
                                       past_key_values=past_key_values, use_cache=use_cache,
                                       output_attentions=output_attentions,
                                       output_hidden_states=output_hidden_states, return_dict=True,
                                       **kwargs_decoder)
        logits = decoder_outputs.logits
        loss = None
        if labels is not None:
            # Unshifted: the decoder inputs were shifted instead.
            check_labels(labels, tuple(logits.shape[:2]), self.decoder.config.vocab_size, logits.device)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1))
        out = Seq2SeqLMOutput(loss=loss, logits=logits, past_key_values=decoder_outputs.past_key_values,
                              decoder_hidden_states=decoder_outputs.hidden_states,
                              encoder_last_hidden_state=encoder_outputs[0],
                              encoder_hidden_states=getattr(encoder_outputs, "hidden_states", None))
        return out if (self.config.return_dict if return_dict is None else return_dict) else out.to_tuple()

    # ---- generation protocol (pygen.generation.protocol) --------------------------------
    def gen_encode(self, input_ids: Tensor, attention_mask: Optional[Tensor],
                   token_type_ids: Optional[Tensor] = None) -> Tensor:
        return self.encoder.encode_unpadded(input_ids, attention_mask, token_type_ids)

    def gen_new_cache(self, encoder_hidden_states: Tensor, encoder_attention_mask: Optional[Tensor],
                      batch_size: int, kv_group: int, capacity: int) -> KVCache:
        if encoder_hidden_states is None:
            raise InputError("EncoderDecoderModel.gen_new_cache needs the encoder_hidden_states of gen_encode")
        return self.decoder.gen_new_cache(self.project_encoder_states(encoder_hidden_states), encoder_attention_mask,
                                          batch_size, kv_group, capacity)

    def gen_max_positions(self) -> int:
        """The most decoder positions :meth:`gen_step` accepts (the decoder's own position ids)."""
        return self.decoder.gen_max_positions(explicit_positions=False)

    def gen_step(self, input_ids: Tensor, cache: KVCache, attention_mask: Optional[Tensor] = None) -> Tensor:
        # The decoder keeps its own position ids here (transformers passes none to it in generate).
        return self.decoder.decode_step(input_ids, cache, attention_mask)

    def gen_step_outputs(self, input_ids: Tensor, cache: KVCache, attention_mask: Optional[Tensor],
                         output_attentions: bool, output_hidden_states: bool) -> StepOutputs:
        return self.decoder.decode_step_outputs(input_ids, cache, attention_mask, None, output_attentions,
                                                output_hidden_states)
