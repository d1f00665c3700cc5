"""Start-up of a process that trains groups for ``modecov.backends``: it dies with the
driver, runs one torch thread and keeps freed memory on the heap.

Nothing heavy is imported at module level: a pool worker loads this module first (its
initializer), so it arranges to die with the driver before it spends seconds importing
torch and the rest of modecov, and a driver killed meanwhile takes it along.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import signal

log = logging.getLogger(__name__)

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
"""glibc ``mallopt`` parameters (malloc.h)."""
KEEP_HEAP = 1 << 30


def _keep_heap() -> None:
    """Ask glibc to keep freed activations on the heap instead of unmapping them.

    A group's activations (about 1 MiB each) otherwise take the mmap path and page-fault
    on every op: measured 8x fewer page faults and about 10% more run-iterations per
    second. A no-op where the C library is not glibc.
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(M_TRIM_THRESHOLD, KEEP_HEAP)
        libc.mallopt(M_MMAP_THRESHOLD, KEEP_HEAP)
    except (OSError, AttributeError):
        log.debug("mallopt unavailable; keeping the default allocator settings")


PR_SET_PDEATHSIG = 1
"""Linux ``prctl`` option: a signal the kernel sends this process when its parent dies."""


def _die_with_parent(driver: int) -> None:
    """Make a worker die with the driver: a killed ``modecov run`` leaves no orphan training.

    A no-op off Linux (the worker then ends when it next talks to the dead driver).
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        log.debug("prctl unavailable; workers end when the driver's pipe closes")
    if os.getppid() != driver:  # the driver died while this worker was starting
        os._exit(1)


def init_worker() -> None:
    """Settings of a process that trains: one torch thread, allocator tuned for training."""
    import torch  # here: see the module docstring

    # Two OpenMP threads beside another busy process collapse on small ops: one each.
    torch.set_num_threads(1)
    _keep_heap()


queue = None
"""In a pool worker: where it tells the driver which group it starts (and its steps)."""


def init_pool_worker(driver: int, messages=None) -> None:
    """A pool worker's initializer: it dies with the driver (pid ``driver``) first, keeps
    ``messages`` (the driver's queue, if any) as ``queue``, then takes ``init_worker``'s
    settings."""
    global queue
    _die_with_parent(driver)
    queue = messages
    init_worker()
