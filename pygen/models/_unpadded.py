"""Encoders without their padding: the real tokens of a padded batch as rows of one matrix.

Everything in an encoder layer but attention works token by token (projections, feed-forward,
layer norms, residuals), so generation's encoder pass runs those on the real tokens only and
spends nothing on padding (a batch of sources of unequal length is often a quarter padding).
Attention, the one step that mixes positions, scatters its projections back to the padded
``[batch, len, ...]`` layout and gathers its output again. The real tokens' results are those of
the padded run: each output row of a matrix product depends only on its own input row.
"""
from __future__ import annotations

from typing import Optional

from torch import Tensor


class TokenRows:
    """Where the real tokens of a ``[batch, len]`` batch sit in its flattened ``batch * len`` rows."""

    def __init__(self, mask: Tensor):
        self.batch, self.length = mask.shape
        self.index = (mask.reshape(-1) != 0).nonzero().squeeze(1)

    @classmethod
    def of(cls, mask: Optional[Tensor]) -> Optional[TokenRows]:
        """The rows of ``mask`` (nonzero = real token), or None when there is no padding to skip."""
        if mask is None or bool((mask != 0).all()):
            return None
        return cls(mask)

    def pack(self, x: Tensor) -> Tensor:
        """``[batch, len, *rest]`` -> the real tokens ``[tokens, *rest]``."""
        return x.reshape(self.batch * self.length, *x.shape[2:]).index_select(0, self.index)

    def unpack(self, x: Tensor) -> Tensor:
        """``[tokens, *rest]`` -> ``[batch, len, *rest]`` with zeros at the padding."""
        out = x.new_zeros(self.batch * self.length, *x.shape[1:])
        out.index_copy_(0, self.index, x)
        return out.view(self.batch, self.length, *x.shape[1:])
