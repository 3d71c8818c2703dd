"""``GenerationConfig``: generation parameters, read from and written to ``generation_config.json``.

Semantics follow transformers 5.23: every field defaults to ``None`` ("unset"); ``generate()``
resolves a value by precedence: explicit ``generate()`` kwargs, then the ``generation_config=``
argument, then ``model.generation_config`` (``generation_config.json``, or derived from
``config.json`` for legacy checkpoints), then :data:`GLOBAL_DEFAULTS`. Whether ``max_length`` was
set anywhere matters: when it was not, the default is 20 *new* tokens.
"""
from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

from ..configuration_utils import check_json_depth
from ..errors import CheckpointError, ConfigError, GenerationError
from ..hub import resolve

GENERATION_CONFIG_NAME = "generation_config.json"

# Fields pygen reads. All start unset (None).
FIELDS = (
    # lengths
    "max_length", "max_new_tokens", "min_length", "min_new_tokens", "early_stopping", "max_time",
    # strategy
    "do_sample", "num_beams", "num_return_sequences", "use_cache",
    # logits processing
    "temperature", "top_k", "top_p", "min_p", "typical_p", "epsilon_cutoff", "eta_cutoff", "repetition_penalty",
    "encoder_repetition_penalty", "length_penalty", "no_repeat_ngram_size", "encoder_no_repeat_ngram_size",
    "bad_words_ids", "forced_bos_token_id", "forced_eos_token_id", "remove_invalid_values",
    "exponential_decay_length_penalty", "suppress_tokens", "begin_suppress_tokens", "renormalize_logits",
    "sequence_bias",
    # special tokens
    "bos_token_id", "eos_token_id", "pad_token_id", "decoder_start_token_id",
    # outputs
    "output_scores", "output_logits", "return_dict_in_generate", "output_attentions", "output_hidden_states",
)

# transformers fields pygen does not implement: accepted in files while unset or neutral, rejected
# by generate() otherwise (the value that means "off" is given).
UNSUPPORTED = {
    "stop_strings": None, "top_h": None, "guidance_scale": 1.0,
    "token_healing": False,
    "watermarking_config": None, "num_beam_groups": 1, "diversity_penalty": 0.0, "constraints": None,
    "force_words_ids": None, "penalty_alpha": None, "dola_layers": None, "prompt_lookup_num_tokens": None,
    "low_memory": None, "cache_implementation": None, "prefill_chunk_size": None,
}

# Values used when a field is unset everywhere (transformers' model-agnostic defaults).
GLOBAL_DEFAULTS: dict[str, Any] = {
    "max_length": 20, "min_length": 0, "do_sample": False, "use_cache": True, "early_stopping": False,
    "num_beams": 1, "temperature": 1.0, "top_k": 50, "top_p": 1.0, "typical_p": 1.0, "epsilon_cutoff": 0.0,
    "eta_cutoff": 0.0, "repetition_penalty": 1.0, "encoder_repetition_penalty": 1.0, "remove_invalid_values": False,
    "renormalize_logits": False, "length_penalty": 1.0, "no_repeat_ngram_size": 0, "encoder_no_repeat_ngram_size": 0,
    "num_return_sequences": 1, "output_scores": False, "output_logits": False, "return_dict_in_generate": False,
}

# Keys of a generation_config.json that describe the file, not generation.
_METADATA = ("transformers_version", "_commit_hash", "_original_object_hash")


