"""Tests for the kernel metrics (KID, Vendi, RKE) and NDB: each against its reference
(torchmetrics' poly_mmd, the vendi-score package's score_K, numpy eigenvalues, scikit-learn
k-means with a scipy z-test), the mode-count anchors on ring8, the datasets' kernel_scale,
invariances, caps, registration and the command line."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
import scipy.stats
import torch
from helpers import cli
from scipy.spatial.distance import cdist, jensenshannon
from sklearn.cluster import KMeans

from modecov.data import DATASETS
from modecov.data.base import hq_radius2
from modecov.metrics import DIRECTIONS, METRICS, kernel, score_samples
from modecov.metrics import distribution as dist
from modecov.metrics.kernel import kernel_bandwidth, kid, rke, vendi
from modecov.metrics.ndb import NDB_BINS, ndb_cells

pytestmark = pytest.mark.filterwarnings(
    # vendi-score's score_K still names scipy.sparse.csr; the reference, not modecov, warns.
    "ignore:Please import `csr_matrix`:DeprecationWarning"
)
NDB_MODULE = sys.modules["modecov.metrics.ndb"]  # modecov.metrics.ndb is also the function
NEW = {"kid": ("kid",), "vendi": ("vendi", "vendi_norm"), "rke": ("rke",),
       "ndb": ("ndb", "ndb_jsd")}  # fmt: skip
RING8 = DATASETS["ring8"]


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def random_sets(s: int, n: int, m: int, d: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(S, N, D) fakes (a shifted, wider Gaussian) and (M, D) reals, float64."""
    g = gen(seed)
    real = torch.randn(m, d, generator=g, dtype=torch.float64)
    fake = 1.2 * torch.randn(s, n, d, generator=g, dtype=torch.float64) + 0.3
    return fake, real


def rbf_matrix(x: np.ndarray, h: float) -> np.ndarray:
    return np.exp(-cdist(x, x, "sqeuclidean") / (2 * h * h))


# References


@pytest.mark.parametrize("d", [1, 2, 7, 64])
def test_kid_matches_torchmetrics(d):
    from torchmetrics.image.kid import poly_mmd

    fake, real = random_sets(3, 250, 250, d, seed=d)
    got = kid(fake=fake, real=real, data=None)["kid"]
    expected = torch.stack([poly_mmd(real, f) for f in fake])  # one subset: every sample
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-13)


def test_kid_with_different_sample_counts_is_the_unbiased_estimator():
    fake, real = random_sets(2, 120, 170, 3, seed=4)
    f, x = fake.numpy(), real.numpy()

    def k(a, b):
        return (a @ b.T / 3 + 1) ** 3

    for i in range(2):
        kff, kxx = k(f[i], f[i]), k(x, x)
        expected = (
            (kff.sum() - np.trace(kff)) / (120 * 119)
            + (kxx.sum() - np.trace(kxx)) / (170 * 169)
            - 2 * k(f[i], x).mean()
        )
        assert float(kid(fake=fake, real=real, data=None)["kid"][i]) == pytest.approx(
            expected, rel=1e-10
        )


@pytest.mark.parametrize("data", [None, RING8], ids=["median", "kernel_scale"])
def test_vendi_matches_the_vendi_score_package(data):
    from vendi_score.vendi import score_K

    if data is None:
        fake, real = random_sets(2, 300, 400, 5, seed=1)
    else:
        real = data.sample(400, gen(1), dtype=torch.float64)
        fake = torch.stack([data.sample(300, gen(2)), data.sample_mode(3, 300, gen(3))]).double()
    h = kernel_bandwidth(real, data)
    out = vendi(fake=fake, real=real, data=data)
    real_vs = score_K(rbf_matrix(real.numpy(), h))
    for i, f in enumerate(fake.numpy()):
        expected = score_K(rbf_matrix(f, h))
        assert float(out["vendi"][i]) == pytest.approx(expected, rel=1e-10)
        assert float(out["vendi_norm"][i]) == pytest.approx(expected / real_vs, rel=1e-10)


