"""Tests for modecov.metrics: the registry, sanity anchors on every dataset, known answers on
hand-built inputs, independent references (scipy, numpy) and invariances."""

from __future__ import annotations

import functools
import inspect
import math
import re

import numpy as np
import pytest
import scipy.linalg
import scipy.special
import torch
from scipy.spatial.distance import jensenshannon
from scipy.stats import entropy

import modecov.data.base
from modecov.data import DATASETS, Dataset, GaussianMixture
from modecov.errors import ConfigError
from modecov.metrics import (
    DIRECTIONS,
    KINDS,
    METRICS,
    MetricSpec,
    mode_counts,
    score_samples,
    score_trajectory,
)
from modecov.metrics.frechet import frechet
from modecov.metrics.inception import inception

SNAKE = re.compile(r"[a-z][a-z0-9]*(_[a-z0-9]+)*")
ARGS = {
    "samples": {"fake", "real", "data"},
    "distribution": {"fake", "real", "data"},
    "trajectory": {"steps", "counts", "data"},
}
MODE_METRICS = ("modes", "inception")
ALL_DATASETS = [pytest.param(d, id=d.name) for d in DATASETS.values()]
FLAT_DATASETS = [pytest.param(d, id=d.name) for d in DATASETS.values() if d.dim == 2]


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def n_anchor(data: Dataset) -> int:
    """Samples per seed for the anchors: fewer in 1200-D, where 2,000 still pin HQ to ±0.005;
    25 per mode on stacked_digits' 1000 modes, so that the true sampler covers them all."""
    if data.n_modes > 100:
        return 25 * data.n_modes
    return 10_000 if data.dim <= 2 else 2_000


def on_centres(data: Dataset, counts, n_off: int = 0) -> torch.Tensor:
    """(N, D) samples exactly on the centres, counts[k] on mode k, plus n_off non-HQ ones."""
    rows = [data.centers[k].expand(int(c), -1) for k, c in enumerate(counts)]
    # A point far from every centre is nearest some mode but never high quality.
    far = torch.full((n_off, data.dim), 1.0e3, dtype=torch.float64)
    return torch.cat([*rows, far])


def as_np(scores: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    return {k: v.numpy() for k, v in scores.items()}


def assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    """Equal up to float64 summation order."""
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-12, atol=1e-12, equal_nan=True, msg=key)


# Registry


def test_registry_keys_are_names():
    for key, spec in METRICS.items():
        assert key == spec.name
        assert SNAKE.fullmatch(key), key
        assert spec.label and spec.reference
        assert spec.kind in KINDS


def test_output_keys_unique_and_directed():
    keys = [key for spec in METRICS.values() for key in spec.outputs]
    assert len(keys) == len(set(keys))
    assert set(DIRECTIONS) == set(keys)
    for spec in METRICS.values():
        for key, higher in spec.outputs.items():
            assert SNAKE.fullmatch(key), key
            assert isinstance(higher, bool)
            assert DIRECTIONS[key] is higher


@pytest.mark.parametrize("spec", [pytest.param(s, id=s.name) for s in METRICS.values()])
def test_signature_is_keyword_only(spec):
    params = inspect.signature(spec.fn).parameters.values()
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params)
    assert {p.name for p in params} == ARGS[spec.kind]
    assert spec.fn.__doc__ and "Args:" in spec.fn.__doc__ and "Returns:" in spec.fn.__doc__


@pytest.mark.parametrize("spec", [pytest.param(s, id=s.name) for s in METRICS.values()])
def test_every_metric_returns_its_outputs(spec):
    data = DATASETS["ring8"]
    if spec.kind in ("samples", "distribution"):
        fake = torch.stack([data.sample(64, gen(s)) for s in range(3)])
        out = spec.fn(fake=fake, real=data.sample(50, gen(9)), data=data)
    else:
        counts = torch.randint(0, 4, (5, 3, data.n_modes), generator=gen(0))
        out = spec.fn(steps=torch.arange(5) * 100, counts=counts, data=data)
    assert set(out) == set(spec.outputs)
    for value in out.values():
        assert value.shape == (3,) and value.dtype == torch.float64


