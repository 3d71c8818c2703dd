"""pygen.ops.attention against torch's scaled_dot_product_attention, side by side in one process.

Each case times what a model layer does between its projections and the merged output, for
both implementations: pygen takes the [batch, len, heads, dim] views and returns [batch, len,
heads, dim]; SDPA takes the transposed [batch, heads, len, dim] views and its output is
transposed back and merged (the copy a model must make). Repetitions interleave the two, and
the report gives medians and speedup = SDPA time / pygen time.

Decode cases read K/V as views into a preallocated cache [batch, capacity, heads, dim]. For
cross-attention with beams, pygen reads one source's K/V for all its beams (kv_group), while
SDPA gets K/V already expanded per beam, as transformers' cache holds them (the expansion is
not timed).

    python benchmarks/attention.py                   # CPU, float32
    python benchmarks/attention.py --device cuda --dtype float16
    python benchmarks/attention.py --device cuda --dtype bfloat16 --only prefill --backward

--backward times forward + backward of the prefill cases (training), with the same gradient for
both. On CUDA, decode rows also give pygen's effective bandwidth: bytes of Q, K, V and output it
must move once, divided by its time (the issue's target: >= 70% of the device's HBM bandwidth).
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
import torch.nn.functional as F

import pygen
from pygen.ops import attention


def prefill_case(b, h, lq, lk, d, dv, causal=False, pad=0, device="cpu", dtype=torch.float32, backward=False):
    q = torch.randn(b, lq, h, d, device=device, dtype=dtype, requires_grad=backward)
    k = torch.randn(b, lk, h, d, device=device, dtype=dtype, requires_grad=backward)
    v = torch.randn(b, lk, h, dv, device=device, dtype=dtype, requires_grad=backward)
    grad = torch.randn(b, lq, h * dv, device=device, dtype=dtype)
    mask = None
    if pad:
        mask = torch.ones(b, lk, dtype=torch.bool, device=device)
        mask[::2, lk - pad:] = False  # every other sequence right-padded
    sdpa_mask = None if mask is None else mask[:, None, None, :]

    def ours_fwd():
        return attention(q, k, v, key_padding_mask=mask, causal=causal).reshape(b, lq, h * dv)

    def sdpa_fwd():
        o = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                           attn_mask=sdpa_mask, is_causal=causal)
        return o.transpose(1, 2).reshape(b, lq, h * dv)

    if not backward:
        return ours_fwd, sdpa_fwd

    def with_backward(fwd):
        def run():
            with torch.enable_grad():
                q.grad = k.grad = v.grad = None
                out = fwd()
                out.backward(grad)
            return out.detach()
        return run

    return with_backward(ours_fwd), with_backward(sdpa_fwd)


def decode_case(batch, beams, h, lk, d, cross, device="cpu", dtype=torch.float32, capacity=2048):
    rows = batch * beams
    q = torch.randn(rows, 1, h, d, device=device, dtype=dtype)
    if cross:  # one source per batch item, shared by its beams
        k = torch.randn(batch, lk, h, d, device=device, dtype=dtype)
        v = torch.randn(batch, lk, h, d, device=device, dtype=dtype)
        k_sdpa = k.repeat_interleave(beams, 0).transpose(1, 2).contiguous()
        v_sdpa = v.repeat_interleave(beams, 0).transpose(1, 2).contiguous()
        group = beams
    else:  # self-attention over each beam's cache prefix
        k_cache = torch.randn(rows, capacity, h, d, device=device, dtype=dtype)
        v_cache = torch.randn(rows, capacity, h, d, device=device, dtype=dtype)
        k, v = k_cache[:, :lk], v_cache[:, :lk]
        k_sdpa, v_sdpa = k.transpose(1, 2), v.transpose(1, 2)
        group = 1

    def ours():
        return attention(q, k, v, kv_group=group).reshape(rows, 1, h * d)

    ours.bytes = (q.numel() * 2 + k.numel() + v.numel()) * q.element_size()  # q in, out, K and V once

    def sdpa():
        o = F.scaled_dot_product_attention(q.transpose(1, 2), k_sdpa, v_sdpa)
        return o.transpose(1, 2).reshape(rows, 1, h * d)

    return ours, sdpa


CLOCK = time.perf_counter  # --clock cpu: time.process_time


def timed(fn, device):
    if device == "cuda":
        torch.cuda.synchronize()
    t = CLOCK()
    fn()
    if device == "cuda":
        torch.cuda.synchronize()
    return CLOCK() - t


def compare(name, ours, sdpa, reps, device):
    with torch.no_grad():
        ref = sdpa()
        out = ours()
        err = ((out.float() - ref.float()).norm() / ref.float().norm()).item()
        for _ in range(2):  # warm-up
            ours(), sdpa()
        t_ours, t_sdpa = [], []
        for _ in range(reps):  # interleaved, so drifting machine load hits both alike
            t_ours.append(timed(ours, device))
            t_sdpa.append(timed(sdpa, device))
    mo, ms = statistics.median(t_ours) * 1e3, statistics.median(t_sdpa) * 1e3
    extra = ""
    if device == "cuda":  # decode: pygen's effective bandwidth
        extra = f" {ours.bytes / (mo * 1e-3) / 1e9:.0f} |" if hasattr(ours, "bytes") else " |"
    print(f"| {name} | {mo:.3f} | {ms:.3f} | {ms / mo:.2f}x | {err:.1e} |{extra}", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    ap.add_argument("--reps", type=int, default=0, help="repetitions per case (default: 15 prefill, 1000 decode)")
    ap.add_argument("--only", choices=["prefill", "decode"], default=None)
    ap.add_argument("--backward", action="store_true", help="prefill cases time forward + backward")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                    help="wall: elapsed time; cpu: CPU time of this process (all its threads), which other "
                         "processes on a busy machine disturb much less (CPU only; use with --threads 1 to "
                         "compare with wall times)")
    args = ap.parse_args()
    global CLOCK
    if args.clock == "cpu":
        if args.device != "cpu":
            ap.error("--clock cpu times CPU work only")
        CLOCK = time.process_time
    if args.threads:
        torch.set_num_threads(args.threads)
    dev, dt = args.device, getattr(torch, args.dtype)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, device {dev}, {args.dtype}, "
          f"pygen kernels: {pygen.build_info()['cpu_kernels'] if dev == 'cpu' else pygen.build_info()['cuda_kernels']}, "
          f"{args.clock} clock, 1-min load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    if dev == "cuda":
        print("| case | pygen ms | SDPA ms | speedup | rel. diff | pygen GB/s |")
        print("|---|---|---|---|---|---|")
    else:
        print("| case | pygen ms | SDPA ms | speedup | rel. diff |")
        print("|---|---|---|---|---|")
    if args.only != "decode":
        reps = args.reps or 15
        for name, kw in [
            ("prefill B=8 H=12 L=512 D=64", dict(b=8, h=12, lq=512, lk=512, d=64, dv=64)),
            ("prefill B=8 H=12 L=512 D=64, padded", dict(b=8, h=12, lq=512, lk=512, d=64, dv=64, pad=100)),
            ("prefill B=1 H=16 L=1024 D=64", dict(b=1, h=16, lq=1024, lk=1024, d=64, dv=64)),
            ("prefill B=1 H=16 L=1024 D=64, causal", dict(b=1, h=16, lq=1024, lk=1024, d=64, dv=64, causal=True)),
            ("Perceiver cross 256x2048, H=8, qk 32 / v 160", dict(b=1, h=8, lq=256, lk=2048, d=32, dv=160)),
        ]:
            if args.backward:
                name += ", fwd+bwd"
            compare(name, *prefill_case(**kw, device=dev, dtype=dt, backward=args.backward), reps, dev)
    if args.only != "prefill":
        reps = args.reps or 1000
        for cross in (False, True):
            for batch in (1, 2):
                for lk in (128, 512, 1024):
                    kind = "cross, kv_group=4" if cross else "self, cache view"
                    name = f"decode {kind}: batch {batch} x 4 beams, H=16 D=64, kv {lk}"
                    compare(name, *decode_case(batch, 4, 16, lk, 64, cross, device=dev, dtype=dt), reps, dev)
    print(f"1-min load average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
