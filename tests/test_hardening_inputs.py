"""Bad input to the models, generate() and pygen.ops.attention gives a documented pygen exception
(InputError / GenerationError, see docs/errors.md) whose message names the offending argument,
and never a crash, a hang or a foreign exception type.

Every family is covered: BART, bert2bert (EncoderDecoderModel), BertGenerationDecoder and
Perceiver. A "meta" tensor stands in for a tensor on another device, so device mismatches are
tested without a GPU. Non-finite inputs or weights may give non-finite outputs, but must
return (or raise a pygen error) promptly.

Cases that currently fail because of a bug in a colleague's file are listed in KNOWN_BUGS with
the file and function at fault; they run as strict xfails, so fixing the bug makes the test
XPASS and fail: then delete its KNOWN_BUGS entry.
"""
from __future__ import annotations

import contextlib
import copy
import faulthandler
import sys
import warnings
from typing import Callable

import pytest
import torch

from pygen.errors import GenerationError, InputError, PygenError
from pygen.ops import attention

try:
    from . import test_hardening_support as support
except ImportError:
    import test_hardening_support as support

FAMILIES, GENERATIVE, MAX_POSITIONS, VOCAB = support.FAMILIES, support.GENERATIVE, support.MAX_POSITIONS, support.VOCAB
random_ids, random_mask = support.random_ids, support.random_mask

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::RuntimeWarning")


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    with support.one_intra_op_thread():
        yield


# (test, family, case) -> the bug, where it is (file and function), and what goes wrong.
KNOWN_BUGS: dict[tuple[str, ...], str] = {}


def param(test: str, *case: str, values=None):
    """A pytest param for ``case``, marked strict-xfail when KNOWN_BUGS lists it."""
    key = (test, *case)
    marks = [pytest.mark.xfail(reason=KNOWN_BUGS[key], strict=True)] if key in KNOWN_BUGS else []
    return pytest.param(*(values if values is not None else case), marks=marks, id="-".join(case))


def raises(error: type[PygenError] | tuple[type[PygenError], ...], argument: str | tuple[str, ...],
           call: Callable[[], object]) -> PygenError:
    """``call()`` must raise ``error`` whose message names ``argument`` (or one of several)."""
    with pytest.raises(error) as info:
        call()
    names = (argument,) if isinstance(argument, str) else argument
    message = str(info.value).lower()
    assert any(name.lower() in message for name in names), f"the message does not name {names}: {info.value}"
    return info.value


@contextlib.contextmanager
def no_hang(seconds: float = 60.0):
    """Abort the test process with every thread's traceback if the block hangs."""
    faulthandler.dump_traceback_later(seconds, exit=True, file=sys.stderr)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()


# ---- forward -----------------------------------------------------------------------------------
def _main(kwargs, family, fn):
    return {**kwargs, family.main_input: fn(kwargs[family.main_input])}


def _all(kwargs, fn):
    """Apply ``fn`` to every tensor input (to keep them consistent, e.g. an empty batch)."""
    return {k: fn(v) if isinstance(v, torch.Tensor) else v for k, v in kwargs.items()}


def _too_long(kwargs, family):
    n = MAX_POSITIONS + 3
    return {**kwargs, family.main_input: random_ids(2, n, family.vocab, 7), "attention_mask": random_mask(2, n, 8)}


def _embeds(kwargs, family, value):
    kwargs = {k: v for k, v in kwargs.items() if k != "input_ids"}
    return {**kwargs, "inputs_embeds": value}


