"""Perceiver IO masked LM: parity with transformers (outputs, loss, gradients), checkpoints, validation."""
import math
import os
import warnings

import pytest
import torch

import pygen.models.perceiver as pg
from pygen.errors import ConfigError, InputError
from pygen.tokenizers import PerceiverTokenizer

transformers = pytest.importorskip("transformers")
hf = pytest.importorskip("transformers.models.perceiver.modeling_perceiver")

# Small configs exercising every architectural switch of the language model.
SMALL = dict(num_latents=8, d_latents=32, d_model=16, num_self_attends_per_block=2, num_self_attention_heads=4,
             num_cross_attention_heads=2, max_position_embeddings=24)
VARIANTS = {
    "base": {},
    "qk_v_channels": dict(qk_channels=16, v_channels=32),
    "blocks_widening": dict(num_blocks=3, self_attention_widening_factor=2, cross_attention_widening_factor=3),
    "shape_q": dict(cross_attention_shape_for_attention="q", num_cross_attention_heads=4),
    "no_query_residual": dict(use_query_residual=False, hidden_act="relu"),
    "language_like": dict(d_latents=40, d_model=24, qk_channels=16, v_channels=40, num_self_attention_heads=8,
                          num_cross_attention_heads=8),
}
LANGUAGE_PERCEIVER = dict(num_latents=256, d_latents=1280, d_model=768, num_blocks=1, num_self_attends_per_block=26,
                          num_self_attention_heads=8, num_cross_attention_heads=8, qk_channels=256, v_channels=1280,
                          max_position_embeddings=2048, vocab_size=262)


@pytest.fixture
def seed():
    """A fresh seed per test, reported in failure messages."""
    value = int.from_bytes(os.urandom(4), "little")
    torch.manual_seed(value)
    return value


def _randomize(model):
    """O(1) activations everywhere (transformers' 0.02 init would make most differences vanish).

    The byte and position tables are layer-normed before use, so their scale only sets that of
    the logits (the byte table is also the output projection): 1/sqrt(d_model) keeps them O(1).
    """
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("embeddings.weight"):
                param.normal_(0.0, param.shape[1] ** -0.5)
            elif name.endswith(("latents", "position_embeddings")):
                param.normal_()
            elif param.dim() == 2:
                param.normal_(0.0, param.shape[1] ** -0.5)
            elif "layernorm" in name and name.endswith("weight"):
                param.normal_(1.0, 0.2)
            else:
                param.normal_(0.0, 0.2)


def _pair(kind="PerceiverForMaskedLM", **overrides):
    """A randomized transformers model and the pygen model holding the same weights."""
    kwargs = {**SMALL, **overrides}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = getattr(hf, kind)(transformers.PerceiverConfig(**kwargs))
    _randomize(ref)
    ours = getattr(pg, kind)(pg.PerceiverConfig(**kwargs))
    ours.load_state_dict(ref.state_dict())
    return ref.eval(), ours.eval()


def _batch(batch, length, max_len, vocab=262, fully_masked_row=False):
    ids = torch.randint(0, vocab, (batch, length))
    mask = (torch.rand(batch, length) < 0.7).long()
    mask[torch.arange(batch), torch.randint(0, length, (batch,))] = 1  # at least one visible byte
    if fully_masked_row:
        mask[-1] = 0
    labels = torch.randint(0, vocab, (batch, max_len))
    labels[torch.rand(batch, max_len) < 0.3] = -100
    return ids, mask, labels


def _max_diff(a, b):
    return (a - b).abs().max().item()


def _assert_tree_close(ref, ours, atol, what):
    if isinstance(ref, torch.Tensor):
        assert isinstance(ours, torch.Tensor), what
        assert ref.shape == ours.shape, what
        assert _max_diff(ref, ours) <= atol, f"{what}: {_max_diff(ref, ours)}"
        return
    assert isinstance(ours, tuple) and len(ref) == len(ours), what
    for i, (r, o) in enumerate(zip(ref, ours)):
        _assert_tree_close(r, o, atol, f"{what}[{i}]")


