"""Degenerate sample sets (DESIGN §6), for every metric in METRICS and every bundled dataset:
the true sampler, every sample far outside the data box, the true samples times 1e30 and
1e300, every sample at one point 1e30 out, and one real point repeated. Every output is NaN
or the value its definition gives (checked against closed forms and extended-precision
references), never a value made by an overflow, an infeasible solver or a division by zero;
and no degenerate set scores better than the true sampler, except where a metric's own
definition rewards it (``REWARDED``, each with its reason)."""

from __future__ import annotations

import functools
import json
import math
import os
import subprocess
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import ot
import pytest
import scipy.special
import scipy.stats
import torch
from helpers import cli
from scipy.spatial.distance import jensenshannon

from modecov.data import DATASETS, USER_DATASETS, Dataset, GaussianMixture, Spiral
from modecov.metrics import (
    DIRECTIONS,
    METRICS,
    mode_counts,
    score_distribution,
    score_samples,
    score_trajectory,
)
from modecov.metrics.distribution import K_NEIGHBOURS, sliced_directions
from modecov.metrics.ndb import ndb_cells

REPO = Path(__file__).resolve().parents[1]
SETS = ("true", "far", "x1e30", "x1e300", "point1e30", "repeat")
FAR = ("far", "x1e30", "x1e300", "point1e30")
"""The sets with every sample far outside the data box."""
SCALED = {"x1e30": 1e30, "x1e300": 1e300}
"""The sets that are the true samples times a factor."""
SNAPSHOTS = 3
BUNDLED_DATASETS = [
    pytest.param(d, id=d.name) for d in DATASETS.values() if d.name not in USER_DATASETS
]

WIDE = np.finfo(np.longdouble).max > 1e700
"""np.longdouble holds the squares of 1e300 (x86 extended or quad precision)."""


@dataclass(frozen=True)
class Rewarded:
    """Outputs whose own definition rewards some degenerate sets, and why."""

    outputs: tuple[str, ...]
    sets: tuple[str, ...]
    reason: str
    datasets: tuple[str, ...] | None = None
    """Only on these datasets; every dataset when None."""


REWARDED = (
    Rewarded(
        outputs=("recall",),
        sets=("x1e30", "x1e300"),
        reason="a fake's k-NN ball grows with the spread of the fakes, so samples spread over "
        "a huge region have balls that hold the whole real set: recall 1 (Kynkäänniemi et al. "
        "2019 note it; coverage, which uses the real balls, does not reward it)",
    ),
    Rewarded(
        outputs=("precision", "density", "hq_fraction"),
        sets=("repeat",),
        reason="one real point repeated lies inside the real manifold and is high quality: "
        "precision and HQ fraction 1, density up to (real balls holding it) / k",
    ),
    Rewarded(
        outputs=("inception_score", "inception_score_norm"),
        sets=("x1e30", "x1e300"),
        reason="IS reads only p(k | x), which far along a direction is one-hot on the mode "
        "furthest that way: samples scaled away from heavy_center score like a sampler spread "
        "evenly over its 8 ring modes (IS 8, the true sampler 1.7); the MODE score, which "
        "compares p(k) with w, does not reward them",
    ),
    Rewarded(
        outputs=("vendi", "vendi_norm", "rke"),
        sets=("x1e30", "x1e300"),
        reason="Vendi and RKE count distinct samples at a bandwidth fixed by the data (the "
        "dataset's kernel_scale or the real set's median distance): samples spread over a "
        "huge region are pairwise kernel-orthogonal, so K = I and VS = RKE = N, their maximum; "
        "they measure diversity, not quality (a set shifted away from the data ties with it)",
    ),
    Rewarded(
        outputs=("kid",),
        sets=("x1e30",),
        reason="KID is an unbiased MMD² estimate, so it can be negative: for samples spread "
        "over a huge region its fake term is scale^6 times an estimate of the squared third "
        "moment, which for a point-symmetric set (ring8, grid25) is 0 in expectation and of "
        "either sign, so KID is hugely negative (torchmetrics' poly_mmd gives the same)",
    ),
    Rewarded(
        outputs=("kid",),
        sets=("repeat",),
        datasets=("gauss1200",),
        reason="KID's cubic kernel compares only moments up to the third of a . b / D, and on "
        "gauss1200 (offsets up to 13 on every coordinate, kernel values up to 5e6) its "
        "estimate from 60 samples has a standard error (~3e4 over seeds of the true sampler, "
        "from -1.2e4 to 9.4e4) above the KID of one real point repeated (1.6e4): this true "
        "draw scores 3.2e4",
    ),
    Rewarded(
        outputs=("hop_tv", "dominant_switches", "modes_lost"),
        sets=("far", "x1e30", "x1e300", "point1e30", "repeat"),
        reason="trajectory metrics measure movement between snapshots, not quality: a "
        "generator stuck on one degenerate set never hops, switches or loses a mode",
    ),
    Rewarded(
        outputs=(*METRICS["modes"].outputs, *METRICS["inception"].outputs),
        sets=("x1e30",),
        datasets=("stacked_digits",),
        reason="HQ and p(k | x) on stacked_digits are the digit classifier's, and a ReLU "
        "network's logits grow with its input: digits scaled by 1e30 get one-hot digit "
        "probabilities, so they are HQ and cover the modes of the digits they scale (at 1e300 "
        "the float32 classifier overflows: NaN posteriors, no HQ sample)",
    ),
)