FORWARD_CASES = {
    # name: (argument the message must name, transform of valid kwargs)
    "id < 0": (None, lambda kw, f: _main(kw, f, lambda ids: ids - f.vocab)),  # every id (Perceiver's too)
    "id >= vocab": (None, lambda kw, f: _main(kw, f, lambda ids: ids + f.vocab)),
    "float ids": (None, lambda kw, f: _main(kw, f, lambda ids: ids.float())),
    "ids as list": (None, lambda kw, f: _main(kw, f, lambda ids: ids.tolist())),
    "1-D ids": (None, lambda kw, f: {**_main(kw, f, lambda ids: ids[0]), "attention_mask": None}),
    "empty batch": (None, lambda kw, f: _all(kw, lambda t: t[:0])),
    "zero-length": (None, lambda kw, f: {**_main(kw, f, lambda ids: ids[:, :0]),
                                        "attention_mask": kw["attention_mask"][:, :0]}),
    "too long": (None, _too_long),
    "ids on meta": (None, lambda kw, f: _main(kw, f, lambda ids: ids.to("meta"))),
    "mask wrong shape": ("attention_mask", lambda kw, f: {**kw, "attention_mask": kw["attention_mask"][:, :-1]}),
    "3-D mask": ("attention_mask", lambda kw, f: {**kw, "attention_mask": kw["attention_mask"][:, None]}),
    "mask as list": ("attention_mask", lambda kw, f: {**kw, "attention_mask": kw["attention_mask"].tolist()}),
    "mask on meta": ("attention_mask", lambda kw, f: {**kw, "attention_mask": kw["attention_mask"].to("meta")}),
    "complex mask": ("attention_mask", lambda kw, f: {**kw, "attention_mask": kw["attention_mask"].to(torch.complex64)}),
    "uint8 ids": (None, lambda kw, f: _main(kw, f, lambda ids: ids.to(torch.uint8))),
}
TEXT_CASES = {  # families that accept inputs_embeds and labels
    "integer embeds": ("inputs_embeds", lambda kw, f: _embeds(kw, f, torch.randint(1, 5, (2, 5, support.HIDDEN)))),
    "embeds as list": ("inputs_embeds", lambda kw, f: _embeds(kw, f, torch.randn(2, 5, support.HIDDEN).tolist())),
    "embeds wrong width": ("inputs_embeds", lambda kw, f: _embeds(kw, f, torch.randn(2, 5, support.HIDDEN + 1))),
    "embeds on meta": ("inputs_embeds", lambda kw, f: _embeds(kw, f, torch.randn(2, 5, support.HIDDEN,
                                                                                  device="meta"))),
    "labels out of vocab": ("labels", lambda kw, f: {**kw, "labels": random_ids(2, 4, VOCAB) + VOCAB}),
    "float labels": ("labels", lambda kw, f: {**kw, "labels": torch.rand(2, 4) * 3}),
    "labels on meta": ("labels", lambda kw, f: {**kw, "labels": random_ids(2, 4 if f.encoder_decoder else 5, VOCAB)
                                                .to("meta")}),
    "double embeds": ("inputs_embeds", lambda kw, f: _embeds(kw, f, torch.randn(2, 5, support.HIDDEN).double())),
}
DECODER_CASES = {  # encoder-decoder families
    "decoder id < 0": ("decoder_input_ids", lambda kw, f: {**kw, "decoder_input_ids": kw["decoder_input_ids"] - 90}),
    "decoder float ids": ("decoder_input_ids",
                          lambda kw, f: {**kw, "decoder_input_ids": kw["decoder_input_ids"].double()}),
    "decoder ids on meta": ("decoder_input_ids",
                            lambda kw, f: {**kw, "decoder_input_ids": kw["decoder_input_ids"].to("meta")}),
    "decoder too long": ("decoder_input_ids",
                         lambda kw, f: {**kw, "decoder_input_ids": random_ids(2, MAX_POSITIONS + 2, VOCAB, 9)}),
    "decoder batch mismatch": ("decoder_input_ids",
                               lambda kw, f: {**kw, "decoder_input_ids": kw["decoder_input_ids"][:1]}),
    "decoder mask wrong shape": ("decoder_attention_mask",
                                 lambda kw, f: {**kw, "decoder_attention_mask": random_mask(2, 3, 10)}),
    "decoder mask on meta": ("decoder_attention_mask",
                             lambda kw, f: {**kw, "decoder_attention_mask": random_mask(2, 4, 10).to("meta")}),
    "decoder embeds wrong width": ("decoder_inputs_embeds", lambda kw, f: {
        **{k: v for k, v in kw.items() if k != "decoder_input_ids"},
        "decoder_inputs_embeds": torch.randn(2, 4, support.HIDDEN + 1)}),
    "encoder_outputs wrong width": ("encoder_outputs", lambda kw, f: {
        **{k: v for k, v in kw.items() if k != "input_ids"}, "encoder_outputs": (torch.randn(2, 5, support.HIDDEN + 2),)}),
    "encoder_outputs on meta": ("encoder_outputs", lambda kw, f: {
        **{k: v for k, v in kw.items() if k != "input_ids"},
        "encoder_outputs": (torch.randn(2, 5, support.HIDDEN, device="meta"),)}),
    "encoder_outputs batch mismatch": ("decoder_input_ids", lambda kw, f: {
        **{k: v for k, v in kw.items() if k not in ("input_ids", "attention_mask")},
        "encoder_outputs": (torch.randn(3, 5, support.HIDDEN),)}),
}
PERCEIVER_CASES = {
    "labels wrong shape": ("labels", lambda kw, f: {**kw, "labels": random_ids(2, 5, 262)}),
    "labels out of vocab": ("labels", lambda kw, f: {**kw, "labels": random_ids(2, MAX_POSITIONS, 262) + 262}),
    "labels on meta": ("labels", lambda kw, f: {**kw, "labels": random_ids(2, MAX_POSITIONS, 262).to("meta")}),
}


