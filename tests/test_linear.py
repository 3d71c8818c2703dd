"""pygen.ops.linear (the skinny CPU kernel for decoding shapes) against a float64 reference.

Every test draws fresh standard-normal inputs and checks every output element against
``F.linear`` evaluated in float64 on the same values: ``max |out - ref| / max |ref| <= 1e-5``.
Inputs of at most 16 float32 rows (64 against weights of 8M elements or more, LM heads) run the
kernel; the rest must give exactly ``F.linear``'s result.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
import torch
import torch.nn.functional as F

import pygen
from pygen.ops import Linear, linear

SKINNY_ROWS = 16
SKINNY_ROWS_LARGE_WEIGHT, LARGE_WEIGHT = 64, 8 << 20


def _rand(*shape, gen, dtype=torch.float32):
    return torch.randn(*shape, generator=gen, dtype=torch.float64).to(dtype)


def _rel_err(out, ref):
    return ((out.double() - ref).abs().max() / ref.abs().max()).item()


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(int.from_bytes(os.urandom(4), "little"))


@pytest.mark.parametrize("rows", [1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 13, 16])
@pytest.mark.parametrize("in_dim, out_dim", [(768, 50), (13, 7), (1, 3), (40, 1), (200, 321), (8, 16)])
@pytest.mark.parametrize("bias", [True, False])
def test_matches_float64_reference(gen, rows, in_dim, out_dim, bias):
    x, w = _rand(rows, in_dim, gen=gen), _rand(out_dim, in_dim, gen=gen)
    b = _rand(out_dim, gen=gen) if bias else None
    out = linear(x, w, b)
    ref = F.linear(x.double(), w.double(), None if b is None else b.double())
    assert out.shape == ref.shape and out.dtype == torch.float32
    assert torch.isfinite(out).all()
    assert _rel_err(out, ref) <= 1e-5


@pytest.mark.parametrize("threads", [1, 2])
def test_lm_head_shape_and_threads(gen, threads):
    """The LM head of a decoding step (4 beams x vocab 50265), split over threads: each element
    is the same sum in the same order, so the thread count does not change a bit."""
    x, w = _rand(4, 768, gen=gen), _rand(50265, 768, gen=gen)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = linear(x, w)
        torch.set_num_threads(threads)
        out = linear(x, w)
    finally:
        torch.set_num_threads(before)
    assert torch.equal(out, one)
    assert _rel_err(out, F.linear(x.double(), w.double())) <= 1e-5


@pytest.mark.parametrize("rows", [17, 40, SKINNY_ROWS_LARGE_WEIGHT, SKINNY_ROWS_LARGE_WEIGHT + 1])
def test_lm_head_sized_weight_with_more_rows(gen, rows):
    """Against a weight of 8M elements the kernel serves up to 64 rows; one row computed alone
    (always the kernel) equals its row of the batch exactly when the batch takes the kernel too."""
    x, w = _rand(rows, 1024, gen=gen), _rand(LARGE_WEIGHT // 1024, 1024, gen=gen)
    out = linear(x, w)
    assert _rel_err(out, F.linear(x.double(), w.double())) <= 1e-5
    if rows <= SKINNY_ROWS_LARGE_WEIGHT:
        assert torch.equal(out[-1:], linear(x[-1:], w))
    else:
        assert torch.equal(out, F.linear(x, w))


def test_rows_and_fused_outputs_are_bitwise_independent(gen):
    """A row's result does not depend on the other rows nor on the other outputs computed with it
    (the C++ engine fuses q/k/v projections that Python runs separately)."""
    x, w, b = _rand(11, 300, gen=gen), _rand(90, 300, gen=gen), _rand(90, gen=gen)
    full = linear(x, w, b)
    for r in range(11):
        assert torch.equal(linear(x[r:r + 1], w, b), full[r:r + 1])
    parts = torch.cat([linear(x, w[i:i + 30], b[i:i + 30]) for i in range(0, 90, 30)], dim=1)
    assert torch.equal(parts, full)


def test_leading_dims_and_noncontiguous_input(gen):
    x = _rand(3, 9, 2, gen=gen).transpose(1, 2)  # [3, 2, 9], last dim strided
    w, b = _rand(5, 9, gen=gen), _rand(5, gen=gen)
    out = linear(x, w, b)
    assert out.shape == (3, 2, 5)
    assert _rel_err(out, F.linear(x.double(), w.double(), b.double())) <= 1e-5


@pytest.mark.parametrize("case", ["many_rows", "float64", "bfloat16", "weight_view", "grad"])
def test_other_inputs_are_exactly_f_linear(gen, case):
    rows = SKINNY_ROWS + 1 if case == "many_rows" else 4
    dtype = {"float64": torch.float64, "bfloat16": torch.bfloat16}.get(case, torch.float32)
    x, w, b = _rand(rows, 24, gen=gen, dtype=dtype), _rand(24, 10, gen=gen, dtype=dtype), _rand(10, gen=gen, dtype=dtype)
    w = w.t() if case == "weight_view" else w.t().contiguous()
    if case == "grad":
        x.requires_grad_()
    out = linear(x, w, b)
    assert torch.equal(out, F.linear(x, w, b))
    if case == "grad":
        out.sum().backward()
        torch.testing.assert_close(x.grad, w.sum(0).expand_as(x), atol=1e-5, rtol=1e-5)


def test_shape_mismatch_raises(gen):
    with pytest.raises(RuntimeError, match="cannot be multiplied|shape"):
        linear(_rand(2, 7, gen=gen), _rand(5, 8, gen=gen))
    with pytest.raises(RuntimeError):
        linear(_rand(2, 8, gen=gen), _rand(5, 8, gen=gen), _rand(4, gen=gen))


def test_module_is_nn_linear_with_same_state_dict(gen):
    layer = Linear(6, 4)
    assert isinstance(layer, torch.nn.Linear) and set(layer.state_dict()) == {"weight", "bias"}
    x = _rand(3, 6, gen=gen)
    with torch.no_grad():
        assert _rel_err(layer(x), F.linear(x.double(), layer.weight.double(), layer.bias.double())) <= 1e-5
    model = pygen.BartForConditionalGeneration(pygen.BartConfig(
        vocab_size=50, d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, max_position_embeddings=32))
    assert isinstance(model.lm_head, Linear) and isinstance(model.model.decoder.layers[0].fc1, Linear)


def test_baseline_isa_subprocess():
    """The kernel's baseline (16-byte vector) copy, selected by ATEN_CPU_CAPABILITY=default."""
    script = textwrap.dedent("""
        import torch, torch.nn.functional as F
        from pygen.ops import linear
        g = torch.Generator().manual_seed(0)
        worst = 0.0
        for rows, i, o in [(1, 768, 100), (4, 13, 9), (7, 30, 3), (16, 5, 64)]:
            x, w, b = torch.randn(rows, i, generator=g), torch.randn(o, i, generator=g), torch.randn(o, generator=g)
            ref = F.linear(x.double(), w.double(), b.double())
            worst = max(worst, ((linear(x, w, b).double() - ref).abs().max() / ref.abs().max()).item())
        print("WORST", worst)
    """)
    env = {**os.environ, "ATEN_CPU_CAPABILITY": "default", "OMP_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert float(res.stdout.split("WORST")[-1]) <= 1e-5
