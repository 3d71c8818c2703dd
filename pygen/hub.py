"""Offline resolution of ``name_or_path`` to a local checkpoint directory.

A local directory wins; otherwise a hub id ``org/name`` is looked up in the
local Hugging Face cache layout ``models--org--name/snapshots/<rev>`` (rev from
``refs/<revision>``). Nothing here touches the network.
"""
from __future__ import annotations

import os
from pathlib import Path

from .errors import InputError, ModelNotFoundError


# transformers' from_pretrained options that only steer downloading or the loading strategy. pygen
# reads local files only, so a call that passes them works unchanged and they have no effect.
DOWNLOAD_ONLY_KWARGS = ("local_files_only", "low_cpu_mem_usage", "use_safetensors", "trust_remote_code",
                        "force_download", "resume_download", "proxies", "token", "use_auth_token")


def resolve_pretrained(name_or_path: str | os.PathLike, kwargs: dict) -> Path:
    """:func:`resolve` for a ``from_pretrained(name_or_path, **kwargs)`` call: takes ``revision``,
    ``cache_dir`` and ``subfolder`` (a folder inside the checkpoint holding its files) out of
    ``kwargs`` and drops :data:`DOWNLOAD_ONLY_KWARGS` (``use_safetensors`` among them: only a model's
    loader, where it is a parameter, reads it)."""
    revision = kwargs.pop("revision", None) or "main"
    cache_dir = kwargs.pop("cache_dir", None)
    subfolder = kwargs.pop("subfolder", None) or ""
    for key in DOWNLOAD_ONLY_KWARGS:
        kwargs.pop(key, None)
    directory = resolve(name_or_path, revision=revision, cache_dir=cache_dir)
    if not subfolder:
        return directory
    if not isinstance(subfolder, (str, os.PathLike)):
        raise InputError(f"subfolder must be a str, got {type(subfolder).__name__}")
    if not (directory / subfolder).is_dir():
        raise ModelNotFoundError(f"{str(name_or_path)!r} has no subfolder {str(subfolder)!r} (looked for "
                                 f"{directory / subfolder})")
    return directory / subfolder


def cache_dirs() -> list[Path]:
    """Hub cache folders in the order huggingface_hub consults them."""
    dirs = []
    if os.environ.get("HF_HUB_CACHE"):
        dirs.append(Path(os.environ["HF_HUB_CACHE"]))
    if os.environ.get("HUGGINGFACE_HUB_CACHE"):
        dirs.append(Path(os.environ["HUGGINGFACE_HUB_CACHE"]))
    if os.environ.get("HF_HOME"):
        dirs.append(Path(os.environ["HF_HOME"]) / "hub")
    xdg = os.environ.get("XDG_CACHE_HOME")
    dirs.append((Path(xdg) if xdg else Path.home() / ".cache") / "huggingface" / "hub")
    seen, out = set(), []
    for d in dirs:
        if d not in seen:
            seen.add(d)
            out.append(d)
    return out


def resolve(name_or_path: str | os.PathLike, revision: str = "main",
            cache_dir: str | os.PathLike | None = None) -> Path:
    """Return the local directory holding the checkpoint ``name_or_path``.

    Raises :class:`ModelNotFoundError` listing every place that was searched.
    """
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise InputError(f"name_or_path must be a str or os.PathLike (a directory or a hub id), got "
                         f"{type(name_or_path).__name__}")
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return path
    looked = [str(path)]
    name = str(name_or_path)
    if path.exists():
        raise ModelNotFoundError(f"{name!r} is a file, expected a checkpoint directory")
    if name.count("/") <= 1 and not name.startswith((".", "/", "~")):
        repo = "models--" + name.replace("/", "--")
        for cache in ([Path(cache_dir).expanduser()] if cache_dir is not None else []) + cache_dirs():
            root = cache / repo
            looked.append(str(root))
            snapshots = root / "snapshots"
            if not snapshots.is_dir():
                continue
            ref = root / "refs" / revision
            if ref.is_file():
                snap = snapshots / ref.read_text(errors="replace").strip()
                looked.append(f"{snap} (refs/{revision})")
                if snap.is_dir():
                    return snap
                continue  # the revision's snapshot is not in this cache: never another one instead
            if (snapshots / revision).is_dir():  # revision given as a commit hash
                return snapshots / revision
            # A cache copied without its refs: its one snapshot is the default revision's.
            candidates = sorted(p for p in snapshots.iterdir() if p.is_dir())
            if revision == "main" and not (root / "refs").exists() and len(candidates) == 1:
                return candidates[0]
    raise ModelNotFoundError(
        f"Could not find a checkpoint for {name!r} (pygen never downloads). Looked in:\n  "
        + "\n  ".join(looked)
    )
