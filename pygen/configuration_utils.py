"""Model configuration base class, reading and writing transformers' ``config.json``.

Each model config lists its fields once, with defaults, in ``defaults``. Values are
type-checked against those defaults so a config file with ``"d_model": "768"``
fails loudly instead of producing garbage later.
"""
from __future__ import annotations

import copy
import json
import logging
import os
from pathlib import Path
from typing import Any, ClassVar

from .errors import ConfigError, PygenError
from .hub import resolve_pretrained

logger = logging.getLogger(__name__)

CONFIG_NAME = "config.json"

# Fields every transformers config carries (PretrainedConfig's own).
COMMON_DEFAULTS: dict[str, Any] = {
    "architectures": None,
    "dtype": None,
    "is_encoder_decoder": False,
    "is_decoder": False,
    "add_cross_attention": False,
    "tie_word_embeddings": True,
    "tie_encoder_decoder": False,
    "output_hidden_states": False,
    "output_attentions": False,
    "return_dict": True,
    "use_cache": True,
    "bos_token_id": None,
    "pad_token_id": None,
    "eos_token_id": None,
    "sep_token_id": None,
    "decoder_start_token_id": None,
    "forced_bos_token_id": None,
    "forced_eos_token_id": None,
    "id2label": None,
    "label2id": None,
    "problem_type": None,
    "chunk_size_feed_forward": 0,
    "task_specific_params": None,
    "prefix": None,
    "finetuning_task": None,
    "tokenizer_class": None,
}

# num_labels becomes a dict of that many default names: refuse counts no head could have.
_MAX_LABELS = 2**20

# Keys transformers writes that carry no model meaning.
_IGNORED_KEYS = {"transformers_version", "_name_or_path", "_commit_hash", "_attn_implementation_autoset",
                 "_attn_implementation", "torch_dtype", "model_type", "use_return_dict"}


def _check_type(cls_name: str, key: str, value: Any, default: Any) -> Any:
    """Validate ``value`` against the type of ``default``; return the (possibly coerced) value."""
    if value is None or default is None:
        return value
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{cls_name}.{key} must be a bool, got {type(value).__name__} {value!r}")
    elif isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise ConfigError(f"{cls_name}.{key} must be an int, got {type(value).__name__} {value!r}")
    elif isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{cls_name}.{key} must be a number, got {type(value).__name__} {value!r}")
        return float(value)
    elif isinstance(default, str):
        if not isinstance(value, str):
            raise ConfigError(f"{cls_name}.{key} must be a string, got {type(value).__name__} {value!r}")
    return value


_MAX_JSON_DEPTH = 64  # real configs nest 3 levels; deeper ones would overflow copy.deepcopy


