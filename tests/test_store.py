"""Tests for modecov.store: per-group atomic commits, resume, the config check, the lock,
and a real `modecov run` killed with SIGKILL and resumed."""

from __future__ import annotations

import csv
import math
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import cli, digest

import modecov.store as store_mod
from modecov.cli import main
from modecov.config import RunConfig, suite
from modecov.errors import StoreError
from modecov.evaluate import train
from modecov.store import KEY, RUNS, TRAJECTORY, Store
from modecov.train import TrainOutput

REPO = Path(__file__).resolve().parents[1]
SMOKE = ["run", "--suite", "smoke", "--workers", "1"]
T = 3
"""Snapshots in a hand-built TrainOutput."""
TRAJ_METRICS = ("hq_fraction", "modes_covered")


def read_rows(path: Path) -> list[dict[str, str]]:
    """The rows of a CSV as raw strings (no pandas parsing in between)."""
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def read_runs(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype={"config_id": str})


def cfg_of(variant: str = "gan", dataset: str = "ring8", seeds=(0, 1), **kw) -> RunConfig:
    return RunConfig(dataset=dataset, variant=variant, seeds=tuple(seeds), **kw)


def fake_output(cfg: RunConfig, seed: int = 0) -> TrainOutput:
    """A hand-built TrainOutput with floats of every magnitude (the hard ones for CSV)."""
    rng = np.random.default_rng(seed)
    S = len(cfg.seeds)

    def awkward(*shape):
        return torch.from_numpy(rng.random(shape) * 10.0 ** rng.integers(-300, 300, shape))

    final = {"modes_covered": awkward(S), "kl_gen_true": awkward(S)}
    final["hq_fraction"] = torch.tensor([1 / 3, 0.1 + 0.2, 5e-324, 1e308][:S], dtype=torch.float64)
    return TrainOutput(
        config=cfg,
        final=final,
        steps=torch.arange(T) * cfg.eval_every,
        trajectory={k: awkward(T, S) for k in TRAJ_METRICS},
        counts=torch.zeros(T, S, 8),
        status=["ok"] * S,
        diverged_step=[None] * S,
        samples=torch.zeros(S, 0, 2),
        wall_time=1.5,
        device="cpu",
    )


def traj_keys(path: Path) -> pd.Series:
    """Rows per (config_id, seed) in a raw trajectory.csv (orphans included)."""
    traj = pd.read_csv(path, dtype={"config_id": str})
    assert not traj.duplicated(KEY + ["step", "metric"]).any(), "duplicated trajectory rows"
    return traj.groupby(KEY).size()


# -- commits ------------------------------------------------------------------------------


def test_commit_writes_one_row_per_seed_at_full_precision(tmp_path):
    cfg = cfg_of(seeds=(0, 1, 2))
    out = fake_output(cfg)
    with Store(tmp_path) as store:
        store.commit(out, commit="abc")
        from_pandas = store.runs()
    rows = read_rows(tmp_path / RUNS)
    assert [(r["config_id"], int(r["seed"])) for r in rows] == [
        (cfg.config_id, s) for s in cfg.seeds
    ]
    for s, row in enumerate(rows):
        assert row["dataset"] == "ring8" and row["variant"] == "gan" and row["status"] == "ok"
        assert row["git_commit"] == "abc" and int(row["group_size"]) == 3
        for name, values in out.final.items():
            assert float(row[name]) == float(values[s]), name
            assert from_pandas[name].iloc[s] == float(values[s]), name
    traj = read_rows(tmp_path / TRAJECTORY)
    assert len(traj) == T * len(cfg.seeds) * len(TRAJ_METRICS)
    got = {(r["metric"], int(r["seed"]), int(r["step"])): float(r["value"]) for r in traj}
    for name, values in out.trajectory.items():
        for t, step in enumerate(out.steps.tolist()):
            for s, seed in enumerate(cfg.seeds):
                assert got[(name, seed, step)] == float(values[t, s])


def test_commit_of_a_trained_group_reads_back_exactly(tmp_path):
    cfg = suite("smoke")[1]
    out = train(cfg)
    with Store(tmp_path) as store:
        store.commit(out, commit="abc")
    rows = read_rows(tmp_path / RUNS)
    assert [int(r["seed"]) for r in rows] == list(cfg.seeds)
    for s, row in enumerate(rows):
        for name, values in out.final.items():
            want = float(values[s])
            got = float(row[name]) if row[name] else math.nan
            assert got == want or (math.isnan(got) and math.isnan(want)), name
    traj = read_runs(tmp_path / TRAJECTORY)
    assert len(traj) == len(out.steps) * len(cfg.seeds) * len(out.trajectory)


