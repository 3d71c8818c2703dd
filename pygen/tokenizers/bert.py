"""BERT tokenizer: BERT normalization and pre-tokenization, then WordPiece.

As in transformers 5.x, ``BertTokenizerFast`` is the same class. ``never_split`` and
``do_basic_tokenize`` are accepted and saved, but, like there, have no effect.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers, processors
from tokenizers.models import WordPiece

from ..errors import CheckpointError, InputError
from .base import TOKENIZER_FILE, check_bool_options, missing_files_error
from .fast import TokenizersBackend, json_vocab


class BertTokenizer(TokenizersBackend):
    """WordPiece tokenizer of BERT: ``[CLS] A [SEP]`` and ``[CLS] A [SEP] B [SEP]`` with token type ids.

    ``vocab`` is a dict or the path of a vocab.txt (one token per line).
    """

    vocab_files_names = {"vocab_file": "vocab.txt", "tokenizer_file": "tokenizer.json"}
    model_input_names = ["input_ids", "token_type_ids", "attention_mask"]

    def __init__(
        self,
        vocab: str | os.PathLike | dict[str, int] | None = None,
        do_lower_case: bool = True,
        unk_token="[UNK]",
        sep_token="[SEP]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        mask_token="[MASK]",
        tokenize_chinese_chars: bool = True,
        strip_accents: bool | None = None,
        vocab_file: str | os.PathLike | None = None,
        **kwargs,
    ):
        check_bool_options(type(self).__name__, do_lower_case=do_lower_case,
                           tokenize_chinese_chars=tokenize_chinese_chars)
        if strip_accents is not None:
            check_bool_options(type(self).__name__, strip_accents=strip_accents)
        vocab = vocab_file if vocab is None else vocab
        source = None
        if isinstance(vocab, (str, os.PathLike)):
            source = vocab
            try:
                vocab = WordPiece.read_file(str(vocab))
            except Exception as exc:  # the Rust reader raises plain Exception
                raise CheckpointError(f"Could not read WordPiece vocabulary {vocab}: {exc}") from exc
        if vocab is None:
            vocab = {str(t): i for i, t in enumerate((pad_token, unk_token, cls_token, sep_token, mask_token))}
        self.do_lower_case = do_lower_case
        self.tokenize_chinese_chars = tokenize_chinese_chars
        self.strip_accents = strip_accents

        try:
            model = WordPiece(vocab, unk_token=str(unk_token))
        except Exception as exc:  # the Rust side raises plain Exception/TypeError
            if source is not None:
                raise CheckpointError(f"Could not build the WordPiece model from {source}: {exc}") from exc
            raise InputError(f"Could not build the WordPiece model from `vocab` (a token -> id dict): {exc}") from exc
        backend = Tokenizer(model)
        # strip_accents=None means "strip when lowercasing", as in the original BERT.
        backend.normalizer = normalizers.BertNormalizer(
            clean_text=True,
            handle_chinese_chars=tokenize_chinese_chars,
            strip_accents=strip_accents,
            lowercase=do_lower_case,
        )
        backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        backend.decoder = decoders.WordPiece(prefix="##")
        super().__init__(
            backend,
            do_lower_case=do_lower_case,
            unk_token=unk_token,
            sep_token=sep_token,
            pad_token=pad_token,
            cls_token=cls_token,
            mask_token=mask_token,
            tokenize_chinese_chars=tokenize_chinese_chars,
            strip_accents=strip_accents,
            **kwargs,
        )
        cls, sep = str(self.cls_token), str(self.sep_token)
        # Without those tokens, fall back to their ids in the default five-token vocabulary.
        cls_id = 2 if self.cls_token_id is None else self.cls_token_id
        sep_id = 3 if self.sep_token_id is None else self.sep_token_id
        backend.post_processor = processors.TemplateProcessing(
            single=f"{cls}:0 $A:0 {sep}:0",
            pair=f"{cls}:0 $A:0 {sep}:0 $B:1 {sep}:1",
            special_tokens=[(cls, cls_id), (sep, sep_id)],
        )

    @classmethod
    def _from_directory(cls, directory: Path, config: dict[str, Any], tokenizer_json: dict[str, Any] | None):
        if tokenizer_json is not None:
            try:
                return cls(vocab=json_vocab(tokenizer_json), **config)
            except InputError as exc:  # the vocabulary came from the file
                raise CheckpointError(f"{directory / TOKENIZER_FILE}: {exc}") from exc
        vocab_file = directory / "vocab.txt"
        if not vocab_file.is_file():
            raise missing_files_error(cls.__name__, directory, "tokenizer.json or vocab.txt")
        return cls(vocab=vocab_file, **config)


BertTokenizerFast = BertTokenizer
