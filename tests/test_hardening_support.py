"""Shared helpers of the hardening tests (this module holds no tests itself).

Tiny random-weight models of every family pygen implements, fresh random inputs, and
small utilities (RSS, "is generate() ready"). Weights and inputs change on every run; the
seed is printed and ``PYGEN_HARDENING_SEED`` replays a run.
"""
from __future__ import annotations

import contextlib
import functools
import os
import time
import warnings
from dataclasses import dataclass
from typing import Callable, Optional

import torch

from pygen.models.bart import BartConfig, BartForConditionalGeneration
from pygen.models.bert import BertConfig
from pygen.models.bert_generation import BertGenerationConfig, BertGenerationDecoder
from pygen.models.encoder_decoder import EncoderDecoderConfig, EncoderDecoderModel
from pygen.models.perceiver import PerceiverConfig, PerceiverForMaskedLM

SEED = int(os.environ.get("PYGEN_HARDENING_SEED", time.time_ns() % 2**31))
print(f"\nhardening seed: PYGEN_HARDENING_SEED={SEED}")

VOCAB = 61  # text models; Perceiver reads UTF-8 bytes (262 ids)
HIDDEN = 16
MAX_POSITIONS = 32
# Special ids of the text models: 0 pad, 1 bos / decoder start, 2 eos. Random ids start at 3.
PAD, START, EOS = 0, 1, 2


