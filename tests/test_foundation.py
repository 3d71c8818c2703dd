"""Checkpoint I/O, hub resolution, config validation and build info: the base every model uses."""
import json
import logging
import os
import shutil
import subprocess
import sys

import pytest
import torch
from torch import nn

import pygen
from pygen.checkpoint import load_state_dict, save_state_dict
from pygen.configuration_utils import PretrainedConfig, AutoConfig
from pygen.errors import CheckpointError, ConfigError, ModelNotFoundError
from pygen.hub import resolve
from pygen.modeling_utils import PreTrainedModel


class ToyConfig(PretrainedConfig):
    model_type = "pygen-toy"
    defaults = {"hidden_size": 8, "vocab_size": 11, "dropout": 0.1, "scale": True}


class ToyModel(PreTrainedModel):
    config_class = ToyConfig
    base_model_prefix = "body"

    def __init__(self, config):
        super().__init__(config)
        self.body = nn.ModuleDict({"embed": nn.Embedding(config.vocab_size, config.hidden_size),
                                   "proj": nn.Linear(config.hidden_size, config.hidden_size)})
        self.head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.init_weights()


def _random_state(config):
    torch.manual_seed(int.from_bytes(os.urandom(4), "little"))
    return {k: torch.randn_like(v) for k, v in ToyModel(config).state_dict().items()}


# ---- hub -------------------------------------------------------------------------------------
def test_resolve_local_dir(tmp_path):
    assert resolve(tmp_path) == tmp_path


def test_resolve_hf_cache_layout(tmp_path, monkeypatch):
    repo = tmp_path / "hub" / "models--acme--tiny-bart"
    snap = repo / "snapshots" / "abc123"
    snap.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    assert resolve("acme/tiny-bart") == snap
    monkeypatch.delenv("HF_HUB_CACHE")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    assert resolve("acme/tiny-bart") == snap


def test_missing_revision_is_not_replaced_by_another_snapshot(tmp_path, monkeypatch):
    """A revision the cache lacks (an unknown ref, or a ref whose snapshot is gone) is a
    ModelNotFoundError, as in transformers offline, never the one snapshot that is there."""
    repo = tmp_path / "models--acme--tiny-bart"
    (repo / "snapshots" / "abc123").mkdir(parents=True)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    assert resolve("acme/tiny-bart") == repo / "snapshots" / "abc123"  # copied without refs: the default
    with pytest.raises(ModelNotFoundError):
        resolve("acme/tiny-bart", revision="v9")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("gone999")
    with pytest.raises(ModelNotFoundError, match="gone999"):
        resolve("acme/tiny-bart")


def test_subfolder_and_use_safetensors(tmp_path):
    """from_pretrained(root, subfolder=...) for configs, models (also through the Auto classes) and
    tokenizers; use_safetensors=False reads pytorch_model.bin even beside model.safetensors, True
    refuses a checkpoint without safetensors."""
    from transformers import BartConfig as HFBartConfig, BartForConditionalGeneration as HFBart

    torch.manual_seed(0)
    config = HFBartConfig(vocab_size=50, d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
                          decoder_attention_heads=2, encoder_ffn_dim=24, decoder_ffn_dim=24, max_position_embeddings=32)
    reference = HFBart(config).eval()
    reference.save_pretrained(tmp_path / "sub")
    ids = torch.randint(4, 50, (2, 7))
    with torch.no_grad():
        want = reference(ids).logits
    for model in (pygen.BartForConditionalGeneration.from_pretrained(tmp_path, subfolder="sub"),
                  pygen.AutoModelForSeq2SeqLM.from_pretrained(tmp_path, subfolder="sub")):
        with torch.no_grad():
            torch.testing.assert_close(model.eval()(ids).logits, want)
    assert isinstance(pygen.AutoConfig.from_pretrained(tmp_path, subfolder="sub"), pygen.BartConfig)
    with pytest.raises(ModelNotFoundError, match="no subfolder"):
        pygen.BartForConditionalGeneration.from_pretrained(tmp_path, subfolder="nope")
    # a .bin beside the safetensors, holding other weights
    other = HFBart(config).eval()
    torch.save(other.state_dict(), tmp_path / "sub" / "pytorch_model.bin")
    with torch.no_grad():
        want_bin = other(ids).logits
    for cls in (pygen.BartForConditionalGeneration, pygen.AutoModelForSeq2SeqLM):
        with torch.no_grad():
            torch.testing.assert_close(cls.from_pretrained(tmp_path / "sub", use_safetensors=False).eval()(ids).logits,
                                       want_bin)
            torch.testing.assert_close(cls.from_pretrained(tmp_path / "sub").eval()(ids).logits, want)
    (tmp_path / "sub" / "model.safetensors").unlink()
    with pytest.raises(pygen.errors.CheckpointError, match="use_safetensors=True"):
        pygen.BartForConditionalGeneration.from_pretrained(tmp_path / "sub", use_safetensors=True)