# ---- config ------------------------------------------------------------------------------------
def test_config_defaults_match_transformers():
    ref = transformers.PerceiverConfig().to_dict()
    ours = pg.PerceiverConfig().to_dict()
    for key in pg.PerceiverConfig.defaults:
        if not key.startswith("_"):
            assert ours[key] == (list(ref[key]) if isinstance(ref[key], tuple) else ref[key]), key
    assert ours["image_size"] == ref["image_size"]
    assert ours["model_type"] == "perceiver"


@pytest.mark.parametrize("bad", [dict(d_latents=30), dict(qk_channels=12, num_self_attention_heads=8),
                                 dict(v_channels=64), dict(cross_attention_shape_for_attention="k"),
                                 dict(hidden_act="nope"), dict(num_latents=0), dict(qk_channels="16")])
def test_config_rejects_unusable_values(bad):
    with pytest.raises(ConfigError):
        pg.PerceiverForMaskedLM(pg.PerceiverConfig(**{**SMALL, **bad}))


# ---- parity ------------------------------------------------------------------------------------
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_masked_lm_matches_transformers(variant, seed):
    ref, ours = _pair(**VARIANTS[variant])
    max_len = SMALL["max_position_embeddings"]
    for length, fully_masked in ((max_len, False), (max_len - 7, True)):
        ids, mask, labels = _batch(3, length, max_len, fully_masked_row=fully_masked)
        with torch.no_grad():
            expected = ref(inputs=ids, attention_mask=mask, labels=labels)
            got = ours(inputs=ids, attention_mask=mask, labels=labels)
            unmasked_expected = ref(inputs=ids).logits
            unmasked_got = ours(inputs=ids).logits
        assert got.logits.shape == (3, max_len, 262)
        assert _max_diff(expected.logits, got.logits) <= 1e-4, (seed, length)
        assert abs(expected.loss.item() - got.loss.item()) <= 1e-5, (seed, length)
        assert _max_diff(unmasked_expected, unmasked_got) <= 1e-4, seed
        assert expected.logits.abs().max() > 1.0  # the weights are not degenerate


@pytest.mark.parametrize("variant", ["base", "qk_v_channels", "shape_q"])
def test_attentions_hidden_states_and_tuples_match(variant, seed):
    ref, ours = _pair(**VARIANTS[variant])
    ids, mask, labels = _batch(2, 20, SMALL["max_position_embeddings"], fully_masked_row=True)
    flags = dict(output_attentions=True, output_hidden_states=True)
    with torch.no_grad():
        expected, got = ref(inputs=ids, attention_mask=mask, **flags), ours(inputs=ids, attention_mask=mask, **flags)
        for field in ("logits", "hidden_states", "attentions", "cross_attentions"):
            _assert_tree_close(expected[field], got[field], 1e-5, f"{field} (seed {seed})")
        assert len(got.cross_attentions) == 2 and len(got.attentions) == SMALL["num_self_attends_per_block"]
        # return_dict=False keeps transformers' layout, loss first.
        expected = ref(inputs=ids, attention_mask=mask, labels=labels, return_dict=False, **flags)
        got = ours(inputs=ids, attention_mask=mask, labels=labels, return_dict=False, **flags)
        _assert_tree_close(tuple(expected), tuple(got), 1e-5, f"tuple output (seed {seed})")
        plain = ours(inputs=ids, attention_mask=mask, return_dict=False)
        assert len(plain) == 1 and _max_diff(plain[0], got[1]) <= 1e-4


