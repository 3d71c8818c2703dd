"""Fused attention: the Python entry point, its pure-torch reference, and the autograd and
fake-tensor registrations of the compiled ``torch.ops.pygen.attention_fwd`` / ``attention_bwd``.

The compiled forward returns the output and each row's log-sum-exp; the backward recomputes
probabilities from that log-sum-exp tile by tile. ``torch.library.register_autograd`` makes the
forward op itself differentiable, so ``loss.backward()`` runs the kernels, and
``register_fake`` lets ``torch.compile(fullgraph=True)`` trace it with symbolic shapes.
"""
from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor

from ..errors import InputError
from ._loader import extension, has_kernels, warn_fallback

_DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)


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
    # Rows with no visible key give 0; softmax runs on zeros there so no NaN reaches a gradient.
    dead = (scores == float("-inf")).all(dim=-1, keepdim=True)
    probs = torch.softmax(scores.masked_fill(dead, 0.0), dim=-1).masked_fill(dead, 0.0)
    if dropout_p > 0.0:
        keep = torch.rand(probs.shape, device=probs.device, generator=generator) >= dropout_p
        probs = probs * keep / (1.0 - dropout_p) if dropout_p < 1.0 else torch.zeros_like(probs)
    return torch.matmul(probs.to(vt.dtype), vt).transpose(1, 2).contiguous()


def attention(q: Tensor, k: Tensor, v: Tensor, *, key_padding_mask: Optional[Tensor] = None,
              attn_bias: Optional[Tensor] = None, causal: bool = False, scale: Optional[float] = None,
              kv_group: int = 1, dropout_p: float = 0.0, generator: Optional[torch.Generator] = None) -> Tensor:
    """Fused multi-head attention (self, causal, cross, KV-cache decoding), differentiable.

    Args:
        q: ``[batch, q_len, heads, qk_dim]``.
        k: ``[batch / kv_group, kv_len, heads, qk_dim]``; v: ``[batch / kv_group, kv_len, heads, v_dim]``.
            Only the last dim must be contiguous, so views into a preallocated KV cache are fine.
        key_padding_mask: ``[batch / kv_group, kv_len]``, nonzero/True = attend.
        attn_bias: additive float mask broadcastable to ``[batch, heads, q_len, kv_len]``
            (may hold ``-inf`` or ``finfo.min``).
        causal: query ``i`` sees keys ``j <= i + kv_len - q_len`` (bottom-right aligned).
        scale: score scale, default ``qk_dim ** -0.5``.
        kv_group: query rows per kv row (beams sharing one source's keys and values).
        dropout_p: dropout on attention probabilities (training). Runs the pure-torch reference.
    Returns:
        ``[batch, q_len, heads, v_dim]``; rows with no visible key are 0.

    The compiled kernels serve every call except dropout, an ``attn_bias`` that requires grad,
    and devices without kernels; those run :func:`attention_reference`.
    """
    for name, t in (("q", q), ("k", k), ("v", v), ("key_padding_mask", key_padding_mask), ("attn_bias", attn_bias)):
        if t is not None and not isinstance(t, Tensor):
            raise InputError(f"attention: {name} must be a torch.Tensor, got {type(t).__name__}")
    if scale is None:
        if q.dim() == 4 and q.shape[-1] == 0:
            raise InputError(f"attention: head dims must be positive, got q {tuple(q.shape)}")
        scale = q.shape[-1] ** -0.5 if q.dim() == 4 else 1.0
    if isinstance(scale, bool) or not isinstance(scale, (int, float, torch.SymInt, torch.SymFloat)):
        raise InputError(f"attention: scale must be a float, got {type(scale).__name__}")
    # Under torch.compile the scale may be symbolic, and testing it would break the graph.
    if not torch.compiler.is_compiling() and not math.isfinite(scale):
        raise InputError(f"attention: scale must be finite, got {scale}")
    if not 0.0 <= dropout_p <= 1.0:
        raise InputError(f"attention: dropout_p must be in [0, 1], got {dropout_p}")
    if key_padding_mask is not None and key_padding_mask.dtype != torch.bool:
        key_padding_mask = key_padding_mask != 0
    bias_grad = attn_bias is not None and attn_bias.requires_grad and torch.is_grad_enabled()
    if dropout_p > 0.0 or bias_grad or not has_kernels(q.device):
        if not has_kernels(q.device):
            warn_fallback()
        _check_attention_python(q, k, v, key_padding_mask, attn_bias, kv_group)
        return attention_reference(q, k, v, key_padding_mask, attn_bias, causal, scale, kv_group, dropout_p, generator)
    if torch.compiler.is_compiling():  # checked by the fake impl while tracing
        return torch.ops.pygen.attention_fwd(q, k, v, key_padding_mask, attn_bias, causal, float(scale), kv_group)[0]
    try:
        if torch.is_grad_enabled() and (q.requires_grad or k.requires_grad or v.requires_grad):
            out, _ = torch.ops.pygen.attention_fwd(q, k, v, key_padding_mask, attn_bias, causal, float(scale), kv_group)
        else:  # skips the Python autograd kernel of register_autograd, a third of a decoding call's cost
            with torch._C._AutoDispatchBelowAutograd():
                out, _ = torch.ops.pygen.attention_fwd.default(q, k, v, key_padding_mask, attn_bias, causal,
                                                               float(scale), kv_group)
    except (RuntimeError, ValueError, TypeError) as exc:
        raise InputError(str(exc).split("\nException raised from")[0]) from None
    return out


