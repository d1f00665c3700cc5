"""Shared test settings."""

from __future__ import annotations

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
