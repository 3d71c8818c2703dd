"""BertTokenizer parity with transformers on the vocabulary of a real BERT (MiniLM)."""
import pytest
import transformers

from pygen.errors import InputError
from pygen.tokenizers import BertTokenizer, BertTokenizerFast

try:
    from .test_tokenizers_support import (  # noqa: F401 (fixtures)
        assert_batch_parity,
        assert_same_encoding,
        assert_saved_parity,
        assert_strings_parity,
        bert_vocab_dir,
        corpus,
        minilm_dir,
    )
except ImportError:
    from test_tokenizers_support import (  # noqa: F401 (fixtures)
        assert_batch_parity,
        assert_same_encoding,
        assert_saved_parity,
        assert_strings_parity,
        bert_vocab_dir,
        corpus,
        minilm_dir,
    )


@pytest.fixture(scope="module")
def minilm(minilm_dir):
    return BertTokenizer.from_pretrained(minilm_dir), transformers.BertTokenizer.from_pretrained(str(minilm_dir))


def test_fast_alias():
    assert BertTokenizerFast is BertTokenizer


def test_strings(minilm):
    assert_strings_parity(*minilm, corpus())


def test_batches(minilm):
    assert_batch_parity(*minilm, corpus())


def test_length_of_one_text_and_a_stride_the_backend_refuses(minilm):
    """return_length on one text is a list, as in transformers; a stride the tokenizers library
    panics on (not an Exception in Python) is an InputError."""
    ours, ref = minilm
    text = "a somewhat longer sentence here"
    assert ours(text, return_length=True)["length"] == ref(text, return_length=True)["length"] == [7]
    with pytest.raises(InputError, match="stride"):
        ours(text, truncation=True, max_length=4, stride=2, return_overflowing_tokens=True)


def test_config_and_special_tokens(minilm):
    ours, ref = minilm
    assert ours.model_max_length == ref.model_max_length == 512
    assert ours.do_lower_case is True
    assert (len(ours), ours.vocab_size) == (len(ref), ref.vocab_size)
    for name in ("unk", "sep", "pad", "cls", "mask", "bos", "eos"):
        assert getattr(ours, f"{name}_token_id") == getattr(ref, f"{name}_token_id")
    assert ours.all_special_ids == ref.all_special_ids
    assert ours.num_special_tokens_to_add() == 2 and ours.num_special_tokens_to_add(pair=True) == 3


def test_pairs_have_token_type_ids(minilm):
    ours, _ = minilm
    encoding = ours("first part", "second part here")
    assert encoding["token_type_ids"] == [0, 0, 0, 0, 1, 1, 1, 1]
    assert "token_type_ids" not in ours("x", return_token_type_ids=False)


@pytest.mark.parametrize(
    "options",
    [
        {"do_lower_case": False},
        {"strip_accents": True},
        {"do_lower_case": True, "strip_accents": False},
        {"tokenize_chinese_chars": False},
        {"clean_up_tokenization_spaces": True},
        {"never_split": ["hello"], "do_basic_tokenize": True},
    ],
)
def test_options_from_vocab_txt(bert_vocab_dir, options):
    ours = BertTokenizer.from_pretrained(bert_vocab_dir, **options)
    ref = transformers.BertTokenizer.from_pretrained(str(bert_vocab_dir), **options)
    assert_strings_parity(ours, ref, corpus()[:400], pairs=False)
    assert_batch_parity(ours, ref, corpus()[:96])


def test_constructor_from_vocab_file(minilm_dir):
    ours = BertTokenizer(str(minilm_dir / "vocab.txt"), do_lower_case=False)
    ref = transformers.BertTokenizer(vocab=str(minilm_dir / "vocab.txt"), do_lower_case=False)
    assert_strings_parity(ours, ref, corpus()[:200], pairs=False)


def test_save_round_trip(bert_vocab_dir, tmp_path):
    ours = BertTokenizer.from_pretrained(bert_vocab_dir, do_lower_case=False, model_max_length=128)
    assert_saved_parity(ours, transformers.BertTokenizer, tmp_path / "saved", corpus()[:200])
    assert (tmp_path / "saved" / "vocab.txt").is_file()


def test_loads_what_transformers_saves(minilm, tmp_path):
    _, ref = minilm
    ref.save_pretrained(str(tmp_path))
    ours = BertTokenizer.from_pretrained(tmp_path)
    assert_strings_parity(ours, ref, corpus()[:300], pairs=False)


@pytest.mark.parametrize("stride", [0, 1, 3])
def test_overflowing_tokens(minilm, stride):
    """return_overflowing_tokens: the cut-off windows as extra rows, with overflow_to_sample_mapping."""
    ours, ref = minilm
    texts = corpus()[:6]
    for kwargs in (dict(truncation=True, max_length=9), dict(truncation=True, max_length=8, padding=True),
                   dict(truncation=True, max_length=10, return_tensors="pt", padding="max_length")):
        kwargs.update(return_overflowing_tokens=True, stride=stride)
        assert_same_encoding(ours(texts, **kwargs), ref(texts, **kwargs), kwargs)
        assert_same_encoding(ours(texts[0], **kwargs), ref(texts[0], **kwargs), kwargs)  # stays batched
        pairs = (["a question?"] * len(texts), texts)
        kwargs["truncation"] = "only_second"
        assert_same_encoding(ours(*pairs, **kwargs), ref(*pairs, **kwargs), kwargs)