def test_spec_rejects_bad_entries():
    good = dict(name="x", label="X", reference="r", fn=lambda: {}, outputs={"x": True})
    with pytest.raises(ValueError, match="snake_case"):
        MetricSpec(**{**good, "name": "Bad-Name"}, kind="samples")
    with pytest.raises(ValueError, match="kind"):
        MetricSpec(**good, kind="image")
    with pytest.raises(ValueError, match="direction"):
        MetricSpec(**{**good, "outputs": {"x": 1}}, kind="samples")


def test_score_helpers_select_by_kind():
    data = DATASETS["ring8"]
    fake = data.sample(100, gen(0))[None]
    out = score_samples(fake=fake, real=fake[0], data=data)
    samples = [s for s in METRICS.values() if s.kind == "samples"]
    assert set(out) == {key for s in samples for key in s.outputs}
    assert set(score_samples(fake=fake, real=fake[0], data=data, names=["modes"])) == set(
        METRICS["modes"].outputs
    )
    with pytest.raises(ConfigError, match="did you mean 'modes'"):
        score_samples(fake=fake, real=fake[0], data=data, names=["mode"])
    with pytest.raises(ConfigError):
        score_samples(fake=fake, real=fake[0], data=data, names=["hop_tv"])
    with pytest.raises(ConfigError):
        score_trajectory(
            steps=torch.zeros(1), counts=torch.zeros(1, 1, 8), data=data, names=["modes"]
        )


def test_score_samples_without_a_dataset_runs_the_raw_coordinate_metrics_alone():
    real = torch.randn(200, 3, generator=gen(0), dtype=torch.float64)
    fake = torch.randn(2, 150, 3, generator=gen(1), dtype=torch.float64) + 1.0
    out = score_samples(fake=fake, real=real, data=None)
    raw = [m for m in METRICS.values() if m.kind == "samples" and not m.needs_dataset]
    assert {m.name for m in raw} == {"frechet", "kid", "vendi", "rke", "ndb"}
    assert list(out) == [k for m in raw for k in m.outputs]
    assert_same({"frechet_distance": out["frechet_distance"]},
                frechet(fake=fake, real=real, data=None))  # fmt: skip
    with pytest.raises(ConfigError, match="'modes' needs a dataset"):
        score_samples(fake=fake, real=real, data=None, names=["frechet", "modes"])


def test_bad_shapes_raise():
    data = DATASETS["ring8"]
    with pytest.raises(ValueError, match="D = 2"):
        mode_counts(fake=torch.zeros(1, 5, 3), data=data)
    with pytest.raises(ValueError, match=r"\(S, N, D\)"):
        score_samples(fake=torch.zeros(5, 2), real=torch.zeros(5, 2), data=data)
    with pytest.raises(ValueError, match="K = 8"):
        score_trajectory(steps=torch.zeros(2), counts=torch.zeros(2, 1, 5), data=data)
    with pytest.raises(ValueError, match="steps"):
        score_trajectory(steps=torch.zeros(3), counts=torch.zeros(2, 1, 8), data=data)


# Sanity anchors on every dataset


@pytest.mark.parametrize("data", ALL_DATASETS)
def test_true_sampler(data):
    n = n_anchor(data)
    fake = torch.stack([data.sample(n, gen(seed)) for seed in range(2)])
    out = score_samples(fake=fake, real=fake[0], data=data, names=MODE_METRICS)
    assert (out["modes_covered"] == data.n_modes).all()
    assert (out["modes_covered_frac"] == 1.0).all()
    assert (out["hq_fraction"] - data.expected_hq).abs().max() < 0.01
    # The plug-in KL(p̂ || w) is biased up by about (K - 1) / 2n (0.02 on 1000 modes).
    assert (out["kl_gen_true"] < 0.01 + (data.n_modes - 1) / (2 * n)).all()
    # stacked_digits: 0.9509 and 0.9527 with the shipped classifier (measured): 25,000 samples
    # over 1,000 modes bias the plug-in marginal's entropy low by (K - 1) / 2n = 0.02 nats, and
    # the classifier's posteriors are not one-hot (E_x H(p(k | x)) = 0.03 nats).
    bar = 0.94 if data.name == "stacked_digits" else 0.97
    assert (out["inception_score_norm"] > bar).all()