def _check_attention_python(q, k, v, key_padding_mask, attn_bias, kv_group) -> None:
    """The checks the C++ entry makes, for the fallback path and the fake impl."""
    if q.dim() != 4 or k.dim() != 4 or v.dim() != 4:
        raise InputError(f"attention: q, k, v must be 4-D [batch, len, heads, dim], got q {tuple(q.shape)}, "
                         f"k {tuple(k.shape)}, v {tuple(v.shape)}")
    if not (q.dtype == k.dtype == v.dtype) or q.dtype not in _DTYPES:
        raise InputError(f"attention: q, k, v must share a dtype among float32, float64, float16, bfloat16, "
                         f"got {q.dtype}, {k.dtype}, {v.dtype}")
    if not (q.device == k.device == v.device):
        raise InputError(f"attention: q, k, v must be on one device, got {q.device}, {k.device}, {v.device}")
    if kv_group < 1 or q.shape[0] != k.shape[0] * kv_group:
        raise InputError(f"attention: q batch {q.shape[0]} must equal k batch {k.shape[0]} x kv_group {kv_group}")
    if v.shape[:3] != k.shape[:3] or k.shape[2] != q.shape[2] or k.shape[3] != q.shape[3]:
        raise InputError(f"attention: incompatible shapes q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}")
    if q.stride(3) != 1 or k.stride(3) != 1 or v.stride(3) != 1:
        raise InputError("attention: the head dim of q, k, v must be contiguous (stride 1)")
    if key_padding_mask is not None:
        if key_padding_mask.dtype != torch.bool or tuple(key_padding_mask.shape) != (k.shape[0], k.shape[1]):
            raise InputError(f"attention: key_padding_mask must be bool [{k.shape[0]}, {k.shape[1]}], "
                             f"got {key_padding_mask.dtype} {tuple(key_padding_mask.shape)}")
        if key_padding_mask.device != q.device:
            raise InputError(f"attention: key_padding_mask is on {key_padding_mask.device}, q on {q.device}")
    if attn_bias is not None:
        want = (q.shape[0], q.shape[2], q.shape[1], k.shape[1])
        if attn_bias.dim() != 4 or any(b != 1 and b != w for b, w in zip(attn_bias.shape, want)):
            raise InputError(f"attention: attn_bias of shape {tuple(attn_bias.shape)} does not broadcast to "
                             f"[{want[0]}, {want[1]}, {want[2]}, {want[3]}]")
        if not attn_bias.is_floating_point() or attn_bias.device != q.device:
            raise InputError(f"attention: attn_bias must be floating point on {q.device}, "
                             f"got {attn_bias.dtype} on {attn_bias.device}")


def _lse_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def _fwd_fake(q, k, v, key_padding_mask, attn_bias, causal, scale, kv_group):
    _check_attention_python(q, k, v, key_padding_mask, attn_bias, kv_group)
    batch, q_len, heads, _ = q.shape
    out = q.new_empty(batch, q_len, heads, v.shape[-1])
    lse = q.new_empty(batch, heads, q_len, dtype=_lse_dtype(q.dtype))
    return out, lse


def _bwd_fake(grad_out, q, k, v, out, lse, key_padding_mask, attn_bias, causal, scale, kv_group):
    return q.new_empty(q.shape), k.new_empty(k.shape), v.new_empty(v.shape)


def _setup_context(ctx, inputs, output):
    q, k, v, key_padding_mask, attn_bias, causal, scale, kv_group = inputs
    out, lse = output
    ctx.mark_non_differentiable(lse)
    ctx.save_for_backward(q, k, v, out, lse, key_padding_mask, attn_bias)
    ctx.causal, ctx.scale, ctx.kv_group = causal, scale, kv_group


# |lse| above which a row's probabilities cannot be rebuilt from lse alone (m + log(l) lost log(l)
# to rounding: every key under a large additive bias). The CPU kernel recomputes such rows itself.
_EXACT_LSE = 256.0


def _backward(ctx, grad_out, _grad_lse):
    q, k, v, out, lse, key_padding_mask, attn_bias = ctx.saved_tensors
    create_graph = torch.is_grad_enabled()  # double backward: the kernels' backward is not differentiable
    lost_lse = (attn_bias is not None and q.device.type != "cpu"
                and bool(((lse.abs() > _EXACT_LSE) & lse.isfinite()).any()))
    if create_graph or lost_lse:
        dq, dk, dv = _reference_backward(ctx, grad_out, (q, k, v), key_padding_mask, attn_bias, create_graph)
    else:
        dq, dk, dv = torch.ops.pygen.attention_bwd(grad_out, q, k, v, out, lse, key_padding_mask, attn_bias,
                                                   ctx.causal, ctx.scale, ctx.kv_group)
    return dq, dk, dv, None, None, None, None, None


def _reference_backward(ctx, grad_out, qkv, key_padding_mask, attn_bias, create_graph):
    """The gradients of :func:`attention_reference` (the same to rounding), differentiable with ``create_graph``."""
    needs = ctx.needs_input_grad[:3]
    with torch.enable_grad():
        if not create_graph:
            qkv = tuple(t.detach().requires_grad_(need) for t, need in zip(qkv, needs))
        ref = attention_reference(*qkv, key_padding_mask, attn_bias, ctx.causal, ctx.scale, ctx.kv_group)
        found = iter(torch.autograd.grad(ref, [t for t, need in zip(qkv, needs) if need], grad_out,
                                         create_graph=create_graph))
    return tuple(next(found) if need else None for need in needs)


if extension is not None:
    torch.library.register_fake("pygen::attention_fwd", _fwd_fake)
    torch.library.register_fake("pygen::attention_bwd", _bwd_fake)
    torch.library.register_autograd("pygen::attention_fwd", _backward, setup_context=_setup_context)
