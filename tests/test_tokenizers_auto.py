"""AutoTokenizer: class from tokenizer_config.json, then config.json, then the files present."""
import json
import shutil

import pytest

from pygen.errors import ConfigError, ModelNotFoundError
from pygen.tokenizers import (
    AutoTokenizer,
    BertGenerationTokenizer,
    BertTokenizer,
    PerceiverTokenizer,
    RobertaTokenizer,
)

try:
    from .test_tokenizers_support import minilm_dir, spm_dir, trained_bpe_dir  # noqa: F401 (fixtures)
except ImportError:
    from test_tokenizers_support import minilm_dir, spm_dir, trained_bpe_dir  # noqa: F401 (fixtures)


def _copy(source, target):
    """The tokenizer files of a checkpoint (weights left out)."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("*.safetensors", "*.bin"))
    return target


@pytest.mark.parametrize(
    "name, expected",
    [
        ("BartTokenizer", RobertaTokenizer),
        ("BartTokenizerFast", RobertaTokenizer),
        ("RobertaTokenizer", RobertaTokenizer),
        ("RobertaTokenizerFast", RobertaTokenizer),
    ],
)
def test_tokenizer_class_from_config(trained_bpe_dir, tmp_path, name, expected):
    directory = _copy(trained_bpe_dir, tmp_path / "tok")
    (directory / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": name}))
    tokenizer = AutoTokenizer.from_pretrained(directory)
    assert type(tokenizer) is expected
    assert tokenizer("hi")["input_ids"][0] == tokenizer.cls_token_id


def test_bert_classes_from_config(minilm_dir, tmp_path):
    assert type(AutoTokenizer.from_pretrained(minilm_dir)) is BertTokenizer
    directory = _copy(minilm_dir, tmp_path / "fast")
    config = json.loads((directory / "tokenizer_config.json").read_text())
    (directory / "tokenizer_config.json").write_text(json.dumps({**config, "tokenizer_class": "BertTokenizerFast"}))
    tokenizer = AutoTokenizer.from_pretrained(directory)
    assert type(tokenizer) is BertTokenizer and tokenizer.model_max_length == 512


@pytest.mark.parametrize(
    "model_type, fixture, expected",
    [
        ("bart", "trained_bpe_dir", RobertaTokenizer),
        ("roberta", "trained_bpe_dir", RobertaTokenizer),
        ("bert", "minilm_dir", BertTokenizer),
        ("bert-generation", "spm_dir", BertGenerationTokenizer),
        ("perceiver", None, PerceiverTokenizer),
    ],
)
def test_model_type_from_config_json(request, tmp_path, model_type, fixture, expected):
    directory = tmp_path / "model"
    if fixture:
        _copy(request.getfixturevalue(fixture), directory)
        (directory / "tokenizer_config.json").unlink(missing_ok=True)
    else:
        directory.mkdir()
    (directory / "config.json").write_text(json.dumps({"model_type": model_type}))
    assert type(AutoTokenizer.from_pretrained(directory)) is expected


@pytest.mark.parametrize(
    "fixture, keep, expected",
    [
        ("trained_bpe_dir", ("vocab.json", "merges.txt"), RobertaTokenizer),
        ("minilm_dir", ("vocab.txt",), BertTokenizer),
        ("minilm_dir", ("tokenizer.json",), BertTokenizer),
        ("spm_dir", ("spiece.model",), BertGenerationTokenizer),
    ],
)
def test_class_from_files(request, tmp_path, fixture, keep, expected):
    source = request.getfixturevalue(fixture)
    for name in keep:
        shutil.copyfile(source / name, tmp_path / name)
    assert type(AutoTokenizer.from_pretrained(tmp_path)) is expected


def test_kwargs_are_passed_on(minilm_dir):
    tokenizer = AutoTokenizer.from_pretrained(minilm_dir, padding_side="left", do_lower_case=False)
    assert tokenizer.padding_side == "left" and tokenizer.do_lower_case is False
    assert tokenizer.tokenize("Hello") != AutoTokenizer.from_pretrained(minilm_dir).tokenize("Hello")


def test_errors(tmp_path):
    with pytest.raises(ConfigError, match="no known vocabulary"):
        AutoTokenizer.from_pretrained(tmp_path)
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "T5Tokenizer"}))
    with pytest.raises(ConfigError, match="T5Tokenizer"):
        AutoTokenizer.from_pretrained(tmp_path)
    (tmp_path / "tokenizer_config.json").unlink()
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    with pytest.raises(ConfigError, match="gpt2"):
        AutoTokenizer.from_pretrained(tmp_path)
    with pytest.raises(ModelNotFoundError):
        AutoTokenizer.from_pretrained("no-such-org/no-such-model")
    with pytest.raises(TypeError, match="from_pretrained"):
        AutoTokenizer()


def test_offline_hub_cache(minilm_dir, tmp_path, monkeypatch):
    snapshot = tmp_path / "models--org--mini" / "snapshots" / "abc123"
    _copy(minilm_dir, snapshot)
    (tmp_path / "models--org--mini" / "refs").mkdir()
    (tmp_path / "models--org--mini" / "refs" / "main").write_text("abc123")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    tokenizer = AutoTokenizer.from_pretrained("org/mini")
    assert type(tokenizer) is BertTokenizer and tokenizer.name_or_path == "org/mini"
    assert tokenizer("hello")["input_ids"] == [101, 7592, 102]
