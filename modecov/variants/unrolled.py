"""Unrolled GAN (Metz et al. 2017): the generator steps against its discriminator as it
would be after ``UNROLL_STEPS`` differentiable Adam updates; the discriminator itself takes
ordinary steps.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from modecov import losses
from modecov.optim import Adam
from modecov.steps import discriminator_updates
from modecov.variants.base import Variant

if TYPE_CHECKING:
    from modecov.state import StepState

UNROLL_STEPS = 5
"""Differentiable discriminator updates the generator looks ahead through (Metz et al.'s
k = 5 on the 2-D mixtures)."""


def _sqrt(v: Tensor) -> Tensor:
    """sqrt(v) for v >= 0 with gradient 0 (not inf, which would turn into NaN) at v == 0."""
    pos = v > 0
    return torch.where(pos, torch.where(pos, v, 1.0).sqrt(), 0.0)


def unroll_critic(st: StepState, *, fake: Tensor, reals: Sequence[Tensor]) -> Tensor:
    """The discriminator's parameters after ``len(reals)`` differentiable Adam steps.

    Starts from D's current parameters and Adam moments (m, v, t) and repeats exactly the
    update of ``modecov.optim.Adam`` (bias correction with t continuing from the real
    optimiser's, frozen seeds held still) on ``d_loss(real=reals[i], fake=fake)``, building
    each gradient with ``create_graph=True`` so the result stays differentiable w.r.t.
    ``fake`` (and so w.r.t. G). D and its optimiser are not touched.

    Args:
        st: the training state; ``st.optims["D"]`` must be an Adam optimiser.
        fake: (S, B, D) generated batch, attached to G's graph; used at every step.
        reals: one (S, B, D) real batch per unrolled step.

    Returns:
        (S, P) unrolled discriminator parameters, laid out as ``st.D.params``.
    """
    opt = st.optims["D"]
    if not isinstance(opt.spec, Adam):
        raise TypeError(f"unrolling needs an Adam discriminator optimiser, got {opt.spec!r}")
    (beta1, beta2), lr, eps = opt.spec.betas, opt.spec.lr, opt.spec.eps
    alive = st.alive[:, None]
    # m and v are only read: every update below makes new tensors, so no copies are needed.
    theta, m, v = st.D.params.detach().requires_grad_(), opt.m, opt.v
    for i, real in enumerate(reals, start=1):
        if i == 1:
            # θ₀ is D's own parameters, which no generator output moves, so the real batch's
            # logits at θ₀ are constants for G: in a pass of their own, G's backward leaves
            # out their part of this step's double backward (half of it).
            d_real, d_fake = st.critic(real, params=theta), st.critic(fake, params=theta)
        else:
            both = st.critic(torch.cat((real, fake), dim=1), params=theta)
            d_real, d_fake = both.chunk(2, dim=1)
        loss = st.variant.d_loss(real=d_real, fake=d_fake)
        # Summed over seeds: each seed's gradient is that of its own loss.
        (grad,) = torch.autograd.grad(loss.sum(), theta, create_graph=True)
        g = torch.where(alive, grad, 0.0)
        t = opt.t + i
        m = torch.lerp(m, g, 1.0 - beta1)
        v = torch.addcmul(v * beta2, g, g, value=1.0 - beta2)
        denom = _sqrt(v) / math.sqrt(1.0 - beta2**t) + eps
        theta = theta - m / denom * (lr / (1.0 - beta1**t)) * alive
    return theta


def unrolled_g_loss(st: StepState, *, fake: Tensor, reals: Sequence[Tensor]) -> Tensor:
    """(S,) generator loss ``g_loss(D_θk(fake))`` against the discriminator unrolled
    ``len(reals)`` steps (``unroll_critic``); differentiable w.r.t. ``fake`` through the
    unrolled updates."""
    theta = unroll_critic(st, fake=fake, reals=reals)
    return st.variant.g_loss(fake=st.critic(fake, params=theta))


def unrolled_step(st: StepState, *, steps: int = UNROLL_STEPS) -> dict[str, Tensor]:
    """One unrolled-GAN update: ``n_critic`` ordinary discriminator steps, then one generator
    step on the loss against D unrolled ``steps`` times on fresh real batches and this step's
    fake batch. D keeps its ordinary update; the unrolled parameters are discarded.

    Args:
        st: the training state.
        steps: unrolled discriminator updates (k); 0 gives the standard generator step.

    Returns:
        ``loss_d`` (the ordinary D loss) and ``loss_g`` (the unrolled G loss), each (S,).
    """
    _, _, fake, loss_d = discriminator_updates(st)
    loss_g = unrolled_g_loss(st, fake=fake, reals=[st.real() for _ in range(steps)])
    st.update("G", loss_g)
    return {"loss_d": loss_d, "loss_g": loss_g.detach()}


UNROLLED = Variant(
    name="unrolled",
    # v2: the first unrolled step's real and fake batches in two passes, so that G's backward
    # leaves out the real half (the same update; its gradient sums round differently)
    version=2,
    label="Unrolled GAN",
    reference="metz2017unrolled",
    d_loss=losses.bce_d,
    g_loss=losses.nonsaturating_g,
    step=unrolled_step,
    relative_cost=11.3,
)
