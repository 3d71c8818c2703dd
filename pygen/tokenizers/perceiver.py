"""Perceiver IO tokenizer: raw UTF-8 bytes after six special tokens."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from tokenizers import AddedToken

from ..errors import InputError
from .python import PythonBackend

_BYTE_VALUES = 256


class PerceiverTokenizer(PythonBackend):
    """Bytes tokenizer: id = byte + 6, after [PAD]=0 [BOS]=1 [EOS]=2 [MASK]=3 [CLS]=4 [SEP]=5.

    Sequences are framed as ``[CLS] A [SEP]`` and ``[CLS] A [SEP] B [SEP]``; decoding
    replaces invalid UTF-8 with U+FFFD.
    """

    model_input_names = ["input_ids", "attention_mask"]

    def __init__(
        self,
        pad_token="[PAD]",
        bos_token="[BOS]",
        eos_token="[EOS]",
        mask_token="[MASK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        model_max_length: int = 2048,
        added_tokens_decoder: dict[int, AddedToken] | None = None,
        **kwargs,
    ):
        special = [
            AddedToken(token, lstrip=False, rstrip=False) if isinstance(token, str) else token
            for token in (pad_token, bos_token, eos_token, mask_token, cls_token, sep_token)
        ]
        pad_token, bos_token, eos_token, mask_token, cls_token, sep_token = special
        # The special tokens own the first ids; bytes come after them.
        self._num_special_tokens = len(special)
        decoder = {index: token for index, token in enumerate(special)}
        decoder.update(added_tokens_decoder or {})
        super().__init__(
            added_tokens_decoder=decoder,
            pad_token=pad_token,
            bos_token=bos_token,
            eos_token=eos_token,
            mask_token=mask_token,
            cls_token=cls_token,
            sep_token=sep_token,
            model_max_length=model_max_length,
            **kwargs,
        )

    @property
    def vocab_size(self) -> int:
        return _BYTE_VALUES

    def get_vocab(self) -> dict[str, int]:
        vocab = {chr(byte): byte + self._num_special_tokens for byte in range(_BYTE_VALUES)}
        vocab.update(self.added_tokens_encoder)
        return vocab

    def build_inputs_with_special_tokens(self, token_ids_0: list[int], token_ids_1: list[int] | None = None):
        if token_ids_1 is None:
            return [self.cls_token_id] + token_ids_0 + [self.sep_token_id]
        return [self.cls_token_id] + token_ids_0 + [self.sep_token_id] + token_ids_1 + [self.sep_token_id]

    def get_special_tokens_mask(self, token_ids_0, token_ids_1=None, already_has_special_tokens=False):
        if already_has_special_tokens:
            return super().get_special_tokens_mask(token_ids_0, token_ids_1, True)
        if token_ids_1 is None:
            return [1] + [0] * len(token_ids_0) + [1]
        return [1] + [0] * len(token_ids_0) + [1] + [0] * len(token_ids_1) + [1]

    def _tokenize(self, text: str) -> list[str]:
        # One token per UTF-8 byte, spelled as the character with that code point.
        return [chr(byte) for byte in text.encode("utf-8")]

    def _model_token_to_id(self, token: str) -> int | None:
        if len(token) != 1:
            return self.unk_token_id
        return ord(token) + self._num_special_tokens

    def _model_id_to_token(self, index: int) -> str:
        byte = index - self._num_special_tokens
        if not 0 <= byte < _BYTE_VALUES:
            raise InputError(f"Token id {index} is outside the byte vocabulary [0, {len(self)})")
        return chr(byte)

    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        data = bytearray()
        for token in tokens:
            if token in self._added_tokens_encoder:
                data += token.encode("utf-8")
            elif len(token) == 1 and ord(token) < _BYTE_VALUES:
                data.append(ord(token))
            else:
                raise InputError(f"{token!r} is neither a byte token nor an added token")
        return data.decode("utf-8", errors="replace")

    @classmethod
    def _from_directory(cls, directory: Path, config: dict[str, Any], tokenizer_json: dict[str, Any] | None):
        return cls(**config)