@pytest.mark.parametrize("fully_masked_row", [False, True])
@pytest.mark.parametrize("variant", ["base", "qk_v_channels", "no_query_residual"])
def test_loss_and_gradients_match(variant, fully_masked_row, seed):
    """Including a row with no visible byte, whose cross-attention spreads evenly over the masked
    inputs (transformers' finfo.min mask), and whose gradients are that softmax's."""
    ref, ours = _pair(**VARIANTS[variant])
    ids, mask, labels = _batch(3, 21, SMALL["max_position_embeddings"], fully_masked_row=fully_masked_row)
    expected = ref(inputs=ids, attention_mask=mask, labels=labels).loss
    got = ours(input_ids=ids, attention_mask=mask, labels=labels).loss
    assert abs(expected.item() - got.item()) <= 1e-5, seed
    expected.backward()
    got.backward()
    ours_params = dict(ours.named_parameters())
    largest = max(param.grad.abs().max().item() for param in ref.parameters())
    for name, param in ref.named_parameters():
        g_ref, g_ours = param.grad, ours_params[name].grad
        if name.endswith("self.key.bias"):
            # Softmax ignores a shift shared by all keys: the exact gradient is 0, both hold rounding noise.
            assert max(g_ref.abs().max().item(), g_ours.abs().max().item()) <= 1e-5 * largest, name
            continue
        scale = g_ref.abs().max().item()
        assert scale > 0, name
        assert _max_diff(g_ref, g_ours) <= 1e-4 * scale, f"{name}: {_max_diff(g_ref, g_ours) / scale} (seed {seed})"


def test_base_model_on_embeddings_matches_transformers(seed):
    ref, ours = _pair("PerceiverModel")
    inputs = torch.randn(2, 13, SMALL["d_model"])
    mask = torch.rand(2, 13) < 0.6
    mask[:, 0] = True
    with torch.no_grad():
        expected = ref(inputs=inputs, attention_mask=mask, output_hidden_states=True)
        got = ours(inputs=inputs, attention_mask=mask, output_hidden_states=True)
    assert got.logits is None
    _assert_tree_close(expected.last_hidden_state, got.last_hidden_state, 1e-4, f"last_hidden_state (seed {seed})")
    _assert_tree_close(expected.hidden_states, got.hidden_states, 1e-4, f"hidden_states (seed {seed})")


def test_every_attention_goes_through_the_op(monkeypatch, seed):
    _, ours = _pair(num_blocks=2)
    calls = []

    def spy(q, k, v, **kwargs):
        calls.append((q.shape, k.shape, v.shape, kwargs.get("key_padding_mask")))
        return pg_attention(q, k, v, **kwargs)

    pg_attention = pg.attention
    monkeypatch.setattr(pg, "attention", spy)
    ids, mask, _ = _batch(2, 19, SMALL["max_position_embeddings"])
    with torch.no_grad():
        ours(inputs=ids, attention_mask=mask)
    assert len(calls) == 1 + 2 * SMALL["num_self_attends_per_block"] + 1
    q, k, v, key_padding_mask = calls[0]  # encoder cross-attention: latents x bytes, padding masked
    assert q[:2] == (2, SMALL["num_latents"]) and k[:2] == (2, 19)
    assert torch.equal(key_padding_mask, mask.bool())
    assert all(call[3] is None for call in calls[1:])
    q, k, v, _ = calls[-1]  # decoder: position queries x latents, 32-wide q/k heads, d_model/8-wide v heads
    assert q == (2, SMALL["max_position_embeddings"], 8, 32) and v == (2, SMALL["num_latents"], 8, 2)


def test_dropout_only_in_training(seed):
    _, ours = _pair(attention_probs_dropout_prob=0.5)
    ids = torch.randint(0, 262, (2, 24))
    with torch.no_grad():
        first, second = ours(inputs=ids).logits, ours(inputs=ids).logits
        assert torch.equal(first, second)
        ours.train()
        dropped = ours(inputs=ids).logits
    assert torch.isfinite(dropped).all() and _max_diff(dropped, first) > 1e-3


