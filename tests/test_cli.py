"""Tests for the ``modecov`` command: every bad input ends in one line on stderr and exit
code 2 with the store untouched; list and score on good input."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import cli, digest

from modecov.cli import main
from modecov.config import SUITES
from modecov.data import DATASETS
from modecov.metrics import DIRECTIONS, METRICS
from modecov.store import RUNS
from modecov.variants import REFERENCES, VARIANTS

REPO = Path(__file__).resolve().parents[1]
SAMPLE_OUTPUTS = [k for m in METRICS.values() if m.kind == "samples" for k in m.outputs]


def assert_one_error(rc, out: str, err: str, *needles: str) -> None:
    """Exit code 2, no stdout, and exactly one non-empty ``modecov: error:`` line."""
    assert rc == 2, err
    assert out == ""
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("modecov: error: ") and lines[0][len("modecov: error: ") :].strip()
    for needle in needles:
        assert needle in lines[0]


def sampler(dataset: str, shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """(N, D) or (S, N, D) float64 samples drawn with the dataset's own sampler."""
    data = DATASETS[dataset]
    g = torch.Generator().manual_seed(seed)
    n = int(np.prod(shape))
    return data.sample(n, g, dtype=torch.float64).numpy().reshape(*shape, data.dim)


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    """A finished smoke run, shared: the failing commands below must leave it unchanged."""
    root = tmp_path_factory.mktemp("cli") / "store"
    assert main(["run", "--suite", "smoke", "--workers", "1", "--quiet", "--out", str(root)]) == 0
    return root


# -- run: bad input -----------------------------------------------------------------------

SMOKE = ["--suite", "smoke"]
GRID = ["--variants", "gan", "--datasets", "ring8"]
RUN_ERRORS = [
    pytest.param([*SMOKE, "--variants", "nsgna"], ["'nsgan'"], id="unknown-variant"),
    pytest.param(["--variants", "nsgna", *GRID[2:]], ["'nsgan'"], id="unknown-variant-grid"),
    pytest.param([*GRID[:2], "--datasets", "rign8"], ["'ring8'"], id="unknown-dataset"),
    pytest.param(["--suite", "smok"], ["'smoke'"], id="unknown-suite"),
    pytest.param([*SMOKE, "--seeds", "3-1"], ["'3-1'"], id="seeds-reversed"),
    pytest.param([*SMOKE, "--seeds", "x"], ["'x'"], id="seeds-not-a-number"),
    pytest.param([*SMOKE, "--seeds", "0,0"], ["twice"], id="seeds-duplicated"),
    pytest.param([*SMOKE, "--set", "hidden"], ["KEY=VALUE"], id="set-without-equals"),
    pytest.param([*SMOKE, "--set", "hiden=3"], ["'hidden'"], id="set-unknown-field"),
    pytest.param([*SMOKE, "--set", "steps=abc"], ["integer", "'abc'"], id="set-steps-not-int"),
    pytest.param([*SMOKE, "--set", "lr=5"], ["(0, 1]", "5"], id="set-lr-out-of-range"),
    pytest.param([*SMOKE, "--set", "beta1=nan"], ["[0, 1)"], id="set-beta1-nan"),
    pytest.param([*SMOKE, "--set", "dtype=float16"], ["float32"], id="set-dtype"),
    pytest.param([*GRID, "--set", "dataset=grid25"], ["--datasets"], id="set-dataset"),
    pytest.param([*SMOKE, "--steps", "-1"], [">= 0", "-1"], id="steps-negative"),
    pytest.param([*SMOKE, "--steps", "1.5"], ["integer"], id="steps-not-int"),
    pytest.param([*SMOKE, "--workers", "0"], [">= 1"], id="workers-zero"),
    pytest.param([*SMOKE, "--device", "tpu"], ["'tpu'", "cpu"], id="unknown-device"),
    pytest.param([*SMOKE, "--batch-size", "0"], [">= 1"], id="batch-size-zero"),
    pytest.param(["--variants", "gan"], ["--datasets"], id="no-datasets"),
    pytest.param([*SMOKE, "--bogus"], ["--bogus"], id="unknown-flag"),
]  # fmt: skip


@pytest.mark.parametrize(("args", "needles"), RUN_ERRORS)
def test_run_bad_input_is_one_line_and_leaves_the_store_unchanged(
    capsys, store, tmp_path, args, needles
):
    before = digest(store)
    assert_one_error(*cli(capsys, "run", "--workers", "1", *args, "--out", store), *needles)
    assert digest(store) == before
    fresh = tmp_path / "fresh"
    assert_one_error(*cli(capsys, "run", "--workers", "1", *args, "--out", fresh), *needles)
    assert not fresh.exists()