class GenerationConfig:
    """Generation parameters; unknown keys are kept as attributes (as transformers does)."""

    def __init__(self, **kwargs: Any):
        for key in FIELDS:
            setattr(self, key, kwargs.pop(key, None))
        for key in _METADATA:
            kwargs.pop(key, None)
        self._from_model_config = bool(kwargs.pop("_from_model_config", False))
        for key, value in kwargs.items():
            _check_free_name(key)
            setattr(self, key, value)
        self.validate(ranges=False)

    # ---- validation ---------------------------------------------------------------------
    def validate(self, ranges: bool = True) -> None:
        """Reject values no generation can use (what transformers rejects, plus type errors).

        ``ranges=False`` checks types only: what building or loading a config does, as transformers
        loads a generation_config.json holding values no generation can use (``num_beams: 0``,
        ``pad_token_id: -1``) and only generate() fails on them; generate() checks everything."""
        def check_int(name: str, low: int) -> None:
            value = getattr(self, name)
            if name.endswith("_length") and isinstance(value, float) and value.is_integer():
                # a max_length of 10.0 in a JSON file works in transformers
                value = int(value)
                setattr(self, name, value)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or (ranges and value < low)):
                raise GenerationError(f"`{name}` must be an integer >= {low}, got {value!r}")

        def check_float(name: str, ok, what: str) -> None:
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                      or (ranges and not ok(value))):
                raise GenerationError(f"`{name}` must be {what}, got {value!r}")

        for name in ("max_length", "num_beams", "num_return_sequences", "max_new_tokens"):
            check_int(name, 1)
        for name in ("min_length", "min_new_tokens", "no_repeat_ngram_size", "encoder_no_repeat_ngram_size"):
            check_int(name, 0)
        # The sampling warpers' values only matter when sampling: configs written for greedy
        # decoding may hold any (temperature 0.0, top_k -1...), which transformers ignores too.
        if self.do_sample:
            check_int("top_k", 0)
            check_float("temperature", lambda v: v > 0, "a float > 0 (use do_sample=False for greedy decoding)")
            check_float("top_p", lambda v: 0.0 <= v <= 1.0, "a float in [0, 1]")
            check_float("min_p", lambda v: 0.0 <= v <= 1.0, "a float in [0, 1]")
            check_float("typical_p", lambda v: 0.0 < v <= 1.0, "a float in (0, 1] (1 = off)")
            for name in ("epsilon_cutoff", "eta_cutoff"):
                check_float(name, lambda v: 0.0 <= v < 1.0, "a float in [0, 1) (0 = off)")
        for name in ("repetition_penalty", "encoder_repetition_penalty"):
            check_float(name, lambda v: 0 < v < float("inf"), "a finite float > 0")
        check_float("length_penalty", lambda v: v == v and abs(v) != float("inf"), "a finite float")
        check_float("max_time", lambda v: v >= 0, "a number of seconds >= 0")
        if self.early_stopping not in (None, True, False, "never"):
            raise GenerationError(f"`early_stopping` must be True, False or 'never', got {self.early_stopping!r}")
        for name in ("do_sample", "use_cache", "output_scores", "output_logits", "return_dict_in_generate",
                     "remove_invalid_values", "renormalize_logits"):
            if getattr(self, name) not in (None, True, False):
                raise GenerationError(f"`{name}` must be a bool, got {getattr(self, name)!r}")
        for name in ("bos_token_id", "pad_token_id", "forced_bos_token_id"):
            check_int(name, 0)
        if isinstance(self.decoder_start_token_id, (list, tuple)) or hasattr(self.decoder_start_token_id, "tolist"):
            token_ids(self.decoder_start_token_id, "decoder_start_token_id", ranges)  # one per batch row
        else:
            check_int("decoder_start_token_id", 0)
        for name in ("eos_token_id", "forced_eos_token_id"):
            if ranges or not isinstance(getattr(self, name), (list, tuple)):
                token_ids(getattr(self, name), name, ranges, empty_ok=name == "eos_token_id")
        if self.bad_words_ids is not None:
            words = self.bad_words_ids
            if (not isinstance(words, (list, tuple)) or not words
                    or any(not isinstance(w, (list, tuple)) or not w for w in words)
                    or any(isinstance(t, bool) or not isinstance(t, int) or t < 0 for w in words for t in w)):
                raise GenerationError(
                    f"`bad_words_ids` must be a non-empty list of non-empty lists of token ids, got {words!r}")
        if self.sequence_bias is not None:
            sequence_bias_pairs(self.sequence_bias)
        for name in ("suppress_tokens", "begin_suppress_tokens"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, (list, tuple))
                                      or any(isinstance(t, bool) or not isinstance(t, int) or t < 0 for t in value)):
                raise GenerationError(f"`{name}` must be a list of token ids, got {value!r}")
        decay = self.exponential_decay_length_penalty
        if decay is not None and (not isinstance(decay, (list, tuple)) or len(decay) != 2
                                  or isinstance(decay[0], bool) or not isinstance(decay[0], int) or decay[0] < 0
                                  or isinstance(decay[1], bool) or not isinstance(decay[1], (int, float))
                                  or not 0 < decay[1] < float("inf")):
            raise GenerationError("`exponential_decay_length_penalty` must be (start_index >= 0, decay_factor > 0), "
                                  f"got {decay!r}")
        beams, returned = self.num_beams or 1, self.num_return_sequences or 1
        if not ranges:
            return
        if returned > 1 and beams == 1 and not self.do_sample:
            raise GenerationError(
                f"greedy decoding returns one sequence per input; `num_return_sequences={returned}` needs "
                "`num_beams` >= it or `do_sample=True`")
        if beams > 1 and returned > beams:
            raise GenerationError(f"`num_return_sequences` ({returned}) must be <= `num_beams` ({beams})")

    # ---- dict views ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {k: copy.deepcopy(v) for k, v in self.__dict__.items() if not k.startswith("_")}

    def to_diff_dict(self) -> dict[str, Any]:
        """The values that are set (what transformers writes to ``generation_config.json``)."""
        out = {k: v for k, v in self.to_dict().items() if v is not None}
        if self._from_model_config:
            out["_from_model_config"] = True
        return out

    def update(self, defaults_only: bool = False, allow_custom_entries: bool = False, **kwargs: Any) -> dict[str, Any]:
        """Set the fields named in ``kwargs``; return the entries that are not generation fields.

        ``defaults_only`` only fills fields that are unset; ``allow_custom_entries`` also adds
        attributes this config does not have yet.
        """
        unused = {}
        for key, value in kwargs.items():
            if key.startswith("_") or key in _METADATA:
                continue
            if key in vars(self):  # a field or a custom entry, never a method
                if not defaults_only or getattr(self, key) is None:
                    setattr(self, key, copy.deepcopy(value))
            elif allow_custom_entries:
                _check_free_name(key)
                setattr(self, key, copy.deepcopy(value))
            else:
                unused[key] = value
        self.validate(ranges=False)
        return unused

    def copy(self) -> "GenerationConfig":
        new = GenerationConfig(**self.to_dict())
        new._from_model_config = self._from_model_config
        return new

    def to_json_string(self, use_diff: bool = True) -> str:
        return json.dumps(self.to_diff_dict() if use_diff else self.to_dict(), indent=2, sort_keys=True) + "\n"

    def get_generation_mode(self) -> str:
        """transformers' GenerationMode value of this config: greedy_search, sample, beam_search or
        beam_sample (the strategies pygen runs)."""
        beams = self.num_beams or 1
        if beams == 1:
            return "sample" if self.do_sample else "greedy_search"
        return "beam_sample" if self.do_sample else "beam_search"

    def __hash__(self) -> int:
        return hash(self.to_json_string())

    # ---- files --------------------------------------------------------------------------
    def save_pretrained(self, save_directory: str | os.PathLike, config_file_name: str = GENERATION_CONFIG_NAME,
                        **_: Any) -> None:
        path = Path(save_directory)
        path.mkdir(parents=True, exist_ok=True)
        self.to_json_file(path / config_file_name)

    def to_json_file(self, json_file_path: str | os.PathLike, use_diff: bool = True) -> None:
        Path(json_file_path).write_text(self.to_json_string(use_diff))

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike, config_file_name: str = GENERATION_CONFIG_NAME,
                        **kwargs: Any) -> Any:
        """Read ``generation_config.json`` (or, with ``config_file_name="config.json"``, the generation
        fields of a legacy model config); ``kwargs`` update it, and with ``return_unused_kwargs=True``
        the ones that are no field come back as ``(config, unused)``, as in transformers."""
        return_unused = bool(kwargs.pop("return_unused_kwargs", False))
        path = resolve(name_or_path) / config_file_name
        if not path.is_file():
            raise CheckpointError(f"missing {path}")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except RecursionError:
            raise ConfigError(f"{path} is not valid JSON: nested too deeply") from None
        except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, over-long integer literals
            raise ConfigError(f"{path} is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path} must hold a JSON object")
        check_json_depth(data, path)
        if config_file_name != GENERATION_CONFIG_NAME:
            config = cls.from_model_config(data)
            unused = config.update(**kwargs)
            return (config, unused) if return_unused else config
        try:
            return cls.from_dict(data, return_unused_kwargs=return_unused, **kwargs)
        except ConfigError as exc:  # a key that clashes with a method: name the file
            raise ConfigError(f"invalid {path}: {exc}") from exc

    @classmethod
    def from_dict(cls, data: dict[str, Any], **kwargs: Any) -> Any:
        """``data`` updated by ``kwargs``; ``return_unused_kwargs=True`` returns ``(config, unused)``."""
        return_unused = bool(kwargs.pop("return_unused_kwargs", False))
        config = cls(**{**data, **kwargs})  # unknown keys become entries, as in transformers
        unused = config.update(**kwargs)
        return (config, unused) if return_unused else config

    @classmethod
    def from_model_config(cls, config) -> "GenerationConfig":
        """The generation fields a model config (object or ``config.json`` dict) carries.

        Only known generation fields are taken. Fields the outer config leaves unset are taken
        from its decoder sub-config (``EncoderDecoderConfig.decoder``), as transformers does.
        """
        data = config if isinstance(config, dict) else config.to_dict()
        decoder = data.get("decoder")
        if decoder is not None and not isinstance(decoder, dict):
            decoder = decoder.to_dict()
        values = {k: data[k] for k in FIELDS if data.get(k) is not None}
        for key in FIELDS:
            if key not in values and isinstance(decoder, dict) and decoder.get(key) is not None:
                values[key] = decoder[key]
        generation_config = cls(**values)
        generation_config._from_model_config = True
        # transformers turns the dict output on when an output_* flag is on.
        if generation_config.output_scores or generation_config.output_logits:
            generation_config.return_dict_in_generate = True
        return generation_config

    def __eq__(self, other: object) -> bool:
        return isinstance(other, GenerationConfig) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"GenerationConfig {json.dumps(self.to_diff_dict(), indent=2, sort_keys=True)}"


