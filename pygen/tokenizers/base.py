"""Shared tokenizer machinery: special tokens, call options, padding, loading and saving.

The behaviour mirrors transformers 5.x ``PreTrainedTokenizerBase`` so that a pygen
tokenizer is a drop-in replacement: same defaults, same files, same outputs.
Concrete tokenizers derive from one of the two backends (``fast.py`` wraps the
``tokenizers`` library, ``python.py`` is pure Python) which implement encoding,
decoding and the vocabulary.
"""
from __future__ import annotations

import copy
import json
import logging
import os
import warnings
from collections import UserDict
from collections.abc import Mapping
from dataclasses import dataclass
from numbers import Integral
from pathlib import Path
from typing import Any

from tokenizers import AddedToken

from ..configuration_utils import check_json_depth
from ..errors import CheckpointError, ConfigError, InputError
from ..hub import resolve_pretrained

logger = logging.getLogger(__name__)

# Same sentinel as transformers: "no limit" for model_max_length, and the bound above
# which a model_max_length is treated as unset when padding/truncating to it.
VERY_LARGE_INTEGER = int(1e30)
LARGE_INTEGER = int(1e20)

TOKENIZER_CONFIG_FILE = "tokenizer_config.json"
SPECIAL_TOKENS_MAP_FILE = "special_tokens_map.json"
ADDED_TOKENS_FILE = "added_tokens.json"
TOKENIZER_FILE = "tokenizer.json"

SPECIAL_TOKENS_ATTRIBUTES = (
    "bos_token",
    "eos_token",
    "unk_token",
    "sep_token",
    "pad_token",
    "cls_token",
    "mask_token",
)

PADDING_STRATEGIES = ("longest", "max_length", "do_not_pad")
TRUNCATION_STRATEGIES = ("longest_first", "only_first", "only_second", "do_not_truncate")

# Config entries that describe where files were found rather than how to tokenize;
# they are never passed on to a constructor nor written back.
_PRIVATE_CONFIG_KEYS = frozenset(
    {
        "name_or_path",
        "_name_or_path",
        "tokenizer_class",
        "tokenizer_file",
        "vocab_file",
        "merges_file",
        "special_tokens_map_file",
        "added_tokens_file",
        "is_local",
        "local_files_only",
        "backend",
        "files_loaded",
        "init_inputs",
        "auto_map",
        "processor_class",
        "use_fast",
    }
)


def added_token_from_json(value: Any) -> Any:
    """Turn serialized AddedToken dicts (anywhere in ``value``) back into ``AddedToken``s."""
    if isinstance(value, dict) and value.get("__type") == "AddedToken":
        fields = {k: v for k, v in value.items() if k != "__type"}
        return AddedToken(**fields)
    if isinstance(value, dict):
        return {k: added_token_from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [added_token_from_json(v) for v in value]
    return value


def added_token_state(token: AddedToken) -> dict[str, Any]:
    """The JSON form of an AddedToken, as transformers writes it."""
    state = token.__getstate__()
    return {k: state[k] for k in ("content", "lstrip", "normalized", "rstrip", "single_word", "special")}


def _to_json(value: Any) -> Any:
    if isinstance(value, AddedToken):
        return {"__type": "AddedToken", **added_token_state(value)}
    if isinstance(value, dict):
        return {k: _to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_json(v) for v in value]
    return value


def read_json(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except RecursionError:
        raise CheckpointError(f"Could not read tokenizer file {path}: nested too deeply") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"Could not read tokenizer file {path}: {exc}") from exc
    check_json_depth(data, path, CheckpointError)
    return data


def load_tokenizer_json(path: Path) -> dict[str, Any]:
    """A parsed tokenizer.json, checked to be a serialized ``tokenizers.Tokenizer``."""
    data = read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("model"), dict):
        raise CheckpointError(f"{path} is not a tokenizers serialization (no 'model' section)")
    return data


def write_json(path: Path, data: Any) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def to_python_ids(value: Any) -> Any:
    """Tensors and arrays (or lists of them) as plain Python ints and lists."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        if value and (hasattr(value[0], "tolist") or isinstance(value[0], (list, tuple))):
            return [to_python_ids(v) for v in value]
        return list(value)
    return value


def _is_int(value: Any) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool)


# Lengths are machine integers in the tokenizers library (and list sizes in Python).
_MAX_LENGTH = 2**63 - 1


def _token_index(value: Any) -> int:
    """A token id read from a file: a non-negative integer (JSON object keys are strings)."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"token id {value!r} is not an integer")
    index = int(value)
    if index < 0:
        raise ValueError(f"token id {index} is negative")
    return index


def _check_pad_to_multiple_of(value: Any) -> int | None:
    """``pad_to_multiple_of``: None, or a positive int; 0 means no multiple (as the Rust backend reads it)."""
    if value is None:
        return None
    if not _is_int(value) or not 0 <= value <= _MAX_LENGTH:
        raise InputError(f"pad_to_multiple_of must be a positive int (at most 2**63 - 1) or None, got {value!r}")
    return int(value) or None