def _forward_params():
    for name, family in FAMILIES.items():
        cases = dict(FORWARD_CASES)
        cases.update(PERCEIVER_CASES if name == "perceiver" else TEXT_CASES)
        if family.encoder_decoder:
            cases.update(DECODER_CASES)
        for case, (argument, transform) in cases.items():
            yield param("forward", name, case, values=(name, argument or family.main_input, transform))


@pytest.mark.parametrize("family_name, argument, transform", list(_forward_params()))
def test_forward_rejects_bad_input(family_name, argument, transform):
    family = FAMILIES[family_name]
    model = support.model(family_name)
    kwargs = transform(family.inputs(), family)
    with no_hang():
        raises(InputError, argument, lambda: model(**kwargs))


@pytest.mark.parametrize("family_name", FAMILIES)
def test_valid_input_still_runs(family_name):
    """The baseline every bad-input case departs from is accepted (so the errors above are real)."""
    family = FAMILIES[family_name]
    out = support.model(family_name)(**family.inputs(offset=3))
    assert torch.isfinite(out.logits).all()


@pytest.mark.parametrize("family_name", [n for n in FAMILIES if n != "perceiver"])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_inputs_embeds_return(family_name, value):
    family = FAMILIES[family_name]
    kwargs = _embeds(family.inputs(offset=4), family, torch.full((2, 5, support.HIDDEN), value))
    with no_hang():
        out = support.model(family_name)(**kwargs)
    assert out.logits.shape[0] == 2


# ---- non-finite weights: forward and generate return (or raise a pygen error), never hang ---------
def _poisoned(family_name: str, value: float) -> torch.nn.Module:
    model = copy.deepcopy(support.model(family_name))
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(value)
    return model


STRATEGIES = {"greedy": {}, "beam": {"num_beams": 3}, "sample": {"do_sample": True, "seed": 5},
              "beam+penalties": {"num_beams": 2, "repetition_penalty": 1.3, "no_repeat_ngram_size": 2}}


def _weights_params():
    for label, value in (("nan weights", float("nan")), ("inf weights", float("inf"))):
        for name in FAMILIES:
            yield param(label, name, "forward", values=(name, value, None))
            if FAMILIES[name].generates:
                for strategy in STRATEGIES:
                    yield param(label, name, strategy, values=(name, value, strategy))


@pytest.mark.parametrize("family_name, value, strategy", list(_weights_params()))
def test_non_finite_weights_do_not_hang(family_name, value, strategy):
    family = FAMILIES[family_name]
    model = _poisoned(family_name, value)
    with no_hang():
        try:
            if strategy is None:
                out = model(**family.inputs(offset=5)).logits
            else:
                support.require_generate(family_name)
                out = model.generate(random_ids(2, 4, offset=6), max_new_tokens=5, **STRATEGIES[strategy])
        except PygenError:
            return  # a documented error is fine; anything else fails the test
    assert out.shape[0] == 2


@pytest.mark.parametrize("strategy", [{"do_sample": True}, {"do_sample": True, "num_beams": 2}], ids=["sample", "beam-sample"])
def test_sampling_from_non_finite_scores_is_a_generation_error(strategy):
    """NaN probabilities cannot be sampled: a GenerationError saying so (transformers: torch's RuntimeError)."""
    support.require_generate("bart")
    model = _poisoned("bart", float("nan"))
    with no_hang():
        raises(GenerationError, "not finite", lambda: model.generate(random_ids(2, 4, offset=7), max_new_tokens=3,
                                                                      seed=1, **strategy))


# ---- generate ---------------------------------------------------------------------------------
def _prompt(family_name, batch=2, length=5):
    return {"input_ids": random_ids(batch, length, offset=11),
            "attention_mask": support.prompt_mask(family_name, batch, length, 12)}


