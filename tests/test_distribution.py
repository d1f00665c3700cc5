"""Tests for modecov.metrics.distribution and the Fréchet distance: each metric against an
independent implementation (prdc, POT, scipy, plain numpy) on random data and on collapse /
perfect / noise scenarios, invariances, and the end-of-training plumbing."""

from __future__ import annotations

import math

import numpy as np
import ot
import prdc as prdc_ref
import pytest
import scipy.linalg
import torch
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist, pdist

from modecov.config import RunConfig
from modecov.data import DATASETS
from modecov.errors import ConfigError
from modecov.evaluate import train
from modecov.metrics import METRICS, score_distribution, score_samples
from modecov.metrics import distribution as dist
from modecov.metrics.frechet import frechet

PRDC_KEYS = ("precision", "recall", "density", "coverage")
DIST_KEYS = {k for m in METRICS.values() if m.kind == "distribution" for k in m.outputs}
RING8 = DATASETS["ring8"]


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def as_t(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x))


def numpy_mmd2(x: np.ndarray, y: np.ndarray, h: float) -> float:
    """Plain unbiased MMD² with k(a, b) = exp(-|a - b|^2 / (2 h^2))."""
    k = lambda a, b: np.exp(-cdist(a, b, "sqeuclidean") / (2 * h * h))  # noqa: E731
    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    n, m = len(x), len(y)
    return (
        (kxx.sum() - np.trace(kxx)) / (n * (n - 1))
        + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
        - 2 * kxy.mean()
    )


def random_sets(d: int, n_fake: int, n_real: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(d, d))
    real = rng.normal(size=(n_real, d)) @ mix
    fake = rng.normal(size=(2, n_fake, d)) @ (1.2 * mix) + 0.3
    return fake, real


RANDOM = [
    pytest.param(2, 400, 400, id="2d-equal"),
    pytest.param(2, 300, 450, id="2d-unequal"),
    pytest.param(16, 350, 250, id="16d-unequal"),
]


# References on random data


@pytest.mark.parametrize("d, n_fake, n_real", RANDOM)
def test_prdc_matches_prdc_package(d, n_fake, n_real):
    fake, real = random_sets(d, n_fake, n_real)
    out = dist.prdc(fake=as_t(fake), real=as_t(real), data=None)
    for s in range(2):
        ref = prdc_ref.compute_prdc(real_features=real, fake_features=fake[s], nearest_k=5)
        for key in PRDC_KEYS:
            assert abs(out[key][s].item() - ref[key]) <= 1.0 / min(n_fake, n_real), key


@pytest.mark.parametrize("d, n_fake, n_real", RANDOM)
def test_mmd2_matches_numpy(d, n_fake, n_real):
    fake, real = random_sets(d, n_fake, n_real, seed=1)
    out = dist.mmd2(fake=as_t(fake), real=as_t(real), data=None)["mmd2"].numpy()
    h = float(np.median(pdist(real)))
    expected = [numpy_mmd2(f, real, h) for f in fake]
    # The kernel's exponential runs in float32: ~1e-7 relative per term.
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-8)
    assert min(expected) > 1e-3  # the sets differ, so the check is not on noise around 0


@pytest.mark.parametrize("n", [7, 8, 400, 2_501])
def test_median_pairwise_distance_is_numpys(n):
    x = np.random.default_rng(n).normal(size=(n, 3))
    assert dist.median_pairwise_distance(as_t(x)) == pytest.approx(
        float(np.median(pdist(x))), rel=1e-12
    )


def test_median_survives_a_misleading_pilot():
    # The strided pilot (every 2nd row) sees one repeated point: its bracket is [0, 0] and
    # misses the median; the wider brackets must still give the exact answer.
    x = np.random.default_rng(0).normal(size=(2_200, 2))
    x[::2] = 5.0
    assert dist.median_pairwise_distance(as_t(x)) == pytest.approx(
        float(np.median(pdist(x))), rel=1e-12
    )


@pytest.mark.parametrize("d, n_fake, n_real", RANDOM)
def test_w2_matches_pot_emd2(d, n_fake, n_real):
    fake, real = random_sets(d, n_fake, n_real, seed=2)
    out = dist.w2(fake=as_t(fake), real=as_t(real), data=None)["w2"].numpy()
    expected = [math.sqrt(ot.emd2([], [], ot.dist(f, real), numItermax=10**7)) for f in fake]
    np.testing.assert_allclose(out, expected, rtol=1e-7)


def test_w2_matches_an_assignment_solver():
    # Equal sizes and uniform weights: optimal transport is an optimal assignment.
    fake, real = random_sets(3, 300, 300, seed=3)
    out = dist.w2(fake=as_t(fake), real=as_t(real), data=None)["w2"].numpy()
    for s in range(2):
        cost = cdist(fake[s], real, "sqeuclidean")
        rows, cols = linear_sum_assignment(cost)
        assert out[s] == pytest.approx(math.sqrt(cost[rows, cols].mean()), rel=1e-7)