def _model_max_length(value: Any) -> int:
    """``model_max_length`` from a config or kwargs: an integer (floats such as 1e30 allowed); None = no limit."""
    if value is None:
        return VERY_LARGE_INTEGER
    if isinstance(value, bool) or not isinstance(value, (Integral, float)) or value != value \
            or value in (float("inf"), float("-inf")):
        raise ConfigError(f"model_max_length must be an integer, got {value!r}")
    return int(value)


def check_bool_options(cls_name: str, **options: Any) -> None:
    """Tokenizer options that must be booleans (they come from tokenizer_config.json)."""
    for name, value in options.items():
        if not isinstance(value, bool):
            raise ConfigError(f"{cls_name}: {name} must be true or false, got {value!r}")


def _as_ids(value: Any) -> list[int] | None:
    """``value`` as a list of Python ints, or None when it is not a sequence of integers."""
    if _is_int(value):
        return [int(value)]
    if isinstance(value, list) and all(_is_int(i) for i in value):
        return [int(i) for i in value]
    return None


class BatchEncoding(UserDict):
    """The dict returned by a tokenizer call, with attribute access and tensor conversion.

    Integer indexing returns the ``tokenizers.Encoding`` of that batch item when the
    tokenizer is backed by the ``tokenizers`` library.
    """

    def __init__(self, data=None, encodings=None, tensor_type: str | None = None, prepend_batch_axis=False):
        super().__init__(data)
        self._encodings = encodings
        self.convert_to_tensors(tensor_type, prepend_batch_axis=prepend_batch_axis)

    def __getitem__(self, item):
        if isinstance(item, str):
            return self.data[item]
        if self._encodings is not None:
            return self._encodings[item]
        if isinstance(item, slice):
            return {key: value[item] for key, value in self.data.items()}
        raise KeyError(f"Invalid key {item!r}: use a field name, or a slice")

    def __getattr__(self, item: str):
        # Only reached for names that are not real attributes: expose the fields.
        try:
            return self.__dict__["data"][item]
        except KeyError:
            raise AttributeError(item) from None

    def __getstate__(self):
        return {"data": self.data, "encodings": self._encodings}

    def __setstate__(self, state):
        self.data = state["data"]
        self._encodings = state["encodings"]

    @property
    def encodings(self):
        return self._encodings

    def _encoding(self, batch_index: int):
        if not self._encodings:
            raise InputError("token-level information is only available from tokenizers-backed tokenizers")
        return self._encodings[batch_index]

    def tokens(self, batch_index: int = 0) -> list[str]:
        return self._encoding(batch_index).tokens

    def word_ids(self, batch_index: int = 0) -> list[int | None]:
        return self._encoding(batch_index).word_ids

    def sequence_ids(self, batch_index: int = 0) -> list[int | None]:
        return self._encoding(batch_index).sequence_ids

    def convert_to_tensors(self, tensor_type: str | None = None, prepend_batch_axis: bool = False):
        """Convert every field to ``"pt"`` (torch) or ``"np"`` (numpy) arrays, in place."""
        tensor_type = getattr(tensor_type, "value", tensor_type)
        if tensor_type is None:
            return self
        if tensor_type == "pt":
            import torch

            def as_tensor(value):
                return torch.tensor(value, dtype=torch.int64 if _is_empty(value) else None)

            is_tensor = torch.is_tensor
        elif tensor_type == "np":
            import numpy as np

            def as_tensor(value):
                return np.asarray(value, dtype=np.int64 if _is_empty(value) else None)

            def is_tensor(value):
                return isinstance(value, np.ndarray)
        else:
            raise InputError(f"return_tensors must be None, 'pt' or 'np', got {tensor_type!r}")
        for key, value in self.data.items():
            if prepend_batch_axis:
                value = [value]
            if is_tensor(value):
                continue
            try:
                self.data[key] = as_tensor(value)
            except (ValueError, TypeError) as exc:
                raise InputError(
                    f"Unable to create a tensor from `{key}`: the sequences have different lengths. "
                    "Use padding=True (and truncation=True) to get batched tensors."
                ) from exc
        return self

    def to(self, device, *, non_blocking: bool = False) -> "BatchEncoding":
        """Move every tensor field to ``device`` (torch only); other values are left as they are."""
        self.data = {
            key: value.to(device=device, non_blocking=non_blocking) if hasattr(value, "to") else value
            for key, value in self.data.items()
        }
        return self


def _is_empty(value) -> bool:
    """True for an empty (possibly nested) list: torch/numpy would infer a float dtype."""
    if isinstance(value, (list, tuple)):
        return all(_is_empty(v) for v in value)
    return False


@dataclass
class EncodeRequest:
    """Resolved options of one ``__call__``: strategies validated, defaults filled in."""

    add_special_tokens: bool
    padding: str
    truncation: str
    max_length: int | None
    stride: int
    pad_to_multiple_of: int | None
    padding_side: str
    return_tensors: str | None
    return_token_type_ids: bool
    return_attention_mask: bool
    return_special_tokens_mask: bool
    return_offsets_mapping: bool
    return_length: bool
    is_split_into_words: bool
    return_overflowing_tokens: bool = False


