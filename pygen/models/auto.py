"""Auto classes: pick the model class of a checkpoint from its ``config.json``.

As in transformers, ``model_type`` chooses the family and each auto class maps a family to one
task class (``AutoModelForSeq2SeqLM`` on a ``bart`` checkpoint gives
``BartForConditionalGeneration``). Where a family has several classes for a task, the one
named in ``architectures`` wins. Model modules are imported on first use, so the auto classes
work with whichever families are installed.
"""
from __future__ import annotations

import importlib
import os
from typing import Any, ClassVar

from ..configuration_utils import CONFIG_NAME, PretrainedConfig
from ..errors import ConfigError
from ..hub import resolve, resolve_pretrained

# model_type -> module under pygen.models
FAMILY_MODULES: dict[str, str] = {
    "bart": "bart",
    "bert": "bert",
    "roberta": "roberta",
    "bert-generation": "bert_generation",
    "encoder-decoder": "encoder_decoder",
    "perceiver": "perceiver",
}

# Per auto class, model_type -> accepted class names, the default first.
MODEL_MAPPING: dict[str, tuple[str, ...]] = {
    "bart": ("BartModel",),
    "bert": ("BertModel",),
    "roberta": ("RobertaModel",),
    "bert-generation": ("BertGenerationEncoder",),
    "encoder-decoder": ("EncoderDecoderModel",),
    "perceiver": ("PerceiverModel",),
}
SEQ2SEQ_LM_MAPPING: dict[str, tuple[str, ...]] = {
    "bart": ("BartForConditionalGeneration",),
    "encoder-decoder": ("EncoderDecoderModel",),
}
MASKED_LM_MAPPING: dict[str, tuple[str, ...]] = {
    "bart": ("BartForConditionalGeneration",),
    "bert": ("BertForMaskedLM",),
    "roberta": ("RobertaForMaskedLM",),
    "perceiver": ("PerceiverForMaskedLM",),
}
CAUSAL_LM_MAPPING: dict[str, tuple[str, ...]] = {
    "bart": ("BartForCausalLM",),
    "bert": ("BertLMHeadModel",),
    "roberta": ("RobertaForCausalLM",),
    "bert-generation": ("BertGenerationDecoder",),
}
SEQUENCE_CLASSIFICATION_MAPPING: dict[str, tuple[str, ...]] = {"bart": ("BartForSequenceClassification",)}
QUESTION_ANSWERING_MAPPING: dict[str, tuple[str, ...]] = {"bart": ("BartForQuestionAnswering",)}


def read_model_type(name_or_path: str | os.PathLike) -> tuple[str, list[str]]:
    """(``model_type``, ``architectures``) of a checkpoint's config.json, checked against pygen's families."""
    path = resolve(name_or_path) / CONFIG_NAME
    data = PretrainedConfig.from_json_file(path)
    model_type = data.get("model_type")
    if not model_type:
        raise ConfigError(f"{path} has no 'model_type'")
    if model_type not in FAMILY_MODULES:
        raise ConfigError(
            f"{name_or_path} holds a {model_type!r} checkpoint, an unsupported model family; "
            f"pygen supports: {', '.join(sorted(FAMILY_MODULES))}"
        )
    return model_type, list(data.get("architectures") or [])


def model_class(model_type: str, class_name: str) -> type:
    """The pygen class ``class_name`` of family ``model_type``; ConfigError if pygen lacks it."""
    module_name = f"{__package__}.{FAMILY_MODULES[model_type]}"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        raise ConfigError(f"pygen has no implementation of the {model_type!r} family yet") from None
    if not hasattr(module, class_name):
        raise ConfigError(f"pygen's {model_type!r} family has no {class_name}")
    return getattr(module, class_name)


def architecture_class(name_or_path: str | os.PathLike) -> type:
    """The class named in the checkpoint's ``architectures`` if pygen has it, else the family's base model."""
    model_type, architectures = read_model_type(name_or_path)
    for name in architectures:
        try:
            return model_class(model_type, name)
        except ConfigError:
            continue
    return model_class(model_type, MODEL_MAPPING[model_type][0])


class _AutoModelBase:
    mapping: ClassVar[dict[str, tuple[str, ...]]] = {}

    def __init__(self):
        raise TypeError(f"{type(self).__name__} is a factory: use {type(self).__name__}.from_pretrained(path)")

    @classmethod
    def _class_for(cls, model_type: str, architectures: list[str], source: Any) -> type:
        if model_type not in cls.mapping:
            raise ConfigError(
                f"{cls.__name__} does not support {model_type!r} checkpoints ({source}); "
                f"it supports: {', '.join(sorted(cls.mapping))}"
            )
        accepted = cls.mapping[model_type]
        preferred = next((name for name in architectures if name in accepted), accepted[0])
        return model_class(model_type, preferred)

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike, *args: Any, **kwargs: Any):
        directory = resolve_pretrained(name_or_path, dict(kwargs))  # the class's from_pretrained reads them too
        model_type, architectures = read_model_type(directory)
        return cls._class_for(model_type, architectures, name_or_path).from_pretrained(name_or_path, *args, **kwargs)

    @classmethod
    def from_config(cls, config: PretrainedConfig):
        architectures = list(getattr(config, "architectures", None) or [])
        return cls._class_for(config.model_type, architectures, type(config).__name__).from_config(config)


class AutoModel(_AutoModelBase):
    mapping = MODEL_MAPPING


class AutoModelForSeq2SeqLM(_AutoModelBase):
    mapping = SEQ2SEQ_LM_MAPPING


class AutoModelForMaskedLM(_AutoModelBase):
    mapping = MASKED_LM_MAPPING


class AutoModelForCausalLM(_AutoModelBase):
    mapping = CAUSAL_LM_MAPPING


class AutoModelForSequenceClassification(_AutoModelBase):
    mapping = SEQUENCE_CLASSIFICATION_MAPPING


class AutoModelForQuestionAnswering(_AutoModelBase):
    mapping = QUESTION_ANSWERING_MAPPING
