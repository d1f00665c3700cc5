"""Fault injection: `modecov run` killed with SIGKILL at 20 seeded random moments (half of
them inside a store commit) and resumed each time ends with the store of an uninterrupted
run; a local worker process that dies only means its group runs again."""

from __future__ import annotations

import contextlib
import csv
import functools
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from helpers import KillWorker, cli

from modecov import backends, progress
from modecov.store import KEY, RUNS, TRAJECTORY, Store

REPO = Path(__file__).resolve().parents[1]
RUN = [
    "run", "--variants", "gan,nsgan", "--datasets", "ring8,grid25,heavy_center", "--seeds", "0-1",
    "--steps", "40", "--set", "eval_every=10", "--set", "hidden=16", "--set", "batch_size=32",
    "--set", "n_eval=200", "--set", "n_eval_large=200", "--workers", "1",
]  # fmt: skip
GROUPS = 12
"""2 variants + 2 references, on 3 datasets."""
KILLS = 20
PAUSE = 0.1
"""Seconds each store write waits between its temporary file and the rename: the zygote
slows the store's ``os.replace`` (patched from the test's side, in that process alone), so
that kills land inside commits."""
COMMIT_TMP = tuple(f".{Path(name).stem}.*.tmp{Path(name).suffix}" for name in (TRAJECTORY, RUNS))
"""Glob patterns of the temporary files of a commit's CSVs (``store.atomic_write``)."""

# Importing torch, pandas and modecov takes seconds per process on a loaded 2-core machine,
# 20 times over: a zygote imports them once and forks one `modecov run` per attempt. Each
# child is a real process running the real CLI, killed by a real SIGKILL.
ZYGOTE = r"""
import json, os, sys, time, types
import modecov.cli, modecov.backends, modecov.device, modecov.progress, modecov.store

def _slow_replace(src, dst, _replace=os.replace):
    time.sleep(float(os.environ["ZYGOTE_PAUSE"]))  # between the temporary file and the rename
    _replace(src, dst)

# Only the store's view of os changes: its atomic writers pause before each rename.
modecov.store.os = types.SimpleNamespace(**{**vars(os), "replace": _slow_replace})
for line in sys.stdin:
    msg = json.loads(line)
    if msg["op"] == "ping":
        print(0, flush=True)
        continue
    if msg["op"] == "wait":
        _, status = os.waitpid(msg["pid"], 0)
        print(os.waitstatus_to_exitcode(status), flush=True)
        continue
    pid = os.fork()
    if pid == 0:
        null = os.open(os.devnull, os.O_RDWR)
        log = os.open(msg["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(null, 0), os.dup2(null, 1), os.dup2(log, 2)
        try:
            rc = modecov.cli.main(msg["argv"])
        except SystemExit as exc:
            rc = exc.code
        sys.stderr.flush()
        os._exit(rc or 0)
    print(pid, flush=True)
"""


class Zygote:
    """A Python process with modecov imported that forks `modecov ...` children on request."""

    def __init__(self, cwd: Path) -> None:
        path = os.environ.get("PYTHONPATH")
        env = {**os.environ, "ZYGOTE_PAUSE": str(PAUSE)}
        env["PYTHONPATH"] = str(REPO) + (os.pathsep + path if path else "")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", ZYGOTE], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            text=True, env=env, cwd=cwd,
        )  # fmt: skip
        self._ask(op="ping")  # returns once the imports are done

    def _ask(self, **msg) -> int:
        self.proc.stdin.write(json.dumps(msg) + "\n")
        self.proc.stdin.flush()
        return int(self.proc.stdout.readline())

    def start(self, out: Path, log: Path) -> int:
        """Fork ``modecov RUN --out out``; its pid."""
        return self._ask(op="run", argv=[*RUN, "--out", str(out)], log=str(log))

    def wait(self, pid: int) -> int:
        """The exit code of child ``pid`` (negative: killed by that signal)."""
        return self._ask(op="wait", pid=pid)

    def close(self) -> None:
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="module")
def zygote(tmp_path_factory):
    z = Zygote(tmp_path_factory.mktemp("zygote"))
    yield z
    z.close()


