"""Bounded fuzzing of the checkpoint and config loaders, as part of the test suite (< 30 s).

Two runs of the mutators in ``fuzz_loader.py``:

* the random engine in a subprocess, so that a crash (a signal) is caught and reported rather
  than killing pytest;
* a hypothesis-driven run in-process, which shrinks any failure to a minimal mutation.

Both pass only if every mutated checkpoint either loads or raises a pygen error. Long runs
(atheris, thousands of iterations) are done by hand: see the docstring of ``fuzz_loader.py``.
``PYGEN_FUZZ_SEED`` replays the random run.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

import fuzz_loader

FUZZER = Path(fuzz_loader.__file__)
SEED = int(os.environ.get("PYGEN_FUZZ_SEED", time.time_ns() % 2**31))


def test_random_mutations_in_a_subprocess(tmp_path):
    """~5 s of random mutations; the child exits 0 (clean), 1 (findings) or dies by a signal (crash)."""
    command = [sys.executable, str(FUZZER), "--engine", "random", "--seconds", "5", "--seed", str(SEED),
               "--findings", str(tmp_path / "findings")]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=150)
    output = f"\n$ {' '.join(command)}\n{proc.stdout[-6000:]}\n{proc.stderr[-3000:]}"
    if proc.returncode < 0:
        pytest.fail(f"the loader crashed with {signal.Signals(-proc.returncode).name}{output}")
    assert proc.returncode == 0, f"loaders raised non-pygen exceptions{output}"
    assert "iterations" in proc.stdout, output
    iterations = int(proc.stdout.split(" iterations")[0].split()[-1])
    assert iterations >= 10, f"the fuzzer barely ran{output}"


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> tuple[dict[str, Path], Path]:
    """(valid seed directories, a scratch directory). The pickled family is left to the subprocess:
    torch.load on corrupt archives may allocate what the archive claims."""
    seeds = fuzz_loader.make_seeds(tmp_path_factory.mktemp("seeds"), seed=SEED)
    seeds = {family: path for family, path in seeds.items() if not family.endswith("-bin")}
    return seeds, tmp_path_factory.mktemp("work") / "checkpoint"


@settings(max_examples=30, deadline=None, database=None, derandomize=False,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_hypothesis_mutations(checkpoints, data):
    seeds, work_dir = checkpoints
    chooser = fuzz_loader.HypothesisChooser(data)
    family = chooser.pick(sorted(seeds))
    done = fuzz_loader.mutate_directory(seeds[family], work_dir, chooser)
    note(f"{family}: {done}")
    outcomes = fuzz_loader.load_everything(work_dir, fuzz_loader.FAMILIES[family])
    assert len(outcomes) in (2, 3)  # from_pretrained is skipped for configs asking for big models
