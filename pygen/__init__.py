"""pygen: exact, fast seq2seq generation for BART, BertGeneration/EncoderDecoder and Perceiver IO."""
from __future__ import annotations

__version__ = "0.1.0"

from . import ops
from .errors import (CheckpointError, ConfigError, GenerationError, InputError, ModelNotFoundError,
                     PygenError)


def build_info() -> dict:
    """How this installation was built: versions, and which compiled kernels are present."""
    import torch

    info = {"version": __version__, "torch": torch.__version__, "cpu_kernels": False, "cuda_kernels": False,
            "cuda_archs": [], "cuda_available": torch.cuda.is_available()}
    if ops.extension is not None:
        info["cpu_kernels"] = True
        info["cuda_kernels"] = bool(ops.extension.with_cuda)
        info["cuda_archs"] = [a for a in ops.extension.cuda_archs.replace(",", ";").split(";") if a]
    else:
        info["extension_error"] = ops.extension_error
    return info
