"""BertGeneration (``BertGenerationEncoder``, ``BertGenerationDecoder``): BERT without token types or
pooler, made to warm-start encoder-decoder models from BERT/RoBERTa checkpoints.

The layers are :mod:`pygen.models.bert`'s. ``from_pretrained`` reads plain BERT checkpoints as
transformers does: a ``config.json`` of model type ``bert`` is accepted, the ``bert.`` prefix may
be present or not, pooler and token-type embeddings are reported unused, and the decoder's
cross-attention and LM-head bias are reported newly initialised.
"""
from __future__ import annotations

from typing import Optional, Union

import torch
from torch import Tensor, nn

from ..cache import KVCache
from ..configuration_utils import PretrainedConfig, register_config
from ..modeling_outputs import BaseModelOutputWithPastAndCrossAttentions
from ..ops import Linear
from .bert import (BERT_FAMILY, BertCausalLMMixin, BertEncoder, BertFamilyPreTrainedModel, BertStackMixin,
                   skip_init, validate_bert_sizes)


@register_config
class BertGenerationConfig(PretrainedConfig):
    """Configuration of BertGeneration models (defaults: ``google/bert_for_seq_generation_L-24_bbc_encoder``)."""

    model_type = "bert-generation"
    defaults = {
        "vocab_size": 50358,
        "hidden_size": 1024,
        "num_hidden_layers": 24,
        "num_attention_heads": 16,
        "intermediate_size": 4096,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": 512,
        "initializer_range": 0.02,
        "layer_norm_eps": 1e-12,
        "pad_token_id": 0,
        "bos_token_id": 2,
    }

    def __init__(self, **kwargs):
        # Set here rather than in ``defaults``: eos_token_id may also be a list, which the
        # int type check of a default would reject.
        kwargs.setdefault("eos_token_id", 1)
        super().__init__(**kwargs)

    @classmethod
    def accepts_model_type(cls, model_type: str) -> bool:
        return model_type in BERT_FAMILY

    def _validate(self) -> None:
        validate_bert_sizes(self)


class BertGenerationEmbeddings(nn.Module):
    """Word + absolute position embeddings, then LayerNorm and dropout (no token types)."""

    def __init__(self, config: BertGenerationConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def max_length(self) -> int:
        return self.position_embeddings.num_embeddings

    def forward(self, input_ids: Optional[Tensor] = None, position_ids: Optional[Tensor] = None,
                inputs_embeds: Optional[Tensor] = None, past_key_values_length: int = 0) -> Tensor:
        if inputs_embeds is None:
            inputs_embeds = self.word_embeddings(input_ids)
        if position_ids is None:
            start = past_key_values_length
            position_ids = torch.arange(start, start + inputs_embeds.shape[1], device=inputs_embeds.device)[None]
        embeddings = inputs_embeds + self.position_embeddings(position_ids)
        return self.dropout(self.LayerNorm(embeddings))


class BertGenerationPreTrainedModel(BertFamilyPreTrainedModel):
    config_class = BertGenerationConfig
    base_model_prefix = "bert"


class BertGenerationEncoder(BertStackMixin, BertGenerationPreTrainedModel):
    """Bare BertGeneration: an encoder, or (``is_decoder``) a causal decoder with optional cross-attention."""

    def __init__(self, config: BertGenerationConfig):
        super().__init__(config)
        self.embeddings = BertGenerationEmbeddings(config)
        self.encoder = BertEncoder(config)
        self.post_init()

    def forward(self, input_ids: Optional[Tensor] = None, attention_mask: Optional[Tensor] = None,
                position_ids: Optional[Tensor] = None, inputs_embeds: Optional[Tensor] = None,
                encoder_hidden_states: Optional[Tensor] = None, encoder_attention_mask: Optional[Tensor] = None,
                past_key_values: Optional[KVCache] = None, use_cache: Optional[bool] = None,
                output_attentions: Optional[bool] = None, output_hidden_states: Optional[bool] = None,
                return_dict: Optional[bool] = None):
        hidden, all_hidden, cache = self._run_stack(
            input_ids, attention_mask, position_ids, inputs_embeds, encoder_hidden_states, encoder_attention_mask,
            past_key_values, use_cache, output_attentions, output_hidden_states)
        out = BaseModelOutputWithPastAndCrossAttentions(last_hidden_state=hidden, past_key_values=cache,
                                                        hidden_states=all_hidden)
        return out if (self.config.return_dict if return_dict is None else return_dict) else out.to_tuple()


class BertGenerationOnlyLMHead(nn.Module):
    def __init__(self, config: BertGenerationConfig):
        super().__init__()
        self.decoder = Linear(config.hidden_size, config.vocab_size)
        # Output-only bias; ``decoder.bias`` is tied to it when the word embeddings are tied.
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def forward(self, hidden_states: Tensor) -> Tensor:
        return self.decoder(hidden_states)


class BertGenerationDecoder(BertCausalLMMixin, BertGenerationPreTrainedModel):
    """BertGeneration with a language-modelling head, as a causal decoder (``is_decoder=True``)."""

    tied_weights = {
        "lm_head.decoder.weight": "bert.embeddings.word_embeddings.weight",
        "lm_head.decoder.bias": "lm_head.bias",
    }

    def __init__(self, config: BertGenerationConfig):
        super().__init__(config)
        self._warn_if_not_decoder()
        with skip_init():  # initialised once, with the head, by post_init below
            self.bert = BertGenerationEncoder(config)
        self.lm_head = BertGenerationOnlyLMHead(config)
        self.post_init()

    def get_output_embeddings(self) -> nn.Module:
        return self.lm_head.decoder

    def lm_logits(self, hidden_states: Tensor) -> Tensor:
        return self.lm_head(hidden_states)

    def forward(self, input_ids: Optional[Tensor] = None, attention_mask: Optional[Tensor] = None,
                position_ids: Optional[Tensor] = None, inputs_embeds: Optional[Tensor] = None,
                encoder_hidden_states: Optional[Tensor] = None, encoder_attention_mask: Optional[Tensor] = None,
                labels: Optional[Tensor] = None, past_key_values: Optional[KVCache] = None,
                use_cache: Optional[bool] = None, output_attentions: Optional[bool] = None,
                output_hidden_states: Optional[bool] = None, return_dict: Optional[bool] = None,
                logits_to_keep: Union[int, Tensor] = 0):
        return self._lm_forward(input_ids, attention_mask, position_ids, inputs_embeds, encoder_hidden_states,
                                encoder_attention_mask, labels, past_key_values, use_cache, output_attentions,
                                output_hidden_states, return_dict, logits_to_keep)