GENERATE_CASES = {
    # name: (error, argument(s) the message must name, kwargs builder)
    "id < 0": (InputError, "input_ids", lambda p: {**p, "input_ids": p["input_ids"] - 100}),
    "id >= vocab": (InputError, "input_ids", lambda p: {**p, "input_ids": p["input_ids"] + VOCAB}),
    "float ids": (InputError, "input_ids", lambda p: {**p, "input_ids": p["input_ids"].float()}),
    "ids as list": (InputError, "input_ids", lambda p: {**p, "input_ids": p["input_ids"].tolist()}),
    "empty batch": (InputError, "input_ids", lambda p: {k: v[:0] for k, v in p.items()}),
    "zero-length": (InputError, "input_ids", lambda p: {k: v[:, :0] for k, v in p.items()}),
    "prompt too long": (InputError, "input_ids",
                        lambda p: {"input_ids": random_ids(2, MAX_POSITIONS + 4, offset=13)}),
    "ids on meta": (InputError, "input_ids", lambda p: {**p, "input_ids": p["input_ids"].to("meta")}),
    "mask wrong shape": (InputError, "attention_mask", lambda p: {**p, "attention_mask": p["attention_mask"][:, 1:]}),
    "mask as list": (InputError, "attention_mask", lambda p: {**p, "attention_mask": p["attention_mask"].tolist()}),
    "mask on meta": (InputError, "attention_mask", lambda p: {**p, "attention_mask": p["attention_mask"].to("meta")}),
    "num_return_sequences > num_beams": (GenerationError, "num_return_sequences",
                                         lambda p: {**p, "num_beams": 2, "num_return_sequences": 3}),
    "num_return_sequences with greedy": (GenerationError, "num_return_sequences",
                                         lambda p: {**p, "num_return_sequences": 2}),
    "num_beams = 0": (GenerationError, "num_beams", lambda p: {**p, "num_beams": 0}),
    "float num_beams": (GenerationError, "num_beams", lambda p: {**p, "num_beams": 2.0}),
    "max_new_tokens = 0": (GenerationError, "max_new_tokens", lambda p: {**p, "max_new_tokens": 0}),
    "max_new_tokens past positions": ((GenerationError, InputError), ("max_new_tokens", "max_length"),
                                      lambda p: {**p, "max_new_tokens": MAX_POSITIONS + 5}),
    "temperature = 0": (GenerationError, "temperature", lambda p: {**p, "do_sample": True, "temperature": 0.0}),
    "top_p > 1": (GenerationError, "top_p", lambda p: {**p, "do_sample": True, "top_p": 1.5}),
    "min_p < 0": (GenerationError, "min_p", lambda p: {**p, "do_sample": True, "min_p": -0.1}),
    "typical_p = 0": (GenerationError, "typical_p", lambda p: {**p, "do_sample": True, "typical_p": 0.0}),
    "eta_cutoff = 1": (GenerationError, "eta_cutoff", lambda p: {**p, "do_sample": True, "eta_cutoff": 1.0}),
    "encoder_repetition_penalty = 0": (GenerationError, "encoder_repetition_penalty",
                                       lambda p: {**p, "encoder_repetition_penalty": 0.0}),
    "suppress_tokens outside vocab": (GenerationError, "suppress_tokens",
                                      lambda p: {**p, "suppress_tokens": [VOCAB + 1]}),
    "begin_suppress_tokens not ids": (GenerationError, "begin_suppress_tokens",
                                      lambda p: {**p, "begin_suppress_tokens": ["a"]}),
    "exponential_decay_length_penalty one value": (GenerationError, "exponential_decay_length_penalty",
                                                   lambda p: {**p, "exponential_decay_length_penalty": (3,)}),
    "sequence_bias int bias": (GenerationError, "sequence_bias", lambda p: {**p, "sequence_bias": {(5,): 1}}),
    "sequence_bias list keys": (GenerationError, "sequence_bias", lambda p: {**p, "sequence_bias": {5: 1.0}}),
    "sequence_bias outside vocab": (GenerationError, "sequence_bias",
                                    lambda p: {**p, "sequence_bias": [[[4, VOCAB], 1.0]]}),
    "unsupported guidance_scale": (GenerationError, "guidance_scale", lambda p: {**p, "guidance_scale": 2.0}),
    "eos outside vocab": (GenerationError, "eos_token_id", lambda p: {**p, "eos_token_id": VOCAB + 3}),
    "negative pad": (GenerationError, "pad_token_id", lambda p: {**p, "pad_token_id": -1}),
    "bad_words outside vocab": (GenerationError, "bad_words_ids", lambda p: {**p, "bad_words_ids": [[VOCAB]]}),
    "misspelled argument": (GenerationError, "max_new_tokenz", lambda p: {**p, "max_new_tokenz": 3}),
    "generation_config not a config": (GenerationError, "generation_config",
                                       lambda p: {**p, "generation_config": {"max_length": 5}}),
    "max_length past positions": (GenerationError, "max_length", lambda p: {**p, "max_length": MAX_POSITIONS + 9}),
    "seed a string": (GenerationError, "seed", lambda p: {**p, "do_sample": True, "seed": "7"}),
    "generator not a Generator": (GenerationError, "generator", lambda p: {**p, "do_sample": True, "generator": 7}),
    "complex mask": (InputError, "attention_mask",
                     lambda p: {**p, "attention_mask": p["attention_mask"].to(torch.complex64)}),
    "method name as argument": (GenerationError, "validate", lambda p: {**p, "validate": 1}),
}
ENCODER_DECODER_GENERATE_CASES = {
    "max_length below decoder prompt": (GenerationError, "max_length",
                                        lambda p: {**p, "decoder_input_ids": random_ids(2, 6, offset=14),
                                                   "max_length": 4}),
    "decoder float ids": (InputError, "decoder_input_ids",
                          lambda p: {**p, "decoder_input_ids": random_ids(2, 2, offset=15).float()}),
    "encoder_outputs wrong width": (InputError, "encoder_outputs",
                                    lambda p: {"encoder_outputs": (torch.randn(2, 5, support.HIDDEN + 2),)}),
    "encoder_outputs on meta": (InputError, "encoder_outputs",
                                lambda p: {"encoder_outputs": (torch.randn(2, 5, support.HIDDEN, device="meta"),)}),
    "decoder_start outside vocab": (GenerationError, "decoder_start_token_id",
                                    lambda p: {**p, "decoder_start_token_id": VOCAB}),
    "decoder ids on meta": (InputError, "decoder_input_ids",
                            lambda p: {**p, "decoder_input_ids": random_ids(2, 2, offset=15).to("meta")}),
    "decoder prompt too long": (InputError, "decoder_input_ids",
                                lambda p: {**p, "decoder_input_ids": random_ids(2, MAX_POSITIONS + 3, offset=16)}),
    "integer encoder_outputs": (InputError, "encoder_outputs",
                                lambda p: {"encoder_outputs": (torch.ones(2, 5, support.HIDDEN, dtype=torch.long),)}),
}
DECODER_ONLY_GENERATE_CASES = {
    "max_length below prompt": (GenerationError, "max_length", lambda p: {**p, "max_length": 3}),
    "encoder_outputs to a decoder-only model": (GenerationError, "encoder_outputs",
                                                lambda p: {**p, "encoder_outputs": (torch.randn(2, 5, 16),)}),
}


