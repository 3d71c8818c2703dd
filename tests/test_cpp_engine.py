"""The C++ engine (issue 7) generates exactly what transformers' generate() does.

One CMake build (the session fixture ``cmake_build`` of tests/conftest.py, shared with
test_foundation's ctest run) provides the example host examples/cpp/generate; checkpoints are
small random-weight models saved by transformers (the reference, pinned 5.23.0), written by
tests/cpp/checkpoints.py. The last test builds a fresh outside project against the installed
package with find_package(pygen). Set PYGEN_CPP_BUILD_DIR to reuse a build directory between runs.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

transformers = pytest.importorskip("transformers")

pytestmark = [pytest.mark.skipif(shutil.which("cmake") is None, reason="cmake is not installed"),
              pytest.mark.filterwarnings("ignore:Using the model-agnostic default")]

ROOT = Path(__file__).resolve().parent.parent
JOBS = str(min(os.cpu_count() or 2, 2))
sys.path.insert(0, str(ROOT / "tests" / "cpp"))
import checkpoints as ckpt  # noqa: E402  (tests/cpp/checkpoints.py, shared with the ctest)

batch_of = ckpt.batch_of


@pytest.fixture(scope="session")
def cpp(cmake_build):
    """examples/generate of the shared CMake build (tests/conftest.py) and its install prefix."""
    return {"generate": cmake_build.generate, "prefix": cmake_build.prefix}


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory):
    return ckpt.build(tmp_path_factory.mktemp("ckpt"))


def run_cpp(cpp, path, rows, kwargs, seed=None, dtype="float32"):
    return ckpt.run_example(cpp["generate"], path, rows, kwargs, seed=seed, dtype=dtype)


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
    # forced tokens, min_new_tokens, special-token overrides
    ("bart", {"max_new_tokens": 9, "forced_eos_token_id": 3, "min_new_tokens": 5}),
    ("bart", {"num_beams": 3, "max_new_tokens": 8, "eos_token_id": [2, 7], "pad_token_id": 1}),
    ("bert2bert", {"max_new_tokens": 10, "decoder_start_token_id": 5, "repetition_penalty": 0.8}),
    ("roberta2roberta", {"num_beams": 4, "max_length": 12, "forced_eos_token_id": [2, 9], "num_return_sequences": 4,
                         "early_stopping": "never", "min_length": 4}),
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
        eos = torch.tensor(kwargs.get("eos_token_id", model.generation_config.eos_token_id)).view(-1)
        # tokens after a row's eos are padding and do not count
        live = torch.ones_like(generated, dtype=torch.bool)
        live[:, 1:] = (~torch.isin(generated[:, :-1], eos)).cumprod(1).bool()
        want_scores = torch.where(live, steps, torch.zeros_like(steps)).sum(1)
        assert torch.allclose(torch.tensor(got_scores), want_scores, atol=1e-3)


@pytest.mark.parametrize("kwargs", [{"do_sample": True, "top_k": 20, "max_new_tokens": 12},
                                    {"do_sample": True, "top_p": 0.8, "temperature": 0.7, "max_new_tokens": 12,
                                     "num_return_sequences": 2},
                                    {"do_sample": True, "num_beams": 3, "max_new_tokens": 10}])
def test_sampling_matches_transformers_with_the_same_seed(cpp, checkpoints, kwargs):
    for name in ("bart", "bert2bertgen"):
        check_sampling(cpp, checkpoints, name, kwargs)


def check_sampling(cpp, checkpoints, name, kwargs):
    model, path = checkpoints[name]
    rows, ids, mask = batch_of(model, [6, 9, 2], seed=3)
    torch.manual_seed(1234)
    with torch.no_grad():
        want = model.generate(ids, attention_mask=mask, **kwargs)
    got, _ = run_cpp(cpp, path, rows, kwargs, seed=1234)
    assert got == want.tolist(), name
    if name == "bart":  # the same seed, the same draws
        again, _ = run_cpp(cpp, path, rows, kwargs, seed=1234)
        assert again == got


@pytest.mark.parametrize("name", ["bart", "bert2bertgen", "roberta2roberta"])
def test_encode_matches_transformers(cpp, checkpoints, name):
    """Model::encode (the example's --encode): transformers' encoder last_hidden_state, unpadded rows."""
    model, path = checkpoints[name]
    rows, ids, mask = batch_of(model, [6, 1, 9], seed=11)
    with torch.no_grad():
        want = model.get_encoder()(input_ids=ids, attention_mask=mask).last_hidden_state
    stdin = "\n".join(" ".join(map(str, row)) for row in rows) + "\n"
    result = subprocess.run([str(cpp["generate"]), str(path), "--encode"], input=stdin, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == len(rows)
    for i, (row, line) in enumerate(zip(rows, lines)):
        got = torch.tensor([float(v) for v in line.split()], dtype=torch.float64).view(len(row), -1)
        torch.testing.assert_close(got, want[i, : len(row)].double(), rtol=0, atol=1e-4)


@pytest.mark.parametrize("activation", ["gelu_python", "gelu_python_tanh", "gelu_accurate", "gelu_10", "laplace",
                                        "leaky_relu", "mish", "relu2", "relu6", "hardswish", "sqrtsoftplus", "linear"])
def test_activations(cpp, tmp_path, activation):
    """Every activation the Python package knows, in the C++ engine too (BART's feed-forward)."""
    from transformers import BartConfig, BartForConditionalGeneration

    config = BartConfig(**{**ckpt._bart_config().to_dict(), "activation_function": activation})
    model = ckpt.randomize(BartForConditionalGeneration(config))
    model.save_pretrained(tmp_path)
    rows, ids, mask = batch_of(model, [7, 4], seed=9)
    kwargs = {"num_beams": 3, "max_new_tokens": 10}
    with torch.no_grad():
        want = model.generate(ids, attention_mask=mask, **kwargs).tolist()
    assert run_cpp(cpp, tmp_path, rows, kwargs)[0] == want


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


@pytest.mark.parametrize("num_beams", [1, 3])
def test_max_length_past_the_positions_fails_only_when_reached(cpp, checkpoints, num_beams):
    """As transformers and the Python package: max_new_tokens beyond the 64 decoder positions works
    while every sequence ends before them (EOS), and fails (transformers: IndexError) when one runs on."""
    model, path = checkpoints["bart"]
    rows, ids, mask = batch_of(model, [7, 3, 11], seed=5)
    eos = list(range(2, model.config.vocab_size))  # all but 0 and 1 end a sequence: every row ends at once
    kwargs = {"num_beams": num_beams, "max_new_tokens": 1000, "eos_token_id": eos, "pad_token_id": 1}
    with torch.no_grad():
        want = model.generate(ids, attention_mask=mask, **kwargs)
    assert want.shape[1] < 64
    assert run_cpp(cpp, path, rows, kwargs)[0] == want.tolist()
    kwargs = {"num_beams": num_beams, "max_new_tokens": 1000, "min_new_tokens": 900}
    with pytest.raises(IndexError), torch.no_grad():
        model.generate(ids, attention_mask=mask, **kwargs)
    with pytest.raises(AssertionError, match="still running when they ran out"):
        run_cpp(cpp, path, rows, kwargs)


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


@pytest.mark.parametrize("option", [{"suppress_tokens": [7]}, {"bad_words_ids": [[7]]}, {"typical_p": 0.5},
                                    {"encoder_no_repeat_ngram_size": 2}, {"renormalize_logits": True}])
def test_generation_options_it_does_not_run_are_refused(cpp, checkpoints, tmp_path, option):
    """A generation_config.json that turns on a processor only Python runs is a ConfigError naming
    it (not silently other ids); the neutral values transformers writes for "off" load."""
    import json

    _, path = checkpoints["bart"]
    for value, refused in ((option, True), ({key: None for key in option}, False)):
        copy = tmp_path / f"ckpt-{refused}"
        shutil.copytree(path, copy, dirs_exist_ok=True)
        config_path = copy / "generation_config.json"
        config = json.loads(config_path.read_text())
        config.update(value)
        config_path.write_text(json.dumps(config))
        result = subprocess.run([str(cpp["generate"]), str(copy), "--max-new-tokens", "3"], input="5 6 7\n",
                                capture_output=True, text=True)
        if refused:
            assert result.returncode == 1 and next(iter(option)) in result.stderr, result.stderr
        else:
            assert result.returncode == 0, result.stderr


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
