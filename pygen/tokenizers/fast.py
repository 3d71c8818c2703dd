"""Backend for tokenizers running on the Rust ``tokenizers`` library (BPE, WordPiece).

As in transformers 5.x, the model-specific class builds the pipeline (normalizer,
pre-tokenizer, model, decoder, post-processor) from its options; this class owns the
added/special tokens, the per-call truncation and padding, and conversion of the
library's ``Encoding``s into a :class:`BatchEncoding`.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tokenizers import AddedToken, Tokenizer

from ..errors import CheckpointError, InputError
from .base import TOKENIZER_FILE, BatchEncoding, EncodeRequest, PreTrainedTokenizerBase


def _is_text_input(value: Any) -> bool:
    """str, list of str, list of pairs/lists of str: the shapes the backend accepts."""
    if isinstance(value, str):
        return True
    if not isinstance(value, (list, tuple)):
        return False
    for item in value:
        if isinstance(item, (list, tuple)):
            if not all(isinstance(x, str) or _is_word_list(x) for x in item):
                return False
        elif not isinstance(item, str):
            return False
    return True


# The tokenizers library stores ids as u32: anything outside cannot even be passed to it. (Ids in
# range but past the vocabulary decode to nothing, as in transformers.)
_MAX_BACKEND_ID = 2**32


def _check_backend_ids(ids: list[int]) -> None:
    if ids and (min(ids) < 0 or max(ids) >= _MAX_BACKEND_ID):
        bad = min(ids) if min(ids) < 0 else max(ids)
        raise InputError(f"Token id {bad} is not a valid id: ids must be in [0, {_MAX_BACKEND_ID})")


def _is_word_list(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and all(isinstance(x, str) for x in value)


class TokenizersBackend(PreTrainedTokenizerBase):
    """A tokenizer whose work is done by a ``tokenizers.Tokenizer``."""

    def __init__(
        self, backend_tokenizer: Tokenizer, added_tokens_decoder: dict[int, AddedToken] | None = None, **kwargs
    ):
        self._tokenizer = backend_tokenizer
        super().__init__(**kwargs)
        self._tokenizer.encode_special_tokens = self.split_special_tokens
        self._register_added_tokens(added_tokens_decoder or {})

    def _register_added_tokens(self, added_tokens_decoder: dict[int, AddedToken]) -> None:
        """Add saved added tokens (in id order), then any special token the backend lacks."""
        present = {token.content for token in self._tokenizer.get_added_tokens_decoder().values()}
        to_add: list[AddedToken] = []
        for _, token in sorted(added_tokens_decoder.items()):
            if token.content not in present:
                to_add.append(token)
                present.add(token.content)
        named = [t for t in self._special_tokens.values() if t is not None]
        for token in named + list(self._extra_special_tokens):
            if str(token) not in present:
                to_add.append(token if isinstance(token, AddedToken) else AddedToken(str(token), special=True))
                present.add(str(token))
        named_contents = {str(t) for t in named}
        for token in to_add:
            if not token.special and token.content in named_contents:
                token.special = True
        if to_add:
            self._tokenizer.add_tokens(to_add)

    @property
    def backend_tokenizer(self) -> Tokenizer:
        """The ``tokenizers.Tokenizer`` doing the work."""
        return self._tokenizer

    @property
    def is_fast(self) -> bool:
        return True

    # ------------------------------------------------------------------ vocabulary
    @property
    def vocab_size(self) -> int:
        return self._tokenizer.get_vocab_size(with_added_tokens=False)

    def __len__(self) -> int:
        return self._tokenizer.get_vocab_size(with_added_tokens=True)

    def get_vocab(self) -> dict[str, int]:
        return self._tokenizer.get_vocab(with_added_tokens=True)

    @property
    def added_tokens_decoder(self) -> dict[int, AddedToken]:
        return self._tokenizer.get_added_tokens_decoder()

    def _add_tokens(self, new_tokens: list, special_tokens: bool) -> int:
        if special_tokens:
            return self._tokenizer.add_special_tokens(new_tokens)
        return self._tokenizer.add_tokens(new_tokens)

    def _token_to_id(self, token: str) -> int | None:
        index = self._tokenizer.token_to_id(token)
        return self.unk_token_id if index is None else index

    def _id_to_token(self, index: int) -> str | None:
        _check_backend_ids([index])
        return self._tokenizer.id_to_token(index)

    def num_special_tokens_to_add(self, pair: bool = False) -> int:
        return self._tokenizer.num_special_tokens_to_add(pair)

    # ------------------------------------------------------------------ encoding
    def tokenize(self, text: str, pair: str | None = None, add_special_tokens: bool = False) -> list[str]:
        request = self._make_request(
            add_special_tokens=add_special_tokens,
            padding=False,
            truncation=False,
            max_length=None,
            stride=0,
            is_split_into_words=False,
            pad_to_multiple_of=None,
            padding_side=None,
            return_tensors=None,
            return_token_type_ids=False,
            return_attention_mask=False,
            return_special_tokens_mask=False,
            return_offsets_mapping=False,
            return_length=False,
            verbose=False,
        )
        return self._encode_inputs(text, pair, request, verbose=False).tokens()

    def _encode_inputs(self, text, text_pair, request: EncodeRequest, verbose: bool) -> BatchEncoding:
        for value in (text, text_pair):
            if value is not None and not _is_text_input(value):
                raise InputError(
                    "Text input must be a str, a list of str (a batch), a list of (str, str) pairs, "
                    f"or lists of words with is_split_into_words=True; got {type(value).__name__}"
                )
        if request.is_split_into_words:
            is_batched = isinstance(text, (list, tuple)) and bool(text) and isinstance(text[0], (list, tuple))
        else:
            is_batched = isinstance(text, (list, tuple))
        if is_batched:
            if isinstance(text_pair, str):
                raise InputError("For a batch of texts, `text_pair` must be a list of the same length")
            if text_pair is not None and len(text) != len(text_pair):
                raise InputError(f"Batch of {len(text)} texts but {len(text_pair)} text pairs")
            inputs = list(zip(text, text_pair)) if text_pair is not None else list(text)
        else:
            # An empty-string pair counts as no pair, as in transformers.
            inputs = [(text, text_pair)] if text_pair else [text]
        if not inputs:
            raise InputError("Cannot tokenize an empty batch")

        self._configure_backend(request)
        try:
            encodings = self._tokenizer.encode_batch(
                inputs, add_special_tokens=request.add_special_tokens, is_pretokenized=request.is_split_into_words
            )
        except Exception as exc:  # the Rust side raises plain Exception/TypeError
            raise InputError(f"Could not tokenize the input: {exc}") from exc
        except BaseException as exc:  # a Rust panic arrives as pyo3's PanicException, not an Exception
            if type(exc).__name__ != "PanicException":
                raise
            raise InputError(f"Could not tokenize the input with these options (the tokenizers library panicked: "
                             f"{exc}); with return_overflowing_tokens, `stride` must be smaller than `max_length` "
                             "minus the special tokens") from None

        mapping = None
        if request.return_overflowing_tokens:  # each input's overflow windows become rows after it
            mapping = [i for i, e in enumerate(encodings) for _ in range(1 + len(e.overflowing))]
            encodings = [row for e in encodings for row in [e, *e.overflowing]]
        data: dict[str, list] = {"input_ids": [e.ids for e in encodings]}
        if request.return_token_type_ids:
            data["token_type_ids"] = [e.type_ids for e in encodings]
        if request.return_attention_mask:
            data["attention_mask"] = [e.attention_mask for e in encodings]
        if request.return_special_tokens_mask:
            data["special_tokens_mask"] = [e.special_tokens_mask for e in encodings]
        if request.return_offsets_mapping:
            data["offset_mapping"] = [e.offsets for e in encodings]
        if request.return_length:
            data["length"] = [len(e.ids) for e in encodings]
        if mapping is not None:
            data["overflow_to_sample_mapping"] = mapping
        for ids in data["input_ids"]:
            self._warn_if_too_long(ids, request.max_length, verbose)

        if not is_batched and request.return_tensors is None and mapping is None:
            # transformers keeps `length` a list for a single text
            return BatchEncoding({key: value if key == "length" else value[0] for key, value in data.items()},
                                 encodings)
        return BatchEncoding(data, encodings, tensor_type=request.return_tensors)

    def _configure_backend(self, request: EncodeRequest) -> None:
        """Set the backend's truncation and padding for this call (only touching what changed)."""
        if request.truncation == "do_not_truncate":
            if self._tokenizer.truncation is not None:
                self._tokenizer.no_truncation()
        else:
            target = {
                "max_length": request.max_length,
                "stride": request.stride,
                "strategy": request.truncation,
                "direction": self.truncation_side,
            }
            current = self._tokenizer.truncation
            if current is None or {key: current.get(key) for key in target} != target:
                self._tokenizer.enable_truncation(**target)

        if request.padding == "do_not_pad":
            if self._tokenizer.padding is not None:
                self._tokenizer.no_padding()
        else:
            target = {
                "length": request.max_length if request.padding == "max_length" else None,
                "direction": request.padding_side,
                "pad_id": self.pad_token_id,
                "pad_token": self.pad_token,
                "pad_type_id": self.pad_token_type_id,
                "pad_to_multiple_of": request.pad_to_multiple_of,
            }
            if self._tokenizer.padding != target:
                self._tokenizer.enable_padding(**target)

    # ------------------------------------------------------------------ decoding
    def _decode(self, ids: list[int], skip_special_tokens: bool) -> str:
        _check_backend_ids(ids)
        return self._tokenizer.decode(ids, skip_special_tokens=skip_special_tokens)

    def _cleanup_applies(self) -> bool:
        # As transformers: the WordPiece-era clean-up would delete real spaces from BPE output.
        return (
            type(self._tokenizer.model).__name__ != "BPE"
            or self.clean_up_tokenization_spaces_for_bpe_even_though_it_will_corrupt_output
        )

    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        decoder = self._tokenizer.decoder
        return decoder.decode(tokens) if decoder is not None else " ".join(tokens)

    # ------------------------------------------------------------------ files
    def _save_vocabulary(self, directory: Path, prefix: str) -> tuple[str, ...]:
        tokenizer_file = directory / (prefix + TOKENIZER_FILE)
        # Per-call truncation/padding settings are not part of the tokenizer.
        data = json.loads(self._tokenizer.to_str())
        data["truncation"] = data["padding"] = None
        tokenizer_file.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
        # The per-model files too, so that older (slow) loaders can read the directory.
        legacy = self._tokenizer.model.save(str(directory), prefix[:-1] or None)
        return (str(tokenizer_file), *legacy)


def json_vocab(data: dict[str, Any]) -> dict[str, int]:
    """The model vocabulary of a parsed tokenizer.json, as token -> id."""
    vocab = data["model"].get("vocab")
    if isinstance(vocab, list):  # some writers store [token, score] rows
        vocab = {row[0] if isinstance(row, list) else row: index for index, row in enumerate(vocab)}
    if not isinstance(vocab, dict):
        raise CheckpointError("tokenizer.json has no usable model vocabulary")
    return vocab
