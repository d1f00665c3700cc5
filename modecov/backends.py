"""Where groups run: in this process, in worker processes, or as Ray tasks (one torch
thread each).

The driver alone writes the store: each backend yields finished TrainOutputs with their
index, in completion order, and the caller commits them. A group whose worker dies is re-run.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import multiprocessing
import os
import signal
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

import torch

from modecov.config import RunConfig
from modecov.errors import ModecovError
from modecov.train import TrainOutput, train

log = logging.getLogger(__name__)

MAX_KEPT_DIM = 3
"""Final samples travel back from workers only for low-dimensional data (for figures)."""


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


def _init_worker() -> None:
    """Settings of a worker process: one torch thread, allocator tuned for training."""
    # Two OpenMP threads beside another busy process collapse on small ops: one each.
    torch.set_num_threads(1)
    _keep_heap()


def _init_pool_worker(driver: int) -> None:
    """A pool worker: the settings above, and it dies with the driver (pid ``driver``)."""
    _die_with_parent(driver)
    _init_worker()


CRASH_ENV = "MODECOV_TEST_CRASH"
"""Test-only fault injection, read by the driver: ``variant/dataset`` of a group whose
worker kills itself on the group's first attempt (a stand-in for an OOM kill)."""


def _doomed(cfg: RunConfig, attempt: int) -> bool:
    """True when the test hook CRASH_ENV asks this attempt's worker to die."""
    return attempt == 0 and os.environ.get(CRASH_ENV) == f"{cfg.variant}/{cfg.dataset}"


MAX_RETRIES = 2
"""Re-runs of a group whose worker died, before the run gives up."""
STEP_EVERY = 0.25
"""Seconds between progress messages from a training group."""

OnStep = Callable[[int, int], None]
"""``on_step(index, step)``: group ``configs[index]`` has finished ``step`` updates."""

_queue = None
"""In a pool worker: where it tells the driver which group it starts (and its steps)."""


def _step_reporter(index: int, report: OnStep | None):
    """A ``train`` callback that calls ``report(index, step)`` at most every STEP_EVERY s."""
    if report is None:
        return None
    last = [0.0]

    def callback(state, _losses) -> None:
        now = time.monotonic()
        if now - last[0] >= STEP_EVERY or state.step == state.cfg.steps:
            last[0] = now
            report(index, state.step)

    return callback


def _run(cfg: RunConfig, callback=None) -> TrainOutput:
    out = train(cfg, callback=callback)
    if out.samples.shape[-1] > MAX_KEPT_DIM:
        out.samples = out.samples[:, :0]
    return out


def _run_in_pool(index: int, cfg: RunConfig, doomed: bool, steps: bool) -> TrainOutput:
    """One group in a pool worker: it says which process runs it, then (when ``steps``)
    reports its progress, through the driver's queue."""
    queue = _queue
    queue.put(("start", index, os.getpid()))  # a SimpleQueue: written before this returns
    if doomed:
        os.kill(os.getpid(), signal.SIGKILL)
    report = (lambda i, step: queue.put(("step", i, step))) if steps else None
    return _run(cfg, _step_reporter(index, report))


def _init_pool_worker_with_queue(driver: int, queue) -> None:
    global _queue
    _queue = queue
    _init_pool_worker(driver)


def _lost(cfg: RunConfig, attempts: int) -> ModecovError:
    return ModecovError(
        f"the worker running {cfg.variant} on {cfg.dataset} died {attempts} "
        f"time{'s' * (attempts > 1)} (out of "
        "memory or killed); finished groups are stored, re-run the same command to resume"
    )


def run_local(
    configs: Sequence[RunConfig], *, workers: int, on_step: OnStep | None = None
) -> Iterator[tuple[int, TrainOutput]]:
    """Train ``configs`` in ``workers`` processes (in this process when 1).

    Results do not depend on ``workers``: every group runs with one torch thread. A worker
    that dies (out of memory, killed) breaks the pool: a new pool re-runs the unfinished
    groups, and the group whose worker died counts a failed attempt (at most MAX_RETRIES
    re-runs).

    Args:
        configs: the groups, started in this order.
        workers: processes; 1 trains in this process.
        on_step: progress callback, called in this process.

    Yields:
        ``(index in configs, output)`` of each group as it finishes.
    """
    if workers < 1:
        raise ModecovError(f"--workers must be >= 1, got {workers}")
    if workers == 1 or len(configs) == 1:
        threads = torch.get_num_threads()
        _init_worker()
        try:
            for i, cfg in enumerate(configs):
                yield i, _run(cfg, _step_reporter(i, on_step))
        finally:
            torch.set_num_threads(threads)
        return
    attempts = dict.fromkeys(range(len(configs)), 0)
    while attempts:
        yield from _pool_round(configs, attempts, workers, on_step)


def _pool_round(
    configs: Sequence[RunConfig], attempts: dict[int, int], workers: int, on_step: OnStep | None
) -> Iterator[tuple[int, TrainOutput]]:
    """Run the groups in ``attempts`` (index -> failed attempts) in one pool until it breaks;
    finished groups leave ``attempts``, the groups of dead workers count a failed attempt."""
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.SimpleQueue()
    pool = ProcessPoolExecutor(
        min(workers, len(attempts)),
        mp_context=ctx,
        initializer=_init_pool_worker_with_queue,
        initargs=(os.getpid(), queue),
    )
    # pid -> Process (a private attribute, so optional): the exit codes tell after a break
    # which worker died by itself and which ones the broken pool terminated.
    processes = getattr(pool, "_processes", None)
    futures = {
        pool.submit(
            _run_in_pool, i, configs[i], _doomed(configs[i], attempts[i]), on_step is not None
        ): i
        for i in attempts
    }
    pending = set(futures)
    started: dict[int, int] = {}
    broken = False
    try:
        while pending:
            done, pending = wait(pending, timeout=STEP_EVERY, return_when=FIRST_COMPLETED)
            _drain(queue, started, on_step)
            for fut in done:
                i = futures[fut]
                try:
                    out = fut.result()
                except BrokenProcessPool:
                    broken = True
                    continue
                del attempts[i]
                started.pop(i, None)
                yield i, out
    finally:
        for fut in pending:
            fut.cancel()
        pool.shutdown(wait=True, cancel_futures=True)
        _drain(queue, started, None)
        queue.close()
    if broken:
        for i in _culprits(started, processes, attempts):
            attempts[i] += 1
            if attempts[i] > MAX_RETRIES:
                raise _lost(configs[i], attempts[i])
        log.warning("a worker process died; re-running %d unfinished groups", len(attempts))


