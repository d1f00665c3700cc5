"""Where groups run: in this process, in worker processes, or as Ray tasks (one torch
thread each).

The driver alone writes the store: each backend yields finished TrainOutputs with their
index, in completion order, and the caller commits them. A group whose worker dies is re-run.
Outputs come back with the final samples the store keeps (``store.samples_kept``), no more.
"""

from __future__ import annotations

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

from modecov import worker
from modecov.config import RunConfig
from modecov.errors import ModecovError
from modecov.evaluate import train
from modecov.store import samples_kept
from modecov.train import TrainOutput

log = logging.getLogger(__name__)

# The start-up of a worker moved to modecov.worker; benchmarks/workloads.py and
# modecov/metricbench.py still import these names from here.
_init_worker = worker.init_worker
_init_pool_worker = worker.init_pool_worker

MAX_RETRIES = 2
"""Re-runs of a group whose worker died, before the run gives up."""
STEP_EVERY = 0.25
"""Seconds between progress messages from a training group."""

OnStep = Callable[[int, int], None]
"""``on_step(index, step)``: group ``configs[index]`` has finished ``step`` updates."""
BeforeGroup = Callable[[RunConfig, int], None]
"""``before_group(cfg, attempt)``: called in the process that runs a group, just before it
trains; ``attempt`` counts the group's earlier attempts whose worker died (0 the first time).
It travels to worker processes, so it must be picklable (a module-level function or an
instance of a module-level class). The fault tests kill the worker there."""


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


def _run(
    cfg: RunConfig, attempt: int, before_group: BeforeGroup | None, callback=None
) -> TrainOutput:
    """Train one group after ``before_group``; keep only the final samples the store keeps
    (copied, so that the rest does not travel back through a worker's pipe)."""
    if before_group is not None:
        before_group(cfg, attempt)
    out = train(cfg, callback=callback)
    _, n, dim = out.samples.shape
    out.samples = out.samples[:, : samples_kept(n, dim)].clone()
    return out


def _run_in_pool(
    index: int, cfg: RunConfig, attempt: int, before_group: BeforeGroup | None, steps: bool
) -> TrainOutput:
    """One group in a pool worker: it says which process runs it, then (when ``steps``)
    reports its progress, through the driver's queue."""
    queue = worker.queue
    queue.put(("start", index, os.getpid()))  # a SimpleQueue: written before this returns
    report = (lambda i, step: queue.put(("step", i, step))) if steps else None
    return _run(cfg, attempt, before_group, _step_reporter(index, report))


def _lost(cfg: RunConfig, attempts: int) -> ModecovError:
    return ModecovError(
        f"the worker running {cfg.variant} on {cfg.dataset} died {attempts} "
        f"time{'s' * (attempts > 1)} (out of "
        "memory or killed); finished groups are stored, re-run the same command to resume"
    )


def run_local(
    configs: Sequence[RunConfig],
    *,
    workers: int,
    on_step: OnStep | None = None,
    before_group: BeforeGroup | None = None,
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
        before_group: called where each group runs, before it trains (``BeforeGroup``).

    Yields:
        ``(index in configs, output)`` of each group as it finishes.
    """
    if workers < 1:
        raise ModecovError(f"--workers must be >= 1, got {workers}")
    if workers == 1 or len(configs) == 1:
        threads = torch.get_num_threads()
        worker.init_worker()
        try:
            for i, cfg in enumerate(configs):
                yield i, _run(cfg, 0, before_group, _step_reporter(i, on_step))
        finally:
            torch.set_num_threads(threads)
        return
    attempts = dict.fromkeys(range(len(configs)), 0)
    while attempts:
        yield from _pool_round(configs, attempts, workers, on_step, before_group)


def _pool_round(
    configs: Sequence[RunConfig],
    attempts: dict[int, int],
    workers: int,
    on_step: OnStep | None,
    before_group: BeforeGroup | None,
) -> Iterator[tuple[int, TrainOutput]]:
    """Run the groups in ``attempts`` (index -> failed attempts) in one pool until it breaks;
    finished groups leave ``attempts``, the groups of dead workers count a failed attempt."""
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.SimpleQueue()
    pool = ProcessPoolExecutor(
        min(workers, len(attempts)),
        mp_context=ctx,
        initializer=worker.init_pool_worker,
        initargs=(os.getpid(), queue),
    )
    # pid -> Process (a private attribute, so optional): the exit codes tell after a break
    # which worker died by itself and which ones the broken pool terminated.
    processes = getattr(pool, "_processes", None)
    futures = {
        pool.submit(_run_in_pool, i, configs[i], attempts[i], before_group, on_step is not None): i
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


def _ray_task(cfg: RunConfig, attempt: int, before_group: BeforeGroup | None) -> TrainOutput:
    """One group as a Ray task: one torch thread, like a local worker."""
    worker.init_worker()
    return _run(cfg, attempt, before_group)


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
    configs: Sequence[RunConfig],
    *,
    workers: int,
    address: str | None = None,
    before_group: BeforeGroup | None = None,
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
        before_group: called in the task before its group trains (``BeforeGroup``; Ray's
            cloudpickle carries it).

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
        refs = {task.remote(cfg, 0, before_group): i for i, cfg in enumerate(configs)}
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
                refs[task.remote(cfg, attempts[i], before_group)] = i
                continue
            yield i, out
    finally:
        for ref in refs:  # left unfinished by an error
            ray.cancel(ref, force=True)
        if started:
            ray.shutdown()
