"""Reading and writing weight files: safetensors (single or sharded) and pytorch_model.bin.

Every failure is turned into a :class:`CheckpointError` naming the file, so a truncated
download never surfaces as a cryptic parser message or a crash.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional

import torch

from .errors import CheckpointError

SAFE_WEIGHTS = "model.safetensors"
SAFE_INDEX = "model.safetensors.index.json"
TORCH_WEIGHTS = "pytorch_model.bin"
TORCH_INDEX = "pytorch_model.bin.index.json"


def _load_safetensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    _check_safetensors_header(path)
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"cannot read {path}: {exc}") from None
    except BaseException as exc:
        # A Rust panic in safetensors surfaces as pyo3's PanicException, a BaseException.
        if type(exc).__name__ == "PanicException":
            raise CheckpointError(f"cannot read {path}: {exc}") from None
        raise


def _parse_json(data: bytes | str):
    """``json.loads`` that raises only ``ValueError``: deep nesting (RecursionError) and
    over-long integer literals (ValueError) included."""
    try:
        return json.loads(data)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def _check_safetensors_header(path: Path) -> None:
    """Validate the header and the declared data size before handing the file to safetensors."""
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise CheckpointError(f"{path} is truncated ({size} bytes): not a safetensors file")
            n = int.from_bytes(head, "little")
            if n <= 0 or 8 + n > size:
                raise CheckpointError(f"{path} is truncated or corrupt: header of {n} bytes in a {size}-byte file")
            raw = f.read(n)
    except OSError as exc:
        raise CheckpointError(f"cannot read {path}: {exc}") from None
    try:
        header = _parse_json(raw)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise CheckpointError(f"{path} is corrupt: its header is not valid JSON") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path} is corrupt: header is not a JSON object")
    end = 0
    for name, info in header.items():
        if name == "__metadata__":
            continue
        offsets = info.get("data_offsets") if isinstance(info, dict) else None
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets)):
            raise CheckpointError(f"{path} is corrupt: bad entry for tensor {name!r}")
        end = max(end, offsets[1])
    if 8 + n + end > size:
        raise CheckpointError(
            f"{path} is truncated: tensors need {8 + n + end} bytes, the file has {size}"
        )


def _load_torch_bin(path: Path) -> dict[str, torch.Tensor]:
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for bad pickles / zip archives
        raise CheckpointError(f"cannot read {path}: {type(exc).__name__}: {exc}") from None
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in state.items()):
        raise CheckpointError(f"{path} does not hold a state dict of tensors")
    return state


def _load_sharded(index_path: Path, loader) -> dict[str, torch.Tensor]:
    try:
        index = _parse_json(index_path.read_text(encoding="utf-8"))
        weight_map = index["weight_map"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{index_path} is not a valid shard index: {exc}") from None
    if not isinstance(weight_map, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                   for k, v in weight_map.items()):
        raise CheckpointError(f"{index_path} is not a valid shard index: 'weight_map' must map tensor names "
                              "to shard file names")
    shards = sorted(set(weight_map.values()))
    state: dict[str, torch.Tensor] = {}
    for shard in shards:
        shard_path = index_path.parent / shard
        if Path(shard).is_absolute() or ".." in Path(shard).parts:
            raise CheckpointError(f"shard {shard!r} listed in {index_path.name} is not inside the checkpoint directory")
        if not shard_path.is_file():
            raise CheckpointError(f"shard {shard} listed in {index_path.name} is missing")
        state.update(loader(shard_path))
    missing = set(weight_map) - set(state)
    if missing:
        raise CheckpointError(f"{index_path.name} lists tensors no shard holds: {sorted(missing)[:5]}")
    return state


def weight_files(directory: Path) -> list[Path]:
    """The weight file(s) pygen would read from ``directory``, in order of preference."""
    for name in (SAFE_WEIGHTS, SAFE_INDEX, TORCH_WEIGHTS, TORCH_INDEX):
        if (directory / name).is_file():
            return [directory / name]
    return []


def load_state_dict(directory: str | os.PathLike, use_safetensors: Optional[bool] = None) -> dict[str, torch.Tensor]:
    """Load all tensors of the checkpoint in ``directory`` onto the CPU: safetensors first, else
    pytorch_model.bin; transformers' ``use_safetensors`` True / False reads only the one kind."""
    directory = Path(directory)
    safe = use_safetensors is not False
    torch_bin = use_safetensors is not True
    if safe and (directory / SAFE_WEIGHTS).is_file():
        return _load_safetensors(directory / SAFE_WEIGHTS)
    if safe and (directory / SAFE_INDEX).is_file():
        return _load_sharded(directory / SAFE_INDEX, _load_safetensors)
    if torch_bin and (directory / TORCH_WEIGHTS).is_file():
        return _load_torch_bin(directory / TORCH_WEIGHTS)
    if torch_bin and (directory / TORCH_INDEX).is_file():
        return _load_sharded(directory / TORCH_INDEX, _load_torch_bin)
    expected = [name for name, ok in ((SAFE_WEIGHTS, safe), (SAFE_INDEX, safe), (TORCH_WEIGHTS, torch_bin),
                                      (TORCH_INDEX, torch_bin)) if ok]
    why = "" if use_safetensors is None else f" (use_safetensors={use_safetensors})"
    raise CheckpointError(f"no weights in {directory}{why}: expected one of {', '.join(expected)}")


