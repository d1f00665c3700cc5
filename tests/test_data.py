"""Tests for modecov.data: the DATASETS registry, each dataset's parameters, sampling with
an explicit generator, and the one definition of modes and high quality (assign)."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch

from modecov.data import DATASETS, HQ_MASS, GaussianMixture, Spiral
from modecov.data.mixtures import geometric_weights

SNAKE = re.compile(r"[a-z][a-z0-9]*(_[a-z0-9]+)*")
MIXTURES_2D = [k for k, d in DATASETS.items() if isinstance(d, GaussianMixture) and d.dim == 2]


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("key", list(DATASETS))
def test_registry_entry(key):
    data = DATASETS[key]
    assert key == data.name
    assert SNAKE.fullmatch(key), f"{key!r} is not snake_case"
    assert data.label and data.reference
    K = data.n_modes
    assert data.centers.shape == (K, data.dim)
    assert data.weights.shape == (K,)
    assert data.centers.dtype == data.weights.dtype == torch.float64


@pytest.mark.parametrize("key", list(DATASETS))
def test_weights_are_a_distribution(key):
    w = DATASETS[key].weights
    assert (w > 0).all()
    assert float(w.sum()) == pytest.approx(1.0, abs=1e-12)


def test_ring8_centres_equally_spaced_at_radius_2():
    c = DATASETS["ring8"].centers
    k = torch.arange(8, dtype=torch.float64)
    angles = 2 * math.pi * k / 8  # not linspace(0, 2*pi, 8), whose last centre repeats the first
    expected = 2.0 * torch.stack((angles.cos(), angles.sin()), -1)
    torch.testing.assert_close(c, expected, rtol=0, atol=1e-12)
    torch.testing.assert_close(c.norm(dim=1), torch.full((8,), 2.0, dtype=torch.float64))
    gaps = (c - c.roll(-1, 0)).norm(dim=1)  # neighbours, including centre 7 -> centre 0
    torch.testing.assert_close(gaps, torch.full((8,), 4 * math.sin(math.pi / 8), dtype=gaps.dtype))
    assert torch.cdist(c, c).add(10 * torch.eye(8, dtype=c.dtype)).min() > 1.0  # 8 distinct
    assert float(DATASETS["ring8"].std.max()) == 0.02


def test_grid25_centres():
    c = DATASETS["grid25"].centers
    got = {(round(float(x), 12), round(float(y), 12)) for x, y in c}
    ticks = (-4.0, -2.0, 0.0, 2.0, 4.0)
    assert len(c) == 25
    assert got == {(x, y) for x in ticks for y in ticks}
    torch.testing.assert_close(
        DATASETS["grid25"].weights, torch.full((25,), 1 / 25, dtype=torch.float64)
    )
    assert float(DATASETS["grid25"].std.max()) == 0.05


def test_ring8_imbalanced_weights_decay_linearly():
    data = DATASETS["ring8_imbalanced"]
    torch.testing.assert_close(data.centers, DATASETS["ring8"].centers, rtol=0, atol=0)
    expected = torch.arange(8, 0, -1, dtype=torch.float64) / 36.0  # proportional to 8, 7, ..., 1
    torch.testing.assert_close(data.weights, expected, rtol=0, atol=1e-15)


def test_heavy_center():
    data = DATASETS["heavy_center"]
    heavy = int(data.weights.argmax())
    assert float(data.weights[heavy]) == pytest.approx(0.9, abs=1e-12)
    assert data.centers[heavy].abs().max() == 0.0
    minor = torch.cat((data.weights[:heavy], data.weights[heavy + 1 :]))
    minor_centres = torch.cat((data.centers[:heavy], data.centers[heavy + 1 :]))
    assert len(minor) == 8
    torch.testing.assert_close(minor, torch.full((8,), 0.1 / 8, dtype=torch.float64))
    torch.testing.assert_close(
        minor_centres.norm(dim=1), torch.full((8,), 2.0, dtype=torch.float64)
    )
    assert float(data.std.max()) == 0.02


def test_grid25_imbalanced_weights():
    data = DATASETS["grid25_imbalanced"]
    w = data.weights
    torch.testing.assert_close(data.centers, DATASETS["grid25"].centers, rtol=0, atol=0)
    assert float(w.min() / w.max()) == pytest.approx(1 / 16, rel=1e-12)
    ranked = torch.sort(w, descending=True).values
    ratios = ranked[1:] / ranked[:-1]
    torch.testing.assert_close(ratios, torch.full((24,), 2 ** (-1 / 6), dtype=w.dtype))
    # Shuffled: the weights are not monotone in the mode index (the grid's scan order).
    assert not torch.equal(w, ranked) and not torch.equal(w, ranked.flip(0))
    # Fixed: the same order every time it is built, and the one in the registry.
    again = geometric_weights(25, halving=6.0, shuffle_seed=0)
    np.testing.assert_array_equal(again, geometric_weights(25, halving=6.0, shuffle_seed=0))
    np.testing.assert_allclose(w.numpy(), again, rtol=0, atol=1e-15)


def test_gauss1200_parameters():
    data = DATASETS["gauss1200"]
    assert data.dim == 1200 and data.n_modes == 10
    assert torch.equal(data.std[:700], torch.ones(700, dtype=torch.float64))
    assert torch.equal(data.std[700:], torch.full((500,), 0.01, dtype=torch.float64))
    c = torch.tensor([-1, -0.5, 0, 0.5, -2, -2.5, 10, 0.25, -13, -5.5], dtype=torch.float64)
    torch.testing.assert_close(data.centers, c[:, None].expand(10, 1200), rtol=0, atol=0)
    x = data.sample_mode(3, 400, gen(0), dtype=torch.float64)
    assert x.shape == (400, 1200)
    per_dim = x.std(dim=0)
    assert float(per_dim[:700].mean()) == pytest.approx(1.0, abs=0.02)
    assert float(per_dim[700:].mean()) == pytest.approx(0.01, abs=0.0002)


@pytest.mark.parametrize("key", list(DATASETS))
def test_sampling_is_reproducible(key):
    data = DATASETS[key]
    a = data.sample(64, gen(0))
    assert a.shape == (64, data.dim) and a.dtype == torch.float32
    assert torch.equal(a, data.sample(64, gen(0)))
    assert not torch.equal(a, data.sample(64, gen(1)))
    m = data.sample_mode(0, 16, gen(0), dtype=torch.float64)
    assert m.dtype == torch.float64
    assert torch.equal(m, data.sample_mode(0, 16, gen(0), dtype=torch.float64))
    assert not torch.equal(m, data.sample_mode(0, 16, gen(1), dtype=torch.float64))


def test_sampling_uses_only_the_given_generator():
    data = DATASETS["ring8"]
    torch.manual_seed(0)
    a = data.sample(32, gen(5))
    torch.manual_seed(1)
    assert torch.equal(a, data.sample(32, gen(5)))


@pytest.mark.parametrize("key", MIXTURES_2D)
def test_hq_radius_is_3_sigma_in_2d(key):
    data = DATASETS[key]
    assert data.radius2 == pytest.approx(9.0, rel=1e-9)
    sigma = float(data.std[0])
    theta = torch.tensor([0.0, 0.7, 2.0, 3.9, 5.5], dtype=torch.float64)
    u = torch.stack((theta.cos(), theta.sin()), -1)  # (5, 2) unit directions
    modes = torch.arange(data.n_modes).repeat_interleave(len(u))
    for factor, inside in ((2.99, True), (3.01, False)):
        x = data.centers[modes] + factor * sigma * u.repeat(data.n_modes, 1)
        idx, hq = data.assign(x)
        assert torch.equal(idx, modes)
        assert bool(hq.all()) if inside else not bool(hq.any())


@pytest.mark.parametrize("key", list(DATASETS))
def test_true_samples_hq_share(key):
    """A perfect sampler scores the expected HQ share (~98.9% for Gaussians) in any dimension."""
    data = DATASETS[key]
    n = 8000 if isinstance(data, GaussianMixture) and data.dim == 2 else 1000
    _, hq = data.assign(data.sample(n, gen(0), dtype=torch.float64))
    p = data.expected_hq
    se = math.sqrt(p * (1 - p) / n)
    assert float(hq.double().mean()) == pytest.approx(p, abs=5 * se + 1e-12)
    if isinstance(data, GaussianMixture):
        assert p == HQ_MASS == pytest.approx(1 - math.exp(-4.5))


@pytest.mark.parametrize("key", [k for k, d in DATASETS.items() if not isinstance(d, Spiral)])
def test_sample_mode_is_assigned_to_its_mode(key):
    data = DATASETS[key]
    n = 50 if data.dim > 2 else 200
    for k in range(data.n_modes):
        idx, _ = data.assign(data.sample_mode(k, n, gen(k), dtype=torch.float64))
        if hasattr(data, "classify"):
            # A classifier reads these modes: the shipped stacked_digits one misreads 1 of its
            # 1,437 training digits, so 109 of 50,000 samples (at worst 3 of 50 in one mode)
            # land in a neighbouring mode (measured).
            assert float((idx == k).double().mean()) >= 0.9, f"mode {k}"
        else:
            assert torch.equal(idx, torch.full((n,), k)), f"mode {k}"


def test_spiral_segments():
    data = DATASETS["spiral"]
    assert data.n_modes == 16 and data.dim == 2
    torch.testing.assert_close(data.weights, torch.full((16,), 1 / 16, dtype=torch.float64))
    wrong = 0
    for k in range(16):
        idx, hq = data.assign(data.sample_mode(k, 250, gen(k)))
        assert bool(hq.all()), f"segment {k}"
        # The curve is discretised (16384 points), so a sample within half a grid step of a
        # segment boundary may land in the neighbouring segment, and nowhere else.
        assert (idx - k).abs().max() <= 1, f"segment {k}"
        wrong += int((idx != k).sum())
    assert wrong <= 0.005 * 16 * 250


def test_spiral_geometry():
    data = DATASETS["spiral"]
    ends = data.curve(torch.tensor([-1.0, 1.0], dtype=torch.float64))
    torch.testing.assert_close(ends.norm(dim=1), torch.tensor([0.25, 2.0], dtype=torch.float64))
    x = data.sample(4000, gen(0), dtype=torch.float64)
    _, dist = data._nearest(x)
    assert float(dist.max()) <= 0.1 + 1e-3  # the band's half-width
    # A point 0.2 off the curve (twice the half-width) is not HQ.
    u = torch.tensor([-0.3, 0.1, 0.6], dtype=torch.float64)
    off = data.curve(u) + 0.2 * data.normal(u)
    assert not bool(data.assign(off)[1].any())