def check_json_depth(data: Any, path: Any, error: type[Exception] = ConfigError) -> None:
    """Refuse JSON nested deeper than any config is (raising ``error``): json.loads accepts what
    later deep copies of the values cannot handle (RecursionError), so the file is refused up front."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > _MAX_JSON_DEPTH:
            raise error(f"{path} is nested more than {_MAX_JSON_DEPTH} levels deep")
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))


def _check_free_name(cls: type, key: str) -> None:
    """An unknown config key becomes an attribute: refuse names that would replace a method or a
    read-only attribute of the class (``to_dict``, ``_validate``, ``__class__``...)."""
    attr = getattr(cls, key, None)
    if attr is None and not hasattr(cls, key):
        return
    if isinstance(attr, property) and attr.fset is not None:
        return  # e.g. num_labels: the setter handles it
    raise ConfigError(f"{cls.__name__}: config key {key!r} clashes with an attribute of the class")


def check_sizes(config: "PretrainedConfig", positive: tuple[str, ...] = (), non_negative: tuple[str, ...] = ()) -> None:
    """Size fields no model can be built from: ``positive`` ones must be >= 1 (heads, widths,
    vocabulary, positions), ``non_negative`` ones >= 0 (layer counts, feed-forward widths: 0 builds a
    working, if degenerate, model in transformers too). Raises :class:`ConfigError` naming the field."""
    name = type(config).__name__
    for keys, low in ((positive, 1), (non_negative, 0)):
        for key in keys:
            value = getattr(config, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"{name}.{key} must be an integer >= {low}, got {value!r}")


def _label_map(cls_name: str, id2label: Any) -> dict[int, Any]:
    """``id2label`` with integer keys (JSON object keys are strings)."""
    if not isinstance(id2label, dict):
        raise ConfigError(f"{cls_name}.id2label must be a mapping of label ids to names, got "
                          f"{type(id2label).__name__}")
    try:
        return {int(k): v for k, v in id2label.items()}
    except (TypeError, ValueError):
        raise ConfigError(f"{cls_name}.id2label keys must be integers, got {list(id2label)[:5]!r}") from None


class PretrainedConfig:
    """Base of all pygen configs: attribute access, JSON I/O, type checks."""

    model_type: ClassVar[str] = ""
    defaults: ClassVar[dict[str, Any]] = {}
    # old name -> current name (transformers' attribute_map)
    attribute_map: ClassVar[dict[str, str]] = {}

    def __init__(self, **kwargs: Any):
        kwargs.pop("model_type", None)
        if "torch_dtype" in kwargs and kwargs.get("dtype") is None:
            kwargs["dtype"] = kwargs.pop("torch_dtype")
        for key in list(kwargs):
            if key in self.attribute_map:
                kwargs[self.attribute_map[key]] = kwargs.pop(key)
        fields = {**COMMON_DEFAULTS, **self.defaults}
        name = type(self).__name__
        labels, count = kwargs.get("id2label"), kwargs.get("num_labels")
        if isinstance(labels, dict) and isinstance(count, int) and len(labels) != count:
            logger.warning("%s: num_labels=%d does not match the %d entries of id2label; the labels become "
                           "LABEL_0..LABEL_%d (as in transformers)", name, count, len(labels), count - 1)
        for key, default in fields.items():
            value = kwargs.pop(key, copy.deepcopy(default))
            object.__setattr__(self, key, _check_type(name, key, value, default))
        # Unknown keys are kept, as transformers does: real checkpoints carry many.
        for key, value in kwargs.items():
            if key in _IGNORED_KEYS:
                continue
            _check_free_name(type(self), key)
            object.__setattr__(self, key, value)
        if self.id2label is not None:
            self.id2label = _label_map(name, self.id2label)
        else:
            self.num_labels = 2  # as transformers: LABEL_0 and LABEL_1 unless told otherwise
        self._validate()

    def _validate(self) -> None:
        """Subclasses check cross-field constraints here."""

    def __getattr__(self, key: str) -> Any:
        amap = type(self).attribute_map
        if key in amap:
            return getattr(self, amap[key])
        raise AttributeError(f"{type(self).__name__} has no attribute {key!r}")

    def __setattr__(self, key: str, value: Any) -> None:
        key = type(self).attribute_map.get(key, key)
        default = {**COMMON_DEFAULTS, **self.defaults}.get(key)
        object.__setattr__(self, key, _check_type(type(self).__name__, key, value, default))

    @property
    def num_labels(self) -> int:
        return len(self.id2label) if self.id2label is not None else 2

    @num_labels.setter
    def num_labels(self, num_labels: int) -> None:
        # As transformers: the count is stored as default label names, not as a field.
        if isinstance(num_labels, bool) or not isinstance(num_labels, int) or not 0 <= num_labels <= _MAX_LABELS:
            raise ConfigError(f"{type(self).__name__}.num_labels must be an int in [0, {_MAX_LABELS}], "
                              f"got {num_labels!r}")
        if self.id2label is None or len(self.id2label) != num_labels:
            self.id2label = {i: f"LABEL_{i}" for i in range(num_labels)}
            self.label2id = {label: i for i, label in self.id2label.items()}

    @property
    def use_return_dict(self) -> bool:
        return self.return_dict

    def known_keys(self) -> set[str]:
        return set(COMMON_DEFAULTS) | set(self.defaults) | set(self.attribute_map)

    def update(self, overrides: dict[str, Any], strict: bool = True) -> None:
        """Set fields from ``overrides``; unknown keys raise :class:`ConfigError` when ``strict``."""
        known = self.known_keys()
        for key, value in overrides.items():
            if strict and key not in known and not hasattr(self, key):
                raise ConfigError(f"{type(self).__name__} has no field {key!r}")
            if key not in known:
                _check_free_name(type(self), key)
            setattr(self, key, value)

    # ---- serialisation -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out = {}
        for key, value in self.__dict__.items():
            if key.startswith("_"):
                continue
            if isinstance(value, PretrainedConfig):
                value = value.to_dict()
            out[key] = copy.deepcopy(value)
        out["model_type"] = self.model_type
        if out.get("dtype") is not None:
            out["dtype"] = str(out["dtype"]).replace("torch.", "")
        return out

    def to_json_string(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    def save_pretrained(self, save_directory: str | os.PathLike) -> None:
        path = Path(save_directory)
        path.mkdir(parents=True, exist_ok=True)
        (path / CONFIG_NAME).write_text(self.to_json_string())

    @classmethod
    def from_dict(cls, data: dict[str, Any], **overrides: Any) -> "PretrainedConfig":
        if not isinstance(data, dict):
            raise ConfigError(f"config must be a JSON object, got {type(data).__name__}")
        try:
            config = cls(**data)
        except PygenError:
            raise
        except (TypeError, ValueError, AttributeError, KeyError, IndexError, ArithmeticError, RecursionError) as exc:
            # A value of the wrong type or range that a config class did not check itself.
            raise ConfigError(f"invalid {cls.__name__}: {type(exc).__name__}: {exc}") from exc
        config.update(overrides)
        return config

    @classmethod
    def from_json_file(cls, path: str | os.PathLike) -> dict[str, Any]:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"missing config file {path}")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read {path}: {exc}") from None
        except RecursionError:
            raise ConfigError(f"{path} is not valid JSON: nested too deeply") from None
        except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, over-long integer literals
            raise ConfigError(f"{path} is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path} must hold a JSON object, got {type(data).__name__}")
        check_json_depth(data, path)
        return data

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike, **overrides: Any) -> Any:
        """The config of a checkpoint directory (or a hub id in the local cache); ``overrides`` set
        fields. With ``return_unused_kwargs=True``, overrides that are not fields come back unused,
        as ``(config, unused)``, instead of raising."""
        return_unused = bool(overrides.pop("return_unused_kwargs", False))
        data = cls.from_json_file(resolve_pretrained(name_or_path, overrides) / CONFIG_NAME)
        model_type = data.get("model_type")
        if cls.model_type and model_type and model_type != cls.model_type and not cls.accepts_model_type(model_type):
            raise ConfigError(
                f"{name_or_path} holds a checkpoint of model_type {model_type!r}, which {cls.__name__} cannot read"
            )
        return _finish_loading(cls, data, name_or_path, overrides, return_unused)

    @property
    def name_or_path(self) -> str:
        """Where ``from_pretrained`` read this config from ("" for one built in code)."""
        return self.__dict__.get("_name_or_path", "")

    @name_or_path.setter
    def name_or_path(self, value: str) -> None:
        object.__setattr__(self, "_name_or_path", str(value))

    @classmethod
    def accepts_model_type(cls, model_type: str) -> bool:
        """Whether a checkpoint of another ``model_type`` can be read into this config."""
        return False

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PretrainedConfig) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"{type(self).__name__} {self.to_json_string()}"


def _finish_loading(cls: type[PretrainedConfig], data: dict[str, Any], name_or_path: Any, overrides: dict[str, Any],
                    return_unused: bool) -> Any:
    """``cls`` from a config.json's ``data`` and the caller's overrides, remembering where it came from."""
    unused = {}
    if return_unused:  # overrides that name no field come back instead of raising
        known = {*COMMON_DEFAULTS, *cls.defaults, *cls.attribute_map, *data, "num_labels"}
        unused = {k: overrides.pop(k) for k in list(overrides) if k not in known}
    config = cls.from_dict(data, **overrides)
    config.name_or_path = str(name_or_path)
    return (config, unused) if return_unused else config


_CONFIG_REGISTRY: dict[str, type[PretrainedConfig]] = {}


def register_config(cls: type[PretrainedConfig]) -> type[PretrainedConfig]:
    """Class decorator: make ``cls`` findable by its ``model_type``."""
    _CONFIG_REGISTRY[cls.model_type] = cls
    return cls


def config_class_for(model_type: str) -> type[PretrainedConfig]:
    if not isinstance(model_type, str):
        raise ConfigError(f"model_type must be a string, got {type(model_type).__name__} {model_type!r}")
    if model_type not in _CONFIG_REGISTRY:
        raise ConfigError(
            f"unknown model_type {model_type!r}; pygen supports: {', '.join(sorted(_CONFIG_REGISTRY))}"
        )
    return _CONFIG_REGISTRY[model_type]


class AutoConfig:
    """Reads ``config.json`` and returns the config class its ``model_type`` names."""

    def __init__(self):
        raise TypeError("AutoConfig is a factory: use AutoConfig.from_pretrained(path)")

    @staticmethod
    def from_pretrained(name_or_path: str | os.PathLike, **overrides: Any) -> Any:
        """As :meth:`PretrainedConfig.from_pretrained`, for the class of the checkpoint's ``model_type``."""
        return_unused = bool(overrides.pop("return_unused_kwargs", False))
        data = PretrainedConfig.from_json_file(resolve_pretrained(name_or_path, overrides) / CONFIG_NAME)
        model_type = data.get("model_type")
        if not model_type:
            raise ConfigError(f"{name_or_path}/config.json has no 'model_type'")
        return _finish_loading(config_class_for(model_type), data, name_or_path, overrides, return_unused)
