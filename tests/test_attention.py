"""pygen.ops.attention (the fused attention op, issue 3) against a float64 reference.

Every test draws fresh random inputs (standard normal, never zeros) from a seeded generator and
compares every element of the op's result with :func:`attention_reference` evaluated in float64 on
float64 copies of the same inputs (so input rounding is not counted as kernel error).

Errors, per tensor (``out`` the op's result, ``ref`` the float64 reference):
- float32: ``max |out - ref| / max |ref|`` <= 1e-5 (float64: <= 1e-10), i.e. every element is
  within 1e-5 of the largest reference magnitude of that tensor. A reference that is exactly zero
  (every row masked) must be matched exactly.
- float16 / bfloat16: ``||out - ref|| / ||ref||`` <= 1e-2 (Frobenius norms), and, so that one
  wrong element cannot hide in the norm, ``max |out - ref| / max |ref|`` <= 5e-2.

Devices: ``cpu`` always; ``cuda`` when torch sees a GPU and pygen was built with CUDA kernels,
else those cases skip with the reason. float32/float64 run on both, float16/bfloat16 too (the CPU
kernel computes them in float32). The module runs on one intra-op thread (CI has 2 busy cores);
the split-KV decoding path, which depends on the thread count, is tested at several counts.
"""
from __future__ import annotations

import os
import random
import subprocess
import sys
import textwrap
import warnings

import pytest
import torch

import pygen
from pygen.errors import InputError
from pygen.ops.attention import attention, attention_reference

CUDA_KERNELS = bool(pygen.build_info()["cuda_kernels"])
CUDA_OK = torch.cuda.is_available() and CUDA_KERNELS
CUDA_SKIP = ("no CUDA device" if not torch.cuda.is_available() else
             "pygen was built without CUDA kernels (cuda_kernels=False)")
DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]
HEAD_DIMS = [32, 64, 96, 128, 160]
ODD_DIMS = [1, 17, 200]


def _device_param(device: str):
    if device == "cuda":
        return pytest.param("cuda", marks=[pytest.mark.cuda, pytest.mark.skipif(not CUDA_OK, reason=CUDA_SKIP)])
    return pytest.param(device)


DEVICES = [_device_param("cpu"), _device_param("cuda")]
# (device, dtype): every dtype on both devices.
DEVICE_DTYPES = [pytest.param(d.values[0], dt, marks=d.marks, id=f"{d.values[0]}-{str(dt)[6:]}")
                 for d in DEVICES for dt in DTYPES]
FP_DEVICE_DTYPES = [p for p in DEVICE_DTYPES if p.values[1] in (torch.float32, torch.float64)]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ---- helpers ---------------------------------------------------------------------------------
def randn(g: torch.Generator, *shape, device="cpu", dtype=torch.float32, scale: float = 1.0) -> torch.Tensor:
    """Standard normal values drawn on the CPU (same values on every device), then moved."""
    return (torch.randn(*shape, generator=g, dtype=torch.float64) * scale).to(device=device, dtype=dtype)


def make_qkv(g, *, batch, q_len, kv_len, heads, dim, v_dim=None, kv_group=1, capacity=None, device="cpu",
             dtype=torch.float32):
    """q [batch * kv_group, q_len, heads, dim]; k, v [batch, kv_len, heads, *] as views
    ``cache[:, :kv_len]`` of a preallocated [batch, capacity, heads, *] buffer when ``capacity``
    exceeds ``kv_len`` (non-contiguous, as the decoders' KV cache hands them out)."""
    v_dim = dim if v_dim is None else v_dim
    capacity = kv_len if capacity is None else capacity
    q = randn(g, batch * kv_group, q_len, heads, dim, device=device, dtype=dtype)
    k_cache = randn(g, batch, capacity, heads, dim, device=device, dtype=dtype)
    v_cache = randn(g, batch, capacity, heads, v_dim, device=device, dtype=dtype)
    return q, k_cache[:, :kv_len], v_cache[:, :kv_len]


def make_mask(g, kind, rows, kv_len, device="cpu"):
    """Key padding mask [rows, kv_len], True = attend. ``right`` / ``left`` padding of random
    lengths (every row keeps at least one key), random ``holes``, or ``holes+empty`` (row 0 sees
    nothing at all)."""
    if kind is None:
        return None
    if kind in ("right", "left"):
        lengths = torch.randint(1, kv_len + 1, (rows, 1), generator=g)
        pos = torch.arange(kv_len)[None]
        mask = pos < lengths if kind == "right" else pos >= kv_len - lengths
    else:
        mask = torch.rand(rows, kv_len, generator=g) > 0.35
        mask[torch.arange(rows), torch.randint(0, kv_len, (rows,), generator=g)] = True
        if kind == "holes+empty":
            mask[0] = False
    return mask.to(device)


def ref_attention(q, k, v, *, key_padding_mask=None, attn_bias=None, causal=False, scale=None, kv_group=1):
    """The float64 reference, on the CPU."""
    f64 = lambda t: None if t is None else t.detach().cpu().double()  # noqa: E731
    mask = None if key_padding_mask is None else key_padding_mask.cpu().bool()
    return attention_reference(f64(q), f64(k), f64(v), mask, f64(attn_bias), causal, scale, kv_group)


def ref_lse(q, k, *, key_padding_mask=None, attn_bias=None, causal=False, scale=None, kv_group=1):
    """Each query row's log-sum-exp of its visible scores, float64 [batch, heads, q_len] (-inf if none)."""
    q, k = q.detach().cpu().double(), k.detach().cpu().double().repeat_interleave(kv_group, 0)
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    s = torch.einsum("bqhd,bkhd->bhqk", q, k) * scale
    if attn_bias is not None:
        s = s + attn_bias.cpu().double()
    lq, lk = q.shape[1], k.shape[1]
    visible = torch.ones(lq, lk, dtype=torch.bool)
    if causal:
        visible = visible.tril(lk - lq)
    visible = visible[None, None]
    if key_padding_mask is not None:
        visible = visible & key_padding_mask.cpu().bool().repeat_interleave(kv_group, 0)[:, None, None, :]
    return s.masked_fill(~visible, float("-inf")).logsumexp(-1)


def error(out: torch.Tensor, ref: torch.Tensor, dtype: torch.dtype) -> float:
    """The error measure of the module docstring."""
    out, ref = out.detach().cpu().double(), ref.detach().cpu().double()
    if out.numel() == 0:
        return 0.0
    if dtype in (torch.float32, torch.float64):
        diff, size = (out - ref).abs().max().item(), ref.abs().max().item()
    else:
        diff, size = (out - ref).norm().item(), ref.norm().item()
    return diff / size if size > 0 else (0.0 if diff == 0 else float("inf"))


def tolerance(dtype: torch.dtype) -> float:
    return {torch.float32: 1e-5, torch.float64: 1e-10}.get(dtype, 1e-2)


