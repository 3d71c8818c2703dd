"""RobertaTokenizer / BartTokenizer parity with transformers on real GPT-2 and trained BPE files."""
import random

import pytest
import transformers
from tokenizers import AddedToken

from pygen.tokenizers import BartTokenizer, BartTokenizerFast, RobertaTokenizer, RobertaTokenizerFast

try:
    from .test_tokenizers_support import (  # noqa: F401 (fixtures)
        SEED,
        assert_batch_parity,
        assert_same_encoding,
        assert_saved_parity,
        assert_strings_parity,
        bart_style_dir,
        corpus,
        gpt2_dir,
        trained_bpe_dir,
    )
except ImportError:
    from test_tokenizers_support import (  # noqa: F401 (fixtures)
        SEED,
        assert_batch_parity,
        assert_same_encoding,
        assert_saved_parity,
        assert_strings_parity,
        bart_style_dir,
        corpus,
        gpt2_dir,
        trained_bpe_dir,
    )


@pytest.fixture(scope="module")
def gpt2(gpt2_dir):
    return RobertaTokenizer.from_pretrained(gpt2_dir), transformers.RobertaTokenizer.from_pretrained(str(gpt2_dir))


@pytest.fixture(scope="module")
def trained(trained_bpe_dir):
    return (
        RobertaTokenizer.from_pretrained(trained_bpe_dir),
        transformers.RobertaTokenizer.from_pretrained(str(trained_bpe_dir)),
    )


def test_aliases_are_one_class_like_transformers():
    assert BartTokenizer is BartTokenizerFast is RobertaTokenizerFast is RobertaTokenizer
    assert transformers.BartTokenizer.__name__ == RobertaTokenizer.__name__


def test_gpt2_strings(gpt2):
    assert_strings_parity(*gpt2, corpus())


def test_gpt2_batches(gpt2):
    assert_batch_parity(*gpt2, corpus())


def test_gpt2_vocabulary_and_special_tokens(gpt2):
    ours, ref = gpt2
    assert (len(ours), ours.vocab_size) == (len(ref), ref.vocab_size) == (50262, 50257)
    for name in ("bos", "eos", "unk", "sep", "pad", "cls", "mask"):
        assert getattr(ours, f"{name}_token") == getattr(ref, f"{name}_token")
        assert getattr(ours, f"{name}_token_id") == getattr(ref, f"{name}_token_id")
    assert ours.all_special_ids == ref.all_special_ids
    assert ours.model_max_length == ref.model_max_length
    assert ours.padding_side == "right" and ours.truncation_side == "right"
    assert ours.get_vocab() == ref.get_vocab()
    # transformers 5.x adds <mask> without lstrip when only vocab.json/merges.txt are given.
    mask = ours.added_tokens_decoder[ours.mask_token_id]
    assert mask.lstrip == ref.added_tokens_decoder[ref.mask_token_id].lstrip is False


def test_gpt2_token_id_conversions(gpt2):
    ours, ref = gpt2
    tokens = ref.tokenize(" ".join(corpus()[:200]))
    assert ours.convert_tokens_to_ids(tokens) == ref.convert_tokens_to_ids(tokens)
    assert ours.convert_tokens_to_ids("not-a-token-at-all") == ref.convert_tokens_to_ids("not-a-token-at-all")
    ids = list(range(0, len(ref), 97)) + [len(ref) - 1]
    assert ours.convert_ids_to_tokens(ids) == ref.convert_ids_to_tokens(ids)
    assert ours.convert_ids_to_tokens(ids, skip_special_tokens=True) == ref.convert_ids_to_tokens(
        ids, skip_special_tokens=True
    )
    assert ours.convert_ids_to_tokens(50261) == ref.convert_ids_to_tokens(50261)


def test_gpt2_decode_random_ids(gpt2):
    ours, ref = gpt2
    rng = random.Random(SEED)
    for _ in range(300):
        ids = [rng.randrange(len(ref)) for _ in range(rng.randint(0, 30))]
        for skip in (False, True):
            assert ours.decode(ids, skip_special_tokens=skip) == ref.decode(ids, skip_special_tokens=skip), (
                f"seed={SEED} {ids}"
            )


def test_trained_bpe_strings_and_batches(trained):
    assert_strings_parity(*trained, corpus())
    assert_batch_parity(*trained, corpus()[:600])
    ours, ref = trained
    assert ours.get_vocab() == ref.get_vocab()
    assert [ours.cls_token_id, ours.pad_token_id, ours.sep_token_id] == [0, 1, 2]


