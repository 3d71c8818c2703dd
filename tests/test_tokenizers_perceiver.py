"""PerceiverTokenizer (UTF-8 bytes) parity with transformers, including invalid UTF-8."""
import random

import pytest
import transformers

from pygen.errors import InputError
from pygen.tokenizers import PerceiverTokenizer

try:
    from .test_tokenizers_support import (
        SEED,
        assert_batch_parity,
        assert_same_encoding,
        assert_saved_parity,
        assert_strings_parity,
        corpus,
    )
except ImportError:
    from test_tokenizers_support import (
        SEED,
        assert_batch_parity,
        assert_same_encoding,
        assert_saved_parity,
        assert_strings_parity,
        corpus,
    )


@pytest.fixture(scope="module")
def perceiver():
    return PerceiverTokenizer(), transformers.PerceiverTokenizer()


def test_strings(perceiver):
    assert_strings_parity(*perceiver, corpus())


def test_batches(perceiver):
    assert_batch_parity(*perceiver, corpus())


def test_layout(perceiver):
    ours, ref = perceiver
    ids = ours("é")["input_ids"]
    assert ids == [4, 0xC3 + 6, 0xA9 + 6, 5] == ref("é")["input_ids"]
    assert ours("a", "b")["input_ids"] == [4, ord("a") + 6, 5, ord("b") + 6, 5]
    special = [ours.pad_token_id, ours.bos_token_id, ours.eos_token_id, ours.mask_token_id]
    assert special + [ours.cls_token_id, ours.sep_token_id] == list(range(6))
    assert (len(ours), ours.vocab_size, ours.model_max_length) == (len(ref), ref.vocab_size, 2048) == (262, 256, 2048)
    assert ours.unk_token is None and ours.all_special_ids == ref.all_special_ids
    assert ours.get_vocab() == ref.get_vocab()


def test_padding_to_model_max_length(perceiver):
    ours, ref = perceiver
    encoding = ours("abc", padding="max_length", return_tensors="pt")
    assert tuple(encoding["input_ids"].shape) == (1, 2048)
    assert_same_encoding(encoding, ref("abc", padding="max_length", return_tensors="pt"), "max_length")


def test_options_parity(perceiver):
    ours, ref = perceiver
    cases = [
        ("héllo [MASK] x", "pair", {"return_token_type_ids": True, "return_special_tokens_mask": True}),
        ("abcdef", "xyz", {"truncation": "longest_first", "max_length": 7}),
        ("abcdef", "xyz", {"truncation": "only_second", "max_length": 7}),
        ("abcdef", None, {"truncation": True, "max_length": 1}),
        ("", "", {}),
        ("abc", None, {"return_length": True, "padding": "max_length", "max_length": 9}),
        (["a", "bcd"], None, {"return_length": True, "padding": True, "padding_side": "left"}),
    ]
    # overflow windows (with stride) and offsets, which Python tokenizers do not return, as in transformers
    cases += [
        ("abcdefghij", None, {"truncation": True, "max_length": 5, "return_overflowing_tokens": True, "stride": 2}),
        ("abcdef", "uvwxyz", {"truncation": "only_second", "max_length": 9, "return_overflowing_tokens": True}),
        ("abcdef", "uvwxyz", {"truncation": "only_first", "max_length": 9, "return_overflowing_tokens": True,
                              "stride": 1}),
        ("abc", None, {"truncation": True, "max_length": 9, "return_overflowing_tokens": True}),  # none cut
        ("abcdef", None, {"return_offsets_mapping": True}),
    ]
    for text, pair, kwargs in cases:
        assert_same_encoding(ours(text, pair, **kwargs), ref(text, pair, **kwargs), (text, pair, kwargs))
    ours.truncation_side = ref.truncation_side = "left"
    try:
        kwargs = {"truncation": True, "max_length": 6}
        assert_same_encoding(ours("abcdefgh", "xy", **kwargs), ref("abcdefgh", "xy", **kwargs), "left truncation")
        kwargs = {"truncation": True, "max_length": 5, "return_overflowing_tokens": True, "stride": 1}
        assert_same_encoding(ours("abcdefgh", **kwargs), ref("abcdefgh", **kwargs), "left overflow")
    finally:
        ours.truncation_side = ref.truncation_side = "right"
    with pytest.raises(InputError, match="longest_first"):
        ours("abcdef", "uvwxyz", truncation="longest_first", max_length=9, return_overflowing_tokens=True)


def test_decode_random_invalid_utf8(perceiver):
    ours, ref = perceiver
    rng = random.Random(SEED)
    for _ in range(500):
        data = bytes(rng.randrange(256) for _ in range(rng.randint(0, 24)))
        ids = [byte + 6 for byte in data]
        if rng.random() < 0.3:
            ids.insert(rng.randint(0, len(ids)), rng.randrange(6))  # a special token among the bytes
        for skip in (False, True):
            assert ours.decode(ids, skip_special_tokens=skip) == ref.decode(ids, skip_special_tokens=skip), (
                f"seed={SEED} {data!r}"
            )
        assert ours.decode([b + 6 for b in data]) == data.decode("utf-8", errors="replace")


def test_ids_outside_the_vocabulary(perceiver):
    ours, ref = perceiver
    for bad in ([262], [-1], [4, 1000, 5]):
        with pytest.raises(ValueError):
            ref.decode(bad)
        with pytest.raises(InputError):
            ours.decode(bad)


def test_save_round_trip(tmp_path):
    ours = PerceiverTokenizer(padding_side="left")
    assert_saved_parity(ours, transformers.PerceiverTokenizer, tmp_path / "saved", corpus()[:200])


def test_loads_what_transformers_saves(perceiver, tmp_path):
    _, ref = perceiver
    ref.save_pretrained(str(tmp_path))
    ours = PerceiverTokenizer.from_pretrained(tmp_path)
    assert_strings_parity(ours, ref, corpus()[:200], pairs=False)