def _generate_params():
    for name in GENERATIVE:
        cases = dict(GENERATE_CASES)
        cases.update(ENCODER_DECODER_GENERATE_CASES if FAMILIES[name].encoder_decoder else DECODER_ONLY_GENERATE_CASES)
        for case, (error, argument, build) in cases.items():
            yield param("generate", name, case, values=(name, error, argument, build))


@pytest.mark.parametrize("family_name, error, argument, build", list(_generate_params()))
def test_generate_rejects_bad_input(family_name, error, argument, build):
    support.require_generate(family_name)
    model = support.model(family_name)
    kwargs = build(_prompt(family_name))
    kwargs.setdefault("max_new_tokens", 4)
    if "max_length" in kwargs:
        kwargs.pop("max_new_tokens")
    with no_hang():
        raises(error, argument, lambda: model.generate(**kwargs))


@pytest.mark.parametrize("family_name", GENERATIVE)
def test_generate_baseline_and_nan_encoder_outputs(family_name):
    """Valid generation works, and NaN encoder states (enc-dec) return promptly."""
    support.require_generate(family_name)
    model = support.model(family_name)
    out = model.generate(**_prompt(family_name), max_new_tokens=4, num_beams=2, num_return_sequences=2)
    assert out.shape[0] == 4
    if FAMILIES[family_name].encoder_decoder:
        with no_hang():
            out = model.generate(encoder_outputs=(torch.full((2, 5, support.HIDDEN), float("nan")),),
                                 max_new_tokens=4, num_beams=2)
        assert out.shape[0] == 2


