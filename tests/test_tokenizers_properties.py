"""Property tests (hypothesis): same ids as transformers, and round trips where transformers has them."""
import pytest
import transformers
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pygen.tokenizers import BertGenerationTokenizer, BertTokenizer, PerceiverTokenizer, RobertaTokenizer

try:
    from .test_tokenizers_support import minilm_dir, spm_dir, trained_bpe_dir  # noqa: F401 (fixtures)
except ImportError:
    from test_tokenizers_support import minilm_dir, spm_dir, trained_bpe_dir  # noqa: F401 (fixtures)

PROPERTY_SETTINGS = settings(
    max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

# Any text, biased towards the characters and tokens that matter to tokenizers.
texts = st.lists(
    st.one_of(
        st.text(max_size=8),
        st.sampled_from(list(" \n\t<>[]/:")),
        st.sampled_from(["<mask>", "<s>", "</s>", "[MASK]", "[SEP]", "<pad>", "<::::>", "  ", "東京", "é", "😀"]),
    ),
    max_size=12,
).map("".join)


@pytest.fixture(scope="module")
def tokenizers(trained_bpe_dir, minilm_dir, spm_dir):
    """(pygen, transformers) pairs by name."""
    return {
        "roberta": (
            RobertaTokenizer.from_pretrained(trained_bpe_dir),
            transformers.RobertaTokenizer.from_pretrained(str(trained_bpe_dir)),
        ),
        "bert": (
            BertTokenizer.from_pretrained(minilm_dir),
            transformers.BertTokenizer.from_pretrained(str(minilm_dir)),
        ),
        "bert_generation": (
            BertGenerationTokenizer.from_pretrained(spm_dir),
            transformers.BertGenerationTokenizer.from_pretrained(str(spm_dir)),
        ),
        "perceiver": (PerceiverTokenizer(), transformers.PerceiverTokenizer()),
    }


@pytest.mark.parametrize("name", ["roberta", "bert", "bert_generation", "perceiver"])
@PROPERTY_SETTINGS
@given(text=texts, pair=st.one_of(st.none(), texts))
def test_same_ids_and_text_as_transformers(tokenizers, name, text, pair):
    ours, ref = tokenizers[name]
    expected = ref(text, pair)
    assert dict(ours(text, pair)) == dict(expected)
    assert ours.decode(expected["input_ids"]) == ref.decode(expected["input_ids"])
    assert ours.decode(expected["input_ids"], skip_special_tokens=True) == ref.decode(
        expected["input_ids"], skip_special_tokens=True
    )


@pytest.mark.parametrize("name", ["roberta", "perceiver"])
@PROPERTY_SETTINGS
@given(text=texts)
def test_lossless_round_trip(tokenizers, name, text):
    """Byte-level tokenizers give the text back exactly, as transformers' do."""
    ours, ref = tokenizers[name]
    ids = ours.encode(text, add_special_tokens=False)
    assert ours.decode(ids) == text == ref.decode(ref.encode(text, add_special_tokens=False))


@pytest.mark.parametrize("name", ["bert", "bert_generation"])
@PROPERTY_SETTINGS
@given(text=texts)
def test_round_trip_agrees_with_transformers(tokenizers, name, text):
    """Lossy tokenizers: the decoded text, and whether it equals the input, match transformers."""
    ours, ref = tokenizers[name]
    decoded = ours.decode(ours.encode(text), skip_special_tokens=True)
    assert decoded == ref.decode(ref.encode(text), skip_special_tokens=True)
    assert ours.decode(ours.encode(decoded), skip_special_tokens=True) == ref.decode(
        ref.encode(decoded), skip_special_tokens=True
    )


@PROPERTY_SETTINGS
@given(data=st.binary(max_size=40))
def test_perceiver_decodes_any_bytes(tokenizers, data):
    ours, ref = tokenizers["perceiver"]
    ids = [byte + 6 for byte in data]
    assert ours.decode(ids) == ref.decode(ids) == data.decode("utf-8", errors="replace")


@pytest.mark.parametrize("name", ["roberta", "bert", "bert_generation", "perceiver"])
@PROPERTY_SETTINGS
@given(
    batch=st.lists(texts, min_size=1, max_size=5),
    max_length=st.integers(min_value=4, max_value=24),
    side=st.sampled_from(["left", "right"]),
    padding=st.sampled_from([True, "max_length"]),
)
def test_padded_truncated_batches(tokenizers, name, batch, max_length, side, padding):
    ours, ref = tokenizers[name]
    kwargs = {"padding": padding, "truncation": True, "max_length": max_length, "padding_side": side}
    encoding = ours(batch, **kwargs)
    assert dict(encoding) == dict(ref(batch, **kwargs))
    lengths = {len(ids) for ids in encoding["input_ids"]}
    assert len(lengths) == 1 and lengths.pop() <= max_length