@pytest.mark.parametrize("data", [None, RING8], ids=["median", "kernel_scale"])
def test_rke_is_one_over_the_sum_of_squared_eigenvalues(data):
    from vendi_score.vendi import score_K

    fake, real = random_sets(2, 300, 400, 4, seed=2)
    if data is not None:
        fake = fake[..., :2] * 0.5
        real = real[:, :2]
    h = kernel_bandwidth(real, data)
    got = rke(fake=fake, real=real, data=data)["rke"]
    for i, f in enumerate(fake.numpy()):
        k = rbf_matrix(f, h)
        lam = np.linalg.eigvalsh(k / len(k))
        assert float(got[i]) == pytest.approx(1.0 / np.sum(lam**2), rel=1e-10)
        assert float(got[i]) == pytest.approx(score_K(k, q=2), rel=1e-10)  # exp of H_2
        assert float(got[i]) <= float(vendi(fake=fake, real=real, data=data)["vendi"][i])


def test_bandwidth_is_the_kernel_scale_else_the_real_median():
    real = RING8.sample(300, gen(0), dtype=torch.float64)
    assert kernel_bandwidth(real, RING8) == RING8.kernel_scale
    d = cdist(real.numpy(), real.numpy())[np.triu_indices(300, 1)]
    assert kernel_bandwidth(real, None) == pytest.approx(float(np.median(d)), rel=1e-12)
    spiral = DATASETS["spiral"]
    assert spiral.kernel_scale is None
    assert kernel_bandwidth(real, spiral) == kernel_bandwidth(real, None)
    with pytest.raises(ValueError, match="identical"):
        kernel_bandwidth(real[:1].expand(10, -1), None)