# ---- pygen.ops.attention --------------------------------------------------------------------------
def _qkv(batch=2, q_len=5, kv_len=7, heads=2, dim=8):
    gen = support.generator(20)
    return (torch.randn(batch, q_len, heads, dim, generator=gen), torch.randn(batch, kv_len, heads, dim, generator=gen),
            torch.randn(batch, kv_len, heads, dim, generator=gen))


ATTENTION_CASES = {
    # name: (argument the message must name, call)
    "3-D q": ("q", lambda q, k, v: attention(q[0], k, v)),
    "q as list": ("q", lambda q, k, v: attention(q.tolist(), k, v)),
    "integer qkv": ("q", lambda q, k, v: attention(q.long(), k.long(), v.long())),
    "complex qkv": ("q", lambda q, k, v: attention(*(t.to(torch.complex64) for t in (q, k, v)))),
    "mixed dtypes": ("dtype", lambda q, k, v: attention(q.double(), k, v)),
    "batch mismatch": ("batch", lambda q, k, v: attention(q, k[:1], v[:1])),
    "head mismatch": ("head", lambda q, k, v: attention(q, k[:, :, :1], v[:, :, :1])),
    "head dim mismatch": ("dim", lambda q, k, v: attention(q, k[..., :4], v)),
    "k/v length mismatch": ("v", lambda q, k, v: attention(q, k, v[:, :3])),
    "zero head dim": ("dim", lambda q, k, v: attention(q[..., :0], k[..., :0], v[..., :0])),
    "non-contiguous head dim": ("contiguous", lambda q, k, v: attention(*(t.transpose(2, 3) for t in (q, k, v)))),
    "k on meta": ("device", lambda q, k, v: attention(q, k.to("meta"), v)),
    "kv_group = 0": ("kv_group", lambda q, k, v: attention(q, k, v, kv_group=0)),
    "kv_group mismatch": ("kv_group", lambda q, k, v: attention(q, k, v, kv_group=2)),
    "mask wrong shape": ("key_padding_mask", lambda q, k, v: attention(
        q, k, v, key_padding_mask=torch.ones(2, 3, dtype=torch.bool))),
    "mask as list": ("key_padding_mask", lambda q, k, v: attention(q, k, v, key_padding_mask=[[1] * 7] * 2)),
    "mask on meta": ("key_padding_mask", lambda q, k, v: attention(
        q, k, v, key_padding_mask=torch.ones(2, 7, dtype=torch.bool, device="meta"))),
    "bias wrong shape": ("attn_bias", lambda q, k, v: attention(q, k, v, attn_bias=torch.randn(2, 2, 5, 3))),
    "integer bias": ("attn_bias", lambda q, k, v: attention(q, k, v, attn_bias=torch.ones(1, 1, 5, 7).long())),
    "bias on meta": ("attn_bias", lambda q, k, v: attention(q, k, v, attn_bias=torch.randn(1, 1, 5, 7,
                                                                                             device="meta"))),
    "scale NaN": ("scale", lambda q, k, v: attention(q, k, v, scale=float("nan"))),
    "scale as str": ("scale", lambda q, k, v: attention(q, k, v, scale="1")),
    "dropout_p > 1": ("dropout_p", lambda q, k, v: attention(q, k, v, dropout_p=2.0)),
    "dropout_p < 0": ("dropout_p", lambda q, k, v: attention(q, k, v, dropout_p=-0.5)),
}


@pytest.mark.parametrize("argument, call", [param("attention", case, values=ATTENTION_CASES[case])
                                            for case in ATTENTION_CASES])
def test_attention_rejects_bad_input(argument, call):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        raises(InputError, argument, lambda: call(*_qkv()))


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
@pytest.mark.parametrize("where", ["q", "k", "v", "attn_bias"])
def test_attention_non_finite_inputs_return(where, value):
    q, k, v = _qkv()
    bias = torch.randn(2, 2, 5, 7, generator=support.generator(21))
    tensors = {"q": q, "k": k, "v": v, "attn_bias": bias}
    tensors[where] = tensors[where].clone()
    tensors[where].view(-1)[:: 3] = value
    with no_hang():
        out = attention(tensors["q"], tensors["k"], tensors["v"], attn_bias=tensors["attn_bias"])
    assert out.shape == (2, 5, 2, 8)