def _fresh_commit_tmp(root: Path, since: float) -> list[str]:
    """The commit temporary files written after ``since`` (time.time()) that still exist."""
    found = []
    for pattern in COMMIT_TMP:
        for path in root.glob(pattern):
            try:
                if path.stat().st_mtime >= since:
                    found.append(path.name)
            except FileNotFoundError:
                pass
    return found


def _wait_for_training(log: Path, timeout: float = 60.0) -> None:
    """Wait until a run has opened its store and starts on its groups."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.exists() and "groups to run" in log.read_text():
            return
        time.sleep(0.005)


def _assert_intact(root: Path) -> int:
    """No torn line, no duplicated row, complete groups only; the number of run rows."""
    if not (root / RUNS).exists():
        return 0
    for name in (RUNS, TRAJECTORY):
        data = (root / name).read_bytes()
        assert data.endswith(b"\n"), f"{name}: torn last line"
        rows = list(csv.reader(data.decode().splitlines()))
        assert len({len(r) for r in rows}) == 1, f"{name}: a row with a wrong number of fields"
    with Store(root) as store:
        runs = store.runs()
        assert not runs.duplicated(KEY).any()
        assert (runs.groupby("config_id").size() == 2).all()  # both seeds of each group
        traj = store.trajectory()
    assert not traj.duplicated([*KEY, "step", "metric"]).any()
    per_seed = traj.groupby(KEY).size()
    assert len(per_seed) == len(runs)
    assert (per_seed.groupby(level="config_id").nunique() == 1).all()
    return len(runs)


def _assert_same_store(got: Path, want: Path) -> None:
    # Per process: timing and the checkout's dirty flag (other work may edit the tree).
    drop = ["wall_time", "finished_at", "git_commit"]

    def runs(root: Path) -> pd.DataFrame:
        df = pd.read_csv(root / RUNS, dtype={"config_id": str}).drop(columns=drop)
        return df.sort_values(KEY).reset_index(drop=True)

    pd.testing.assert_frame_equal(runs(got), runs(want))
    assert len(runs(got)) == 2 * GROUPS
    assert (got / TRAJECTORY).read_bytes() == (want / TRAJECTORY).read_bytes()


def _running(pid: int) -> bool:
    """The child has not exited (a zombie waiting for the zygote counts as exited)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def _wait_for_commit_tmp(root: Path, pid: int, since: float, n: int) -> None:
    """Wait until the run has written its n-th temporary CSV (or has exited)."""
    seen: set[tuple[str, float]] = set()
    while len(seen) < n and _running(pid):
        for name in _fresh_commit_tmp(root, since):
            with contextlib.suppress(FileNotFoundError):
                seen.add((name, (root / name).stat().st_mtime))
        time.sleep(0.005)


