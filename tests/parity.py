"""Comparisons of pygen against transformers shared by the BERT-family test files."""
from __future__ import annotations

import torch

ATOL = 1e-4


def assert_close(ours: torch.Tensor, ref: torch.Tensor, atol: float = ATOL) -> None:
    assert ours.shape == ref.shape
    err = (ours - ref).abs().max().item()
    assert err <= atol, f"max abs diff {err}"


def assert_grads_close(ours: torch.nn.Module, ref: torch.nn.Module, rtol: float = 1e-4) -> None:
    """Every gradient within ``rtol`` of its parameter's largest reference gradient (plus a floor
    for gradients that are zero in exact arithmetic, such as attention key biases)."""
    ref_params = dict(ref.named_parameters())
    for name, param in ours.named_parameters():
        g_ref = ref_params[name].grad
        if g_ref is None:  # unused, e.g. the head's bias when the output layer is untied
            assert param.grad is None, name
            continue
        err = (param.grad - g_ref).abs().max().item()
        assert err <= rtol * g_ref.abs().max().item() + 1e-8, f"{name}: grad diff {err}"