def rewarded(output: str, name: str, data: Dataset) -> bool:
    return any(
        output in r.outputs and name in r.sets and (r.datasets is None or data.name in r.datasets)
        for r in REWARDED
    )


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@dataclass(frozen=True)
class Case:
    data: Dataset
    real: torch.Tensor
    """(N, D) real samples."""
    sets: dict[str, torch.Tensor]
    """Set name -> (N, D) samples; ``sets["true"]`` also gives the scaled sets' pattern."""
    scores: dict[str, dict[str, float]]
    """Output key -> set name -> value."""


@functools.cache
def case(name: str) -> Case:
    """Every metric on the true sampler and the degenerate sets, the sets as the seeds of one
    call (S = 6); few samples in high dimension, so the file runs in seconds."""
    data = DATASETS[name]
    n = 300 if data.dim <= 2 else 60
    real = data.sample(n, gen(0), dtype=torch.float64)
    true = data.sample(n, gen(1), dtype=torch.float64)
    low, high = data.bounds()
    pool = data.sample(50, gen(2), dtype=torch.float64)  # not in the real set
    point = pool[data.assign(pool)[1]][0]
    sets = {
        "true": true,
        "far": true + 10.0 * (high - low),
        "x1e30": true * 1e30,
        "x1e300": true * 1e300,
        "point1e30": torch.full_like(true, 1e30),
        "repeat": point.expand(n, -1).clone(),
    }
    fake = torch.stack([sets[s] for s in SETS])
    out = score_samples(fake=fake, real=real, data=data)
    out |= score_distribution(fake=fake, real=real, data=data)
    # The true sampler draws afresh at each snapshot; a degenerate generator is stuck.
    counts = mode_counts(fake=fake, data=data).expand(SNAPSHOTS, -1, -1).clone()
    for t in range(SNAPSHOTS):
        draw = data.sample(n, gen(10 + t), dtype=torch.float64)[None]
        counts[t, 0] = mode_counts(fake=draw, data=data)[0]
    out |= score_trajectory(steps=torch.arange(SNAPSHOTS) * 100, counts=counts, data=data)
    scores = {k: dict(zip(SETS, v.tolist())) for k, v in out.items()}
    return Case(data=data, real=real, sets=sets, scores=scores)


