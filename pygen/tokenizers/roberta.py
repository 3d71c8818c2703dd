"""RoBERTa / BART tokenizer: byte-level BPE (GPT-2 style) with ``<s> ... </s>`` framing.

transformers 5.x uses one class for RoBERTa and BART (``BartTokenizer`` and the
``*Fast`` names are aliases of ``RobertaTokenizer``); so does pygen.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer, decoders, pre_tokenizers, processors
from tokenizers.models import BPE

from ..errors import CheckpointError, InputError
from .base import TOKENIZER_FILE, check_bool_options, missing_files_error
from .fast import TokenizersBackend, json_vocab


def _read_bpe_files(vocab_file: str | os.PathLike, merges_file: str | os.PathLike):
    """vocab.json and merges.txt, parsed exactly as the tokenizers library parses them."""
    try:
        return BPE.read_file(str(vocab_file), str(merges_file))
    except Exception as exc:  # the Rust reader raises plain Exception
        raise CheckpointError(f"Could not read BPE files {vocab_file} / {merges_file}: {exc}") from exc


class RobertaTokenizer(TokenizersBackend):
    """Byte-level BPE tokenizer of RoBERTa and BART.

    ``vocab``/``merges`` are a dict and a list of pairs, or the paths of vocab.json and
    merges.txt. Words are detected by their preceding space, so the first word of a
    text is encoded differently unless ``add_prefix_space=True``.
    """

    vocab_files_names = {"vocab_file": "vocab.json", "merges_file": "merges.txt", "tokenizer_file": "tokenizer.json"}
    model_input_names = ["input_ids", "attention_mask"]

    def __init__(
        self,
        vocab: str | os.PathLike | dict[str, int] | None = None,
        merges: str | os.PathLike | list | None = None,
        errors: str = "replace",
        bos_token="<s>",
        eos_token="</s>",
        sep_token="</s>",
        cls_token="<s>",
        unk_token="<unk>",
        pad_token="<pad>",
        mask_token="<mask>",
        add_prefix_space: bool = False,
        trim_offsets: bool = True,
        vocab_file: str | os.PathLike | None = None,
        merges_file: str | os.PathLike | None = None,
        **kwargs,
    ):
        check_bool_options(type(self).__name__, add_prefix_space=add_prefix_space, trim_offsets=trim_offsets)
        vocab = vocab_file if vocab is None else vocab
        merges = merges_file if merges is None else merges
        source = None
        if isinstance(vocab, (str, os.PathLike)):
            if merges is None:
                raise InputError("A vocab.json file needs its merges.txt: pass `merges`")
            source = f"{vocab} / {merges}"
            vocab, merges = _read_bpe_files(vocab, merges)
        elif isinstance(merges, (str, os.PathLike)):
            raise InputError("Pass `vocab` as a file path too when `merges` is a file path")
        if vocab is None:
            # An empty tokenizer that only knows its special tokens, as in transformers.
            vocab = {str(t): i for i, t in enumerate((pad_token, unk_token, cls_token, sep_token, mask_token))}
        self.errors = errors
        self.add_prefix_space = add_prefix_space
        self.trim_offsets = trim_offsets

        try:
            model = BPE(
                vocab=vocab,
                merges=[tuple(m) for m in merges or []],
                dropout=None,
                continuing_subword_prefix="",
                end_of_word_suffix="",
                fuse_unk=False,
            )
        except Exception as exc:  # the Rust side raises plain Exception/TypeError
            if source is not None:
                raise CheckpointError(f"Could not build the BPE model from {source}: {exc}") from exc
            raise InputError(f"Could not build the BPE model from `vocab` (token -> id) and `merges` (pairs of "
                             f"tokens): {exc}") from exc
        backend = Tokenizer(model)
        backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=add_prefix_space)
        backend.decoder = decoders.ByteLevel()
        super().__init__(
            backend,
            errors=errors,
            bos_token=bos_token,
            eos_token=eos_token,
            sep_token=sep_token,
            cls_token=cls_token,
            unk_token=unk_token,
            pad_token=pad_token,
            mask_token=mask_token,
            add_prefix_space=add_prefix_space,
            trim_offsets=trim_offsets,
            **kwargs,
        )
        backend.post_processor = processors.RobertaProcessing(
            (str(sep_token), self.sep_token_id),
            (str(cls_token), self.cls_token_id),
            trim_offsets=trim_offsets,
            add_prefix_space=add_prefix_space,
        )

    @classmethod
    def _from_directory(cls, directory: Path, config: dict[str, Any], tokenizer_json: dict[str, Any] | None):
        if tokenizer_json is not None:
            try:
                merges = tokenizer_json["model"].get("merges", [])
                merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in merges]
                return cls(vocab=json_vocab(tokenizer_json), merges=merges, **config)
            except (InputError, TypeError, AttributeError) as exc:  # the vocabulary came from the file
                raise CheckpointError(f"{directory / TOKENIZER_FILE}: {exc}") from exc
        vocab_file, merges_file = directory / "vocab.json", directory / "merges.txt"
        if not (vocab_file.is_file() and merges_file.is_file()):
            raise missing_files_error(cls.__name__, directory, "tokenizer.json, or vocab.json and merges.txt")
        return cls(vocab=vocab_file, merges=merges_file, **config)


RobertaTokenizerFast = RobertaTokenizer
BartTokenizer = RobertaTokenizer
BartTokenizerFast = RobertaTokenizer
