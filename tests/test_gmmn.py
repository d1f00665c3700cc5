"""Tests for the GMMN variant: ``losses.mmd2_rbf`` against a plain numpy estimator, its
known answers and per-seed independence, and the generator-only update rule."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from modecov.config import RunConfig
from modecov.data import DATASETS
from modecov.losses import mmd2_rbf
from modecov.train import TrainState
from modecov.variants import VARIANTS
from modecov.variants.gmmn import BANDWIDTHS, gmmn_step


def numpy_mmd2(x: np.ndarray, y: np.ndarray, bandwidths) -> float:
    """Unbiased MMD² from explicit pairwise differences, diagonals dropped by index."""

    def k(a, b):
        d2 = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)
        return sum(np.exp(-d2 / (2 * s**2)) for s in bandwidths)

    m, n = len(x), len(y)
    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    xx = (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
    yy = (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
    return float(xx + yy - 2 * kxy.mean())


def gmmn_state(seeds=(0,), **overrides) -> TrainState:
    base = dict(
        dataset="ring8", variant="gmmn", seeds=seeds, batch_size=64, hidden=32, depth=2,
        device="cpu",
    )  # fmt: skip
    cfg = RunConfig(**{**base, **overrides})
    return TrainState(cfg, DATASETS[cfg.dataset], cfg.spec, torch.device("cpu"))


@pytest.mark.parametrize("m,n,dim", [(7, 11, 2), (20, 20, 5), (2, 3, 1)])
def test_mmd2_matches_numpy(m, n, dim):
    rng = np.random.default_rng(m * 100 + n)
    x = rng.normal(size=(3, m, dim)) * 0.7
    y = rng.normal(size=(3, n, dim)) + 0.3
    got = mmd2_rbf(fake=torch.from_numpy(x), real=torch.from_numpy(y), bandwidths=BANDWIDTHS)
    assert got.shape == (3,) and got.dtype == torch.float64
    want = [numpy_mmd2(x[s], y[s], BANDWIDTHS) for s in range(3)]
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-10, atol=0)


def test_mmd2_near_zero_for_one_distribution_and_large_for_separated():
    g = torch.Generator().manual_seed(0)
    S, B = 200, 64
    x = torch.randn(S, B, 2, generator=g, dtype=torch.float64)
    y = torch.randn(S, B, 2, generator=g, dtype=torch.float64)
    same = mmd2_rbf(fake=x, real=y, bandwidths=BANDWIDTHS)
    # Unbiased: the mean over independent seeds is within a few standard errors of 0.
    se = same.std() / S**0.5
    assert abs(float(same.mean())) < 4 * float(se)
    apart = mmd2_rbf(fake=x + 3.0, real=y, bandwidths=BANDWIDTHS)
    assert bool((apart > same.max() + 1.0).all())


def test_mmd2_point_masses_far_apart_is_the_maximum():
    x = torch.zeros(1, 5, 2, dtype=torch.float64)
    y = torch.full((1, 6, 2), 1e3, dtype=torch.float64)
    got = mmd2_rbf(fake=x, real=y, bandwidths=BANDWIDTHS)
    torch.testing.assert_close(got, torch.tensor([2.0 * len(BANDWIDTHS)], dtype=torch.float64))


def test_mmd2_gradient_is_finite_at_zero_distance():
    x = torch.zeros(1, 4, 2, requires_grad=True)
    y = torch.zeros(1, 4, 2)
    (grad,) = torch.autograd.grad(mmd2_rbf(fake=x, real=y, bandwidths=BANDWIDTHS).sum(), x)
    assert torch.isfinite(grad).all()


def test_mmd2_seeds_are_independent():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 16, 2, generator=g, dtype=torch.float64)
    y = torch.randn(2, 12, 2, generator=g, dtype=torch.float64)

    def value_and_grad(x, y):
        x = x.clone().requires_grad_(True)
        v = mmd2_rbf(fake=x, real=y, bandwidths=BANDWIDTHS)
        (grad,) = torch.autograd.grad(v.sum(), x)
        return v.detach(), grad

    v, grad = value_and_grad(x, y)
    x2, y2 = x.clone(), y.clone()
    x2[1] += 5.0
    y2[1] = torch.randn(12, 2, generator=g, dtype=torch.float64)
    v2, grad2 = value_and_grad(x2, y2)
    assert torch.equal(v[0], v2[0]) and torch.equal(grad[0], grad2[0])
    assert not torch.equal(v[1], v2[1])


def test_mmd2_rejects_bad_inputs():
    x = torch.zeros(1, 1, 2)
    with pytest.raises(ValueError):
        mmd2_rbf(fake=x, real=torch.zeros(1, 4, 2), bandwidths=BANDWIDTHS)
    with pytest.raises(ValueError):
        mmd2_rbf(fake=torch.zeros(2, 4, 2), real=torch.zeros(1, 4, 2), bandwidths=BANDWIDTHS)
    with pytest.raises(ValueError):
        mmd2_rbf(fake=torch.zeros(1, 4, 2), real=torch.zeros(1, 4, 2), bandwidths=())


def test_registered():
    v = VARIANTS["gmmn"]
    assert v.step is gmmn_step and v.d_loss is None and v.g_loss is None


def test_step_moves_g_and_never_d():
    st = gmmn_state(seeds=(0, 1))
    d0, g0 = st.D.params.clone(), st.G.params.clone()
    for st.step in range(1, 4):
        out = gmmn_step(st)
    assert set(out) == {"loss_g"} and out["loss_g"].shape == (2,)
    assert torch.equal(st.D.params, d0)
    assert not torch.equal(st.G.params[0], g0[0]) and not torch.equal(st.G.params[1], g0[1])


def test_short_training_lowers_mmd2():
    st = gmmn_state(seeds=(0, 1), hidden=32, batch_size=128, lr=1e-3)
    g = torch.Generator().manual_seed(123)
    z = torch.randn(1, 512, 2, generator=g).expand(2, -1, -1)
    real = DATASETS["ring8"].sample(512, g, dtype=torch.float32)[None].expand(2, -1, -1)

    def score() -> torch.Tensor:
        with torch.no_grad():
            return mmd2_rbf(
                fake=st.G(z.contiguous()), real=real.contiguous(), bandwidths=BANDWIDTHS
            )

    before = score()
    for st.step in range(1, 301):
        gmmn_step(st)
    after = score()
    assert bool((after < 0.5 * before).all()), (before, after)


def reference_mmd2(
    fake: torch.Tensor, real: torch.Tensor, bandwidths, *, matmul: bool = False
) -> torch.Tensor:
    """The straightforward unbiased MMD² per seed, differentiated by autograd: pairwise
    squared distances (explicit differences, or with ``matmul`` the matrix-product form
    ‖x‖² + ‖y‖² − 2x·y clamped at 0, as mmd2_rbf defines them), one exponential per
    bandwidth, the diagonals masked out."""

    def k(a, b):
        if matmul:
            aa, bb = a.square().sum(-1), b.square().sum(-1)
            d2 = (aa[:, :, None] + bb[:, None, :] - 2 * a @ b.mT).clamp_min(0.0)
        else:
            d2 = (a[:, :, None, :] - b[:, None, :, :]).square().sum(-1)
        return sum(torch.exp(-d2 / (2 * s * s)) for s in bandwidths)

    m, n = fake.shape[1], real.shape[1]
    off_m = ~torch.eye(m, dtype=torch.bool)
    off_n = ~torch.eye(n, dtype=torch.bool)
    xx = (k(fake, fake) * off_m).sum((1, 2)) / (m * (m - 1))
    yy = (k(real, real) * off_n).sum((1, 2)) / (n * (n - 1))
    return xx + yy - 2.0 * k(fake, real).mean((1, 2))


@pytest.mark.parametrize(
    "case", ["spread", "near_duplicates", "far_apart"], ids=["spread", "dups", "far"]
)
def test_mmd2_value_and_gradient_match_the_straightforward_formula(case):
    g = torch.Generator().manual_seed(3)
    fake = torch.randn(3, 40, 2, generator=g, dtype=torch.float64)
    real = torch.randn(3, 50, 2, generator=g, dtype=torch.float64) * 2
    if case == "near_duplicates":  # matrix-product distances round below 0 here
        fake[:, 20:] = fake[:, :20] + 1e-9
        real[:, :20] = fake[:, :20]
    if case == "far_apart":  # the narrow bandwidths' exponents far below underflow
        fake = fake * 30.0
    fake.requires_grad_(True)
    got = mmd2_rbf(fake=fake, real=real, bandwidths=BANDWIDTHS)
    # Near-duplicates: the matrix-product distances round by more than the true ones, so the
    # reference takes the same distances (the definition) and differs in the kernel sums.
    want = reference_mmd2(fake, real, BANDWIDTHS, matmul=case == "near_duplicates")
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    (got_grad,) = torch.autograd.grad(got.sum(), fake)
    (want_grad,) = torch.autograd.grad(want.sum(), fake)
    torch.testing.assert_close(got_grad, want_grad, rtol=1e-10, atol=1e-10)


def test_mmd2_float32_under_underflow_matches_float64():
    # Exponents are clamped above float32's underflow (CPU exp is 200x slower below it);
    # the kernel values this changes are below 1e-37.
    g = torch.Generator().manual_seed(4)
    fake = torch.randn(2, 64, 2, generator=g, dtype=torch.float64) * 3
    real = torch.randn(2, 64, 2, generator=g, dtype=torch.float64)
    want = reference_mmd2(fake, real, BANDWIDTHS)
    got = mmd2_rbf(fake=fake.float(), real=real.float(), bandwidths=BANDWIDTHS)
    torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=1e-5)


def test_steps_match_a_reference_step_float64():
    # gmmn_step against the same update with the straightforward MMD², several steps.
    def reference_step(st: TrainState) -> dict[str, torch.Tensor]:
        real, z = st.real(), st.noise()
        loss_g = reference_mmd2(st.G(z), real, BANDWIDTHS)
        st.update("G", loss_g)
        return {"loss_g": loss_g.detach()}

    fast = gmmn_state(seeds=(0, 4), dtype="float64", batch_size=32, hidden=16)
    slow = gmmn_state(seeds=(0, 4), dtype="float64", batch_size=32, hidden=16)
    for fast.step in range(1, 6):
        slow.step = fast.step
        got, want = gmmn_step(fast), reference_step(slow)
        torch.testing.assert_close(got["loss_g"], want["loss_g"], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(fast.G.params, slow.G.params, rtol=1e-12, atol=1e-12)
