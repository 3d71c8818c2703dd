"""generate() end to end against transformers 5.23: every generated id, on small random-weight models.

Each model is built by transformers from a config with a fixed seed, saved with
``save_pretrained`` and loaded by pygen's ``from_pretrained`` (so ``generation_config.json`` is
read as well). Random weights usually give a model that repeats one token forever; here every
matrix is scaled by 1/sqrt(fan_in), LayerNorms are near identity, and the LM head ignores the
mean decoder state and gives EOS a raised logit (EOS_BIAS), so outputs are varied and
beams finish at different steps (the finished-hypothesis bookkeeping is really exercised;
``test_models_are_not_degenerate`` checks it). Vocabulary 100, hidden 24, 1-2 layers.

Sampling: transformers draws with ``torch.multinomial`` on torch's global generator, one call
per step (``[rows, vocab]`` probabilities, one sample each; beam sampling: one call of
``2 * num_beams`` samples without replacement over each item's beams x vocab), and nothing else
in ``generate`` consumes random numbers (eval mode). pygen makes the same calls on the same
probabilities, so after ``torch.manual_seed(s)`` (or ``generate(seed=s)``) the ids are identical
and the global generator ends in the same state.
"""
from __future__ import annotations

import copy
import io
import json
import random
import threading
import zlib
from contextlib import redirect_stdout

import pytest
import torch
import transformers

import pygen
from pygen.errors import GenerationError

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::FutureWarning")

V = 100
# EOS logit offset per model: tuned so that outputs mix early, late and no EOS
EOS_BIAS = {"bart": 4.5, "bart-causal": 3.0, "bg-decoder": 2.0, "bert2bert": 1.5, "roberta2roberta": 2.0,
            "bg2bg": 3.0}
HIDDEN = 24
DECODER_ONLY = ("bart-causal", "bg-decoder")
ED_START, ED_EOS = 4, 5  # decoder start / EOS ids of the EncoderDecoderModels
BERT_CONFIGS = {"bert": transformers.BertConfig, "roberta": transformers.RobertaConfig,
                "bg": transformers.BertGenerationConfig}
KINDS = ["bart", "bart-causal", "bg-decoder", "bert2bert", "roberta2roberta", "bg2bg"]


# ---- models -----------------------------------------------------------------------------------
def _bert_config(family: str, **extra):
    return BERT_CONFIGS[family](vocab_size=V, hidden_size=HIDDEN, num_hidden_layers=1, num_attention_heads=4,
                                intermediate_size=32, max_position_embeddings=64, hidden_dropout_prob=0.0,
                                attention_probs_dropout_prob=0.0, tie_word_embeddings=False, **extra)


def _randomise(model: torch.nn.Module, seed: int) -> None:
    """Fresh random weights that keep activations O(1) through the layers."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in list(model.named_parameters()) + list(model.named_buffers()):
            if not t.is_floating_point():
                continue
            r = torch.randn(t.shape, generator=gen)
            if "norm" in name.lower():
                t.copy_(1 + 0.2 * r if name.endswith("weight") else 0.2 * r)
            elif t.dim() == 2 and ("embed" in name or "shared" in name):
                t.copy_(r)
            elif t.dim() == 2:
                t.copy_(r / t.shape[1] ** 0.5)
            else:
                t.copy_(0.1 * r)


def _shape_head(model: torch.nn.Module, eos: int, eos_bias: float) -> None:
    """Scale the LM head up, remove its response to the mean decoder state (which makes random
    models repeat one token) and give EOS a logit of about ``eos_bias`` (plus noise)."""
    head = [m for m in model.modules() if isinstance(m, torch.nn.Linear) and m.out_features == V][-1]
    seen = []
    hook = head.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(6, V, (8, 12), generator=gen)
    with torch.no_grad():
        if model.config.is_encoder_decoder:
            model(input_ids=ids, decoder_input_ids=torch.randint(6, V, (8, 10), generator=gen))
        else:
            model(input_ids=ids)
        hook.remove()
        mean = seen[0].reshape(-1, seen[0].shape[-1]).mean(0)
        direction = mean / mean.dot(mean)
        head.weight.mul_(3.0)
        head.weight -= torch.outer(head.weight @ mean, direction)
        head.weight[eos] += eos_bias * direction


def build_reference(kind: str, seed: int = 0, max_positions: int = 64):
    """The transformers model of ``kind``, in eval mode, with varied random outputs."""
    torch.manual_seed(seed)
    if kind.startswith("bart"):
        config = transformers.BartConfig(
            vocab_size=V, d_model=HIDDEN, encoder_layers=2, decoder_layers=1, encoder_attention_heads=4,
            decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, max_position_embeddings=max_positions,
            dropout=0.0, attention_dropout=0.0, activation_dropout=0.0, tie_word_embeddings=False)
        if kind == "bart":
            model = transformers.BartForConditionalGeneration(config)
        else:
            config.is_decoder, config.is_encoder_decoder = True, False
            model = transformers.BartForCausalLM(config)
        eos = config.eos_token_id
    elif kind == "bg-decoder":
        model = transformers.BertGenerationDecoder(_bert_config("bg", is_decoder=True))
        eos = model.config.eos_token_id
    else:
        encoder, decoder = kind.split("2")
        config = transformers.EncoderDecoderConfig.from_encoder_decoder_configs(
            _bert_config(encoder), _bert_config(decoder))
        model = transformers.EncoderDecoderModel(config=config)
        # transformers 5 reads a warm-started model's generation ids from its generation_config
        model.generation_config.decoder_start_token_id = ED_START
        model.generation_config.eos_token_id = eos = ED_EOS
        model.generation_config.pad_token_id = config.encoder.pad_token_id
    _randomise(model, seed)
    _shape_head(model, eos, EOS_BIAS[kind])
    return model.eval()


PYGEN_CLASSES = {"BartForConditionalGeneration": pygen.BartForConditionalGeneration,
                 "BartForCausalLM": pygen.BartForCausalLM, "BertGenerationDecoder": pygen.BertGenerationDecoder,
                 "EncoderDecoderModel": pygen.EncoderDecoderModel}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """kind -> (transformers model, pygen model loaded from its save_pretrained directory)."""
    cache = {}

    def get(kind):
        if kind not in cache:
            ref = build_reference(kind)
            path = tmp_path_factory.mktemp(kind)
            ref.save_pretrained(path)
            ours = PYGEN_CLASSES[type(ref).__name__].from_pretrained(path).eval()
            cache[kind] = (ref, ours)
        return cache[kind]

    return get


def pad_id(model) -> int:
    config = getattr(model.config, "encoder", model.config)
    return config.pad_token_id


def inputs(kind: str, model, batch: int, length: int, seed: int):
    """Fresh random ids of rows of different lengths: padded on the right for encoders, on the
    left for decoder-only prompts (row 0 is full)."""
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(6, V, (batch, length), generator=gen)
    mask = torch.ones(batch, length, dtype=torch.long)
    lengths = torch.randint(max(1, length // 3), length + 1, (batch,), generator=gen)
    lengths[0] = length
    pad = pad_id(model)
    for row, n in enumerate(lengths.tolist()):
        if kind in DECODER_ONLY:
            ids[row, :length - n], mask[row, :length - n] = pad, 0
        else:
            if kind == "bart":
                ids[row, n - 1] = model.config.eos_token_id
            ids[row, n:], mask[row, n:] = pad, 0
    return ids, mask


# ---- comparison -------------------------------------------------------------------------------
def assert_same_output(ref, ours, what=""):
    """Identical ids; every returned score within tolerance (and -inf exactly where transformers has it)."""
    if isinstance(ref, torch.Tensor):
        assert isinstance(ours, torch.Tensor), what
        assert ours.shape == ref.shape and torch.equal(ours, ref), f"{what}\nref:\n{ref}\npygen:\n{ours}"
        return
    assert type(ours).__name__ == type(ref).__name__, what
    assert ours.sequences.shape == ref.sequences.shape and torch.equal(ours.sequences, ref.sequences), \
        f"{what}\nref:\n{ref.sequences}\npygen:\n{ours.sequences}"
    for field in ("sequences_scores", "beam_indices", "scores", "logits"):
        a, b = getattr(ref, field, None), getattr(ours, field, None)
        assert (a is None) == (b is None), f"{what}: {field} is {b is not None and 'set' or None} in pygen"
        if a is None:
            continue
        if field == "beam_indices":
            assert b.shape == a.shape and torch.equal(b, a), f"{what}: beam_indices\n{a}\n{b}"
        elif field == "sequences_scores":
            torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-5, msg=lambda m: f"{what}: {field}: {m}")
        else:
            assert len(b) == len(a), f"{what}: {len(b)} {field} steps, transformers {len(a)}"
            for step, (x, y) in enumerate(zip(a, b)):
                torch.testing.assert_close(y, x, atol=1e-4, rtol=1e-5,
                                           msg=lambda m: f"{what}: {field}[{step}]: {m}")


def compare(models, kind, *, batch=3, length=8, seed=0, **kwargs):
    """Generate with both libraries from the same inputs and RNG state; return transformers' output."""
    ref_model, ours_model = models(kind)
    ids, mask = inputs(kind, ref_model, batch, length, seed)
    torch.manual_seed(seed)
    ref = ref_model.generate(ids, attention_mask=mask, **kwargs)
    ref_rng = torch.rand(3)
    torch.manual_seed(seed)
    ours = ours_model.generate(ids, attention_mask=mask, **kwargs)
    what = f"{kind} batch={batch} {kwargs}"
    assert_same_output(ref, ours, what)
    assert torch.equal(torch.rand(3), ref_rng), f"{what}: the global RNG was consumed differently"
    return ref


