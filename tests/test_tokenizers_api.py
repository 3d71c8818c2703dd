"""Behaviour shared by every tokenizer: BatchEncoding, tensors, pad(), input errors, missing files."""
import json

import numpy as np
import pytest
import torch
import transformers

from pygen.errors import CheckpointError, InputError, ModelNotFoundError
from pygen.tokenizers import (
    BatchEncoding,
    BertGenerationTokenizer,
    BertTokenizer,
    PerceiverTokenizer,
    RobertaTokenizer,
)

try:
    from .test_tokenizers_support import (  # noqa: F401 (fixtures)
        assert_same_encoding,
        minilm_dir,
        spm_dir,
        trained_bpe_dir,
    )
except ImportError:
    from test_tokenizers_support import (  # noqa: F401 (fixtures)
        assert_same_encoding,
        minilm_dir,
        spm_dir,
        trained_bpe_dir,
    )


@pytest.fixture(scope="module", params=["roberta", "bert", "bert_generation", "perceiver"])
def pair(request):
    """(pygen tokenizer, transformers tokenizer) for each implementation."""
    if request.param == "perceiver":
        return PerceiverTokenizer(), transformers.PerceiverTokenizer()
    classes = {
        "roberta": (RobertaTokenizer, transformers.RobertaTokenizer, "trained_bpe_dir"),
        "bert": (BertTokenizer, transformers.BertTokenizer, "minilm_dir"),
        "bert_generation": (BertGenerationTokenizer, transformers.BertGenerationTokenizer, "spm_dir"),
    }
    ours_class, ref_class, fixture = classes[request.param]
    directory = request.getfixturevalue(fixture)
    return ours_class.from_pretrained(directory), ref_class.from_pretrained(str(directory))


def test_batch_encoding_access(pair):
    ours, _ = pair
    encoding = ours(["hello world", "hi"], padding=True)
    assert isinstance(encoding, BatchEncoding)
    assert encoding.input_ids is encoding["input_ids"]
    assert encoding.attention_mask == encoding["attention_mask"]
    assert set(encoding.keys()) >= {"input_ids", "attention_mask"}
    with pytest.raises(AttributeError):
        _ = encoding.not_a_field


def test_tensors(pair):
    ours, ref = pair
    single = ours("hello world", return_tensors="pt")
    assert single["input_ids"].dtype == torch.int64 and single["input_ids"].shape[0] == 1
    batch = ours(["hello world", "hi"], padding=True, return_tensors="pt").to("cpu")
    assert batch.input_ids.device.type == "cpu" and batch.input_ids.shape == batch.attention_mask.shape
    assert_same_encoding(batch, ref(["hello world", "hi"], padding=True, return_tensors="pt"), "pt")
    assert isinstance(ours(["a", "bb"], padding=True, return_tensors="np")["input_ids"], np.ndarray)
    with pytest.raises(InputError, match="padding"):
        ours(["a", "a much longer text"], return_tensors="pt")


def test_encode_and_single_id_decode(pair):
    ours, ref = pair
    text = "Hello there, general"
    assert ours.encode(text) == ref.encode(text)
    assert ours.encode(text, "pair", add_special_tokens=False) == ref.encode(text, "pair", add_special_tokens=False)
    ids = ref.encode(text)
    assert ours.decode(ids[1]) == ref.decode(ids[1])
    assert ours.decode(torch.tensor(ids)) == ref.decode(torch.tensor(ids))
    assert ours.decode([ids, ids[:2]]) == ref.decode([ids, ids[:2]])
    assert ours.batch_decode(torch.tensor([ids])) == ref.batch_decode(torch.tensor([ids]))


def test_pad_method(pair):
    ours, ref = pair
    examples = [{"input_ids": ref.encode("a b c d")}, {"input_ids": ref.encode("a")}]
    for kwargs in ({}, {"padding": "max_length", "max_length": 12}, {"pad_to_multiple_of": 4, "padding_side": "left"}):
        assert_same_encoding(ours.pad(examples, **kwargs), ref.pad(examples, **kwargs), kwargs)
    tensors = {"input_ids": [torch.tensor(e["input_ids"]) for e in examples]}
    assert_same_encoding(ours.pad(tensors), ref.pad(tensors), "tensors")


