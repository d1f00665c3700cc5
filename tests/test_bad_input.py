"""The bad-input matrix: every mistake a user can make on the command line, in a sample
file or in a results store ends in exactly one ``modecov: error:`` line on stderr and a
non-zero exit, with no traceback and every file of the store byte-for-byte unchanged."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import cli, digest

from modecov.cli import main
from modecov.store import MANIFEST, RUNS, TRAJECTORY

RUN = ["run", "--suite", "smoke", "--workers", "1", "--quiet"]


@pytest.fixture(scope="module")
def good_store(tmp_path_factory) -> Path:
    """A finished smoke run (copied by each test before anything touches it)."""
    root = tmp_path_factory.mktemp("bad_input") / "store"
    assert main([*RUN, "--out", str(root)]) == 0
    return root


@pytest.fixture
def store(good_store, tmp_path) -> Path:
    root = tmp_path / "store"
    shutil.copytree(good_store, root)
    return root


def assert_one_error(rc, out: str, err: str, needles) -> None:
    assert rc != 0 and rc is not None, err
    assert "Traceback" not in err and "Traceback" not in out
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("modecov: error: "), err
    assert out == ""
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def closed_port() -> int:
    """A local TCP port where nothing listens."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# (argv after `modecov`, words the error line must hold). {store} is the intact store.
CLI_CASES = [
    pytest.param(["frobnicate"], ["frobnicate"], id="unknown-subcommand"),
    pytest.param([], ["required"], id="no-subcommand"),
    pytest.param([*RUN, "--bogus", "--out", "{store}"], ["--bogus"], id="unknown-flag"),
    pytest.param([*RUN, "--out"], ["--out"], id="flag-without-value"),
    pytest.param(["run", "--suite", "smok", "--out", "{store}"], ["'smoke'"], id="unknown-suite"),
    pytest.param([*RUN, "--variants", "nsgna", "--out", "{store}"], ["'nsgan'"],
                 id="unknown-variant"),
    pytest.param(["run", "--variants", "gan", "--datasets", "rign8", "--out", "{store}"],
                 ["'ring8'"], id="unknown-dataset"),
    pytest.param(["run", "--variants", "gan", "--out", "{store}"], ["--datasets"],
                 id="variants-without-datasets"),
    pytest.param([*RUN, "--steps", "-1", "--out", "{store}"], [">= 0"], id="steps-negative"),
    pytest.param([*RUN, "--steps", "many", "--out", "{store}"], ["integer"], id="steps-word"),
    pytest.param([*RUN, "--steps", "1000000000", "--out", "{store}"], ["[0, 100000000]"],
                 id="steps-too-many"),
    pytest.param([*RUN, "--batch-size", "0", "--out", "{store}"], [">= 1"], id="batch-zero"),
    pytest.param([*RUN, "--seeds", "3-1", "--out", "{store}"], ["'3-1'"], id="seeds-reversed"),
    pytest.param([*RUN, "--seeds", "a,b", "--out", "{store}"], ["'a,b'"], id="seeds-words"),
    pytest.param([*RUN, "--seeds", "0,0", "--out", "{store}"], ["twice"], id="seeds-twice"),
    pytest.param([*RUN, "--seeds", "0-99999", "--out", "{store}"], ["10000"], id="seeds-too-many"),
    pytest.param([*RUN, "--set", "hiden=3", "--out", "{store}"], ["'hidden'"], id="set-unknown"),
    pytest.param([*RUN, "--set", "hidden", "--out", "{store}"], ["KEY=VALUE"], id="set-no-value"),
    pytest.param([*RUN, "--set", "hidden=wide", "--out", "{store}"], ["integer", "'wide'"],
                 id="set-bad-type"),
    pytest.param([*RUN, "--set", "lr=5", "--out", "{store}"], ["(0, 1]"], id="set-lr-range"),
    pytest.param([*RUN, "--set", "beta2=1", "--out", "{store}"], ["[0, 1)"], id="set-beta2"),
    pytest.param([*RUN, "--set", "dtype=float16", "--out", "{store}"], ["float64"],
                 id="set-dtype"),
    pytest.param([*RUN, "--variants", "pacgan2", "--out", "{store}"], ["not in suite 'smoke'"],
                 id="variant-not-in-suite"),
    pytest.param([*RUN, "--workers", "0", "--out", "{store}"], [">= 1"], id="workers-zero"),
    pytest.param([*RUN, "--workers", "two", "--out", "{store}"], ["integer"], id="workers-word"),
    pytest.param([*RUN, "--device", "tpu", "--out", "{store}"], ["'tpu'"], id="device-unknown"),
    pytest.param([*RUN, "--device", "cuda", "--out", "{store}"], ["CUDA"], id="device-no-cuda"),
    pytest.param([*RUN, "--backend", "spark", "--out", "{store}"], ["'spark'"],
                 id="backend-unknown"),
    pytest.param([*RUN, "--address", "127.0.0.1:6379", "--out", "{store}"], ["--backend ray"],
                 id="address-without-ray"),
    pytest.param([*RUN, "--backend", "ray", "--address", "no-port", "--out", "{store}"],
                 ["HOST:PORT"], id="ray-address-malformed"),
    pytest.param([*RUN, "--backend", "ray", "--address", "127.0.0.1:{port}", "--out", "{store}"],
                 ["no Ray cluster"], id="ray-address-unreachable"),
    pytest.param(["report", "{store}", "--stat", "mode"], ["'mode'"], id="report-bad-stat"),
]  # fmt: skip


