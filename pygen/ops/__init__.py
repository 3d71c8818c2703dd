"""Python entry points of pygen's compiled operators (``torch.ops.pygen.*``).

When the extension ``pygen._C`` is built its kernels are always used; otherwise each op
runs its pure-torch reference, after a one-time warning that says how to build.
"""
from ._loader import extension, extension_error, has_kernels
from .attention import attention, attention_reference

__all__ = ["attention", "attention_reference", "extension", "extension_error", "has_kernels"]