def assert_matches(out: torch.Tensor, ref: torch.Tensor, dtype: torch.dtype, what: str = "out") -> None:
    assert out.shape == ref.shape, f"{what}: shape {tuple(out.shape)} != {tuple(ref.shape)}"
    assert out.dtype == dtype, f"{what}: dtype {out.dtype} != {dtype}"
    assert torch.isfinite(out).all(), f"{what}: non-finite values"
    err = error(out, ref, dtype)
    assert err <= tolerance(dtype), f"{what}: error {err:.3g} > {tolerance(dtype)}"
    if dtype in (torch.float16, torch.bfloat16) and out.numel():  # and no single element far off
        worst = error(out, ref, torch.float32)
        assert worst <= 5e-2, f"{what}: max error {worst:.3g} of the largest |ref| > 5e-2"


def check_forward(q, k, v, **kwargs) -> torch.Tensor:
    out = attention(q, k, v, **kwargs)
    assert out.device == q.device
    assert_matches(out, ref_attention(q, k, v, **kwargs), q.dtype)
    return out


def bias_fill(dtype: torch.dtype, fill: str) -> float:
    return torch.finfo(dtype).min if fill == "finfo.min" else float("-inf")


# ---- forward against the float64 reference over randomised shapes --------------------------
def draw_case(kind: str, rng: random.Random, g: torch.Generator) -> dict:
    """Shapes and options of one randomised case of ``kind``; q_len is drawn on both sides of
    the decode/prefill boundary (kv_group * q_len <= 8 rows take the decoding kernel)."""
    heads = rng.choice([1, 2, 3, 4])
    dim = rng.choice(HEAD_DIMS + ODD_DIMS)
    case = dict(batch=rng.choice([1, 2, 3]), heads=heads, dim=dim, v_dim=dim, kv_group=1, capacity=None,
                causal=False, mask=rng.choice([None, "right", "left", "holes"]), scale=None, bias=None)
    lengths = [1, 3, 8, 9, 16, 31, 97, 130]
    if kind == "self":
        case["q_len"] = case["kv_len"] = rng.choice(lengths)
    elif kind == "causal":
        case.update(causal=True, q_len=rng.choice(lengths))
        case["kv_len"] = case["q_len"]
    elif kind == "causal_q<k":  # chunked prefill: bottom-right aligned
        case.update(causal=True, q_len=rng.choice([2, 5, 9, 40]))
        case["kv_len"] = case["q_len"] + rng.choice([1, 7, 100])
    elif kind == "causal_q>k":  # the first q_len - kv_len rows see no key
        case.update(causal=True, kv_len=rng.choice([1, 4, 20]), mask=None)
        case["q_len"] = case["kv_len"] + rng.choice([1, 5, 30])
    elif kind == "cross":
        case.update(q_len=rng.choice(lengths), kv_len=rng.choice([1, 5, 64, 100, 257]))
        if case["q_len"] == case["kv_len"]:
            case["kv_len"] += 3
    elif kind == "decode":  # queries 1..n appended to a cache holding `past` keys
        past = rng.choice([0, 1, 17, 120, 300])
        case.update(causal=True, q_len=rng.choice([1, 1, 2, 4, 8, 12]), mask=rng.choice([None, "left"]))
        case.update(kv_len=past + case["q_len"], capacity=past + case["q_len"] + rng.choice([1, 40]))
    elif kind == "beams_cross":  # batch * beams query rows read their source's keys (kv_group)
        case.update(kv_group=rng.choice([2, 3, 4, 5]), q_len=rng.choice([1, 1, 2, 3, 7]),
                    kv_len=rng.choice([3, 50, 200]), mask=rng.choice(["right", "holes"]))
    elif kind == "beams_self":  # batch * beams rows, each its own cache, left-padded prompts
        beams = rng.choice([2, 4])
        past = rng.choice([3, 30, 150])
        case.update(batch=case["batch"] * beams, causal=True, q_len=1, kv_len=past + 1, mask="left",
                    capacity=past + 1 + rng.choice([1, 64]))
    elif kind == "qk_ne_v":  # Perceiver: q/k head dim != v head dim
        case.update(dim=32, v_dim=rng.choice([96, 160, 7]), q_len=rng.choice([1, 8, 64, 256]),
                    kv_len=rng.choice([3, 100, 300]))
    elif kind == "scale":
        case.update(q_len=rng.choice(lengths), kv_len=rng.choice(lengths), scale=rng.uniform(0.05, 1.5),
                    causal=rng.random() < 0.5)
    elif kind == "bias":
        case.update(q_len=rng.choice(lengths), kv_len=rng.choice([1, 9, 100]), causal=rng.random() < 0.5,
                    bias=rng.choice(["B11K", "1HQK", "BHQK", "B1QK"]))
    else:
        raise AssertionError(kind)
    return case


KINDS = ["self", "causal", "causal_q<k", "causal_q>k", "cross", "decode", "beams_cross", "beams_self", "qk_ne_v",
         "scale", "bias"]


def run_case(case: dict, g: torch.Generator, device, dtype):
    q, k, v = make_qkv(g, batch=case["batch"], q_len=case["q_len"], kv_len=case["kv_len"], heads=case["heads"],
                       dim=case["dim"], v_dim=case["v_dim"], kv_group=case["kv_group"], capacity=case["capacity"],
                       device=device, dtype=dtype)
    mask = make_mask(g, case["mask"], case["batch"], case["kv_len"], device)
    bias = None
    if case["bias"]:
        rows, lq, lk, h = q.shape[0], case["q_len"], case["kv_len"], case["heads"]
        shape = {"B11K": (rows, 1, 1, lk), "1HQK": (1, h, lq, lk), "BHQK": (rows, h, lq, lk),
                 "B1QK": (rows, 1, lq, lk)}[case["bias"]]
        bias = randn(g, *shape, device=device, dtype=dtype)
    return check_forward(q, k, v, key_padding_mask=mask, attn_bias=bias, causal=case["causal"], scale=case["scale"],
                         kv_group=case["kv_group"])


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("device, dtype", DEVICE_DTYPES)
def test_forward_matches_reference(device, dtype, kind, seed):
    rng = random.Random(f"{kind}-{seed}")
    g = torch.Generator().manual_seed(1000 * seed + KINDS.index(kind))
    case = draw_case(kind, rng, g)
    run_case(case, g, device, dtype)


@pytest.mark.parametrize("dims", [(d, d) for d in HEAD_DIMS + ODD_DIMS] + [(32, 96), (96, 32), (17, 200)],
                         ids=lambda d: f"{d[0]}x{d[1]}")
@pytest.mark.parametrize("q_len", [1, 3, 40])  # decoding kernel (up to 8 rows) and prefill kernel
@pytest.mark.parametrize("device, dtype", FP_DEVICE_DTYPES + [p for p in DEVICE_DTYPES
                                                               if p.values[1] == torch.bfloat16])
def test_head_dims(device, dtype, q_len, dims):
    g = torch.Generator().manual_seed(7 * dims[0] + dims[1] + q_len)
    q, k, v = make_qkv(g, batch=2, q_len=q_len, kv_len=37, heads=3, dim=dims[0], v_dim=dims[1], kv_group=2,
                       capacity=50, device=device, dtype=dtype)
    mask = make_mask(g, "holes", 2, 37, device)
    check_forward(q, k, v, key_padding_mask=mask, causal=True, kv_group=2)
    check_forward(q, k, v, scale=0.37, kv_group=2)