def generator(offset: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(SEED + offset)


def randomise(model: torch.nn.Module, offset: int = 0) -> torch.nn.Module:
    """Overwrite every floating parameter and buffer with fresh random values (nothing stays zero)."""
    gen = generator(10_000 + offset)
    with torch.no_grad():
        for tensor in list(model.parameters()) + list(model.buffers()):
            if tensor.is_floating_point():
                tensor.copy_(torch.randn(tensor.shape, generator=gen) * 0.5)
    return model.eval()


def random_ids(batch: int, length: int, vocab: int = VOCAB, offset: int = 0) -> torch.Tensor:
    """Token ids in ``[3, vocab)``: never a special id, never all the same."""
    return torch.randint(3, vocab, (batch, length), generator=generator(offset))


def random_mask(batch: int, length: int, offset: int = 0) -> torch.Tensor:
    """A 0/1 padding mask with at least the first position of each row attended."""
    mask = (torch.rand(batch, length, generator=generator(offset)) > 0.3).long()
    mask[:, 0] = 1
    return mask


def left_padded_mask(batch: int, length: int, offset: int = 0) -> torch.Tensor:
    """A 0/1 mask of left-padded prompts (how decoder-only models are fed): 0 to length-1 pads per row."""
    pads = torch.randint(0, length, (batch, 1), generator=generator(offset))
    return (torch.arange(length)[None, :] >= pads).long()


def prompt_mask(family: str, batch: int, length: int, offset: int = 0) -> torch.Tensor:
    """The padding mask a generate() call of ``family`` would get from a tokenizer."""
    if FAMILIES[family].encoder_decoder:
        return random_mask(batch, length, offset)
    return left_padded_mask(batch, length, offset)


# ---- tiny models ---------------------------------------------------------------------------------
def tiny_bart() -> BartForConditionalGeneration:
    config = BartConfig(vocab_size=VOCAB, d_model=HIDDEN, encoder_layers=2, decoder_layers=2,
                        encoder_attention_heads=2, decoder_attention_heads=4, encoder_ffn_dim=24,
                        decoder_ffn_dim=24, max_position_embeddings=MAX_POSITIONS, dropout=0.0,
                        pad_token_id=PAD, bos_token_id=START, decoder_start_token_id=START, eos_token_id=EOS,
                        forced_eos_token_id=None)
    return randomise(BartForConditionalGeneration(config), 1)


def _bert_config(**overrides) -> BertConfig:
    return BertConfig(vocab_size=VOCAB, hidden_size=HIDDEN, num_hidden_layers=2, num_attention_heads=2,
                      intermediate_size=24, max_position_embeddings=MAX_POSITIONS, hidden_dropout_prob=0.0,
                      attention_probs_dropout_prob=0.0, pad_token_id=PAD, **overrides)


def tiny_bert2bert() -> EncoderDecoderModel:
    config = EncoderDecoderConfig.from_encoder_decoder_configs(
        _bert_config(), _bert_config(), decoder_start_token_id=START, pad_token_id=PAD, eos_token_id=EOS)
    model = EncoderDecoderModel(config)
    model.generation_config.update(decoder_start_token_id=START, pad_token_id=PAD, eos_token_id=EOS)
    return randomise(model, 2)


def tiny_bert_generation_decoder() -> BertGenerationDecoder:
    config = BertGenerationConfig(vocab_size=VOCAB, hidden_size=HIDDEN, num_hidden_layers=2, num_attention_heads=2,
                                  intermediate_size=24, max_position_embeddings=MAX_POSITIONS, is_decoder=True,
                                  hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                                  pad_token_id=PAD, bos_token_id=START, eos_token_id=EOS)
    model = BertGenerationDecoder(config)
    model.generation_config.update(pad_token_id=PAD, bos_token_id=START, eos_token_id=EOS)
    return randomise(model, 3)


def tiny_perceiver() -> PerceiverForMaskedLM:
    config = PerceiverConfig(num_latents=6, d_latents=HIDDEN, d_model=HIDDEN, num_blocks=1,
                             num_self_attends_per_block=2, num_self_attention_heads=2, num_cross_attention_heads=2,
                             max_position_embeddings=MAX_POSITIONS, attention_probs_dropout_prob=0.0)
    return randomise(PerceiverForMaskedLM(config), 4)


@dataclass(frozen=True)
class Family:
    """How to call one model family: its builder, the name of its main input and its vocabulary."""

    name: str
    build: Callable[[], torch.nn.Module]
    main_input: str  # "input_ids", or "inputs" for Perceiver
    vocab: int
    encoder_decoder: bool = False  # takes decoder_input_ids
    generates: bool = True

    def inputs(self, batch: int = 2, length: int = 5, offset: int = 0) -> dict:
        """Valid forward inputs, fresh random."""
        kwargs = {self.main_input: random_ids(batch, length, self.vocab, offset),
                  "attention_mask": random_mask(batch, length, offset + 1)}
        if self.encoder_decoder:
            kwargs["decoder_input_ids"] = random_ids(batch, 4, self.vocab, offset + 2)
        return kwargs


FAMILIES = {
    "bart": Family("bart", tiny_bart, "input_ids", VOCAB, encoder_decoder=True),
    "bert2bert": Family("bert2bert", tiny_bert2bert, "input_ids", VOCAB, encoder_decoder=True),
    "bert_generation": Family("bert_generation", tiny_bert_generation_decoder, "input_ids", VOCAB),
    "perceiver": Family("perceiver", tiny_perceiver, "inputs", 262, generates=False),
}
GENERATIVE = [name for name, family in FAMILIES.items() if family.generates]


@functools.lru_cache(maxsize=None)
def model(name: str) -> torch.nn.Module:
    """One shared instance per family (tests must not modify it; copy it first)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return FAMILIES[name].build()


@functools.lru_cache(maxsize=None)
def generate_problem(name: str) -> Optional[str]:
    """None when a tiny ``generate()`` works for this family, else why not (generate is still being
    written by its owners: tests that need it skip instead of failing on unrelated breakage)."""
    m = model(name)
    if not hasattr(m, "generate"):
        return f"{type(m).__name__} has no generate()"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = m.generate(random_ids(1, 3), max_new_tokens=2)
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
        return f"a tiny generate() fails: {type(exc).__name__}: {exc}"
    if not isinstance(out, torch.Tensor) or out.dim() != 2:
        return f"generate() returned {type(out).__name__}"
    return None


def require_generate(name: str) -> None:
    import pytest

    problem = generate_problem(name)
    if problem is not None:
        pytest.skip(problem)


@contextlib.contextmanager
def one_intra_op_thread():
    """Run torch ops single-threaded: these models are tiny, and on a loaded 2-core machine
    intra-op threads spin against each other (a tiny generate() is ~100x slower)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# ---- process memory ------------------------------------------------------------------------------
_PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes() -> int:
    """Resident set size of this process (Linux /proc)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE
