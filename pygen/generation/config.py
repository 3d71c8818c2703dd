"""``GenerationConfig``: generation defaults, read from and written to ``generation_config.json``.

Precedence when generating (as transformers): explicit ``generate()`` kwargs, then the model's
``generation_config`` (from ``generation_config.json``, or derived from ``config.json``).
"""
from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..hub import resolve

GENERATION_CONFIG_NAME = "generation_config.json"

DEFAULTS: dict[str, Any] = {
    # lengths
    "max_length": 20,
    "max_new_tokens": None,
    "min_length": 0,
    "min_new_tokens": None,
    "early_stopping": False,
    # strategy
    "do_sample": False,
    "num_beams": 1,
    "num_return_sequences": 1,
    # logits processing
    "temperature": 1.0,
    "top_k": 50,
    "top_p": 1.0,
    "repetition_penalty": 1.0,
    "length_penalty": 1.0,
    "no_repeat_ngram_size": 0,
    "encoder_no_repeat_ngram_size": 0,
    "bad_words_ids": None,
    "forced_bos_token_id": None,
    "forced_eos_token_id": None,
    # special tokens
    "bos_token_id": None,
    "eos_token_id": None,
    "pad_token_id": None,
    "decoder_start_token_id": None,
    # outputs
    "output_scores": False,
    "output_logits": False,
    "return_dict_in_generate": False,
    "use_cache": True,
}

# Fields an old-style config.json may carry that become generation defaults.
_FROM_MODEL_CONFIG = [k for k in DEFAULTS if k not in ("output_scores", "output_logits", "return_dict_in_generate")]


class GenerationConfig:
    """Holds generation parameters; unknown keys are kept (as transformers does)."""

    def __init__(self, **kwargs: Any):
        for key, default in DEFAULTS.items():
            setattr(self, key, kwargs.pop(key, copy.deepcopy(default)))
        kwargs.pop("transformers_version", None)
        kwargs.pop("_from_model_config", None)
        for key, value in kwargs.items():
            setattr(self, key, value)

    def to_dict(self) -> dict[str, Any]:
        return {k: copy.deepcopy(v) for k, v in self.__dict__.items() if not k.startswith("_")}

    def to_diff_dict(self) -> dict[str, Any]:
        """Only the values that differ from the defaults (what transformers writes)."""
        return {k: v for k, v in self.to_dict().items() if k not in DEFAULTS or DEFAULTS[k] != v}

    def update(self, **kwargs: Any) -> dict[str, Any]:
        """Set the known keys of ``kwargs``; return the ones that are not generation fields."""
        unused = {}
        for key, value in kwargs.items():
            if key in DEFAULTS or hasattr(self, key):
                setattr(self, key, value)
            else:
                unused[key] = value
        return unused

    def copy(self) -> "GenerationConfig":
        return GenerationConfig(**self.to_dict())

    def save_pretrained(self, save_directory: str | os.PathLike) -> None:
        path = Path(save_directory)
        path.mkdir(parents=True, exist_ok=True)
        (path / GENERATION_CONFIG_NAME).write_text(json.dumps(self.to_diff_dict(), indent=2, sort_keys=True) + "\n")

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike) -> "GenerationConfig":
        path = resolve(name_or_path) / GENERATION_CONFIG_NAME
        if not path.is_file():
            raise ConfigError(f"missing {path}")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path} is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path} must hold a JSON object")
        return cls(**data)

    @classmethod
    def from_model_config(cls, config) -> "GenerationConfig":
        """Generation defaults carried by a model ``config`` (special tokens, legacy beam settings)."""
        values = {}
        for key in _FROM_MODEL_CONFIG:
            value = getattr(config, key, None)
            if value is not None and value != DEFAULTS[key]:
                values[key] = value
        decoder = getattr(config, "decoder", None)
        if decoder is not None:  # EncoderDecoderConfig: special tokens may live on the decoder
            for key in ("bos_token_id", "eos_token_id", "pad_token_id", "decoder_start_token_id"):
                if values.get(key) is None and getattr(decoder, key, None) is not None:
                    values[key] = getattr(decoder, key)
        return cls(**values)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, GenerationConfig) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"GenerationConfig {json.dumps(self.to_diff_dict(), indent=2, sort_keys=True)}"