@pytest.mark.parametrize("threads", [1, 3, 4])
@pytest.mark.parametrize("device, dtype", DEVICE_DTYPES)
def test_decode_long_kv_split(device, dtype, threads):
    """q_len 1..2 against long caches with few (batch x heads) units: the CPU kernel splits the
    keys across tasks and merges partial softmaxes (how many splits depends on the threads).
    Masks hide whole spans, some rows see nothing."""
    g = torch.Generator().manual_seed(threads)
    torch.set_num_threads(threads)
    try:
        for batch, beams, heads, q_len, kv_len in [(1, 1, 1, 1, 2500), (1, 4, 1, 1, 1500), (2, 1, 2, 2, 3000)]:
            q, k, v = make_qkv(g, batch=batch, q_len=q_len, kv_len=kv_len, heads=heads, dim=64, kv_group=beams,
                               capacity=kv_len + 9, device=device, dtype=dtype)
            mask = make_mask(g, "holes", batch, kv_len, device)
            mask[:, 300:1100] = False
            check_forward(q, k, v, kv_group=beams)
            check_forward(q, k, v, key_padding_mask=mask, kv_group=beams, causal=True)
            mask[0] = False
            out = check_forward(q, k, v, key_padding_mask=mask, kv_group=beams)
            assert (out[:beams] == 0).all()
    finally:
        torch.set_num_threads(1)


@pytest.mark.parametrize("threads", [2, 3])
def test_cpu_threads_give_the_one_thread_result(threads):
    """Prefill tiles, decode rows and backward tasks spread over several intra-op threads: each
    output element is computed by one task in a fixed order, so the result is the one-thread
    result bit for bit (and matches the reference)."""
    g = torch.Generator().manual_seed(threads)
    for q_len, kv_len, group in [(200, 300, 1), (1, 90, 4), (37, 37, 1)]:
        q, k, v = make_qkv(g, batch=3, q_len=q_len, kv_len=kv_len, heads=5, dim=64, kv_group=group)
        mask = make_mask(g, "holes", 3, kv_len)
        runs = []
        for n in (1, threads):
            torch.set_num_threads(n)
            try:
                leaves = [t.clone().requires_grad_() for t in (q, k, v)]
                out = attention(*leaves, key_padding_mask=mask, causal=q_len > 1, kv_group=group)
                out.backward(torch.ones_like(out))
                runs.append([out.detach()] + [t.grad for t in leaves])
            finally:
                torch.set_num_threads(1)
        for one, many in zip(*runs):
            assert torch.equal(one, many)
        assert_matches(runs[1][0], ref_attention(q, k, v, key_padding_mask=mask, causal=q_len > 1, kv_group=group),
                       torch.float32)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("device", DEVICES)
def test_long_sequences(device, causal):
    """q 1024 x k 4096 (blocked prefill: scores only ever exist one tile at a time)."""
    g = torch.Generator().manual_seed(11 + causal)
    q, k, v = make_qkv(g, batch=1, q_len=1024, kv_len=4096, heads=2, dim=64, device=device)
    mask = make_mask(g, "right", 1, 4096, device)
    check_forward(q, k, v, key_padding_mask=mask, causal=causal)


@pytest.mark.parametrize("device, dtype", FP_DEVICE_DTYPES)
def test_strided_layouts(device, dtype):
    """Views that are legal inputs: q from a fused qkv projection, q transposed back from
    [B, H, L, D], K/V in a cache, masks and biases that are non-contiguous or expanded."""
    g = torch.Generator().manual_seed(5)
    b, lq, lk, h, d = 2, 11, 23, 3, 16
    qkv = randn(g, b, lq, 3, h, d, device=device, dtype=dtype)
    q_fused = qkv[:, :, 0]
    q_bhld = randn(g, b, h, lq, d, device=device, dtype=dtype).transpose(1, 2)
    k_cache = randn(g, b, 40, h, d, device=device, dtype=dtype)
    v_cache = randn(g, b, 40, h, d, device=device, dtype=dtype)
    k, v = k_cache[:, 5:5 + lk], v_cache[:, 5:5 + lk]
    wide_mask = make_mask(g, "holes", b, 2 * lk, device)[:, ::2]
    bias = randn(g, b, lk, h, lq, device=device, dtype=dtype).permute(0, 2, 3, 1)
    expanded = randn(g, 1, 1, 1, lk, device=device, dtype=dtype).expand(b, h, lq, lk)
    for q in (q_fused, q_bhld):
        check_forward(q, k, v, key_padding_mask=wide_mask, attn_bias=bias, causal=True)
        check_forward(q, k, v, attn_bias=expanded)
    # a float (0/1) mask converts to bool; a float64 bias for float32 inputs is accepted
    float_mask = wide_mask.to(dtype)
    out = attention(q_fused, k, v, key_padding_mask=float_mask, attn_bias=bias.double())
    assert torch.equal(out, attention(q_fused, k, v, key_padding_mask=wide_mask, attn_bias=bias.to(dtype)))


