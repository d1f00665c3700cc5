"""The Ray backend on a real local Ray cluster (2 CPUs): the same numbers as the local
backend, a lost worker only re-runs its group, and Ray missing is one clear line."""

from __future__ import annotations

import functools
import logging
import sys

import helpers
import pandas as pd
import pytest
from helpers import KillWorker, cli, digest

from modecov import backends
from modecov.cli import main
from modecov.store import RUNS, TRAJECTORY, Store

SMOKE = ["run", "--suite", "smoke", "--quiet"]


@pytest.fixture(scope="module")
def ray_cluster():
    """A local Ray with 2 CPUs, started once (about 5 s); `modecov run` uses it."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def local_store(tmp_path_factory):
    """The smoke suite on the local backend, in this process."""
    root = tmp_path_factory.mktemp("ray") / "local"
    assert main([*SMOKE, "--workers", "1", "--out", str(root)]) == 0
    return root


def _same_store(got, want) -> None:
    drop = ["wall_time", "finished_at"]
    a = pd.read_csv(got / RUNS, dtype={"config_id": str}).drop(columns=drop)
    b = pd.read_csv(want / RUNS, dtype={"config_id": str}).drop(columns=drop)
    pd.testing.assert_frame_equal(a, b)  # exact: the same code on CPU with one thread
    assert (got / TRAJECTORY).read_bytes() == (want / TRAJECTORY).read_bytes()


def test_ray_gives_the_same_metric_values_as_local(ray_cluster, local_store, tmp_path, capsys):
    rc, _, err = cli(capsys, *SMOKE, "--backend", "ray", "--out", tmp_path / "ray")
    assert rc == 0, err
    _same_store(tmp_path / "ray", local_store)
    with Store(tmp_path / "ray") as store:
        assert store.runs()["device"].str.startswith("cpu").all()  # as each task reported


@pytest.fixture
def inject(monkeypatch):
    """``inject(hook)``: the Ray backend of the test's `modecov run` calls the ``before_group``
    hook (given from the driver's side). Ray's workers cannot import the tests' helpers, so
    the hook travels by value."""
    from ray import cloudpickle

    def give(hook: KillWorker) -> None:
        run_ray = functools.partial(backends.run_ray, before_group=hook)
        monkeypatch.setattr(backends, "run_ray", run_ray)

    cloudpickle.register_pickle_by_value(helpers)
    yield give
    cloudpickle.unregister_pickle_by_value(helpers)


def test_a_lost_ray_worker_only_reruns_its_group(
    ray_cluster, local_store, tmp_path, capsys, inject
):
    hook = KillWorker("nsgan/ring8", tmp_path / "calls")
    inject(hook)
    rc, _, err = cli(capsys, *SMOKE, "--backend", "ray", "--out", tmp_path / "ray")
    assert rc == 0, err
    # Four groups, one of them submitted again; the others ran once.
    assert sorted(a for _, a in hook.calls()) == [0, 0, 0, 0, 1]
    assert ("nsgan/ring8", 1) in hook.calls()
    _same_store(tmp_path / "ray", local_store)


def test_a_ray_worker_that_keeps_dying_ends_in_one_line(ray_cluster, tmp_path, capsys, inject):
    inject(KillWorker("nsgan/ring8", tmp_path / "calls", times=99))
    rc, _, err = cli(capsys, *SMOKE, "--backend", "ray", "--out", tmp_path / "ray")
    # stdout carries Ray's own notes on each dead worker; the error is the one stderr line.
    assert rc == 2 and "Traceback" not in err
    assert err.splitlines() == [
        f"modecov: error: the worker running nsgan on ring8 died {backends.MAX_RETRIES + 1} "
        "times (out of memory or killed); finished groups are stored, re-run the same "
        "command to resume"
    ]


def test_without_ray_installed_the_ray_backend_says_how_to_install_it(
    tmp_path, capsys, monkeypatch
):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    store = tmp_path / "store"
    store.mkdir()
    (store / "keep.txt").write_text("x")
    before = digest(store)
    rc, out, err = cli(capsys, *SMOKE, "--backend", "ray", "--out", store)
    assert rc == 2 and out == ""
    assert err.splitlines() == [
        "modecov: error: --backend ray needs Ray: pip install 'modecov[ray]'"
    ]
    assert digest(store) == before