def check(got: float, expected: float, what, *, rel: float = 1e-9, abs_: float = 0.0) -> None:
    """``got`` equals ``expected`` (both NaN counts as equal); ``what`` names the value."""
    if math.isnan(expected):
        assert math.isnan(got), (what, got)
    else:
        assert got == pytest.approx(expected, rel=rel, abs=abs_), what


# Every output, every set


@pytest.mark.parametrize("data", BUNDLED_DATASETS)
def test_every_output_is_nan_or_finite(data):
    # No definition gives inf on these sets; an inf could only come from an overflow.
    scores = case(data.name).scores
    assert set(scores) == set(DIRECTIONS)
    for key, by_set in scores.items():
        for name, value in by_set.items():
            assert not math.isinf(value), (key, name, value)


@pytest.mark.parametrize("data", BUNDLED_DATASETS)
def test_no_degenerate_set_beats_the_true_sampler(data):
    scores = case(data.name).scores
    for key, higher in DIRECTIONS.items():
        true = scores[key]["true"]
        if math.isnan(true):
            continue
        slack = 1e-9 * abs(true) + 1e-12  # ties (the same posteriors) are not wins
        for name in SETS[1:]:
            value = scores[key][name]
            better = value > true + slack if higher else value < true - slack
            if better and not rewarded(key, name, data):
                pytest.fail(f"{key} scores {name} {value:.6g}, the true sampler {true:.6g}")


def test_every_rewarded_exception_is_needed():
    # Each stated exception names a case that happens (a degenerate set scoring at least as
    # well as the true sampler), on at least one dataset.
    for r in REWARDED:
        datasets = r.datasets or [p.values[0].name for p in BUNDLED_DATASETS]
        happens = False
        for name in datasets:
            scores = case(name).scores
            for key in r.outputs:
                true = scores[key]["true"]
                for s in r.sets:
                    value = scores[key][s]
                    happens |= value >= true if DIRECTIONS[key] else value <= true
        assert happens, r.reason


# Mode metrics: the formulas on the dataset's own HQ counts


@pytest.mark.parametrize("data", BUNDLED_DATASETS)
def test_mode_metrics_give_their_definition(data):
    c = case(data.name)
    w = data.weights.numpy()
    k = data.n_modes
    for name, x in c.sets.items():
        counts = mode_counts(fake=x[None], data=data)[0].numpy().astype(float)
        n = x.shape[0]
        if name in FAR and isinstance(data, GaussianMixture | Spiral):
            assert counts.sum() == 0, name  # HQ is a distance to the modes here
        n_hq = counts.sum()
        p_tilde = (counts + 0.5) / (n + 0.5 * (k + 1))
        expected = {
            "modes_covered": (counts > 0).sum(),
            "modes_covered_frac": (counts > 0).sum() / k,
            "modes_balanced": (counts >= 0.2 * n * w * (1 - 1e-9)).sum(),
            "hq_fraction": n_hq / n,
            "kl_gen_true": scipy.special.rel_entr(counts / n_hq, w).sum() if n_hq else math.nan,
            "kl_true_gen": float(np.sum(w * np.log(w / p_tilde))),
            "mode_jsd": jensenshannon(counts / n_hq, w) ** 2 if n_hq else math.nan,
        }
        if n_hq == 0:  # log(2N + K + 1) - H(w): worse than any set with an HQ sample
            assert expected["kl_true_gen"] == pytest.approx(
                math.log(2 * n + k + 1) - scipy.stats.entropy(w), rel=1e-12
            )
        for key, value in expected.items():
            check(c.scores[key][name], float(value), (key, name))


# Inception-style scores: exact posteriors far from the data