@pytest.mark.parametrize(("argv", "needles"), CLI_CASES)
def test_bad_command_line(store, capsys, monkeypatch, argv, needles):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    before = digest(store)
    port = str(closed_port())
    argv = [a.replace("{store}", str(store)).replace("{port}", port) for a in argv]
    assert_one_error(*cli(capsys, *argv), needles)
    assert digest(store) == before


GOOD = np.random.default_rng(0).normal(size=(300, 2))


def _with(values: dict) -> np.ndarray:
    arr = GOOD.copy()
    for (i, j), v in values.items():
        arr[i, j] = v
    return arr


# (file name, content: array, bytes or None for no file, extra args, words in the error)
SCORE_CASES = [
    pytest.param("missing.npy", None, [], ["does not exist"], id="missing-file"),
    pytest.param("samples.txt", b"1,2\n3,4\n", [], [".txt"], id="wrong-extension"),
    pytest.param("flat.npy", np.ones(50), [], ["(50,)"], id="one-dimensional"),
    pytest.param("four.npy", np.ones((2, 2, 5, 2)), [], ["(2, 2, 5, 2)"], id="four-dimensional"),
    pytest.param("nan.npy", _with({(4, 1): np.nan}), [], ["NaN"], id="nan"),
    pytest.param("inf.npy", _with({(7, 0): np.inf}), [], ["infinite"], id="inf"),
    pytest.param("one.npy", GOOD[:1], [], ["at least 2"], id="too-few-samples"),
    pytest.param("empty.npy", GOOD[:0], [], ["no samples"], id="no-samples"),
    pytest.param("dim3.npy", np.ones((100, 3)), [], ["dimension 3", "D=2"], id="wrong-dimension"),
    pytest.param("d1200.npy", GOOD, ["--dataset", "gauss1200"], ["D=1200"],
                 id="wrong-dimension-for-dataset"),
    pytest.param("text.npy", np.array(["a", "b"]), [], ["not real numbers"], id="strings"),
    pytest.param("torn.csv", b"1,2\n3,4\n5,", [], ["torn.csv"], id="torn-csv"),
    pytest.param("good.npy", GOOD, ["--dataset", "rign8"], ["'ring8'"], id="unknown-dataset"),
    pytest.param("good.npy", GOOD, ["--metrics", "modez"], ["'modes'"], id="unknown-metric"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "content", "extra", "needles"), SCORE_CASES)
def test_bad_sample_file(tmp_path, capsys, name, content, extra, needles):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        np.save(path, content)
    before = digest(tmp_path)
    args = ["score", path, *(extra if "--dataset" in extra else ["--dataset", "ring8", *extra])]
    assert_one_error(*cli(capsys, *args), needles)
    assert digest(tmp_path) == before


def _cut(name: str, keep: float):
    def damage(root: Path) -> None:
        data = (root / name).read_bytes()
        (root / name).write_bytes(data[: int(len(data) * keep)].rstrip(b"\n") + b",1")

    return damage


def _edit_cell(column: str, value: str):
    def damage(root: Path) -> None:
        lines = (root / RUNS).read_text().split("\n")
        header = lines[0].split(",")
        cells = lines[1].split(",")
        cells[header.index(column)] = value
        lines[1] = ",".join(cells)
        (root / RUNS).write_text("\n".join(lines))

    return damage


def _write(name: str, text: str):
    def damage(root: Path) -> None:
        (root / name).write_text(text)

    return damage


# (damage, commands to try on the damaged store, words in the error)
STORE_CASES = [
    pytest.param(_cut(RUNS, 0.6), ["run", "report"], ["runs.csv"], id="truncated-runs"),
    pytest.param(_cut(TRAJECTORY, 0.5), ["run", "report"], ["trajectory.csv"],
                 id="torn-trajectory-line"),
    pytest.param(_edit_cell("hidden", "33"), ["run"], ["hidden=33"], id="edited-config"),
    pytest.param(_edit_cell("seed", "zero"), ["run", "report"], ["seed"], id="edited-seed"),
    pytest.param(_write(RUNS, "\x00\x01garbage\n"), ["run", "report"], ["runs.csv"],
                 id="garbage-runs"),
    pytest.param(_write(MANIFEST, "{not json"), ["run"], ["manifest.json"],
                 id="garbage-manifest"),
    pytest.param(_write(MANIFEST, "[1, 2]\n"), ["run"], ["manifest.json"], id="manifest-list"),
]  # fmt: skip


@pytest.mark.parametrize(("damage", "commands", "needles"), STORE_CASES)
def test_damaged_store(store, capsys, damage, commands, needles):
    damage(store)
    before = digest(store)
    for command in commands:
        argv = [*RUN, "--out", store] if command == "run" else ["report", store]
        assert_one_error(*cli(capsys, *argv), needles)
        assert digest(store) == before, command


LOCKER = """
import fcntl, sys, time
fh = open(sys.argv[1], "w")
fcntl.flock(fh, fcntl.LOCK_EX)
print("locked", flush=True)
sys.stdin.read()
"""


def test_store_locked_by_another_process(store, capsys):
    locker = subprocess.Popen(
        [sys.executable, "-c", LOCKER, str(store / ".lock")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert locker.stdout.readline().strip() == "locked"
        before = digest(store)
        assert_one_error(*cli(capsys, *RUN, "--out", store), ["in use"])
        assert digest(store) == before
    finally:
        locker.stdin.close()
        locker.wait(timeout=30)
