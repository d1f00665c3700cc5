"""Tests for the unrolled GAN step: k = 0 is NS-GAN, the unrolled generator gradient
matches finite differences, the unroll repeats modecov.optim.Adam exactly, and it leaves
D (and frozen seeds) untouched."""

from __future__ import annotations

import math

import torch

from modecov.config import RunConfig
from modecov.data import DATASETS
from modecov.train import TrainState, standard_step
from modecov.variants import VARIANTS
from modecov.variants.unrolled import UNROLL_STEPS, unroll_critic, unrolled_g_loss, unrolled_step


def state(variant: str = "unrolled", **overrides) -> TrainState:
    """A fresh float64 training state of a tiny group."""
    base = dict(
        dataset="ring8", variant=variant, seeds=(0, 5), batch_size=16, hidden=8, depth=2,
        n_eval=100, n_eval_large=100, dtype="float64", device="cpu",
    )  # fmt: skip
    cfg = RunConfig(**{**base, **overrides})
    return TrainState(cfg, DATASETS[cfg.dataset], cfg.spec, torch.device("cpu"))


def warm(st: TrainState, steps: int = 3) -> TrainState:
    """A few standard steps, so D's Adam moments and step count are not at their start."""
    for _ in range(steps):
        standard_step(st)
    return st


def g_grad(st: TrainState, loss: torch.Tensor) -> torch.Tensor:
    """(S, P) gradient of the per-seed loss w.r.t. G's parameters."""
    return st.G.flat_grad(torch.autograd.grad(loss.sum(), st.G.leaves))


def test_registered():
    assert VARIANTS["unrolled"].step is unrolled_step
    assert UNROLL_STEPS == 5


def test_no_unrolling_is_the_nsgan_generator_step():
    a, b = warm(state()), warm(state("nsgan"))
    unrolled_step(a, steps=0)
    standard_step(b)
    torch.testing.assert_close(a.G.params, b.G.params, rtol=0, atol=1e-14)
    torch.testing.assert_close(a.D.params, b.D.params, rtol=0, atol=0)

    st = warm(state())
    z, reals = st.noise(), [st.real() for _ in range(UNROLL_STEPS)]
    plain = g_grad(st, VARIANTS["nsgan"].g_loss(fake=st.critic(st.G(z))))
    k0 = g_grad(st, unrolled_g_loss(st, fake=st.G(z), reals=[]))
    k5 = g_grad(st, unrolled_g_loss(st, fake=st.G(z), reals=reals))
    torch.testing.assert_close(k0, plain, rtol=0, atol=1e-14)
    for s in range(2):
        assert (k5[s] - plain[s]).abs().max() > 1e-6 * plain[s].abs().max()


def test_unrolled_generator_gradient_matches_finite_differences():
    st = warm(state(seeds=(2,), batch_size=4, hidden=3, depth=1, lr=1e-2))
    z, reals = st.noise(), [st.real() for _ in range(2)]

    def loss(params: torch.Tensor | None = None) -> torch.Tensor:
        return unrolled_g_loss(st, fake=st.G(z, params=params), reals=reals)

    direction = torch.randn(st.G.params.shape, generator=torch.Generator().manual_seed(1))
    direction = direction.to(torch.float64)
    analytic = (g_grad(st, loss()) * direction).sum()
    eps = 1e-6
    with torch.no_grad():
        theta = st.G.params.clone()
    numeric = (loss(theta + eps * direction) - loss(theta - eps * direction)).sum() / (2 * eps)
    torch.testing.assert_close(analytic.detach(), numeric.detach(), rtol=1e-6, atol=1e-9)
    # Not a stop-gradient shortcut: the look-ahead changes the gradient.
    through_d = (g_grad(st, unrolled_g_loss(st, fake=st.G(z), reals=[])) * direction).sum()
    assert not math.isclose(float(analytic), float(through_d), rel_tol=1e-3)


def test_unroll_repeats_the_optimizer_update():
    st = warm(state())
    real, fake = st.real(), st.G(st.noise()).detach()
    theta = unroll_critic(st, fake=fake, reals=[real, real])

    ref = warm(state())  # the same state; step its real optimiser twice on the same batches
    for _ in range(2):
        d_real, d_fake = ref.critic(torch.cat((real, fake), dim=1)).chunk(2, dim=1)
        ref.update("D", ref.variant.d_loss(real=d_real, fake=d_fake))
    torch.testing.assert_close(theta.detach(), ref.D.params, rtol=0, atol=1e-14)
    assert ref.optims["D"].t == st.optims["D"].t + 2


def test_d_after_one_step_equals_the_standard_step():
    a, b = warm(state()), warm(state())
    d_before, m_before = a.D.params.clone(), a.optims["D"].m.clone()
    unrolled_step(a)
    standard_step(b)
    assert not torch.equal(a.D.params, d_before)
    torch.testing.assert_close(a.D.params, b.D.params, rtol=0, atol=0)
    torch.testing.assert_close(a.optims["D"].m, b.optims["D"].m, rtol=0, atol=0)
    torch.testing.assert_close(a.optims["D"].v, b.optims["D"].v, rtol=0, atol=0)
    assert a.optims["D"].t == b.optims["D"].t
    assert not torch.equal(a.optims["D"].m, m_before)


def test_frozen_seed_is_not_moved_and_the_other_is_unaffected():
    clean, faulty = warm(state()), warm(state())
    faulty.alive[1] = False
    with torch.no_grad():
        faulty.D.params[1, 0] = math.nan
    g1, d1 = faulty.G.params[1].clone(), faulty.D.params[1].clone()
    unrolled_step(clean)
    unrolled_step(faulty)
    assert torch.equal(faulty.G.params[1], g1)
    assert torch.equal(faulty.D.params[1].nan_to_num(), d1.nan_to_num())
    assert torch.equal(faulty.G.params[0], clean.G.params[0])
    assert torch.equal(faulty.D.params[0], clean.D.params[0])
