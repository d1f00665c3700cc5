"""Worker processes: they die with the driver, so a killed run leaves no orphan training."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _children(pid: int) -> set[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return {int(p) for p in path.read_text().split()} if path.exists() else set()


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def _training(pid: int) -> bool:
    """The worker has loaded torch and initialised (so it is past its start-up)."""
    try:
        return "libtorch_cpu" in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize("moment", ["starting", "training"])
def test_killed_driver_takes_its_workers_along(tmp_path, moment):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    argv = [sys.executable, "-m", "modecov.cli", "run", "--variants", "gan,nsgan",
            "--datasets", "ring8", "--steps", "100000", "--seeds", "0",
            "--set", "hidden=16", "--set", "batch_size=32", "--workers", "2", "--quiet",
            "--out", str(tmp_path / "store")]  # fmt: skip
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        workers: set[int] = set()
        while time.monotonic() < deadline and len(workers) < 2:
            workers = {c for c in _children(proc.pid) if "spawn_main" in _cmdline(c)}
            time.sleep(0.2)
        assert len(workers) == 2, "the run did not start two workers"
        if moment == "training":
            while time.monotonic() < deadline and not all(_training(w) for w in workers):
                time.sleep(0.2)
            assert all(_training(w) for w in workers)
            time.sleep(2.0)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_alive(w) for w in workers):
            time.sleep(0.1)
        assert not any(_alive(w) for w in workers)
    finally:
        proc.kill()


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def test_before_group_is_called_where_each_group_runs_with_its_attempt():
    from modecov import backends
    from modecov.config import grid_configs

    configs = grid_configs(variants=("gan",), datasets=("ring8", "grid25"), references=False,
                           steps=2, eval_every=1, hidden=8, batch_size=16, n_eval=50,
                           n_eval_large=50)  # fmt: skip
    calls = []

    def record(cfg, attempt: int) -> None:
        calls.append((cfg.dataset, attempt))

    done = list(backends.run_local(configs, workers=1, before_group=record))
    assert calls == [("ring8", 0), ("grid25", 0)]
    assert [i for i, _ in done] == [0, 1]