def test_from_pretrained_takes_transformers_loading_options(tmp_path, monkeypatch):
    """cache_dir / revision pick the snapshot; download-only options are accepted and ignored;
    device_map names one device or is refused with an InputError."""
    from transformers import BartConfig as HFBartConfig, BartForConditionalGeneration as HFBart

    torch.manual_seed(0)
    reference = HFBart(HFBartConfig(vocab_size=50, d_model=16, encoder_layers=1, decoder_layers=1,
                                    encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=24,
                                    decoder_ffn_dim=24, max_position_embeddings=32)).eval()
    repo = tmp_path / "elsewhere" / "models--acme--tiny-bart"
    for rev in ("old111", "new222"):
        reference.save_pretrained(repo / "snapshots" / rev)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("new222")
    (repo / "refs" / "v1").write_text("old111")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))
    with pytest.raises(ModelNotFoundError):
        pygen.AutoModelForSeq2SeqLM.from_pretrained("acme/tiny-bart")
    model = pygen.AutoModelForSeq2SeqLM.from_pretrained(
        "acme/tiny-bart", cache_dir=tmp_path / "elsewhere", revision="v1", local_files_only=True,
        low_cpu_mem_usage=True, use_safetensors=True, trust_remote_code=False, device_map="cpu")
    ids = torch.randint(3, 50, (2, 7))
    torch.testing.assert_close(model(input_ids=ids).logits, reference(input_ids=ids).logits, rtol=0, atol=1e-5)
    config = AutoConfig.from_pretrained("acme/tiny-bart", cache_dir=tmp_path / "elsewhere", revision="v1")
    assert config.d_model == 16
    with pytest.raises(pygen.InputError, match="device_map"):
        pygen.BartForConditionalGeneration.from_pretrained(repo / "snapshots" / "new222", device_map={"": 0})


def test_resolve_not_found_lists_places(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "nowhere"))
    with pytest.raises(ModelNotFoundError) as info:
        resolve("acme/missing-model")
    assert "models--acme--missing-model" in str(info.value)
    assert str(tmp_path / "nowhere") in str(info.value)
    assert isinstance(info.value, FileNotFoundError)


# ---- configs ---------------------------------------------------------------------------------
def test_config_round_trip_and_types(tmp_path):
    config = ToyConfig(hidden_size=16, dropout=0.25, custom_field=[1, 2])
    config.save_pretrained(tmp_path)
    again = ToyConfig.from_pretrained(tmp_path)
    assert again == config and again.custom_field == [1, 2] and again.hidden_size == 16
    with pytest.raises(ConfigError, match="hidden_size"):
        ToyConfig(hidden_size="16")
    with pytest.raises(ConfigError, match="scale"):
        ToyConfig(scale=1)
    with pytest.raises(ConfigError, match="no field 'hidden_sise'"):
        ToyConfig.from_pretrained(tmp_path, hidden_sise=3)


@pytest.mark.parametrize("content, match", [("{not json", "not valid JSON"), ("[1, 2]", "JSON object")])
def test_config_bad_files(tmp_path, content, match):
    (tmp_path / "config.json").write_text(content)
    with pytest.raises(ConfigError, match=match):
        ToyConfig.from_pretrained(tmp_path)


def test_unknown_model_type(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "no-such-model"}))
    with pytest.raises(ConfigError, match="unknown model_type 'no-such-model'"):
        AutoConfig.from_pretrained(tmp_path)