def limit_modes(data: Dataset, x: np.ndarray, scale: float) -> np.ndarray:
    """(N,) mode of each sample of ``x * scale`` in the limit of a huge ``scale``: the mode
    whose log-odds grow fastest along x (Gaussian mixtures), the segment of the spiral point
    furthest along x (the spiral)."""
    if isinstance(data, GaussianMixture):
        return np.argmax((x / data.std.numpy() ** 2) @ data.centers.numpy().T, 1)
    u = np.linspace(-1.0, 1.0, 400_001)
    curve = data.curve(torch.from_numpy(u)).numpy()
    best = u[np.argmax(x @ curve.T - (curve**2).sum(-1) / (2 * scale), 1)]
    return np.clip(np.floor((best + 1) / 2 * data.n_segments), 0, data.n_segments - 1)


def nearest_modes(data: Dataset, x: np.ndarray) -> np.ndarray:
    """(N,) mode of each sample of ``x`` (moderate values), by brute force."""
    if isinstance(data, GaussianMixture):
        z = (x[:, None, :] - data.centers.numpy()[None]) / data.std.numpy()
        logits = np.log(data.weights.numpy()) - 0.5 * (z**2).sum(-1)
        return np.argmax(logits, 1)
    u = np.linspace(-1.0, 1.0, 400_001)
    curve = data.curve(torch.from_numpy(u)).numpy()
    best = u[np.argmin((x**2).sum(-1)[:, None] - 2 * x @ curve.T + (curve**2).sum(-1), 1)]
    return np.clip(np.floor((best + 1) / 2 * data.n_segments), 0, data.n_segments - 1)


def inception_of_modes(modes: np.ndarray, w: np.ndarray) -> dict[str, float]:
    """IS, normalised IS and MODE score of samples whose p(k | x) are one-hot on ``modes``."""
    marginal = np.bincount(modes.astype(int), minlength=len(w)) / len(modes)
    inception = math.exp(scipy.stats.entropy(marginal))
    return {
        "inception_score": inception,
        "inception_score_norm": inception / math.exp(scipy.stats.entropy(w)),
        "mode_score": inception * math.exp(-scipy.special.rel_entr(marginal, w).sum()),
    }


@pytest.mark.parametrize("data", BUNDLED_DATASETS)
def test_inception_gives_its_definition(data):
    c = case(data.name)
    w = data.weights.numpy()
    if not isinstance(data, GaussianMixture | Spiral):
        # The classifier defines p(k | x); check the formulas on it (NaN where it overflows).
        for name, x in c.sets.items():
            post = data.posterior(x).numpy()
            if not np.isfinite(post).all():
                assert math.isnan(c.scores["inception_score"][name]), name
                continue
            marginal = post.mean(0)
            log_is = scipy.special.rel_entr(post, marginal).sum(-1).mean()
            check(c.scores["inception_score"][name], math.exp(log_is), name)
            ms = math.exp(log_is - scipy.special.rel_entr(marginal, w).sum())
            check(c.scores["mode_score"][name], ms, name)
        return
    for name in ("far", "point1e30", "repeat", *SCALED):
        x = c.sets[name].numpy()
        if name in SCALED:
            modes = limit_modes(data, c.sets["true"].numpy(), SCALED[name])
        elif name == "point1e30":
            modes = limit_modes(data, np.ones_like(x), 1e30)
        else:
            modes = nearest_modes(data, x)
        post = data.posterior(c.sets[name])
        assert torch.equal(post.argmax(-1), torch.from_numpy(modes).long()), name
        if name != "repeat":  # a real point's posterior need not be one-hot
            assert (post.max(-1).values == 1.0).all(), name
            for key, value in inception_of_modes(modes, w).items():
                check(c.scores[key][name], value, (key, name))
    # One point repeated: every p(k | x) is the same, so IS = 1 and MS = exp(-KL(p(x) || w)).
    for name in ("point1e30", "repeat"):
        p = data.posterior(c.sets[name][:1])[0].numpy()
        check(c.scores["inception_score"][name], 1.0, name, rel=1e-12)
        check(c.scores["mode_score"][name], math.exp(-scipy.special.rel_entr(p, w).sum()), name)


# Fréchet distance


