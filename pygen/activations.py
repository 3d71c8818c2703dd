"""Activation functions by the names transformers' configs use, computed op for op as
transformers' ``ACT2FN`` does, so outputs match bit for bit."""
from __future__ import annotations

import math
from functools import partial
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from .errors import ConfigError


def _gelu_new(x: Tensor) -> Tensor:
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


def _gelu_fast(x: Tensor) -> Tensor:
    return 0.5 * x * (1.0 + torch.tanh(x * 0.7978845608 * (1.0 + 0.044715 * x * x)))


def _quick_gelu(x: Tensor) -> Tensor:
    return x * torch.sigmoid(1.702 * x)


def _gelu_python(x: Tensor) -> Tensor:
    return x * 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0)))


def _gelu_python_tanh(x: Tensor) -> Tensor:
    return x * 0.5 * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


def _gelu_accurate(x: Tensor) -> Tensor:
    return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * torch.pow(x, 3))))


def _gelu_10(x: Tensor) -> Tensor:
    return torch.clip(F.gelu(x), -10, 10)


def _laplace(x: Tensor, mu: float = 0.707107, sigma: float = 0.282095) -> Tensor:
    return 0.5 * (1.0 + torch.erf((x - mu).div(sigma * math.sqrt(2.0))))


def _relu2(x: Tensor) -> Tensor:
    return torch.square(F.relu(x))


def _sqrt_softplus(x: Tensor) -> Tensor:
    return F.softplus(x).sqrt()


def _identity(x: Tensor) -> Tensor:
    return x


# transformers' parameter-free activations (its "prelu" and "xielu" carry weights: not supported).
ACT2FN: dict[str, Callable[[Tensor], Tensor]] = {
    "gelu": F.gelu,
    "gelu_python": _gelu_python,
    "gelu_python_tanh": _gelu_python_tanh,
    "gelu_accurate": _gelu_accurate,
    "gelu_10": _gelu_10,
    "laplace": _laplace,
    "leaky_relu": F.leaky_relu,
    "linear": _identity,
    "mish": F.mish,
    "relu2": _relu2,
    "hardswish": F.hardswish,
    "sqrtsoftplus": _sqrt_softplus,
    "gelu_new": _gelu_new,
    "gelu_fast": _gelu_fast,
    "gelu_pytorch_tanh": partial(F.gelu, approximate="tanh"),
    "quick_gelu": _quick_gelu,
    "relu": F.relu,
    "relu6": F.relu6,
    "silu": F.silu,
    "swish": F.silu,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
}


def get_activation(name: str, field: str = "activation") -> Callable[[Tensor], Tensor]:
    """The function for ``name``; ``field`` names the config field in the error."""
    if name not in ACT2FN:
        raise ConfigError(f"{field} {name!r} is not supported; use one of {sorted(ACT2FN)}")
    return ACT2FN[name]