# ---- checkpoints -------------------------------------------------------------------------------
def test_save_pretrained_round_trips_with_transformers(tmp_path, seed):
    ref, ours = _pair(**VARIANTS["language_like"])
    ids, mask, _ = _batch(2, 24, SMALL["max_position_embeddings"])
    with torch.no_grad():
        expected = ref(inputs=ids, attention_mask=mask).logits

    ours.save_pretrained(tmp_path / "pygen")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loaded_ref, info = transformers.PerceiverForMaskedLM.from_pretrained(tmp_path / "pygen",
                                                                             output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    ref.save_pretrained(tmp_path / "transformers")
    loaded, info = pg.PerceiverForMaskedLM.from_pretrained(tmp_path / "transformers", output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    assert loaded.config.qk_channels == 16 and loaded.config.v_channels == 40
    with torch.no_grad():
        assert _max_diff(loaded_ref.eval()(inputs=ids, attention_mask=mask).logits, expected) <= 1e-4
        assert _max_diff(loaded(inputs=ids, attention_mask=mask).logits, expected) <= 1e-4
    ours_state, ref_state = ours.state_dict(), ref.state_dict()
    assert ours_state.keys() == ref_state.keys()
    assert all(torch.equal(ours_state[k], ref_state[k]) for k in ref_state)


def test_base_model_loads_the_masked_lm_checkpoint(tmp_path, seed):
    ref, ours = _pair()
    ours.save_pretrained(tmp_path)
    base, info = pg.PerceiverModel.from_pretrained(tmp_path, output_loading_info=True)
    assert not info["missing_keys"]
    assert torch.equal(base.embeddings.latents, ours.perceiver.embeddings.latents)


# ---- validation --------------------------------------------------------------------------------
def test_invalid_inputs_raise_input_error(seed):
    _, ours = _pair()
    ids = torch.randint(0, 262, (2, 10))
    bad_calls = [
        dict(inputs=torch.tensor([[1, 262]])),
        dict(inputs=torch.tensor([[-1, 5]])),
        dict(inputs=torch.randint(0, 262, (1, SMALL["max_position_embeddings"] + 1))),
        dict(inputs=ids.float()),
        dict(inputs=ids[0]),
        dict(inputs=ids[:, :0]),
        dict(inputs=ids, attention_mask=torch.ones(2, 9)),
        dict(inputs=ids, attention_mask=torch.ones(1, 10)),
        dict(inputs=ids, labels=torch.zeros(2, 10, dtype=torch.long)),
        dict(inputs=ids, labels=torch.full((2, 24), 262)),
        dict(inputs=ids, input_ids=ids),
        dict(),
    ]
    for kwargs in bad_calls:
        with pytest.raises(InputError):
            ours(**kwargs)
    _, base = _pair("PerceiverModel")
    with pytest.raises(InputError):
        base(inputs=torch.randn(1, 5, SMALL["d_model"] + 1))


# ---- the seed example ----------------------------------------------------------------------------
def test_seed_example_masked_byte_prediction(tmp_path, seed):
    """deepmind/language-perceiver's model card, on a random-weight checkpoint of the same interface."""
    ref, _ = _pair(max_position_embeddings=2048)
    ref.save_pretrained(tmp_path)
    transformers.PerceiverTokenizer().save_pretrained(tmp_path)

    tokenizer = PerceiverTokenizer.from_pretrained(tmp_path)
    model = pg.PerceiverForMaskedLM.from_pretrained(tmp_path)
    text = "This is an incomplete sentence where some words are missing."
    encoding = tokenizer(text, padding="max_length", return_tensors="pt")
    encoding["input_ids"][0, 52:61] = tokenizer.mask_token_id  # " missing."
    labels = tokenizer(text, padding="max_length", return_tensors="pt").input_ids
    with torch.no_grad():
        outputs = model(**encoding, labels=labels)
        expected = ref(**encoding, labels=labels)
    assert list(outputs.logits.shape) == [1, 2048, 262]
    assert math.isclose(outputs.loss.item(), expected.loss.item(), abs_tol=1e-5)
    predictions = outputs.logits[0, 52:61].argmax(dim=-1).tolist()
    assert predictions == expected.logits[0, 52:61].argmax(dim=-1).tolist()
    assert tokenizer.decode(predictions) == transformers.PerceiverTokenizer().decode(predictions)


# ---- full size ---------------------------------------------------------------------------------
@pytest.mark.slow
def test_language_perceiver_shape_matches_transformers(seed):
    ref, ours = _pair(**LANGUAGE_PERCEIVER)
    ids, mask, labels = _batch(2, 2048, 2048)
    mask[1, 1500:] = 0  # right padding, as the tokenizer produces
    with torch.no_grad():
        expected = ref(inputs=ids, attention_mask=mask, labels=labels)
        got = ours(inputs=ids, attention_mask=mask, labels=labels)
    assert _max_diff(expected.logits, got.logits) <= 1e-4, seed
    assert abs(expected.loss.item() - got.loss.item()) <= 1e-5, seed
