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


def reference_unrolled_step(st: TrainState, steps: int = UNROLL_STEPS) -> dict:
    """The straightforward unrolled step: the ordinary D update, then k differentiable copies
    of modecov.optim.Adam's update, each on one pass of D over the real batch and the fake
    batch together (create_graph), and G's loss against the result."""
    from modecov.steps import discriminator_updates

    _, _, fake, loss_d = discriminator_updates(st)
    reals = [st.real() for _ in range(steps)]
    opt = st.optims["D"]
    (beta1, beta2), lr, eps = opt.spec.betas, opt.spec.lr, opt.spec.eps
    alive = st.alive[:, None]
    theta, m, v = st.D.params.detach().requires_grad_(), opt.m.clone(), opt.v.clone()
    for i, real in enumerate(reals, start=1):
        d_real, d_fake = st.critic(torch.cat((real, fake), dim=1), params=theta).chunk(2, dim=1)
        loss = st.variant.d_loss(real=d_real, fake=d_fake)
        (grad,) = torch.autograd.grad(loss.sum(), theta, create_graph=True)
        g = torch.where(alive, grad, 0.0)
        t = opt.t + i
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        safe = torch.where(v > 0, v, 1.0).sqrt()
        denom = torch.where(v > 0, safe, 0.0) / math.sqrt(1 - beta2**t) + eps
        theta = theta - m / denom * (lr / (1 - beta1**t)) * alive
    loss_g = st.variant.g_loss(fake=st.critic(fake, params=theta))
    st.update("G", loss_g)
    return {"loss_d": loss_d, "loss_g": loss_g.detach()}


def test_steps_match_the_straightforward_unroll_float64():
    # Several full unrolled steps against the reference (which also runs the first unrolled
    # step's real batch through G's backward, where it contributes nothing).
    fast, slow = warm(state()), warm(state())
    for _ in range(3):
        got, want = unrolled_step(fast), reference_unrolled_step(slow)
        for name in want:
            torch.testing.assert_close(got[name], want[name], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(fast.G.params, slow.G.params, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(fast.D.params, slow.D.params, rtol=1e-12, atol=1e-12)