def frechet_reference(a: np.ndarray, b: np.ndarray) -> float:
    """|mu_a - mu_b|^2 + tr(C_a + C_b) - 2 sum sqrt(eig(C_a C_b)) in float64, in coordinates
    divided by a power of two above the largest (d scales as its square); NaN beyond range."""
    s = 2.0 ** math.frexp(max(np.abs(a).max(), np.abs(b).max()))[1]
    a, b = a / s, b / s
    c_a, c_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = np.sqrt(np.clip(np.linalg.eigvals(c_a @ c_b).real, 0, None)).sum()
    d = ((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(c_a) + np.trace(c_b) - 2 * root
    with np.errstate(over="ignore"):
        d = max(d, 0.0) * s * s
    return d if math.isfinite(d) else math.nan


@pytest.mark.parametrize("data", BUNDLED_DATASETS)
def test_frechet_gives_its_definition(data):
    c = case(data.name)
    got = c.scores["frechet_distance"]
    feats_r = data.features(c.real).numpy()
    for name, x in c.sets.items():
        feats = data.features(x).numpy()
        if not np.isfinite(feats).all():  # the classifier overflows (float32)
            assert math.isnan(got[name]), name
            continue
        if name in ("point1e30", "repeat"):  # C_f = 0: |mu_r - x|^2 + tr C_r
            mean = ((feats_r.mean(0) - feats[0]).astype(np.longdouble) ** 2).sum()
            expected = float(mean + np.trace(np.cov(feats_r, rowvar=False)))
            check(got[name], expected, name)
        elif feats.shape[1] <= 200:
            check(got[name], frechet_reference(feats_r, feats), name, rel=1e-6)
        elif name == "far":  # a shift by delta: d(true) + |delta|^2 - 2 delta . (mu_r - mu_t)
            delta = feats[0] - c.sets["true"].numpy()[0]
            diff = feats_r.mean(0) - c.sets["true"].numpy().mean(0)
            expected = got["true"] + (delta**2).sum() - 2 * delta @ diff
            check(got[name], expected, name)
    if data.features(c.sets["x1e300"][:2]).abs().max() > 1e200:
        assert math.isnan(got["x1e300"])  # ~1e600, beyond float64: NaN, never inf or 0


# Distribution metrics against extended-precision references


def sqdist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, M) squared distances from coordinate differences in np.longdouble."""
    a, b = a.astype(np.longdouble), b.astype(np.longdouble)
    return np.stack([((row - b) ** 2).sum(-1) for row in a])


def prdc_reference(fake: np.ndarray, real: np.ndarray, k: int) -> dict[str, float]:
    d_fx = sqdist(fake, real)
    r = np.sort(sqdist(real, real), 1)[:, k]
    s = np.sort(sqdist(fake, fake), 1)[:, k]
    inside = d_fx < r[None, :]
    return {
        "precision": inside.any(1).mean(),
        "recall": (d_fx < s[:, None]).any(0).mean(),
        "density": inside.sum() / (k * len(fake)),
        "coverage": inside.any(0).mean(),
    }


def mmd2_reference(fake: np.ndarray, real: np.ndarray) -> float:
    d_xx = sqdist(real, real)
    upper = np.triu_indices(len(real), 1)
    h2 = np.median(np.sqrt(d_xx[upper])) ** 2
    d_ff = sqdist(fake, fake)
    off = ~np.eye(len(fake), dtype=bool)
    fake_term = np.exp(-d_ff[off] / (2 * h2)).mean()
    real_term = np.exp(-d_xx[upper] / (2 * h2)).mean()
    cross = np.exp(-sqdist(fake, real) / (2 * h2)).mean()
    return float(fake_term + real_term - 2 * cross)


@pytest.mark.parametrize("data", BUNDLED_DATASETS)
def test_distribution_metrics_give_their_definition(data):
    c = case(data.name)
    real = c.real.numpy()
    theta = sliced_directions(data.dim).numpy()
    for name, x in c.sets.items():
        if name == "x1e300" and not WIDE:
            continue
        fake = x.numpy()
        for key, value in prdc_reference(fake, real, K_NEIGHBOURS).items():
            check(c.scores[key][name], float(value), (key, name), rel=0, abs_=1e-12)
        check(c.scores["mmd2"][name], mmd2_reference(fake, real), name, rel=0, abs_=1e-6)
    for name, x in c.sets.items():
        fake = x.numpy()
        if name in ("point1e30", "repeat"):  # every coupling is optimal
            diff = fake[0].astype(np.longdouble) - real
            w2 = np.sqrt((diff**2).sum(-1).mean())
            sliced = np.sqrt(((diff @ theta) ** 2).mean())
        elif name in SCALED:  # within W2(real, 0) ~ 1 of scale * W2(true, 0)
            true = c.sets["true"].numpy()
            w2 = SCALED[name] * np.sqrt((true**2).sum(-1).mean())
            sliced = SCALED[name] * np.sqrt(((true @ theta) ** 2).mean())
        else:
            cost = ((fake[:, None, :] - real[None]) ** 2).sum(-1)
            uniform = np.full(len(fake), 1 / len(fake)), np.full(len(real), 1 / len(real))
            w2 = math.sqrt(ot.emd2(*uniform, cost, numItermax=10**8))
            sliced = ot.sliced_wasserstein_distance(fake, real, projections=theta, p=2)
        check(c.scores["w2"][name], float(w2), ("w2", name))
        check(c.scores["sliced_w2"][name], float(sliced), ("sliced_w2", name))
    for name in FAR:
        assert c.scores["w2"][name] > 10 * c.scores["w2"]["true"]  # never 0, never inf


def test_a_seed_spanning_normal_and_huge_values():
    # Divided by ~1e300, its distances near the data would underflow: prdc and mmd2 are NaN
    # for that seed alone; W2 and sliced W2, which only scale, are the definition's ~1e300.
    data = DATASETS["ring8"]
    real = data.sample(200, gen(0), dtype=torch.float64)
    mixed = data.sample(200, gen(1), dtype=torch.float64)
    mixed[:20] *= 1e300
    fake = torch.stack([data.sample(200, gen(2), dtype=torch.float64), mixed])
    out = score_distribution(fake=fake, real=real)
    for key in ("precision", "recall", "density", "coverage", "mmd2"):
        assert math.isfinite(out[key][0]) and math.isnan(out[key][1]), key
    for key in ("w2", "sliced_w2"):
        assert 1e298 < out[key][1] < 1e301, key


# Kernel metrics and NDB against extended-precision references


def bandwidth(data: Dataset, real: np.ndarray) -> float:
    """The dataset's kernel_scale, else the median distance between distinct real samples."""
    if data.kernel_scale is not None:
        return data.kernel_scale
    return float(np.median(np.sqrt(sqdist(real, real)[np.triu_indices(len(real), 1)])))


def vendi_rke_reference(x: np.ndarray, h: float) -> tuple[float, float]:
    """exp(-sum lambda log lambda) and 1 / sum lambda^2 over the eigenvalues of K / N, K from
    np.longdouble distances (a distance beyond the float64 range has kernel 0)."""
    k = np.exp(-sqdist(x, x) / (2 * h * h)).astype(np.float64)
    lam = np.clip(np.linalg.eigvalsh(k / len(k)), 0.0, None)
    return math.exp(-scipy.special.xlogy(lam, lam).sum()), 1.0 / (lam**2).sum()


def kid_reference(fake: np.ndarray, real: np.ndarray) -> float:
    """Unbiased MMD² with (a . b / D + 1)^3 in np.longdouble (1e300 cubed fits); NaN beyond
    the float64 range."""
    f, x = fake.astype(np.longdouble), real.astype(np.longdouble)
    d = f.shape[1]

    def pairs(a, b):
        return (a @ b.T / d + 1) ** 3

    n, m = len(f), len(x)
    kff, kxx = pairs(f, f), pairs(x, x)
    value = (kff.sum() - np.trace(kff)) / (n * (n - 1))
    value += (kxx.sum() - np.trace(kxx)) / (m * (m - 1)) - 2 * pairs(f, x).mean()
    return float(value) if abs(value) <= np.finfo(np.float64).max else math.nan


@pytest.mark.parametrize("data", BUNDLED_DATASETS)
def test_kernel_metrics_give_their_definition(data):
    c = case(data.name)
    real = c.real.numpy()
    h = bandwidth(data, real)
    real_vs, _ = vendi_rke_reference(real, h)
    n = len(real)
    for name, x in c.sets.items():
        if name == "x1e300" and not WIDE:
            continue
        fake = x.numpy()
        if name in SCALED:  # every pair ~1e28 h apart or more: K = I
            vs = rke = float(n)
        elif name in ("point1e30", "repeat"):  # one point: K = ones
            vs = rke = 1.0
        else:
            vs, rke = vendi_rke_reference(fake, h)
        check(c.scores["vendi"][name], vs, ("vendi", name), rel=1e-9)
        check(c.scores["vendi_norm"][name], vs / real_vs, ("vendi_norm", name), rel=1e-9)
        check(c.scores["rke"][name], rke, ("rke", name), rel=1e-9)
        check(c.scores["kid"][name], kid_reference(fake, real), ("kid", name), rel=1e-9)
    assert c.scores["vendi"]["far"] == pytest.approx(c.scores["vendi"]["true"], rel=1e-12)
    assert math.isnan(c.scores["kid"]["x1e300"])  # ~1e1800: beyond float64, never inf


def ndb_reference(fake: np.ndarray, centres: np.ndarray, shares: np.ndarray, n_real: int):
    """(ndb, ndb_jsd) of one fake set against the cells: nearest centre by np.longdouble
    distances (far from every centre, by |c|^2 - 2 x . c, where |x - c|^2 loses c to
    rounding), the pooled two-proportion z-test at 0.05 and JS divergence in nats."""
    c, x = centres.astype(np.longdouble), fake.astype(np.longdouble)
    if np.abs(x).max() > 1e6 * np.abs(c).max():
        score = (c**2).sum(-1) - 2 * x @ c.T
    else:
        score = sqdist(x, c)
    p2 = np.bincount(np.argmin(score, 1), minlength=len(c)) / len(x)
    p1, n2 = shares, len(x)
    pooled = (p1 * n_real + p2 * n2) / (n_real + n2)
    with np.errstate(invalid="ignore"):
        z = (p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1 / n_real + 1 / n2))
    different = np.abs(z) > scipy.stats.norm.ppf(1 - 0.05 / 2)  # NaN (0 / 0) is not
    return float(different.sum()), float(jensenshannon(p1, p2) ** 2)


