"""BertGeneration tokenizer: a SentencePiece model, no special tokens added by default."""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from ..errors import CheckpointError, ConfigError, InputError
from .base import missing_files_error
from .python import PythonBackend

SPIECE_UNDERLINE = "\u2581"


class BertGenerationTokenizer(PythonBackend):
    """SentencePiece tokenizer of BertGeneration (and BERT-based encoder-decoders).

    ``vocab_file`` is a SentencePiece ``.model`` file. Special tokens that the model
    lacks (``<pad>``, ``<::::>``...) get ids after its vocabulary.
    """

    vocab_files_names = {"vocab_file": "spiece.model"}
    model_input_names = ["input_ids", "attention_mask"]

    def __init__(
        self,
        vocab_file: str | os.PathLike,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        sep_token="<::::>",
        sp_model_kwargs: dict[str, Any] | None = None,
        **kwargs,
    ):
        if kwargs.get("legacy", True) is False:
            raise ConfigError("BertGenerationTokenizer does not support legacy=False (SentencePiece prefix handling)")
        import sentencepiece

        self.vocab_file = str(vocab_file)
        self.sp_model_kwargs = dict(sp_model_kwargs or {})
        self.sp_model = sentencepiece.SentencePieceProcessor(**self.sp_model_kwargs)
        try:
            self.sp_model.Load(self.vocab_file)
        except (OSError, RuntimeError) as exc:
            raise CheckpointError(f"Could not load SentencePiece model {self.vocab_file}: {exc}") from exc
        super().__init__(
            bos_token=bos_token,
            eos_token=eos_token,
            unk_token=unk_token,
            pad_token=pad_token,
            sep_token=sep_token,
            sp_model_kwargs=self.sp_model_kwargs,
            **kwargs,
        )

    @property
    def vocab_size(self) -> int:
        return self.sp_model.get_piece_size()

    def _tokenize(self, text: str) -> list[str]:
        return self.sp_model.encode(text, out_type=str)

    def _model_token_to_id(self, token: str) -> int:
        return self.sp_model.piece_to_id(token)

    def _model_id_to_token(self, index: int) -> str:
        if not 0 <= index < self.vocab_size:
            raise InputError(f"Token id {index} is outside the vocabulary (size {len(self)})")
        return self.sp_model.id_to_piece(index)

    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        return "".join(tokens).replace(SPIECE_UNDERLINE, " ").strip()

    @classmethod
    def _from_directory(cls, directory: Path, config: dict[str, Any], tokenizer_json: dict[str, Any] | None):
        models = [directory / "spiece.model", *sorted(directory.glob("*.model"))]
        model_file = next((path for path in models if path.is_file()), None)
        if model_file is None:
            raise missing_files_error(cls.__name__, directory, "a SentencePiece model (spiece.model)")
        return cls(vocab_file=model_file, **config)

    def _save_model_files(self, directory: Path, prefix: str) -> tuple[str, ...]:
        target = directory / (prefix + self.vocab_files_names["vocab_file"])
        if os.path.isfile(self.vocab_file):
            if os.path.abspath(self.vocab_file) != os.path.abspath(target):
                shutil.copyfile(self.vocab_file, target)
        else:
            target.write_bytes(self.sp_model.serialized_model_proto())
        return (str(target),)
