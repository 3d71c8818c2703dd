"""Concurrency: generate() (forward for Perceiver) called from several Python threads on one
shared model gives exactly the results of the same calls made one after another, and a call
failing with bad input in one thread does not disturb the others.

torch releases the GIL inside its ops, so the threads really overlap; each call owns its KV
cache and generation config, and the model's weights are only read.
"""
from __future__ import annotations

import threading
import warnings
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

from pygen.errors import InputError

try:
    from . import test_hardening_support as support
except ImportError:
    import test_hardening_support as support

THREADS = 4
ROUNDS = 3


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    with support.one_intra_op_thread():
        yield


def _jobs(family: str) -> list[dict]:
    """Calls of varying shapes and strategies (greedy, beam search, seeded sampling)."""
    jobs = []
    for i, (batch, length, strategy) in enumerate([(1, 4, {}), (2, 7, {}), (3, 5, {"num_beams": 3}),
                                                   (2, 9, {"num_beams": 2, "num_return_sequences": 2}),
                                                   (2, 6, {"do_sample": True, "seed": 11}),
                                                   (1, 3, {"do_sample": True, "top_k": 5, "seed": 12}),
                                                   (4, 8, {"no_repeat_ngram_size": 2}), (1, 10, {"num_beams": 4})]):
        vocab = support.FAMILIES[family].vocab
        if family == "perceiver":
            jobs.append({"inputs": support.random_ids(batch, length * 2, vocab, 100 + i),
                         "attention_mask": support.random_mask(batch, length * 2, 200 + i)})
        else:
            jobs.append({"input_ids": support.random_ids(batch, length, vocab, 100 + i),
                         "attention_mask": support.prompt_mask(family, batch, length, 200 + i), "max_new_tokens": 6,
                         **strategy})
    return jobs


def _call(family: str, model, job: dict) -> torch.Tensor:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if family == "perceiver":
            with torch.no_grad():
                return model(**job).logits
        return model.generate(**job)


def _in_threads(function, items: list) -> list:
    """``function(item)`` for every item, THREADS at a time, all threads released together."""
    barrier = threading.Barrier(THREADS)

    def start(item):
        try:
            barrier.wait(timeout=30)
        except threading.BrokenBarrierError:
            pass  # fewer items than threads left: go anyway
        return function(item)

    with ThreadPoolExecutor(THREADS) as pool:
        return list(pool.map(start, items))


@pytest.mark.parametrize("family", list(support.FAMILIES))
def test_threads_match_sequential_calls(family):
    if support.FAMILIES[family].generates:
        support.require_generate(family)
    model = support.model(family)
    jobs = _jobs(family)
    expected = [_call(family, model, job) for job in jobs]
    work = [i for _ in range(ROUNDS) for i in range(len(jobs))]
    results = _in_threads(lambda i: (i, _call(family, model, jobs[i])), work)
    for i, result in results:
        assert torch.equal(result, expected[i]), f"job {i} ({jobs[i].keys()}) differs when run in threads"


@pytest.mark.parametrize("family", support.GENERATIVE)
def test_a_failing_thread_does_not_disturb_the_others(family):
    support.require_generate(family)
    model = support.model(family)
    jobs = _jobs(family)[:4]
    expected = [_call(family, model, job) for job in jobs]
    bad = {**jobs[0], "input_ids": jobs[0]["input_ids"] + support.VOCAB}  # ids outside the vocabulary

    def run(i):
        if i < 0:
            with pytest.raises(InputError):
                _call(family, model, bad)
            return i, None
        return i, _call(family, model, jobs[i])

    results = _in_threads(run, [0, -1, 1, -1, 2, 3, -1, 0, 1, 2, 3, -1])
    for i, result in results:
        if i >= 0:
            assert torch.equal(result, expected[i])
