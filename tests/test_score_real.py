"""Tests for ``modecov score FAKE --real REAL``: distribution metrics between two sample sets
from files, both kinds with ``--dataset``, and one-line errors (exit code 2) on bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import torch
from helpers import cli

from modecov.data import DATASETS
from modecov.metrics import METRICS, score_distribution

DIST_KEYS = [k for m in METRICS.values() if m.kind == "distribution" for k in m.outputs]
RAW_KEYS = [
    k for m in METRICS.values() if m.kind == "samples" and not m.needs_dataset for k in m.outputs
]
"""The samples metrics that need no dataset: the Fréchet distance, KID, Vendi, RKE, NDB."""
REAL_KEYS = [*RAW_KEYS, *DIST_KEYS]
"""What ``--real`` alone gives: the samples metrics on raw coordinates, then the rest."""
MODE_KEYS = list(METRICS["modes"].outputs)


def draw(shape: tuple[int, ...], seed: int, dataset: str = "ring8") -> np.ndarray:
    """(N, D) or (S, N, D) float64 samples from the dataset's own sampler."""
    data = DATASETS[dataset]
    n = int(np.prod(shape))
    x = data.sample(n, torch.Generator().manual_seed(seed), dtype=torch.float64)
    return x.numpy().reshape(*shape, data.dim)


def save(path: Path, array: np.ndarray) -> Path:
    if path.suffix == ".npy":
        np.save(path, array)
    elif path.suffix == ".npz":
        np.savez(path, array)
    else:
        np.savetxt(path, array, delimiter=",", fmt="%.17g")
    return path


def score_json(capsys, *argv) -> dict[str, list[float]]:
    rc, out, err = cli(capsys, "score", *argv, "--json")
    assert rc == 0, err
    return json.loads(out)


def assert_one_error(rc, out: str, err: str, *needles: str) -> None:
    """Exit code 2, no stdout, and exactly one ``modecov: error:`` line holding the needles."""
    assert rc == 2, err
    assert out == "" and "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("modecov: error: "), err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


@pytest.fixture()
def files(tmp_path) -> dict[str, Path]:
    return {
        "fake": save(tmp_path / "fake.npy", draw((2, 300), 1)),
        "real": save(tmp_path / "real.npy", draw((400,), 2)),
    }


def test_real_gives_every_distribution_metric_per_seed(capsys, files):
    got = score_json(capsys, files["fake"], "--real", files["real"])
    assert list(got) == REAL_KEYS
    fake, real = np.load(files["fake"]), np.load(files["real"])
    expected = score_distribution(fake=torch.from_numpy(fake), real=torch.from_numpy(real))
    for key in DIST_KEYS:
        assert got[key] == pytest.approx(expected[key].tolist(), rel=1e-12, abs=1e-15), key
    assert all(v > 0.8 for v in got["coverage"])  # both files hold true ring8 samples


