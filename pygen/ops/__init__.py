"""Python entry points of pygen's compiled operators (``torch.ops.pygen.*``).

When the extension ``pygen._C`` is built its kernels are always used; otherwise each op
runs its pure-torch reference, after a one-time warning that says how to build.
"""
from ._loader import extension, extension_error, has_kernels
from .attention import attention, attention_reference
from .beam_search import beam_topk, beam_update_, logits_process, reorder_rows_
from .linear import Linear, linear

__all__ = ["Linear", "attention", "attention_reference", "beam_topk", "beam_update_", "extension", "extension_error",
           "has_kernels", "linear", "logits_process", "reorder_rows_"]