def test_commit_replaces_rows_of_the_same_group(tmp_path):
    cfg = cfg_of()
    with Store(tmp_path) as store:
        store.commit(fake_output(cfg, seed=0), commit="x")
        second = fake_output(cfg, seed=1)
        store.commit(second, commit="x")
        runs = store.runs()
    assert len(runs) == 2
    assert runs["modes_covered"].tolist() == second.final["modes_covered"].tolist()
    assert traj_keys(tmp_path / TRAJECTORY).tolist() == [T * len(TRAJ_METRICS)] * 2


def _numeric_looking(pattern: str) -> RunConfig:
    """A config whose config_id pandas would read as a number (about 1% of all ids)."""
    for eval_seed in range(200_000):
        cfg = cfg_of(variant="true_sampler", eval_seed=eval_seed)
        if re.fullmatch(pattern, cfg.config_id):
            return cfg
    pytest.skip(f"no config_id matching {pattern} found")


@pytest.mark.parametrize(
    "pattern",
    [
        pytest.param(r"[1-9][0-9]+", id="digits"),
        pytest.param(r"0[0-9]+", id="leading-zero"),
        pytest.param(r"[0-9]+e[0-9]+", id="exponent"),
    ],
)
def test_numeric_looking_config_id_survives_a_round_trip(tmp_path, pattern):
    cfg = _numeric_looking(pattern)
    with Store(tmp_path) as store:
        store.commit(fake_output(cfg), commit="x")
    with Store(tmp_path) as store:
        assert store.done() == {(cfg.config_id, 0), (cfg.config_id, 1)}
        store.check(cfg)
        assert len(store.trajectory()) == T * 2 * len(TRAJ_METRICS)
        store.commit(fake_output(cfg, seed=1), commit="x")
    rows = read_rows(tmp_path / RUNS)
    assert [(r["config_id"], r["seed"]) for r in rows] == [
        (cfg.config_id, "0"),
        (cfg.config_id, "1"),
    ]
    assert traj_keys(tmp_path / TRAJECTORY).tolist() == [T * len(TRAJ_METRICS)] * 2


def test_check_accepts_the_same_config_and_refuses_a_different_one(tmp_path):
    cfg = cfg_of(lr=1e-3, beta1=None)
    with Store(tmp_path) as store:
        store.commit(fake_output(cfg), commit="x")
    with Store(tmp_path) as store:
        store.check(cfg)
        store.check(cfg_of(lr=1e-3, seeds=(5,), device="cpu"))  # seeds, device: not config
    path = tmp_path / RUNS
    text = path.read_text()
    header = text.splitlines()[0].split(",")
    lines = text.splitlines()
    cells = lines[1].split(",")
    cells[header.index("lr")] = "0.002"
    lines[1] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")
    with Store(tmp_path) as store, pytest.raises(StoreError, match=r"lr=0\.002 but"):
        store.check(cfg)


# -- orphans and the lock -----------------------------------------------------------------


@pytest.mark.parametrize("next_commit", ["other", "same"], ids=["other-group", "same-group"])
def test_trajectory_orphans_are_dropped_and_never_duplicated(tmp_path, monkeypatch, next_commit):
    a, b, c = cfg_of("gan"), cfg_of("nsgan"), cfg_of("gan", "grid25")
    real_write = store_mod.atomic_write

    def killed_between_renames(path, text):
        if path.name == RUNS:
            raise KeyboardInterrupt  # dies after trajectory.csv was renamed, before runs.csv
        real_write(path, text)

    with Store(tmp_path) as store:
        store.commit(fake_output(a), commit="x")
        monkeypatch.setattr(store_mod, "atomic_write", killed_between_renames)
        with pytest.raises(KeyboardInterrupt):
            store.commit(fake_output(b, seed=7), commit="x")
        monkeypatch.undo()
        assert b.config_id in traj_keys(tmp_path / TRAJECTORY)  # the orphan rows
        assert store.done() == {(a.config_id, 0), (a.config_id, 1)}
        assert set(store.trajectory()["config_id"]) == {a.config_id}
        if next_commit == "other":
            store.commit(fake_output(c), commit="x")
            assert b.config_id not in traj_keys(tmp_path / TRAJECTORY)
        rerun = fake_output(b, seed=8)
        store.commit(rerun, commit="x")
    counts = traj_keys(tmp_path / TRAJECTORY)
    assert (counts == T * len(TRAJ_METRICS)).all()
    traj = read_runs(tmp_path / TRAJECTORY)
    mine = traj[(traj["config_id"] == b.config_id) & (traj["metric"] == "hq_fraction")]
    assert sorted(mine["value"]) == sorted(rerun.trajectory["hq_fraction"].flatten().tolist())