@pytest.mark.parametrize("d, n_fake, n_real", RANDOM)
def test_sliced_w2_matches_pot_with_the_same_directions(d, n_fake, n_real):
    fake, real = random_sets(d, n_fake, n_real, seed=4)
    out = dist.sliced_w2(fake=as_t(fake), real=as_t(real), data=None)["sliced_w2"].numpy()
    theta = dist.sliced_directions(d).numpy()
    assert theta.shape == (d, dist.SLICED_PROJECTIONS)
    np.testing.assert_allclose(np.linalg.norm(theta, axis=0), 1.0, rtol=1e-12)
    expected = [ot.sliced_wasserstein_distance(f, real, projections=theta, p=2) for f in fake]
    np.testing.assert_allclose(out, expected, rtol=1e-7)


def test_sliced_directions_are_fixed():
    assert torch.equal(dist.sliced_directions(5), dist.sliced_directions(5))
    assert not torch.equal(dist.sliced_directions(5), dist.sliced_directions(5, seed=1))


def test_known_answers_for_a_shift():
    real = torch.randn(300, 4, generator=gen(0), dtype=torch.float64)
    shift = torch.tensor([1.0, -2.0, 0.5, 0.0], dtype=torch.float64)
    fake = torch.stack([real, real + shift])
    w = dist.w2(fake=fake, real=real, data=None)["w2"]
    assert w[0].item() == pytest.approx(0.0, abs=1e-7)
    assert w[1].item() == pytest.approx(shift.norm().item(), rel=1e-9)
    sw = dist.sliced_w2(fake=fake, real=real, data=None)["sliced_w2"]
    theta = dist.sliced_directions(4)
    assert sw[0].item() == 0.0
    assert sw[1].item() == pytest.approx((shift @ theta).square().mean().sqrt().item(), rel=1e-9)
    p = dist.prdc(fake=fake[:1], real=real, data=None)
    assert all(p[k].item() == 1.0 for k in ("precision", "recall", "coverage"))


# Fréchet distance against scipy


def scipy_frechet(a: np.ndarray, b: np.ndarray, *, split: bool = False) -> float:
    """The FID formula with scipy.linalg.sqrtm: tr sqrtm(C1 C2), or with ``split`` the sum of
    singular values of sqrtm(C1) sqrtm(C2) (the same number, computed without squaring the
    covariances' condition number)."""
    c1, c2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    if split:
        s1, s2 = scipy.linalg.sqrtm(c1).real, scipy.linalg.sqrtm(c2).real
        cross = scipy.linalg.svdvals(s1 @ s2).sum()
    else:
        cross = np.trace(scipy.linalg.sqrtm(c1 @ c2).real)
    mean = ((a.mean(0) - b.mean(0)) ** 2).sum()
    return float(mean + np.trace(c1) + np.trace(c2) - 2 * cross)


@pytest.mark.parametrize("d", [2, 16, 64])
def test_frechet_matches_scipy_with_spread_scales(d):
    rng = np.random.default_rng(d)
    scales = np.logspace(-2, 1, d)
    real = rng.normal(size=(1_500, d)) * scales
    fake = rng.normal(size=(2, 1_200, d)) * scales * 1.1 + 0.05
    out = frechet(fake=as_t(fake), real=as_t(real), data=None)["frechet_distance"].numpy()
    np.testing.assert_allclose(out, [scipy_frechet(real, f) for f in fake], rtol=1e-6)


