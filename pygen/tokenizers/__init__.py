"""Tokenizers compatible with transformers' (same classes, files, defaults and outputs).

BART/RoBERTa and BERT run on the ``tokenizers`` library; BertGeneration uses
``sentencepiece``; Perceiver is pure Python.
"""
from .auto import AutoTokenizer
from .base import BatchEncoding, PreTrainedTokenizerBase
from .bert import BertTokenizer, BertTokenizerFast
from .bert_generation import BertGenerationTokenizer
from .fast import TokenizersBackend
from .perceiver import PerceiverTokenizer
from .python import PythonBackend
from .roberta import BartTokenizer, BartTokenizerFast, RobertaTokenizer, RobertaTokenizerFast

__all__ = [
    "AutoTokenizer",
    "BartTokenizer",
    "BartTokenizerFast",
    "BatchEncoding",
    "BertGenerationTokenizer",
    "BertTokenizer",
    "BertTokenizerFast",
    "PerceiverTokenizer",
    "PreTrainedTokenizerBase",
    "PythonBackend",
    "RobertaTokenizer",
    "RobertaTokenizerFast",
    "TokenizersBackend",
]