@functools.cache
def _one_mode(name: str) -> tuple[int, dict[str, torch.Tensor]]:
    """Scores of a sampler on the heaviest mode alone, shared by the two tests below."""
    data = DATASETS[name]
    k = int(data.weights.argmax())
    fake = torch.stack([data.sample_mode(k, n_anchor(data), gen(seed)) for seed in range(2)])
    return k, score_samples(fake=fake, real=fake[0], data=data, names=MODE_METRICS)


@pytest.mark.parametrize("data", ALL_DATASETS)
def test_one_mode_sampler_covers_one_mode(data):
    k, out = _one_mode(data.name)
    assert (out["modes_covered"] == 1).all()
    torch.testing.assert_close(
        out["kl_gen_true"], -data.weights[k].log().expand(2), rtol=0.0, atol=1e-9
    )


@pytest.mark.parametrize("data", ALL_DATASETS)
def test_one_mode_sampler_inception(data):
    _, out = _one_mode(data.name)
    expected = 1.0 / torch.special.entr(data.weights).sum().exp()
    # stacked_digits: +2.8% and +2.7% with the shipped classifier (measured): its posteriors
    # are not one-hot, so samples of one mode still spread a little mass over its neighbours.
    torch.testing.assert_close(out["inception_score_norm"], expected.expand(2), rtol=0.05, atol=0)


@pytest.mark.parametrize("data", FLAT_DATASETS)
def test_uniform_noise_is_low_quality(data):
    low, high = data.bounds()
    fake = low + (high - low) * torch.rand(1, 4000, 2, generator=gen(0), dtype=torch.float64)
    out = score_samples(fake=fake, real=fake[0], data=data, names=["modes"])
    assert out["hq_fraction"].item() < 0.2


def test_scenarios_move_every_metric_the_right_way():
    data = DATASETS["ring8_imbalanced"]
    real = data.sample(3000, gen(9))
    true = data.sample(3000, gen(0))[None]
    collapsed = data.sample_mode(0, 3000, gen(1))[None]
    good = score_samples(fake=true, real=real, data=data)
    bad = score_samples(fake=collapsed, real=real, data=data)
    for key, higher in DIRECTIONS.items():
        if key not in good or key == "hq_fraction":  # both samplers are equally sharp
            continue
        better = good[key] > bad[key] if higher else good[key] < bad[key]
        assert better.all(), key


# Known answers on hand-built inputs


def test_three_of_eight_centres():
    data = DATASETS["ring8"]
    fake = on_centres(data, [4, 0, 4, 0, 0, 4, 0, 0], n_off=1)[None]
    assert mode_counts(fake=fake, data=data).tolist() == [[4, 0, 4, 0, 0, 4, 0, 0]]
    out = {k: v.item() for k, v in score_samples(fake=fake, real=fake[0], data=data).items()}
    assert out["modes_covered"] == 3
    assert out["modes_covered_frac"] == 3 / 8
    assert out["modes_balanced"] == 3  # 4 >= 0.2 * 13 / 8
    assert out["hq_fraction"] == pytest.approx(12 / 13, rel=1e-15)
    assert out["kl_gen_true"] == pytest.approx(math.log(8 / 3), rel=1e-12)
    # 13 samples over 8 modes and the off-mode bin: p~ = 4.5/17.5 on the three covered modes,
    # 0.5/17.5 on the five others (and 1.5/17.5 off-mode, where w has no mass).
    kl_true_gen = (3 * math.log(17.5 / 36) + 5 * math.log(17.5 / 4)) / 8
    assert out["kl_true_gen"] == pytest.approx(kl_true_gen, rel=1e-12)
    # Mixture m = 11/48 on the covered modes, 1/16 elsewhere.
    jsd = 0.5 * (math.log(16 / 11) + 3 / 8 * math.log(6 / 11) + 5 / 8 * math.log(2))
    assert out["mode_jsd"] == pytest.approx(jsd, rel=1e-12)
    # IS counts every sample; without the far one, p(k) is uniform over the three modes and
    # every p(k | x) one-hot.
    scores = inception(fake=fake[:, :12], real=fake[0], data=data)
    assert scores["inception_score"].item() == pytest.approx(3.0, rel=1e-9)
    assert scores["inception_score_norm"].item() == pytest.approx(3 / 8, rel=1e-9)