def test_second_store_on_a_locked_directory_is_refused(tmp_path, capsys):
    with Store(tmp_path):
        with pytest.raises(StoreError, match="in use"), Store(tmp_path):
            pass
        rc, out, err = cli(capsys, *SMOKE, "--out", tmp_path)
        assert rc == 2 and err.count("\n") == 1 and "in use" in err
        assert not (tmp_path / RUNS).exists()
    with Store(tmp_path):  # released on exit
        pass


# -- resume through the CLI ---------------------------------------------------------------


@pytest.fixture
def store_copy(smoke_store, tmp_path) -> Path:
    root = tmp_path / "store"
    shutil.copytree(smoke_store, root)
    return root


def test_rerun_skips_every_stored_group(store_copy, capsys):
    before = {p: (store_copy / p).read_bytes() for p in (RUNS, TRAJECTORY)}
    mtimes = {p: (store_copy / p).stat().st_mtime_ns for p in before}
    rc, _, err = cli(capsys, *SMOKE, "--out", store_copy)
    assert rc == 0
    n = len(suite("smoke"))
    assert f"0 groups to run, {n} already stored" in err
    assert "[1/" not in err
    for p, data in before.items():
        assert (store_copy / p).read_bytes() == data
        assert (store_copy / p).stat().st_mtime_ns == mtimes[p]


def test_extending_seeds_runs_only_the_new_seed(store_copy, capsys):
    before = read_runs(store_copy / RUNS)
    rc, _, err = cli(capsys, *SMOKE, "--seeds", "0-2", "--out", store_copy)
    assert rc == 0
    progress = [line for line in err.splitlines() if line.startswith("[")]
    assert len(progress) == len(suite("smoke"))
    assert all(line.split("seeds ")[1].startswith("2:") for line in progress)
    after = read_runs(store_copy / RUNS)
    assert not after.duplicated(KEY).any()
    assert len(after) == len(before) + len(suite("smoke"))
    assert sorted(set(after["seed"])) == [0, 1, 2]
    old = after[after["seed"] < 2].reset_index(drop=True)
    pd.testing.assert_frame_equal(old, before, check_dtype=False)
    assert (after.loc[after["seed"] == 2, "group_size"] == 1).all()
    counts = traj_keys(store_copy / TRAJECTORY)
    assert len(counts) == len(after)
    assert (counts.groupby(level="config_id").nunique() == 1).all()  # as many rows per seed


def _edit_cell(path: Path, row: int, column: str, value: str) -> None:
    """Change one cell of a CSV written by modecov (no quoted fields), keeping the rest."""
    lines = path.read_text().split("\n")
    header = lines[0].split(",")
    cells = lines[1 + row].split(",")
    assert len(cells) == len(header)
    cells[header.index(column)] = value
    lines[1 + row] = ",".join(cells)
    path.write_text("\n".join(lines))


@pytest.mark.parametrize("row", [0, 1], ids=["first-row-of-group", "second-row-of-group"])
def test_stored_config_that_differs_is_refused_and_store_unchanged(store_copy, capsys, row):
    _edit_cell(store_copy / RUNS, row, "hidden", "33")
    before = digest(store_copy)
    rc, out, err = cli(capsys, *SMOKE, "--out", store_copy)
    assert rc == 2
    assert err.count("\n") == 1 and err.startswith("modecov: error:")
    assert "hidden=33" in err and "hidden=32" in err and "Traceback" not in err
    assert digest(store_copy) == before


# -- a real process killed with SIGKILL ---------------------------------------------------

KILL_RUN = [
    "run", "--variants", "gan,nsgan", "--datasets", "ring8,grid25", "--seeds", "0-1",
    "--steps", "300", "--set", "hidden=32", "--set", "batch_size=64", "--set", "n_eval=500",
    "--set", "n_eval_large=1000", "--workers", "1",
]  # fmt: skip
KILL_GROUPS = 8
"""2 variants + 2 references, on 2 datasets."""


def _env() -> dict[str, str]:
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": str(REPO) + (os.pathsep + path if path else "")}


def _spawn(out: Path, log: Path) -> subprocess.Popen:
    with open(log, "w") as fh:
        return subprocess.Popen(
            [sys.executable, "-m", "modecov.cli", *KILL_RUN, "--out", str(out)],
            env=_env(), cwd=out.parent, stdout=subprocess.DEVNULL, stderr=fh,
        )  # fmt: skip


