"""Fused attention: the Python entry point and its pure-torch reference."""
from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor

from ..errors import InputError
from ._loader import has_kernels, warn_fallback

def attention_reference(q: Tensor, k: Tensor, v: Tensor, key_padding_mask: Optional[Tensor] = None,
                        attn_bias: Optional[Tensor] = None, causal: bool = False, scale: Optional[float] = None,
                        kv_group: int = 1, dropout_p: float = 0.0,
                        generator: Optional[torch.Generator] = None) -> Tensor:
    """Readable attention in plain torch ops; the semantics every kernel must reproduce.

    q [B, Lq, H, Dqk], k [B/g, Lk, H, Dqk], v [B/g, Lk, H, Dv] -> [B, Lq, H, Dv]. Rows with no
    visible key give 0.
    """
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    if kv_group > 1:
        k = k.repeat_interleave(kv_group, dim=0)
        v = v.repeat_interleave(kv_group, dim=0)
        if key_padding_mask is not None:
            key_padding_mask = key_padding_mask.repeat_interleave(kv_group, dim=0)
    qt, kt, vt = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)  # [B, H, L, D]
    acc = torch.float64 if q.dtype == torch.float64 else torch.float32
    scores = torch.matmul(qt, kt.transpose(-1, -2)).to(acc) * scale
    lq, lk = q.shape[1], k.shape[1]
    visible = torch.ones(q.shape[0], 1, lq, lk, dtype=torch.bool, device=q.device)
    if causal:
        visible = visible & torch.ones(lq, lk, dtype=torch.bool, device=q.device).tril(lk - lq)
    if key_padding_mask is not None:
        visible = visible & key_padding_mask[:, None, None, :].bool()
    if attn_bias is not None:
        scores = scores + attn_bias.to(acc)
    scores = scores.masked_fill(~visible, float("-inf"))
    probs = torch.softmax(scores, dim=-1).nan_to_num(0.0)  # all-masked rows -> 0
    if dropout_p > 0.0:
        keep = torch.rand(probs.shape, device=probs.device, generator=generator) >= dropout_p
        probs = probs * keep / (1.0 - dropout_p)
    return torch.matmul(probs.to(vt.dtype), vt).transpose(1, 2).contiguous()


def attention(q: Tensor, k: Tensor, v: Tensor, *, key_padding_mask: Optional[Tensor] = None,
              attn_bias: Optional[Tensor] = None, causal: bool = False, scale: Optional[float] = None,
              kv_group: int = 1, dropout_p: float = 0.0, generator: Optional[torch.Generator] = None) -> Tensor:
    """Fused multi-head attention (self, causal, cross, KV-cache decoding).

    Args:
        q: ``[batch, q_len, heads, qk_dim]``.
        k: ``[batch / kv_group, kv_len, heads, qk_dim]``; v: ``[batch / kv_group, kv_len, heads, v_dim]``.
            Only the last dim must be contiguous, so views into a preallocated KV cache are fine.
        key_padding_mask: ``[batch / kv_group, kv_len]``, nonzero/True = attend.
        attn_bias: additive float mask broadcastable to ``[batch, heads, q_len, kv_len]``.
        causal: query ``i`` sees keys ``j <= i + kv_len - q_len`` (bottom-right aligned).
        scale: score scale, default ``qk_dim ** -0.5``.
        kv_group: query rows per kv row (beams sharing one source's keys and values).
        dropout_p: dropout on attention probabilities (training).
    Returns:
        ``[batch, q_len, heads, v_dim]``.
    """
    if scale is None:
        scale = q.shape[-1] ** -0.5 if q.dim() == 4 else 1.0
    if not math.isfinite(scale):
        raise InputError(f"attention: scale must be finite, got {scale}")
    if key_padding_mask is not None and key_padding_mask.dtype != torch.bool:
        key_padding_mask = key_padding_mask != 0
    needs_grad = torch.is_grad_enabled() and any(t.requires_grad for t in (q, k, v) if t is not None)
    if dropout_p > 0.0 or needs_grad or not has_kernels(q.device):
        if not has_kernels(q.device):
            warn_fallback()
        _check_attention_python(q, k, v, key_padding_mask, attn_bias, kv_group)
        return attention_reference(q, k, v, key_padding_mask, attn_bias, causal, scale, kv_group, dropout_p, generator)
    try:
        out, _ = torch.ops.pygen.attention_fwd(q, k, v, key_padding_mask, attn_bias, causal, float(scale), kv_group)
    except (RuntimeError, ValueError, TypeError) as exc:
        raise InputError(str(exc).split("\nException raised from")[0]) from None
    return out


def _check_attention_python(q, k, v, key_padding_mask, attn_bias, kv_group) -> None:
    """The checks the C++ entry makes, for the fallback path."""
    if q.dim() != 4 or k.dim() != 4 or v.dim() != 4:
        raise InputError(f"attention: q, k, v must be 4-D [batch, len, heads, dim], got q {tuple(q.shape)}, "
                         f"k {tuple(k.shape)}, v {tuple(v.shape)}")
    if not (q.dtype == k.dtype == v.dtype) or not q.is_floating_point():
        raise InputError(f"attention: q, k, v must share a floating dtype, got {q.dtype}, {k.dtype}, {v.dtype}")
    if not (q.device == k.device == v.device):
        raise InputError(f"attention: q, k, v must be on one device, got {q.device}, {k.device}, {v.device}")
    if kv_group < 1 or q.shape[0] != k.shape[0] * kv_group:
        raise InputError(f"attention: q batch {q.shape[0]} must equal k batch {k.shape[0]} x kv_group {kv_group}")
    if v.shape[:3] != k.shape[:3] or k.shape[2] != q.shape[2] or k.shape[3] != q.shape[3]:
        raise InputError(f"attention: incompatible shapes q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}")
    if key_padding_mask is not None and tuple(key_padding_mask.shape) != (k.shape[0], k.shape[1]):
        raise InputError(f"attention: key_padding_mask must be [{k.shape[0]}, {k.shape[1]}], "
                         f"got {tuple(key_padding_mask.shape)}")
    if attn_bias is not None:
        try:
            torch.broadcast_shapes(tuple(attn_bias.shape), (q.shape[0], q.shape[2], q.shape[1], k.shape[1]))
        except RuntimeError:
            raise InputError(f"attention: attn_bias of shape {tuple(attn_bias.shape)} does not broadcast to "
                             f"[{q.shape[0]}, {q.shape[2]}, {q.shape[1]}, {k.shape[1]}]") from None