def test_run_bad_input_in_a_real_process(store):
    before = digest(store)
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run(
        [sys.executable, "-m", "modecov.cli", "run", "--suite", "smoke", "--variants", "nsgna",
         "--out", str(store)],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert_one_error(done.returncode, done.stdout, done.stderr, "'nsgan'")
    assert digest(store) == before


# -- score: bad input ---------------------------------------------------------------------


def _write(path: Path, content) -> Path:
    if path.suffix == ".npy":
        np.save(path, content)
    elif path.suffix == ".npz":
        np.savez(path, *([] if content is None else [content]))
    else:
        path.write_bytes(content)
    return path


GOOD = sampler("ring8", (200,))
NAN = GOOD.copy()
NAN[3, 1] = np.nan
INF = GOOD.copy()
INF[5, 0] = -np.inf
SCORE_ERRORS = [
    pytest.param("missing.npy", None, [], ["does not exist"], id="missing-file"),
    pytest.param("dim3.npy", np.ones((100, 3)), [], ["dimension 3", "D=2"], id="wrong-dimension"),
    pytest.param("nan.npy", NAN, [], ["NaN"], id="nan"),
    pytest.param("inf.npy", INF, [], ["infinite"], id="inf"),
    pytest.param("empty.npy", np.zeros((0, 2)), [], ["no samples"], id="empty"),
    pytest.param("no_seeds.npy", np.zeros((0, 10, 2)), [], ["no samples"], id="no-seeds"),
    pytest.param("flat.npy", np.ones(100), [], ["(100,)"], id="one-dimensional"),
    pytest.param("four.npy", np.ones((2, 2, 10, 2)), [], ["(2, 2, 10, 2)"], id="four-dimensional"),
    pytest.param("one.npy", np.ones((1, 2)), [], ["at least 2"], id="one-sample"),
    pytest.param("bool.npy", np.ones((10, 2), bool), [], ["bool"], id="bool"),
    pytest.param("complex.npy", GOOD + 1j, [], ["complex"], id="complex"),
    pytest.param("words.csv", b"a,b\nc,d\n", [], ["not a readable"], id="non-numeric-csv"),
    pytest.param("blank.csv", b"", [], ["no samples"], id="empty-csv"),
    pytest.param("ragged.csv", b"1,2\n3\n", [], ["not a readable"], id="ragged-csv"),
    pytest.param("junk.npy", b"\x93NUMPY junk", [], ["junk.npy"], id="corrupt-npy"),
    pytest.param("nothing.npz", None, [], ["no array"], id="empty-npz"),
    pytest.param("samples.txt", b"1,2\n3,4\n", [], [".txt"], id="txt-suffix"),
    pytest.param("good.npy", GOOD, ["--metrics", "modez"], ["'modes'"], id="unknown-metric"),
    pytest.param("good.npy", GOOD, ["--dataset", "ring9"], ["'ring8'"], id="unknown-dataset"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "content", "extra", "needles"), SCORE_ERRORS)
def test_score_bad_input_is_one_line(capsys, tmp_path, name, content, extra, needles):
    path = tmp_path / name
    if name != "missing.npy":
        _write(path, content)
    args = ["score", path, "--dataset", "ring8", *extra]
    assert_one_error(*cli(capsys, *args), *needles)


# -- report and run on a damaged store ----------------------------------------------------


def _lines(text: str) -> list[str]:
    return text.split("\n")


def _set_cell(text: str, row: int, column: str, value: str) -> str:
    lines = _lines(text)
    cells = lines[1 + row].split(",")
    cells[lines[0].split(",").index(column)] = value
    lines[1 + row] = ",".join(cells)
    return "\n".join(lines)


CORRUPTIONS = {
    "truncated-last-row": lambda t: t[: len(t) - 30],
    "truncated-mid-file": lambda t: t[: len(t) // 2],
    "extra-fields": lambda t: t + _lines(t)[1] + ",1,2\n",
    "binary-garbage": lambda t: bytes(range(256)) * 8,
    "empty-file": lambda t: "",
    "missing-column": lambda t: "\n".join(",".join(line.split(",")[1:]) for line in _lines(t)),
    "bad-seed": lambda t: _set_cell(t, 0, "seed", "abc"),
    "missing-config-id": lambda t: _set_cell(t, 2, "config_id", ""),
}


def _damage(store: Path, tmp_path: Path, kind: str) -> Path:
    root = tmp_path / "damaged"
    shutil.copytree(store, root)
    text = (root / RUNS).read_text()
    bad = CORRUPTIONS[kind](text)
    (root / RUNS).write_bytes(bad if isinstance(bad, bytes) else bad.encode())
    return root


@pytest.mark.parametrize("kind", list(CORRUPTIONS))
def test_damaged_runs_csv_is_refused_by_report_and_run(capsys, store, tmp_path, kind):
    root = _damage(store, tmp_path, kind)
    before = digest(root)
    assert_one_error(*cli(capsys, "report", root), "runs.csv")
    assert digest(root) == before
    assert_one_error(*cli(capsys, "run", "--suite", "smoke", "--workers", "1", "--out", root))
    assert digest(root) == before


def test_report_of_a_non_numeric_metric_cell_is_one_line(capsys, store, tmp_path):
    root = tmp_path / "damaged"
    shutil.copytree(store, root)
    (root / RUNS).write_text(_set_cell((root / RUNS).read_text(), 1, "hq_fraction", "abc"))
    before = digest(root)
    assert_one_error(*cli(capsys, "report", root), "hq_fraction")
    assert digest(root) == before


@pytest.mark.parametrize("exists", [True, False], ids=["empty-dir", "no-dir"])
def test_report_without_runs_csv_is_one_line(capsys, tmp_path, exists):
    root = tmp_path / "results"
    if exists:
        root.mkdir()
    assert_one_error(*cli(capsys, "report", root), "runs.csv")
    assert digest(tmp_path) == {}


def test_report_of_a_header_only_runs_csv_is_one_line(capsys, store, tmp_path):
    root = tmp_path / "results"
    root.mkdir()
    (root / RUNS).write_text((store / RUNS).read_text().split("\n")[0] + "\n")
    assert_one_error(*cli(capsys, "report", root), "no rows")


# -- good input ---------------------------------------------------------------------------


def test_list_names_every_registered_key(capsys):
    rc, out, err = cli(capsys, "list")
    assert rc == 0 and err == ""
    words = set(out.split())
    for registry in (DATASETS, VARIANTS, REFERENCES, METRICS, SUITES):
        for key in registry:
            assert key in words, key
    for key in DIRECTIONS:
        assert key in out


def _score_json(capsys, path: Path, *extra) -> dict[str, list[float]]:
    rc, out, err = cli(capsys, "score", path, "--dataset", "ring8", "--json", *extra)
    assert rc == 0, err
    assert len(out.strip().splitlines()) == 1
    return json.loads(out)


def test_score_prints_one_value_per_seed_in_every_format(capsys, tmp_path):
    three = sampler("ring8", (3, 300), seed=1)
    npy3 = _write(tmp_path / "three.npy", three)
    npz3 = _write(tmp_path / "three.npz", three)
    as_json = _score_json(capsys, npy3)
    assert list(as_json) == SAMPLE_OUTPUTS
    assert all(len(v) == 3 for v in as_json.values())
    assert _score_json(capsys, npz3) == as_json

    rc, out, _ = cli(capsys, "score", npy3, "--dataset", "ring8")
    assert rc == 0
    lines = out.strip().splitlines()
    assert [line.split()[0] for line in lines] == SAMPLE_OUTPUTS
    for line in lines:
        name, arrow, *values = line.split()
        assert arrow == ("↑" if DIRECTIONS[name] else "↓")
        assert len(values) == 3
        assert np.allclose([float(v) for v in values], as_json[name], rtol=1e-5, equal_nan=True)

    one = three[1]
    npy = _write(tmp_path / "one.npy", one)
    csv = tmp_path / "one.csv"
    np.savetxt(csv, one, delimiter=",", fmt="%.17g")
    from_npy = _score_json(capsys, npy)
    assert all(len(v) == 1 for v in from_npy.values())
    assert _score_json(capsys, csv) == from_npy
    assert {k: v[0] for k, v in from_npy.items()} == pytest.approx(
        {k: v[1] for k, v in as_json.items()}, nan_ok=True
    )


def test_score_metrics_selects_metrics_and_outputs(capsys, tmp_path):
    path = _write(tmp_path / "s.npy", sampler("ring8", (2, 300)))
    assert list(_score_json(capsys, path, "--metrics", "modes")) == list(METRICS["modes"].outputs)
    picked = _score_json(capsys, path, "--metrics", "frechet,modes_covered")
    assert set(picked) == {"frechet_distance", "modes_covered"}


@pytest.mark.parametrize("dataset", [pytest.param(d, id=d) for d in DATASETS])
def test_score_of_the_true_sampler_covers_every_mode(capsys, tmp_path, dataset):
    data = DATASETS[dataset]
    n = max(2_000, 25 * data.n_modes)  # stacked_digits: 1000 modes need ~25,000 samples
    path = _write(tmp_path / "true.npy", sampler(dataset, (2, n), seed=3))
    rc, out, err = cli(capsys, "score", path, "--dataset", dataset, "--json", "--metrics", "modes")
    assert rc == 0, err
    assert json.loads(out)["modes_covered"] == [data.n_modes, data.n_modes]


def test_run_on_cuda_without_a_gpu_is_refused_before_the_store_is_made(
    tmp_path, capsys, monkeypatch
):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    out = tmp_path / "never"
    rc, stdout, err = cli(capsys, "run", "--suite", "smoke", "--device", "cuda", "--out", out)
    assert_one_error(rc, stdout, err, "CUDA")
    assert not out.exists()