_SIZE_UNITS = {"KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "KB": 10**3, "MB": 10**6, "GB": 10**9, "B": 1}


def parse_size(size: int | str) -> int:
    """Bytes of ``size``: an int, or a string such as "5GB" (10^9 bytes) or "500MiB" (2^20), as transformers."""
    if isinstance(size, int) and not isinstance(size, bool) and size > 0:
        return size
    if isinstance(size, str):
        text = size.strip().upper()
        for unit, factor in _SIZE_UNITS.items():
            if text.endswith(unit):
                try:
                    value = float(text[:-len(unit)])
                except ValueError:
                    break
                if value > 0:
                    return int(value * factor)
    raise CheckpointError(f"max_shard_size must be a positive number of bytes or a string like '5GB', got {size!r}")


def save_state_dict(state: dict[str, torch.Tensor], directory: str | os.PathLike,
                    max_shard_size: int | str = "50GB") -> Path:
    """Write ``state`` as ``model.safetensors``, or as shards of at most ``max_shard_size`` (a tensor
    larger than that gets a shard of its own) with ``model.safetensors.index.json``, named as
    transformers names them. Tensors sharing storage are written as copies."""
    from safetensors.torch import save_file

    limit = parse_size(max_shard_size)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    seen: set[int] = set()
    shards: list[dict[str, torch.Tensor]] = [{}]
    shard_bytes = 0
    for name, tensor in state.items():
        tensor = tensor.detach()
        ptr = tensor.untyped_storage().data_ptr()
        if ptr in seen or not tensor.is_contiguous():
            tensor = tensor.clone()
        seen.add(tensor.untyped_storage().data_ptr())
        size = tensor.numel() * tensor.element_size()
        if shards[-1] and shard_bytes + size > limit:
            shards.append({})
            shard_bytes = 0
        shards[-1][name] = tensor.cpu().contiguous()
        shard_bytes += size
    for old in [*directory.glob("model-*-of-*.safetensors"), directory / SAFE_INDEX, directory / SAFE_WEIGHTS]:
        old.unlink(missing_ok=True)  # what an earlier save with other shards left
    if len(shards) == 1:
        path = directory / SAFE_WEIGHTS
        save_file(shards[0], str(path), metadata={"format": "pt"})
        return path
    weight_map, total = {}, 0
    for i, shard in enumerate(shards, 1):
        file = f"model-{i:05d}-of-{len(shards):05d}.safetensors"
        save_file(shard, str(directory / file), metadata={"format": "pt"})
        for name, tensor in shard.items():
            weight_map[name] = file
            total += tensor.numel() * tensor.element_size()
    path = directory / SAFE_INDEX
    path.write_text(json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2))
    return path
