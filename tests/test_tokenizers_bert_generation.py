"""BertGenerationTokenizer parity with transformers on a SentencePiece model trained here."""
import shutil

import pytest
import sentencepiece
import transformers

from pygen.errors import CheckpointError, ConfigError
from pygen.tokenizers import BertGenerationTokenizer

try:
    from .test_tokenizers_support import (  # noqa: F401 (fixtures)
        assert_batch_parity,
        assert_same_encoding,
        assert_saved_parity,
        assert_strings_parity,
        corpus,
        spm_dir,
    )
except ImportError:
    from test_tokenizers_support import (  # noqa: F401 (fixtures)
        assert_batch_parity,
        assert_same_encoding,
        assert_saved_parity,
        assert_strings_parity,
        corpus,
        spm_dir,
    )


@pytest.fixture(scope="module")
def spm(spm_dir):
    return (
        BertGenerationTokenizer.from_pretrained(spm_dir),
        transformers.BertGenerationTokenizer.from_pretrained(str(spm_dir)),
    )


def test_strings(spm):
    assert_strings_parity(*spm, corpus())


def test_batches(spm):
    assert_batch_parity(*spm, corpus())


def test_japanese_round_trip(spm):
    ours, ref = spm
    text = "東京は日本語のテキストです。こんにちは世界"
    assert ours(text)["input_ids"] == ref(text)["input_ids"]
    assert ours.decode(ours(text)["input_ids"]) == ref.decode(ref(text)["input_ids"])


def test_defaults_add_no_special_tokens(spm, spm_dir):
    ours, ref = spm
    processor = sentencepiece.SentencePieceProcessor(model_file=str(spm_dir / "spiece.model"))
    text = "hello world です"
    assert ours(text)["input_ids"] == processor.encode(text) == ref(text)["input_ids"]
    assert ours.special_tokens_map == ref.special_tokens_map == {
        "bos_token": "<s>",
        "eos_token": "</s>",
        "unk_token": "<unk>",
        "sep_token": "<::::>",
        "pad_token": "<pad>",
    }
    # Tokens the model lacks follow its vocabulary, in transformers' order (sep before pad).
    size = processor.get_piece_size()
    assert (ours.sep_token_id, ours.pad_token_id) == (ref.sep_token_id, ref.pad_token_id) == (size, size + 1)
    assert (len(ours), ours.vocab_size) == (len(ref), ref.vocab_size) == (size + 2, size)
    assert ours.all_special_ids == ref.all_special_ids
    assert ours.get_vocab() == ref.get_vocab()


def test_special_tokens_in_text(spm):
    ours, ref = spm
    for text in ["a<s>b</s>c", "<pad><::::><unk>", " <s> spaced </s> ", "<s<s>>"]:
        assert_same_encoding(ours(text), ref(text), text)
        assert ours.tokenize(text) == ref.tokenize(text)
        ids = ref(text)["input_ids"]
        assert ours.decode(ids, skip_special_tokens=True) == ref.decode(ids, skip_special_tokens=True)


def test_pre_encoded_ids_are_accepted_like_transformers(spm):
    ours, ref = spm
    kwargs = {"truncation": True, "max_length": 3}
    assert_same_encoding(ours([5, 6, 7, 8], [9, 10], **kwargs), ref([5, 6, 7, 8], [9, 10], **kwargs), kwargs)


def test_save_round_trip(spm, tmp_path):
    ours, _ = spm
    assert_saved_parity(ours, transformers.BertGenerationTokenizer, tmp_path / "saved", corpus()[:300])
    assert {"spiece.model", "added_tokens.json"} <= {p.name for p in (tmp_path / "saved").iterdir()}


def test_loads_what_transformers_saves(spm, tmp_path):
    _, ref = spm
    ref.save_pretrained(str(tmp_path))
    ours = BertGenerationTokenizer.from_pretrained(tmp_path)
    assert_strings_parity(ours, ref, corpus()[:300], pairs=False)


def test_missing_or_corrupt_model_file(tmp_path, spm_dir):
    with pytest.raises(CheckpointError, match="spiece.model"):
        BertGenerationTokenizer.from_pretrained(tmp_path)
    (tmp_path / "spiece.model").write_bytes(b"not a sentencepiece model")
    with pytest.raises(CheckpointError, match="SentencePiece"):
        BertGenerationTokenizer.from_pretrained(tmp_path)


def test_unsupported_non_legacy_mode(spm_dir, tmp_path):
    shutil.copyfile(spm_dir / "spiece.model", tmp_path / "spiece.model")
    with pytest.raises(ConfigError, match="legacy"):
        BertGenerationTokenizer.from_pretrained(tmp_path, legacy=False)
