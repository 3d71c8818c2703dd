"""The decoding loops: greedy / sampling, and beam search, over a model's generation protocol.

Each step runs the decoder once over the newest tokens (``gen_step``), the fused processors,
then either an argmax / sample (torch ops over ``[rows]``) or the beam kernels (top-k over
beams x vocab and the finished-hypothesis bookkeeping, all on the device), and reorders the
self-attention cache in place. Nothing loops over rows in Python. On CUDA the loop learns that
it is over one step late, from a flag copied asynchronously (no per-step host sync); the extra
step is a no-op for the beam state and is trimmed from greedy outputs and from the scores.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Optional

import torch
from torch import Tensor

from .. import ops
from ..errors import GenerationError
from .logits_process import LogitsProcessor, warp
from .protocol import StepOutputs
from .streamers import BaseStreamer

_BEAM_PENALTY = -1.0e9  # transformers' initial score of the beams that are not started yet


@dataclass
class DecodeRun:
    """Everything a loop needs, prepared by ``GenerationMixin.generate``."""

    model: object
    cache: object  # pygen.cache.KVCache sized for the whole generation
    prompt: Tensor  # [rows, P] decoder prompt, already repeated per beam / returned sequence
    attention_mask: Optional[Tensor]  # [rows, P] for left-padded decoder-only prompts
    processor: LogitsProcessor
    max_length: int
    eos: Optional[Tensor]  # EOS ids (int64)
    pad_token_id: Optional[int]
    output_scores: bool
    output_logits: bool
    stopping_criteria: list  # the caller's extra criteria (greedy / sampling)
    records: Optional["StepRecords"] = None  # output_attentions / output_hidden_states: filled per step
    deadline: Optional[float] = None  # max_time: time.monotonic() after which every row is done
    # (positions, message) when max_length needs more positions than the decoder has: reaching
    # them with a sequence still running is an error (transformers fails there too), not before.
    position_limit: Optional[tuple[int, str]] = None

    def buffer_length(self, extra: int) -> int:
        """Columns for a loop's per-position buffers: ``max_length``, or past the position table only
        as far as the loop can go before ``check_positions`` stops it (``extra`` = 1 for greedy
        decoding, 2 for beam search, whose kernel finishes every beam at the buffer's last column),
        so a huge ``max_length`` allocates nothing it cannot use."""
        if self.position_limit is None:
            return self.max_length
        return min(self.max_length, self.position_limit[0] + extra)

    def check_positions(self, cur_len: int, finished: Callable[[], Tensor]) -> bool:
        """Before feeding position ``cur_len - 1``: True when the loop must stop because every
        sequence is done (``finished()``, read now, even where the stop check is deferred; only
        evaluated past the table, so other steps pay nothing); raises when one runs."""
        if self.position_limit is None or cur_len <= self.position_limit[0]:
            return False
        if bool(finished()):
            return True
        raise GenerationError(self.position_limit[1])


class StepRecords:
    """Per-step attentions / hidden states for ``output_attentions`` / ``output_hidden_states``: one
    entry per decoder step, each a per-layer tuple (transformers' ``decoder_attentions``,
    ``cross_attentions``, ``decoder_hidden_states``)."""

    def __init__(self, output_attentions: bool, output_hidden_states: bool):
        self.output_attentions, self.output_hidden_states = output_attentions, output_hidden_states
        self.attentions: list[tuple[Tensor, ...]] = []
        self.cross_attentions: list[tuple[Tensor, ...]] = []
        self.hidden_states: list[tuple[Tensor, ...]] = []

    def add(self, step: StepOutputs) -> None:
        if self.output_attentions:
            self.attentions.append(step.attentions)
            if step.cross_attentions is not None:
                self.cross_attentions.append(step.cross_attentions)
        if self.output_hidden_states:
            self.hidden_states.append(step.hidden_states)

    def drop_last(self) -> None:
        for entries in (self.attentions, self.cross_attentions, self.hidden_states):
            del entries[-1:]


class _StopCheck:
    """Reads a device flag saying the loop is over: at once on CPU; on CUDA one step late."""

    def __init__(self, device: torch.device, streaming: bool):
        self.deferred = device.type == "cuda" and not streaming  # a streamer syncs every step anyway
        self.step = 0
        if self.deferred:
            self.slots = [(torch.zeros((), dtype=torch.bool, pin_memory=True), torch.cuda.Event()) for _ in range(2)]

    def __call__(self, flag: Tensor) -> tuple[bool, bool]:
        """(stop, overshot): ``overshot`` when the step just run was past the end."""
        if not self.deferred:
            return bool(flag), False
        host, event = self.slots[self.step % 2]
        host.copy_(flag, non_blocking=True)
        event.record()
        prev_host, prev_event = self.slots[(self.step + 1) % 2]
        stop = False
        if self.step > 0:
            prev_event.synchronize()
            stop = bool(prev_host)
        self.step += 1
        return stop, stop


class _Decoder:
    """Feeds tokens to the model, growing the decoder-only padding mask; fills ``run.records``."""

    def __init__(self, run: DecodeRun):
        self.run = run
        self.mask = None
        if run.attention_mask is not None:
            rows, prompt_len = run.attention_mask.shape
            self.mask = torch.ones(rows, run.buffer_length(2), dtype=run.attention_mask.dtype,
                                   device=run.attention_mask.device)
            self.mask[:, :prompt_len] = run.attention_mask

    def __call__(self, tokens: Tensor) -> Tensor:
        """Logits of the last of ``tokens`` ``[rows, n]``, as ``[rows, vocab]``."""
        cache = self.run.cache
        mask = None if self.mask is None else self.mask[:, :cache.length + tokens.shape[1]]
        records = self.run.records
        if records is None:
            return self.run.model.gen_step(tokens, cache, mask)[:, -1]
        step = self.run.model.gen_step_outputs(tokens, cache, mask, records.output_attentions,
                                               records.output_hidden_states)
        records.add(step)
        return step.logits[:, -1]


def _multinomial(probs: Tensor, num_samples: int, generator: Optional[torch.Generator]) -> Tensor:
    """``torch.multinomial``, but NaN / inf probabilities (non-finite scores: NaN or inf weights or
    inputs) raise a :class:`GenerationError` instead of torch's ``RuntimeError``. torch checks the
    values itself (on the host, before sampling), so the happy path costs nothing extra."""
    try:
        return torch.multinomial(probs, num_samples, generator=generator)
    except RuntimeError as exc:
        if bool(torch.isfinite(probs).all()):
            raise
        raise GenerationError("cannot sample the next token: the scores are not finite (NaN or inf probabilities; "
                              "are the model's weights or inputs NaN/inf?). Greedy decoding and beam search "
                              "return on such scores") from exc


def greedy_or_sample(run: DecodeRun, *, do_sample: bool = False, warpers: Optional[dict] = None,
                     generator: Optional[torch.Generator] = None, streamer: Optional[BaseStreamer] = None):
    """Greedy decoding or multinomial sampling; returns (sequences, scores, logits)."""
    rows, prompt_len = run.prompt.shape
    device = run.prompt.device
    seqs = torch.empty(rows, run.buffer_length(1), dtype=torch.long, device=device)
    seqs[:, :prompt_len] = run.prompt
    unfinished = torch.ones(rows, dtype=torch.bool, device=device)
    pad = torch.tensor(run.pad_token_id if run.pad_token_id is not None else 0, device=device)
    scores, raw_logits = [], []
    decode, stop_check = _Decoder(run), _StopCheck(device, streamer is not None)
    tokens, cur_len = run.prompt, prompt_len
    while True:
        logits = decode(tokens)
        if run.output_logits:
            raw_logits.append(logits.float().clone())
        step_scores = run.processor(logits, seqs[:, :cur_len])
        if do_sample:
            step_scores = warp(step_scores, **warpers)
        if run.processor.renormalize:
            step_scores = step_scores.log_softmax(dim=-1)
        if run.output_scores:
            scores.append(step_scores)
        if do_sample:
            next_tokens = _multinomial(torch.softmax(step_scores, dim=-1), 1, generator).squeeze(1)
        else:
            next_tokens = step_scores.argmax(dim=-1)
        if run.eos is not None:  # finished rows keep emitting padding
            next_tokens = torch.where(unfinished, next_tokens, pad)
            unfinished &= ~torch.isin(next_tokens, run.eos)
        seqs[:, cur_len] = next_tokens
        cur_len += 1
        if run.deadline is not None and time.monotonic() > run.deadline:
            unfinished.zero_()  # transformers' MaxTimeCriteria: every row is done
        if run.stopping_criteria:  # transformers passes the scores tuple, or None
            scores_so_far = tuple(scores) if run.output_scores else None
            for criterion in run.stopping_criteria:
                done = criterion(seqs[:, :cur_len], scores_so_far)
                unfinished &= ~torch.as_tensor(done, dtype=torch.bool, device=device)
        if streamer is not None:
            streamer.put(next_tokens.cpu())
        if cur_len >= run.max_length:
            break
        stop, overshot = stop_check(~unfinished.any())
        if overshot:
            cur_len -= 1
            del scores[-1:], raw_logits[-1:]
            if run.records is not None:
                run.records.drop_last()
        if stop or run.check_positions(cur_len, lambda: ~unfinished.any()):
            break
        tokens = next_tokens[:, None]
    return seqs[:, :cur_len], scores, raw_logits


def beam_search(run: DecodeRun, *, num_beams: int, num_return_sequences: int, length_penalty: float,
                early_stopping, do_sample: bool = False, warpers: Optional[dict] = None,
                generator: Optional[torch.Generator] = None):
    """transformers 5.23's vectorised beam search (and beam sampling); returns
    (sequences, sequences_scores, scores, logits, beam_indices)."""
    rows, prompt_len = run.prompt.shape
    batch, max_length, device = rows // num_beams, run.buffer_length(2), run.prompt.device
    n_eos = 0 if run.eos is None else run.eos.numel()
    keep = max(2, 1 + n_eos) * num_beams  # candidates per item: enough that num_beams never all stop
    if run.eos is None:
        fill = -1
    else:  # transformers fills unused positions with the pad id, or EOS when the pad id is 0 / unset
        fill = run.pad_token_id if run.pad_token_id else int(run.eos[0])
    running_seqs = torch.full((batch, num_beams, max_length), fill, dtype=torch.long, device=device)
    running_seqs[:, :, :prompt_len] = run.prompt.view(batch, num_beams, prompt_len)
    running_scores = torch.zeros(batch, num_beams, dtype=torch.float32, device=device)
    running_scores[:, 1:] = _BEAM_PENALTY  # all beams start identical: only the first may expand
    running_beams = torch.full((batch, num_beams, max_length - prompt_len), -1, dtype=torch.int32, device=device)
    state = (running_seqs, running_scores, running_beams, running_seqs.clone(),
             torch.full((batch, num_beams), _BEAM_PENALTY, dtype=torch.float32, device=device),
             running_beams.clone(), torch.zeros(batch, num_beams, dtype=torch.bool, device=device),
             torch.ones(batch, dtype=torch.bool, device=device),
             torch.empty(rows, dtype=torch.long, device=device), torch.empty(rows, dtype=torch.long, device=device),
             torch.zeros((), dtype=torch.bool, device=device))
    seqs, seq_scores, seq_beams, next_tokens, parents, done = (state[3], state[4], state[5], state[8], state[9],
                                                              state[10])
    flat_running = running_seqs.view(rows, max_length)
    scores, raw_logits = [], []
    decode, stop_check = _Decoder(run), _StopCheck(device, False)
    tokens, cur_len = run.prompt, prompt_len
    while True:
        logits = decode(tokens)
        if run.output_logits:
            raw_logits.append(logits.float().clone())
        log_probs = run.processor(logits, flat_running[:, :cur_len], log_softmax=True)
        if do_sample:
            log_probs = warp(log_probs, **warpers)
        if run.processor.renormalize:
            log_probs = log_probs.log_softmax(dim=-1)
        if run.output_scores:
            scores.append(log_probs)
        if do_sample:  # sample the candidates (without replacement) instead of taking the top ones
            total = (log_probs.view(batch, num_beams, -1) + running_scores[:, :, None]).view(batch, -1)
            cand_ids = _multinomial(torch.softmax(total, dim=-1), keep, generator)
            cand_scores = torch.gather(total, 1, cand_ids)
        else:
            cand_scores, cand_ids = ops.beam_topk(log_probs, running_scores, keep)
        ops.beam_update_(cand_scores, cand_ids, state, run.eos, log_probs.shape[-1], cur_len, length_penalty,
                         early_stopping)
        cur_len += 1
        if cur_len >= max_length:
            break
        stop, overshot = stop_check(done)
        if overshot:
            del scores[-1:], raw_logits[-1:]
            if run.records is not None:
                run.records.drop_last()
        if stop or run.check_positions(cur_len, lambda: done):
            break
        ops.reorder_rows_(run.cache.keys + run.cache.values, parents, run.cache.length)
        tokens = next_tokens[:, None]

    def best(t: Tensor) -> Tensor:  # the top num_return_sequences hypotheses of each item, flattened
        return t[:, :num_return_sequences].reshape(batch * num_return_sequences, *t.shape[2:])

    beam_indices = best(seq_beams)
    generated = int((beam_indices != -1).sum(dim=1).max())
    return (best(seqs)[:, :prompt_len + generated], best(seq_scores), scores, raw_logits,
            beam_indices[:, :generated])
