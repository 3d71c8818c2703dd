"""Preallocated key/value cache for incremental decoding.

Self-attention keys/values live in one buffer per layer, ``[batch, capacity, heads, dim]``;
each decoder forward writes its new positions in place and attends over a view of the
filled prefix (the attention op takes strided views, so nothing is copied). Cross-attention
keys/values are computed once per source sequence and kept at the source batch size: beams
read them through the attention op's ``kv_group`` instead of holding copies.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor


class KVCache:
    """Self- and cross-attention cache of one decoder.

    Protocol used by decoder layers during one forward pass::

        k_all, v_all = cache.append(layer, k_new, v_new)   # writes at positions [length, length + n)
        ...all layers...
        cache.advance(n)                                   # once, after the last layer
    """

    def __init__(self, num_layers: int, capacity: int = 0):
        self.num_layers = num_layers
        self.capacity = capacity
        self.length = 0  # positions filled
        self.keys: list[Optional[Tensor]] = [None] * num_layers
        self.values: list[Optional[Tensor]] = [None] * num_layers
        self.cross: list[Optional[tuple[Tensor, Tensor]]] = [None] * num_layers
        self.cross_mask: Optional[Tensor] = None  # [source_batch, source_len] bool
        self.kv_group = 1  # query rows per cross-attention row (num_beams)
        # Generation's caches (gen_new_cache) hold their source: later steps cross-attend to it
        # without being given encoder_hidden_states. A forward() given none skips cross-attention,
        # as transformers' decoders do.
        self.attends_cached_source = False
        self.reallocations = 0  # buffer growths; stays 0 when capacity was sized up front

    def get_seq_length(self) -> int:
        return self.length

    def _allocate(self, layer: int, k_new: Tensor, v_new: Tensor, capacity: int) -> None:
        batch, _, heads, kdim = k_new.shape
        k = torch.empty(batch, capacity, heads, kdim, dtype=k_new.dtype, device=k_new.device)
        v = torch.empty(batch, capacity, heads, v_new.shape[-1], dtype=v_new.dtype, device=v_new.device)
        old_k, old_v = self.keys[layer], self.values[layer]
        if old_k is not None and self.length:
            k[:, : self.length] = old_k[:, : self.length]
            v[:, : self.length] = old_v[:, : self.length]
        self.keys[layer], self.values[layer] = k, v

    def append(self, layer: int, k_new: Tensor, v_new: Tensor) -> tuple[Tensor, Tensor]:
        """Store ``k_new``/``v_new`` ``[batch, n, heads, dim]`` after the filled prefix; return views of all."""
        n = k_new.shape[1]
        end = self.length + n
        buf = self.keys[layer]
        if buf is None or end > buf.shape[1] or buf.shape[0] != k_new.shape[0]:
            capacity = max(end, self.capacity)
            if buf is not None and end > buf.shape[1]:
                capacity = max(capacity, 2 * buf.shape[1])
                self.reallocations += 1
            self._allocate(layer, k_new, v_new, capacity)
            self.capacity = capacity
        k, v = self.keys[layer], self.values[layer]
        k[:, self.length:end] = k_new
        v[:, self.length:end] = v_new
        return k[:, :end], v[:, :end]

    def advance(self, n: int) -> None:
        self.length += n

    def reorder(self, index: Tensor) -> None:
        """Keep rows ``index`` of the self-attention cache (beam search's parents), in place."""
        for layer in range(self.num_layers):
            k, v = self.keys[layer], self.values[layer]
            if k is None:
                continue
            k[:, : self.length] = k[:, : self.length].index_select(0, index)
            v[:, : self.length] = v[:, : self.length].index_select(0, index)

    def set_cross(self, layer: int, k: Tensor, v: Tensor) -> None:
        self.cross[layer] = (k, v)

    def get_cross(self, layer: int) -> Optional[tuple[Tensor, Tensor]]:
        return self.cross[layer]
