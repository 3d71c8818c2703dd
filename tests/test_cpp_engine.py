"""The C++ engine (issue 7) generates exactly what transformers' generate() does.

One CMake build of the library and the example host (examples/cpp/generate) serves every test;
checkpoints are small random-weight models saved by transformers (the reference, pinned 5.23.0).
The last test installs the package and builds a fresh outside project against find_package(pygen).
Set PYGEN_CPP_BUILD_DIR to reuse a build directory between runs.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest
import torch

transformers = pytest.importorskip("transformers")

pytestmark = [pytest.mark.skipif(shutil.which("cmake") is None, reason="cmake is not installed"),
              pytest.mark.filterwarnings("ignore:Using the model-agnostic default")]

ROOT = Path(__file__).resolve().parent.parent
JOBS = str(min(os.cpu_count() or 2, 2))


@pytest.fixture(scope="session")
def cpp(tmp_path_factory):
    """Build dir with examples/generate, and an install prefix holding the pygen package."""
    build = Path(os.environ.get("PYGEN_CPP_BUILD_DIR") or tmp_path_factory.mktemp("cpp") / "build")
    prefix = build.parent / "install"
    commands = [["cmake", "--build", str(build), "-j", JOBS], ["cmake", "--install", str(build), "--prefix", str(prefix)]]
    if not (build / "CMakeCache.txt").is_file():  # a reused build dir keeps its configuration
        commands.insert(0, ["cmake", "-S", str(ROOT), "-B", str(build), "-DPYGEN_BUILD_TESTS=OFF",
                            f"-DCMAKE_PREFIX_PATH={torch.utils.cmake_prefix_path}"])
    for command in commands:
        result = subprocess.run(command, capture_output=True, text=True)
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return {"generate": build / "examples" / "generate", "prefix": prefix}


def randomize(model, std=0.35):
    """Weights large enough that logits are well separated (greedy and beam search then differ)."""
    torch.manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "LayerNorm" in name or "layer_norm" in name or "layernorm" in name:
                p.copy_(1.0 + 0.1 * torch.randn_like(p) if name.endswith("weight") else 0.1 * torch.randn_like(p))
            else:
                p.normal_(0.0, std)
        for name, b in model.named_buffers():
            if name.endswith("final_logits_bias"):
                b.normal_(0.0, 0.5)
    return model.eval()


def save(model, path, **save_kwargs):
    model.save_pretrained(path, **save_kwargs)
    return path


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory):
    from transformers import (BartConfig, BartForConditionalGeneration, BertConfig, BertGenerationConfig,
                              EncoderDecoderConfig, EncoderDecoderModel, RobertaConfig)

    root = tmp_path_factory.mktemp("ckpt")
    out = {}
    bart_config = BartConfig(vocab_size=96, d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
                             decoder_attention_heads=4, encoder_ffn_dim=64, decoder_ffn_dim=48,
                             max_position_embeddings=64, scale_embedding=True, activation_function="gelu")
    bart = randomize(BartForConditionalGeneration(bart_config))
    out["bart"] = (bart, save(bart, root / "bart"))
    out["bart_sharded"] = (bart, save(bart, root / "bart_sharded", max_shard_size="40KB"))
    assert (root / "bart_sharded" / "model.safetensors.index.json").is_file()

    bart_relu = BartConfig(**{**bart_config.to_dict(), "activation_function": "relu", "scale_embedding": False,
                              "tie_word_embeddings": False})
    model = randomize(BartForConditionalGeneration(bart_relu))
    out["bart_untied"] = (model, save(model, root / "bart_untied"))

    def pair(name, encoder, decoder, start, eos, pad):
        config = EncoderDecoderConfig.from_encoder_decoder_configs(encoder, decoder)
        model = randomize(EncoderDecoderModel(config))
        model.generation_config.decoder_start_token_id = start
        model.generation_config.eos_token_id = eos
        model.generation_config.pad_token_id = pad
        out[name] = (model, save(model, root / name))

    small = dict(num_hidden_layers=2, num_attention_heads=4, intermediate_size=48, max_position_embeddings=64)
    pair("bert2bertgen", BertConfig(vocab_size=80, hidden_size=24, **small),
         BertGenerationConfig(vocab_size=90, hidden_size=32, is_decoder=True, add_cross_attention=True, **small),
         start=2, eos=1, pad=0)
    pair("roberta2roberta", RobertaConfig(vocab_size=70, hidden_size=32, **small),
         RobertaConfig(vocab_size=70, hidden_size=32, is_decoder=True, add_cross_attention=True,
                       hidden_act="gelu_new", **small),
         start=0, eos=2, pad=1)
    pair("bert2bert", BertConfig(vocab_size=60, hidden_size=32, **small),
         BertConfig(vocab_size=60, hidden_size=32, is_decoder=True, add_cross_attention=True, **small),
         start=3, eos=4, pad=0)
    return out


def batch_of(model, lengths, seed):
    """Random ids (no special tokens) right-padded as a tokenizer pads, with the mask."""
    config = model.config.encoder if hasattr(model.config, "encoder") else model.config
    gen = torch.Generator().manual_seed(seed)
    rows = [torch.randint(5, config.vocab_size, (n,), generator=gen).tolist() for n in lengths]
    ids = torch.full((len(rows), max(lengths)), config.pad_token_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row)
        mask[i, : len(row)] = 1
    return rows, ids, mask


FLAGS = {"num_beams": "--num-beams", "max_new_tokens": "--max-new-tokens", "max_length": "--max-length",
         "min_length": "--min-length", "num_return_sequences": "--num-return-sequences",
         "length_penalty": "--length-penalty", "no_repeat_ngram_size": "--no-repeat-ngram-size",
         "repetition_penalty": "--repetition-penalty", "forced_bos_token_id": "--forced-bos-token-id",
         "top_k": "--top-k", "top_p": "--top-p", "temperature": "--temperature"}


def run_cpp(cpp, path, rows, kwargs, seed=None, dtype="float32"):
    args = [str(cpp["generate"]), str(path), "--scores", "--dtype", dtype]
    for key, value in kwargs.items():
        if key == "do_sample":
            args.append("--do-sample")
        elif key == "early_stopping":
            args += ["--early-stopping", str(value).lower()]
        else:
            args += [FLAGS[key], str(value)]
    if seed is not None:
        args += ["--seed", str(seed)]
    stdin = "\n".join(" ".join(map(str, row)) for row in rows) + "\n"
    result = subprocess.run(args, input=stdin, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = [line.split("\t") for line in result.stdout.splitlines()]
    return [[int(t) for t in ids.split()] for ids, _ in lines], [float(score) for _, score in lines]


CASES = [
    ("bart", {"max_new_tokens": 12}),
    ("bart", {}),  # transformers' default length: 20 new tokens
    ("bart", {"num_beams": 4, "max_new_tokens": 12}),
    ("bart", {"num_beams": 4, "max_length": 16, "num_return_sequences": 3, "length_penalty": 0.6,
              "no_repeat_ngram_size": 2, "early_stopping": True}),
    ("bart", {"num_beams": 3, "max_new_tokens": 10, "early_stopping": "never", "length_penalty": 1.5,
              "repetition_penalty": 1.3, "min_length": 6, "forced_bos_token_id": 0}),
    ("bart_sharded", {"num_beams": 4, "max_new_tokens": 12}),
    ("bart_untied", {"num_beams": 4, "max_new_tokens": 12}),
    ("bart_untied", {"max_new_tokens": 10, "repetition_penalty": 1.5, "no_repeat_ngram_size": 3}),
    ("bert2bertgen", {"max_new_tokens": 12}),
    ("bert2bertgen", {"num_beams": 4, "max_new_tokens": 12, "num_return_sequences": 2}),
    ("bert2bertgen", {"num_beams": 2}),
    ("roberta2roberta", {"max_new_tokens": 12}),
    ("roberta2roberta", {"num_beams": 4, "max_new_tokens": 12}),
    ("bert2bert", {"num_beams": 4, "max_new_tokens": 10, "length_penalty": 2.0}),
]


@pytest.mark.parametrize("name,kwargs", CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_generate_matches_transformers(cpp, checkpoints, name, kwargs):
    model, path = checkpoints[name]
    rows, ids, mask = batch_of(model, [7, 3, 11, 1, 5], seed=len(name) + len(kwargs))
    with torch.no_grad():
        want = model.generate(ids, attention_mask=mask, output_scores=True, return_dict_in_generate=True, **kwargs)
    got_ids, got_scores = run_cpp(cpp, path, rows, kwargs)
    assert got_ids == want.sequences.tolist()
    if kwargs.get("num_beams", 1) > 1:
        assert torch.allclose(torch.tensor(got_scores), want.sequences_scores, atol=1e-4)
        if name == "bart" and len(kwargs) == 2:
            greedy, _ = run_cpp(cpp, path, rows, {"max_new_tokens": 12})
            assert greedy != got_ids, "weights too small: beam search equals greedy"
    else:  # the log-probability of the generated tokens
        steps = model.compute_transition_scores(want.sequences, want.scores, normalize_logits=True)
        generated = want.sequences[:, 1:]
        eos = model.generation_config.eos_token_id
        # tokens after a row's eos are padding and do not count
        live = torch.ones_like(generated, dtype=torch.bool)
        live[:, 1:] = (generated[:, :-1] != eos).cumprod(1).bool()
        want_scores = torch.where(live, steps, torch.zeros_like(steps)).sum(1)
        assert torch.allclose(torch.tensor(got_scores), want_scores, atol=1e-3)


@pytest.mark.parametrize("kwargs", [{"do_sample": True, "top_k": 20, "max_new_tokens": 12},
                                    {"do_sample": True, "top_p": 0.8, "temperature": 0.7, "max_new_tokens": 12,
                                     "num_return_sequences": 2},
                                    {"do_sample": True, "num_beams": 3, "max_new_tokens": 10}])
def test_sampling_matches_transformers_with_the_same_seed(cpp, checkpoints, kwargs):
    model, path = checkpoints["bart"]
    rows, ids, mask = batch_of(model, [6, 9, 2], seed=3)
    torch.manual_seed(1234)
    with torch.no_grad():
        want = model.generate(ids, attention_mask=mask, **kwargs)
    got, _ = run_cpp(cpp, path, rows, kwargs, seed=1234)
    assert got == want.tolist()
    again, _ = run_cpp(cpp, path, rows, kwargs, seed=1234)
    assert again == got


def test_other_dtypes(cpp, checkpoints):
    model, path = checkpoints["bart"]
    rows, ids, mask = batch_of(model, [6, 9, 2], seed=5)
    kwargs = {"num_beams": 4, "max_new_tokens": 12}
    with torch.no_grad():
        want = model.generate(ids, attention_mask=mask, **kwargs).tolist()
    assert run_cpp(cpp, path, rows, kwargs, dtype="float64")[0] == want
    for dtype in ("float16", "bfloat16"):  # runs and stays inside the vocabulary
        got, scores = run_cpp(cpp, path, rows, kwargs, dtype=dtype)
        assert len(got) == len(rows) and all(0 <= t < model.config.vocab_size for row in got for t in row)


def test_errors_are_reported_not_crashes(cpp, checkpoints, tmp_path):
    _, path = checkpoints["bart"]
    bad = subprocess.run([str(cpp["generate"]), str(path)], input="5 6 500\n", capture_output=True, text=True)
    assert bad.returncode == 1 and "outside the encoder vocabulary" in bad.stderr
    broken = tmp_path / "broken"
    shutil.copytree(path, broken)
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-64])
    bad = subprocess.run([str(cpp["generate"]), str(broken)], input="5 6\n", capture_output=True, text=True)
    assert bad.returncode == 1 and "truncated" in bad.stderr
    bad = subprocess.run([str(cpp["generate"]), str(path), "--num-beams", "x"], input="5\n", capture_output=True,
                         text=True)
    assert bad.returncode == 2 and "--num-beams needs an integer" in bad.stderr


def test_outside_project_uses_find_package(cpp, checkpoints, tmp_path):
    _, path = checkpoints["bart"]
    project = tmp_path / "host"
    project.mkdir()
    (project / "CMakeLists.txt").write_text(textwrap.dedent("""\
        cmake_minimum_required(VERSION 3.18)
        project(host CXX)
        set(CMAKE_CXX_STANDARD 20)
        find_package(pygen REQUIRED)
        add_executable(host main.cpp)
        target_link_libraries(host PRIVATE pygen::pygen)
        """))
    (project / "main.cpp").write_text(textwrap.dedent("""\
        #include <pygen/pygen.h>
        #include <cstdio>
        int main(int argc, char** argv) {
          try {
            const auto model = pygen::Model::load(argv[1]);
            pygen::GenerationOptions options;
            options.num_beams = 4;
            options.max_new_tokens = 12;
            for (const auto& row : model.generate({{5, 6, 7, 8}, {9, 10}}, options).sequences) {
              for (auto id : row) std::printf("%ld ", static_cast<long>(id));
              std::printf("\\n");
            }
            pygen::Model::load("/nonexistent");
          } catch (const pygen::CheckpointError& e) {
            std::printf("caught: %s\\n", e.what());
            return 0;
          }
          return 1;
        }
        """))
    build = tmp_path / "host-build"
    for command in (["cmake", "-S", str(project), "-B", str(build), f"-DCMAKE_PREFIX_PATH={cpp['prefix']}"],
                    ["cmake", "--build", str(build), "-j", JOBS]):
        result = subprocess.run(command, capture_output=True, text=True)
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    result = subprocess.run([str(build / "host"), str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[-1].startswith("caught: no checkpoint directory")
    want, _ = run_cpp(cpp, path, [[5, 6, 7, 8], [9, 10]], {"num_beams": 4, "max_new_tokens": 12})
    assert [[int(t) for t in line.split()] for line in lines[:-1]] == want