def ndb_expected(fake: np.ndarray, real: np.ndarray) -> tuple[float, float]:
    """NDB and its JS divergence as the authors' code computes them (their test, no whitening),
    with KMeans on the rows in sorted order (as modecov, so the cells do not depend on it)."""
    real = real[np.lexsort(real.T[::-1])]
    fit = KMeans(n_clusters=100, n_init=10, max_iter=100, random_state=0).fit(real)
    centres = np.stack([real[fit.labels_ == b].mean(0) for b in range(100)])
    p1 = np.bincount(fit.labels_, minlength=100) / len(real)
    p2 = np.bincount(cdist(fake, centres).argmin(1), minlength=100) / len(fake)
    n1, n2 = len(real), len(fake)
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    with np.errstate(invalid="ignore"):
        z = (p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    different = np.abs(z) > scipy.stats.norm.ppf(1 - 0.05 / 2)
    return float(different.sum()), float(jensenshannon(p1, p2) ** 2)


@pytest.mark.parametrize("d", [2, 6])
def test_ndb_matches_a_direct_computation(d):
    g = np.random.default_rng(d)
    real = g.normal(size=(1_500, d))
    fakes = [g.normal(size=(1_000, d)), 1.3 * g.normal(size=(1_200, d)) + 0.2]
    for fake in fakes:
        out = NDB_MODULE.ndb(fake=torch.from_numpy(fake)[None], real=torch.from_numpy(real),
                             data=None)  # fmt: skip
        ndb, jsd = ndb_expected(fake, real)
        assert float(out["ndb"][0]) == ndb
        assert float(out["ndb_jsd"][0]) == pytest.approx(jsd, rel=1e-12, abs=1e-15)
    assert float(out["ndb"][0]) > 10  # the shifted, wider set differs in many cells


def test_ndb_cells_are_the_k_means_of_the_real_set():
    real = RING8.sample(1_000, gen(0), dtype=torch.float64)
    centres, shares = ndb_cells(real)
    assert centres.shape == (NDB_BINS, 2) and float(shares.sum()) == pytest.approx(1.0)
    shuffled = real[torch.randperm(1_000, generator=gen(1))]
    again = ndb_cells(shuffled)
    assert torch.equal(centres, again[0]) and torch.equal(shares, again[1])
    assert ndb_cells(real[:99]) is None  # fewer samples than cells
    assert ndb_cells(real[:50].repeat(4, 1)) is None  # 200 samples, 50 distinct


def test_ndb_of_the_real_set_itself_and_of_a_collapse():
    real = RING8.sample(2_500, gen(0), dtype=torch.float64)
    fake = torch.stack([real, RING8.sample_mode(0, 2_500, gen(1), dtype=torch.float64)])
    out = NDB_MODULE.ndb(fake=fake, real=real, data=None)
    # The real set against its own cells: a sample whose cell's mean moved after the last
    # k-means step may change cell, nothing more.
    assert out["ndb"][0] == 0 and out["ndb_jsd"][0] < 1e-3
    assert out["ndb"][1] > 80 and out["ndb_jsd"][1] > 0.5


# Anchors: mode counts on ring8


def ring8_modes(modes: list[int], n: int, seed: int) -> torch.Tensor:
    """(N, 2) samples spread evenly over the listed modes of ring8."""
    per = [RING8.sample_mode(k, n // len(modes), gen(seed + k)) for k in modes]
    return torch.cat(per)


@pytest.fixture(scope="module")
def anchors() -> dict[str, torch.Tensor]:
    n = dist.VENDI_MAX_POINTS
    real = RING8.sample(2_500, gen(0), dtype=torch.float64)
    fake = torch.stack([
        RING8.sample(n, gen(1)), ring8_modes([0, 1, 2, 4, 6], n, 10), ring8_modes([3], n, 20),
    ])  # fmt: skip
    return score_samples(fake=fake, real=real, data=RING8, names=list(NEW))


@pytest.mark.parametrize("key", ["vendi", "rke"])
def test_kernel_mode_counts_on_ring8(anchors, key):
    # True sampler ~8 (VS 8.44: the kernel still sees each mode's own width, see
    # mixture_kernel_scale), 5 of 8 modes ~5, one mode ~1.
    for i, modes in enumerate((8, 5, 1)):
        assert abs(float(anchors[key][i]) - modes) < 0.5, (key, modes, float(anchors[key][i]))


def test_vendi_norm_is_one_for_the_true_sampler(anchors):
    assert float(anchors["vendi_norm"][0]) == pytest.approx(1.0, abs=0.02)
    assert float(anchors["vendi_norm"][2]) == pytest.approx(1 / 8, abs=0.02)


def test_collapse_is_worse_on_every_new_output(anchors):
    for key in (k for keys in NEW.values() for k in keys):
        true, one = float(anchors[key][0]), float(anchors[key][2])
        assert (true > one) if DIRECTIONS[key] else (true < one), key


# kernel_scale


def test_kernel_scale_of_each_dataset_follows_its_definition():
    for name, data in DATASETS.items():
        if not hasattr(data, "std"):
            assert data.kernel_scale is None, name  # the spiral, stacked digits
            continue
        c = data.centers.numpy()
        d = cdist(c, c)
        np.fill_diagonal(d, np.inf)
        gap = float(np.median(d.min(1)))
        spread = math.sqrt(hq_radius2(data.dim) * float((data.std.numpy() ** 2).mean()))
        expected = math.sqrt(spread * gap) if gap > 2 * spread else None
        assert data.kernel_scale == (pytest.approx(expected, rel=1e-12) if expected else None)
    # ring8: 3 std = 0.06 and neighbouring centres 2 * 2 sin(pi / 8) apart.
    assert RING8.kernel_scale == pytest.approx(math.sqrt(0.06 * 4 * math.sin(math.pi / 8)))
    assert DATASETS["grid25"].kernel_scale == pytest.approx(math.sqrt(0.15 * 2.0))
    assert DATASETS["gauss1200"].kernel_scale is None  # gap 17.3 < 2 x spread 27.7


# Invariances


def test_sample_order_and_chunk_size_do_not_matter(monkeypatch):
    real = RING8.sample(400, gen(0), dtype=torch.float64)
    low, high = RING8.bounds()
    noise = low + (high - low) * torch.rand(2, 60, 2, generator=gen(2), dtype=torch.float64)
    fake = torch.cat([torch.stack([RING8.sample(240, gen(s)) for s in (3, 4)]).double(), noise], 1)
    names = list(NEW)
    base = score_samples(fake=fake, real=real, data=None, names=names)
    perm = torch.stack([torch.randperm(300, generator=gen(10 + s)) for s in range(2)])
    shuffled = torch.take_along_dim(fake, perm[..., None], 1)
    real_shuffled = real[torch.randperm(400, generator=gen(20))]
    for key, value in score_samples(fake=shuffled, real=real_shuffled, data=None,
                                    names=names).items():  # fmt: skip
        torch.testing.assert_close(value, base[key], rtol=1e-11, atol=1e-13, msg=key)
    monkeypatch.setattr(dist, "CHUNK", 97)  # a few rows per block
    for key, value in score_samples(fake=fake, real=real, data=None, names=names).items():
        torch.testing.assert_close(value, base[key], rtol=1e-11, atol=1e-13, msg=key)


def test_seeds_scored_together_equal_each_alone():
    real = RING8.sample(500, gen(0), dtype=torch.float64)
    fake = torch.stack([RING8.sample(300, gen(s)) for s in range(3)])
    together = score_samples(fake=fake, real=real, data=RING8, names=list(NEW))
    for s in range(3):
        alone = score_samples(fake=fake[s : s + 1], real=real, data=RING8, names=list(NEW))
        for key, value in alone.items():
            assert torch.equal(value, together[key][s : s + 1]), key


def test_far_spread_sets_take_the_exact_path():
    # Beyond EXACT_WITHIN the Gram matrix comes from coordinate differences: the same
    # kernel, and a set scaled far out has K = I (every pair beyond ~40 h) without NaN.
    x = RING8.sample(200, gen(0), dtype=torch.float64)
    h = RING8.kernel_scale
    near = torch.cat([b.clone() for _, b in kernel._rbf_rows(x, h)])
    x_far = torch.cat([x, x[:1] + 1e5])  # one sample far out: the whole set goes exact
    far = torch.cat([b.clone() for _, b in kernel._rbf_rows(x_far, h)])
    torch.testing.assert_close(far[:200, :200], near, rtol=1e-12, atol=1e-15)
    for scale in (1e30, 1e300, 1.7e308):
        gram = torch.cat([b for _, b in kernel._rbf_rows(x / x.abs().max() * scale, h)])
        assert torch.equal(gram, torch.eye(200, dtype=torch.float64)), scale


def test_a_non_finite_seed_scores_nan_and_leaves_the_others():
    real = RING8.sample(300, gen(0), dtype=torch.float64)
    fake = torch.stack([RING8.sample(200, gen(s)) for s in range(2)]).double()
    good = score_samples(fake=fake[:1], real=real, data=RING8, names=list(NEW))
    fake[1, 5, 0] = math.inf
    out = score_samples(fake=fake, real=real, data=RING8, names=list(NEW))
    for key, value in out.items():
        assert math.isnan(value[1]) and value[0] == good[key][0], key


def test_bad_input_is_refused():
    fake, real = random_sets(1, 50, 50, 2, seed=0)
    for fn in (kid, vendi, rke):
        with pytest.raises(ValueError, match="at least 2"):
            fn(fake=fake[:, :1], real=real, data=None)
        bad = real.clone()
        bad[3, 1] = math.nan
        with pytest.raises(ValueError, match="NaN"):
            fn(fake=fake, real=bad, data=None)
    for fn in (kid, vendi, rke, NDB_MODULE.ndb):
        with pytest.raises(ValueError, match=r"\(S, N, D\)"):
            fn(fake=fake[0], real=real, data=None)


def test_each_metric_reads_only_its_cap(monkeypatch):
    fake, real = random_sets(2, 260, 240, 2, seed=8)
    caps = {"KID_MAX_POINTS": 150, "VENDI_MAX_POINTS": 120, "RKE_MAX_POINTS": 130,
            "NDB_MAX_POINTS": 200}  # fmt: skip
    full = {
        "kid": kid(fake=fake[:, :150], real=real[:150], data=None),
        "vendi": vendi(fake=fake[:, :120], real=real[:120], data=None),
        "rke": rke(fake=fake[:, :130], real=real[:120], data=None),  # h from the vendi cap
        "ndb": NDB_MODULE.ndb(fake=fake[:, :200], real=real[:200], data=None),
    }
    for attr, value in caps.items():
        monkeypatch.setattr(dist, attr, value)
    for name, expected in full.items():
        got = METRICS[name].fn(fake=fake, real=real, data=None)
        for key in expected:
            torch.testing.assert_close(got[key], expected[key], rtol=1e-12, atol=1e-12)


# Registration and the command line


def test_registered_as_samples_metrics_that_need_no_dataset():
    from modecov.metrics import sample_caps, snapshot_metrics

    for name, outputs in NEW.items():
        spec = METRICS[name]
        assert spec.kind == "samples" and not spec.needs_dataset, name
        assert tuple(spec.outputs) == outputs and name in sample_caps("samples")
        assert name not in snapshot_metrics()  # scored on the final samples only
    assert DIRECTIONS["vendi"] and DIRECTIONS["vendi_norm"] and DIRECTIONS["rke"]
    assert not DIRECTIONS["kid"] and not DIRECTIONS["ndb"] and not DIRECTIONS["ndb_jsd"]
    # the large final set keeps its size
    assert max(sample_caps("distribution").values()) == 10_000
    assert dist.VENDI_MAX_POINTS <= 2_500


def test_list_shows_each_new_output_with_its_direction(capsys):
    rc, out, err = cli(capsys, "list")
    assert rc == 0 and err == ""
    lines = {line.split()[0]: line for line in out.splitlines() if line.startswith("  ")}
    for name, outputs in NEW.items():
        for key in outputs:
            assert f"{key} {'↑' if DIRECTIONS[key] else '↓'}" in lines[name], key


@pytest.mark.parametrize("flag", ["--dataset", "--real"])
def test_score_prints_the_new_outputs(capsys, tmp_path, flag):
    fake = np.stack([RING8.sample(300, gen(s), dtype=torch.float64).numpy() for s in (1, 2)])
    real = RING8.sample(400, gen(3), dtype=torch.float64).numpy()
    np.save(tmp_path / "fake.npy", fake)
    np.save(tmp_path / "real.npy", real)
    extra = ["--dataset", "ring8"] if flag == "--dataset" else ["--real", tmp_path / "real.npy"]
    rc, out, err = cli(capsys, "score", tmp_path / "fake.npy", *extra)
    assert rc == 0 and err == "", err
    lines = {line.split()[0]: line.split() for line in out.splitlines()}
    for key in (k for keys in NEW.values() for k in keys):
        assert lines[key][1] == ("↑" if DIRECTIONS[key] else "↓"), key
        assert len(lines[key]) == 4, key  # key, arrow, one value per seed
    data = RING8 if flag == "--dataset" else None
    ref = torch.from_numpy(real) if data is None else None
    if ref is not None:  # --real alone: the file is the reference
        expected = vendi(fake=torch.from_numpy(fake), real=ref, data=None)["vendi"]
        assert [float(v) for v in lines["vendi"][2:]] == pytest.approx(expected.tolist(), 1e-5)
    else:  # --dataset alone: the dataset's kernel_scale, 8 separated modes
        assert all(abs(float(v) - 8) < 0.6 for v in lines["vendi"][2:])