def test_padding_side_attribute(pair):
    ours, ref = pair
    ours.padding_side = ref.padding_side = "left"
    try:
        assert_same_encoding(ours(["a", "a b c"], padding=True), ref(["a", "a b c"], padding=True), "left")
    finally:
        ours.padding_side = ref.padding_side = "right"


@pytest.mark.parametrize(
    "text, pair_text",
    [(123, None), (None, None), (3.5, None), ({"a": 1}, None), (["ok", 7], None), (b"bytes", None)],
)
def test_non_string_input_is_an_input_error(pair, text, pair_text):
    ours, _ = pair
    with pytest.raises(InputError):
        ours(text, pair_text)


def test_bad_arguments_are_input_errors(pair):
    ours, _ = pair
    with pytest.raises(InputError, match="same length|pairs"):
        ours(["a", "b"], ["c"])
    with pytest.raises(InputError):
        ours(["a", "b"], "c")
    with pytest.raises(InputError, match="empty batch"):
        ours([])
    with pytest.raises(InputError, match="padding"):
        ours("a", padding="sideways")
    with pytest.raises(InputError, match="truncation"):
        ours("a", truncation="middle")
    with pytest.raises(InputError, match="padding_side"):
        ours("a", padding=True, padding_side="up")
    with pytest.raises(InputError, match="return_tensors"):
        ours("a", return_tensors="tf")
    with pytest.raises(InputError):
        ours.decode("not ids")
    with pytest.raises(InputError):
        ours.convert_tokens_to_ids(5)


def test_padding_needs_a_pad_token(pair):
    ours, _ = pair
    saved = ours.pad_token
    ours.pad_token = None
    try:
        assert ours.pad_token_id is None
        with pytest.raises(InputError, match="padding token"):
            ours(["a", "bb"], padding=True)
    finally:
        ours.pad_token = saved


@pytest.mark.parametrize("tokenizer_class", [RobertaTokenizer, BertTokenizer, BertGenerationTokenizer])
def test_missing_vocabulary_files(tmp_path, tokenizer_class):
    with pytest.raises(CheckpointError, match="needs"):
        tokenizer_class.from_pretrained(tmp_path)


def test_corrupt_files(tmp_path):
    (tmp_path / "tokenizer.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="tokenizer.json"):
        RobertaTokenizer.from_pretrained(tmp_path)
    (tmp_path / "tokenizer.json").unlink()
    (tmp_path / "vocab.json").write_text(json.dumps({"a": 0}))
    (tmp_path / "merges.txt").write_text("#version: 0.2\na b c d\n")
    with pytest.raises(CheckpointError):
        RobertaTokenizer.from_pretrained(tmp_path)


def test_unknown_path():
    with pytest.raises(ModelNotFoundError):
        PerceiverTokenizer.from_pretrained("/definitely/not/here")


def test_add_tokens_like_transformers(pair):
    # Fresh copies: adding tokens must not leak into the other tests.
    ours, ref = (type(t).from_pretrained(t.name_or_path) if t.name_or_path else type(t)() for t in pair)
    assert ours.add_tokens(["newtok", "hello"]) == ref.add_tokens(["newtok", "hello"])
    assert ours.add_special_tokens({"extra_special_tokens": ["<x>"]}) == ref.add_special_tokens(
        {"extra_special_tokens": ["<x>"]}
    )
    assert len(ours) == len(ref) and ours.all_special_ids == ref.all_special_ids
    for text in ["a newtok b", "hello<x>world", "<x> <x>newtokhello"]:
        assert_same_encoding(ours(text), ref(text), text)
        ids = ref(text)["input_ids"]
        assert ours.decode(ids, skip_special_tokens=True) == ref.decode(ids, skip_special_tokens=True)