def test_modes_balanced_threshold_is_inclusive():
    data = DATASETS["ring8_imbalanced"]  # w = (8 - k) / 36; N = 360 expects 80, 70, ..., 10
    at_threshold = [16, 14, 12, 10, 8, 6, 4, 2]
    below = [15, 14, 12, 10, 8, 6, 4, 1]
    fake = torch.stack([on_centres(data, c, n_off=360 - sum(c)) for c in (at_threshold, below)])
    out = score_samples(fake=fake, real=fake[0], data=data, names=["modes"])
    assert out["modes_balanced"].tolist() == [8.0, 6.0]
    assert out["modes_covered"].tolist() == [8.0, 8.0]


def test_no_hq_sample():
    data = DATASETS["ring8_imbalanced"]
    fake = on_centres(data, [0] * 8, n_off=10)[None]
    out = score_samples(fake=fake, real=fake[0], data=data, names=["modes"])
    assert out["modes_covered"].item() == 0 and out["modes_balanced"].item() == 0
    assert out["hq_fraction"].item() == 0
    assert math.isnan(out["kl_gen_true"].item()) and math.isnan(out["mode_jsd"].item())
    # p~_k = 0.5 / (10 + 0.5 * 9) on every mode: KL(w || p~) = log(2N + K + 1) - H(w).
    w = data.weights.numpy()
    assert out["kl_true_gen"].item() == pytest.approx(math.log(29) - entropy(w), rel=1e-12)


def test_kl_true_gen_hand_case():
    # ring8_imbalanced, w = (8, ..., 1) / 36; N = 20: 6 on mode 0, 2 on mode 3, 12 off-mode.
    data = DATASETS["ring8_imbalanced"]
    fake = on_centres(data, [6, 0, 0, 2, 0, 0, 0, 0], n_off=12)[None]
    out = score_samples(fake=fake, real=fake[0], data=data, names=["modes"])
    w = np.arange(8, 0, -1) / 36
    p_tilde = np.array([6.5, 0.5, 0.5, 2.5, 0.5, 0.5, 0.5, 0.5]) / (20 + 0.5 * 9)
    expected = float(np.sum(w * np.log(w / p_tilde)))
    assert out["kl_true_gen"].item() == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("data", ALL_DATASETS)
def test_kl_true_gen_no_hq_is_worse_than_one_mode(data):
    # The old smoothing over HQ samples alone gave a set with no HQ sample p~ = 1/K, so
    # log K - H(w): 0, the best value, on balanced data. Now it is log(2N + K + 1) - H(w).
    n = 200
    k = int(data.weights.argmax())
    low, high = data.bounds()
    far = torch.full((1, n, data.dim), 10 * (high - low) + high, dtype=torch.float64)
    one_mode = data.sample_mode(k, n, gen(0), dtype=torch.float64)[None]
    true = data.sample(n, gen(1), dtype=torch.float64)[None]
    score = {
        name: score_samples(fake=x, real=true[0], data=data, names=["modes"])
        for name, x in (("far", far), ("one_mode", one_mode), ("true", true))
    }
    assert score["far"]["hq_fraction"].item() == 0
    entropy_w = float(torch.special.entr(data.weights).sum())
    expected = math.log(2 * n + data.n_modes + 1) - entropy_w
    assert score["far"]["kl_true_gen"].item() == pytest.approx(expected, rel=1e-12)
    assert score["far"]["kl_true_gen"] > score["one_mode"]["kl_true_gen"]
    assert score["far"]["kl_true_gen"] > score["true"]["kl_true_gen"]


# References