def test_baseline_isa_subprocess():
    """The kernel's baseline (16-byte vector) copy, which ATEN_CPU_CAPABILITY=default selects at
    start-up, agrees with the reference too (this process runs the AVX2 copy where it can)."""
    script = textwrap.dedent("""
        import torch
        from pygen.ops.attention import attention, attention_reference
        torch.set_num_threads(1)
        g = torch.Generator().manual_seed(0)
        worst = 0.0
        for lq, lk, d, dv, grp, causal in [(1, 300, 64, 64, 4, False), (5, 40, 17, 32, 1, True),
                                            (100, 130, 64, 96, 2, True), (9, 9, 3, 5, 1, False)]:
            q = torch.randn(2 * grp, lq, 2, d, generator=g, dtype=torch.float64)
            k = torch.randn(2, lk, 2, d, generator=g, dtype=torch.float64)
            v = torch.randn(2, lk, 2, dv, generator=g, dtype=torch.float64)
            mask = torch.rand(2, lk, generator=g) > 0.3
            mask[:, -1] = True
            ref = attention_reference(q, k, v, mask, None, causal, None, grp)
            for dt in (torch.float32, torch.float64):
                t = [x.to(dt).clone().requires_grad_() for x in (q, k, v)]
                out = attention(*t, key_padding_mask=mask, causal=causal, kv_group=grp)
                worst = max(worst, ((out.double() - ref).abs().max() / ref.abs().max()).item())
                out.sum().backward()
                t64 = [x.clone().requires_grad_() for x in (q, k, v)]
                attention_reference(*t64, mask, None, causal, None, grp).sum().backward()
                for a, b in zip(t, t64):
                    worst = max(worst, ((a.grad.double() - b.grad).abs().max() / b.grad.abs().max()).item())
        print("WORST", worst)
    """)
    env = {**os.environ, "ATEN_CPU_CAPABILITY": "default", "OMP_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    worst = float(res.stdout.split("WORST")[-1])
    assert worst <= 1e-5, worst


# ---- masks -------------------------------------------------------------------------------------
@pytest.mark.parametrize("q_len", [1, 4, 50])
@pytest.mark.parametrize("pattern", ["right", "left", "holes", "holes+empty"])
@pytest.mark.parametrize("device, dtype", DEVICE_DTYPES)
def test_key_padding_mask(device, dtype, pattern, q_len):
    """Padding masks match the reference, and masked keys have no influence: replacing their
    keys and values by large random values leaves the output unchanged (bit for bit on the CPU)."""
    g = torch.Generator().manual_seed(hash((pattern, q_len)) % 2**31)
    batch, beams, kv_len = 3, 2, 70
    q, k, v = make_qkv(g, batch=batch, q_len=q_len, kv_len=kv_len, heads=2, dim=32, v_dim=48, kv_group=beams,
                       device=device, dtype=dtype)
    mask = make_mask(g, pattern, batch, kv_len, device)
    for causal in (False, True):
        kw = dict(key_padding_mask=mask, causal=causal, kv_group=beams)
        out = check_forward(q, k, v, **kw)
        hidden = ~mask[:, :, None, None]
        k2 = torch.where(hidden, randn(g, *k.shape, device=device, dtype=dtype, scale=1000.0), k)
        v2 = torch.where(hidden, randn(g, *v.shape, device=device, dtype=dtype, scale=1000.0), v)
        out2 = attention(q, k2, v2, **kw)
        if device == "cpu":
            assert torch.equal(out, out2)
        else:
            assert error(out2, out.double(), dtype) <= tolerance(dtype)
        if pattern == "holes+empty":  # source 0 has no visible key: its beams' rows are exactly 0
            assert (out[:beams] == 0).all()


@pytest.mark.parametrize("q_len", [3, 30])
@pytest.mark.parametrize("device, dtype", DEVICE_DTYPES)
def test_causal_hidden_keys_have_no_influence(device, dtype, q_len):
    """Changing keys/values from position c on leaves every row that cannot see c unchanged."""
    g = torch.Generator().manual_seed(q_len)
    kv_len = 45
    q, k, v = make_qkv(g, batch=2, q_len=q_len, kv_len=kv_len, heads=2, dim=64, device=device, dtype=dtype)
    out = check_forward(q, k, v, causal=True)
    cut = kv_len - q_len + q_len // 2  # rows i with i + kv_len - q_len < cut see nothing from cut on
    k2, v2 = k.clone(), v.clone()
    k2[:, cut:] = randn(g, *k2[:, cut:].shape, device=device, dtype=dtype, scale=1000.0)
    v2[:, cut:] = randn(g, *v2[:, cut:].shape, device=device, dtype=dtype, scale=1000.0)
    out2 = attention(q, k2, v2, causal=True)
    rows = cut - (kv_len - q_len)
    assert rows >= 1
    if device == "cpu":
        assert torch.equal(out[:, :rows], out2[:, :rows])
    else:
        assert error(out2[:, :rows], out[:, :rows].double(), dtype) <= tolerance(dtype)
    assert not torch.equal(out[:, rows:], out2[:, rows:])


@pytest.mark.parametrize("fill", ["finfo.min", "-inf"])
@pytest.mark.parametrize("shape", ["B11K", "B1QK", "1HQK", "BHQK"])
@pytest.mark.parametrize("q_len", [2, 33])
@pytest.mark.parametrize("device, dtype", DEVICE_DTYPES)
def test_additive_mask(device, dtype, q_len, shape, fill):
    """Additive float masks as transformers builds them (0 where visible, finfo(dtype).min or
    -inf where hidden, in the model's dtype), in every broadcast shape, alone and together with a
    random bias; hidden keys have no influence."""
    g = torch.Generator().manual_seed(hash((q_len, shape, fill)) % 2**31)
    b, h, lk = 2, 3, 41
    q, k, v = make_qkv(g, batch=b, q_len=q_len, kv_len=lk, heads=h, dim=24, device=device, dtype=dtype)
    dims = {"B11K": (b, 1, 1, lk), "B1QK": (b, 1, q_len, lk), "1HQK": (1, h, q_len, lk),
            "BHQK": (b, h, q_len, lk)}[shape]
    visible = torch.rand(dims, generator=g) > 0.4
    visible[..., -1] = True  # every row sees at least one key (rows with none: see below)
    zero = torch.zeros((), dtype=dtype)
    bias = torch.where(visible, zero, torch.tensor(bias_fill(dtype, fill), dtype=dtype)).to(device)
    out = check_forward(q, k, v, attn_bias=bias)
    check_forward(q, k, v, attn_bias=bias + randn(g, *dims, device=device, dtype=dtype), causal=True)
    if shape == "B11K":  # keys hidden for every row of a batch item: change them
        hidden = ~visible[:, 0, 0, :, None, None].to(device)
        k2 = torch.where(hidden, randn(g, *k.shape, device=device, dtype=dtype, scale=1000.0), k)
        v2 = torch.where(hidden, randn(g, *v.shape, device=device, dtype=dtype, scale=1000.0), v)
        out2 = attention(q, k2, v2, attn_bias=bias)
        if device == "cpu":
            assert torch.equal(out, out2)
        else:
            assert error(out2, out.double(), dtype) <= tolerance(dtype)


@pytest.mark.parametrize("q_len", [1, 20])
@pytest.mark.parametrize("device, dtype", DEVICE_DTYPES)
def test_rows_without_visible_keys(device, dtype, q_len):
    """Rows with no visible key give exactly 0 (the op's semantics) and lse -inf, never NaN: by
    key padding, by causality (q_len > kv_len), by a -inf bias, and with no keys at all; their
    gradients are 0. A row hidden by finfo.min everywhere instead averages the values evenly, as
    transformers' eager attention does (finfo.min absorbs the scores)."""
    g = torch.Generator().manual_seed(q_len)
    b, h, lk = 3, 2, 12
    q, k, v = make_qkv(g, batch=b, q_len=q_len, kv_len=lk, heads=h, dim=16, device=device, dtype=dtype)
    mask = make_mask(g, "holes", b, lk, device)
    mask[1] = False
    out = check_forward(q, k, v, key_padding_mask=mask)
    assert (out[1] == 0).all() and (out[[0, 2]] != 0).any()
    bias = torch.zeros(b, 1, q_len, lk, dtype=dtype)
    bias[2, :, q_len // 2] = float("-inf")
    out = check_forward(q, k, v, attn_bias=bias.to(device))
    assert (out[2, q_len // 2] == 0).all()
    qc, kc, vc = make_qkv(g, batch=b, q_len=q_len + 3, kv_len=3, heads=h, dim=16, device=device, dtype=dtype)
    out = check_forward(qc, kc, vc, causal=True)  # the first q_len rows see nothing
    assert (out[:, :q_len] == 0).all() and (out[:, q_len:] != 0).any()
    out = check_forward(q, k[:, :0], v[:, :0])  # kv_len 0
    assert (out == 0).all()
    # lse and gradients of such rows
    if dtype in (torch.float32, torch.float64):
        out, lse = torch.ops.pygen.attention_fwd(q, k, v, mask, None, False, 16 ** -0.5, 1)
        assert torch.isneginf(lse[1]).all()
        assert error(lse[[0, 2]], ref_lse(q, k, key_padding_mask=mask)[[0, 2]], dtype) <= tolerance(dtype)
        leaves = [t.detach().clone().requires_grad_() for t in (q, k, v)]
        attention(*leaves, key_padding_mask=mask).square().sum().backward()
        dq, dk, dv = (t.grad for t in leaves)
        assert all(torch.isfinite(t).all() for t in (dq, dk, dv))
        assert (dq[1] == 0).all() and (dk[1] == 0).all() and (dv[1] == 0).all()
        assert (dk[~mask] == 0).all() and (dv[~mask] == 0).all()
    if dtype == torch.float32:  # finfo.min over a whole row: uniform weights (as transformers' eager)
        bias = torch.zeros(b, 1, q_len, lk)
        bias[0] = torch.finfo(torch.float32).min
        out = attention(q, k, v, attn_bias=bias.to(device))
        mean_v = v[0].float().mean(0)  # [heads, dim]
        assert (out[0].float() - mean_v).abs().max() <= 1e-5 * v.abs().max()


# ---- model level: a row whose attention mask is all zero ---------------------------------------
def _randomise(model, seed):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for t in list(model.parameters()) + list(model.buffers()):
            if t.is_floating_point():
                t.copy_(torch.randn(t.shape, generator=gen) * 0.3)


@pytest.mark.parametrize("model", ["BertGenerationEncoder", "BertGenerationDecoder", "BertModel",
                                   "BartForConditionalGeneration"])
def test_models_fully_masked_row_match_transformers(model):
    """A batch row whose attention_mask is all 0: pygen's models give what transformers gives
    with its default attention (sdpa, which returns 0 for rows with no visible key, as the op
    does), every element, no NaN. (transformers' *eager* attention instead spreads such a row's
    weight evenly over all keys; pygen's models follow sdpa there.)"""
    import transformers

    from pygen.models import bart as pbart
    from pygen.models import bert as pbert
    from pygen.models import bert_generation as pgen

    g = torch.Generator().manual_seed(3)
    ids = torch.randint(3, 97, (3, 9), generator=g)
    mask = torch.ones(3, 9, dtype=torch.long)
    mask[1] = 0
    mask[2, 5:] = 0
    if model.startswith("Bart"):
        cfg = transformers.BartConfig(vocab_size=97, d_model=24, encoder_attention_heads=4, decoder_attention_heads=2,
                                      encoder_layers=2, decoder_layers=2, encoder_ffn_dim=37, decoder_ffn_dim=29,
                                      max_position_embeddings=40, dropout=0.0, attention_dropout=0.0,
                                      activation_dropout=0.0)
        hf = transformers.BartForConditionalGeneration._from_config(cfg, attn_implementation="sdpa")
        _randomise(hf, 4)
        ours = pbart.BartForConditionalGeneration(pbart.BartConfig.from_dict(hf.config.to_dict()))
        dec_ids = torch.randint(3, 97, (3, 6), generator=g)
        dec_mask = torch.ones(3, 6, dtype=torch.long)
        dec_mask[0] = 0  # a decoder row with nothing visible, next to a source row with nothing visible
        dec_mask[1, :2] = 0
        inputs = dict(input_ids=ids, attention_mask=mask, decoder_input_ids=dec_ids, decoder_attention_mask=dec_mask)
        fields = ["logits", "encoder_last_hidden_state"]
    else:
        small = dict(vocab_size=97, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
                     max_position_embeddings=40, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
        if model == "BertModel":
            hf_cfg, mod = transformers.BertConfig(**small), pbert
        else:
            hf_cfg, mod = transformers.BertGenerationConfig(**small, is_decoder=model.endswith("Decoder")), pgen
        hf = getattr(transformers, model)._from_config(hf_cfg, attn_implementation="sdpa")
        _randomise(hf, 4)
        ours = getattr(mod, model)(getattr(mod, model).config_class.from_dict(hf.config.to_dict()))
        inputs = dict(input_ids=ids, attention_mask=mask)
        fields = ["logits" if model.endswith("Decoder") else "last_hidden_state"]
    ours.load_state_dict(hf.state_dict(), strict=True)
    hf.eval(), ours.eval()
    with torch.no_grad():
        ref, out = hf(**inputs), ours(**inputs)
    for field in fields:
        a, r = getattr(out, field), getattr(ref, field)
        assert torch.isfinite(a).all(), field
        err = (a - r).abs().max().item()
        assert err <= 1e-4, f"{field}: max abs diff {err}"


# ---- every output element is written (outputs poisoned with NaN before the kernels run) --------
POISON_CASES = {
    # name: (batch, kv_group, q_len, kv_len, heads, dim, v_dim, causal, mask)
    "prefill": (2, 1, 100, 130, 3, 64, 64, False, "holes+empty"),
    "prefill causal odd dims": (2, 1, 37, 41, 2, 17, 33, True, "right"),
    "causal q>k": (1, 1, 20, 6, 2, 32, 32, True, None),
    "decode beams": (2, 4, 1, 90, 3, 64, 96, False, "holes+empty"),
    "decode chunk": (3, 1, 5, 200, 2, 160, 160, True, "left"),
    "decode split": (1, 1, 1, 2100, 1, 64, 64, False, "holes"),
    "no keys": (2, 2, 3, 0, 2, 16, 16, False, None),
}


@pytest.mark.parametrize("case", list(POISON_CASES))
@pytest.mark.parametrize("device, dtype", DEVICE_DTYPES)
def test_poisoned_outputs_are_fully_written(monkeypatch, device, dtype, case):
    monkeypatch.setenv("PYGEN_POISON_OUTPUTS", "1")
    batch, group, lq, lk, h, d, dv, causal, mask_kind = POISON_CASES[case]
    g = torch.Generator().manual_seed(len(case))
    q, k, v = make_qkv(g, batch=batch, q_len=lq, kv_len=lk, heads=h, dim=d, v_dim=dv, kv_group=group,
                       capacity=lk + 3, device=device, dtype=dtype)
    mask = make_mask(g, mask_kind, batch, lk, device)
    scale = d ** -0.5
    out, lse = torch.ops.pygen.attention_fwd(q, k, v, mask, None, causal, scale, group)
    kw = dict(key_padding_mask=mask, causal=causal, kv_group=group)
    assert_matches(out, ref_attention(q, k, v, **kw), dtype)
    ref = ref_lse(q, k, **kw)
    assert not torch.isnan(lse).any()
    assert torch.equal(torch.isneginf(lse).cpu(), torch.isneginf(ref)), "lse: -inf exactly for rows with no key"
    seen = torch.isfinite(ref)
    assert torch.isfinite(lse.cpu()[seen]).all() and lse.dtype == (torch.float64 if dtype == torch.float64
                                                                   else torch.float32)
    assert error(lse.cpu()[seen], ref[seen], torch.float64 if dtype == torch.float64 else torch.float32) <= (
        1e-10 if dtype == torch.float64 else 1e-5)
    grad_out = randn(g, *out.shape, device=device, dtype=dtype)
    dq, dk, dv_ = torch.ops.pygen.attention_bwd(grad_out, q, k, v, out, lse, mask, None, causal, scale, group)
    leaves = [t.detach().cpu().double().requires_grad_() for t in (q, k, v)]
    ref_out = attention_reference(*leaves, None if mask is None else mask.cpu(), None, causal, scale, group)
    ref_out.backward(grad_out.cpu().double())
    for name, got, want in zip(("dq", "dk", "dv"), (dq, dk, dv_), leaves):
        assert_matches(got, want.grad, dtype, name)


# ---- autograd ----------------------------------------------------------------------------------
GRADCHECK_CASES = {
    # name: (batch, kv_group, q_len, kv_len, heads, dim, v_dim, causal, mask, bias)
    "plain": (2, 1, 4, 5, 2, 3, 3, False, None, None),
    "mask with empty row": (2, 1, 3, 6, 2, 4, 4, False, "holes+empty", None),
    "causal": (1, 1, 5, 5, 2, 3, 4, True, None, None),
    "causal q<k": (2, 1, 2, 6, 1, 3, 3, True, "left", None),
    "causal q>k": (1, 1, 6, 3, 2, 3, 3, True, None, None),
    "kv_group": (2, 3, 2, 5, 2, 4, 3, False, "right", None),
    "bias": (2, 1, 3, 4, 2, 3, 3, False, None, "BHQK"),
    "bias -inf + causal": (2, 1, 4, 6, 1, 3, 2, True, "holes", "B11K-inf"),
    "qk dim != v dim": (1, 1, 3, 4, 2, 2, 5, False, None, None),
    "decode cache view": (2, 2, 1, 7, 2, 3, 3, True, "left", None),
    "prefill tiles": (1, 1, 12, 13, 1, 3, 3, True, "holes", None),
}


def gradcheck_inputs(case, device, g):
    batch, group, lq, lk, h, d, dv, causal, mask_kind, bias_kind = GRADCHECK_CASES[case]
    q, k, v = make_qkv(g, batch=batch, q_len=lq, kv_len=lk, heads=h, dim=d, v_dim=dv, kv_group=group,
                       capacity=lk + 2, device=device, dtype=torch.float64)
    mask = make_mask(g, mask_kind, batch, lk, device)
    bias = None
    if bias_kind == "BHQK":
        bias = randn(g, batch * group, h, lq, lk, device=device, dtype=torch.float64)
    elif bias_kind == "B11K-inf":
        bias = torch.zeros(batch * group, 1, 1, lk, dtype=torch.float64)
        bias[0, ..., 1] = float("-inf")
        bias = bias.to(device)
    return q, k, v, dict(key_padding_mask=mask, attn_bias=bias, causal=causal, kv_group=group)


@pytest.mark.parametrize("case", list(GRADCHECK_CASES))
@pytest.mark.parametrize("device", DEVICES)
def test_gradcheck_float64(device, case):
    g = torch.Generator().manual_seed(len(case) + 100)
    q, k, v, kw = gradcheck_inputs(case, device, g)
    # k and v as views of a leaf cache, so gradients flow back through the strided views
    k_cache = k._base.detach().clone().requires_grad_()
    v_cache = v._base.detach().clone().requires_grad_()
    lk = k.shape[1]
    fn = lambda q_, kc, vc: attention(q_, kc[:, :lk], vc[:, :lk], **kw)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (q.requires_grad_(), k_cache, v_cache), nondet_tol=0.0)
    if kw["attn_bias"] is not None and torch.isfinite(kw["attn_bias"]).all():
        # a bias that requires grad (the reference path) is differentiable too
        bias = kw["attn_bias"].clone().requires_grad_()
        kw2 = {**kw, "attn_bias": bias}
        assert torch.autograd.gradcheck(lambda b: attention(q.detach(), k, v, **{**kw2, "attn_bias": b}), (bias,))


BACKWARD_CASES = {
    # name: (batch, kv_group, q_len, kv_len, heads, dim, v_dim, causal, mask, capacity extra)
    "prefill": (2, 1, 150, 230, 2, 64, 64, False, "holes", 0),
    "prefill causal perceiver dims": (1, 1, 130, 200, 2, 32, 96, True, "right", 0),
    "cross beams": (2, 3, 40, 120, 2, 64, 64, False, "holes+empty", 0),
    "decode beams cache": (2, 4, 1, 300, 3, 64, 64, False, "right", 50),
    "decode steps cache": (3, 1, 4, 100, 2, 96, 96, True, "left", 20),
    "odd dims": (2, 1, 20, 33, 2, 17, 200, True, None, 0),
}


@pytest.mark.parametrize("case", list(BACKWARD_CASES))
@pytest.mark.parametrize("device, dtype", DEVICE_DTYPES)
def test_gradients_match_float64_autograd(device, dtype, case):
    """Gradients of the compiled backward (q, k, v, with K/V as cache views) against autograd
    through the float64 reference."""
    batch, group, lq, lk, h, d, dv, causal, mask_kind, extra = BACKWARD_CASES[case]
    g = torch.Generator().manual_seed(len(case) + 200)
    q, k, v = make_qkv(g, batch=batch, q_len=lq, kv_len=lk, heads=h, dim=d, v_dim=dv, kv_group=group,
                       capacity=lk + extra, device=device, dtype=dtype)
    mask = make_mask(g, mask_kind, batch, lk, device)
    kw = dict(key_padding_mask=mask, causal=causal, kv_group=group)
    grad_out = randn(g, batch * group, lq, h, dv, device=device, dtype=dtype)
    leaves = [q.detach().clone().requires_grad_(), k._base.detach().clone().requires_grad_(),
              v._base.detach().clone().requires_grad_()]
    out = attention(leaves[0], leaves[1][:, :lk], leaves[2][:, :lk], **kw)
    out.backward(grad_out)
    refs = [t.detach().cpu().double().requires_grad_() for t in leaves]
    mask_cpu = None if mask is None else mask.cpu()
    ref = attention_reference(refs[0], refs[1][:, :lk], refs[2][:, :lk], mask_cpu, None, causal, None, group)
    ref.backward(grad_out.cpu().double())
    assert_matches(out, ref, dtype)
    for name, got, want in zip(("dq", "dk", "dv"), leaves, refs):
        assert_matches(got.grad, want.grad, dtype, name)
        if extra:  # the unused tail of the cache gets zero gradient
            assert (got.grad[:, lk:] == 0).all()


@pytest.mark.parametrize("device", DEVICES)
def test_single_key_gradients(device):
    """With one visible key per row the probabilities are constant 1: dq and dk are 0 in exact
    arithmetic (float32 leaves rounding noise only), dv sums grad_out."""
    g = torch.Generator().manual_seed(9)
    q, k, v = make_qkv(g, batch=2, q_len=30, kv_len=1, heads=2, dim=64, device=device)
    leaves = [t.detach().clone().requires_grad_() for t in (q, k, v)]
    grad_out = randn(g, 2, 30, 2, 64, device=device)
    attention(*leaves).backward(grad_out)
    assert leaves[0].grad.abs().max() <= 1e-5 and leaves[1].grad.abs().max() <= 1e-4
    assert_matches(leaves[2].grad, grad_out.double().sum(1, keepdim=True), torch.float32, "dv")


# float32 only with fills that swallow the scores whole: a smaller one rounds score + fill
# differently for any two summation orders of the score.
LARGE_BIAS = [(torch.float64, fill) for fill in (-1e3, -1e8, -1e30, "finfo.min")] + \
             [(torch.float32, fill) for fill in (-1e30, "finfo.min")]


@pytest.mark.parametrize("dtype, fill", LARGE_BIAS)
@pytest.mark.parametrize("device", DEVICES)
def test_gradients_under_a_large_bias_on_every_key(device, dtype, fill):
    """Rows whose every key carries one large additive bias (Perceiver's fully padded rows under a
    finfo.min mask): the gradients of a softmax of the scores as rounded in ``dtype`` (what
    transformers differentiates), where the log-sum-exp m + log(l) alone has lost log(l)."""
    if fill == "finfo.min":
        fill = torch.finfo(dtype).min
    g = torch.Generator().manual_seed(17)
    q, k, v = make_qkv(g, batch=2, q_len=5, kv_len=7, heads=2, dim=8, v_dim=6, device=device, dtype=dtype)
    bias = torch.zeros(2, 1, 5, 7, dtype=dtype)
    bias[1] = fill  # every key of every row of batch 1
    bias[0, 0, 2] = fill  # one row of batch 0
    bias[0, 0, 3, 4] = fill  # one key of one row
    bias = bias.to(device)
    grad_out = randn(g, 2, 5, 2, 6, device=device, dtype=dtype)
    leaves = [t.detach().clone().requires_grad_() for t in (q, k, v)]
    attention(*leaves, attn_bias=bias).backward(grad_out)
    refs = [t.detach().cpu().requires_grad_() for t in leaves]
    scores = torch.einsum("bqhd,bkhd->bhqk", refs[0], refs[1]) * 8 ** -0.5 + bias.cpu()  # rounded in dtype
    probs = scores.double().softmax(-1)
    torch.einsum("bhqk,bkhd->bqhd", probs, refs[2].double()).backward(grad_out.cpu().double())
    for name, got, want in zip(("dq", "dk", "dv"), leaves, refs):
        assert_matches(got.grad, want.grad, dtype, name)


def test_double_backward():
    """create_graph=True differentiates the gradients (through the reference's backward): gradgradcheck
    over masks, causality, bias and kv_group."""
    g = torch.Generator().manual_seed(23)
    for case in ("plain", "mask with empty row", "causal q<k", "kv_group", "bias"):
        q, k, v, kw = gradcheck_inputs(case, "cpu", g)
        fn = lambda q_, k_, v_: attention(q_, k_, v_, **kw)  # noqa: E731
        leaves = [t.detach().clone().requires_grad_() for t in (q, k, v)]
        assert torch.autograd.gradgradcheck(fn, leaves), case


# ---- dropout -----------------------------------------------------------------------------------
@pytest.mark.parametrize("device", DEVICES)
def test_dropout(device):
    g = torch.Generator().manual_seed(21)
    q, k, v = make_qkv(g, batch=2, q_len=6, kv_len=9, heads=2, dim=16, device=device)
    mask = make_mask(g, "holes", 2, 9, device)
    kw = dict(key_padding_mask=mask, causal=True)
    plain = attention(q, k, v, **kw)
    # p = 0: the kernel, deterministic, equal to no dropout at all
    assert torch.equal(attention(q, k, v, dropout_p=0.0, **kw), plain)
    assert torch.equal(attention(q, k, v, dropout_p=0.0, **kw), attention(q, k, v, dropout_p=0.0, **kw))
    # p > 0 with a seeded generator: reproducible; another seed draws another mask
    gen = lambda seed: torch.Generator(device=device).manual_seed(seed)  # noqa: E731
    a = attention(q, k, v, dropout_p=0.3, generator=gen(5), **kw)
    assert torch.equal(a, attention(q, k, v, dropout_p=0.3, generator=gen(5), **kw))
    assert not torch.equal(a, attention(q, k, v, dropout_p=0.3, generator=gen(6), **kw))
    assert not torch.equal(a, plain) and torch.isfinite(a).all()
    # unbiased: 4000 independent draws (the same query batch repeated) average to no dropout
    n = 4000
    rep = lambda t: t.repeat(n, 1, 1, 1)  # noqa: E731
    draws = attention(rep(q), rep(k), rep(v), key_padding_mask=mask.repeat(n, 1), causal=True, dropout_p=0.3,
                      generator=gen(7)).view(n, *plain.shape).double()
    mean, sem = draws.mean(0), draws.std(0) / n ** 0.5
    z = ((mean - plain.double()) / sem.clamp_min(1e-12)).abs()
    assert z.max() < 6, f"dropout mean is {z.max():.1f} standard errors from the expectation"
    assert z.mean() < 1.2
    # the training path: gradients flow, and equal autograd through the reference with the same draw
    leaves = [t.detach().clone().requires_grad_() for t in (q, k, v)]
    attention(*leaves, dropout_p=0.3, generator=gen(8), **kw).square().sum().backward()
    refs = [t.detach().clone().requires_grad_() for t in (q, k, v)]
    attention_reference(*refs, mask, None, True, None, 1, 0.3, gen(8)).square().sum().backward()
    for got, want in zip(leaves, refs):
        assert torch.isfinite(got.grad).all() and (got.grad != 0).any()
        assert torch.allclose(got.grad, want.grad, rtol=1e-6, atol=1e-6)


# ---- torch.compile -----------------------------------------------------------------------------
def _compile_inputs(g, device, lq, lk):
    q, k, v = make_qkv(g, batch=2, q_len=lq, kv_len=lk, heads=2, dim=16, v_dim=8, kv_group=2, capacity=lk + 4,
                       device=device)
    mask = make_mask(g, "holes", 2, lk, device)
    bias = randn(g, 4, 1, 1, lk, device=device)
    return [t.detach().clone().requires_grad_() for t in (q, k, v)], mask, bias


@pytest.mark.parametrize("scale", [0.3, None])
@pytest.mark.parametrize("mode", ["static", "mark_dynamic", "dynamic=True"])
@pytest.mark.parametrize("device", DEVICES)
def test_torch_compile_fullgraph(device, mode, scale):
    """torch.compile(fullgraph=True) of a function calling the op: same forward and gradients as
    eager, over three shapes (recompiled when static, one symbolic graph otherwise)."""

    def fn(q, k, v, mask, bias):
        out = attention(q, k, v, key_padding_mask=mask, attn_bias=bias, causal=True, scale=scale, kv_group=2)
        return out * 2 + 1

    torch._dynamo.reset()
    compiled = torch.compile(fn, backend="aot_eager", fullgraph=True,
                             dynamic={"static": False, "mark_dynamic": None, "dynamic=True": True}[mode])
    g = torch.Generator().manual_seed(31)
    for lq, lk in ((5, 9), (7, 12), (3, 20)):
        (q, k, v), mask, bias = _compile_inputs(g, device, lq, lk)
        want = fn(q, k, v, mask, bias)
        grads_want = torch.autograd.grad(want.square().sum(), (q, k, v))
        if mode == "mark_dynamic":
            for t, dims in ((q, (1,)), (k, (1,)), (v, (1,)), (mask, (1,)), (bias, (3,))):
                torch._dynamo.mark_dynamic(t, dims)
        got = compiled(q, k, v, mask, bias)
        grads_got = torch.autograd.grad(got.square().sum(), (q, k, v))
        assert torch.equal(got, want)
        for a, b in zip(grads_got, grads_want):
            assert torch.equal(a, b)


# ---- bad input ---------------------------------------------------------------------------------
BAD_INPUTS = {
    # name: (substrings the message must contain, call(q, k, v, mask, bias) with valid q [2, 5, 2, 8],
    #        k, v [2, 7, 2, 8], mask [2, 7], bias [2, 2, 5, 7])
    "q 3-D": (["4-d", "q [5, 2, 8]"], lambda q, k, v, m, b: attention(q[0], k, v)),
    "k 5-D": (["4-d", "k [1, 2, 7, 2, 8]"], lambda q, k, v, m, b: attention(q, k[None], v)),
    "v 2-D": (["4-d", "v [7, 2]"], lambda q, k, v, m, b: attention(q, k, v[0, :, :, 0])),
    "dtype mismatch f32/f64": (["dtype", "float", "double"], lambda q, k, v, m, b: attention(q, k.double(), v)),
    "dtype mismatch v f16": (["dtype", "half"], lambda q, k, v, m, b: attention(q, k, v.half())),
    "int32": (["float32", "int"], lambda q, k, v, m, b: attention(q.int(), k.int(), v.int())),
    "int64 q": (["dtype", "long"], lambda q, k, v, m, b: attention(q.long(), k, v)),
    "bool": (["float32", "bool"], lambda q, k, v, m, b: attention(q.bool(), k.bool(), v.bool())),
    "complex": (["float32", "complex"], lambda q, k, v, m, b: attention(*(t.to(torch.complex64) for t in (q, k, v)))),
    "k on meta": (["device", "meta"], lambda q, k, v, m, b: attention(q, k.to("meta"), v)),
    "q on meta": (["device", "meta"], lambda q, k, v, m, b: attention(q.to("meta"), k, v)),
    "mask on meta": (["key_padding_mask", "meta"], lambda q, k, v, m, b: attention(q, k, v,
                                                                                  key_padding_mask=m.to("meta"))),
    "bias on meta": (["attn_bias", "meta"], lambda q, k, v, m, b: attention(q, k, v, attn_bias=b.to("meta"))),
    "mask short": (["key_padding_mask", "[2, 7]", "[2, 6]"], lambda q, k, v, m, b: attention(
        q, k, v, key_padding_mask=m[:, :6])),
    "mask 4-D (transformers layout)": (["key_padding_mask", "[2, 7]"], lambda q, k, v, m, b: attention(
        q, k, v, key_padding_mask=m[:, None, None, :])),
    "mask per beam with kv_group": (["key_padding_mask", "[1, 7]"], lambda q, k, v, m, b: attention(
        q, k[:1], v[:1], key_padding_mask=m, kv_group=2)),
    "mask as list": (["key_padding_mask"], lambda q, k, v, m, b: attention(q, k, v, key_padding_mask=m.tolist())),
    "mask as str": (["key_padding_mask"], lambda q, k, v, m, b: attention(q, k, v, key_padding_mask="1111111")),
    "bias not broadcastable": (["attn_bias", "broadcast", "[2, 2, 5, 7]"], lambda q, k, v, m, b: attention(
        q, k, v, attn_bias=torch.zeros(2, 2, 5, 8))),
    "bias 3-D": (["attn_bias", "4-d"], lambda q, k, v, m, b: attention(q, k, v, attn_bias=b[0])),
    "bias wrong heads": (["attn_bias", "broadcast"], lambda q, k, v, m, b: attention(
        q, k, v, attn_bias=torch.zeros(1, 3, 1, 7))),
    "bias int": (["attn_bias", "floating"], lambda q, k, v, m, b: attention(q, k, v, attn_bias=b.long())),
    "kv_group mismatch": (["kv_group", "batch"], lambda q, k, v, m, b: attention(q, k, v, kv_group=2)),
    "kv_group 0": (["kv_group"], lambda q, k, v, m, b: attention(q, k, v, kv_group=0)),
    "kv_group negative": (["kv_group"], lambda q, k, v, m, b: attention(q, k, v, kv_group=-2)),
    "heads differ": (["head"], lambda q, k, v, m, b: attention(q, k[:, :, :1], v[:, :, :1])),
    "qk dims differ": (["dim", "8", "4"], lambda q, k, v, m, b: attention(q, k[..., :4], v)),
    "k/v lengths differ": (["k and v", "length"], lambda q, k, v, m, b: attention(q, k, v[:, :3])),
    "v dim 0": (["dim", "positive"], lambda q, k, v, m, b: attention(q, k, v[..., :0])),
    "qk dim 0": (["dim"], lambda q, k, v, m, b: attention(q[..., :0], k[..., :0], v)),
    "non-contiguous head dim q": (["contiguous"], lambda q, k, v, m, b: attention(
        q.transpose(2, 3).contiguous().transpose(2, 3), k, v)),
    "non-contiguous head dim v": (["contiguous"], lambda q, k, v, m, b: attention(
        q, k, v.transpose(2, 3).contiguous().transpose(2, 3))),
    "strided head dim": (["contiguous"], lambda q, k, v, m, b: attention(q[..., ::2], k[..., ::2], v)),
    "scale nan": (["scale", "nan"], lambda q, k, v, m, b: attention(q, k, v, scale=float("nan"))),
    "scale inf": (["scale", "inf"], lambda q, k, v, m, b: attention(q, k, v, scale=float("inf"))),
    "scale -inf": (["scale", "inf"], lambda q, k, v, m, b: attention(q, k, v, scale=float("-inf"))),
    "scale as str": (["scale"], lambda q, k, v, m, b: attention(q, k, v, scale="0.5")),
    "kv_group float": (["kv_group"], lambda q, k, v, m, b: attention(q, k, v, kv_group=1.5)),
}
@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_raises_input_error(case):
    needles, call = BAD_INPUTS[case]
    g = torch.Generator().manual_seed(41)
    q, k, v = make_qkv(g, batch=2, q_len=5, kv_len=7, heads=2, dim=8)
    mask = make_mask(g, "holes", 2, 7)
    bias = randn(g, 2, 2, 5, 7)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the pure-torch fallback warns for meta tensors
        with pytest.raises(InputError) as info:
            call(q, k, v, mask, bias)
    message = str(info.value).lower()
    for needle in needles:
        assert needle.lower() in message, f"{needle!r} not in {info.value}"
    assert "exception raised from" not in message  # no C++ stack trace leaks into the message
