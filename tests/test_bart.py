"""BART parity with transformers (the reference), on small random-weight models.

Every test builds the transformers model from its config, randomises *all* its weights
(LayerNorms and final_logits_bias included, so nothing is an identity or a zero), copies its
state_dict into pygen's model, and compares every element of the outputs.
"""
from __future__ import annotations

import copy
import json

import pytest
import torch
import transformers
from transformers.activations import ACT2FN as HF_ACT2FN

from pygen.activations import ACT2FN
from pygen.cache import KVCache
from pygen.errors import CheckpointError, ConfigError, InputError
from pygen.modeling_outputs import Seq2SeqLMOutput
from pygen.models import bart as pb

ATOL = 1e-4

# A grid of small configs; each varies what could break: activations, embedding scale,
# unequal depths, odd head counts, d_model not a power of two, untied embeddings.
CONFIGS = {
    "gelu": dict(activation_function="gelu", d_model=24, encoder_attention_heads=4, decoder_attention_heads=2,
                 encoder_layers=2, decoder_layers=1),
    "relu-scaled": dict(activation_function="relu", scale_embedding=True, d_model=30, encoder_attention_heads=3,
                        decoder_attention_heads=5, encoder_layers=1, decoder_layers=3),
    "silu-untied": dict(activation_function="silu", tie_word_embeddings=False, d_model=20,
                        encoder_attention_heads=5, decoder_attention_heads=1, encoder_layers=2, decoder_layers=2),
    "gelu_new-scaled": dict(activation_function="gelu_new", scale_embedding=True, d_model=36,
                            encoder_attention_heads=9, decoder_attention_heads=4, encoder_layers=3, decoder_layers=2),
    "tanh-untied": dict(activation_function="tanh", tie_word_embeddings=False, scale_embedding=True, d_model=42,
                        encoder_attention_heads=7, decoder_attention_heads=3, encoder_layers=1, decoder_layers=2),
}
HEADS = ["BartModel", "BartForConditionalGeneration", "BartForSequenceClassification",
         "BartForQuestionAnswering", "BartForCausalLM"]
EOS, PAD, VOCAB = 2, 1, 97


def config_kwargs(name: str, **overrides) -> dict:
    base = dict(vocab_size=VOCAB, encoder_ffn_dim=37, decoder_ffn_dim=29, max_position_embeddings=40,
                dropout=0.0, attention_dropout=0.0, activation_dropout=0.0)
    return {**base, **CONFIGS[name], **overrides}