def test_mode_divergences_match_scipy():
    data = DATASETS["ring8_imbalanced"]
    rng = np.random.default_rng(0)
    counts = rng.integers(0, 30, size=(4, 8))
    counts[1, [0, 3, 7]] = 0
    counts[2, :] = 0
    counts[2, 5] = 17
    n = int(counts.sum(1).max()) + 5
    fake = torch.stack([on_centres(data, c, n_off=n - c.sum()) for c in counts])
    out = as_np(score_samples(fake=fake, real=fake[0], data=data, names=["modes"]))
    w = data.weights.numpy()
    for s, c in enumerate(counts):
        p_hat = c / c.sum()
        p_tilde = (c + 0.5) / (n + 0.5 * 9)  # the off-mode bin takes the rest
        assert out["kl_gen_true"][s] == pytest.approx(entropy(p_hat, w), rel=1e-12)
        kl_true_gen = scipy.special.rel_entr(w, p_tilde).sum()
        assert out["kl_true_gen"][s] == pytest.approx(kl_true_gen, rel=1e-12)
        assert out["mode_jsd"][s] == pytest.approx(jensenshannon(p_hat, w) ** 2, rel=1e-9)
        assert out["modes_covered"][s] == (c > 0).sum()
        assert out["hq_fraction"][s] == pytest.approx(c.sum() / n, rel=1e-15)


def soft_mixture() -> GaussianMixture:
    """Four overlapping 3-D Gaussians, so every p(k | x) is far from one-hot."""
    return GaussianMixture(
        name="soft", label="Soft", reference="test",
        centers=torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 1.5, 0], [0, 0, 2]]),
        weights=torch.tensor([0.4, 0.3, 0.2, 0.1], dtype=torch.float64),
        std=torch.tensor([1.0]),
    )  # fmt: skip


def test_inception_matches_numpy():
    data = soft_mixture()
    fake = torch.randn(3, 500, 3, generator=gen(0), dtype=torch.float64) * 1.5
    out = as_np(inception(fake=fake, real=fake[0], data=data))
    x, c, w = fake.numpy(), data.centers.numpy(), data.weights.numpy()
    d2 = ((x[:, :, None, :] - c) ** 2).sum(-1)
    post = scipy.special.softmax(np.log(w) - 0.5 * d2, axis=-1)
    for s in range(3):
        p = post[s]
        marginal = p.mean(0)
        log_is = np.mean([entropy(row, marginal) for row in p])
        log_ms = log_is - entropy(marginal, w)
        assert out["inception_score"][s] == pytest.approx(np.exp(log_is), rel=1e-10)
        assert out["inception_score_norm"][s] == pytest.approx(
            np.exp(log_is - entropy(w)), rel=1e-10
        )
        assert out["mode_score"][s] == pytest.approx(np.exp(log_ms), rel=1e-10)


def test_mode_score_hand_case():
    # Samples on the centres of ring8_imbalanced (w = (8, ..., 1) / 36) in equal numbers:
    # every p(k | x) is one-hot, so IS = 8, and p(k) = 1/8: MS = 8 exp(-KL(1/8 || w)).
    data = DATASETS["ring8_imbalanced"]
    fake = on_centres(data, [5] * 8)[None]
    out = inception(fake=fake, real=fake[0], data=data)
    w = np.arange(8, 0, -1) / 36
    expected = 8 * np.exp(-np.sum(np.log((1 / 8) / w)) / 8)
    assert out["inception_score"].item() == pytest.approx(8.0, rel=1e-9)
    assert out["mode_score"].item() == pytest.approx(expected, rel=1e-9)
    assert out["mode_score"].item() < 7.0  # the old definition equalled IS: 8


def test_mode_score_one_mode_of_ring8_imbalanced():
    _, out = _one_mode("ring8_imbalanced")
    torch.testing.assert_close(out["inception_score"], torch.ones(2, dtype=torch.float64))
    # p(k) is one-hot on mode 0: MS = w_0 = 8/36 = 0.22, where IS = 1.
    torch.testing.assert_close(
        out["mode_score"], torch.full((2,), 8 / 36, dtype=torch.float64), rtol=1e-6, atol=0
    )


