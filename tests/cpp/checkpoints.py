"""Random-weight checkpoints for the C++ engine's parity tests, and a driver of the example host.

Shared by tests/test_cpp_engine.py (pytest) and tests/cpp/example_matches_python.py (the ctest of
the same name). The checkpoints are small models of every family the C++ engine loads, saved by
transformers (the reference, pinned 5.23.0) with weights large enough that logits are well
separated, so greedy and beam search take different paths.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

import torch


def randomize(model, std=0.35):
    torch.manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "LayerNorm" in name or "layer_norm" in name or "layernorm" in name:
                p.copy_(1.0 + 0.1 * torch.randn_like(p) if name.endswith("weight") else 0.1 * torch.randn_like(p))
            else:
                p.normal_(0.0, std)
        for name, b in model.named_buffers():
            if name.endswith("final_logits_bias"):
                b.normal_(0.0, 0.5)
    return model.eval()


def _bart_config():
    from transformers import BartConfig

    return BartConfig(vocab_size=96, d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
                      decoder_attention_heads=4, encoder_ffn_dim=64, decoder_ffn_dim=48, max_position_embeddings=64,
                      scale_embedding=True, activation_function="gelu")


def _pair(encoder, decoder, start, eos, pad):
    from transformers import EncoderDecoderConfig, EncoderDecoderModel

    model = randomize(EncoderDecoderModel(EncoderDecoderConfig.from_encoder_decoder_configs(encoder, decoder)))
    model.generation_config.decoder_start_token_id = start
    model.generation_config.eos_token_id = eos
    model.generation_config.pad_token_id = pad
    return model


def _small():
    return dict(num_hidden_layers=2, num_attention_heads=4, intermediate_size=48, max_position_embeddings=64)


def _bart():
    from transformers import BartForConditionalGeneration

    return randomize(BartForConditionalGeneration(_bart_config()))


def _bart_untied():
    from transformers import BartConfig, BartForConditionalGeneration

    config = BartConfig(**{**_bart_config().to_dict(), "activation_function": "relu", "scale_embedding": False,
                           "tie_word_embeddings": False})
    return randomize(BartForConditionalGeneration(config))


def _bert2bertgen():
    from transformers import BertConfig, BertGenerationConfig

    return _pair(BertConfig(vocab_size=80, hidden_size=24, **_small()),
                 BertGenerationConfig(vocab_size=90, hidden_size=32, is_decoder=True, add_cross_attention=True,
                                      **_small()),
                 start=2, eos=1, pad=0)


def _roberta2roberta():
    from transformers import RobertaConfig

    return _pair(RobertaConfig(vocab_size=70, hidden_size=32, **_small()),
                 RobertaConfig(vocab_size=70, hidden_size=32, is_decoder=True, add_cross_attention=True,
                               hidden_act="gelu_new", **_small()),
                 start=0, eos=2, pad=1)


def _bert2bert():
    from transformers import BertConfig

    return _pair(BertConfig(vocab_size=60, hidden_size=32, **_small()),
                 BertConfig(vocab_size=60, hidden_size=32, is_decoder=True, add_cross_attention=True, **_small()),
                 start=3, eos=4, pad=0)


# name -> (model factory, save_pretrained arguments)
CHECKPOINTS = {
    "bart": (_bart, {}),
    "bart_sharded": (_bart, {"max_shard_size": "40KB"}),  # model.safetensors.index.json + shards
    "bart_untied": (_bart_untied, {}),
    "bert2bertgen": (_bert2bertgen, {}),  # BERT encoder, BertGeneration decoder, enc_to_dec_proj
    "roberta2roberta": (_roberta2roberta, {}),
    "bert2bert": (_bert2bert, {}),
}


def build(root, names=None):
    """Writes the named checkpoints under `root`; returns {name: (model, directory)}."""
    root = Path(root)
    out, made = {}, {}
    for name in names or CHECKPOINTS:
        factory, save_kwargs = CHECKPOINTS[name]
        model = made.setdefault(factory, factory())
        path = root / name
        model.save_pretrained(path, **save_kwargs)
        out[name] = (model, path)
    return out


def encoder_config(model):
    return model.config.encoder if hasattr(model.config, "encoder") else model.config


def batch_of(model, lengths, seed):
    """Random ids (no special tokens) right-padded as a tokenizer pads, with the mask."""
    config = encoder_config(model)
    gen = torch.Generator().manual_seed(seed)
    rows = [torch.randint(5, config.vocab_size, (n,), generator=gen).tolist() for n in lengths]
    ids = torch.full((len(rows), max(lengths)), config.pad_token_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row)
        mask[i, : len(row)] = 1
    return rows, ids, mask


def _ids(value):
    return ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


# generate() keyword -> the example's flag (and how its value is written)
FLAGS = {"num_beams": "--num-beams", "max_new_tokens": "--max-new-tokens", "max_length": "--max-length",
         "min_length": "--min-length", "min_new_tokens": "--min-new-tokens",
         "num_return_sequences": "--num-return-sequences", "length_penalty": "--length-penalty",
         "no_repeat_ngram_size": "--no-repeat-ngram-size", "repetition_penalty": "--repetition-penalty",
         "forced_bos_token_id": "--forced-bos-token-id", "forced_eos_token_id": "--forced-eos-token-id",
         "eos_token_id": "--eos-token-id", "pad_token_id": "--pad-token-id",
         "decoder_start_token_id": "--decoder-start-token-id", "top_k": "--top-k", "top_p": "--top-p",
         "temperature": "--temperature"}


def example_args(binary, path, kwargs, seed=None, dtype="float32"):
    args = [str(binary), str(path), "--scores", "--dtype", dtype]
    for key, value in kwargs.items():
        if key == "do_sample":
            args.append("--do-sample")
        elif key == "early_stopping":
            args += ["--early-stopping", str(value).lower()]
        else:
            args += [FLAGS[key], _ids(value)]
    if seed is not None:
        args += ["--seed", str(seed)]
    return args


def run_example(binary, path, rows, kwargs, seed=None, dtype="float32", timeout=120):
    """Runs the example host on `rows` (lists of ids); returns (ids rows, scores)."""
    stdin = "\n".join(" ".join(map(str, row)) for row in rows) + "\n"
    result = subprocess.run(example_args(binary, path, kwargs, seed, dtype), input=stdin, capture_output=True,
                            text=True, timeout=timeout)
    if result.returncode != 0:
        raise AssertionError(f"example exited {result.returncode}: {result.stderr}")
    lines = [line.split("\t") for line in result.stdout.splitlines()]
    return [[int(t) for t in ids.split()] for ids, _ in lines], [float(score) for _, score in lines]