class _SpecialToken:
    """Descriptor for ``bos_token``, ``pad_token``...: the token as a string (or None)."""

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        token = obj._special_tokens.get(self.name)
        return None if token is None else str(token)

    def __set__(self, obj, value):
        if value is not None and not isinstance(value, (str, AddedToken)):
            raise InputError(f"{self.name} must be a string or an AddedToken, got {type(value).__name__}")
        obj._special_tokens[self.name] = value


class _SpecialTokenId:
    """Descriptor for ``bos_token_id``, ``pad_token_id``...: the id of the matching token."""

    def __init__(self, token_attribute: str):
        self.token_attribute = token_attribute

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        token = getattr(obj, self.token_attribute)
        return None if token is None else obj.convert_tokens_to_ids(token)

    def __set__(self, obj, value):
        setattr(obj, self.token_attribute, None if value is None else obj.convert_ids_to_tokens(value))


class PreTrainedTokenizerBase:
    """Base class of every pygen tokenizer (special tokens, call options, I/O)."""

    vocab_files_names: dict[str, str] = {}
    model_input_names: list[str] = ["input_ids", "attention_mask"]
    padding_side: str = "right"
    truncation_side: str = "right"

    bos_token = _SpecialToken()
    eos_token = _SpecialToken()
    unk_token = _SpecialToken()
    sep_token = _SpecialToken()
    pad_token = _SpecialToken()
    cls_token = _SpecialToken()
    mask_token = _SpecialToken()
    bos_token_id = _SpecialTokenId("bos_token")
    eos_token_id = _SpecialTokenId("eos_token")
    unk_token_id = _SpecialTokenId("unk_token")
    sep_token_id = _SpecialTokenId("sep_token")
    pad_token_id = _SpecialTokenId("pad_token")
    cls_token_id = _SpecialTokenId("cls_token")
    mask_token_id = _SpecialTokenId("mask_token")

    def __init__(self, **kwargs):
        if "additional_special_tokens" in kwargs and "extra_special_tokens" not in kwargs:
            kwargs["extra_special_tokens"] = kwargs.pop("additional_special_tokens")
        self.name_or_path = kwargs.pop("name_or_path", "")
        for key in _PRIVATE_CONFIG_KEYS:
            kwargs.pop(key, None)

        self._special_tokens: dict[str, str | AddedToken | None] = dict.fromkeys(SPECIAL_TOKENS_ATTRIBUTES)
        for name in SPECIAL_TOKENS_ATTRIBUTES:
            value = kwargs.pop(name, None)
            if value is not None:
                setattr(self, name, value)
        extra = kwargs.pop("extra_special_tokens", None) or []
        if isinstance(extra, dict):  # named model-specific tokens: special all the same
            extra = list(extra.values())
        if not isinstance(extra, (list, tuple)) or not all(isinstance(t, (str, AddedToken)) for t in extra):
            raise ConfigError(f"extra_special_tokens must be a list of strings, got {extra!r}")
        self._extra_special_tokens: list[str | AddedToken] = list(extra)

        model_max_length = kwargs.pop("model_max_length", kwargs.pop("max_len", None))
        self.model_max_length = _model_max_length(model_max_length)
        self.padding_side = kwargs.pop("padding_side", type(self).padding_side)
        self.truncation_side = kwargs.pop("truncation_side", type(self).truncation_side)
        for name in ("padding_side", "truncation_side"):
            if getattr(self, name) not in ("left", "right"):
                raise ConfigError(f"{name} must be 'left' or 'right', got {getattr(self, name)!r}")
        self.model_input_names = list(kwargs.pop("model_input_names", type(self).model_input_names))
        self.clean_up_tokenization_spaces = bool(kwargs.pop("clean_up_tokenization_spaces", False))
        self.clean_up_tokenization_spaces_for_bpe_even_though_it_will_corrupt_output = bool(
            kwargs.pop("clean_up_tokenization_spaces_for_bpe_even_though_it_will_corrupt_output", False)
        )
        self.split_special_tokens = bool(kwargs.pop("split_special_tokens", False))
        # Whatever is left (model options, unknown config entries) is written back on save.
        self.init_kwargs = copy.deepcopy(kwargs)
        self._warned_too_long = False

    # ------------------------------------------------------------------ special tokens
    @property
    def special_tokens_map(self) -> dict[str, str]:
        return {name: str(tok) for name, tok in self._special_tokens.items() if tok is not None}

    @property
    def extra_special_tokens(self) -> list[str]:
        return [str(tok) for tok in self._extra_special_tokens]

    @property
    def all_special_tokens(self) -> list[str]:
        tokens = [str(t) for t in self._special_tokens.values() if t is not None]
        tokens += [str(t) for t in self._extra_special_tokens]
        return list(dict.fromkeys(tokens))

    @property
    def all_special_ids(self) -> list[int]:
        return self.convert_tokens_to_ids(self.all_special_tokens)

    @property
    def pad_token_type_id(self) -> int:
        return 0

    def add_special_tokens(self, special_tokens_dict: dict[str, Any], replace_extra_special_tokens=True) -> int:
        """Set named special tokens (and ``extra_special_tokens``) and add them to the vocabulary."""
        if not isinstance(special_tokens_dict, Mapping):
            raise InputError(f"add_special_tokens expects a dict such as {{'pad_token': '[PAD]'}}, got "
                             f"{type(special_tokens_dict).__name__}")
        special_tokens_dict = dict(special_tokens_dict)
        if "additional_special_tokens" in special_tokens_dict:
            special_tokens_dict.setdefault(
                "extra_special_tokens", special_tokens_dict.pop("additional_special_tokens")
            )
        to_add = []
        for key, value in special_tokens_dict.items():
            if key == "extra_special_tokens":
                new = [_as_special(t) for t in value]
                if not replace_extra_special_tokens:
                    new = [t for t in new if str(t) not in self.extra_special_tokens]
                    self._extra_special_tokens.extend(new)
                elif new:
                    self._extra_special_tokens = list(new)
                to_add.extend(new)
            elif key in SPECIAL_TOKENS_ATTRIBUTES:
                token = _as_special(value)
                setattr(self, key, token)
                to_add.append(token)
            else:
                raise InputError(f"{key!r} is not a special token name; use one of {SPECIAL_TOKENS_ATTRIBUTES}")
        return self.add_tokens(to_add, special_tokens=True)

    def add_tokens(self, new_tokens, special_tokens: bool = False) -> int:
        """Add tokens that are never split; returns how many were new to the vocabulary."""
        if not new_tokens:
            return 0
        if not isinstance(new_tokens, (list, tuple)):
            new_tokens = [new_tokens]
        for token in new_tokens:
            if not isinstance(token, (str, AddedToken)):
                raise InputError(f"Tokens to add must be strings or AddedTokens, got {type(token).__name__}")
        return self._add_tokens(list(new_tokens), special_tokens=special_tokens)

    # ------------------------------------------------------------------ vocabulary (backends)
    def _add_tokens(self, new_tokens: list, special_tokens: bool) -> int:
        raise NotImplementedError

    @property
    def vocab_size(self) -> int:
        raise NotImplementedError

    def __len__(self) -> int:
        raise NotImplementedError

    def get_vocab(self) -> dict[str, int]:
        raise NotImplementedError

    def convert_tokens_to_ids(self, tokens):
        if isinstance(tokens, str):
            return self._token_to_id(tokens)
        if not isinstance(tokens, (list, tuple)) or not all(isinstance(t, str) for t in tokens):
            raise InputError(f"convert_tokens_to_ids expects a string or a list of strings, got {tokens!r}")
        return [self._token_to_id(token) for token in tokens]

    def _token_to_id(self, token: str) -> int | None:
        raise NotImplementedError

    def convert_ids_to_tokens(self, ids, skip_special_tokens: bool = False):
        ids = to_python_ids(ids)
        if _is_int(ids):
            return self._id_to_token(int(ids))
        checked = _as_ids(ids)
        if checked is None:
            raise InputError(f"convert_ids_to_tokens expects an int or a list of ints, got {ids!r:.100}")
        skip = set(self.all_special_ids) if skip_special_tokens else set()
        return [self._id_to_token(i) for i in checked if i not in skip]

    def _id_to_token(self, index: int) -> str | None:
        raise NotImplementedError

    def num_special_tokens_to_add(self, pair: bool = False) -> int:
        raise NotImplementedError

    @property
    def max_len_single_sentence(self) -> int:
        """Longest single sequence the model takes, special tokens excluded."""
        return self.model_max_length - self.num_special_tokens_to_add(pair=False)

    @property
    def max_len_sentences_pair(self) -> int:
        """Longest pair of sequences the model takes, special tokens excluded."""
        return self.model_max_length - self.num_special_tokens_to_add(pair=True)

    # ------------------------------------------------------------------ encoding
    def __call__(
        self,
        text=None,
        text_pair=None,
        text_target=None,
        text_pair_target=None,
        add_special_tokens: bool = True,
        padding: bool | str = False,
        truncation: bool | str | None = None,
        max_length: int | None = None,
        stride: int = 0,
        is_split_into_words: bool = False,
        pad_to_multiple_of: int | None = None,
        padding_side: str | None = None,
        return_tensors: str | None = None,
        return_token_type_ids: bool | None = None,
        return_attention_mask: bool | None = None,
        return_overflowing_tokens: bool = False,
        return_special_tokens_mask: bool = False,
        return_offsets_mapping: bool = False,
        return_length: bool = False,
        verbose: bool = True,
    ) -> BatchEncoding:
        """Tokenize a string, a batch of strings, or pairs of them (``text_pair``).

        ``text_target`` is encoded the same way and returned as ``labels`` (or alone
        when ``text`` is None), as for seq2seq training. ``return_overflowing_tokens`` (tokenizers
        with a ``tokenizers`` backend): what truncation cuts off comes back as further rows, windows
        overlapping by ``stride`` tokens, with ``overflow_to_sample_mapping`` naming each row's input.
        """
        if text is None and text_target is None:
            raise InputError("You need to specify either `text` or `text_target`.")
        request = self._make_request(
            add_special_tokens=add_special_tokens,
            padding=padding,
            truncation=truncation,
            max_length=max_length,
            stride=stride,
            is_split_into_words=is_split_into_words,
            pad_to_multiple_of=pad_to_multiple_of,
            padding_side=padding_side,
            return_tensors=return_tensors,
            return_token_type_ids=return_token_type_ids,
            return_attention_mask=return_attention_mask,
            return_overflowing_tokens=return_overflowing_tokens,
            return_special_tokens_mask=return_special_tokens_mask,
            return_offsets_mapping=return_offsets_mapping,
            return_length=return_length,
            verbose=verbose,
        )
        encodings = None if text is None else self._encode_inputs(text, text_pair, request, verbose)
        if text_target is None:
            return encodings
        targets = self._encode_inputs(text_target, text_pair_target, request, verbose)
        if encodings is None:
            return targets
        encodings["labels"] = targets["input_ids"]
        return encodings

    def encode(
        self,
        text,
        text_pair=None,
        add_special_tokens: bool = True,
        padding: bool | str = False,
        truncation: bool | str | None = None,
        max_length: int | None = None,
        stride: int = 0,
        padding_side: str | None = None,
        return_tensors: str | None = None,
    ):
        """The ``input_ids`` of ``text`` (and ``text_pair``)."""
        return self(
            text,
            text_pair=text_pair,
            add_special_tokens=add_special_tokens,
            padding=padding,
            truncation=truncation,
            max_length=max_length,
            stride=stride,
            padding_side=padding_side,
            return_tensors=return_tensors,
        )["input_ids"]

    def tokenize(self, text: str, pair: str | None = None, add_special_tokens: bool = False) -> list[str]:
        raise NotImplementedError

    def _encode_inputs(self, text, text_pair, request: EncodeRequest, verbose: bool) -> BatchEncoding:
        raise NotImplementedError

    def _make_request(self, *, padding, truncation, max_length, pad_to_multiple_of, padding_side, verbose, **rest):
        pad_to_multiple_of = _check_pad_to_multiple_of(pad_to_multiple_of)
        if not _is_int(rest["stride"]) or not 0 <= rest["stride"] <= _MAX_LENGTH:
            raise InputError(f"stride must be a non-negative int, got {rest['stride']!r}")
        padding, truncation, max_length = self._resolve_strategies(
            padding, truncation, max_length, pad_to_multiple_of, verbose
        )
        padding_side = self.padding_side if padding_side is None else padding_side
        if padding_side not in ("left", "right"):
            raise InputError(f"padding_side must be 'left' or 'right', got {padding_side!r}")
        if rest["return_token_type_ids"] is None:
            rest["return_token_type_ids"] = "token_type_ids" in self.model_input_names
        if rest["return_attention_mask"] is None:
            rest["return_attention_mask"] = "attention_mask" in self.model_input_names
        rest["return_tensors"] = getattr(rest["return_tensors"], "value", rest["return_tensors"])
        if rest["return_tensors"] not in (None, "pt", "np"):
            raise InputError(f"return_tensors must be None, 'pt' or 'np', got {rest['return_tensors']!r}")
        return EncodeRequest(
            padding=padding,
            truncation=truncation,
            max_length=max_length,
            pad_to_multiple_of=pad_to_multiple_of,
            padding_side=padding_side,
            **rest,
        )

    def _resolve_strategies(self, padding, truncation, max_length, pad_to_multiple_of, verbose):
        """Turn the user's padding/truncation arguments into strategy names, as transformers does."""
        padding = getattr(padding, "value", padding)
        truncation = getattr(truncation, "value", truncation)
        # Historical behaviour: a max_length alone means "truncate to it".
        if max_length is not None and padding is False and truncation is None:
            truncation = "longest_first"

        if padding is True:
            if verbose and max_length is not None and truncation in (None, False, "do_not_truncate"):
                warnings.warn(
                    "`max_length` is ignored when `padding=True` and there is no truncation strategy; "
                    "use padding='max_length' to pad to max_length.",
                    stacklevel=4,
                )
            padding = "longest"
        elif padding is False or padding is None:
            padding = "do_not_pad"
        elif padding not in PADDING_STRATEGIES:
            raise InputError(f"padding must be a bool or one of {PADDING_STRATEGIES}, got {padding!r}")

        if truncation is True:
            truncation = "longest_first"
        elif truncation is False or truncation is None:
            truncation = "do_not_truncate"
        elif truncation not in TRUNCATION_STRATEGIES:
            raise InputError(f"truncation must be a bool or one of {TRUNCATION_STRATEGIES}, got {truncation!r}")

        if max_length is None:
            # Fall back to the model's limit; with no real limit, there is nothing to pad/cut to.
            limited = self.model_max_length <= LARGE_INTEGER
            if padding == "max_length":
                if limited:
                    max_length = self.model_max_length
                else:
                    padding = "do_not_pad"
            if truncation != "do_not_truncate":
                if limited:
                    max_length = self.model_max_length
                else:
                    truncation = "do_not_truncate"
        elif not _is_int(max_length) or not 0 <= max_length <= _MAX_LENGTH:
            raise InputError(f"max_length must be a non-negative int (at most 2**63 - 1), got {max_length!r}")

        if padding != "do_not_pad" and (self.pad_token is None or (self.pad_token_id or 0) < 0):
            raise InputError(
                "Asking to pad but the tokenizer has no padding token: set `tokenizer.pad_token` "
                "(e.g. to tokenizer.eos_token) or add one with add_special_tokens({'pad_token': '[PAD]'})."
            )
        if (
            truncation != "do_not_truncate"
            and padding != "do_not_pad"
            and pad_to_multiple_of is not None
            and max_length is not None
            and max_length % pad_to_multiple_of != 0
        ):
            raise InputError(
                f"Truncation and padding are both activated but truncation length ({max_length}) "
                f"is not a multiple of pad_to_multiple_of ({pad_to_multiple_of})."
            )
        return padding, truncation, max_length

    def _warn_if_too_long(self, ids: list[int], max_length: int | None, verbose: bool) -> None:
        if max_length is None and verbose and 0 < self.model_max_length < len(ids) and not self._warned_too_long:
            logger.warning(
                "Token indices sequence length is longer than the specified maximum sequence length for this "
                "model (%d > %d). Running this sequence through the model will result in indexing errors",
                len(ids),
                self.model_max_length,
            )
            self._warned_too_long = True

    # ------------------------------------------------------------------ padding
    def pad(
        self,
        encoded_inputs,
        padding: bool | str = True,
        max_length: int | None = None,
        pad_to_multiple_of: int | None = None,
        padding_side: str | None = None,
        return_attention_mask: bool | None = None,
        return_tensors: str | None = None,
        verbose: bool = True,
    ) -> BatchEncoding:
        """Pad one encoding or a batch (a dict of lists, or a list of dicts) to a common length."""
        pad_to_multiple_of = _check_pad_to_multiple_of(pad_to_multiple_of)
        if isinstance(encoded_inputs, (list, tuple)) and encoded_inputs and isinstance(encoded_inputs[0], Mapping):
            if not all(isinstance(example, Mapping) for example in encoded_inputs):
                raise InputError("pad() expects a list of dicts (encodings) or a dict of lists, got a list mixing "
                                 "dicts and other values")
            encoded_inputs = {key: [example[key] for example in encoded_inputs] for key in encoded_inputs[0]}
        if not isinstance(encoded_inputs, Mapping):
            raise InputError(f"pad() expects an encoding (a dict or BatchEncoding of lists), or a list of them, "
                             f"got {type(encoded_inputs).__name__}")
        main = self.model_input_names[0]
        if main not in encoded_inputs:
            raise InputError(f"pad() needs `{main}` among the inputs, got {list(encoded_inputs)}")
        required = encoded_inputs[main]
        if required is None or len(required) == 0:
            if return_attention_mask:
                encoded_inputs["attention_mask"] = []
            return encoded_inputs
        first = next((seq[0] for seq in required if isinstance(seq, (list, tuple)) and seq), required[0])
        if not isinstance(first, (int, list, tuple)):
            if hasattr(first, "__array__") or hasattr(first, "tolist"):
                if return_tensors is None:
                    return_tensors = "pt" if type(first).__module__.startswith("torch") else "np"
                encoded_inputs = {key: to_python_ids(value) for key, value in encoded_inputs.items()}
            else:
                raise InputError(f"Cannot pad values of type {type(first).__name__}")
        else:
            encoded_inputs = dict(encoded_inputs)

        strategy, _, max_length = self._resolve_strategies(padding, None, max_length, None, verbose)
        required = encoded_inputs[main]
        if not isinstance(required[0], (list, tuple)):
            padded = self._pad_one(
                encoded_inputs, max_length, strategy, pad_to_multiple_of, padding_side, return_attention_mask
            )
            return BatchEncoding(padded, tensor_type=return_tensors)

        if any(len(value) != len(required) for value in encoded_inputs.values()):
            raise InputError("All fields given to pad() must have the same batch size")
        if strategy == "longest":
            max_length = max(len(seq) for seq in required)
            strategy = "max_length"
        batch: dict[str, list] = {}
        for index in range(len(required)):
            item = {key: value[index] for key, value in encoded_inputs.items()}
            padded = self._pad_one(item, max_length, strategy, pad_to_multiple_of, padding_side, return_attention_mask)
            for key, value in padded.items():
                batch.setdefault(key, []).append(value)
        return BatchEncoding(batch, tensor_type=return_tensors)

    def _pad_one(self, inputs, max_length, strategy, pad_to_multiple_of, padding_side, return_attention_mask):
        """Pad a single (unbatched) encoding; also creates its attention mask when asked."""
        if return_attention_mask is None:
            return_attention_mask = "attention_mask" in self.model_input_names
        main = self.model_input_names[0]
        ids = inputs[main]
        if strategy == "longest":
            max_length = len(ids)
        if max_length is not None and pad_to_multiple_of is not None and max_length % pad_to_multiple_of:
            max_length = (max_length // pad_to_multiple_of + 1) * pad_to_multiple_of
        if return_attention_mask and "attention_mask" not in inputs:
            inputs["attention_mask"] = [1] * len(ids)
        if strategy == "do_not_pad" or len(ids) >= max_length:
            return inputs
        missing = max_length - len(ids)
        fill = {
            main: self.pad_token_id,
            "attention_mask": 0,
            "token_type_ids": self.pad_token_type_id,
            "special_tokens_mask": 1,
        }
        side = self.padding_side if padding_side is None else padding_side
        for key, value in fill.items():
            if key not in inputs or (key == "attention_mask" and not return_attention_mask):
                continue
            pad = [value] * missing
            inputs[key] = list(inputs[key]) + pad if side == "right" else pad + list(inputs[key])
        return inputs

    # ------------------------------------------------------------------ decoding
    def decode(self, token_ids, skip_special_tokens: bool = False, clean_up_tokenization_spaces=None):
        """Text of a sequence of ids (or a list of texts for a batch of sequences)."""
        token_ids = to_python_ids(token_ids)
        if isinstance(token_ids, list) and token_ids and isinstance(token_ids[0], list):
            return [self._decode_checked(seq, skip_special_tokens, clean_up_tokenization_spaces) for seq in token_ids]
        return self._decode_checked(token_ids, skip_special_tokens, clean_up_tokenization_spaces)

    def batch_decode(self, sequences, skip_special_tokens: bool = False, clean_up_tokenization_spaces=None):
        """Texts of a batch of id sequences."""
        result = self.decode(sequences, skip_special_tokens, clean_up_tokenization_spaces)
        return [result] if isinstance(result, str) else result

    def _decode_checked(self, ids, skip_special_tokens, clean_up_tokenization_spaces) -> str:
        checked = _as_ids(ids)
        if checked is None:
            raise InputError(f"decode expects ids as ints, a list of ints or a tensor, got {ids!r:.100}")
        ids = checked
        text = self._decode(ids, skip_special_tokens)
        if clean_up_tokenization_spaces is None:
            clean_up_tokenization_spaces = self.clean_up_tokenization_spaces
        if clean_up_tokenization_spaces and self._cleanup_applies():
            text = clean_up_tokenization(text)
        return text

    def _decode(self, ids: list[int], skip_special_tokens: bool) -> str:
        raise NotImplementedError

    def _cleanup_applies(self) -> bool:
        """Whether ``clean_up_tokenization_spaces`` may touch this tokenizer's output."""
        return True

    def get_special_tokens_mask(self, token_ids_0, token_ids_1=None, already_has_special_tokens=False):
        """1 for special tokens, 0 for sequence tokens (only for already formatted ids here)."""
        if not already_has_special_tokens:
            raise NotImplementedError(f"{type(self).__name__} only supports already_has_special_tokens=True")
        if token_ids_1 is not None:
            raise InputError("Give a single sequence when it already has its special tokens")
        checked = _as_ids(to_python_ids(token_ids_0))
        if checked is None:
            raise InputError(f"get_special_tokens_mask expects token ids (ints), got {token_ids_0!r:.100}")
        special = set(self.all_special_ids)
        return [1 if i in special else 0 for i in checked]

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike, **kwargs):
        """Load from a directory (or an offline Hugging Face cache snapshot) as transformers would.

        Keyword arguments override entries of ``tokenizer_config.json``.
        """
        directory = resolve_pretrained(name_or_path, kwargs)
        json_file = directory / TOKENIZER_FILE
        tokenizer_json = load_tokenizer_json(json_file) if json_file.is_file() else None
        config = cls._read_config(directory, tokenizer_json, kwargs)
        config["name_or_path"] = str(name_or_path)
        return cls._from_directory(directory, config, tokenizer_json)

    @classmethod
    def _from_directory(cls, directory: Path, config: dict[str, Any], tokenizer_json: dict[str, Any] | None):
        raise NotImplementedError

    @staticmethod
    def _read_config(directory: Path, tokenizer_json: dict[str, Any] | None, overrides: dict[str, Any]):
        """Constructor arguments from tokenizer_config.json, ``overrides``, and the legacy files.

        Checkpoints saved before ``added_tokens_decoder`` existed keep special tokens in
        special_tokens_map.json and added tokens in added_tokens.json / tokenizer.json.
        """
        config_file = directory / TOKENIZER_CONFIG_FILE
        config = read_json(config_file) if config_file.is_file() else {}
        if not isinstance(config, dict):
            raise CheckpointError(f"{config_file} does not hold a JSON object")
        config = added_token_from_json(config)
        config.update(overrides)
        for key in _PRIVATE_CONFIG_KEYS:
            config.pop(key, None)
        if "additional_special_tokens" in config and not config.get("extra_special_tokens"):
            config["extra_special_tokens"] = config.pop("additional_special_tokens")
        config.pop("additional_special_tokens", None)

        if "added_tokens_decoder" in config:
            entries = config["added_tokens_decoder"]
            try:
                decoder = {
                    int(index): token if isinstance(token, AddedToken) else AddedToken(**token)
                    for index, token in entries.items()
                }
            except (AttributeError, TypeError, ValueError, OverflowError) as exc:
                raise ConfigError(f"{config_file}: added_tokens_decoder must map integer ids to added tokens "
                                  f"({{\"content\": ...}}), got {entries!r:.200} ({type(exc).__name__}: {exc})") from exc
            if any(index < 0 for index in decoder):
                raise ConfigError(f"{config_file}: added_tokens_decoder holds a negative id: {sorted(decoder)[0]}")
        else:
            map_file = directory / SPECIAL_TOKENS_MAP_FILE
            for key, value in (read_json(map_file) if map_file.is_file() else {}).items():
                if overrides.get(key):
                    continue
                if key in ("additional_special_tokens", "extra_special_tokens"):
                    existing = list(config.get("extra_special_tokens") or [])
                    tokens = [AddedToken(**_special_fields(t)) if isinstance(t, dict) else t for t in value]
                    config["extra_special_tokens"] = existing + [t for t in tokens if t not in existing]
                else:
                    config[key] = AddedToken(**_special_fields(value)) if isinstance(value, dict) else value
            decoder = {}
            added_file = directory / ADDED_TOKENS_FILE
            try:
                if added_file.is_file():
                    special = {str(config[k]) for k in SPECIAL_TOKENS_ATTRIBUTES if config.get(k)}
                    special |= {str(t) for t in config.get("extra_special_tokens") or []}
                    for content, index in read_json(added_file).items():
                        is_special = content in special
                        decoder[_token_index(index)] = AddedToken(
                            content, rstrip=False, lstrip=False, normalized=not is_special, special=is_special
                        )
                if tokenizer_json is not None:
                    for entry in tokenizer_json.get("added_tokens", []):
                        decoder[_token_index(entry["id"])] = AddedToken(
                            **{k: v for k, v in entry.items() if k != "id"})
            except (AttributeError, KeyError, TypeError, ValueError, OverflowError) as exc:
                raise CheckpointError(f"invalid added tokens in {added_file} or {directory / TOKENIZER_FILE}: "
                                      f"{type(exc).__name__}: {exc}") from exc
        config["added_tokens_decoder"] = decoder
        # Named special tokens take the exact flags (lstrip...) of the added token they name.
        by_content = {token.content: token for token in decoder.values()}
        for key in SPECIAL_TOKENS_ATTRIBUTES:
            if config.get(key) is not None and str(config[key]) in by_content:
                config[key] = by_content[str(config[key])]
        return config

    # ------------------------------------------------------------------ saving
    def save_pretrained(self, save_directory: str | os.PathLike, filename_prefix: str | None = None) -> tuple[str, ...]:
        """Write tokenizer_config.json and the vocabulary files; returns the paths written."""
        directory = Path(save_directory)
        if directory.is_file():
            raise InputError(f"save_pretrained needs a directory, {directory} is a file")
        directory.mkdir(parents=True, exist_ok=True)
        prefix = f"{filename_prefix}-" if filename_prefix else ""
        config_file = directory / (prefix + TOKENIZER_CONFIG_FILE)
        write_json(config_file, self._tokenizer_config())
        return (str(config_file), *self._save_vocabulary(directory, prefix))

    def _tokenizer_config(self) -> dict[str, Any]:
        config = copy.deepcopy(self.init_kwargs)
        for key in config:
            if hasattr(self, key):
                config[key] = getattr(self, key)
        config.update(
            model_max_length=self.model_max_length,
            padding_side=self.padding_side,
            truncation_side=self.truncation_side,
            clean_up_tokenization_spaces=self.clean_up_tokenization_spaces,
            tokenizer_class=type(self).__name__,
        )
        if self.split_special_tokens:
            config["split_special_tokens"] = True
        if self.model_input_names != type(self).model_input_names:
            config["model_input_names"] = self.model_input_names
        config.update(self.special_tokens_map)
        if self._extra_special_tokens:
            config["extra_special_tokens"] = self.extra_special_tokens
        return _to_json(config)

    def _save_vocabulary(self, directory: Path, prefix: str) -> tuple[str, ...]:
        raise NotImplementedError

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name_or_path={self.name_or_path!r}, vocab_size={self.vocab_size}, "
            f"model_max_length={self.model_max_length}, padding_side={self.padding_side!r}, "
            f"truncation_side={self.truncation_side!r}, special_tokens={self.special_tokens_map})"
        )


