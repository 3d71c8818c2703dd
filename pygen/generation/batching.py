"""``generate_batches``: generate for many texts, batched by length, in input order."""
from __future__ import annotations

import sys
from typing import Any, Optional, Sequence

import torch
from tqdm import tqdm

from ..errors import GenerationError
from .config import FIELDS, token_ids


def generate_batches(model, tokenizer, texts: Sequence[str], batch_size: int = 16, *, decode: bool = True,
                     skip_special_tokens: bool = True, progress: bool = True,
                     tokenizer_kwargs: Optional[dict[str, Any]] = None, **generate_kwargs: Any) -> list:
    """Run ``model.generate`` over ``texts`` in batches of similar length; results in input order.

    Texts are tokenized once, sorted by length (longest first, so padding is small and memory
    problems show up at once) and padded per batch: on the right for encoder-decoder models,
    on the left for decoder-only ones. A tqdm progress bar goes to stderr.

    Args:
        model: a pygen model with ``generate``.
        tokenizer: callable on a list of texts returning ``input_ids`` lists, with ``pad_token_id``
            and ``batch_decode``/``decode``.
        texts: the inputs.
        batch_size: texts per ``generate`` call.
        decode: return strings (``tokenizer.decode``) rather than token id lists.
        skip_special_tokens: passed to ``decode``.
        progress: show the progress bar.
        tokenizer_kwargs: extra arguments of the tokenizer call (e.g. ``truncation=True, max_length=1024``).
        **generate_kwargs: passed to ``model.generate`` (``num_beams``, ``max_new_tokens``...).

    Returns:
        One entry per text: the output (a string, or a list of ids ending at the first EOS), or a
        list of ``num_return_sequences`` of them. Decoder-only models return the continuation only.
    """
    if isinstance(texts, str):
        raise GenerationError("`texts` must be a list of strings, not a single string")
    if batch_size < 1:
        raise GenerationError(f"`batch_size` must be >= 1, got {batch_size}")
    if any(k in generate_kwargs for k in ("inputs", "input_ids", "attention_mask", "return_dict_in_generate")):
        raise GenerationError("generate_batches builds the inputs itself and returns sequences only")
    texts = list(texts)
    encoder_decoder = bool(getattr(model.config, "is_encoder_decoder", False))
    # What generate() will run with: kwargs > generation_config > the model's, as generate() merges them.
    config, _ = model._resolve_generation_config(generate_kwargs.get("generation_config"),
                                                 {k: v for k, v in generate_kwargs.items() if k in FIELDS})
    returned = config.num_return_sequences or 1
    pad = tokenizer.pad_token_id
    if pad is None:
        pad = config.pad_token_id
    if pad is None:
        raise GenerationError("the tokenizer has no pad_token_id to pad batches with")
    eos = set(token_ids(config.eos_token_id, "eos_token_id", empty_ok=True) or [])

    ids = tokenizer(texts, **(tokenizer_kwargs or {}))["input_ids"]
    order = sorted(range(len(texts)), key=lambda i: len(ids[i]), reverse=True)
    results: list = [None] * len(texts)
    with tqdm(total=len(texts), file=sys.stderr, disable=not progress, unit="text", desc="generate") as bar:
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            width = max(len(ids[i]) for i in chunk)
            input_ids = torch.full((len(chunk), width), pad, dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for row, i in enumerate(chunk):
                n = len(ids[i])
                span = slice(0, n) if encoder_decoder else slice(width - n, width)
                input_ids[row, span] = torch.tensor(ids[i], dtype=torch.long)
                mask[row, span] = 1
            out = model.generate(input_ids.to(model.device), attention_mask=mask.to(model.device), **generate_kwargs)
            # Decoder-only outputs start with the prompt (dropped); encoder-decoder ones with the
            # decoder start token, which may be an EOS id.
            skip, first = (0, 1) if encoder_decoder else (width, 0)
            for row, i in enumerate(chunk):
                sequences = [_until_eos(out[row * returned + r, skip:].tolist(), eos, first) for r in range(returned)]
                if decode:
                    sequences = [tokenizer.decode(s, skip_special_tokens=skip_special_tokens) for s in sequences]
                results[i] = sequences[0] if returned == 1 else sequences
            bar.update(len(chunk))
    return results


def _until_eos(ids: list[int], eos: set[int], first: int) -> list[int]:
    """Cut what follows the first EOS at or after ``first`` (padding that depends on the batch)."""
    for n in range(first, len(ids)):
        if ids[n] in eos:
            return ids[:n + 1]
    return ids
