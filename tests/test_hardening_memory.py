"""Memory stability: many consecutive generate() calls (forward for Perceiver) with varying
batch sizes, prompt lengths, beam counts and output lengths keep the process RSS within 5% of
its post-warm-up level, and leave no tensor alive.

The test runs a few dozen calls per family. The 1,000-call run is done by hand::

    python tests/test_hardening_memory.py --calls 1000            # every family
    python tests/test_hardening_memory.py --calls 1000 --family bart
"""
from __future__ import annotations

import argparse
import gc
import logging
import random
import sys
import warnings
from dataclasses import dataclass

import pytest
import torch

try:
    from . import test_hardening_support as support
except ImportError:
    import test_hardening_support as support


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    with support.one_intra_op_thread():
        yield


TOLERANCE = 0.05
BATCHES, PROMPTS, BEAMS, NEW_TOKENS = (1, 2, 3), (3, 6, 10), (1, 2, 3), (2, 4, 7)


@dataclass
class MemoryReport:
    family: str
    calls: int
    baseline: int  # RSS after warm-up, bytes
    final: int
    peak: int
    tensors_before: int
    tensors_after: int

    @property
    def growth(self) -> float:
        return self.final / self.baseline - 1.0

    @property
    def peak_growth(self) -> float:
        return self.peak / self.baseline - 1.0

    def __str__(self) -> str:
        mib = 2**20
        per_call = (self.final - self.baseline) / self.calls / 1024
        return (f"{self.family}: {self.calls} calls, RSS after warm-up {self.baseline / mib:.1f} MiB, final "
                f"{self.final / mib:.1f} MiB ({self.growth:+.2%}, {per_call:+.2f} KiB/call), peak "
                f"{self.peak / mib:.1f} MiB ({self.peak_growth:+.2%}); live tensors {self.tensors_before} -> "
                f"{self.tensors_after}")


def _live_tensors() -> int:
    gc.collect()
    return sum(1 for obj in gc.get_objects() if isinstance(obj, torch.Tensor))


def _call(family: str, model, rng: random.Random, shape=None) -> None:
    """One generate() (or Perceiver forward) call of a random shape (or the given one)."""
    batch, prompt, beams, new = shape or (rng.choice(BATCHES), rng.choice(PROMPTS), rng.choice(BEAMS),
                                          rng.choice(NEW_TOKENS))
    offset = rng.randrange(10**6)
    with torch.no_grad():
        if family == "perceiver":
            model(inputs=support.random_ids(batch, prompt * 3, 262, offset),
                  attention_mask=support.random_mask(batch, prompt * 3, offset))
        else:
            model.generate(support.random_ids(batch, prompt, offset=offset),
                           attention_mask=support.prompt_mask(family, batch, prompt, offset), num_beams=beams,
                           num_return_sequences=beams, max_new_tokens=new, min_new_tokens=new)


def measure(family: str, calls: int, seed: int = support.SEED) -> MemoryReport:
    model = support.model(family)
    rng = random.Random(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # Warm-up: every shape once, so allocator caches and lazy initialisation are done.
        for shape in [(b, p, k, n) for b in BATCHES for p in PROMPTS for k in BEAMS for n in NEW_TOKENS[-1:]]:
            _call(family, model, rng, shape)
        for _ in range(10):
            _call(family, model, rng)
        tensors_before = _live_tensors()
        baseline = peak = support.rss_bytes()
        for i in range(calls):
            _call(family, model, rng)
            if i % 5 == 0:
                peak = max(peak, support.rss_bytes())
        tensors_after = _live_tensors()
        final = support.rss_bytes()
    return MemoryReport(family, calls, baseline, final, max(peak, final), tensors_before, tensors_after)


@pytest.mark.parametrize("family", list(support.FAMILIES))
def test_memory_stays_flat(family):
    if support.FAMILIES[family].generates:
        support.require_generate(family)
    report = measure(family, calls=40)
    print(report)
    assert report.tensors_after == report.tensors_before, f"tensors leaked: {report}"
    assert report.growth <= TOLERANCE and report.peak_growth <= TOLERANCE, str(report)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="RSS over many consecutive calls (the by-hand run).")
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--family", choices=list(support.FAMILIES), action="append")
    args = parser.parse_args(argv)
    failed = False
    torch.set_num_threads(1)
    logging.getLogger("pygen").setLevel(logging.ERROR)
    for family in args.family or list(support.FAMILIES):
        report = measure(family, args.calls)
        ok = report.growth <= TOLERANCE and report.peak_growth <= TOLERANCE and \
            report.tensors_after == report.tensors_before
        failed |= not ok
        print(("ok   " if ok else "FAIL ") + str(report), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
