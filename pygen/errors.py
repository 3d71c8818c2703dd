"""Exception types raised by pygen.

Every user-facing error derives from :class:`PygenError`, and also from the
built-in exception a transformers user would expect (``ValueError``,
``FileNotFoundError``...), so ``except ValueError`` keeps working.
"""


class PygenError(Exception):
    """Base class of all pygen errors."""


class CheckpointError(PygenError, OSError):
    """A checkpoint file is missing, truncated, corrupt or inconsistent."""


class ModelNotFoundError(CheckpointError, FileNotFoundError):
    """Neither a local directory nor a cached hub snapshot was found."""


class ConfigError(PygenError, ValueError):
    """A config file or config value is invalid (wrong type, unknown model_type...)."""


class InputError(PygenError, ValueError):
    """Bad input to a model, generate(), an op, a tokenizer or a loader (type, shape, dtype, range, device)."""


class GenerationError(PygenError, ValueError):
    """Invalid generation arguments (lengths, beams, missing special tokens...)."""
