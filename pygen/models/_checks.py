"""Input checks shared by the models' public entry points.

Every check runs on the host before any kernel, and raises :class:`~pygen.errors.InputError`
with a message that names the argument (as the caller spelled it) and says what was expected.
Order matters: type, dtype, rank, emptiness, then device, and only then values, so a tensor on
another device (``meta`` included, which has no data) never reaches an op that reads it.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import torch
from torch import Tensor

from ..errors import InputError


def check_tensor(name: str, value: Any) -> Tensor:
    if not isinstance(value, Tensor):
        raise InputError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    return value


def check_device(name: str, value: Tensor, device: torch.device) -> None:
    """``value`` must live on the model's ``device`` (a ``meta`` tensor holds no data at all)."""
    if value.device != device:
        hint = " (a meta tensor holds no data)" if value.device.type == "meta" else ""
        raise InputError(f"{name} is on device {value.device}{hint} but the model is on {device}; "
                         f"move it with .to({str(device)!r})")


def _is_integer(value: Tensor) -> bool:
    return not (value.dtype.is_floating_point or value.dtype.is_complex or value.dtype == torch.bool)


def check_ids(name: str, ids: Any, vocab_size: int, device: torch.device,
              what: Optional[str] = None) -> tuple[int, int]:
    """A non-empty ``[batch, length]`` integer tensor on ``device`` with values in ``[0, vocab_size)``;
    returns ``(batch, length)``. ``what`` says where the bound comes from (default: the vocabulary)."""
    ids = check_tensor(name, ids)
    if not _is_integer(ids):
        raise InputError(f"{name} must hold integer token ids, got dtype {ids.dtype}")
    if ids.dtype not in (torch.int64, torch.int32):  # what embedding lookups take
        raise InputError(f"{name} must hold int64 (or int32) token ids, got dtype {ids.dtype}; convert with .long()")
    if ids.dim() != 2:
        raise InputError(f"{name} must be 2-D [batch, length], got shape {tuple(ids.shape)}")
    if ids.numel() == 0:
        raise InputError(f"{name} is empty (shape {tuple(ids.shape)}); give at least one row and one token")
    check_device(name, ids, device)
    low, high = (int(x) for x in torch.aminmax(ids))
    if low < 0 or high >= vocab_size:
        bad = low if low < 0 else high
        where = f"the vocabulary [0, {vocab_size})" if what is None else f"[0, {vocab_size}) ({what})"
        raise InputError(f"{name} holds id {bad}, outside {where}")
    return ids.shape[0], ids.shape[1]


def check_embeds(name: str, embeds: Any, width: int, device: torch.device,
                 dtype: Optional[torch.dtype] = None) -> tuple[int, int]:
    """Non-empty floating ``[batch, length, width]`` embeddings on ``device`` (of ``dtype`` when given,
    outside autocast); returns ``(batch, length)``."""
    embeds = check_tensor(name, embeds)
    if not embeds.is_floating_point():
        raise InputError(f"{name} must be a floating tensor, got dtype {embeds.dtype}")
    if embeds.dim() != 3 or embeds.shape[-1] != width:
        raise InputError(f"{name} must be [batch, length, {width}], got shape {tuple(embeds.shape)}")
    if embeds.shape[0] == 0 or embeds.shape[1] == 0:
        raise InputError(f"{name} is empty (shape {tuple(embeds.shape)})")
    check_device(name, embeds, device)
    if dtype is not None and embeds.dtype != dtype and not torch.is_autocast_enabled(device.type):
        raise InputError(f"{name} has dtype {embeds.dtype} but the model's weights are {dtype}; "
                         f"convert it with .to({dtype})")
    return embeds.shape[0], embeds.shape[1]


def check_mask(name: str, mask: Any, shape: Sequence[int], device: torch.device) -> Optional[Tensor]:
    """A padding mask (nonzero = attend) of exactly ``shape`` on ``device``; returned as bool."""
    if mask is None:
        return None
    mask = check_tensor(name, mask)
    if mask.dtype.is_complex:
        raise InputError(f"{name} must be bool, integer or float (1 = attend, 0 = padding), got dtype {mask.dtype}")
    if tuple(mask.shape) != tuple(shape):
        raise InputError(f"{name} must have shape {list(shape)} (1 = attend, 0 = padding), got {list(mask.shape)}")
    check_device(name, mask, device)
    return mask.bool()


def check_labels(name: str, labels: Any, vocab_size: int, device: torch.device,
                 shape: Optional[Sequence[int]] = None) -> Tensor:
    """Language-modelling targets: integer ids in ``[0, vocab_size)`` or -100 (ignored), of ``shape``
    when given. Labels on another real device are moved to ``device`` (transformers does the same);
    a ``meta`` tensor has no values to check. Returns the labels on ``device``."""
    labels = check_tensor(name, labels)
    if not _is_integer(labels):
        raise InputError(f"{name} must hold integer token ids (or -100), got dtype {labels.dtype}")
    if shape is not None and tuple(labels.shape) != tuple(shape):
        raise InputError(f"{name} must have shape {list(shape)} (one per logit row), got {list(labels.shape)}")
    if shape is None and labels.dim() != 2:
        raise InputError(f"{name} must be [batch, length], got shape {tuple(labels.shape)}")
    if labels.device != device:
        if labels.device.type == "meta":
            check_device(name, labels, device)
        labels = labels.to(device)
    valid = (labels == -100) | ((labels >= 0) & (labels < vocab_size))
    if not bool(valid.all()):
        bad = int(labels[~valid][0])
        raise InputError(f"{name} holds {bad}; labels must be -100 (ignored) or in [0, {vocab_size})")
    return labels.long()  # the loss takes int64 targets


def first_hidden_state(name: str, encoder_outputs: Any) -> Any:
    """The last hidden state in ``encoder_outputs``: an output object, a dict, a tuple/list or a tensor."""
    if isinstance(encoder_outputs, Tensor):
        return encoder_outputs
    if isinstance(encoder_outputs, dict):
        if "last_hidden_state" not in encoder_outputs:
            raise InputError(f"{name} has no 'last_hidden_state'")
        return encoder_outputs["last_hidden_state"]
    hidden = getattr(encoder_outputs, "last_hidden_state", None)
    if hidden is not None:
        return hidden
    if isinstance(encoder_outputs, (tuple, list)) and encoder_outputs:
        return encoder_outputs[0]
    raise InputError(f"{name} must be the encoder's output or a tuple starting with its last hidden state, "
                     f"got {type(encoder_outputs).__name__}")
