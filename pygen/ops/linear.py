"""``linear``: ``torch.nn.functional.linear`` with pygen's skinny CPU kernel for decoding shapes.

A decoder step multiplies a few rows (one token per beam) by every weight matrix of the decoder
and by the LM head. That product is memory bound, and MKL runs it 2-3x below the memory
bandwidth on AVX2 CPUs; ``torch.ops.pygen.linear`` streams each weight row once for all rows
(csrc/kernels/linear*). Larger inputs, other dtypes and devices take ``F.linear``.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._loader import extension


def linear(input: Tensor, weight: Tensor, bias: Optional[Tensor] = None) -> Tensor:
    """``F.linear(input, weight, bias)``; in CPU inference, float32 inputs of at most 16 rows (64
    against weights of 8M elements or more, LM heads) run the skinny kernel (same values within
    float rounding)."""
    if (input.device.type != "cpu" or extension is None or torch.compiler.is_compiling()
            or (torch.is_grad_enabled() and (input.requires_grad or weight.requires_grad
                                             or (bias is not None and bias.requires_grad)))):
        return F.linear(input, weight, bias)
    return torch.ops.pygen.linear(input, weight, bias)


class Linear(nn.Linear):
    """``nn.Linear`` (same parameters and state dict) whose forward is :func:`linear`."""

    def forward(self, input: Tensor) -> Tensor:
        return linear(input, self.weight, self.bias)