def _finish(out: Path) -> str:
    """Run KILL_RUN into ``out`` to completion; its stderr."""
    done = subprocess.run(
        [sys.executable, "-m", "modecov.cli", *KILL_RUN, "--out", str(out)],
        env=_env(), cwd=out.parent, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stderr


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
    """An uninterrupted KILL_RUN, started at once in the background; call to wait for it."""
    root = tmp_path_factory.mktemp("reference") / "store"
    proc = _spawn(root, root.parent / "log")

    def wait() -> Path:
        assert proc.wait(timeout=180) == 0, (root.parent / "log").read_text()
        return root

    yield wait
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def _assert_consistent(root: Path) -> int:
    """A store left by a killed run holds complete groups only; returns its run rows."""
    if not (root / RUNS).exists():
        return 0
    with Store(root) as store:
        runs = store.runs()
        assert not runs.duplicated(KEY).any()
        assert (runs.groupby("config_id").size() == 2).all()  # whole groups
        kept = store.trajectory().groupby(KEY).size()
    assert len(kept) == len(runs)
    assert (kept.groupby(level="config_id").nunique() == 1).all()  # as many rows per seed
    return len(runs)


def _assert_same_store(got: Path, want: Path) -> None:
    # Per-process provenance: timing, and the checkout (HEAD may move between the runs).
    drop = ["wall_time", "finished_at", "git_commit"]
    a, b = read_runs(got / RUNS), read_runs(want / RUNS)
    assert not a.duplicated(KEY).any()
    a = a.drop(columns=drop).sort_values(KEY).reset_index(drop=True)
    b = b.drop(columns=drop).sort_values(KEY).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)
    assert len(a) == 2 * KILL_GROUPS
    assert (got / TRAJECTORY).read_bytes() == (want / TRAJECTORY).read_bytes()


def _wait_for(predicate, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate() and proc.poll() is None:
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def _has_rows(path: Path) -> bool:
    try:
        return path.read_text().count("\n") >= 2
    except FileNotFoundError:
        return False


def test_sigkill_after_a_commit_then_resume_matches_an_uninterrupted_run(tmp_path, reference_run):
    root = tmp_path / "store"
    proc = _spawn(root, tmp_path / "log")
    _wait_for(lambda: _has_rows(root / RUNS), proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    stored = _assert_consistent(root)
    assert 0 < stored < 2 * KILL_GROUPS
    err = _finish(root)
    assert f"{stored // 2} already stored" in err
    _assert_same_store(root, reference_run())


def test_sigkill_at_random_moments_then_resume_matches_an_uninterrupted_run(
    tmp_path, reference_run
):
    rng = random.Random(20_240)
    root = tmp_path / "store"
    log = tmp_path / "log"
    states = []
    for _ in range(3):
        proc = _spawn(root, log)
        _wait_for(lambda: "groups to run" in log.read_text(), proc)
        time.sleep(rng.uniform(0.2, 2.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        states.append((proc.returncode, _assert_consistent(root)))
    assert all(rc in (-signal.SIGKILL, 0) for rc, _ in states), states
    _finish(root)
    _assert_same_store(root, reference_run())


def test_results_do_not_depend_on_the_number_of_workers(smoke_store, tmp_path):
    """Every group runs with one torch thread whatever --workers says: same numbers."""
    other = tmp_path / "two_workers"
    assert main(["run", "--suite", "smoke", "--workers", "2", "--quiet", "--out", str(other)]) == 0
    drop = ["wall_time", "finished_at"]
    a = read_runs(smoke_store / RUNS).drop(columns=drop)
    b = read_runs(other / RUNS).drop(columns=drop)
    pd.testing.assert_frame_equal(a, b)
    assert (smoke_store / TRAJECTORY).read_bytes() == (other / TRAJECTORY).read_bytes()


# -- the one atomic writer --------------------------------------------------------------


def test_atomic_write_replaces_whole_files_fsyncs_and_leaves_no_temporary(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(store_mod.os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    text = tmp_path / "a.csv"
    assert store_mod.atomic_write(text, "x,y\r\n1,2\n") == text
    assert text.read_bytes() == b"x,y\r\n1,2\n"  # UTF-8, newlines as given
    assert len(synced) == 2  # the file, then its directory
    store_mod.atomic_write(text, b"\x00bytes")
    assert text.read_bytes() == b"\x00bytes"
    # A writer function gets a temporary path with the target's suffix (np.savez keeps it).
    arrays = tmp_path / "f.npz"
    store_mod.atomic_write(arrays, lambda tmp: np.savez(tmp, a=np.arange(3)))
    assert np.load(arrays)["a"].tolist() == [0, 1, 2]
    assert len(synced) == 6
    with pytest.raises(ZeroDivisionError):  # a failed write keeps the old file whole
        store_mod.atomic_write(text, lambda tmp: (tmp.write_text("half"), 1 / 0))
    assert text.read_bytes() == b"\x00bytes"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv", "f.npz"]
    mode = os.stat(text).st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask  # like any new file, not a private temporary's 0600