@pytest.mark.parametrize("data", BUNDLED_DATASETS)
def test_ndb_gives_its_definition(data):
    c = case(data.name)
    cells = ndb_cells(c.real)
    if len(np.unique(c.real.numpy(), axis=0)) < 100:  # 60 samples in high dimension
        assert cells is None
        for name in SETS:
            assert math.isnan(c.scores["ndb"][name]) and math.isnan(c.scores["ndb_jsd"][name])
        return
    centres, shares = (t.numpy() for t in cells)
    for name, x in c.sets.items():
        if name == "x1e300" and not WIDE:
            continue
        ndb, jsd = ndb_reference(x.numpy(), centres, shares, len(c.real))
        check(c.scores["ndb"][name], ndb, ("ndb", name), rel=0)
        check(c.scores["ndb_jsd"][name], jsd, ("ndb_jsd", name), rel=1e-12, abs_=1e-15)


# Trajectory metrics of a generator stuck on one set


@pytest.mark.parametrize("data", BUNDLED_DATASETS)
def test_trajectory_metrics_give_their_definition(data):
    c = case(data.name)
    for name in SETS[1:]:
        counts = mode_counts(fake=c.sets[name][None], data=data)[0]
        any_hq, all_modes = bool(counts.sum() > 0), bool((counts > 0).all())
        check(c.scores["hop_tv"][name], 0.0 if any_hq else math.nan, name)
        check(c.scores["dominant_switches"][name], 0.0, name)
        check(c.scores["modes_lost"][name], 0.0, name)
        check(c.scores["steps_to_all_modes"][name], 0.0 if all_modes else math.nan, name)


