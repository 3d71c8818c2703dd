"""pygen: exact, fast seq2seq generation for BART, BertGeneration/EncoderDecoder and Perceiver IO."""
from __future__ import annotations

__version__ = "0.1.0"

from . import ops
from .configuration_utils import AutoConfig, PretrainedConfig
from .errors import (CheckpointError, ConfigError, GenerationError, InputError, ModelNotFoundError,
                     PygenError)
from .generation import (BaseStreamer, GenerationConfig, LogitsProcessorList, StoppingCriteria, StoppingCriteriaList,
                         TextIteratorStreamer, TextStreamer, generate_batches)
from .modeling_utils import PreTrainedModel
from .models import *  # noqa: F401,F403  (the model classes, with transformers' names)
from .models import __all__ as _model_names
from .tokenizers import *  # noqa: F401,F403
from .tokenizers import __all__ as _tokenizer_names

PreTrainedConfig = PretrainedConfig  # transformers 5's spelling

__all__ = ["AutoConfig", "BaseStreamer", "CheckpointError", "ConfigError", "GenerationConfig", "GenerationError",
           "InputError", "LogitsProcessorList", "ModelNotFoundError", "PreTrainedConfig", "PreTrainedModel",
           "PretrainedConfig", "PygenError", "StoppingCriteria", "StoppingCriteriaList", "TextIteratorStreamer",
           "TextStreamer", "build_info", "generate_batches", "ops", "set_seed",
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


def set_seed(seed: int, deterministic: bool = False) -> None:
    """Seed Python's, NumPy's (when installed) and torch's random generators, as transformers' set_seed."""
    import random

    import torch

    random.seed(seed)
    try:
        import numpy
    except ImportError:
        pass
    else:
        numpy.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True)
