"""The user cache of classifiers that modecov trains on the user's own files (real Stacked
MNIST): where it is, and atomic, validated reads and writes. The bundled ``stacked_digits``
classifier ships with the package and never touches it."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch
from torch import Tensor

log = logging.getLogger(__name__)


def cache_dir() -> Path:
    """``$MODECOV_CACHE``, else ``$XDG_CACHE_HOME/modecov``, else ``~/.cache/modecov``."""
    if os.environ.get("MODECOV_CACHE"):
        return Path(os.environ["MODECOV_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "modecov"


def read_cache(
    path: Path, key: str, shapes: dict[str, tuple[int, ...]]
) -> dict[str, Tensor] | None:
    """The cached classifier parameters at ``path``, or None when missing, unreadable or not
    those of ``key`` with float32 tensors of ``shapes`` (name -> shape)."""
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        params = blob["params"]
        ok = blob["key"] == key and all(
            tuple(params[k].shape) == shape
            and params[k].dtype == torch.float32
            and bool(torch.isfinite(params[k]).all())
            for k, shape in shapes.items()
        )
    except FileNotFoundError:
        return None
    except Exception as exc:  # any corruption: a truncated zip, a foreign pickle, wrong keys
        log.warning("ignoring unreadable classifier cache %s (%s); rebuilding", path, exc)
        return None
    if not ok:
        log.warning("classifier cache %s does not match its recipe; rebuilding", path)
        return None
    return {k: params[k] for k in shapes}


def write_cache(path: Path, key: str, params: dict[str, Tensor]) -> None:
    """Write the cache atomically (``store.atomic_write``); warn if it cannot."""
    # Imported here: the store imports the classifiers (provenance), and the datasets that
    # read this cache sit below the store.
    from modecov.store import atomic_write

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda tmp: torch.save({"key": key, "params": params}, tmp))
    except OSError as exc:
        log.warning("cannot cache the digit classifier at %s (%s); keeping it in memory", path, exc)