def test_missing_config(tmp_path):
    with pytest.raises(ConfigError, match="missing config file"):
        ToyModel.from_pretrained(tmp_path)


# ---- weights ---------------------------------------------------------------------------------
def test_save_and_load_round_trip(tmp_path):
    model = ToyModel(ToyConfig())
    model.load_state_dict(_random_state(model.config))
    model.save_pretrained(tmp_path)
    loaded = ToyModel.from_pretrained(tmp_path)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value, rtol=0, atol=0)
    half = ToyModel.from_pretrained(tmp_path, dtype="float16")
    assert half.dtype == torch.float16


def test_sharded_and_bin_checkpoints(tmp_path):
    config = ToyConfig()
    state = _random_state(config)
    keys = sorted(state)
    shard_dir = tmp_path / "sharded"
    config.save_pretrained(shard_dir)
    from safetensors.torch import save_file
    save_file({k: state[k] for k in keys[:2]}, str(shard_dir / "model-00001-of-00002.safetensors"))
    save_file({k: state[k] for k in keys[2:]}, str(shard_dir / "model-00002-of-00002.safetensors"))
    weight_map = {k: ("model-00001-of-00002.safetensors" if i < 2 else "model-00002-of-00002.safetensors")
                  for i, k in enumerate(keys)}
    (shard_dir / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    bin_dir = tmp_path / "bin"
    config.save_pretrained(bin_dir)
    torch.save(state, bin_dir / "pytorch_model.bin")
    for directory in (shard_dir, bin_dir):
        loaded = ToyModel.from_pretrained(directory).state_dict()
        for key in keys:
            assert torch.equal(loaded[key], state[key])
    (shard_dir / "model-00002-of-00002.safetensors").unlink()
    with pytest.raises(CheckpointError, match="missing"):
        load_state_dict(shard_dir)


def test_prefix_missing_unexpected_and_mismatch(tmp_path, caplog):
    config = ToyConfig()
    state = _random_state(config)
    body_only = {k[len("body."):]: v for k, v in state.items() if k.startswith("body.")}
    body_only["extra.weight"] = torch.randn(3)
    config.save_pretrained(tmp_path)
    save_state_dict(body_only, tmp_path)
    with caplog.at_level(logging.WARNING, logger="pygen"):
        model, info = ToyModel.from_pretrained(tmp_path, output_loading_info=True)
    assert info["missing_keys"] == {"head.weight"} and info["unexpected_keys"] == {"extra.weight"}
    assert "newly initialized" in caplog.text and "not used" in caplog.text
    assert torch.equal(model.body["proj"].weight, state["body.proj.weight"])
    body_only["proj.weight"] = torch.randn(4, 8)
    save_state_dict(body_only, tmp_path)
    with pytest.raises(CheckpointError, match="(?s)size mismatch.*body.proj.weight"):
        ToyModel.from_pretrained(tmp_path)
    ToyModel.from_pretrained(tmp_path, ignore_mismatched_sizes=True)


def test_corrupt_weight_files(tmp_path):
    config = ToyConfig()
    config.save_pretrained(tmp_path)
    path = save_state_dict(_random_state(config), tmp_path)
    data = path.read_bytes()
    cases = {
        "truncated": data[: len(data) // 2],
        "tiny": data[:5],
        "bad header": data[:8] + b"{" * (len(data) - 8),
        "huge header": (10**12).to_bytes(8, "little") + data[8:],
        "garbage": os.urandom(len(data)),
    }
    for name, content in cases.items():
        path.write_bytes(content)
        with pytest.raises(CheckpointError):
            ToyModel.from_pretrained(tmp_path)
    path.unlink()
    (tmp_path / "pytorch_model.bin").write_bytes(os.urandom(100))
    with pytest.raises(CheckpointError, match="pytorch_model.bin"):
        ToyModel.from_pretrained(tmp_path)
    (tmp_path / "pytorch_model.bin").unlink()
    with pytest.raises(CheckpointError, match="no weights"):
        ToyModel.from_pretrained(tmp_path)


# ---- build -----------------------------------------------------------------------------------
def test_build_info_reports_kernels():
    info = pygen.build_info()
    assert info["version"] == pygen.__version__ and info["torch"] == torch.__version__
    assert info["cpu_kernels"], info.get("extension_error")
    if sys.platform.startswith("linux"):  # without OpenMP, at::parallel_for runs on one thread
        assert info["cpu_threads"], info
    cuda_expected = (torch.version.cuda is not None and shutil.which("nvcc") is not None
                     and os.environ.get("PYGEN_CUDA") != "0")
    if cuda_expected:
        assert info["cuda_kernels"] and info["cuda_archs"], info


def test_cmake_build_and_ctest(cmake_build):
    """The C++ library, examples and tests build with CMake against the installed torch (the shared
    session build of tests/conftest.py), and every ctest passes: the C++ unit tests, a bounded run
    of the checkpoint-reader fuzzer, and the example host against transformers' generate()."""
    result = subprocess.run(["ctest", "--test-dir", str(cmake_build.build), "--output-on-failure"], capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "100% tests passed" in result.stdout
    assert "Not Run" not in result.stdout and "***Skipped" not in result.stdout, result.stdout


def _module_path(root: nn.Module, module: nn.Module) -> str:
    return next(name or "<self>" for name, m in root.named_modules() if m is module)


def test_get_encoder_and_get_decoder_as_transformers():
    """PreTrainedModel.get_encoder / get_decoder return the submodule transformers' do, by path;
    can_generate() and main_input_name agree too."""
    transformers = pytest.importorskip("transformers")
    bert = dict(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16)
    bart = dict(vocab_size=50, d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
                decoder_attention_heads=2, encoder_ffn_dim=16, decoder_ffn_dim=16)
    perceiver = dict(num_latents=4, d_latents=16, d_model=16, num_blocks=1, num_self_attends_per_block=1,
                     num_self_attention_heads=2, num_cross_attention_heads=2, max_position_embeddings=32)
    cases = [("BertModel", "BertConfig", bert), ("BertLMHeadModel", "BertConfig", dict(bert, is_decoder=True)),
             ("RobertaForCausalLM", "RobertaConfig", dict(bert, is_decoder=True)),
             ("BertGenerationEncoder", "BertGenerationConfig", bert),
             ("BertGenerationDecoder", "BertGenerationConfig", dict(bert, is_decoder=True)),
             ("BartModel", "BartConfig", bart), ("BartForConditionalGeneration", "BartConfig", bart),
             ("BartForCausalLM", "BartConfig", bart), ("BartForSequenceClassification", "BartConfig", bart),
             ("PerceiverForMaskedLM", "PerceiverConfig", perceiver)]
    for model_name, config_name, kwargs in cases:
        ref = getattr(transformers, model_name)(getattr(transformers, config_name)(**kwargs))
        ours = getattr(pygen, model_name)(getattr(pygen, config_name)(**kwargs))
        for part in ("get_encoder", "get_decoder"):
            want = _module_path(ref, getattr(ref, part)())
            assert _module_path(ours, getattr(ours, part)()) == want, f"{model_name}.{part}()"
        assert type(ours).can_generate() == type(ref).can_generate(), model_name
        assert type(ours).main_input_name == type(ref).main_input_name, model_name
    pair = transformers.EncoderDecoderModel(encoder=transformers.BertModel(transformers.BertConfig(**bert)),
                                            decoder=transformers.BertLMHeadModel(transformers.BertConfig(
                                                **bert, is_decoder=True, add_cross_attention=True)))
    ours = pygen.EncoderDecoderModel(pygen.EncoderDecoderConfig.from_dict(pair.config.to_dict()))
    assert ours.get_encoder() is ours.encoder and ours.get_decoder() is ours.decoder


@pytest.mark.parametrize("saved", [torch.bfloat16, torch.float16, torch.float32])
def test_default_dtype_is_the_checkpoints(tmp_path, saved):
    """As transformers 5: no dtype (or None, or "auto") loads the saved dtype, from the config or
    else from the weights; ``dtype``, then ``torch_dtype``, override it."""
    model = ToyModel(ToyConfig())
    model.load_state_dict(_random_state(model.config))
    model.to(saved).save_pretrained(tmp_path)
    assert ToyModel.from_pretrained(tmp_path).dtype == saved
    assert ToyModel.from_pretrained(tmp_path, dtype=None).dtype == saved
    assert ToyModel.from_pretrained(tmp_path, dtype="auto").dtype == saved
    assert ToyModel.from_pretrained(tmp_path, dtype=torch.float64).dtype == torch.float64
    assert ToyModel.from_pretrained(tmp_path, torch_dtype="float16").dtype == torch.float16
    config = json.loads((tmp_path / "config.json").read_text())
    config.pop("dtype", None)
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert ToyModel.from_pretrained(tmp_path).dtype == saved  # read off the weights


@pytest.mark.parametrize("max_shard_size", [200, "1KB", "0.5KiB"])
def test_save_pretrained_shards_as_transformers_reads_them(tmp_path, max_shard_size):
    """save_pretrained(max_shard_size=...) writes transformers' shard names and index; both libraries
    load them back, and a later unsharded save replaces the shards."""
    transformers = pytest.importorskip("transformers")
    config = pygen.BartConfig(vocab_size=60, d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
                              decoder_attention_heads=2, encoder_ffn_dim=16, decoder_ffn_dim=16)
    model = pygen.BartForConditionalGeneration(config).eval()
    model.save_pretrained(tmp_path, max_shard_size=max_shard_size)
    index = json.loads((tmp_path / "model.safetensors.index.json").read_text())
    shards = sorted(set(index["weight_map"].values()))
    assert len(shards) > 1 and shards[0] == f"model-00001-of-{len(shards):05d}.safetensors"
    assert not (tmp_path / "model.safetensors").exists()
    ids = torch.randint(3, 60, (2, 7))
    with torch.no_grad():
        want = model(input_ids=ids).logits
        for loaded in (pygen.BartForConditionalGeneration.from_pretrained(tmp_path),
                       transformers.BartForConditionalGeneration.from_pretrained(tmp_path)):
            torch.testing.assert_close(loaded(input_ids=ids).logits, want, rtol=1e-5, atol=1e-5)
    model.half().save_pretrained(tmp_path)
    assert not list(tmp_path.glob("model-*-of-*.safetensors")) and (tmp_path / "model.safetensors").is_file()
    assert pygen.BartForConditionalGeneration.from_pretrained(tmp_path).dtype == torch.float16
    with pytest.raises(CheckpointError, match="max_shard_size"):
        model.save_pretrained(tmp_path, max_shard_size="lots")


RESIZE_CASES = [("BartForConditionalGeneration", "BartConfig", {}),
                ("BartForConditionalGeneration", "BartConfig", {"tie_word_embeddings": False}),
                ("BartForCausalLM", "BartConfig", {}), ("BartModel", "BartConfig", {}),
                ("BertLMHeadModel", "BertConfig", {"is_decoder": True}),
                ("RobertaForCausalLM", "RobertaConfig", {"is_decoder": True}),
                ("BertGenerationDecoder", "BertGenerationConfig", {"is_decoder": True}),
                ("BertModel", "BertConfig", {})]


@pytest.mark.parametrize("model_name,config_name,extra", RESIZE_CASES)
def test_resize_token_embeddings_as_transformers(tmp_path, model_name, config_name, extra):
    """Grown, cut and padded to a multiple: the same shapes and vocab_size as transformers, the old
    tokens' logits unchanged, tied weights still tied."""
    transformers = pytest.importorskip("transformers")
    base = (dict(vocab_size=50, d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
                 decoder_attention_heads=2, encoder_ffn_dim=16, decoder_ffn_dim=16) if config_name == "BartConfig"
            else dict(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16))
    ref = getattr(transformers, model_name)(getattr(transformers, config_name)(**base, **extra)).eval()
    ref.save_pretrained(tmp_path)
    for size, multiple in ((60, None), (43, None), (61, 8)):
        ref_model = type(ref).from_pretrained(tmp_path).eval()
        ours = getattr(pygen, model_name).from_pretrained(tmp_path).eval()
        ids = torch.randint(3, 42, (2, 6), generator=torch.Generator().manual_seed(size))
        kwargs = {"decoder_input_ids": ids} if model_name in ("BartForConditionalGeneration", "BartModel") else {}
        outputs = []
        for model in (ref_model, ours):
            embeddings = model.resize_token_embeddings(size, pad_to_multiple_of=multiple)
            assert embeddings is model.get_input_embeddings()
            with torch.no_grad():
                out = model(input_ids=ids, **kwargs)
            outputs.append((tuple(embeddings.weight.shape), model.config.vocab_size,
                            out.logits if getattr(out, "logits", None) is not None else out.last_hidden_state))
        (ref_shape, ref_vocab, ref_out), (shape, vocab, out) = outputs
        assert (shape, vocab, out.shape) == (ref_shape, ref_vocab, ref_out.shape)
        keep = min(size, 50)
        torch.testing.assert_close(out[..., :keep] if out.shape[-1] == vocab else out,
                                   ref_out[..., :keep] if out.shape[-1] == vocab else ref_out, rtol=1e-5, atol=1e-5)
        head = ours.get_output_embeddings()
        if head is not None and extra.get("tie_word_embeddings", True):
            assert head.weight is ours.get_input_embeddings().weight
    with pytest.raises(pygen.InputError, match="new_num_tokens"):
        ours.resize_token_embeddings(0)


def test_encoder_decoder_refuses_resize_token_embeddings():
    bert = dict(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16)
    config = pygen.EncoderDecoderConfig.from_encoder_decoder_configs(
        pygen.BertConfig(**bert), pygen.BertConfig(**bert, is_decoder=True, add_cross_attention=True))
    with pytest.raises(NotImplementedError, match="model.encoder and model.decoder"):
        pygen.EncoderDecoderModel(config).resize_token_embeddings(60)


def test_config_loading_extras_as_transformers(tmp_path):
    """return_unused_kwargs, name_or_path (config and model) and the default label maps."""
    transformers = pytest.importorskip("transformers")
    kwargs = dict(vocab_size=50, d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
                  decoder_attention_heads=2, encoder_ffn_dim=16, decoder_ffn_dim=16)
    transformers.BartForConditionalGeneration(transformers.BartConfig(**kwargs)).save_pretrained(tmp_path)
    for lib in (transformers, pygen):
        config, unused = lib.AutoConfig.from_pretrained(tmp_path, return_unused_kwargs=True, foo_bar=3, dropout=0.3)
        assert (unused, config.dropout, config.name_or_path) == ({"foo_bar": 3}, 0.3, str(tmp_path))
        assert lib.BartForConditionalGeneration.from_pretrained(tmp_path).name_or_path == str(tmp_path)
        assert lib.BartConfig().name_or_path == ""
    for name, extra in (("BertConfig", {}), ("BertGenerationConfig", {}), ("PerceiverConfig", {}),
                        ("BartConfig", {"num_labels": 0}), ("RobertaConfig", {"num_labels": 4})):
        ours, ref = getattr(pygen, name)(**extra), getattr(transformers, name)(**extra)
        assert (ours.num_labels, ours.id2label, ours.label2id) == (ref.num_labels, ref.id2label, ref.label2id), name



def test_small_api_as_transformers():
    """num_parameters(exclude_embeddings), set_seed, transformers 5's names, AutoConfig as a factory."""
    transformers = pytest.importorskip("transformers")
    kwargs = dict(vocab_size=50, d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
                  decoder_attention_heads=2, encoder_ffn_dim=16, decoder_ffn_dim=16)
    ours = pygen.BartForConditionalGeneration(pygen.BartConfig(**kwargs))
    ref = transformers.BartForConditionalGeneration(transformers.BartConfig(**kwargs))
    for exclude in (False, True):
        assert ours.num_parameters(exclude_embeddings=exclude) == ref.num_parameters(exclude_embeddings=exclude)
    pygen.set_seed(7)
    drawn = torch.rand(3)
    transformers.set_seed(7)
    assert torch.equal(drawn, torch.rand(3))
    assert pygen.PreTrainedConfig is pygen.PretrainedConfig and issubclass(pygen.BartModel, pygen.PreTrainedModel)
    with pytest.raises(TypeError, match="from_pretrained"):
        pygen.AutoConfig()
