"""Generation operators (logits processors, beam-search top-k and bookkeeping, KV-cache reorder):
Python entry points and their pure-torch references.

The references spell out transformers 5.23's semantics (``generation/logits_process.py`` and the
vectorised ``_beam_search`` of ``generation/utils.py``) in plain torch ops; the compiled kernels
must reproduce them. Every ranking is torch.topk's, as in transformers: on CPU the kernels
reproduce its order of equal values too (ATen's std::partial_sort / std::nth_element order, not
index order); the CUDA kernels break ties by the lower index, which may differ from torch.topk
on CUDA when scores tie exactly (several forced EOS ids, -inf or -1e9 scores).
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import Tensor

from ..errors import InputError
from ._loader import has_kernels, warn_fallback

EARLY_STOPPING = {False: 0, True: 1, "never": 2}  # GenerationConfig.early_stopping -> kernel int
_PENALTY = -1.0e9  # transformers' "push out of the top-k" score offset


def _kernel_error(exc: Exception) -> InputError:
    return InputError(str(exc).split("\nException raised from")[0])


# ---- logits processors ---------------------------------------------------------------------------
def logits_process(logits: Tensor, input_ids: Tensor, *, log_softmax: bool = False, repetition_penalty: float = 1.0,
                   penalty_start: Optional[Tensor] = None, no_repeat_ngram_size: int = 0,
                   source_ids: Optional[Tensor] = None, encoder_no_repeat_ngram_size: int = 0,
                   bad_words: Optional[Tensor] = None, bad_word_offsets: Optional[Tensor] = None,
                   banned: Optional[Tensor] = None, forced: Optional[Tensor] = None) -> Tensor:
    """transformers' logits processors, fused; returns new float32 scores ``[rows, vocab]``.

    Args:
        logits: ``[rows, vocab]``, any float dtype (the vocab dim contiguous).
        input_ids: ``[rows, cur_len]`` int64, the sequences so far.
        log_softmax: first replace each row by its log-softmax (beam search processes log-probs).
        repetition_penalty: divide positive / multiply negative scores of tokens already in the row
            (from position ``penalty_start[row]`` on: left padding is not penalised).
        no_repeat_ngram_size: ban tokens that would repeat an n-gram of the row.
        source_ids, encoder_no_repeat_ngram_size: ban tokens that would repeat an n-gram of the
            source (row ``r`` reads source row ``r // (rows // source rows)``).
        bad_words, bad_word_offsets: the words ``bad_words[off[i]:off[i+1]]``; a word's last token is
            banned when the row ends with the word's other tokens.
        banned: ids set to ``-inf`` (``min_length`` not reached yet).
        forced: when given, the row becomes ``-inf`` except these ids, which become 0.
    """
    args = (logits, input_ids, log_softmax, float(repetition_penalty), penalty_start, int(no_repeat_ngram_size),
            source_ids, int(encoder_no_repeat_ngram_size), bad_words, bad_word_offsets, banned, forced)
    if not has_kernels(logits.device):
        warn_fallback()
        return logits_process_reference(*args)
    try:
        return torch.ops.pygen.logits_process(*args)
    except (RuntimeError, ValueError, TypeError) as exc:
        raise _kernel_error(exc) from None


def logits_process_reference(logits, input_ids, log_softmax=False, repetition_penalty=1.0, penalty_start=None,
                             no_repeat_ngram_size=0, source_ids=None, encoder_no_repeat_ngram_size=0,
                             bad_words=None, bad_word_offsets=None, banned=None, forced=None) -> Tensor:
    """Readable semantics of :func:`logits_process` (a Python loop over rows)."""
    scores = logits.float()
    scores = torch.log_softmax(scores, dim=-1) if log_softmax else scores.clone()
    rows, vocab = scores.shape
    length = input_ids.shape[1]
    inf = float("-inf")
    for r in range(rows):
        row, ids = scores[r], input_ids[r].tolist()
        if forced is not None:
            keep = [t for t in forced.tolist() if 0 <= t < vocab]
            row.fill_(inf)
            row[keep] = 0.0
            continue
        if repetition_penalty != 1.0:
            start = int(penalty_start[r]) if penalty_start is not None else 0
            seen = sorted({t for t in ids[max(start, 0):] if 0 <= t < vocab})
            if seen:
                old = row[seen]
                row[seen] = torch.where(old < 0, old * repetition_penalty, old / repetition_penalty)
        bans = []
        n = no_repeat_ngram_size
        if 0 < n <= length:
            prefix = ids[length - n + 1:]
            bans += [ids[w + n - 1] for w in range(length - n + 1) if ids[w:w + n - 1] == prefix]
        n = encoder_no_repeat_ngram_size
        if n > 0 and length >= n - 1:
            src = source_ids[r // (rows // source_ids.shape[0])].tolist()
            prefix = ids[length - n + 1:] if n > 1 else []
            bans += [src[w + n - 1] for w in range(len(src) - n + 1) if src[w:w + n - 1] == prefix]
        if bad_words is not None:
            words, off = bad_words.tolist(), bad_word_offsets.tolist()
            for i in range(len(off) - 1):
                word = words[off[i]:off[i + 1]]
                if word and len(word) - 1 <= length and (len(word) == 1 or ids[length - len(word) + 1:] == word[:-1]):
                    bans.append(word[-1])
        if banned is not None:
            bans += banned.tolist()
        bans = [t for t in bans if 0 <= t < vocab]
        if bans:
            row[bans] = inf
    return scores


# ---- beam search -----------------------------------------------------------------------------------
def beam_topk(scores: Tensor, beam_scores: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """Top ``k`` of ``scores[b * nb + j, v] + beam_scores[b, j]`` over each item's ``nb x vocab``.

    Returns values ``[B, k]`` (float32, descending; ties as torch.topk orders them) and flat ids
    ``j * vocab + v`` ``[B, k]`` int64.
    """
    if not has_kernels(scores.device):
        warn_fallback()
        return beam_topk_reference(scores, beam_scores, k)
    try:
        return torch.ops.pygen.beam_topk(scores, beam_scores, int(k))
    except (RuntimeError, ValueError, TypeError) as exc:
        raise _kernel_error(exc) from None


def beam_topk_reference(scores: Tensor, beam_scores: Tensor, k: int) -> tuple[Tensor, Tensor]:
    batch, beams = beam_scores.shape
    total = (scores.view(batch, beams, -1) + beam_scores[:, :, None]).reshape(batch, -1)
    return torch.topk(total, k)


def beam_update_(cand_scores: Tensor, cand_ids: Tensor, state: Sequence[Tensor], eos_ids: Optional[Tensor],
                 vocab: int, cur_len: int, length_penalty: float, early_stopping) -> None:
    """One step of beam-search bookkeeping, in place on ``state``.

    ``state`` is (running_seqs, running_scores, running_beams, seqs, seq_scores, seq_beams, finished,
    undone, next_tokens, parents, done): see ``BeamState`` in csrc/kernels/beam_search.h. The
    candidates ``[B, k]`` are a step's continuations (score, flat id ``beam * vocab + token``); the
    first ``num_beams`` of them may finish.
    """
    args = (cand_scores, cand_ids, *state, eos_ids, int(vocab), int(cur_len), float(length_penalty),
            EARLY_STOPPING[early_stopping])
    if not has_kernels(cand_scores.device):
        warn_fallback()
        return beam_update_reference(*args)
    try:
        torch.ops.pygen.beam_update_(*args)
    except (RuntimeError, ValueError, TypeError) as exc:
        raise _kernel_error(exc) from None


def beam_update_reference(cand_scores, cand_ids, running_seqs, running_scores, running_beams, seqs, seq_scores,
                          seq_beams, finished, undone, next_tokens, parents, done, eos_ids, vocab, cur_len,
                          length_penalty, early_stopping) -> None:
    """transformers 5.23's ``_beam_search`` step bookkeeping, vectorised over the batch."""
    if bool(done):
        return
    batch, beams, max_length = running_seqs.shape
    prompt_len = max_length - running_beams.shape[2]
    rows = torch.arange(batch, device=cand_ids.device)[:, None]
    parent, token = cand_ids // vocab, cand_ids % vocab
    hit = torch.full_like(token, cur_len + 1 >= max_length, dtype=torch.bool)
    if eos_ids is not None:
        hit |= torch.isin(token, eos_ids)
    # The candidates as full rows: their parent's prefix plus the new token.
    cand_seqs = running_seqs[rows, parent]
    cand_seqs[:, :, cur_len] = token
    cand_beams = running_beams[rows, parent]
    cand_beams[:, :, cur_len - prompt_len] = (rows * beams + parent).int()
    # Next running beams: the best candidates that did not stop.
    run_scores = cand_scores + hit.float() * _PENALTY
    pick = torch.topk(run_scores, beams).indices
    # Finished hypotheses: merge the stopped candidates among the first `beams` into the kept ones.
    did_finish = hit.clone()
    did_finish[:, beams:] = False
    fin_scores = cand_scores / ((cur_len + 1 - prompt_len) ** length_penalty)
    full = finished.all(dim=1, keepdim=True) & (early_stopping == EARLY_STOPPING[True])
    fin_scores += full.float() * _PENALTY
    fin_scores += (~undone[:, None]).float() * _PENALTY
    fin_scores += (~did_finish).float() * _PENALTY
    merged_scores = torch.cat([seq_scores, fin_scores], dim=1)
    keep = torch.topk(merged_scores, beams).indices
    new_seqs = torch.cat([seqs, cand_seqs], dim=1)[rows, keep]
    new_beams = torch.cat([seq_beams, cand_beams], dim=1)[rows, keep]
    new_finished = torch.cat([finished, did_finish], dim=1)[rows, keep]
    seqs.copy_(new_seqs)
    seq_beams.copy_(new_beams)
    seq_scores.copy_(merged_scores[rows, keep])
    finished.copy_(new_finished)
    running_seqs.copy_(cand_seqs[rows, pick])
    running_beams.copy_(cand_beams[rows, pick])
    running_scores.copy_(run_scores[rows, pick])
    next_tokens.copy_(token[rows, pick].reshape(-1))
    parents.copy_((rows * beams + parent[rows, pick]).reshape(-1))
    # Early-stop heuristic, then whether the search goes on.
    never = early_stopping == EARLY_STOPPING["never"] and length_penalty > 0.0
    best_len = (max_length if never else cur_len + 1) - prompt_len
    best = running_scores[:, :1] / (best_len ** length_penalty)
    worst = torch.where(finished, seq_scores.min(dim=1, keepdim=True).values, _PENALTY)
    undone &= (best > worst).any(dim=1)
    open_beams = not (bool(finished.all()) and early_stopping == EARLY_STOPPING[True])
    done.fill_(not (bool(undone.any()) and open_beams and not bool(hit.all())))


# ---- KV-cache reorder ----------------------------------------------------------------------------------
def reorder_rows_(buffers: Sequence[Tensor], index: Tensor, length: int) -> None:
    """Row ``i`` of every buffer ``[R, capacity, ...]`` takes positions ``[0, length)`` of row ``index[i]``."""
    buffers = [b for b in buffers if b is not None]
    if not buffers:
        return
    if not has_kernels(index.device):
        warn_fallback()
        return reorder_rows_reference(buffers, index, length)
    try:
        torch.ops.pygen.reorder_rows_(buffers, index, int(length))
    except (RuntimeError, ValueError, TypeError) as exc:
        raise _kernel_error(exc) from None


def reorder_rows_reference(buffers: Sequence[Tensor], index: Tensor, length: int) -> None:
    for buf in buffers:
        buf[:, :length] = buf[:, :length].index_select(0, index)
