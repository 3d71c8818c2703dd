"""pygen: exact, fast seq2seq generation for BART, BertGeneration/EncoderDecoder and Perceiver IO."""
from __future__ import annotations

__version__ = "0.1.0"

from . import ops
from .configuration_utils import AutoConfig, PretrainedConfig
from .errors import (CheckpointError, ConfigError, GenerationError, InputError, ModelNotFoundError,
                     PygenError)
from .generation import BaseStreamer, GenerationConfig, TextIteratorStreamer, TextStreamer, generate_batches
from .models import *  # noqa: F401,F403  (the model classes, with transformers' names)
from .models import __all__ as _model_names
from .tokenizers import *  # noqa: F401,F403
from .tokenizers import __all__ as _tokenizer_names

__all__ = ["AutoConfig", "BaseStreamer", "CheckpointError", "ConfigError", "GenerationConfig", "GenerationError",
           "InputError", "ModelNotFoundError", "PretrainedConfig", "PygenError", "TextIteratorStreamer",
           "TextStreamer", "build_info", "generate_batches", "ops",
           *_model_names, *_tokenizer_names]


def build_info() -> dict:
    """How this installation was built: versions, and which compiled kernels are present."""
    import torch

    info = {"version": __version__, "torch": torch.__version__, "cpu_kernels": False, "cpu_threads": False,
            "cuda_kernels": False, "cuda_archs": [], "cuda_available": torch.cuda.is_available()}
    if ops.extension is not None:
        info["cpu_kernels"] = True
        info["cpu_threads"] = bool(ops.extension.openmp)
        info["cuda_kernels"] = bool(ops.extension.with_cuda)
        info["cuda_archs"] = [a for a in ops.extension.cuda_archs.replace(",", ";").split(";") if a]
    else:
        info["extension_error"] = ops.extension_error
    return info