def sequence_bias_pairs(sequence_bias: Any) -> list[tuple[tuple[int, ...], float]]:
    """``sequence_bias`` as (token ids, bias) pairs, from transformers' two spellings: a list of
    ``[[ids...], bias]`` (what generation_config.json holds) or a dict ``{(ids...): bias}``. A
    sequence given twice keeps its last bias, as in transformers."""
    def is_ids(ids):
        return bool(ids) and all(not isinstance(t, bool) and isinstance(t, int) and t >= 0 for t in ids)

    if isinstance(sequence_bias, dict) and sequence_bias:
        if all(isinstance(k, tuple) and is_ids(k) and isinstance(v, float) for k, v in sequence_bias.items()):
            return list(sequence_bias.items())
    elif isinstance(sequence_bias, (list, tuple)) and sequence_bias:
        if all(isinstance(p, (list, tuple)) and len(p) == 2 and isinstance(p[0], list) and is_ids(p[0])
               and isinstance(p[1], float) for p in sequence_bias):
            return list({tuple(ids): bias for ids, bias in sequence_bias}.items())
    raise GenerationError("`sequence_bias` must be a non-empty list of [[token ids...], float bias] pairs (or a "
                          f"dict {{(token ids...): float bias}}), got {sequence_bias!r}")


def _check_free_name(key: str) -> None:
    """A custom entry becomes an attribute: refuse names that would replace a method or another
    attribute of the class (``validate``, ``to_dict``, ``__class__``...)."""
    if hasattr(GenerationConfig, key):
        raise ConfigError(f"GenerationConfig: key {key!r} clashes with an attribute of the class")


def token_ids(value: Any, name: str, ranges: bool = True, empty_ok: bool = False) -> list[int] | None:
    """An id or list of ids (``eos_token_id`` may be either) as a list; ``None`` stays ``None``.
    ``ranges=False`` lets negative ids pass (see :meth:`GenerationConfig.validate`); with
    ``empty_ok`` an empty list means none (``eos_token_id=[]``: no EOS, as in transformers)."""
    if value is None:
        return None
    if hasattr(value, "tolist"):  # tensors
        value = value.tolist()
    if empty_ok and isinstance(value, (list, tuple)) and not value:
        return None
    ids = [value] if isinstance(value, int) and not isinstance(value, bool) else value
    if (not isinstance(ids, (list, tuple)) or not ids
            or any(isinstance(t, bool) or not isinstance(t, int) or (ranges and t < 0) for t in ids)):
        raise GenerationError(f"`{name}` must be a non-negative token id or a non-empty list of them, got {value!r}")
    return list(ids)