def test_sigkill_at_20_random_moments_then_resume_equals_an_uninterrupted_run(zygote, tmp_path):
    want = tmp_path / "uninterrupted"
    log = tmp_path / "reference.log"
    pid = zygote.start(want, log)
    _wait_for_training(log)
    t0 = time.monotonic()
    while not (want / RUNS).exists():
        time.sleep(0.005)
    first_group = time.monotonic() - t0  # scales the kill times to this machine
    assert zygote.wait(pid) == 0
    rng = random.Random(6)
    root = tmp_path / "store"
    killed, in_commit, stored = 0, 0, []
    for k in range(KILLS):
        since = time.time()
        log = tmp_path / f"kill{k}.log"
        pid = zygote.start(root, log)
        if k % 2 == 0:  # inside the first commit: before the trajectory or the runs rename
            _wait_for_commit_tmp(root, pid, since, rng.randint(1, 2))
        else:  # anywhere in training, snapshots, scoring, a commit or between groups
            _wait_for_training(log)
            time.sleep(rng.uniform(0.0, 2.0) * first_group)
        os.kill(pid, signal.SIGKILL)
        rc = zygote.wait(pid)
        assert rc in (0, -signal.SIGKILL), log.read_text()
        killed += rc == -signal.SIGKILL
        in_commit += bool(_fresh_commit_tmp(root, since)) and rc == -signal.SIGKILL
        stored.append(_assert_intact(root))
    assert zygote.wait(zygote.start(root, tmp_path / "finish.log")) == 0
    _assert_same_store(root, want)
    assert stored == sorted(stored)  # a kill never lost a committed group
    # The kills landed where they should: in running processes, half of them inside a
    # commit, and several on a partly written store.
    assert killed >= KILLS - 4, (killed, stored)
    assert in_commit >= KILLS // 2 - 2, (in_commit, stored)
    assert len({n for n in stored if 0 < n < 2 * GROUPS}) >= 2, stored


SMOKE = ["run", "--suite", "smoke", "--quiet"]


@pytest.fixture(scope="module")
def smoke_reference(tmp_path_factory) -> Path:
    """The smoke suite run in this process."""
    root = tmp_path_factory.mktemp("faults") / "reference"
    from modecov.cli import main

    assert main([*SMOKE, "--workers", "1", "--out", str(root)]) == 0
    return root


def _same_runs(got: Path, want: Path) -> None:
    drop = ["wall_time", "finished_at"]
    a = pd.read_csv(got / RUNS, dtype={"config_id": str}).drop(columns=drop)
    b = pd.read_csv(want / RUNS, dtype={"config_id": str}).drop(columns=drop)
    pd.testing.assert_frame_equal(a, b)
    assert (got / TRAJECTORY).read_bytes() == (want / TRAJECTORY).read_bytes()


def _inject(monkeypatch, hook: KillWorker) -> None:
    """Give `modecov run`'s local backend the ``before_group`` hook (from the driver's side)."""
    monkeypatch.setattr(backends, "run_local", functools.partial(backends.run_local,
                                                                 before_group=hook))  # fmt: skip


def test_a_local_worker_that_dies_only_reruns_its_group(
    tmp_path, capsys, monkeypatch, smoke_reference
):
    hook = KillWorker("nsgan/ring8", tmp_path / "calls")
    _inject(monkeypatch, hook)
    # Progress bars as on a terminal: the group bars show that steps come from the workers.
    monkeypatch.setattr(progress, "choose_mode", lambda **_: "bars")
    args = [a for a in SMOKE if a != "--quiet"]
    rc, _, err = cli(capsys, *args, "--workers", "2", "--out", tmp_path / "store")
    assert rc == 0, err
    _same_runs(tmp_path / "store", smoke_reference)
    calls = hook.calls()
    assert ("nsgan/ring8", 0) in calls and ("nsgan/ring8", 1) in calls  # killed, then re-run
    assert max(a for _, a in calls) == 1  # groups that shared the broken pool ran again as is
    assert re.search(r"\bgan on ring8: +\d+%", err) and re.search(r"nsgan on ring8: +\d+%", err)
    assert "suite 4/4 groups: 100%" in err


def test_a_local_worker_that_keeps_dying_ends_in_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(backends, "MAX_RETRIES", 0)
    _inject(monkeypatch, KillWorker("nsgan/ring8", tmp_path / "calls", times=99))
    rc, out, err = cli(capsys, *SMOKE, "--workers", "2", "--out", tmp_path / "store")
    assert rc == 2 and out == "" and "Traceback" not in err
    assert err.splitlines() == [
        "modecov: error: the worker running nsgan on ring8 died 1 time (out of memory or "
        "killed); finished groups are stored, re-run the same command to resume"
    ]
    with Store(tmp_path / "store") as store:
        assert "nsgan" not in set(store.runs()["variant"])