def torch_fidelity_frechet(a: np.ndarray, b: np.ndarray) -> float:
    """torch-fidelity's formula on raw coordinates: |mu_a - mu_b|^2 + tr(C_a + C_b
    - 2 sqrtm(C_a C_b)), unbiased covariances, scipy's sqrtm (real part)."""
    c_a, c_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(c_a @ c_b).real
    return float(((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(c_a + c_b - 2 * root))


def test_real_alone_gives_the_frechet_distance_on_raw_coordinates(capsys, tmp_path):
    rng = np.random.default_rng(0)
    real = rng.normal(size=(300, 3)) @ rng.normal(size=(3, 3))
    fake = rng.normal(size=(2, 250, 3)) @ rng.normal(size=(3, 3)) + rng.normal(size=3)
    f, r = save(tmp_path / "fake.npy", fake), save(tmp_path / "real.npy", real)
    expected = [torch_fidelity_frechet(real, x) for x in fake]
    got = score_json(capsys, f, "--real", r)
    assert got["frechet_distance"] == pytest.approx(expected, rel=1e-8)
    # Named alone, without --dataset (it was refused: "needs the modes of a dataset").
    for name in ("frechet_distance", "frechet"):
        only = score_json(capsys, f, "--real", r, "--metrics", name)
        assert list(only) == ["frechet_distance"]
        assert only["frechet_distance"] == got["frechet_distance"]


def test_real_is_the_frechet_reference_with_a_dataset(capsys, files):
    # With --dataset too, the user's real set stays the reference (not the dataset's sampler).
    fake, real = np.load(files["fake"]), np.load(files["real"])
    both = score_json(capsys, files["fake"], "--dataset", "ring8", "--real", files["real"])
    expected = [torch_fidelity_frechet(real, x) for x in fake]
    assert both["frechet_distance"] == pytest.approx(expected, rel=1e-8)


def test_every_format_gives_the_same_scores(capsys, tmp_path, files):
    base = score_json(capsys, files["fake"], "--real", files["real"])
    fake, real = np.load(files["fake"]), np.load(files["real"])
    npz = save(tmp_path / "real.npz", real)
    assert score_json(capsys, files["fake"], "--real", npz) == base
    # CSV holds (N, D) only: one seed, compared with the first seed of the .npy scores.
    fake_csv, real_csv = save(tmp_path / "f.csv", fake[0]), save(tmp_path / "r.csv", real)
    one = score_json(capsys, fake_csv, "--real", real_csv)
    assert one == {k: [v[0]] for k, v in base.items()}


def test_a_seed_axis_in_real_is_pooled(capsys, tmp_path, files):
    real = np.load(files["real"])
    stacked = save(tmp_path / "stacked.npy", real.reshape(4, 100, 2))
    assert score_json(capsys, files["fake"], "--real", stacked) == score_json(
        capsys, files["fake"], "--real", files["real"]
    )


def test_dataset_and_real_give_both_kinds(capsys, files):
    both = score_json(capsys, files["fake"], "--dataset", "ring8", "--real", files["real"])
    assert set(MODE_KEYS) | set(DIST_KEYS) <= set(both)
    assert both["modes_covered"] == [8.0, 8.0]
    only_modes = score_json(capsys, files["fake"], "--dataset", "ring8")
    assert not set(DIST_KEYS) & set(only_modes)
    assert only_modes["modes_covered"] == both["modes_covered"]


def test_metrics_selects_distribution_metrics_and_outputs(capsys, files):
    picked = score_json(capsys, files["fake"], "--real", files["real"], "--metrics", "prdc,mmd2")
    assert list(picked) == ["precision", "recall", "density", "coverage", "mmd2"]
    mixed = ("--dataset", "ring8", "--metrics", "w2,modes_covered")
    assert set(score_json(capsys, files["fake"], "--real", files["real"], *mixed)) == {
        "w2",
        "modes_covered",
    }


def test_text_output_has_one_line_per_metric(capsys, files):
    rc, out, err = cli(capsys, "score", files["fake"], "--real", files["real"])
    assert rc == 0, err
    lines = out.splitlines()
    assert [line.split()[0] for line in lines] == REAL_KEYS
    assert "↓" in lines[REAL_KEYS.index("mmd2")] and "↑" in lines[REAL_KEYS.index("precision")]


GOOD = draw((50,), 3)
NAN = GOOD.copy()
NAN[4, 1] = np.nan
INF = GOOD.copy()
INF[7, 0] = np.inf
BAD_PAIRS = [
    pytest.param(GOOD, np.ones((50, 3)), [], ["fake.npy", "dimension 2", "real.npy", "dimension 3"],
                 id="mismatched-dimensions"),
    pytest.param(GOOD, np.ones((50, 3)), ["--dataset", "ring8"], ["real.npy", "D=2"],
                 id="real-not-the-dataset-dimension"),
    pytest.param(NAN, GOOD, [], ["fake.npy", "NaN"], id="nan-in-fake"),
    pytest.param(GOOD, INF, [], ["real.npy", "infinite"], id="inf-in-real"),
    pytest.param(GOOD[:5], GOOD, [], ["fake.npy", "5 samples", "k = 5", "at least 6"],
                 id="too-few-fake"),
    pytest.param(GOOD[None, :5].repeat(3, 0), GOOD, [], ["fake.npy", "5 samples per set"],
                 id="too-few-fake-per-seed"),
    pytest.param(GOOD, GOOD[:4], [], ["real.npy", "4 samples", "at least 6"], id="too-few-real"),
    pytest.param(GOOD, np.zeros((0, 2)), [], ["real.npy", "no samples"], id="empty-real"),
    pytest.param(GOOD, GOOD[:1].repeat(50, 0), [], ["real.npy", "same point"],
                 id="real-one-repeated-point"),
    pytest.param(GOOD, GOOD, ["--metrics", "modes"], ["--dataset"], id="modes-without-dataset"),
    pytest.param(GOOD, GOOD, ["--metrics", "hop_tv"], ["trajectory"], id="trajectory-metric"),
]  # fmt: skip


@pytest.mark.parametrize(("fake", "real", "extra", "needles"), BAD_PAIRS)
def test_bad_pairs_are_one_line(capsys, tmp_path, fake, real, extra, needles):
    f, r = save(tmp_path / "fake.npy", fake), save(tmp_path / "real.npy", real)
    assert_one_error(*cli(capsys, "score", f, "--real", r, *extra), *needles)


def test_missing_real_file_and_missing_reference_are_one_line(capsys, tmp_path):
    f = save(tmp_path / "fake.npy", GOOD)
    assert_one_error(*cli(capsys, "score", f, "--real", tmp_path / "nope.npy"), "does not exist")
    assert_one_error(*cli(capsys, "score", f), "--dataset", "--real")
    assert_one_error(
        *cli(capsys, "score", f, "--dataset", "ring8", "--metrics", "precision"), "--real"
    )
