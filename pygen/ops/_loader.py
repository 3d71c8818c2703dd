"""Loads the compiled extension ``pygen._C`` (which registers ``torch.ops.pygen.*``)."""
from __future__ import annotations

import warnings
from typing import Optional

import torch

try:
    from .. import _C as extension
    extension_error: Optional[str] = None
except ImportError as exc:  # not built: the ops fall back to pure torch
    extension = None
    extension_error = str(exc)

_warned = False


def warn_fallback() -> None:
    """Warn once that the slow pure-torch fallbacks are in use, and how to build the kernels."""
    global _warned
    if not _warned:
        _warned = True
        warnings.warn(
            f"pygen's compiled kernels are not available ({extension_error}); using slow pure-torch "
            "fallbacks. Build them with: pip install --no-build-isolation -e .",
            RuntimeWarning, stacklevel=3)


def has_kernels(device: torch.device | str = "cpu") -> bool:
    """Whether compiled kernels serve tensors on ``device``."""
    if extension is None:
        return False
    kind = torch.device(device).type
    return kind == "cpu" or (kind == "cuda" and bool(extension.with_cuda))