# The command line


@pytest.fixture()
def huge_and_good(tmp_path) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    huge, good = tmp_path / "huge.npy", tmp_path / "good.npy"
    np.save(huge, rng.uniform(-1.0, 1.0, size=(400, 2)) * 1e300)
    data = DATASETS["ring8"]
    np.save(good, data.sample(500, gen(3), dtype=torch.float64).numpy())
    return huge, good


@pytest.mark.parametrize("extra", [[], ["--dataset", "ring8"]], ids=["real", "real-dataset"])
def test_score_of_huge_samples(capsys, huge_and_good, extra):
    huge, good = huge_and_good
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rc, out, err = cli(capsys, "score", huge, "--real", good, "--json", *extra)
    assert rc == 0 and "Traceback" not in err, err
    assert not [w for w in caught if issubclass(w.category, UserWarning | RuntimeWarning)]
    got = {k: v[0] for k, v in json.loads(out).items()}
    fake = np.load(huge)
    # W2 and sliced W2 are ~1e300 (POT used to report an infeasible problem and w2 = 0).
    expected = 1e300 * math.sqrt(((fake / 1e300) ** 2).sum(-1).mean())  # within W2(real, 0)
    assert got["w2"] == pytest.approx(expected, rel=1e-9)
    assert 1e299 < got["sliced_w2"] < 1e301
    assert got["frechet_distance"] is None  # ~1e600: beyond float64, NaN (null)
    assert got["mmd2"] is not None and got["mmd2"] > 0.1  # every kernel to a fake is 0
    assert got["precision"] == 0.0 and got["coverage"] == 0.0
    if extra:
        assert got["modes_covered"] == 0.0 and got["hq_fraction"] == 0.0
        assert got["kl_true_gen"] == pytest.approx(math.log(2 * 400 + 9) - math.log(8))


def test_score_of_samples_at_the_top_of_the_float64_range(capsys, tmp_path, huge_and_good):
    # Sizes from 2^1023 up to the float64 maximum: the scale is the power of two below them
    # (the one above overflows); W2 is still the definition's value, ~1.7e308.
    _, good = huge_and_good
    top = tmp_path / "top.npy"
    corners = np.array([[1.0, 1.0], [-1.0, 1.0], [1.0, -1.0], [-1.0, -1.0]])
    np.save(top, np.repeat(corners, 100, axis=0) * 1.7e308 / math.sqrt(2))
    rc, out, err = cli(capsys, "score", top, "--real", good, "--json", "--dataset", "ring8")
    assert rc == 0 and "Traceback" not in err, err
    got = {k: v[0] for k, v in json.loads(out).items()}
    assert got["w2"] == pytest.approx(1.7e308, rel=1e-9)
    assert got["frechet_distance"] is None and got["precision"] == 0.0


def test_score_of_huge_samples_in_a_real_process(huge_and_good):
    huge, good = huge_and_good
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run(
        [sys.executable, "-m", "modecov.cli", "score", str(huge), "--real", str(good),
         "--dataset", "ring8"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no traceback, no "Problem infeasible" from POT
    lines = {line.split()[0]: line.split()[-1] for line in done.stdout.splitlines()}
    assert float(lines["w2"]) > 1e299 and lines["frechet_distance"] == "nan"
