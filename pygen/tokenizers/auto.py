"""``AutoTokenizer``: pick the tokenizer class of a checkpoint directory."""
from __future__ import annotations

import os
from pathlib import Path

from ..errors import CheckpointError, ConfigError
from ..hub import resolve_pretrained
from .base import TOKENIZER_CONFIG_FILE, TOKENIZER_FILE, PreTrainedTokenizerBase, load_tokenizer_json, read_json
from .bert import BertTokenizer
from .bert_generation import BertGenerationTokenizer
from .perceiver import PerceiverTokenizer
from .roberta import RobertaTokenizer

# transformers' class names (with or without "Fast") -> pygen class.
TOKENIZER_CLASSES: dict[str, type[PreTrainedTokenizerBase]] = {
    "BartTokenizer": RobertaTokenizer,
    "RobertaTokenizer": RobertaTokenizer,
    "BertTokenizer": BertTokenizer,
    "BertGenerationTokenizer": BertGenerationTokenizer,
    "PerceiverTokenizer": PerceiverTokenizer,
}

# config.json model_type -> tokenizer class, as in transformers' AutoTokenizer.
MODEL_TYPE_TOKENIZERS: dict[str, type[PreTrainedTokenizerBase]] = {
    "bart": RobertaTokenizer,
    "roberta": RobertaTokenizer,
    "bert": BertTokenizer,
    "bert-generation": BertGenerationTokenizer,
    "perceiver": PerceiverTokenizer,
}


class AutoTokenizer:
    """Factory: ``AutoTokenizer.from_pretrained(path)`` returns the right tokenizer class."""

    def __init__(self):
        raise TypeError("AutoTokenizer is a factory: use AutoTokenizer.from_pretrained(name_or_path)")

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike, **kwargs) -> PreTrainedTokenizerBase:
        directory = resolve_pretrained(name_or_path, dict(kwargs))  # the class's from_pretrained reads them too
        kwargs.pop("use_fast", None)  # pygen has one implementation per tokenizer
        tokenizer_class = tokenizer_class_for(directory)
        return tokenizer_class.from_pretrained(name_or_path, **kwargs)


def tokenizer_class_for(directory: Path) -> type[PreTrainedTokenizerBase]:
    """The class named by tokenizer_config.json, else by config.json's model_type, else by the files."""
    config_file = directory / TOKENIZER_CONFIG_FILE
    name = _json_field(config_file, "tokenizer_class")
    if name is not None and not isinstance(name, str):
        raise ConfigError(f"{config_file}: tokenizer_class must be a class name (a string), got {name!r}")
    if name:
        base_name = name.removesuffix("Fast")
        if base_name not in TOKENIZER_CLASSES:
            raise ConfigError(
                f"{config_file} asks for {name}, which pygen does not implement; "
                f"supported: {sorted(TOKENIZER_CLASSES)}"
            )
        return TOKENIZER_CLASSES[base_name]

    model_config_file = directory / "config.json"
    model_type = _json_field(model_config_file, "model_type")
    if model_type:
        if model_type not in MODEL_TYPE_TOKENIZERS:
            raise ConfigError(
                f"No pygen tokenizer for model_type {model_type!r} ({model_config_file}); "
                f"supported: {sorted(MODEL_TYPE_TOKENIZERS)}"
            )
        return MODEL_TYPE_TOKENIZERS[model_type]

    if (directory / TOKENIZER_FILE).is_file():
        kind = load_tokenizer_json(directory / TOKENIZER_FILE)["model"].get("type")
        if kind == "BPE":
            return RobertaTokenizer
        if kind == "WordPiece":
            return BertTokenizer
    if (directory / "vocab.json").is_file() and (directory / "merges.txt").is_file():
        return RobertaTokenizer
    if (directory / "vocab.txt").is_file():
        return BertTokenizer
    if any(directory.glob("*.model")):
        return BertGenerationTokenizer
    raise ConfigError(
        f"Cannot tell which tokenizer {directory} holds: no tokenizer_config.json with a tokenizer_class, "
        "no config.json with a model_type, and no known vocabulary files"
    )


def _json_field(path: Path, key: str):
    """``key`` of the JSON object in ``path``; None when the file is absent."""
    if not path.is_file():
        return None
    data = read_json(path)
    if not isinstance(data, dict):
        raise CheckpointError(f"{path} does not hold a JSON object")
    return data.get(key)