@pytest.mark.parametrize("name", ["ring8", "grid25", "spiral"])
def test_mode_score_of_the_true_sampler_of_balanced_data_is_about_is(name):
    data = DATASETS[name]
    fake = torch.stack([data.sample(n_anchor(data), gen(seed)) for seed in range(2)])
    out = inception(fake=fake, real=fake[0], data=data)
    torch.testing.assert_close(out["mode_score"], out["inception_score"], rtol=0.01, atol=0)


def scipy_frechet(a: np.ndarray, b: np.ndarray) -> float:
    c1, c2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(c1 @ c2).real
    mean = ((a.mean(0) - b.mean(0)) ** 2).sum()
    return float(mean + np.trace(c1) + np.trace(c2) - 2 * np.trace(root))


def test_frechet_matches_scipy():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(300, 5)) @ rng.normal(size=(5, 5))
    fake = rng.normal(size=(2, 200, 5)) @ rng.normal(size=(5, 5)) + rng.normal(size=5)
    out = frechet(fake=torch.from_numpy(fake), real=torch.from_numpy(real), data=None)
    expected = [scipy_frechet(real, f) for f in fake]
    np.testing.assert_allclose(out["frechet_distance"].numpy(), expected, rtol=1e-6)


def test_frechet_known_answers():
    real = torch.randn(400, 4, generator=gen(0), dtype=torch.float64)
    shift = torch.tensor([1.0, -2.0, 0.5, 0.0], dtype=torch.float64)
    fake = torch.stack([real, real + shift])
    out = frechet(fake=fake, real=real, data=None)["frechet_distance"]
    assert out[0].item() == pytest.approx(0.0, abs=1e-10)
    assert out[1].item() == pytest.approx(5.25, rel=1e-9)


def test_frechet_non_finite_seed_is_nan():
    real = torch.randn(50, 3, generator=gen(0), dtype=torch.float64)
    fake = torch.stack([real, real.clone()])
    fake[1, 7, 2] = math.nan
    out = frechet(fake=fake, real=real, data=None)["frechet_distance"]
    assert out[0].item() == pytest.approx(0.0, abs=1e-10) and math.isnan(out[1].item())
    with pytest.raises(ValueError, match="NaN"):
        frechet(fake=fake[:1], real=fake[1], data=None)


def test_frechet_singular_covariances():
    # Fewer samples than dimensions: reference via the (non-symmetric) spectrum of C1 C2.
    rng = np.random.default_rng(1)
    real, fake = rng.normal(size=(40, 60)), rng.normal(size=(50, 60)) * 1.3 + 0.2
    c1, c2 = np.cov(real, rowvar=False), np.cov(fake, rowvar=False)
    root = np.sqrt(np.clip(np.linalg.eigvals(c1 @ c2).real, 0, None)).sum()
    mean = ((real.mean(0) - fake.mean(0)) ** 2).sum()
    expected = mean + np.trace(c1) + np.trace(c2) - 2 * root
    out = frechet(fake=torch.from_numpy(fake)[None], real=torch.from_numpy(real), data=None)
    assert out["frechet_distance"].item() == pytest.approx(expected, rel=1e-6)


def test_frechet_in_1200_dims():
    data = DATASETS["gauss1200"]
    a, b = data.sample(1000, gen(0)), data.sample(1000, gen(1))  # N < D: singular
    collapsed = data.sample_mode(0, 1000, gen(2))
    ab, far = frechet(fake=torch.stack([b, collapsed]), real=a, data=data)["frechet_distance"]
    ba = frechet(fake=a[None], real=b, data=data)["frechet_distance"]
    assert math.isfinite(ab) and ab > 0
    assert ab.item() == pytest.approx(ba.item(), rel=1e-5)  # see test_sample_order_...
    assert far > 2 * ab


# Invariances