def _culprits(started: dict[int, int], processes, unfinished) -> list[int]:
    """The groups whose worker died by itself (not terminated by the broken pool), or when
    that cannot be told, every started group (every unfinished one if none started)."""
    sigterm = -signal.SIGTERM
    codes = {pid: p.exitcode for pid, p in (processes or {}).items()}
    dead = [i for i, pid in started.items() if codes.get(pid) not in (None, sigterm, 0)]
    return dead or list(started) or list(unfinished)


def _drain(queue, started: dict[int, int], on_step: OnStep | None) -> None:
    """Read every queued message: record started groups, pass steps to ``on_step``."""
    try:
        while not queue.empty():
            kind, index, value = queue.get()
            if kind == "start":
                started[index] = value
            elif on_step is not None:
                on_step(index, value)
    except (OSError, EOFError, ValueError):  # the pool broke while a worker was writing
        return


RAY_INSTALL = "--backend ray needs Ray: pip install 'modecov[ray]'"


def require_ray(address: str | None) -> None:
    """Refuse ``--backend ray`` when Ray is not installed or ``address`` is unusable."""
    try:
        import ray  # noqa: F401
    except ImportError:
        raise ModecovError(RAY_INSTALL) from None
    if address is not None:
        check_address(address)


def _ray_task(cfg: RunConfig, doomed: bool) -> TrainOutput:
    """One group as a Ray task: one torch thread, like a local worker."""
    if doomed:
        os.kill(os.getpid(), signal.SIGKILL)
    _init_worker()
    return _run(cfg)


def check_address(address: str) -> None:
    """Refuse a Ray address that is malformed or where nothing listens, in a few seconds
    (``ray.init`` itself retries an unreachable address for minutes)."""
    if address == "auto":
        return
    hostport = address.removeprefix("ray://")
    host, sep, port = hostport.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ModecovError(f"--address {address!r}: expected HOST:PORT (or ray://HOST:PORT)")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=5).close()
    except OSError as exc:
        raise ModecovError(
            f"--address {address!r}: no Ray cluster reachable there ({exc.strerror or exc})"
        ) from None


def run_ray(
    configs: Sequence[RunConfig], *, workers: int, address: str | None = None
) -> Iterator[tuple[int, TrainOutput]]:
    """Train each group as one Ray task; yield outputs as they finish (the driver stores them).

    Uses the Ray runtime already initialised in this process, else connects to ``address``,
    else starts a local Ray with ``workers`` CPUs. Each task asks for one CPU, and one GPU
    when the cluster has them. A task whose worker died (out of memory, node lost) is
    resubmitted, at most MAX_RETRIES times; an error raised by the group itself is not.

    Args:
        configs: the groups, submitted in this order.
        workers: CPUs of the local Ray started when there is no ``address``.
        address: a running cluster's address (``HOST:PORT``, ``ray://HOST:PORT``, ``auto``).

    Yields:
        ``(index in configs, output)`` of each group as it finishes.
    """
    try:
        import ray
        from ray.exceptions import RayTaskError
    except ImportError:
        raise ModecovError(RAY_INSTALL) from None
    if workers < 1:
        raise ModecovError(f"--workers must be >= 1, got {workers}")
    started = False
    refs: dict = {}
    if not ray.is_initialized():
        if address is not None:
            check_address(address)
        kw = {"address": address} if address else {"num_cpus": workers}
        try:
            ray.init(**kw, include_dashboard=False, log_to_driver=False,
                     logging_level=logging.ERROR)  # fmt: skip
        except (ConnectionError, ValueError, RuntimeError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModecovError(f"cannot start or reach Ray ({first})") from None
        started = True
    try:
        gpus = ray.cluster_resources().get("GPU", 0) > 0
        task = ray.remote(_ray_task).options(num_cpus=1, num_gpus=1 if gpus else 0, max_retries=0)
        attempts = dict.fromkeys(range(len(configs)), 0)
        refs = {task.remote(cfg, _doomed(cfg, 0)): i for i, cfg in enumerate(configs)}
        while refs:
            (ref,), _ = ray.wait(list(refs), num_returns=1)
            i = refs.pop(ref)
            try:
                out = ray.get(ref)
            except RayTaskError as exc:
                if isinstance(exc.cause, ModecovError):
                    raise exc.cause from None
                raise
            except ray.exceptions.RayError as exc:
                attempts[i] += 1
                if attempts[i] > MAX_RETRIES:
                    raise _lost(configs[i], attempts[i]) from None
                cfg = configs[i]
                log.warning("the task running %s on %s was lost (%s); re-running it",
                            cfg.variant, cfg.dataset, type(exc).__name__)  # fmt: skip
                refs[task.remote(cfg, _doomed(cfg, attempts[i]))] = i
                continue
            yield i, out
    finally:
        for ref in refs:  # left unfinished by an error
            ray.cancel(ref, force=True)
        if started:
            ray.shutdown()
