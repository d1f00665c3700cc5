"""Shared test settings."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    # Groups run with one torch thread (see backends.py); two OpenMP threads on a busy
    # 2-core machine make the tests' tiny batched matmuls orders of magnitude slower.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def smoke_store(tmp_path_factory, one_torch_thread) -> Path:
    """A finished `modecov run --suite smoke` (copy it before changing it)."""
    from modecov.cli import main

    root = tmp_path_factory.mktemp("smoke") / "store"
    assert main(["run", "--suite", "smoke", "--workers", "1", "--quiet", "--out", str(root)]) == 0
    return root