@pytest.mark.parametrize(
    "data", [pytest.param(DATASETS[k], id=k) for k in ("ring8_imbalanced", "spiral", "gauss1200")]
)
def test_sample_order_and_chunk_size_do_not_matter(data, monkeypatch):
    low, high = data.bounds()
    true = torch.stack([data.sample(400, gen(s)) for s in range(2)])
    noise = low + (high - low) * torch.rand(2, 100, data.dim, generator=gen(5))
    fake = torch.cat([true, noise], 1)
    real = data.sample(300, gen(7))
    # Every samples metric in 2-D; in 1200-D the Fréchet distance's order dependence is
    # ~1e-5 by construction (see its docstring and test_frechet_in_1200_dims).
    names = None if data.dim <= 2 else MODE_METRICS
    base = score_samples(fake=fake, real=real, data=data, names=names)

    perm = torch.stack([torch.randperm(500, generator=gen(10 + s)) for s in range(2)])
    shuffled = torch.take_along_dim(fake, perm[..., None], 1)
    real_shuffled = real[torch.randperm(300, generator=gen(20))]
    assert_same(base, score_samples(fake=shuffled, real=real_shuffled, data=data, names=names))
    assert torch.equal(mode_counts(fake=fake, data=data), mode_counts(fake=shuffled, data=data))

    monkeypatch.setattr(modecov.data.base, "CHUNK", 7)
    chunked = score_samples(fake=fake, real=real, data=data, names=MODE_METRICS)
    assert_same({k: base[k] for k in chunked}, chunked)


# Training dynamics


def three_modes() -> GaussianMixture:
    return GaussianMixture(
        name="three", label="Three", reference="test", centers=10.0 * torch.eye(3),
        weights=torch.ones(3), std=torch.tensor([1.0]),
    )  # fmt: skip


def test_dynamics_known_answers():
    steps = torch.tensor([0, 100, 200, 300, 400])
    hopper = [[10, 0, 0], [0, 10, 0], [0, 0, 0], [0, 2, 8], [4, 6, 0]]
    empty = [[0, 0, 0]] * 5
    stable = [[5, 5, 5]] * 5
    filler = [[1, 0, 0], [1, 1, 0], [1, 1, 1], [3, 0, 0], [1, 1, 1]]
    counts = torch.tensor([hopper, empty, stable, filler]).transpose(0, 1)
    out = as_np(score_trajectory(steps=steps, counts=counts, data=three_modes()))
    # hopper: pairs (0,1) and (3,4) only, TV 1 and 0.8; dominant modes 0, 1, 2, 1 over the
    # snapshots with HQ samples; mode 2 covered at step 300, lost at 400.
    # filler: TV 1/2, 1/3, 2/3, 2/3; all modes first covered at step 200.
    np.testing.assert_allclose(out["hop_tv"], [0.9, np.nan, 0.0, 13 / 24], rtol=1e-12)
    np.testing.assert_array_equal(out["dominant_switches"], [3, 0, 0, 0])
    np.testing.assert_array_equal(out["modes_lost"], [1, 0, 0, 0])
    np.testing.assert_array_equal(out["steps_to_all_modes"], [np.nan, np.nan, 0, 200])
    for value in out.values():
        assert value.dtype == np.float64 and value.shape == (4,)


def test_dynamics_single_snapshot():
    counts = torch.tensor([[[2, 0, 1]]])
    out = as_np(score_trajectory(steps=torch.tensor([50]), counts=counts, data=three_modes()))
    assert np.isnan(out["hop_tv"][0]) and np.isnan(out["steps_to_all_modes"][0])
    assert out["dominant_switches"][0] == 0 and out["modes_lost"][0] == 0


def test_dynamics_from_mode_counts():
    data = DATASETS["ring8"]
    snapshots = [
        data.sample_mode(0, 200, gen(0))[None],
        data.sample_mode(3, 200, gen(1))[None],
        data.sample(400, gen(2))[None],
    ]
    counts = torch.stack([mode_counts(fake=x, data=data) for x in snapshots])
    out = score_trajectory(steps=torch.tensor([10, 20, 30]), counts=counts, data=data)
    assert out["dominant_switches"].item() >= 1
    assert out["modes_lost"].item() == 0
    assert out["steps_to_all_modes"].item() == 30
    last = counts[2, 0].double() / counts[2, 0].sum()
    # TV between two one-mode histograms is 1; from mode 3 alone to h it is 1 - h[3].
    assert out["hop_tv"].item() == pytest.approx((1.0 + 1.0 - last[3].item()) / 2, rel=1e-12)
