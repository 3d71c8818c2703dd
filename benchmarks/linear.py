"""pygen.ops.linear (skinny CPU kernel) against torch.nn.functional.linear, side by side.

The shapes of one BART-base decoder step: rows = batch x beams tokens against the 768x768
attention projections, the 3072x768 / 768x3072 feed-forward weights and the 50265x768 LM head,
plus "step": all 6 decoder layers' weights and the LM head in sequence (353 MB of float32 weights,
so every weight comes from memory, as in generation). Repetitions interleave the two; medians;
speedup = F.linear time / pygen time; GB/s = weight bytes / pygen time (the weights dominate
what a decoding-shaped product must read). Rows above 16 take F.linear inside pygen too.

    python benchmarks/linear.py --threads 1
    python benchmarks/linear.py --threads 2 --rows 1 4 8 16 32
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from machine import machine

import pygen

HIDDEN, FFN, VOCAB, LAYERS = 768, 3072, 50265, 6


def median_ms(fn, reps):
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--rows", type=int, nargs="+", default=[1, 4, 8, 16])
    ap.add_argument("--reps", type=int, default=15)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    step = []
    for _ in range(LAYERS):  # self q/k/v/out, cross q/out (cross k/v are cached), fc1, fc2
        step += [torch.randn(HIDDEN, HIDDEN) for _ in range(6)] + [torch.randn(FFN, HIDDEN), torch.randn(HIDDEN, FFN)]
    step.append(torch.randn(VOCAB, HIDDEN))
    cases = {"768x768": step[:1], "3072x768 (fc1)": step[6:7], "768x3072 (fc2)": step[7:8],
             "50265x768 (LM head)": step[-1:], "step (6 layers + LM head)": step}
    print(f"{machine('cpu')}, pygen kernels: {pygen.build_info()['cpu_kernels']}")
    print("| weights | rows | pygen ms | F.linear ms | speedup | pygen GB/s | max rel. diff |")
    print("|---|---|---|---|---|---|---|")
    with torch.no_grad():
        for name, weights in cases.items():
            nbytes = sum(w.numel() * w.element_size() for w in weights)
            for rows in args.rows:
                xs = {w.shape[1]: torch.randn(rows, w.shape[1]) for w in weights}

                def ours():
                    return [pygen.ops.linear(xs[w.shape[1]], w) for w in weights]

                def ref():
                    return [F.linear(xs[w.shape[1]], w) for w in weights]

                diff = max(((a - b).abs().max() / b.abs().max()).item() for a, b in zip(ours(), ref()))
                t_ours, t_ref = [], []
                for _ in range(args.reps):  # interleaved, so drifting machine load hits both alike
                    t_ours.append(median_ms(ours, 1))
                    t_ref.append(median_ms(ref, 1))
                mo, mr = statistics.median(t_ours), statistics.median(t_ref)
                print(f"| {name} | {rows} | {mo:.3f} | {mr:.3f} | **{mr / mo:.2f}x** | {nbytes / mo / 1e6:.1f} | "
                      f"{diff:.1e} |", flush=True)


if __name__ == "__main__":
    main()