def spread_mixture(d: int, n: int, seed: int) -> np.ndarray:
    """gauss1200's structure in ``d`` dims: 10 means c_k * 1, sigma 1 on 7/12 of the dims and
    0.01 on the rest, so variances span ~1e4 to 1e-4."""
    rng = np.random.default_rng(seed)
    c = np.array([-1, -0.5, 0, 0.5, -2, -2.5, 10, 0.25, -13, -5.5])
    std = np.where(np.arange(d) < d * 7 // 12, 1.0, 0.01)
    return c[rng.integers(0, 10, n)][:, None] + rng.normal(size=(n, d)) * std


def test_frechet_with_spread_variances_matches_scipy():
    # With variances from ~1e4 to 1e-4, tr sqrtm(C1 C2) itself is off by ~1e-5, so the
    # reference takes the square roots first (scipy.linalg.sqrtm, then svdvals).
    real, fake = spread_mixture(240, 1_000, 0), spread_mixture(240, 1_000, 1)
    out = frechet(fake=as_t(fake)[None], real=as_t(real), data=None)["frechet_distance"].item()
    assert out == pytest.approx(scipy_frechet(real, fake, split=True), rel=1e-6)


@pytest.mark.slow
def test_frechet_in_1200_dims_matches_scipy():
    data = DATASETS["gauss1200"]
    real = data.sample(1_500, gen(0), dtype=torch.float64)
    fake = data.sample(1_500, gen(1), dtype=torch.float64)[None]
    out = frechet(fake=fake, real=real, data=data)["frechet_distance"].item()
    assert out == pytest.approx(scipy_frechet(real.numpy(), fake[0].numpy(), split=True), rel=1e-6)


# Scenarios


@pytest.fixture(scope="module")
def scenarios() -> tuple[torch.Tensor, torch.Tensor]:
    """ring8: real (N, 2) and fake (3, N, 2) = true samples, one mode, uniform noise."""
    n = 1_000
    real = RING8.sample(n, gen(0), dtype=torch.float64)
    low, high = RING8.bounds()
    fake = torch.stack(
        [
            RING8.sample(n, gen(1), dtype=torch.float64),
            RING8.sample_mode(0, n, gen(2), dtype=torch.float64),
            low + (high - low) * torch.rand(n, 2, generator=gen(3), dtype=torch.float64),
        ]
    )
    return fake, real


def test_scenarios_move_every_metric_the_right_way(scenarios):
    fake, real = scenarios
    out = {k: v.numpy() for k, v in score_distribution(fake=fake, real=real).items()}
    true, one, noise = 0, 1, 2
    for key in PRDC_KEYS:
        assert out[key][true] > 0.9, key
    assert 0.9 < out["density"][true] < 1.1
    assert out["precision"][one] > 0.9 and out["density"][one] > 0.9
    assert out["recall"][one] < 0.2 and out["coverage"][one] < 0.2
    assert out["precision"][noise] < 0.05 and out["density"][noise] < 0.05
    assert abs(out["mmd2"][true]) < 1e-3
    assert out["mmd2"][true] < 0.01 * min(out["mmd2"][one], out["mmd2"][noise])
    # Two finite draws of ring8 differ in mode masses by ~sqrt(N/8)/N, which transport
    # must carry ~1 unit: W2 ~0.4 and sliced W2 ~0.2 here, not ~0.
    for key in ("w2", "sliced_w2"):
        assert out[key][true] < 0.5 * min(out[key][one], out[key][noise]), key


def test_scenarios_match_the_references(scenarios):
    fake, real = scenarios
    out = score_distribution(fake=fake, real=real)
    r = real.numpy()
    h = float(np.median(pdist(r)))
    theta = dist.sliced_directions(2).numpy()
    n = real.shape[0]
    for s, f in enumerate(fake.numpy()):
        ref = prdc_ref.compute_prdc(real_features=r, fake_features=f, nearest_k=5)
        for key in PRDC_KEYS:
            assert abs(out[key][s].item() - ref[key]) <= 1.0 / n, (s, key)
        assert out["mmd2"][s].item() == pytest.approx(numpy_mmd2(f, r, h), rel=1e-5, abs=1e-8)
        sub = dist.W2_MAX_POINTS
        emd = ot.emd2([], [], ot.dist(f[:sub], r[:sub]), numItermax=10**7)
        assert out["w2"][s].item() == pytest.approx(math.sqrt(emd), rel=1e-7)
        sw = ot.sliced_wasserstein_distance(f, r, projections=theta)
        assert out["sliced_w2"][s].item() == pytest.approx(sw, rel=1e-7)


# Invariances, batching, caps, bad input


def test_chunk_size_and_sample_order_do_not_matter(monkeypatch):
    fake, real = random_sets(2, 300, 240, seed=5)
    fake, real = as_t(fake), as_t(real)
    base = score_distribution(fake=fake, real=real)
    perm = torch.stack([torch.randperm(300, generator=gen(10 + s)) for s in range(2)])
    shuffled = torch.take_along_dim(fake, perm[..., None], 1)
    real_shuffled = real[torch.randperm(240, generator=gen(20))]
    monkeypatch.setattr(dist, "CHUNK", 97)  # rows of one or a few distances
    for other in (
        score_distribution(fake=shuffled, real=real_shuffled),
        score_distribution(fake=fake, real=real),
    ):
        for key in base:
            torch.testing.assert_close(other[key], base[key], rtol=1e-10, atol=1e-12, msg=key)
        for key in PRDC_KEYS:  # counts: exactly equal
            assert torch.equal(other[key], base[key]), key


def test_seeds_are_scored_independently():
    fake, real = random_sets(3, 200, 200, seed=6)
    together = score_distribution(fake=as_t(fake), real=as_t(real))
    for s in range(2):
        alone = score_distribution(fake=as_t(fake[s : s + 1]), real=as_t(real))
        for key in together:
            torch.testing.assert_close(alone[key][0], together[key][s], rtol=1e-12, atol=1e-12)


def test_a_non_finite_seed_scores_nan_and_leaves_the_others():
    fake, real = random_sets(2, 100, 100, seed=7)
    fake = as_t(fake)
    good = score_distribution(fake=fake[:1], real=as_t(real))
    fake[1, 5, 0] = math.inf
    out = score_distribution(fake=fake, real=as_t(real))
    for key in out:
        assert math.isnan(out[key][1].item()), key
        assert out[key][0].item() == pytest.approx(good[key][0].item(), rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("name", ["prdc", "mmd", "w2", "sliced_w2"])
def test_bad_input_is_refused(name):
    fn = METRICS[name].fn
    real = torch.randn(20, 2, generator=gen(0), dtype=torch.float64)
    with pytest.raises(ValueError, match="at least 6"):
        fn(fake=real[None, :5], real=real, data=None)
    with pytest.raises(ValueError, match="at least 6"):
        fn(fake=real[None], real=real[:5], data=None)
    with pytest.raises(ValueError, match="same D"):
        fn(fake=torch.randn(1, 20, 3, dtype=torch.float64), real=real, data=None)
    bad = real.clone()
    bad[3, 1] = math.nan
    with pytest.raises(ValueError, match="NaN"):
        fn(fake=real[None], real=bad, data=None)


def test_each_metric_reads_only_its_cap(monkeypatch):
    fake, real = random_sets(2, 60, 50, seed=8)
    fake, real = as_t(fake), as_t(real)
    caps = {"PRDC_MAX_POINTS": 30, "MMD_MAX_POINTS": 25, "W2_MAX_POINTS": 20}
    caps["SLICED_MAX_POINTS"] = 35
    full = {
        "prdc": dist.prdc(fake=fake[:, :30], real=real[:30], data=None),
        "mmd": dist.mmd2(fake=fake[:, :25], real=real[:25], data=None),
        "w2": dist.w2(fake=fake[:, :20], real=real[:20], data=None),
        "sliced_w2": dist.sliced_w2(fake=fake[:, :35], real=real[:35], data=None),
    }
    for attr, value in caps.items():
        monkeypatch.setattr(dist, attr, value)
    for name, expected in full.items():
        got = METRICS[name].fn(fake=fake, real=real, data=None)
        for key in expected:
            torch.testing.assert_close(got[key], expected[key], rtol=1e-12, atol=1e-12)


def test_registry_keeps_distribution_metrics_off_the_snapshot_path():
    fake = RING8.sample(100, gen(0))[None]
    assert not DIST_KEYS & set(score_samples(fake=fake, real=fake[0], data=RING8))
    assert set(score_distribution(fake=fake, real=fake[0].double())) == DIST_KEYS
    assert DIST_KEYS == {"precision", "recall", "density", "coverage", "mmd2", "w2", "sliced_w2"}
    assert set(score_distribution(fake=fake, real=fake[0], names=["w2"])) == {"w2"}
    with pytest.raises(ConfigError, match="distribution metric"):
        score_distribution(fake=fake, real=fake[0], names=["modes"])


# End of training


def tiny(variant: str, **kw) -> RunConfig:
    base = dict(
        dataset="ring8", variant=variant, seeds=(0, 1), steps=10, eval_every=5, batch_size=32,
        hidden=16, depth=2, n_eval=100, n_eval_large=300, dtype="float64", device="cpu",
    )  # fmt: skip
    return RunConfig(**{**base, **kw})


@pytest.mark.parametrize("variant", ["nsgan", "true_sampler", "one_mode"])
def test_training_scores_the_large_set(variant):
    out = train(tiny(variant))
    assert DIST_KEYS <= set(out.final)
    for key in DIST_KEYS:
        assert out.final[key].shape == (2,) and torch.isfinite(out.final[key]).all(), key
    again = train(tiny(variant))
    for key in DIST_KEYS:
        assert torch.equal(out.final[key], again.final[key]), key
    if variant == "true_sampler":
        assert (out.final["coverage"] > 0.8).all() and (out.final["recall"] > 0.8).all()
    if variant == "one_mode":
        assert (out.final["coverage"] < 0.25).all() and (out.final["precision"] > 0.8).all()


def test_large_set_size_follows_the_config_up_to_the_largest_cap(monkeypatch):
    seen = []

    def spy(*, fake, real, data, names=None):
        seen.append((tuple(fake.shape), tuple(real.shape)))
        return {}

    monkeypatch.setattr("modecov.evaluate.metrics.score_distribution", spy)
    train(tiny("true_sampler", n_eval_large=50))
    monkeypatch.setattr("modecov.evaluate.metrics.sample_caps", lambda kind=None: {"w2": 40})
    train(tiny("true_sampler", n_eval_large=50))
    assert seen == [((2, 50, 2), (50, 2)), ((2, 40, 2), (40, 2))]
