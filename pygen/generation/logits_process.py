"""The logits processors ``generate()`` applies, built once per call from a resolved config.

:class:`LogitsProcessor` holds everything on the device and, per step, only decides on the host
which length-dependent processors are active (min-length EOS ban, forced BOS/EOS); the work is
one fused kernel (:func:`pygen.ops.logits_process`). Sampling warpers (:func:`warp`) are the same
torch ops transformers runs, so sorted-order ties and cumulative sums agree exactly.
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence

import torch
from torch import Tensor

from .. import ops
from ..errors import GenerationError
from .config import sequence_bias_pairs


class LogitsProcessor:
    """transformers' processor list for one ``generate()`` call, in transformers' order: sequence
    bias, encoder repetition penalty, then the fused kernel (repetition penalty, no-repeat n-grams, encoder
    no-repeat n-grams, bad words, min length / min new tokens, forced BOS, forced EOS), then
    NaN/inf removal, exponential decay length penalty, suppressed tokens and begin-suppressed
    tokens, then the caller's ``custom`` processors. ``prefix_allowed_tokens_fn`` masks between
    min-length and forced BOS/EOS in transformers; a forced step overrides every other token, so
    it runs after the kernel except on forced steps. ``renormalize`` (``renormalize_logits``) is
    for the loop to apply after the warpers."""

    def __init__(self, config, *, vocab_size: int, prompt_len: int, eos: Optional[list[int]], device: torch.device,
                 source_ids: Optional[Tensor] = None, penalty_start: Optional[Tensor] = None,
                 custom: Sequence[Callable] = (), prefix_allowed_tokens_fn: Optional[Callable] = None):
        def ids_tensor(values):
            return torch.tensor(values, dtype=torch.long, device=device)

        def check_ids(name, values):
            bad = [t for t in values if not 0 <= t < vocab_size]
            if bad:
                raise GenerationError(f"`{name}` holds ids outside the vocabulary [0, {vocab_size}): {bad}")

        self.vocab_size = vocab_size
        self.prompt_len = prompt_len
        self.max_length = config.max_length
        self.repetition_penalty = float(config.repetition_penalty)
        self.penalty_start = penalty_start if self.repetition_penalty != 1.0 else None
        self.no_repeat_ngram_size = config.no_repeat_ngram_size
        self.encoder_no_repeat_ngram_size = config.encoder_no_repeat_ngram_size if source_ids is not None else 0
        self.source_ids = source_ids if self.encoder_no_repeat_ngram_size > 0 else None
        self.bad_words = self.bad_word_offsets = None
        if config.bad_words_ids is not None:
            # A bad word that is just an EOS token is dropped (transformers does the same).
            words = [list(w) for w in config.bad_words_ids if not (len(w) == 1 and eos and w[0] in eos)]
            check_ids("bad_words_ids", [t for w in words for t in w])
            if words:
                offsets = [0]
                for word in words:
                    offsets.append(offsets[-1] + len(word))
                self.bad_words = ids_tensor([t for w in words for t in w])
                self.bad_word_offsets = ids_tensor(offsets)
        # min_length / min_new_tokens ban every EOS id until reached (and only act when EOS is known).
        self.eos = ids_tensor(eos) if eos else None
        self.min_length = config.min_length or 0
        self.min_new_tokens = config.min_new_tokens or 0
        self.forced_bos = self.forced_eos = None
        if config.forced_bos_token_id is not None:
            check_ids("forced_bos_token_id", [config.forced_bos_token_id])
            self.forced_bos = ids_tensor([config.forced_bos_token_id])
        if config.forced_eos_token_id is not None:
            forced = config.forced_eos_token_id
            forced = [forced] if isinstance(forced, int) else list(forced)
            check_ids("forced_eos_token_id", forced)
            self.forced_eos = ids_tensor(forced)
        # The processors around the kernel, as transformers writes them (torch ops, rarely used).
        self.sequence_bias = None
        if config.sequence_bias is not None:
            self.sequence_bias = SequenceBias(sequence_bias_pairs(config.sequence_bias), vocab_size, device)
        self.encoder_penalty = None
        if source_ids is not None and config.encoder_repetition_penalty != 1.0:
            if int(source_ids.max()) >= vocab_size:  # transformers fails on the gather
                raise GenerationError(f"encoder_repetition_penalty scores the source's ids as decoder tokens, but the "
                                      f"source holds id {int(source_ids.max())}, outside the decoder vocabulary "
                                      f"[0, {vocab_size})")
            self.encoder_penalty = 1.0 / float(config.encoder_repetition_penalty)
            self.encoder_ids = source_ids
        self.remove_invalid_values = bool(config.remove_invalid_values)
        self.decay = None
        if config.exponential_decay_length_penalty is not None and eos:
            start, factor = config.exponential_decay_length_penalty
            self.decay = (start + prompt_len, float(factor))
        self.suppress = self.begin_suppress = None
        if config.suppress_tokens:
            check_ids("suppress_tokens", config.suppress_tokens)
            self.suppress = ids_tensor(list(config.suppress_tokens))
        if config.begin_suppress_tokens:
            check_ids("begin_suppress_tokens", config.begin_suppress_tokens)
            self.begin_suppress = ids_tensor(list(config.begin_suppress_tokens))
            # the first generated position, or the one after a forced BOS
            self.begin_index = prompt_len + (1 if prompt_len <= 1 and config.forced_bos_token_id is not None else 0)
        self.renormalize = bool(config.renormalize_logits)
        self.custom = list(custom)
        self.prefix_fn = prefix_allowed_tokens_fn
        self.num_beams = config.num_beams

    def __call__(self, logits: Tensor, input_ids: Tensor, log_softmax: bool = False) -> Tensor:
        """Processed float32 scores ``[rows, vocab]`` for the sequences ``input_ids`` ``[rows, cur_len]``."""
        cur_len = input_ids.shape[1]
        banned = None
        if self.eos is not None and (cur_len < self.min_length or cur_len - self.prompt_len < self.min_new_tokens):
            banned = self.eos
        forced = None
        if self.forced_eos is not None and cur_len == self.max_length - 1:
            forced = self.forced_eos
        elif self.forced_bos is not None and cur_len == 1:
            forced = self.forced_bos
        if self.sequence_bias is not None or self.encoder_penalty is not None:
            # before the kernel's processors, after beam search's log-softmax
            logits = logits.float()
            if log_softmax:
                logits, log_softmax = logits.log_softmax(dim=-1), False
        if self.sequence_bias is not None:
            logits = self.sequence_bias(input_ids, logits)
        if self.encoder_penalty is not None:
            ids = self.encoder_ids.repeat_interleave(logits.shape[0] // self.encoder_ids.shape[0], dim=0)
            score = torch.gather(logits, 1, ids)
            score = torch.where(score < 0, score * self.encoder_penalty, score / self.encoder_penalty)
            logits = logits.scatter(1, ids, score)
        scores = ops.logits_process(
            logits, input_ids, log_softmax=log_softmax, repetition_penalty=self.repetition_penalty,
            penalty_start=self.penalty_start, no_repeat_ngram_size=self.no_repeat_ngram_size,
            source_ids=self.source_ids, encoder_no_repeat_ngram_size=self.encoder_no_repeat_ngram_size,
            bad_words=self.bad_words, bad_word_offsets=self.bad_word_offsets, banned=banned, forced=forced)
        if self.prefix_fn is not None and forced is None:
            scores = self._prefix_constrain(input_ids, scores)
        if self.remove_invalid_values:
            finfo = torch.finfo(scores.dtype)
            scores = torch.nan_to_num(scores, nan=0.0, posinf=finfo.max, neginf=finfo.min)
        if self.decay is not None and cur_len > self.decay[0]:
            eos_scores = scores[:, self.eos]
            penalty = eos_scores.abs() * (self.decay[1] ** (cur_len - self.decay[0]) - 1)
            scores = scores.clone()
            scores[:, self.eos] = eos_scores + penalty.masked_fill(~torch.isfinite(eos_scores), 0.0)
        if self.suppress is not None:
            scores = scores.index_fill(1, self.suppress, float("-inf"))
        if self.begin_suppress is not None and cur_len == self.begin_index:
            scores = scores.index_fill(1, self.begin_suppress, float("-inf"))
        for processor in self.custom:
            scores = processor(input_ids, scores)
        return scores

    def _prefix_constrain(self, input_ids: Tensor, scores: Tensor) -> Tensor:
        """Only the tokens ``prefix_allowed_tokens_fn(batch_id, row)`` allows; an item none of whose
        beams has an allowed token left with a finite score gets them all at 0."""
        mask = torch.full_like(scores, float("-inf"))
        for row in range(input_ids.shape[0]):
            item = row // self.num_beams
            allowed = torch.as_tensor(self.prefix_fn(item, input_ids[row])).view(-1)
            if allowed.numel() == 0:
                raise GenerationError(f"`prefix_allowed_tokens_fn` returned no token for batch item {item}: "
                                      "the constraint cannot be met")
            if allowed.is_floating_point() or allowed.is_complex() or not bool(
                    ((allowed >= 0) & (allowed < self.vocab_size)).all()):
                raise GenerationError(f"`prefix_allowed_tokens_fn` must return token ids in [0, {self.vocab_size}), "
                                      f"got {allowed.tolist()[:8]} for batch item {item}")
            mask[row, allowed.to(mask.device)] = 0
        constrained = scores + mask
        stuck = constrained.amax(dim=-1).isneginf().view(-1, self.num_beams).all(dim=-1, keepdim=True)
        return torch.where(stuck.repeat_interleave(self.num_beams, dim=0), mask, constrained)


class SequenceBias:
    """transformers' ``SequenceBiasLogitsProcessor``: a bias on each token that completes one of the
    listed sequences (single tokens always), added as one bias row built in the same order."""

    def __init__(self, pairs: list[tuple[tuple[int, ...], float]], vocab_size: int, device: torch.device):
        bad = [t for ids, _ in pairs for t in ids if t >= vocab_size]
        if bad:
            raise GenerationError(f"`sequence_bias` holds ids outside the vocabulary [0, {vocab_size}): {bad}")
        self.single = torch.zeros(vocab_size, dtype=torch.float, device=device)
        singles = [(ids[0], bias) for ids, bias in pairs if len(ids) == 1]
        if singles:
            self.single[[t for t, _ in singles]] = torch.tensor([b for _, b in singles], device=device)
        by_prefix: dict[int, list] = {}
        for ids, bias in pairs:
            if len(ids) > 1:
                by_prefix.setdefault(len(ids) - 1, []).append((ids, bias))
        self.groups = [(torch.tensor([ids[:-1] for ids, _ in group], device=device),
                        torch.tensor([ids[-1] for ids, _ in group], device=device),
                        torch.tensor([bias for _, bias in group], dtype=torch.float, device=device))
                       for group in by_prefix.values()]

    def __call__(self, input_ids: Tensor, scores: Tensor) -> Tensor:
        bias = torch.zeros_like(scores)
        bias += self.single
        for prefixes, last_tokens, biases in self.groups:
            n = prefixes.shape[1]
            if n > input_ids.shape[1]:
                continue
            completes = (input_ids[:, None, -n:] == prefixes).all(dim=-1)
            bias.index_add_(1, last_tokens, torch.where(completes, biases, 0.0).to(bias.dtype))
        return scores + bias


def warp(scores: Tensor, *, temperature: float = 1.0, top_k: Optional[int] = None, top_p: float = 1.0,
         min_p: Optional[float] = None, typical_p: float = 1.0, epsilon_cutoff: float = 0.0, eta_cutoff: float = 0.0,
         min_tokens_to_keep: int = 1) -> Tensor:
    """Sampling warpers (temperature, top-k, top-p, min-p, typical, epsilon, eta, in this order),
    exactly as transformers applies them."""
    filter_value = float("-inf")
    if temperature != 1.0:
        scores = scores / temperature
    if top_k:
        k = min(max(top_k, min_tokens_to_keep), scores.shape[-1])
        threshold = torch.topk(scores, k)[0][..., -1, None]
        scores = scores.masked_fill(scores < threshold, filter_value)
    if top_p < 1.0:
        # Drop the smallest tokens whose cumulative probability stays within 1 - top_p.
        sorted_scores, sorted_ids = torch.sort(scores, descending=False)
        cumulative = sorted_scores.softmax(dim=-1).cumsum(dim=-1)
        remove = cumulative <= (1 - top_p)
        remove[..., -min_tokens_to_keep:] = False
        scores = scores.masked_fill(remove.scatter(1, sorted_ids, remove), filter_value)
    keep = min(min_tokens_to_keep, scores.shape[-1])
    if min_p is not None:  # drop tokens less likely than min_p x the top probability
        probs = scores.softmax(dim=-1)
        remove = probs < min_p * probs.amax(dim=-1, keepdim=True)
        remove.scatter_(-1, torch.topk(probs, keep, dim=-1).indices, False)
        scores = scores.masked_fill(remove, filter_value)
    if typical_p < 1.0:  # keep the tokens whose information is closest to the entropy, up to mass typical_p
        log_probs = scores.log_softmax(dim=-1)
        entropy = -(log_probs * log_probs.exp()).nansum(-1, keepdim=True)
        sorted_dev, sorted_ids = torch.sort((-log_probs - entropy).abs(), descending=False)
        cumulative = scores.gather(-1, sorted_ids).softmax(dim=-1).cumsum(dim=-1)
        last = (cumulative < typical_p).sum(dim=1).clamp_(max=sorted_dev.shape[-1] - 1)
        remove = sorted_dev > sorted_dev.gather(1, last.view(-1, 1))
        remove[..., :min_tokens_to_keep] = False
        scores = scores.masked_fill(remove.scatter(1, sorted_ids, remove), filter_value)
    for cutoff, eta in ((epsilon_cutoff, False), (eta_cutoff, True)):
        if 0.0 < cutoff < 1.0:  # drop tokens below a probability floor (eta: scaled by the entropy)
            probs = scores.softmax(dim=-1)
            floor = torch.tensor(cutoff, device=scores.device)
            if eta:
                entropy = torch.distributions.Categorical(logits=scores).entropy()
                floor = torch.min(floor, floor.sqrt() * torch.exp(-entropy))[..., None]
            remove = (probs < floor) & (scores < torch.topk(scores, keep)[0][..., -1, None])
            scores = scores.masked_fill(remove, filter_value)
    return scores
