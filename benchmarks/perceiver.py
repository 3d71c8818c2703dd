"""Perceiver IO masked LM (deepmind/language-perceiver shape): pygen vs transformers, side by side.

Forward throughput: both models hold the same random weights and run the same batches in one
process, alternating, so machine load hits both alike; medians and ratios are printed.
Memory (``--memory``): peak memory of one forward above the loaded model, per batch size at 2048
bytes and per input length at the largest batch. On CPU every point runs in a fresh process (the
allocator keeps freed pages, so in-process peaks would hide growth) with glibc told to map every
block over 64 KiB on its own (so RSS follows live tensors), and reads the peak RSS after resetting
it; on CUDA it uses the allocator's peak counters.

    python benchmarks/perceiver.py                      # throughput, batch 1 and 8 at 2048 bytes
    python benchmarks/perceiver.py --memory             # plus the memory sweep
    python benchmarks/perceiver.py --device cuda --dtype float16
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import time
import warnings

import torch
from machine import machine

from pygen.models.perceiver import PerceiverConfig, PerceiverForMaskedLM

# deepmind/language-perceiver's config.json
LANGUAGE_PERCEIVER = dict(num_latents=256, d_latents=1280, d_model=768, num_blocks=1, num_self_attends_per_block=26,
                          num_self_attention_heads=8, num_cross_attention_heads=8, qk_channels=256, v_channels=1280,
                          cross_attention_shape_for_attention="kv", max_position_embeddings=2048, vocab_size=262)
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def build(library: str, device: str, dtype: torch.dtype, state: dict | None = None):
    if library == "pygen":
        model = PerceiverForMaskedLM(PerceiverConfig(**LANGUAGE_PERCEIVER))
    else:
        import transformers

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = transformers.PerceiverForMaskedLM(transformers.PerceiverConfig(**LANGUAGE_PERCEIVER))
    if state is not None:
        model.load_state_dict(state)
    return model.to(device=device, dtype=dtype).eval()


def make_batch(batch: int, length: int, device: str):
    """Random bytes with right padding of random lengths, as the tokenizer produces."""
    ids = torch.randint(6, 262, (batch, length))
    real = torch.randint(length // 2, length + 1, (batch,))
    mask = (torch.arange(length)[None, :] < real[:, None]).long()
    return ids.to(device), mask.to(device)


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_forward(model, ids, mask, device: str) -> float:
    sync(device)
    start = time.perf_counter()
    with torch.no_grad():
        model(inputs=ids, attention_mask=mask)
    sync(device)
    return time.perf_counter() - start


def throughput(args) -> list[dict]:
    device, dtype = args.device, DTYPES[args.dtype]
    torch.manual_seed(0)
    ref = build("transformers", device, dtype)
    ours = build("pygen", device, dtype, state=ref.state_dict())
    rows = []
    for batch in args.batch_sizes:
        ids, mask = make_batch(batch, args.length, device)
        times = {"pygen": [], "transformers": []}
        for i in range(args.warmup + args.repeats):
            for name, model in (("pygen", ours), ("transformers", ref)):
                elapsed = time_forward(model, ids, mask, device)
                if i >= args.warmup:
                    times[name].append(elapsed)
        with torch.no_grad():
            diff = (ours(inputs=ids, attention_mask=mask).logits.float()
                    - ref(inputs=ids, attention_mask=mask).logits.float()).abs().max().item()
        med = {name: statistics.median(values) for name, values in times.items()}
        rows.append({"batch": batch, "length": args.length, "pygen_s": med["pygen"],
                     "transformers_s": med["transformers"], "speedup": med["transformers"] / med["pygen"],
                     "pygen_bytes_per_s": batch * args.length / med["pygen"], "max_abs_logit_diff": diff})
        print(f"batch {batch:2d} x {args.length}: pygen {med['pygen'] * 1e3:9.1f} ms   transformers "
              f"{med['transformers'] * 1e3:9.1f} ms   speedup x{rows[-1]['speedup']:.2f}   "
              f"max|dlogits| {diff:.1e}", flush=True)
    return rows


# ---- memory ----------------------------------------------------------------------------------
def _rss_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def measure_peak(library: str, batch: int, length: int, device: str, dtype: torch.dtype) -> float:
    """MiB one forward needs above the loaded model and inputs (run in a fresh process on CPU)."""
    torch.manual_seed(0)
    model = build(library, device, dtype)
    ids, mask = make_batch(batch, length, device)
    if device.startswith("cuda"):
        sync(device)
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        with torch.no_grad():
            model(inputs=ids, attention_mask=mask)
        sync(device)
        return (torch.cuda.max_memory_allocated() - base) / 2**20
    with open("/proc/self/clear_refs", "w") as f:  # resets the peak RSS (VmHWM) to the current RSS
        f.write("5")
    base = _rss_kib("VmRSS")
    with torch.no_grad():
        model(inputs=ids, attention_mask=mask)
    return (_rss_kib("VmHWM") - base) / 1024


def memory(args) -> list[dict]:
    points = [(b, 2048) for b in args.memory_batches] + \
             [(args.memory_batches[-1], n) for n in args.memory_lengths if n != 2048]
    rows = []
    for batch, length in points:
        row = {"batch": batch, "length": length}
        for library in ("pygen", "transformers"):
            if args.device.startswith("cuda"):
                row[library + "_mib"] = measure_peak(library, batch, length, args.device, DTYPES[args.dtype])
            else:
                out = subprocess.run(
                    [sys.executable, os.path.abspath(__file__), "--measure-one", library, str(batch), str(length),
                     "--dtype", args.dtype, "--device", args.device, "--threads", str(torch.get_num_threads())],
                    check=True, capture_output=True, text=True,
                    env={**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"})
                row[library + "_mib"] = float(out.stdout.strip().splitlines()[-1])
        rows.append(row)
        print(f"batch {batch:2d} x {length:4d}: peak above model  pygen {row['pygen_mib']:8.1f} MiB   "
              f"transformers {row['transformers_mib']:8.1f} MiB", flush=True)
    return rows



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="float32", choices=sorted(DTYPES))
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--length", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--memory", action="store_true", help="also measure peak memory per batch size and length")
    parser.add_argument("--memory-batches", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--memory-lengths", type=int, nargs="+", default=[512, 1024, 1536, 2048])
    parser.add_argument("--json", help="write the results to this file")
    parser.add_argument("--measure-one", nargs=3, metavar=("LIBRARY", "BATCH", "LENGTH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    if args.measure_one:
        library, batch, length = args.measure_one
        print(measure_peak(library, int(batch), int(length), args.device, DTYPES[args.dtype]))
        return

    print(f"{datetime.date.today()}  {machine(args.device)}  {args.dtype}")
    print("command: python " + " ".join(sys.argv), flush=True)
    results = {"date": str(datetime.date.today()), "machine": machine(args.device), "dtype": args.dtype,
               "command": "python " + " ".join(sys.argv), "throughput": throughput(args)}
    if args.memory:
        results["memory"] = memory(args)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