SCORES = dict(return_dict_in_generate=True, output_scores=True)


# ---- sanity of the random models ----------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_models_are_not_degenerate(models, kind):
    """Outputs use many tokens and beams finish at different steps, so parity means something."""
    ref_model, _ = models(kind)
    ids, mask = inputs(kind, ref_model, 6, 8, seed=100)
    eos = ref_model.generation_config.eos_token_id
    greedy = ref_model.generate(ids, attention_mask=mask, max_new_tokens=24)
    beams = ref_model.generate(ids, attention_mask=mask, max_new_tokens=24, num_beams=4, num_return_sequences=4,
                               forced_eos_token_id=None)
    start = ids.shape[1] if kind in DECODER_ONLY else 1
    assert greedy[:, start:].unique().numel() >= 12
    ends = [int((row[start:] == eos).nonzero()[0]) if (row[start:] == eos).any() else None for row in beams]
    lengths = {n for n in ends if n is not None}
    assert len(lengths) >= 3, ends  # hypotheses finished at several steps
    assert any(n is None or n > 4 for n in ends)


# ---- greedy, beam search and sampling on every model --------------------------------------------
CORE = {
    "greedy-scores": dict(max_new_tokens=12, output_logits=True, **SCORES),
    "beam4": dict(num_beams=4, max_new_tokens=12),
    "beam3-return2-scores": dict(num_beams=3, num_return_sequences=2, max_new_tokens=10, **SCORES),
    "sample": dict(do_sample=True, max_new_tokens=12, temperature=0.8, top_k=20, top_p=0.9),
    "sample-return3-scores": dict(do_sample=True, num_return_sequences=3, max_new_tokens=8, top_k=0, **SCORES),
    "beam-sample": dict(do_sample=True, num_beams=3, max_new_tokens=8, top_p=0.8, **SCORES),
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case", list(CORE))
def test_core_strategies(models, kind, case):
    compare(models, kind, batch=4, seed=zlib.crc32(f"{kind}/{case}".encode()) % 1000, **CORE[case])


# ---- beam-search grid: num_beams x length_penalty x early_stopping -----------------------------
# Every (length_penalty, early_stopping) pair, with num_beams cycling through 2..5 and
# num_return_sequences through 1..num_beams.
BEAM_GRID = [(2 + i % 4, 1 + (i // 4 + i) % (2 + i % 4), penalty, stopping)
             for i, (penalty, stopping) in enumerate([(p, s) for p in (-1.0, 0.0, 1.0, 2.0)
                                                      for s in (True, False, "never")])]


@pytest.mark.parametrize("kind", ["bart", "bert2bert"])
@pytest.mark.parametrize("beams, returned, length_penalty, early_stopping", BEAM_GRID)
def test_beam_search_grid(models, kind, beams, returned, length_penalty, early_stopping):
    out = compare(models, kind, batch=4, length=9, seed=beams * 7 + int(length_penalty * 3) + 11,
                  num_beams=beams, num_return_sequences=returned, length_penalty=length_penalty,
                  early_stopping=early_stopping, max_new_tokens=14, **SCORES)
    assert out.sequences_scores is not None and out.beam_indices is not None


@pytest.mark.parametrize("batch", [1, 7])
@pytest.mark.parametrize("kind", ["bart", "roberta2roberta", "bg-decoder"])
def test_batch_sizes_with_padding(models, kind, batch):
    compare(models, kind, batch=batch, length=10, seed=batch, num_beams=4, num_return_sequences=4, max_new_tokens=12,
            **SCORES)
    compare(models, kind, batch=batch, length=10, seed=batch + 1, max_new_tokens=12)


@pytest.mark.parametrize("kind", ["bart", "bert2bert", "roberta2roberta", "bg2bg"])
def test_encoder_pass_skips_padding(models, kind):
    """generate()'s encoder pass runs the layers on the real tokens only (pygen/models/_unpadded.py):
    their states are the encoder forward's, the padding's are zeros, and generation from masks with
    right and left padding and holes stays identical to transformers."""
    ref_model, ours_model = models(kind)
    gen = torch.Generator().manual_seed(7)
    ids = torch.randint(6, V, (6, 12), generator=gen)
    mask = torch.ones(6, 12, dtype=torch.long)
    mask[1, 8:], mask[2, :4], mask[3, 3:7], mask[4, 1:], mask[5] = 0, 0, 0, 0, 0
    encoder = ours_model.get_encoder()
    full = encoder(input_ids=ids, attention_mask=mask).last_hidden_state
    fast = encoder.encode_unpadded(ids, mask)
    real = mask.bool()
    torch.testing.assert_close(fast[real], full[real], rtol=1e-6, atol=1e-6)
    assert torch.equal(fast[~real], torch.zeros_like(fast[~real]))
    # nothing to skip: the forward itself
    assert torch.equal(encoder.encode_unpadded(ids, torch.ones_like(mask)), encoder(input_ids=ids).last_hidden_state)
    ids, mask = ids[:5], mask[:5]  # (a row without any token is not compared: see _eager_attention)
    for kwargs in (dict(max_new_tokens=10), dict(num_beams=3, num_return_sequences=2, max_new_tokens=10, **SCORES)):
        assert_same_output(ref_model.generate(ids, attention_mask=mask, **kwargs),
                           ours_model.generate(ids, attention_mask=mask, **kwargs), f"{kind} {kwargs}")


def test_token_type_ids_reach_the_encoder(models):
    """generate(**bert_tokenizer(...)) passes token_type_ids on to the encoder, as transformers."""
    ref_model, ours_model = models("bert2bert")
    ids, mask = inputs("bert2bert", ref_model, 4, 10, seed=5)
    types = torch.zeros_like(ids)
    types[:, 4:] = 1  # a second segment
    for kwargs in (dict(max_new_tokens=10), dict(num_beams=3, max_new_tokens=10, **SCORES)):
        want = ref_model.generate(ids, attention_mask=mask, token_type_ids=types, **kwargs)
        assert_same_output(want, ours_model.generate(ids, attention_mask=mask, token_type_ids=types, **kwargs))
        without = ref_model.generate(ids, attention_mask=mask, **kwargs)
        assert not torch.equal(getattr(want, "sequences", want), getattr(without, "sequences", without))
    with pytest.raises(pygen.InputError, match="token_type_ids must have the shape"):
        ours_model.generate(ids, attention_mask=mask, token_type_ids=types[:, :3])
    with pytest.raises(pygen.InputError, match="token_type_ids"):
        ours_model.generate(ids, attention_mask=mask, token_type_ids=types * 5)  # beyond type_vocab_size
    for kind in ("bart", "bg2bg", "bg-decoder"):  # no token type embeddings: transformers refuses them too
        ref_model, ours_model = models(kind)
        ids, mask = inputs(kind, ref_model, 2, 6, seed=1)
        with pytest.raises(GenerationError, match="takes no `token_type_ids`"):
            ours_model.generate(ids, attention_mask=mask, token_type_ids=torch.zeros_like(ids))


# ---- lengths, processors and special tokens ------------------------------------------------------
OPTIONS = {
    "min_length-above-output": dict(min_length=18, max_length=22),
    "min_new_tokens": dict(min_new_tokens=9, max_new_tokens=12),
    "max_length": dict(max_length=9),
    "max_new_tokens-1": dict(max_new_tokens=1),
    "no_repeat_ngram_size-3": dict(no_repeat_ngram_size=3, max_new_tokens=20),
    "no_repeat_ngram_size-1": dict(no_repeat_ngram_size=1, max_new_tokens=12),
    "repetition_penalty-1.5": dict(repetition_penalty=1.5, max_new_tokens=12),
    "repetition_penalty-0.7": dict(repetition_penalty=0.7, max_new_tokens=12),
    "bad_words_ids": dict(bad_words_ids=[[39], [18], [42, 26], [86, 86, 86]], max_new_tokens=12),
    "forced_bos": dict(forced_bos_token_id=77, max_new_tokens=8),
    "forced_eos": dict(forced_eos_token_id=61, max_new_tokens=8),
    "forced_eos-list": dict(forced_eos_token_id=[61, 62], max_new_tokens=8),
    "forced_eos-none": dict(forced_eos_token_id=None, max_new_tokens=8),
    "eos-list": dict(eos_token_id=[39, 18, 7], max_new_tokens=12),
    "eos-none": dict(eos_token_id=None, max_new_tokens=8),
    "pad_token_id": dict(pad_token_id=3, max_new_tokens=12),
    "processors-combined": dict(no_repeat_ngram_size=2, repetition_penalty=1.3, bad_words_ids=[[39]],
                                min_new_tokens=3, max_new_tokens=12),
}
# Processors applied around the fused kernel (torch ops), in transformers' order.
OPTIONS.update({
    # [2, 39] / [4, 39]: completed right after BART's / the EncoderDecoderModels' decoder start token
    "sequence_bias": dict(sequence_bias=[[[39], 2.5], [[2, 39], 6.0], [[4, 39], 6.0], [[39, 18, 42], 3.0],
                                         [[18], -1.5], [[18], 1.0]], max_new_tokens=12),
    "sequence_bias-dict": dict(sequence_bias={(39,): -2.0, (2, 61): 5.0, (4, 61): 5.0, (61, 7): 4.0},
                               max_new_tokens=12),
    "remove_invalid_values": dict(remove_invalid_values=True, bad_words_ids=[[39]], max_new_tokens=10),
    "exponential_decay_length_penalty": dict(exponential_decay_length_penalty=(2, 1.6), max_new_tokens=14),
    "suppress_tokens": dict(suppress_tokens=[39, 18, 7, 61], max_new_tokens=12),
    "begin_suppress_tokens": dict(begin_suppress_tokens=[39, 18, 7, 61], max_new_tokens=8),
    "begin_suppress_tokens-forced_bos": dict(begin_suppress_tokens=[39, 18], forced_bos_token_id=77,
                                             max_new_tokens=8),
    "renormalize_logits": dict(renormalize_logits=True, repetition_penalty=1.4, max_new_tokens=10),
})
ENCODER_OPTIONS = {
    "encoder_no_repeat_ngram_size-2": dict(encoder_no_repeat_ngram_size=2, max_new_tokens=12),
    "encoder_no_repeat_ngram_size-1": dict(encoder_no_repeat_ngram_size=1, max_new_tokens=12),
    "decoder_start_token_id": dict(decoder_start_token_id=9, max_new_tokens=10),
    "encoder_repetition_penalty-1.6": dict(encoder_repetition_penalty=1.6, max_new_tokens=12),
    "encoder_repetition_penalty-0.6": dict(encoder_repetition_penalty=0.6, repetition_penalty=1.3, max_new_tokens=12),
}


BEAM_ON_SECOND_MODEL = {"min_length-above-output", "no_repeat_ngram_size-3", "repetition_penalty-1.5",
                        "bad_words_ids", "eos-list", "forced_eos-none", "encoder_no_repeat_ngram_size-2"}


@pytest.mark.parametrize("strategy", ["greedy", "beam"])
@pytest.mark.parametrize("option", list(OPTIONS) + list(ENCODER_OPTIONS))
def test_options(models, option, strategy):
    kwargs = {**OPTIONS, **ENCODER_OPTIONS}[option]
    kinds = ["bart", "bg2bg"] if option in ENCODER_OPTIONS else ["bart", "bart-causal"]
    if strategy == "beam":  # on one of the two models, to keep the file fast
        kwargs = dict(kwargs, num_beams=3, num_return_sequences=2, **SCORES)
        kinds = kinds[1:] if option in BEAM_ON_SECOND_MODEL else kinds[:1]
    for kind in kinds:
        kw = dict(kwargs)
        if kind in DECODER_ONLY and "max_length" in kw:
            kw["max_length"] += 8  # the prompt counts
        compare(models, kind, batch=3, seed=len(option), **kw)


@pytest.mark.parametrize("kind", ["bart", "roberta2roberta"])
def test_inputs_embeds_feed_the_encoder(models, kind):
    """generate(inputs_embeds=...) on an encoder-decoder: the encoder reads them, as in transformers."""
    ref_model, ours_model = models(kind)
    ids, mask = inputs(kind, ref_model, 3, 9, seed=11)
    gen = torch.Generator().manual_seed(12)
    embeds = ref_model.get_encoder().get_input_embeddings()(ids).detach()
    embeds = embeds + 0.5 * torch.randn(embeds.shape, generator=gen)  # not any token's embedding
    for kwargs in (dict(max_new_tokens=10), dict(num_beams=3, max_new_tokens=10, **SCORES)):
        assert_same_output(ref_model.generate(inputs_embeds=embeds, attention_mask=mask, **kwargs),
                           ours_model.generate(inputs_embeds=embeds, attention_mask=mask, **kwargs), f"{kind} {kwargs}")
    with pytest.raises(GenerationError, match="one of `input_ids`, `inputs_embeds`"):
        ours_model.generate(ids, inputs_embeds=embeds, attention_mask=mask)
    _, decoder_only = models("bart-causal")
    with pytest.raises(GenerationError, match="decoder-only"):
        decoder_only.generate(inputs_embeds=embeds)


@pytest.mark.parametrize("kind", ["bart", "bert2bert"])
def test_less_common_arguments(models, kind):
    """Per-row decoder start ids, eos_token_id=[] (no EOS), transformers' own GenerationConfig
    object, transformers options pygen lacks passed at their "off" value, and max_time: as in
    transformers (max_time=0 stops after the first token)."""
    ref_model, ours_model = models(kind)
    ids, mask = inputs(kind, ref_model, 3, 8, seed=41)
    cases = [dict(decoder_start_token_id=[7, 8, 9]), dict(decoder_start_token_id=torch.tensor([7, 8, 9]), num_beams=2),
             dict(decoder_start_token_id=[7, 8, 9], decoder_input_ids=torch.tensor([[8, 11], [8, 12], [8, 13]])),
             dict(eos_token_id=[]), dict(eos_token_id=[], pad_token_id=1, num_beams=3),
             dict(generation_config=transformers.GenerationConfig(num_beams=3, max_new_tokens=6, eos_token_id=ED_EOS,
                                                                  decoder_start_token_id=ED_START)),
             dict(num_beam_groups=1, diversity_penalty=0.0, guidance_scale=None),
             dict(max_time=100.0), dict(max_time=0.0, do_sample=True)]
    for kwargs in cases:
        if "generation_config" not in kwargs:
            kwargs = dict(kwargs, max_new_tokens=7)
        torch.manual_seed(0)
        expected = ref_model.generate(ids, attention_mask=mask, **kwargs)
        torch.manual_seed(0)
        assert_same_output(expected, ours_model.generate(ids, attention_mask=mask, **kwargs), f"{kind} {kwargs}")
    for kwargs, match in ((dict(decoder_start_token_id=[7, 8]), "one per batch row"),
                          (dict(max_time=1.0, num_beams=2), "max_time"),
                          (dict(guidance_scale=2.0), "does not implement `guidance_scale`"),
                          (dict(num_beam_groups=2, num_beams=4), "does not implement `num_beam_groups`")):
        with pytest.raises(GenerationError, match=match):
            ours_model.generate(ids, attention_mask=mask, max_new_tokens=3, **kwargs)


def _assert_nested_close(ref, ours, what: str) -> None:
    """Tuples (of tuples) of tensors: same structure and shapes, every element within tolerance."""
    if isinstance(ref, torch.Tensor):
        assert isinstance(ours, torch.Tensor) and ours.shape == ref.shape, f"{what}: {ours} vs {ref.shape}"
        torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-4, msg=lambda m: f"{what}: {m}")
        return
    assert isinstance(ours, tuple) and len(ours) == len(ref), f"{what}: {type(ours).__name__} of " \
        f"{len(ours) if isinstance(ours, tuple) else '?'}, transformers {len(ref)}"
    for i, (a, b) in enumerate(zip(ref, ours)):
        _assert_nested_close(a, b, f"{what}[{i}]")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("strategy", [dict(), dict(num_beams=3, num_return_sequences=2), dict(do_sample=True)])
def test_output_attentions_and_hidden_states(models, kind, strategy):
    """output_attentions / output_hidden_states with return_dict_in_generate: the encoder's once and
    the decoder's per step, as transformers' eager attention returns them (its default sdpa
    attention returns empty tuples). The BERT family's attention does not materialise its
    probabilities (as in its forward): hidden states only, and asking for attentions fails."""
    ref_model, ours_model = models(kind)
    eager = copy.deepcopy(ref_model)
    eager.set_attn_implementation("eager")
    bart = kind.startswith("bart")
    kwargs = dict(strategy, max_new_tokens=6, return_dict_in_generate=True, output_hidden_states=True,
                  output_attentions=bart, output_scores=True)
    ids, mask = inputs(kind, ref_model, 3, 7, seed=31)
    torch.manual_seed(32)
    ref = eager.generate(ids, attention_mask=mask, **kwargs)
    torch.manual_seed(32)
    ours = ours_model.generate(ids, attention_mask=mask, **kwargs)
    what = f"{kind} {strategy}"
    assert_same_output(ref, ours, what)
    fields = ["decoder_hidden_states", "encoder_hidden_states"] if ref_model.config.is_encoder_decoder \
        else ["hidden_states"]
    if bart:
        fields += ["decoder_attentions", "cross_attentions", "encoder_attentions"] if kind == "bart" \
            else ["attentions"]
    assert sorted(f for f in ours.keys() if f not in ("sequences", "sequences_scores", "scores", "beam_indices")) \
        == sorted(fields), what
    for field in fields:
        a, b = getattr(ref, field), getattr(ours, field)
        if kind in DECODER_ONLY:  # the prompt's left padding: queries without a visible key, which
            # eager attention spreads evenly over the masked keys and pygen answers with 0
            def real(t):  # [rows, ...] with rows = the prompts repeated per beam
                keep = mask.bool().repeat_interleave(t.shape[0] // mask.shape[0], dim=0)
                return t * (keep[:, :, None] if field == "hidden_states" else keep[:, None, :, None])

            a, b = ((tuple(real(t) for t in x[0]),) + x[1:] for x in (a, b))
        _assert_nested_close(a, b, f"{what} {field}")
    # Without return_dict_in_generate nothing is collected, as in transformers.
    plain = dict(kwargs, return_dict_in_generate=False, output_attentions=True)
    torch.manual_seed(32)
    assert torch.equal(ours_model.generate(ids, attention_mask=mask, **plain), ours.sequences)
    if not bart:
        with pytest.raises(pygen.errors.InputError, match="output_attentions"):
            ours_model.generate(ids, attention_mask=mask, **dict(kwargs, output_attentions=True))


@pytest.mark.parametrize("kind", ["bart", "bert2bert"])
def test_left_padded_decoder_prompts(models, kind):
    """decoder_input_ids with a decoder_attention_mask (left-padded decoder prompts): the mask hides
    the padding from the decoder's self-attention and the repetition penalty, as in transformers."""
    ref_model, ours_model = models(kind)
    ids, mask = inputs(kind, ref_model, 3, 8, seed=21)
    start = ref_model.generation_config.decoder_start_token_id
    gen = torch.Generator().manual_seed(22)
    for with_start in (True, False):
        prompt = torch.randint(6, V, (3, 5), generator=gen)
        prompt_mask = torch.ones_like(prompt)
        prompt_mask[1, :2] = prompt_mask[2, :3] = 0
        prompt = prompt.masked_fill(prompt_mask == 0, pad_id(ref_model))
        if with_start:
            prompt[:, 0], prompt_mask[:, 0] = start, 0
            prompt[0, 0], prompt_mask[0, 0] = start, 1
        for kwargs in (dict(max_new_tokens=8), dict(max_new_tokens=8, num_beams=3, repetition_penalty=1.4, **SCORES)):
            assert_same_output(
                ref_model.generate(ids, attention_mask=mask, decoder_input_ids=prompt,
                                   decoder_attention_mask=prompt_mask, **kwargs),
                ours_model.generate(ids, attention_mask=mask, decoder_input_ids=prompt,
                                    decoder_attention_mask=prompt_mask, **kwargs), f"{kind} {kwargs}")
    with pytest.raises(GenerationError, match="pass `decoder_input_ids` too"):
        ours_model.generate(ids, attention_mask=mask, decoder_attention_mask=prompt_mask)


def test_max_length_beyond_positions_fails_only_when_reached(tmp_path):
    """As transformers: max_length may exceed the decoder's position table as long as every sequence
    ends before it; one still running there is a GenerationError (transformers: an IndexError)."""
    ref = build_reference("bart", seed=3, max_positions=14)
    ref.save_pretrained(tmp_path)
    ours = pygen.BartForConditionalGeneration.from_pretrained(tmp_path).eval()
    outcomes = set()
    for seed in range(4):
        ids, mask = inputs("bart", ref, 1, 8, seed)
        for kwargs in (dict(max_new_tokens=30), dict(max_new_tokens=30, num_beams=3, **SCORES)):
            try:
                want = ref.generate(ids, attention_mask=mask, **kwargs)
            except IndexError:
                with pytest.raises(GenerationError, match="still running when they ran out"):
                    ours.generate(ids, attention_mask=mask, **kwargs)
                outcomes.add("error")
                continue
            assert_same_output(want, ours.generate(ids, attention_mask=mask, **kwargs), f"seed {seed} {kwargs}")
            outcomes.add("finished")
    assert outcomes == {"error", "finished"}
    # A max_length far beyond the table allocates nothing past it (transformers' beam search fails
    # to allocate [batch, beams, max_length] there): same outcomes, for greedy and beam search.
    for seed in range(4):
        ids, mask = inputs("bart", ref, 1, 8, seed)
        for kwargs in (dict(), dict(num_beams=3)):
            small = dict(kwargs, max_new_tokens=30)
            try:
                want = ours.generate(ids, attention_mask=mask, **small)
            except GenerationError:
                with pytest.raises(GenerationError, match="still running when they ran out"):
                    ours.generate(ids, attention_mask=mask, max_new_tokens=10 ** 12, **kwargs)
                continue
            assert torch.equal(ours.generate(ids, attention_mask=mask, max_new_tokens=10 ** 12, **kwargs), want)


def test_decoder_prompt(models):
    """decoder_input_ids continue a given decoder prefix (the start token is prepended when missing)."""
    ref_model, ours_model = models("bart")
    ids, mask = inputs("bart", ref_model, 2, 7, seed=5)
    for prefix in (torch.tensor([[2, 44, 45], [2, 46, 47]]), torch.tensor([[44, 45], [46, 47]])):
        for kwargs in (dict(max_new_tokens=6), dict(max_new_tokens=6, num_beams=3)):
            ref = ref_model.generate(ids, attention_mask=mask, decoder_input_ids=prefix, **kwargs)
            ours = ours_model.generate(ids, attention_mask=mask, decoder_input_ids=prefix, **kwargs)
            assert_same_output(ref, ours, f"{prefix.tolist()} {kwargs}")


def test_long_generation_keeps_its_cache(tmp_path, monkeypatch):
    """512 positions (greedy; beam search to 160), and the preallocated cache never grows."""
    ref = build_reference("bart", seed=5, max_positions=520)
    ref.save_pretrained(tmp_path)
    ours = pygen.BartForConditionalGeneration.from_pretrained(tmp_path).eval()
    caches = []
    new_cache = ours.gen_new_cache
    monkeypatch.setattr(ours, "gen_new_cache", lambda *a, **k: caches.append(new_cache(*a, **k)) or caches[-1])
    for kwargs in (dict(max_length=512, min_length=512), dict(max_length=160, min_length=120, num_beams=2)):
        out = compare(lambda kind: (ref, ours), "bart", batch=2, length=9, seed=9, **kwargs)
        assert out.shape[1] >= kwargs["min_length"]
        assert caches[-1].capacity == kwargs["max_length"] and caches[-1].reallocations == 0


# ---- a seeded random grid over every option at once ------------------------------------------------
def random_options(rng: random.Random, kind: str, eos: int) -> dict:
    kw = {}
    beams = rng.choice([1, 1, 2, 3, 4, 5])
    sample = rng.random() < 0.3
    if beams > 1:
        kw["num_beams"] = beams
    if sample:
        kw["do_sample"] = True
        for name, values in (("temperature", [0.5, 0.8, 1.5]), ("top_k", [0, 3, 10, 50]), ("top_p", [0.5, 0.9])):
            if rng.random() < 0.5:
                kw[name] = rng.choice(values)
    if (beams > 1 or sample) and rng.random() < 0.5:
        kw["num_return_sequences"] = rng.randint(1, beams if beams > 1 else 3)
    if beams > 1:
        if rng.random() < 0.6:
            kw["length_penalty"] = rng.choice([-1.0, 0.0, 0.5, 1.0, 2.0])
        if rng.random() < 0.6:
            kw["early_stopping"] = rng.choice([True, False, "never"])
    prompt = 10 if kind in DECODER_ONLY else 1
    if rng.random() < 0.5:
        kw["max_new_tokens"] = rng.randint(1, 18)
    else:
        kw["max_length"] = prompt + rng.randint(1, 22)
    if rng.random() < 0.25:
        kw["min_length"] = rng.randint(0, prompt + 14)
    if rng.random() < 0.25:
        kw["min_new_tokens"] = rng.randint(0, 10)
    if rng.random() < 0.25:
        kw["no_repeat_ngram_size"] = rng.randint(1, 4)
    if rng.random() < 0.2 and kind not in DECODER_ONLY:
        kw["encoder_no_repeat_ngram_size"] = rng.randint(1, 3)
    if rng.random() < 0.2:
        kw["repetition_penalty"] = rng.choice([0.8, 1.2, 2.0])
    if rng.random() < 0.2:
        kw["bad_words_ids"] = [[rng.randint(6, V - 1)], [rng.randint(6, V - 1), rng.randint(6, V - 1)]]
    if rng.random() < 0.15:
        kw["forced_bos_token_id"] = rng.randint(6, V - 1)
    if rng.random() < 0.2:
        kw["forced_eos_token_id"] = rng.choice([None, rng.randint(6, V - 1), [rng.randint(6, V - 1), eos]])
    if rng.random() < 0.15:
        kw["eos_token_id"] = [rng.randint(6, V - 1), rng.randint(6, V - 1), eos]
    if rng.random() < 0.1:
        kw["pad_token_id"] = rng.randint(0, 3)
    if rng.random() < 0.1 and kind not in DECODER_ONLY:
        kw["decoder_start_token_id"] = rng.randint(0, V - 1)
    if rng.random() < 0.4:
        kw.update(return_dict_in_generate=True, output_scores=rng.random() < 0.8, output_logits=rng.random() < 0.3)
    return kw


@pytest.mark.parametrize("case", range(24))
def test_random_option_grid(models, case):
    rng = random.Random(1000 + case)
    kind = KINDS[case % len(KINDS)]
    ref_model, _ = models(kind)
    kwargs = random_options(rng, kind, ref_model.generation_config.eos_token_id)
    length = 10 if kind in DECODER_ONLY else rng.randint(3, 10)
    compare(models, kind, batch=rng.choice([1, 2, 3, 5]), length=length, seed=case, **kwargs)


# ---- sampling: seeds and generators ----------------------------------------------------------------
def test_sampling_seed_and_generator(models):
    """generate(seed=s) and generate(generator=torch.Generator().manual_seed(s)) draw what
    transformers draws after torch.manual_seed(s); the ids depend on the seed."""
    ref_model, ours_model = models("bart")
    ids, mask = inputs("bart", ref_model, 3, 8, seed=3)
    kwargs = dict(do_sample=True, max_new_tokens=10, top_k=0)
    outputs = set()
    for seed in (0, 1, 2):
        torch.manual_seed(seed)
        ref = ref_model.generate(ids, attention_mask=mask, **kwargs)
        assert torch.equal(ours_model.generate(ids, attention_mask=mask, seed=seed, **kwargs), ref)
        generator = torch.Generator().manual_seed(seed)
        assert torch.equal(ours_model.generate(ids, attention_mask=mask, generator=generator, **kwargs), ref)
        outputs.add(tuple(ref.flatten().tolist()))
    assert len(outputs) == 3
    with pytest.raises(GenerationError, match="either `seed` or `generator`"):
        ours_model.generate(ids, seed=1, generator=torch.Generator(), do_sample=True)


WARPERS = {
    "min_p": dict(min_p=0.1),
    "typical_p": dict(typical_p=0.7),
    "epsilon_cutoff": dict(epsilon_cutoff=0.02),
    "eta_cutoff": dict(eta_cutoff=0.05),
    "all": dict(temperature=0.7, top_k=30, top_p=0.95, min_p=0.02, typical_p=0.9, epsilon_cutoff=0.001,
                eta_cutoff=0.001, renormalize_logits=True),
}


@pytest.mark.parametrize("beams", [1, 3])
@pytest.mark.parametrize("warper", list(WARPERS))
def test_sampling_warpers(models, warper, beams):
    """min-p, typical, epsilon and eta sampling (and all warpers at once): the same draws, scores."""
    kwargs = dict(WARPERS[warper], do_sample=True, max_new_tokens=10, num_beams=beams, **SCORES)
    if "top_k" not in kwargs:
        kwargs["top_k"] = 0
    for kind in ("bart", "bart-causal"):
        compare(models, kind, batch=3, seed=len(warper) + beams, **kwargs)


def _allowed(batch_id, row):
    """A prefix constraint that depends on the item and on the last token (EOS always allowed)."""
    last = int(row[-1])
    return list(range(6 + (7 * batch_id + last) % 40, 70, 1 + last % 3)) + [2, ED_EOS]


class _Boost:
    """A custom processor: raises one token that depends on the length."""

    def __call__(self, input_ids, scores):
        bonus = torch.zeros_like(scores)
        bonus[:, 10 + input_ids.shape[1] % 7] = 6.0
        return scores + bonus


@pytest.mark.parametrize("strategy", [dict(), dict(num_beams=3, num_return_sequences=2),
                                      dict(do_sample=True, top_k=0), dict(do_sample=True, num_beams=2)])
def test_prefix_allowed_tokens_fn_and_custom_processors(models, strategy):
    for kind in ("bart", "bart-causal", "bert2bert"):
        kwargs = dict(strategy, max_new_tokens=10, **SCORES)
        compare(models, kind, batch=3, seed=1, prefix_allowed_tokens_fn=_allowed, **kwargs)
        compare(models, kind, batch=2, seed=2, logits_processor=[_Boost()], **kwargs)
    _, ours = models("bart")
    ids = torch.randint(6, V, (2, 5))
    with pytest.raises(GenerationError, match="prefix_allowed_tokens_fn"):
        ours.generate(ids, prefix_allowed_tokens_fn=lambda b, row: [])
    with pytest.raises(GenerationError, match="prefix_allowed_tokens_fn"):
        ours.generate(ids, prefix_allowed_tokens_fn=lambda b, row: [V + 5])
    with pytest.raises(GenerationError, match="logits_processor"):
        ours.generate(ids, logits_processor=[3])


class _StopOn:
    """A custom stopping criterion: a row is done once its last token is one of a few ids."""

    def __init__(self, ids):
        self.ids = torch.tensor(ids)

    def __call__(self, input_ids, scores):
        return torch.isin(input_ids[:, -1], self.ids)


@pytest.mark.parametrize("strategy", [dict(), dict(do_sample=True, top_k=0, num_return_sequences=2),
                                      dict(eos_token_id=None)])
def test_custom_stopping_criteria(models, strategy):
    """Rows stop (and pad, when there is an EOS) where the criterion says, as in transformers."""
    for kind in ("bart", "bart-causal", "bert2bert"):
        kwargs = dict(strategy, max_new_tokens=12, **SCORES)
        if kind in DECODER_ONLY and "eos_token_id" in kwargs:
            kwargs["pad_token_id"] = 1
        compare(models, kind, batch=4, seed=3, stopping_criteria=[_StopOn(list(range(20, 60)))], **kwargs)
        compare(models, kind, batch=2, seed=4, stopping_criteria=[lambda ids, scores: ids.shape[1] >= 9], **kwargs)
    _, ours = models("bart")
    with pytest.raises(GenerationError, match="stopping_criteria"):
        ours.generate(torch.randint(6, V, (2, 5)), num_beams=2, stopping_criteria=[_StopOn([20])])


def test_transformers_list_containers(models):
    """LogitsProcessorList / StoppingCriteriaList as transformers code builds them."""
    ref_model, ours_model = models("bart")
    ids, mask = inputs("bart", ref_model, 3, 8, seed=13)

    def boost(input_ids, scores):
        return scores.index_add(1, torch.tensor([39, 18]), torch.full((scores.shape[0], 2), 3.0))

    want = ref_model.generate(ids, attention_mask=mask, max_new_tokens=12,
                              logits_processor=transformers.LogitsProcessorList([boost]),
                              stopping_criteria=transformers.StoppingCriteriaList([_StopOn([39])]))
    got = ours_model.generate(ids, attention_mask=mask, max_new_tokens=12,
                              logits_processor=pygen.LogitsProcessorList([boost]),
                              stopping_criteria=pygen.StoppingCriteriaList([_StopOn([39])]))
    assert_same_output(want, got)
    criteria = pygen.StoppingCriteriaList([_StopOn([39]), lambda input_ids, scores: input_ids[:, 0] == 2])
    assert criteria(got, None).tolist() == [bool(row[-1] == 39 or row[0] == 2) for row in got]
    with pytest.raises(NotImplementedError):
        pygen.StoppingCriteria()(got, None)


# ---- precedence: kwargs > generation_config= > generation_config.json > config.json ---------------
def test_precedence(tmp_path):
    ref_model = build_reference("bart", seed=3)
    ref_model.generation_config.update(num_beams=3, no_repeat_ngram_size=2, max_length=12, min_length=5,
                                       length_penalty=2.0, early_stopping=True)
    ref_model.save_pretrained(tmp_path / "file")
    legacy = tmp_path / "legacy"
    ref_model.save_pretrained(legacy)
    (legacy / "generation_config.json").unlink()
    config = json.loads((legacy / "config.json").read_text())
    config.update(num_beams=2, no_repeat_ngram_size=3, max_length=10, min_length=4, length_penalty=0.5)
    (legacy / "config.json").write_text(json.dumps(config))

    ids, mask = inputs("bart", ref_model, 3, 8, seed=8)
    for directory in (tmp_path / "file", legacy):
        ref = transformers.BartForConditionalGeneration.from_pretrained(directory).eval()
        ours = pygen.BartForConditionalGeneration.from_pretrained(directory).eval()
        assert ours.generation_config.num_beams == ref.generation_config.num_beams
        cases = [
            ({}, {}),  # the file's values
            (dict(num_beams=2, max_new_tokens=6, min_length=0), {}),  # kwargs win
            (dict(forced_eos_token_id=None, no_repeat_ngram_size=None), {}),  # None unsets
            ({}, dict(num_beams=4, max_length=9)),  # generation_config= replaces the file's values
            (dict(num_beams=1), dict(num_beams=4, max_length=9)),  # kwargs beat generation_config=
        ]
        for kwargs, config_kwargs in cases:
            extra = {}
            if config_kwargs:
                extra = dict(generation_config=transformers.GenerationConfig(**config_kwargs))
            expected = ref.generate(ids, attention_mask=mask, **kwargs, **extra)
            if config_kwargs:
                extra = dict(generation_config=pygen.GenerationConfig(**config_kwargs))
            got = ours.generate(ids, attention_mask=mask, **kwargs, **extra)
            assert_same_output(expected, got, f"{directory.name} {kwargs} {config_kwargs}")


# ---- streaming --------------------------------------------------------------------------------------
class Recorder:
    """A streamer with only put() and end(): records what it is given."""

    def __init__(self):
        self.calls = []

    def put(self, value):
        assert isinstance(value, torch.Tensor) and value.device.type == "cpu"
        self.calls.append(value.clone())

    def end(self):
        self.calls.append("end")


@pytest.mark.parametrize("kind", ["bart", "bg-decoder"])
@pytest.mark.parametrize("sample", [False, True])
def test_streamer_receives_tokens_in_order(models, kind, sample):
    ref_model, ours_model = models(kind)
    ids, mask = inputs(kind, ref_model, 2, 6, seed=21)
    kwargs = dict(max_new_tokens=10, do_sample=sample)
    streams = []
    for model in (ref_model, ours_model):
        recorder = Recorder()
        torch.manual_seed(4)
        out = model.generate(ids, attention_mask=mask, streamer=recorder, **kwargs)
        assert recorder.calls[-1] == "end" and "end" not in recorder.calls[:-1]
        tokens = recorder.calls[:-1]
        # first the prompt, then one token per row per step, and together they are the output
        assert torch.equal(torch.cat([tokens[0]] + [t[:, None] for t in tokens[1:]], 1), out)
        streams.append(tokens)
    assert len(streams[0]) == len(streams[1])
    assert all(torch.equal(a, b) for a, b in zip(*streams))


class WordTokenizer:
    """Decodes id n as the word "wn" ("</s>" for EOS); special ids are dropped on request."""

    def __init__(self, eos: int, pad: int):
        self.eos, self.pad_token_id, self.special = eos, pad, {eos, pad}

    def decode(self, ids, skip_special_tokens=False):
        ids = ids.tolist() if isinstance(ids, torch.Tensor) else list(ids)
        words = ["</s>" if i == self.eos else f"w{i}" for i in ids
                 if not (skip_special_tokens and i in self.special)]
        return " ".join(words)

    def batch_decode(self, rows, **kwargs):
        return [self.decode(row, **kwargs) for row in rows]

    def __call__(self, texts, **kwargs):
        return {"input_ids": [[int(w[1:]) for w in text.split()] + [self.eos] for text in texts]}


@pytest.mark.parametrize("sample", [False, True])
def test_text_streamers(models, sample):
    ref_model, ours_model = models("bart")
    tokenizer = WordTokenizer(eos=2, pad=1)
    ids, mask = inputs("bart", ref_model, 1, 8, seed=31)
    kwargs = dict(max_new_tokens=12, min_new_tokens=8, do_sample=sample)
    printed = []
    for model, streamer_cls in ((ref_model, transformers.TextStreamer), (ours_model, pygen.TextStreamer)):
        buffer = io.StringIO()
        torch.manual_seed(6)
        with redirect_stdout(buffer):
            out = model.generate(ids, attention_mask=mask, streamer=streamer_cls(tokenizer, skip_prompt=True,
                                                                                skip_special_tokens=True), **kwargs)
        printed.append(buffer.getvalue())
    assert printed[0] == printed[1]
    assert printed[1].strip() == tokenizer.decode(out[0, 1:], skip_special_tokens=True)

    streamer = pygen.TextIteratorStreamer(tokenizer, skip_prompt=True, timeout=60, skip_special_tokens=True)
    torch.manual_seed(6)
    result = {}
    worker = threading.Thread(target=lambda: result.update(
        out=ours_model.generate(ids, attention_mask=mask, streamer=streamer, **kwargs)))
    worker.start()
    pieces = list(streamer)
    worker.join()
    assert len(pieces) > 2
    assert "".join(pieces).strip() == tokenizer.decode(result["out"][0, 1:], skip_special_tokens=True)
    assert torch.equal(result["out"], out)


def test_streamer_is_refused_with_beam_search(models):
    _, ours_model = models("bart")
    with pytest.raises(GenerationError, match="streamer"):
        ours_model.generate(torch.tensor([[5, 6, 2]]), num_beams=2, streamer=Recorder())


# ---- generate_batches --------------------------------------------------------------------------------
def test_exports():
    from pygen import BaseStreamer, TextIteratorStreamer, TextStreamer, generate_batches
    from pygen import generation

    assert generate_batches is generation.generate_batches
    assert TextStreamer is generation.TextStreamer and TextIteratorStreamer is generation.TextIteratorStreamer
    assert BaseStreamer is generation.BaseStreamer
    assert {"generate_batches", "TextStreamer", "TextIteratorStreamer", "BaseStreamer"} <= set(pygen.__all__)


@pytest.mark.parametrize("kind, kwargs", [
    ("bart", dict(num_beams=3, max_new_tokens=10)),
    ("bart", dict(num_beams=3, num_return_sequences=2, max_new_tokens=8)),
    ("bg2bg", dict(max_new_tokens=10)),
    ("bg-decoder", dict(max_new_tokens=8)),
])
def test_generate_batches_equals_one_by_one(models, kind, kwargs, capsys):
    """Sorted by length and batched, with a progress bar; results in input order, equal to
    generating each text alone (up to the first EOS: what follows it is batch padding)."""
    _, model = models(kind)
    eos = model.generation_config.eos_token_id
    tokenizer = WordTokenizer(eos=eos, pad=pad_id(model))
    gen = torch.Generator().manual_seed(41)
    lengths = torch.randint(1, 9, (6,), generator=gen).tolist()
    texts = [" ".join(f"w{int(t)}" for t in torch.randint(6, V, (n,), generator=gen)) for n in lengths]
    got = pygen.generate_batches(model, tokenizer, texts, batch_size=3, **kwargs)
    assert "generate" in capsys.readouterr().err  # tqdm's bar, on stderr
    ids = pygen.generate_batches(model, tokenizer, texts, batch_size=3, decode=False, progress=False, **kwargs)
    returned = kwargs.get("num_return_sequences", 1)
    for i, text in enumerate(texts):
        prompt = torch.tensor([tokenizer([text])["input_ids"][0]])
        alone = model.generate(prompt, **kwargs)
        # decoder-only: the continuation; encoder-decoder: from the start token (which may be EOS)
        start, first = (prompt.shape[1], 0) if kind in DECODER_ONLY else (0, 1)
        expected = []
        for row in alone[:, start:].tolist():
            cut = next((n + 1 for n in range(first, len(row)) if row[n] == eos), len(row))
            expected.append(row[:cut])
        expected_text = [tokenizer.decode(e, skip_special_tokens=True) for e in expected]
        if returned == 1:
            assert ids[i] == expected[0] and got[i] == expected_text[0], (i, text)
        else:
            assert ids[i] == expected and got[i] == expected_text, (i, text)
    if kind == "bart":  # the same options given as a GenerationConfig, and an EOS only it names
        config = pygen.GenerationConfig(**kwargs, eos_token_id=eos)
        assert pygen.generate_batches(model, tokenizer, texts, batch_size=3, decode=False, progress=False,
                                      generation_config=config) == ids


def test_generation_config_api_as_transformers(tmp_path):
    """from_pretrained / from_dict with kwargs and return_unused_kwargs, JSON views, generation mode."""
    transformers.GenerationConfig(num_beams=4, max_length=30, eos_token_id=2).save_pretrained(tmp_path)
    for lib in (transformers, pygen):
        config, unused = lib.GenerationConfig.from_pretrained(tmp_path, max_length=3, return_unused_kwargs=True)
        assert (config.max_length, config.num_beams, unused) == (3, 4, {})
        config, unused = lib.GenerationConfig.from_dict({"num_beams": 2}, return_unused_kwargs=True, custom=5)
        assert (config.num_beams, config.custom, unused) == (2, 5, {})
        assert str(config.get_generation_mode()).endswith(("beam_search", "BEAM_SEARCH"))
        assert hash(config) == hash(copy.deepcopy(config)) and json.loads(config.to_json_string())["num_beams"] == 2
        config.to_json_file(tmp_path / "copy.json")
        assert json.loads((tmp_path / "copy.json").read_text())["num_beams"] == 2
        with pytest.raises(OSError):
            lib.GenerationConfig.from_pretrained(tmp_path / "nothing-here")
