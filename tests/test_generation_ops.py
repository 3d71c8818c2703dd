"""Generation kernels vs transformers' logits processors and the pure-torch references.

Processors are compared bitwise with transformers 5.23's own classes on random logits; the
beam-search ops are compared with their references (pygen/ops/beam_search.py) step by step.
"""
from __future__ import annotations

import pytest
import torch
from transformers.generation import logits_process as tlp

from pygen import ops
from pygen.errors import InputError
from pygen.ops import beam_search as bs

pytestmark = pytest.mark.skipif(not ops.has_kernels("cpu"), reason="pygen._C not built")

VOCAB = 40


def random_case(rows=6, length=12, vocab=VOCAB, seed=0, small_vocab=7):
    """Logits and token histories drawn from few ids, so n-grams and repeats occur."""
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(rows, vocab, generator=gen) * 3
    ids = torch.randint(0, small_vocab, (rows, length), generator=gen)
    return logits, ids


def check_equal(ours, ref):
    assert ours.dtype == torch.float32 and ours.shape == ref.shape
    assert torch.equal(ours, ref), (ours - ref).abs().nan_to_num().max()


@pytest.mark.parametrize("log_softmax", [False, True])
@pytest.mark.parametrize("penalty", [0.7, 1.3])
def test_repetition_penalty(log_softmax, penalty):
    logits, ids = random_case()
    start = torch.tensor([0, 3, 0, 11, 12, 5])
    scores = torch.log_softmax(logits, -1) if log_softmax else logits
    ref = tlp.RepetitionPenaltyLogitsProcessor(penalty, prompt_ignore_length=start)(ids, scores.clone())
    check_equal(ops.logits_process(logits, ids, log_softmax=log_softmax, repetition_penalty=penalty,
                                   penalty_start=start), ref)
    ref = tlp.RepetitionPenaltyLogitsProcessor(penalty)(ids, scores.clone())
    check_equal(ops.logits_process(logits, ids, log_softmax=log_softmax, repetition_penalty=penalty), ref)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 13])
def test_no_repeat_ngram(n):
    logits, ids = random_case(small_vocab=4)
    ref = tlp.NoRepeatNGramLogitsProcessor(n)(ids, logits.clone())
    check_equal(ops.logits_process(logits, ids, no_repeat_ngram_size=n), ref)


@pytest.mark.parametrize("n", [1, 2, 3, 5])
@pytest.mark.parametrize("length", [1, 2, 3, 9])
def test_encoder_no_repeat_ngram(n, length):
    logits, ids = random_case(rows=6, length=length, small_vocab=4)
    source = torch.randint(0, 4, (2, 10), generator=torch.Generator().manual_seed(1))
    ref = tlp.EncoderNoRepeatNGramLogitsProcessor(n, source)(ids, logits.clone())
    check_equal(ops.logits_process(logits, ids, source_ids=source, encoder_no_repeat_ngram_size=n), ref)


def test_bad_words_and_min_length_and_forced():
    logits, ids = random_case(small_vocab=3)
    words = [[5], [1, 2], [0, 1, 2], [2, 2, 2, 1], [7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7]]
    ref = tlp.NoBadWordsLogitsProcessor(words, eos_token_id=None)(ids, logits.clone())
    flat = torch.tensor([t for w in words for t in w])
    offsets = torch.tensor([0] + [sum(len(w) for w in words[:i + 1]) for i in range(len(words))])
    check_equal(ops.logits_process(logits, ids, bad_words=flat, bad_word_offsets=offsets), ref)

    eos = torch.tensor([3, 9])
    ref = tlp.MinLengthLogitsProcessor(ids.shape[1] + 1, eos)(ids, logits.clone())
    check_equal(ops.logits_process(logits, ids, banned=eos), ref)
    ref = tlp.ForcedEOSTokenLogitsProcessor(ids.shape[1] + 1, eos)(ids, logits.clone())
    check_equal(ops.logits_process(logits, ids, forced=eos), ref)
    ref = tlp.ForcedBOSTokenLogitsProcessor(4)(ids[:, :1], logits.clone())
    check_equal(ops.logits_process(logits, ids[:, :1], forced=torch.tensor([4])), ref)


def test_processors_compose_in_transformers_order():
    logits, ids = random_case(rows=8, length=15, small_vocab=5, seed=3)
    source = torch.randint(0, 6, (2, 9), generator=torch.Generator().manual_seed(2))
    eos = torch.tensor([2])
    chain = tlp.LogitsProcessorList([
        tlp.RepetitionPenaltyLogitsProcessor(1.7), tlp.NoRepeatNGramLogitsProcessor(3),
        tlp.EncoderNoRepeatNGramLogitsProcessor(2, source), tlp.NoBadWordsLogitsProcessor([[1, 4], [6]], eos),
        tlp.MinLengthLogitsProcessor(20, eos)])
    ref = chain(ids, torch.log_softmax(logits, -1))
    ours = ops.logits_process(logits, ids, log_softmax=True, repetition_penalty=1.7, no_repeat_ngram_size=3,
                              source_ids=source, encoder_no_repeat_ngram_size=2, bad_words=torch.tensor([1, 4, 6]),
                              bad_word_offsets=torch.tensor([0, 2, 3]), banned=eos)
    check_equal(ours, ref)
    ref_py = bs.logits_process_reference(
        logits, ids, True, 1.7, None, 3, source, 2, torch.tensor([1, 4, 6]), torch.tensor([0, 2, 3]), eos, None)
    check_equal(ref_py, ref)


def test_logits_process_strided_half_and_errors():
    logits = torch.randn(3, 2, 50)
    ids = torch.randint(0, 50, (3, 4))
    ours = ops.logits_process(logits[:, -1], ids, log_softmax=True)  # rows strided
    check_equal(ours, torch.log_softmax(logits[:, -1], -1))
    half = logits[:, -1].half()
    check_equal(ops.logits_process(half, ids), half.float())
    with pytest.raises(InputError, match="input_ids has 2 rows"):
        ops.logits_process(logits[:, -1], ids[:2])
    with pytest.raises(InputError, match="repetition_penalty"):
        ops.logits_process(logits[:, -1], ids, repetition_penalty=0.0)
    with pytest.raises(InputError, match="not a multiple"):
        ops.logits_process(logits[:, -1], ids, source_ids=ids[:2], encoder_no_repeat_ngram_size=2)


@pytest.mark.parametrize("batch,beams,k", [(1, 1, 2), (3, 4, 8), (2, 5, 15), (4, 2, 6)])
def test_beam_topk_matches_torch_topk(batch, beams, k):
    """Ties included: the CPU kernel returns torch.topk's order of equal values (transformers ranks
    beams with torch.topk), not index order."""
    gen = torch.Generator().manual_seed(batch * 10 + beams)
    scores = torch.log_softmax(torch.randn(batch * beams, 33, generator=gen), -1)
    scores[0, 3:9] = scores[0, 2]  # ties within a row
    scores[:, 10] = float("-inf")
    running = torch.randn(batch, beams, generator=gen)
    running[:, 1:] = -1e9  # the first step: everything but beam 0 ties at -1e9
    values, ids = ops.beam_topk(scores, running, k)
    ref_values, ref_ids = bs.beam_topk_reference(scores, running, k)
    assert torch.equal(values, ref_values) and torch.equal(ids, ref_ids)
    torch_values, torch_ids = torch.topk((scores.view(batch, beams, -1) + running[:, :, None]).view(batch, -1), k)
    assert torch.equal(values, torch_values) and torch.equal(ids, torch_ids)


@pytest.mark.parametrize("vocab", [7, 50, 300])  # both of torch.topk's CPU algorithms (k * 64 <= n or not)
def test_beam_ops_rank_ties_like_torch_topk(vocab):
    """Scores drawn from a handful of values (plus -inf), so nearly every selection has ties."""
    batch, beams, max_length, prompt_len = 3, 3, 9, 1
    gen = torch.Generator().manual_seed(vocab)
    prompt = torch.randint(3, vocab, (batch * beams, prompt_len), generator=gen)
    eos = torch.tensor([0, 1])
    ours, ref = new_state(batch, beams, max_length, prompt), new_state(batch, beams, max_length, prompt)
    keep = 3 * beams
    index_order = False  # torch.topk ranked some tie other than by index (else the test shows nothing)
    for cur_len in range(prompt_len, max_length):
        log_probs = -torch.randint(0, 3, (batch * beams, vocab), generator=gen).float()
        log_probs[torch.rand(log_probs.shape, generator=gen) < 0.3] = float("-inf")
        values, ids = ops.beam_topk(log_probs, ours[1], keep)
        ref_values, ref_ids = torch.topk((log_probs.view(batch, beams, -1) + ref[1][:, :, None]).view(batch, -1), keep)
        assert torch.equal(values, ref_values) and torch.equal(ids, ref_ids), cur_len
        total = (log_probs.view(batch, beams, -1) + ref[1][:, :, None]).view(batch, -1)
        index_order |= not torch.equal(ref_ids, torch.sort(total, dim=1, descending=True, stable=True)[1][:, :keep])
        bs.beam_update_reference(ref_values, ref_ids, *ref, eos, vocab, cur_len, 1.0, 0)
        ops.beam_update_(values, ids, ours, eos, vocab, cur_len, 1.0, False)
        for i, (a, b) in enumerate(zip(ours, ref)):
            assert torch.equal(a, b), f"step {cur_len}: state[{i}] differs"
        if bool(ref[-1]):
            break
    assert index_order


def new_state(batch, beams, max_length, prompt, fill=1):
    seqs = torch.full((batch, beams, max_length), fill, dtype=torch.long)
    seqs[:, :, :prompt.shape[1]] = prompt.view(batch, beams, -1)
    scores = torch.zeros(batch, beams)
    scores[:, 1:] = -1e9
    beam_idx = torch.full((batch, beams, max_length - prompt.shape[1]), -1, dtype=torch.int32)
    return [seqs, scores, beam_idx, seqs.clone(), torch.full((batch, beams), -1e9), beam_idx.clone(),
            torch.zeros(batch, beams, dtype=torch.bool), torch.ones(batch, dtype=torch.bool),
            torch.empty(batch * beams, dtype=torch.long), torch.empty(batch * beams, dtype=torch.long),
            torch.zeros((), dtype=torch.bool)]


@pytest.mark.parametrize("early_stopping", [False, True, "never"])
@pytest.mark.parametrize("length_penalty", [0.5, 1.0, 2.0, -1.0])
@pytest.mark.parametrize("n_eos", [1, 2])
def test_beam_update_matches_reference(early_stopping, length_penalty, n_eos):
    """Run both implementations over random steps (EOS likely) from the same state."""
    batch, beams, vocab, max_length, prompt_len = 3, 4, 12, 14, 2
    gen = torch.Generator().manual_seed(int(length_penalty * 10) + n_eos)
    prompt = torch.randint(3, vocab, (batch, 1, prompt_len), generator=gen).expand(-1, beams, -1).reshape(-1, prompt_len)
    eos = torch.tensor([0, 1][:n_eos])
    ours, ref = new_state(batch, beams, max_length, prompt), new_state(batch, beams, max_length, prompt)
    keep = max(2, 1 + n_eos) * beams
    for cur_len in range(prompt_len, max_length):
        logits = torch.randn(batch * beams, vocab, generator=gen) * 2
        logits[:, :n_eos] += 1.5  # finish often
        log_probs = torch.log_softmax(logits, -1)
        cand = bs.beam_topk_reference(log_probs, ref[1], keep)
        bs.beam_update_reference(*cand, *ref, eos, vocab, cur_len, length_penalty,
                                 bs.EARLY_STOPPING[early_stopping])
        ops.beam_update_(*ops.beam_topk(log_probs, ours[1], keep), ours, eos, vocab, cur_len, length_penalty,
                         early_stopping)
        for name, a, b in zip(["running_seqs", "running_scores", "running_beams", "seqs", "seq_scores", "seq_beams",
                               "finished", "undone", "next_tokens", "parents", "done"], ours, ref):
            assert torch.equal(a, b), f"step {cur_len}: {name} differs"
        if bool(ref[-1]):
            break
    assert bool(ref[-1])  # the search ended (at max_length at the latest)


def test_beam_update_is_a_no_op_once_done():
    prompt = torch.tensor([[5], [5]])
    state = new_state(1, 2, 6, prompt)
    state[-1].fill_(True)
    before = [t.clone() for t in state[:8]]
    ops.beam_update_(torch.tensor([[-1.0, -2.0, -3.0, -4.0]]), torch.tensor([[1, 2, 3, 4]]), state,
                     torch.tensor([0]), 10, 1, 1.0, False)
    assert all(torch.equal(a, b) for a, b in zip(state[:8], before))


def test_beam_update_checks_shapes():
    state = new_state(2, 2, 6, torch.ones(4, 1, dtype=torch.long))
    with pytest.raises(InputError, match="cand_scores"):
        ops.beam_update_(torch.zeros(1, 4), torch.zeros(1, 4, dtype=torch.long), state, None, 10, 1, 1.0, False)
    with pytest.raises(InputError, match="cur_len"):
        ops.beam_update_(torch.zeros(2, 4), torch.zeros(2, 4, dtype=torch.long), state, None, 10, 6, 1.0, False)


@pytest.mark.parametrize("index", [[0, 1, 2, 3], [0, 0, 1, 2], [3, 2, 1, 0], [1, 1, 1, 1], [2, 0, 0, 3]])
def test_reorder_rows(index):
    gen = torch.Generator().manual_seed(len(index))
    buffers = [torch.randn(4, 9, 3, 5, generator=gen), torch.randn(4, 9, 3, 7, generator=gen).half()]
    expected = [b.clone() for b in buffers]
    bs.reorder_rows_reference(expected, torch.tensor(index), 6)
    ops.reorder_rows_(buffers, torch.tensor(index), 6)
    for a, b in zip(buffers, expected):
        assert torch.equal(a, b)
    with pytest.raises(InputError, match="out of range"):
        ops.reorder_rows_(buffers, torch.tensor([0, 1, 2, 4]), 6)
