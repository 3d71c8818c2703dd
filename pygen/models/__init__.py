"""Model classes, one module per family, with transformers' names."""
from .auto import (AutoModel, AutoModelForCausalLM, AutoModelForMaskedLM, AutoModelForQuestionAnswering,
                   AutoModelForSeq2SeqLM, AutoModelForSequenceClassification)
from .bart import (BartConfig, BartDecoder, BartEncoder, BartForCausalLM, BartForConditionalGeneration,
                   BartForQuestionAnswering, BartForSequenceClassification, BartModel)
from .bert import BertConfig, BertLMHeadModel, BertModel
from .bert_generation import BertGenerationConfig, BertGenerationDecoder, BertGenerationEncoder
from .encoder_decoder import EncoderDecoderConfig, EncoderDecoderModel
from .perceiver import PerceiverConfig, PerceiverForMaskedLM, PerceiverModel
from .roberta import RobertaConfig, RobertaForCausalLM, RobertaModel

__all__ = [
    "AutoModel", "AutoModelForCausalLM", "AutoModelForMaskedLM", "AutoModelForQuestionAnswering",
    "AutoModelForSeq2SeqLM", "AutoModelForSequenceClassification",
    "BartConfig", "BartDecoder", "BartEncoder", "BartForCausalLM", "BartForConditionalGeneration",
    "BartForQuestionAnswering", "BartForSequenceClassification", "BartModel",
    "BertConfig", "BertLMHeadModel", "BertModel",
    "BertGenerationConfig", "BertGenerationDecoder", "BertGenerationEncoder",
    "EncoderDecoderConfig", "EncoderDecoderModel",
    "PerceiverConfig", "PerceiverForMaskedLM", "PerceiverModel",
    "RobertaConfig", "RobertaForCausalLM", "RobertaModel",
]