def test_add_prefix_space(trained_bpe_dir):
    ours = RobertaTokenizer.from_pretrained(trained_bpe_dir, add_prefix_space=True)
    ref = transformers.RobertaTokenizer.from_pretrained(str(trained_bpe_dir), add_prefix_space=True)
    assert ours("Hello")["input_ids"] == ours(" Hello")["input_ids"]
    assert_strings_parity(ours, ref, corpus()[:500], pairs=False)
    assert_batch_parity(ours, ref, corpus()[:200])


def test_bart_style_tokenizer_json_mask_lstrip(bart_style_dir):
    ours = BartTokenizer.from_pretrained(bart_style_dir)
    ref = transformers.BartTokenizer.from_pretrained(str(bart_style_dir))
    assert ours.added_tokens_decoder[ours.mask_token_id].lstrip is True
    # The space before <mask> belongs to the mask token.
    assert ours.tokenize("Hello <mask> world") == ref.tokenize("Hello <mask> world")
    assert "Ġ" not in ours.tokenize("Hello <mask>")
    assert_strings_parity(ours, ref, corpus()[:600])


def test_text_target_gives_labels(trained):
    ours, ref = trained
    kwargs = {"text_target": ["a summary", "another one"], "padding": True}
    assert_same_encoding(ours(["source one", "two"], **kwargs), ref(["source one", "two"], **kwargs), kwargs)
    assert_same_encoding(ours(text_target="only target"), ref(text_target="only target"), "target only")


def test_clean_up_is_never_applied_to_bpe(trained_bpe_dir):
    ours = RobertaTokenizer.from_pretrained(trained_bpe_dir, clean_up_tokenization_spaces=True)
    ref = transformers.RobertaTokenizer.from_pretrained(str(trained_bpe_dir), clean_up_tokenization_spaces=True)
    ids = ref("Hello , world . isn 't it ?")["input_ids"]
    assert ours.decode(ids) == ref.decode(ids) == "<s>Hello , world . isn 't it ?</s>"


def test_added_tokens_match_transformers(trained_bpe_dir):
    ours = RobertaTokenizer.from_pretrained(trained_bpe_dir)
    ref = transformers.RobertaTokenizer.from_pretrained(str(trained_bpe_dir))
    assert ours.add_tokens(["newword", AddedToken("<tag>", lstrip=True)]) == ref.add_tokens(
        ["newword", AddedToken("<tag>", lstrip=True)]
    )
    assert ours.add_special_tokens({"extra_special_tokens": ["<extra>"]}) == ref.add_special_tokens(
        {"extra_special_tokens": ["<extra>"]}
    )
    assert len(ours) == len(ref)
    assert ours.all_special_tokens == ref.all_special_tokens
    text = "a newword b <tag> c<extra>d"
    assert_same_encoding(ours(text), ref(text), text)
    ids = ref(text)["input_ids"]
    assert ours.decode(ids, skip_special_tokens=True) == ref.decode(ids, skip_special_tokens=True)


def test_pad_token_can_be_reassigned(gpt2):
    ours, ref = gpt2
    ours.pad_token = ours.eos_token
    try:
        assert ours.pad_token_id == ref.eos_token_id
        padded = ours(["a", "a b c"], padding=True)["input_ids"]
        assert padded[0][-1] == ref.eos_token_id
    finally:
        ours.pad_token = "<pad>"
    assert ours.pad_token_id == ref.pad_token_id


def test_save_round_trip(trained, tmp_path):
    ours, _ = trained
    tuned = RobertaTokenizer.from_pretrained(
        ours.name_or_path, padding_side="left", model_max_length=64, add_prefix_space=True
    )
    assert_saved_parity(tuned, transformers.RobertaTokenizer, tmp_path / "saved", corpus()[:200])
    # Older loaders read the per-model files.
    assert {"vocab.json", "merges.txt", "tokenizer.json"} <= {p.name for p in (tmp_path / "saved").iterdir()}


def test_loads_what_transformers_saves(gpt2, tmp_path):
    _, ref = gpt2
    ref.save_pretrained(str(tmp_path))
    ours = RobertaTokenizer.from_pretrained(tmp_path)
    assert_strings_parity(ours, ref, corpus()[:300], pairs=False)