def randomise(model: torch.nn.Module, seed: int) -> None:
    """Overwrite every parameter and buffer with fresh random values (padding rows too)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for tensor in list(model.parameters()) + list(model.buffers()):
            if tensor.is_floating_point():
                tensor.copy_(torch.randn(tensor.shape, generator=gen) * 0.3)


def make_pair(head: str, name: str = "gelu", seed: int = 0, attn: str = "sdpa", **overrides):
    """(transformers model, pygen model) with identical random weights, both in eval mode."""
    kwargs = config_kwargs(name, **overrides)
    hf = getattr(transformers, head)._from_config(transformers.BartConfig(**kwargs), attn_implementation=attn)
    randomise(hf, seed)
    ours = getattr(pb, head)(pb.BartConfig.from_dict(hf.config.to_dict()))
    result = ours.load_state_dict(hf.state_dict(), strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    if head == "BartForCausalLM":
        # transformers sizes this model's cache by num_hidden_layers (= encoder_layers), which
        # fails for deeper decoders; the encoder is unused here, so only the cache sees this.
        hf.config.encoder_layers = max(hf.config.encoder_layers, hf.config.decoder_layers)
    return hf.eval(), ours.eval()


def random_batch(batch: int, src_len: int, tgt_len: int, seed: int, vocab: int = VOCAB):
    """Token ids (one <eos> per row, at its last real position) and random padding masks."""
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, vocab, (batch, src_len), generator=gen)
    mask = (torch.rand(batch, src_len, generator=gen) > 0.25).long()
    mask[:, 0] = 1
    mask[0] = 1  # one row without padding
    lengths = torch.randint(src_len // 2, src_len + 1, (batch,), generator=gen)
    lengths[0] = src_len
    for row, n in enumerate(lengths.tolist()):
        ids[row, n - 1] = EOS
        ids[row, n:] = PAD
        mask[row, n:] = 0
    dec_ids = torch.randint(3, vocab, (batch, tgt_len), generator=gen)
    dec_mask = (torch.rand(batch, tgt_len, generator=gen) > 0.25).long()
    dec_mask[:, 0] = 1
    return ids, mask, dec_ids, dec_mask


def assert_close(ours, ref, atol=ATOL, what=""):
    assert ours.shape == ref.shape, f"{what}: shape {tuple(ours.shape)} vs {tuple(ref.shape)}"
    diff = (ours.float() - ref.float()).abs().max().item()
    assert diff <= atol, f"{what}: max abs diff {diff:.3g} > {atol}"


def assert_same_outputs(ours, ref, fields, atol=ATOL):
    for field in fields:
        a, b = getattr(ours, field), getattr(ref, field)
        if b is None:
            assert a is None, field
        elif isinstance(b, tuple):
            assert isinstance(a, tuple) and len(a) == len(b), f"{field}: {len(a)} vs {len(b)} items"
            for i, (x, y) in enumerate(zip(a, b)):
                assert_close(x, y, atol, f"{field}[{i}]")
        else:
            assert_close(a, b, atol, field)


def head_inputs(head: str, seed: int, batch: int = 3, src_len: int = 11, tgt_len: int = 7):
    ids, mask, dec_ids, dec_mask = random_batch(batch, src_len, tgt_len, seed)
    if head == "BartForCausalLM":
        return dict(input_ids=dec_ids, attention_mask=dec_mask)
    if head == "BartForSequenceClassification":  # pools at <eos> of the decoder fed with the shifted input
        return dict(input_ids=ids, attention_mask=mask)
    return dict(input_ids=ids, attention_mask=mask, decoder_input_ids=dec_ids, decoder_attention_mask=dec_mask)


OUTPUT_FIELDS = {
    "BartModel": ["last_hidden_state", "encoder_last_hidden_state"],
    "BartForConditionalGeneration": ["logits", "encoder_last_hidden_state"],
    "BartForSequenceClassification": ["logits", "encoder_last_hidden_state"],
    "BartForQuestionAnswering": ["start_logits", "end_logits", "encoder_last_hidden_state"],
    "BartForCausalLM": ["logits"],
}


def assert_same_cache(cache: KVCache, ref_cache, n_layers: int) -> None:
    """pygen's cache holds the reference's keys/values, in [batch, len, heads, dim] layout."""
    self_cache = getattr(ref_cache, "self_attention_cache", ref_cache)
    assert cache.get_seq_length() == self_cache.get_seq_length()
    for layer in range(n_layers):
        k_ref, v_ref = self_cache.layers[layer].keys, self_cache.layers[layer].values
        n = k_ref.shape[2]
        assert_close(cache.keys[layer][:, :n], k_ref.transpose(1, 2), what=f"self keys {layer}")
        assert_close(cache.values[layer][:, :n], v_ref.transpose(1, 2), what=f"self values {layer}")
        if hasattr(ref_cache, "cross_attention_cache"):
            cross = ref_cache.cross_attention_cache.layers[layer]
            k, v = cache.get_cross(layer)
            assert_close(k, cross.keys.transpose(1, 2), what=f"cross keys {layer}")
            assert_close(v, cross.values.transpose(1, 2), what=f"cross values {layer}")


# ---- configuration ----------------------------------------------------------------------------


def test_config_defaults_match_transformers():
    ref = transformers.BartConfig().to_dict()
    ours = pb.BartConfig().to_dict()
    for key, value in ref.items():
        if key in ("transformers_version", "_name_or_path", "dtype"):
            continue
        assert ours.get(key) == value, f"{key}: {ours.get(key)!r} vs {value!r}"
    assert pb.BartConfig().num_labels == 3


def test_config_reads_and_writes_every_field(tmp_path):
    hf = transformers.BartConfig(vocab_size=123, d_model=48, encoder_layers=3, decoder_layers=5,
                                 activation_function="gelu_new", scale_embedding=True, forced_bos_token_id=0,
                                 forced_eos_token_id=[2, 3], eos_token_id=[2, 3], decoder_start_token_id=0,
                                 tie_word_embeddings=False, dropout=0.2, attention_dropout=0.05,
                                 activation_dropout=0.15, classifier_dropout=0.3, encoder_layerdrop=0.1,
                                 decoder_layerdrop=0.2, max_position_embeddings=77, init_std=0.05, num_labels=5,
                                 add_final_layer_norm=True, normalize_before=True)
    hf.save_pretrained(tmp_path / "hf")
    ours = pb.BartConfig.from_pretrained(tmp_path / "hf")
    written = json.loads((tmp_path / "hf" / "config.json").read_text())
    for key, value in written.items():
        if key in ("transformers_version", "model_type", "dtype"):
            continue
        got = getattr(ours, key)
        if key == "id2label":
            value = {int(k): v for k, v in value.items()}
        assert got == value, f"{key}: {got!r} vs {value!r}"
    # mBART-style flags are kept as transformers keeps them (BART's layers ignore them).
    assert ours.add_final_layer_norm is True and ours.normalize_before is True
    assert ours.hidden_size == 48 and ours.num_attention_heads == ours.encoder_attention_heads
    assert ours.num_hidden_layers == 3 and ours.num_labels == 5

    ours.save_pretrained(tmp_path / "ours")
    back = transformers.BartConfig.from_pretrained(tmp_path / "ours")
    for key in written:
        if key not in ("transformers_version", "dtype"):
            assert getattr(back, key) == getattr(hf, key), key


def test_config_num_labels():
    assert pb.BartConfig(num_labels=5).num_labels == 5
    for kwargs in (dict(id2label={0: "a", 1: "b"}, num_labels=5), dict(id2label={0: "a", 1: "b"}, num_labels=2),
                   dict(id2label={0: "a", 1: "b", 2: "c"}), dict(num_labels=4), {}):
        ours, ref = pb.BartConfig(**kwargs), transformers.BartConfig(**kwargs)  # given both, num_labels wins
        assert (ours.num_labels, ours.id2label, ours.label2id) == (ref.num_labels, ref.id2label, ref.label2id)
    config = pb.BartConfig()
    config.num_labels = 2
    assert config.id2label == {0: "LABEL_0", 1: "LABEL_1"} and config.label2id == {"LABEL_0": 0, "LABEL_1": 1}


def test_config_errors():
    with pytest.raises(ConfigError, match="d_model"):
        pb.BartConfig(d_model="16")
    with pytest.raises(ConfigError, match="eos_token_id"):
        pb.BartConfig(eos_token_id="2")
    with pytest.raises(ConfigError, match="divisible"):
        pb.BartModel(pb.BartConfig(vocab_size=10, d_model=10, encoder_attention_heads=3, encoder_layers=1,
                                   decoder_layers=1, encoder_ffn_dim=8, decoder_ffn_dim=8))
    with pytest.raises(ConfigError, match="activation_function"):
        pb.BartModel(pb.BartConfig(vocab_size=10, d_model=8, encoder_attention_heads=2, decoder_attention_heads=2,
                                   encoder_layers=1, decoder_layers=1, encoder_ffn_dim=8, decoder_ffn_dim=8,
                                   activation_function="swiglu"))


@pytest.mark.parametrize("name", sorted(ACT2FN))
def test_activations_match_transformers(name):
    x = torch.randn(4, 257) * 4
    assert torch.equal(ACT2FN[name](x), HF_ACT2FN[name](x)), name


def test_every_parameter_free_activation_of_transformers_is_there():
    from transformers.activations import ACT2CLS
    assert set(ACT2CLS) - set(ACT2FN) == {"prelu", "xielu"}  # the two with learned weights


# ---- forward parity -----------------------------------------------------------------------


@pytest.mark.parametrize("name", list(CONFIGS))
@pytest.mark.parametrize("head", HEADS)
def test_forward_parity(head, name):
    hf, ours = make_pair(head, name, seed=len(name))
    inputs = head_inputs(head, seed=7 + len(name))
    with torch.no_grad():
        ref = hf(**inputs)
        out = ours(**inputs)
    assert_same_outputs(out, ref, OUTPUT_FIELDS[head])
    assert_same_cache(out.past_key_values, ref.past_key_values, ours.config.decoder_layers)


@pytest.mark.parametrize("head", HEADS)
def test_forward_parity_with_grad_path(head):
    """Outside no_grad attention takes its differentiable path; results must not change."""
    hf, ours = make_pair(head, "relu-scaled", seed=3)
    inputs = head_inputs(head, seed=11)
    ref = hf(**inputs)
    out = ours(**inputs)
    assert_same_outputs(out, ref, OUTPUT_FIELDS[head])


def test_fully_masked_rows_match_reference():
    """A source row that is all padding, and decoder rows whose first positions are padding."""
    hf, ours = make_pair("BartForConditionalGeneration", "gelu_new-scaled", seed=5)
    ids, mask, dec_ids, dec_mask = random_batch(3, 9, 6, seed=5)
    mask[2] = 0
    dec_mask[1, :3] = 0
    inputs = dict(input_ids=ids, attention_mask=mask, decoder_input_ids=dec_ids, decoder_attention_mask=dec_mask)
    with torch.no_grad():
        assert_same_outputs(ours(**inputs), hf(**inputs), ["logits", "encoder_last_hidden_state"])


@pytest.mark.parametrize("head", HEADS)
def test_attentions_and_hidden_states_match_eager(head):
    hf, ours = make_pair(head, "gelu_new-scaled", seed=9, attn="eager")
    inputs = head_inputs(head, seed=13)  # every query sees a key here: see the test below for those that do not
    with torch.no_grad():
        ref = hf(**inputs, output_attentions=True, output_hidden_states=True)
        out = ours(**inputs, output_attentions=True, output_hidden_states=True)
    if head == "BartForCausalLM":
        fields = ["logits", "hidden_states", "attentions", "cross_attentions"]
    else:
        fields = OUTPUT_FIELDS[head] + ["decoder_hidden_states", "decoder_attentions", "cross_attentions",
                                        "encoder_hidden_states", "encoder_attentions"]
    assert_same_outputs(out, ref, fields)


def _zero_rows_without_keys(probs: torch.Tensor) -> torch.Tensor:
    """transformers' eager probabilities with the rows of queries that see no key set to 0 (eager
    spreads them evenly: every entry equal, i.e. 1 / kv_len)."""
    uniform = (probs - 1.0 / probs.shape[-1]).abs().amax(dim=-1, keepdim=True) < 1e-6
    return probs.masked_fill(uniform, 0.0)


@pytest.mark.parametrize("head", ["BartForConditionalGeneration", "BartForCausalLM"])
def test_output_attentions_does_not_change_logits(head):
    """Queries that see no key (an all-padding source row, left-padded decoder rows): the logits are
    those of transformers' default sdpa attention with or without output_attentions, and their
    probability rows are 0 (transformers' eager attention spreads them evenly instead, and with its
    default sdpa attention returns no probabilities)."""
    hf_sdpa, ours = make_pair(head, "gelu_new-scaled", seed=31)
    hf_eager = make_pair(head, "gelu_new-scaled", seed=31, attn="eager")[0]
    inputs = head_inputs(head, seed=31)
    if head == "BartForCausalLM":
        inputs["attention_mask"][1, :3] = 0
        fields = ["attentions"]
    else:
        inputs["attention_mask"][2] = 0
        inputs["decoder_attention_mask"][1, :2] = 0
        fields = ["decoder_attentions", "cross_attentions", "encoder_attentions"]
    with torch.no_grad():
        ref = hf_sdpa(**inputs)
        plain = ours(**inputs)
        with_probs = ours(**inputs, output_attentions=True)
        eager = hf_eager(**inputs, output_attentions=True)
    assert_close(plain.logits, ref.logits, what="logits")
    assert torch.equal(with_probs.logits, plain.logits) or (with_probs.logits - plain.logits).abs().max() < 1e-5
    assert_close(with_probs.logits, ref.logits, what="logits with output_attentions")
    n_zero_rows = 0
    for field in fields:
        for i, (ours_probs, eager_probs) in enumerate(zip(getattr(with_probs, field), getattr(eager, field))):
            sums = ours_probs.sum(-1)
            assert torch.all((sums == 0) | ((sums - 1).abs() < 1e-5)), f"{field}[{i}]"
            n_zero_rows += int((sums == 0).sum())
            if i == 0 and field != "cross_attentions":
                # The first self-attention sees the same inputs as eager's; later layers (and the
                # cross-attention after the decoder's first self-attention) see the states that
                # differ where eager spread a query's weight evenly.
                assert_close(ours_probs, _zero_rows_without_keys(eager_probs), what=f"{field}[{i}]")
    assert n_zero_rows > 0  # the case under test did occur


def test_causal_lm_with_cross_attention():
    hf, ours = make_pair("BartForCausalLM", "silu-untied", seed=4, attn="eager")
    _, _, dec_ids, dec_mask = random_batch(2, 5, 6, seed=4)
    enc = torch.randn(2, 8, ours.config.d_model)
    enc_mask = torch.ones(2, 8, dtype=torch.long)
    enc_mask[1, 5:] = 0
    inputs = dict(input_ids=dec_ids, attention_mask=dec_mask, encoder_hidden_states=enc,
                  encoder_attention_mask=enc_mask)
    with torch.no_grad():
        assert_same_outputs(ours(**inputs), hf(**inputs), ["logits"])
        fields = ["logits", "attentions", "cross_attentions", "hidden_states"]
        assert_same_outputs(ours(**inputs, output_attentions=True, output_hidden_states=True),
                            hf(**inputs, output_attentions=True, output_hidden_states=True), fields)


def test_inputs_embeds_and_encoder_outputs():
    hf, ours = make_pair("BartForConditionalGeneration", "relu-scaled", seed=21)
    ids, mask, dec_ids, dec_mask = random_batch(2, 8, 5, seed=21)
    embeds = torch.randn(2, 8, ours.config.d_model)
    dec_embeds = torch.randn(2, 5, ours.config.d_model)
    with torch.no_grad():
        ref = hf(inputs_embeds=embeds, attention_mask=mask, decoder_inputs_embeds=dec_embeds)
        out = ours(inputs_embeds=embeds, attention_mask=mask, decoder_inputs_embeds=dec_embeds)
        assert_same_outputs(out, ref, ["logits", "encoder_last_hidden_state"])
        enc = ours.get_encoder()(input_ids=ids, attention_mask=mask)
        hf_enc = hf.get_encoder()(input_ids=ids, attention_mask=mask)
        for given in (enc, (enc.last_hidden_state,), enc.to_tuple(), hf_enc):
            via = ours(encoder_outputs=given, attention_mask=mask, decoder_input_ids=dec_ids)
            direct = ours(input_ids=ids, attention_mask=mask, decoder_input_ids=dec_ids)
            assert_close(via.logits, direct.logits)


def test_decoder_inputs_default_to_shifted_input_ids():
    hf, ours = make_pair("BartModel", "gelu", seed=2)
    ids, mask, _, _ = random_batch(3, 9, 1, seed=2)
    with torch.no_grad():
        assert_same_outputs(ours(input_ids=ids, attention_mask=mask), hf(input_ids=ids, attention_mask=mask),
                            ["last_hidden_state"])
    labels = torch.tensor([[5, 6, -100, 7]])
    assert pb.shift_tokens_right(labels, PAD, EOS).tolist() == [[EOS, 5, 6, PAD]]
    ref = transformers.models.bart.modeling_bart.shift_tokens_right(labels, PAD, EOS)
    assert torch.equal(pb.shift_tokens_right(labels, PAD, EOS), ref)


# ---- losses and training --------------------------------------------------------------------


def lm_labels(batch: int, length: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, VOCAB, (batch, length), generator=gen)
    labels[torch.rand(batch, length, generator=gen) < 0.3] = -100
    return labels


def test_lm_losses_match():
    hf, ours = make_pair("BartForConditionalGeneration", "silu-untied", seed=8)
    ids, mask, _, _ = random_batch(3, 10, 1, seed=8)
    labels = lm_labels(3, 6, seed=8)
    with torch.no_grad():
        ref, out = hf(input_ids=ids, attention_mask=mask, labels=labels), ours(input_ids=ids, attention_mask=mask,
                                                                                 labels=labels)
    assert abs(out.loss.item() - ref.loss.item()) <= 1e-5
    assert_close(out.logits, ref.logits)
    assert out.past_key_values is None and ref.past_key_values is None  # labels turn the cache off

    hf, ours = make_pair("BartForCausalLM", "tanh-untied", seed=8)
    _, _, dec_ids, dec_mask = random_batch(3, 4, 6, seed=9)
    with torch.no_grad():
        ref = hf(input_ids=dec_ids, attention_mask=dec_mask, labels=labels)
        out = ours(input_ids=dec_ids, attention_mask=dec_mask, labels=labels)
        assert abs(out.loss.item() - ref.loss.item()) <= 1e-5
        ref_kept = hf(input_ids=dec_ids, logits_to_keep=2).logits
        assert_close(ours(input_ids=dec_ids, logits_to_keep=2).logits, ref_kept)


@pytest.mark.parametrize("kind", ["single_label_classification", "regression", "multi_label_classification"])
def test_classification_losses_match(kind):
    num_labels = 1 if kind == "regression" else 4
    hf, ours = make_pair("BartForSequenceClassification", "gelu", seed=12, num_labels=num_labels)
    ids, mask, _, _ = random_batch(3, 9, 1, seed=12)
    gen = torch.Generator().manual_seed(12)
    if kind == "single_label_classification":
        labels = torch.randint(0, num_labels, (3,), generator=gen)
    elif kind == "regression":
        labels = torch.randn(3, generator=gen)
    else:
        labels = (torch.rand(3, num_labels, generator=gen) > 0.5).float()
    with torch.no_grad():
        ref = hf(input_ids=ids, attention_mask=mask, labels=labels)
        out = ours(input_ids=ids, attention_mask=mask, labels=labels)
    assert ours.config.problem_type == hf.config.problem_type == kind
    assert abs(out.loss.item() - ref.loss.item()) <= 1e-5
    assert_close(out.logits, ref.logits)


def test_question_answering_loss_matches():
    hf, ours = make_pair("BartForQuestionAnswering", "relu-scaled", seed=14)
    inputs = head_inputs("BartForQuestionAnswering", seed=14)
    starts, ends = torch.tensor([0, 3, 50]), torch.tensor([[2], [6], [1]])  # 50: outside, ignored
    with torch.no_grad():
        ref = hf(**inputs, start_positions=starts, end_positions=ends)
        out = ours(**inputs, start_positions=starts, end_positions=ends)
    assert abs(out.loss.item() - ref.loss.item()) <= 1e-5
    assert ours.config.num_labels == 2


@pytest.mark.parametrize("head,name", [("BartForConditionalGeneration", "gelu"),
                                       ("BartForConditionalGeneration", "tanh-untied"),
                                       ("BartForCausalLM", "relu-scaled")])
def test_training_gradients_match(head, name):
    hf, ours = make_pair(head, name, seed=15)
    hf.train(), ours.train()
    ids, mask, dec_ids, dec_mask = random_batch(3, 9, 6, seed=15)
    labels = lm_labels(3, 6, seed=15)
    if head == "BartForCausalLM":
        inputs = dict(input_ids=dec_ids, attention_mask=dec_mask, labels=labels)
    else:
        inputs = dict(input_ids=ids, attention_mask=mask, decoder_attention_mask=dec_mask, labels=labels)
    hf(**inputs).loss.backward()
    ours(**inputs).loss.backward()
    ref_grads = dict(hf.named_parameters())
    # k_proj.bias has an exact gradient of 0 (softmax ignores a shift shared by all keys), so its
    # values are rounding noise: measure errors against at least a thousandth of the largest gradient.
    floor = 1e-3 * max(p.grad.abs().max().item() for p in hf.parameters() if p.grad is not None)
    for pname, param in ours.named_parameters():
        g_ref = ref_grads[pname].grad
        assert (param.grad is None) == (g_ref is None), pname
        if g_ref is None:
            continue
        scale = max(g_ref.abs().max().item(), floor)
        rel = ((param.grad - g_ref).abs().max() / scale).item()
        assert rel <= 1e-4, f"{pname}: relative gradient diff {rel:.3g}"


def test_dropout_in_train_mode_and_determinism_in_eval():
    _, ours = make_pair("BartForConditionalGeneration", "gelu", seed=16, dropout=0.3, attention_dropout=0.2,
                        activation_dropout=0.1)
    inputs = head_inputs("BartForConditionalGeneration", seed=16)
    with torch.no_grad():
        a, b = ours(**inputs).logits, ours(**inputs).logits
        assert torch.equal(a, b)
        ours.train()
        c, d = ours(**inputs).logits, ours(**inputs).logits
    assert not torch.allclose(c, d)


# ---- caching and the generation protocol ---------------------------------------------------


def test_incremental_decoding_equals_full_forward():
    hf, ours = make_pair("BartForConditionalGeneration", "relu-scaled", seed=17)
    ids, mask, dec_ids, dec_mask = random_batch(2, 9, 7, seed=17)
    dec_mask[:] = 1
    dec_mask[1, 2] = 0  # a padded position inside the decoder input
    with torch.no_grad():
        full = ours(input_ids=ids, attention_mask=mask, decoder_input_ids=dec_ids, decoder_attention_mask=dec_mask)
        assert_close(full.logits, hf(input_ids=ids, attention_mask=mask, decoder_input_ids=dec_ids,
                                     decoder_attention_mask=dec_mask).logits)
        enc = (full.encoder_last_hidden_state,)
        step = ours(encoder_outputs=enc, attention_mask=mask, decoder_input_ids=dec_ids[:, :3],
                    decoder_attention_mask=dec_mask[:, :3], use_cache=True)
        cache, pieces = step.past_key_values, [step.logits]
        for t in range(3, 7):
            step = ours(encoder_outputs=enc, attention_mask=mask, decoder_input_ids=dec_ids[:, t:t + 1],
                        decoder_attention_mask=dec_mask[:, :t + 1], past_key_values=cache, use_cache=True)
            assert step.past_key_values is cache
            pieces.append(step.logits)
    assert cache.get_seq_length() == 7
    assert_close(torch.cat(pieces, dim=1), full.logits)


def test_cached_decoder_without_encoder_states_skips_cross_attention():
    """As transformers: a cached decoder forward given no encoder_hidden_states runs no
    cross-attention (only generation's caches attend to the source they hold)."""
    hf, ours = make_pair("BartModel", "gelu", seed=19)
    ids, mask, dec_ids, _ = random_batch(2, 9, 7, seed=19)

    def second_step(model):
        enc = model.encoder(input_ids=ids, attention_mask=mask).last_hidden_state
        first = model.decoder(input_ids=dec_ids[:, :4], encoder_hidden_states=enc, encoder_attention_mask=mask,
                              use_cache=True)
        return model.decoder(input_ids=dec_ids[:, 4:], past_key_values=first.past_key_values).last_hidden_state

    with torch.no_grad():
        assert_close(second_step(ours), second_step(hf))


@pytest.mark.parametrize("beams", [1, 3])
def test_generation_protocol_seq2seq(beams):
    hf, ours = make_pair("BartForConditionalGeneration", "gelu_new-scaled", seed=18)
    ids, mask, dec_ids, _ = random_batch(2, 9, 6, seed=18)
    dec_ids = dec_ids.repeat_interleave(beams, dim=0)
    with torch.no_grad():
        enc = ours.gen_encode(ids, mask)
        cache = ours.gen_new_cache(enc, mask, batch_size=2 * beams, kv_group=beams, capacity=8)
        buffers = [cache.keys[0].data_ptr(), cache.values[-1].data_ptr()]
        pieces = [ours.gen_step(dec_ids[:, :2], cache)]
        for t in range(2, 6):
            pieces.append(ours.gen_step(dec_ids[:, t:t + 1], cache))
        ref = hf(input_ids=ids.repeat_interleave(beams, 0), attention_mask=mask.repeat_interleave(beams, 0),
                 decoder_input_ids=dec_ids).logits
    assert cache.length == 6 and cache.reallocations == 0
    assert [cache.keys[0].data_ptr(), cache.values[-1].data_ptr()] == buffers
    assert cache.get_cross(0)[0].shape[0] == 2  # cross keys stay at the source batch size
    assert_close(torch.cat(pieces, dim=1), ref)


def test_generation_protocol_causal_lm_left_padding():
    hf, ours = make_pair("BartForCausalLM", "silu-untied", seed=19)
    _, _, ids, _ = random_batch(2, 4, 7, seed=19)
    mask = torch.ones(2, 7, dtype=torch.long)
    mask[1, :3] = 0  # left padding of a shorter prompt
    with torch.no_grad():
        assert ours.gen_encode(ids, mask) is None
        cache = ours.gen_new_cache(None, None, batch_size=2, kv_group=1, capacity=7)
        pieces = [ours.gen_step(ids[:, :5], cache, mask[:, :5])]
        pieces += [ours.gen_step(ids[:, t:t + 1], cache, mask[:, :t + 1]) for t in range(5, 7)]
        ref = hf(input_ids=ids, attention_mask=mask).logits
    assert cache.reallocations == 0
    assert_close(torch.cat(pieces, dim=1), ref)


@pytest.mark.parametrize("kwargs", [dict(max_new_tokens=6), dict(num_beams=3, max_new_tokens=6)])
def test_generate_matches_transformers(kwargs):
    """End to end through GenerationMixin.generate, which drives the protocol above."""
    hf, ours = make_pair("BartForConditionalGeneration", "gelu_new-scaled", seed=27)
    ids, mask, _, _ = random_batch(3, 9, 1, seed=27)
    assert torch.equal(ours.generate(input_ids=ids, attention_mask=mask, **kwargs),
                       hf.generate(input_ids=ids, attention_mask=mask, **kwargs))
    hf, ours = make_pair("BartForCausalLM", "silu-untied", seed=27)
    _, _, prompt, _ = random_batch(2, 2, 5, seed=28)
    prompt_mask = torch.ones_like(prompt)
    prompt[1, :2], prompt_mask[1, :2] = PAD, 0  # left padding
    assert torch.equal(ours.generate(input_ids=prompt, attention_mask=prompt_mask, **kwargs),
                       hf.generate(input_ids=prompt, attention_mask=prompt_mask, **kwargs))


# ---- outputs ---------------------------------------------------------------------------------


def test_model_output_behaves_like_transformers():
    hf, ours = make_pair("BartForConditionalGeneration", "gelu", seed=20)
    inputs = head_inputs("BartForConditionalGeneration", seed=20)
    with torch.no_grad():
        out = ours(**inputs, use_cache=False)
        ref = hf(**inputs, use_cache=False)
        tup = ours(**inputs, use_cache=False, return_dict=False)
        ref_tup = hf(**inputs, use_cache=False, return_dict=False)
    assert isinstance(out, Seq2SeqLMOutput)
    assert list(out.keys()) == list(ref.keys()) == ["logits", "encoder_last_hidden_state"]
    assert out[0] is out.logits and out["logits"] is out.logits and out.loss is None
    assert isinstance(tup, tuple) and len(tup) == len(ref_tup) == 2
    for a, b in zip(tup, ref_tup):
        assert_close(a, b)
    assert list(copy.deepcopy(out).keys()) == list(out.keys())


# ---- weights: init, tying, checkpoints --------------------------------------------------------


def test_init_and_tying():
    config = pb.BartConfig(**config_kwargs("gelu", init_std=0.05, vocab_size=500, d_model=64,
                                           encoder_attention_heads=4, decoder_attention_heads=4))
    model = pb.BartForConditionalGeneration(config)
    shared = model.model.shared.weight
    assert model.lm_head.weight is shared
    assert model.model.encoder.embed_tokens.weight is shared and model.model.decoder.embed_tokens.weight is shared
    assert abs(shared.std().item() - 0.05) < 0.005
    assert torch.equal(shared[PAD], torch.zeros(64))
    assert torch.equal(model.final_logits_bias, torch.zeros(1, 500))
    ln = model.model.encoder.layers[0].final_layer_norm
    assert torch.equal(ln.weight, torch.ones(64)) and torch.equal(ln.bias, torch.zeros(64))
    assert torch.equal(model.model.decoder.layers[0].fc1.bias, torch.zeros(config.decoder_ffn_dim))

    untied = pb.BartForConditionalGeneration(pb.BartConfig(**config_kwargs("silu-untied")))
    params = [untied.lm_head.weight, untied.model.shared.weight, untied.model.encoder.embed_tokens.weight,
              untied.model.decoder.embed_tokens.weight]
    assert len({p.data_ptr() for p in params}) == 4
    causal = pb.BartForCausalLM(pb.BartConfig(**config_kwargs("gelu")))
    assert causal.lm_head.weight is causal.model.decoder.embed_tokens.weight
    assert causal.config.is_decoder and not causal.config.is_encoder_decoder


@pytest.mark.parametrize("name", ["gelu", "tanh-untied"])
def test_pygen_checkpoint_loads_in_transformers(tmp_path, name):
    _, ours = make_pair("BartForConditionalGeneration", name, seed=22)
    ours.save_pretrained(tmp_path)
    hf = transformers.BartForConditionalGeneration.from_pretrained(tmp_path).eval()
    inputs = head_inputs("BartForConditionalGeneration", seed=22)
    with torch.no_grad():
        assert_same_outputs(ours(**inputs), hf(**inputs), ["logits"])
    assert hf.config.tie_word_embeddings == ours.config.tie_word_embeddings


@pytest.mark.parametrize("name", ["gelu", "tanh-untied"])
def test_transformers_checkpoint_loads_in_pygen(tmp_path, name):
    hf, _ = make_pair("BartForConditionalGeneration", name, seed=23)
    hf.save_pretrained(tmp_path)
    ours, info = pb.BartForConditionalGeneration.from_pretrained(tmp_path, output_loading_info=True)
    assert info == {"missing_keys": set(), "unexpected_keys": set(), "mismatched_keys": set(), "error_msgs": []}
    inputs = head_inputs("BartForConditionalGeneration", seed=23)
    with torch.no_grad():
        assert_same_outputs(ours(**inputs), hf(**inputs), ["logits"])
    assert ours.generation_config.forced_eos_token_id == EOS


def test_base_model_checkpoint_loads_into_head_and_back(tmp_path):
    base, _ = make_pair("BartModel", "relu-scaled", seed=24)
    base.save_pretrained(tmp_path / "base")
    ours, info = pb.BartForConditionalGeneration.from_pretrained(tmp_path / "base", output_loading_info=True)
    hf, hf_info = transformers.BartForConditionalGeneration.from_pretrained(tmp_path / "base", output_loading_info=True)
    assert info == hf_info  # final_logits_bias (zeros, absent from older checkpoints) is not reported
    hf = hf.eval()
    # a vocabulary of another size: mismatched_keys as transformers lists them
    kwargs = dict(vocab_size=base.config.vocab_size + 3, ignore_mismatched_sizes=True, output_loading_info=True)
    _, info = pb.BartForConditionalGeneration.from_pretrained(tmp_path / "base", **kwargs)
    _, hf_info = transformers.BartForConditionalGeneration.from_pretrained(tmp_path / "base", **kwargs)
    assert info["mismatched_keys"] == hf_info["mismatched_keys"] and info["mismatched_keys"]
    inputs = head_inputs("BartForConditionalGeneration", seed=24)
    with torch.no_grad():
        assert_same_outputs(ours(**inputs), hf(**inputs), ["logits", "encoder_last_hidden_state"])

    hf.save_pretrained(tmp_path / "head")
    ours_base = pb.BartModel.from_pretrained(tmp_path / "head")
    with torch.no_grad():
        assert_same_outputs(ours_base(**inputs), base(**inputs), ["last_hidden_state"])


def test_checkpoint_shape_mismatch_is_an_error(tmp_path):
    hf, _ = make_pair("BartForConditionalGeneration", "gelu", seed=25)
    hf.save_pretrained(tmp_path)
    config = pb.BartConfig.from_pretrained(tmp_path)
    config.decoder_ffn_dim = 31
    with pytest.raises(CheckpointError, match="fc1"):
        pb.BartForConditionalGeneration.from_pretrained(tmp_path, config=config)


# ---- bad inputs ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_model():
    return pb.BartForConditionalGeneration(pb.BartConfig(**config_kwargs("gelu"))).eval()


@pytest.mark.parametrize("make,match", [
    (lambda ids, m: dict(input_ids=ids.clone().fill_(VOCAB)), "outside the vocabulary"),
    (lambda ids, m: dict(input_ids=ids.clone().fill_(-1)), "outside the vocabulary"),
    (lambda ids, m: dict(input_ids=ids.float()), "integer"),
    (lambda ids, m: dict(input_ids=ids[0]), r"\[batch, length\]"),
    (lambda ids, m: dict(input_ids=ids[:0]), "empty"),
    (lambda ids, m: dict(input_ids=ids[:, :0]), "empty"),
    (lambda ids, m: dict(input_ids=torch.randint(3, VOCAB, (2, 41))), "max_position_embeddings"),
    (lambda ids, m: dict(input_ids=ids, attention_mask=m[:, :-1]), "attention_mask must have shape"),
    (lambda ids, m: dict(input_ids=ids, attention_mask=m[:1]), "attention_mask must have shape"),
    (lambda ids, m: dict(input_ids=ids, attention_mask=[[1] * 9] * 2), "torch.Tensor"),
    (lambda ids, m: dict(input_ids=ids, decoder_input_ids=ids.clone().fill_(VOCAB + 5)), "decoder_input_ids"),
    (lambda ids, m: dict(input_ids=ids, decoder_input_ids=torch.randint(3, VOCAB, (2, 41))),
     "max_position_embeddings"),
    (lambda ids, m: dict(input_ids=ids, decoder_input_ids=ids, decoder_attention_mask=m[:, :3]),
     "decoder_attention_mask must have shape"),
    (lambda ids, m: dict(input_ids=ids, labels=ids.clone().fill_(VOCAB)), "labels"),
    (lambda ids, m: dict(input_ids=ids, labels=ids.float()), "labels"),
    (lambda ids, m: dict(input_ids=ids, past_key_values=((None,),)), "KVCache"),
    (lambda ids, m: dict(inputs_embeds=torch.randn(2, 9, 5), decoder_input_ids=ids), "inputs_embeds"),
    (lambda ids, m: dict(inputs_embeds=torch.randn(2, 9, 24).long(), decoder_input_ids=ids), "floating"),
    (lambda ids, m: dict(encoder_outputs=torch.randn(2, 9, 24), decoder_input_ids=ids), "encoder_outputs"),
    (lambda ids, m: dict(), "decoder_input_ids"),
])
def test_bad_inputs_raise_clear_errors(small_model, make, match):
    ids = torch.randint(3, VOCAB, (2, 9))
    mask = torch.ones(2, 9, dtype=torch.long)
    with pytest.raises(InputError, match=match):
        small_model(**make(ids, mask))


def test_sequence_classification_eos_errors_match_reference():
    hf, ours = make_pair("BartForSequenceClassification", "gelu", seed=26)
    ids = torch.randint(3, VOCAB, (2, 8))
    ids[0, 3] = ids[0, 7] = ids[1, 7] = EOS
    for model in (hf, ours):
        with pytest.raises(ValueError, match="same number of <eos> tokens"):
            model(input_ids=ids)
    ids[0, 3] = 5
    ids[:, 7] = 6
    for model in (hf, ours):
        with pytest.raises(ValueError, match="at least one <eos> token"):
            model(input_ids=ids)


def test_generation_protocol_bad_arguments(small_model):
    ids = torch.randint(3, VOCAB, (2, 5))
    enc = small_model.gen_encode(ids, None)
    with pytest.raises(InputError, match="kv_group"):
        small_model.gen_new_cache(enc, None, batch_size=3, kv_group=2, capacity=4)
    cache = small_model.gen_new_cache(enc, None, batch_size=2, kv_group=1, capacity=40)
    with pytest.raises(InputError, match="max_position_embeddings"):
        small_model.gen_step(torch.randint(3, VOCAB, (2, 41)), cache)
    with pytest.raises(InputError, match="attention_mask"):
        small_model.gen_step(ids[:, :1], cache, torch.ones(2, 3))


# ---- CUDA ----------------------------------------------------------------------------------


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_forward_and_generation_protocol():
    hf, ours = make_pair("BartForConditionalGeneration", "relu-scaled", seed=29)
    hf, ours = hf.cuda(), ours.cuda()
    ids, mask, dec_ids, dec_mask = (t.cuda() for t in random_batch(2, 9, 6, seed=29))
    with torch.no_grad():
        ref = hf(input_ids=ids, attention_mask=mask, decoder_input_ids=dec_ids)
        assert_close(ours(input_ids=ids, attention_mask=mask, decoder_input_ids=dec_ids).logits, ref.logits)
        cache = ours.gen_new_cache(ours.gen_encode(ids, mask), mask, batch_size=2, kv_group=1, capacity=6)
        steps = [ours.gen_step(dec_ids[:, t:t + 1], cache) for t in range(6)]
    assert_close(torch.cat(steps, dim=1), ref.logits)