def clean_up_tokenization(text: str) -> str:
    """Remove the spaces WordPiece-style detokenization leaves before punctuation and contractions."""
    for spaced, joined in (
        (" .", "."),
        (" ?", "?"),
        (" !", "!"),
        (" ,", ","),
        (" ' ", "'"),
        (" n't", "n't"),
        (" 'm", "'m"),
        (" 's", "'s"),
        (" 've", "'ve"),
        (" 're", "'re"),
    ):
        text = text.replace(spaced, joined)
    return text


def _as_special(token: str | AddedToken) -> AddedToken:
    if isinstance(token, AddedToken):
        return token
    if not isinstance(token, str):
        raise InputError(f"Special tokens must be strings or AddedTokens, got {type(token).__name__}")
    return AddedToken(token, rstrip=False, lstrip=False, normalized=False, special=True)


def _special_fields(state: dict[str, Any]) -> dict[str, Any]:
    """AddedToken fields from a legacy special_tokens_map entry, always marked special."""
    fields = {k: v for k, v in state.items() if k not in ("__type", "special")}
    return {**fields, "special": True}


def missing_files_error(cls_name: str, directory: Path, wanted: str) -> CheckpointError:
    present = sorted(p.name for p in directory.iterdir()) if directory.is_dir() else []
    return CheckpointError(
        f"Cannot load a {cls_name} from {directory}: it needs {wanted}, found only {present or 'nothing'}"
    )
