"""Backend for tokenizers implemented in Python (bytes, SentencePiece).

Mirrors transformers' ``PythonBackend``: added tokens are cut out of the text first,
the rest goes through the model's ``_tokenize``; special tokens, truncation and
padding are applied per sequence, then the batch is padded together.
"""
from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

from tokenizers import AddedToken

from ..errors import InputError
from .base import (
    ADDED_TOKENS_FILE,
    BatchEncoding,
    EncodeRequest,
    PreTrainedTokenizerBase,
    added_token_state,
    write_json,
)


class PythonBackend(PreTrainedTokenizerBase):
    """A tokenizer whose model lives in Python; subclasses provide the vocabulary."""

    def __init__(self, added_tokens_decoder: dict[int, AddedToken] | None = None, **kwargs):
        self._added_tokens_decoder: dict[int, AddedToken] = dict(added_tokens_decoder or {})
        self._added_tokens_encoder: dict[str, int] = {t.content: i for i, t in self._added_tokens_decoder.items()}
        super().__init__(**kwargs)
        self._refresh_added_tokens()
        missing = [t for t in self.all_special_tokens if t not in self._added_tokens_encoder]
        self._add_tokens(missing, special_tokens=True)

    @property
    def is_fast(self) -> bool:
        return False

    # ------------------------------------------------------------------ model hooks
    def _tokenize(self, text: str) -> list[str]:
        raise NotImplementedError

    def _model_token_to_id(self, token: str) -> int | None:
        raise NotImplementedError

    def _model_id_to_token(self, index: int) -> str:
        raise NotImplementedError

    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        return " ".join(tokens)

    def build_inputs_with_special_tokens(self, token_ids_0: list[int], token_ids_1: list[int] | None = None):
        """The sequence(s) with the model's special tokens; none by default."""
        return token_ids_0 if token_ids_1 is None else token_ids_0 + token_ids_1

    def get_special_tokens_mask(self, token_ids_0, token_ids_1=None, already_has_special_tokens=False):
        if already_has_special_tokens:
            return super().get_special_tokens_mask(token_ids_0, token_ids_1, True)
        return [0] * (len(token_ids_0) + len(token_ids_1 or []))

    def create_token_type_ids_from_sequences(self, token_ids_0: list[int], token_ids_1: list[int] | None = None):
        """0 over the first sequence (with its special tokens), 1 over the rest of a pair."""
        first = len(self.build_inputs_with_special_tokens(token_ids_0))
        if token_ids_1 is None:
            return [0] * first
        total = len(self.build_inputs_with_special_tokens(token_ids_0, token_ids_1))
        return [0] * first + [1] * (total - first)

    # ------------------------------------------------------------------ vocabulary
    def get_vocab(self) -> dict[str, int]:
        vocab = {self._id_to_token(i): i for i in range(self.vocab_size)}
        vocab.update(self.added_tokens_encoder)
        return vocab

    def __len__(self) -> int:
        return self._total_size

    @property
    def added_tokens_decoder(self) -> dict[int, AddedToken]:
        return dict(sorted(self._added_tokens_decoder.items()))

    @property
    def added_tokens_encoder(self) -> dict[str, int]:
        return {token.content: index for index, token in sorted(self._added_tokens_decoder.items())}

    def get_added_vocab(self) -> dict[str, int]:
        return dict(self._added_tokens_encoder)

    def _add_tokens(self, new_tokens: list, special_tokens: bool) -> int:
        """Register added tokens: a token already in the vocabulary keeps its id, others go at the end."""
        vocab = self.get_vocab()
        next_index = len(vocab)
        added = 0
        for token in new_tokens:
            if str(token) == "":
                continue
            if isinstance(token, str):
                if token in self._added_tokens_encoder:
                    continue
                special = special_tokens or token in self.all_special_tokens
                token = AddedToken(token, rstrip=False, lstrip=False, normalized=not special, special=special)
            elif special_tokens:
                token.special = True
            if token in self._added_tokens_decoder.values():
                continue
            index = vocab.get(token.content)
            if index is None:
                index, next_index, added = next_index, next_index + 1, added + 1
            if token.special and token.content not in self.all_special_tokens:
                self._extra_special_tokens.append(token)
            self._added_tokens_decoder[index] = token
            self._added_tokens_encoder[token.content] = index
        self._refresh_added_tokens()
        return added

    def _refresh_added_tokens(self) -> None:
        """Rebuild the splitting pattern and the cached vocabulary size after a change."""
        contents = set(self._added_tokens_encoder) | set(self.all_special_tokens)
        # Longest first, so that the leftmost match is also the longest one.
        ordered = sorted((c for c in contents if c), key=lambda c: (-len(c), c))
        self._added_pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None
        self._total_size = len(self.get_vocab())

    def _token_to_id(self, token: str) -> int | None:
        if token in self._added_tokens_encoder:
            return self._added_tokens_encoder[token]
        return self._model_token_to_id(token)

    def _id_to_token(self, index: int) -> str:
        if index in self._added_tokens_decoder:
            return self._added_tokens_decoder[index].content
        return self._model_id_to_token(index)

    def num_special_tokens_to_add(self, pair: bool = False) -> int:
        return len(self.build_inputs_with_special_tokens([], [] if pair else None))

    # ------------------------------------------------------------------ tokenizing
    def tokenize(self, text: str, pair: str | None = None, add_special_tokens: bool = False) -> list[str]:
        """Tokens of ``text``: added tokens kept whole, the rest split by the model."""
        if not isinstance(text, str):
            raise InputError(f"tokenize expects a string, got {type(text).__name__}")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InputError(f"Text is not valid Unicode (unpaired surrogate?): {exc}") from exc
        if self.split_special_tokens:
            return self._tokenize(text)
        chunks, start = [], 0
        for match in self._added_pattern.finditer(text) if self._added_pattern else ():
            chunks += [text[start : match.start()], match.group()]
            start = match.end()
        chunks.append(text[start:])
        chunks = [c for c in chunks if c]
        self._apply_added_token_spacing(chunks)
        special = set(self.all_special_tokens)
        tokens: list[str] = []
        for chunk in chunks:
            if not chunk:
                continue
            if chunk in self._added_tokens_encoder or chunk in special:
                tokens.append(chunk)
            else:
                tokens.extend(self._tokenize(chunk))
        return tokens

    def _apply_added_token_spacing(self, chunks: list[str]) -> None:
        """Honour the lstrip / rstrip / single_word flags of the added tokens, in place."""
        for i, chunk in enumerate(chunks):
            if chunk not in self._added_tokens_encoder:
                continue
            token = self._added_tokens_decoder[self._added_tokens_encoder[chunk]]
            left = chunks[i - 1] if i > 0 else None
            right = chunks[i + 1] if i < len(chunks) - 1 else None
            if token.rstrip and right:
                chunks[i + 1] = right.lstrip()
            if token.lstrip and left:
                chunks[i - 1] = left.rstrip()
            if token.single_word:
                # Inside a word the token is plain text: glue it to its neighbour.
                if left and left[-1] != " ":
                    chunks[i - 1] += chunk
                    chunks[i] = ""
                elif right and right[0] != " ":
                    chunks[i + 1] = chunk + chunks[i + 1]
                    chunks[i] = ""

    # ------------------------------------------------------------------ encoding
    def _encode_inputs(self, text, text_pair, request: EncodeRequest, verbose: bool) -> BatchEncoding:
        split = request.is_split_into_words
        is_batched = isinstance(text, (list, tuple)) and (
            (not text and not split)
            or (bool(text) and split and isinstance(text[0], (list, tuple)))
            or (bool(text) and not split and isinstance(text[0], (str, list, tuple)))
        )
        if not is_batched:
            encoded = self._encode_one(text, text_pair, request, verbose)
            return BatchEncoding(encoded, tensor_type=request.return_tensors, prepend_batch_axis=True)

        if not text:
            raise InputError("Cannot tokenize an empty batch")
        if text_pair is not None and (not isinstance(text_pair, (list, tuple)) or len(text_pair) != len(text)):
            raise InputError("For a batch of texts, `text_pair` must be a list of the same length")
        # Each item unpadded and without mask; the batch is padded together below.
        item_request = replace(request, padding="do_not_pad", pad_to_multiple_of=None, return_attention_mask=False)
        batch: dict[str, list] = {}
        for first, second in zip(text, text_pair if text_pair is not None else [None] * len(text)):
            if isinstance(first, (list, tuple)) and first and not isinstance(first[0], int) and second is None:
                is_pair = (
                    len(first) == 2
                    and (not split or isinstance(first, tuple))
                    and all(isinstance(part, (str, list, tuple)) for part in first)
                )
                if is_pair:
                    first, second = first
                elif len(first) == 1:
                    first = first[0]
                elif not split:
                    raise InputError(f"Expected a pair of sequences, got {len(first)} sequences")
            for key, value in self._encode_one(first, second, item_request, verbose).items():
                batch.setdefault(key, []).append(value)
        padded = self.pad(
            batch,
            padding=request.padding,
            max_length=request.max_length,
            pad_to_multiple_of=request.pad_to_multiple_of,
            padding_side=request.padding_side,
            return_attention_mask=request.return_attention_mask,
            verbose=verbose,
        )
        return BatchEncoding(padded.data, tensor_type=request.return_tensors)

    def _input_ids(self, text, is_split_into_words: bool) -> list[int]:
        if isinstance(text, str):
            return self.convert_tokens_to_ids(self.tokenize(text))
        if isinstance(text, (list, tuple)) and text:
            if all(isinstance(i, int) and not isinstance(i, bool) for i in text):
                return list(text)  # already ids
            if all(isinstance(t, str) for t in text):
                if is_split_into_words:
                    return self.convert_tokens_to_ids([tok for word in text for tok in self.tokenize(word)])
                return self.convert_tokens_to_ids(list(text))
        raise InputError(
            "Text input must be a str, a list of str (a batch), a list of (str, str) pairs "
            f"or a list of token ids; got {text!r:.80}"
        )

    def _encode_one(self, text, text_pair, request: EncodeRequest, verbose: bool) -> dict[str, Any]:
        """Ids of one sequence (or pair) with special tokens, truncation and padding applied."""
        ids = self._input_ids(text, request.is_split_into_words)
        pair_ids = None if text_pair is None else self._input_ids(text_pair, request.is_split_into_words)
        special = self.num_special_tokens_to_add(pair=pair_ids is not None) if request.add_special_tokens else 0
        total = len(ids) + len(pair_ids or []) + special
        if request.return_overflowing_tokens and request.truncation == "longest_first" and pair_ids is not None:
            raise InputError("return_overflowing_tokens cannot return the overflow of a pair truncated with "
                             "'longest_first': choose truncation='only_first' or 'only_second'")
        overflowing: list[int] = []
        if request.truncation != "do_not_truncate" and request.max_length and total > request.max_length:
            excess = total - request.max_length
            overflowing = self._overflow(ids, pair_ids, excess, request.truncation, request.stride)
            ids, pair_ids = self._truncate(ids, pair_ids, excess, request.truncation)

        if request.add_special_tokens:
            sequence = self.build_inputs_with_special_tokens(ids, pair_ids)
            type_ids = self.create_token_type_ids_from_sequences(ids, pair_ids)
        else:
            sequence = ids + (pair_ids or [])
            type_ids = [0] * len(sequence)
        encoded: dict[str, Any] = {"input_ids": sequence}
        if request.return_token_type_ids:
            encoded["token_type_ids"] = type_ids
        if request.return_special_tokens_mask:
            encoded["special_tokens_mask"] = (
                self.get_special_tokens_mask(ids, pair_ids) if request.add_special_tokens else [0] * len(sequence)
            )
        # No offsets here: transformers' Python tokenizers ignore return_offsets_mapping too.
        if request.return_overflowing_tokens and request.return_tensors is None and overflowing:
            encoded["overflowing_tokens"] = overflowing
            encoded["num_truncated_tokens"] = total - request.max_length
        self._warn_if_too_long(sequence, request.max_length, verbose)
        if request.padding != "do_not_pad" or request.return_attention_mask:
            encoded = self._pad_one(
                encoded,
                request.max_length,
                request.padding,
                request.pad_to_multiple_of,
                request.padding_side,
                request.return_attention_mask,
            )
        if request.return_length:
            encoded["length"] = len(encoded["input_ids"])
        return encoded

    def _overflow(self, ids: list[int], pair_ids: list[int] | None, excess: int, strategy: str,
                  stride: int) -> list[int]:
        """The tokens truncation removes plus ``stride`` of those kept next to them (transformers'
        ``overflowing_tokens``); none for a pair cut with 'longest_first'."""
        from_left = self.truncation_side == "left"
        if strategy == "only_first" or (strategy == "longest_first" and pair_ids is None):
            source = ids
        elif strategy == "only_second" and pair_ids:
            source = pair_ids
        else:
            return []
        window = min(len(source), stride + excess)
        return source[:window] if from_left else source[-window:]

    def _truncate(self, ids: list[int], pair_ids: list[int] | None, excess: int, strategy: str):
        """Drop ``excess`` tokens following ``strategy`` (transformers' Python algorithm)."""
        from_left = self.truncation_side == "left"
        if strategy == "only_first" or (strategy == "longest_first" and pair_ids is None):
            ids = ids[excess:] if from_left else ids[:-excess]
        elif strategy == "longest_first":
            # First even out the two lengths, then cut the remainder alternately.
            uneven = min(abs(len(pair_ids) - len(ids)), excess)
            rest = excess - uneven
            if len(ids) > len(pair_ids):
                cut_first, cut_second = uneven + rest // 2, rest - rest // 2
            else:
                cut_first, cut_second = rest // 2, uneven + rest - rest // 2
            if from_left:
                ids = ids[cut_first:]
                pair_ids = pair_ids[cut_second:] if pair_ids else None
            else:
                ids = ids[:-cut_first] if cut_first > 0 else ids
                pair_ids = pair_ids[:-cut_second] if pair_ids and cut_second > 0 else pair_ids
        elif strategy == "only_second" and pair_ids:
            pair_ids = pair_ids[excess:] if from_left else pair_ids[:-excess]
        return ids, pair_ids

    # ------------------------------------------------------------------ decoding
    def _decode(self, ids: list[int], skip_special_tokens: bool) -> str:
        return self.convert_tokens_to_string(self.convert_ids_to_tokens(ids, skip_special_tokens=skip_special_tokens))

    # ------------------------------------------------------------------ files
    def _tokenizer_config(self) -> dict[str, Any]:
        config = super()._tokenizer_config()
        config["added_tokens_decoder"] = {
            str(index): added_token_state(token) for index, token in self.added_tokens_decoder.items()
        }
        return config

    def _save_vocabulary(self, directory: Path, prefix: str) -> tuple[str, ...]:
        written = self._save_model_files(directory, prefix)
        # Tokens past the model's vocabulary, for loaders that predate added_tokens_decoder.
        beyond = {t: i for t, i in self.added_tokens_encoder.items() if i >= self.vocab_size}
        if beyond:
            path = directory / (prefix + ADDED_TOKENS_FILE)
            write_json(path, beyond)
            written += (str(path),)
        return written

    def _save_model_files(self, directory: Path, prefix: str) -> tuple[str, ...]:
        return ()
