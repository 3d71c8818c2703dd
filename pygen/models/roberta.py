"""RoBERTa (``RobertaModel``, ``RobertaForCausalLM``): BERT's layers with padding-aware positions.

Everything below the embeddings is :mod:`pygen.models.bert`'s implementation; RoBERTa's
own parts are its position ids (counted from ``pad_token_id + 1``, padding keeps the padding
position) and its LM head.
"""
from __future__ import annotations

from typing import Optional, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..cache import KVCache
from ..configuration_utils import register_config
from ..errors import ConfigError
from ..ops import Linear
from .bert import (BERT_FAMILY, BertCausalLMMixin, BertConfig, BertEmbeddings, BertFamilyPreTrainedModel,
                   BertModelMixin, skip_init)


@register_config
class RobertaConfig(BertConfig):
    """Configuration of RoBERTa models (defaults: ``roberta-base``)."""

    model_type = "roberta"
    defaults = {**BertConfig.defaults, "vocab_size": 50265, "pad_token_id": 1}

    def __init__(self, **kwargs):
        # Set here rather than in ``defaults``: eos_token_id may also be a list, which the
        # int type check of a default would reject.
        kwargs.setdefault("bos_token_id", 0)
        kwargs.setdefault("eos_token_id", 2)
        super().__init__(**kwargs)

    @classmethod
    def accepts_model_type(cls, model_type: str) -> bool:
        return model_type in BERT_FAMILY


class RobertaEmbeddings(BertEmbeddings):
    """BERT's embeddings, but positions start after ``padding_idx`` and padding tokens keep it."""

    def __init__(self, config: RobertaConfig):
        super().__init__(config)
        if config.pad_token_id is None:
            raise ConfigError("RoBERTa needs pad_token_id: its position ids are counted from it")
        self.padding_idx = config.pad_token_id
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size,
                                                padding_idx=self.padding_idx)

    def max_length(self) -> int:
        return self.position_embeddings.num_embeddings - self.padding_idx - 1

    def default_position_ids(self, input_ids: Optional[Tensor], inputs_embeds: Optional[Tensor],
                             past_key_values_length: int) -> Tensor:
        if input_ids is None:
            # Padding cannot be seen in embeddings; transformers also ignores the cached length here.
            length = inputs_embeds.shape[1]
            positions = torch.arange(self.padding_idx + 1, length + self.padding_idx + 1, device=inputs_embeds.device)
            return positions[None].expand(inputs_embeds.shape[:2])
        real = input_ids.ne(self.padding_idx).long()
        return (real.cumsum(1) + past_key_values_length) * real + self.padding_idx


class RobertaPreTrainedModel(BertFamilyPreTrainedModel):
    config_class = RobertaConfig
    base_model_prefix = "roberta"


class RobertaModel(BertModelMixin, RobertaPreTrainedModel):
    """Bare RoBERTa: an encoder, or (``is_decoder``) a causal decoder with optional cross-attention."""

    embeddings_class = RobertaEmbeddings


class RobertaLMHead(nn.Module):
    def __init__(self, config: RobertaConfig):
        super().__init__()
        self.dense = Linear(config.hidden_size, config.hidden_size)
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.decoder = Linear(config.hidden_size, config.vocab_size)
        # Output-only bias; ``decoder.bias`` is tied to it when the word embeddings are tied.
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def forward(self, features: Tensor) -> Tensor:
        # Always the exact gelu, whatever config.hidden_act says (as transformers).
        return self.decoder(self.layer_norm(F.gelu(self.dense(features))))


class RobertaForCausalLM(BertCausalLMMixin, RobertaPreTrainedModel):
    """RoBERTa with a language-modelling head, as a causal decoder (``is_decoder=True``)."""

    tied_weights = {
        "lm_head.decoder.weight": "roberta.embeddings.word_embeddings.weight",
        "lm_head.decoder.bias": "lm_head.bias",
    }

    def __init__(self, config: RobertaConfig):
        super().__init__(config)
        self._warn_if_not_decoder()
        with skip_init():  # initialised once, with the head, by post_init below
            self.roberta = RobertaModel(config, add_pooling_layer=False)
        self.lm_head = RobertaLMHead(config)
        self.post_init()

    def get_output_embeddings(self) -> nn.Module:
        return self.lm_head.decoder

    def lm_logits(self, hidden_states: Tensor) -> Tensor:
        return self.lm_head(hidden_states)

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
