"""Discriminator penalties and generator regularisers: one value per seed, shape (S,).

A penalty is called as ``penalty(state, real=, fake=)`` and added, weighted, to the
discriminator loss; a regulariser as ``g_regularizer(state, z=, fake=)`` and added to the
generator loss. Each is a batch mean per seed and never mixes seeds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from modecov.nets import input_gradient

if TYPE_CHECKING:
    from modecov.state import StepState


def _input_gradient(state: StepState, x: Tensor) -> Tensor:
    """(S, B / pack, pack * D) gradient of the critic's logits w.r.t. its (packed) inputs.

    Differentiable w.r.t. D's parameters, so a penalty on it trains D. Each logit depends on
    its own seed's packed input alone, so the gradient of the sum over seeds and packs is
    every logit's own input gradient. A discriminator with ``input_gradient`` (the shared
    MLP: :meth:`modecov.nets.StackedMLP.input_gradient`) computes it without autograd's
    graph through its forward pass; any other is differentiated by autograd with
    ``create_graph=True``, to the same values.
    """
    S, B, D = x.shape
    pack = state.variant.pack
    # The critic sees pack consecutive samples as one input: the norm is over that input.
    net = getattr(state, "D", None)  # stand-ins in the tests have a critic alone
    if net is not None:
        return input_gradient(net, x.detach().reshape(S, B // pack, pack * D))
    x = x.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(state.critic(x).sum(), x, create_graph=True)
    return grad.reshape(S, B // pack, pack * D)


def gradient_penalty(state: StepState, *, real: Tensor, fake: Tensor) -> Tensor:
    """WGAN-GP two-sided gradient penalty (Gulrajani et al. 2017).

    ``(‖∇ D(x̂)‖₂ - 1)²`` averaged over the batch, at ``x̂ = ε x + (1 - ε) G(z)`` with one
    ``ε ~ U[0, 1]`` per sample drawn from each seed's own generator, so seeds stay
    independent. With a packed critic the norm is over each packed input (pack · D).

    Args:
        state: the group's StepState (its ``critic`` and per-seed ``streams``).
        real: (S, B, D) real samples.
        fake: (S, B, D) generated samples (detached).

    Returns:
        (S,) penalty per seed, differentiable w.r.t. the critic's parameters.

    Example:
        A linear critic ``D(x) = a · x`` has ``∇D = a`` everywhere, so the penalty is
        ``(‖a‖ - 1)²`` whatever ``real``, ``fake`` and ``ε``.
    """
    S, B, _ = real.shape
    eps = torch.stack(
        [torch.rand(B, 1, generator=g, dtype=real.dtype, device=g.device) for g in state.streams]
    )
    x_hat = eps * real + (1.0 - eps) * fake
    norm = _input_gradient(state, x_hat).norm(dim=-1)
    return (norm - 1.0).square().mean(dim=1)


def r1_penalty(state: StepState, *, real: Tensor, fake: Tensor) -> Tensor:
    """R1 penalty ``‖∇ₓ D(x)‖²`` on real data, batch mean (Mescheder et al. 2018).

    The paper's regulariser is ``(γ / 2) E‖∇ₓ D(x)‖²`` on the logits; this returns the
    expectation alone, so ``penalty_weight = γ / 2``. With a packed critic the squared
    norm is over each packed input (pack · D).

    Args:
        state: the group's StepState (its ``critic``).
        real: (S, B, D) real samples.
        fake: (S, B, D) generated samples; unused (R1 looks at real data only).

    Returns:
        (S,) penalty per seed, differentiable w.r.t. the critic's parameters.

    Example:
        A linear critic ``D(x) = a · x`` gives ``‖a‖²``.
    """
    del fake
    return _input_gradient(state, real).square().sum(dim=-1).mean(dim=1)


def r1_r2_penalty(state: StepState, *, real: Tensor, fake: Tensor) -> Tensor:
    """Zero-centred R1 on real plus R2 on generated data, ``E‖∇ₓ D(x)‖² + E‖∇ₓ D(G(z))‖²``.

    The R3GAN regulariser (Huang et al. 2024): the authors' code (brownvc/R3GAN,
    ``R3GAN/Trainer.py``, ``ZeroCenteredGradientPenalty``) takes each sample's squared
    gradient norm of its logit, summed over the sample's coordinates, and adds
    ``(Gamma / 2) * (R1Penalty + R2Penalty)`` to the per-sample loss before the batch mean.
    This returns ``R1 + R2`` (batch means), so ``penalty_weight = γ / 2``. One critic pass over
    both batches gives both gradients (each logit depends on its own input alone). With a
    packed critic the norm is over each packed input (pack · D).

    Args:
        state: the group's StepState (its ``critic``).
        real: (S, B, D) real samples.
        fake: (S, B, D) generated samples (detached).

    Returns:
        (S,) penalty per seed, differentiable w.r.t. the critic's parameters.

    Example:
        A linear critic ``D(x) = a · x`` gives ``2 ‖a‖²`` (R1 = R2 = ‖a‖²).
    """
    n = real.shape[1] // state.variant.pack
    sq = _input_gradient(state, torch.cat((real, fake), dim=1)).square().sum(dim=-1)
    return sq[:, :n].mean(dim=1) + sq[:, n:].mean(dim=1)


DRAGAN_SCALE = 0.5
"""c of DRAGAN's perturbation ``c · std(x) · u``: 0.5 in the authors' code."""


def dragan_points(state: StepState, *, real: Tensor) -> Tensor:
    """DRAGAN's penalty points ``x̂ = x + α · c · std(x) · u`` around the real batch.

    As the authors' code (kodalinaveen3/DRAGAN, ``DRAGAN.ipynb``): ``get_perturbed_batch``
    gives ``x_p = x + 0.5 * x.std() * U[0, 1)`` with one uniform draw per coordinate and the
    standard deviation (numpy's, no Bessel correction) over every entry of the minibatch;
    the penalty then sits at ``x + α (x_p − x)`` with one ``α ~ U[0, 1]`` per sample. Here
    std is over the seed's own batch, and each seed draws u (B, D) then α (B, 1) from its
    own generator. So ``0 ≤ x̂ − x ≤ c · std(x)`` in every coordinate.

    Args:
        state: the group's StepState (its per-seed ``streams``).
        real: (S, B, D) real samples.

    Returns:
        (S, B, D) penalty points.
    """
    S, B, D = real.shape
    u, alpha = [], []
    for g in state.streams:
        u.append(torch.rand(B, D, generator=g, dtype=real.dtype, device=g.device))
        alpha.append(torch.rand(B, 1, generator=g, dtype=real.dtype, device=g.device))
    std = real.flatten(1).std(dim=1, correction=0)[:, None, None]
    delta = DRAGAN_SCALE * std * torch.stack(u)
    return real + torch.stack(alpha) * delta


def dragan_penalty(state: StepState, *, real: Tensor, fake: Tensor) -> Tensor:
    """DRAGAN gradient penalty ``(‖∇ₓ D(x̂)‖₂ − 1)²``, batch mean (Kodali et al. 2017).

    At the points of :func:`dragan_points`, perturbations of real data only, as the
    authors' ``gradient_penalty = reduce_mean((slopes - 1.)**2)`` with ``lambd = 10``
    (the weight). With a packed critic the norm is over each packed input (pack · D).

    Args:
        state: the group's StepState (its ``critic`` and per-seed ``streams``).
        real: (S, B, D) real samples.
        fake: (S, B, D) generated samples; unused (DRAGAN looks around real data only).

    Returns:
        (S,) penalty per seed, differentiable w.r.t. the critic's parameters.

    Example:
        A linear critic ``D(x) = a · x`` gives ``(‖a‖ − 1)²`` wherever the points fall.
    """
    del fake
    norm = _input_gradient(state, dragan_points(state, real=real)).norm(dim=-1)
    return (norm - 1.0).square().mean(dim=1)


MODE_SEEKING_EPS = 1e-5
"""Added to the distance ratio before inverting it, as in Mao et al.'s code."""


def mode_seeking(state: StepState, *, z: Tensor, fake: Tensor) -> Tensor:
    """MSGAN mode-seeking term ``1 / (mean|G(z₁) - G(z₂)| / mean|z₁ - z₂| + 1e-5)``.

    The batch is split into halves z₁ (first ⌊B/2⌋ draws) and z₂ (the next ⌊B/2⌋; an odd
    last draw is left out), paired in order. Each mean runs over the pairs and the
    coordinates, as ``torch.mean(torch.abs(fake2 - fake1)) / torch.mean(torch.abs(z2 - z1))``
    in Mao et al. (2019)'s code. Minimising it pushes G to map distant latents apart.

    Args:
        state: the group's StepState (unused; part of the regulariser signature).
        z: (S, B, Z) latent draws.
        fake: (S, B, D) samples ``G(z)``, not detached.

    Returns:
        (S,) term per seed, differentiable w.r.t. the generator's parameters.

    Raises:
        ValueError: when B < 2 (no pair to compare).
    """
    del state
    half = z.shape[1] // 2
    if half == 0:
        raise ValueError("mode_seeking needs a batch of at least 2 samples")
    fake_gap = (fake[:, :half] - fake[:, half : 2 * half]).abs().flatten(1).mean(dim=1)
    z_gap = (z[:, :half] - z[:, half : 2 * half]).abs().flatten(1).mean(dim=1)
    return 1.0 / (fake_gap / z_gap + MODE_SEEKING_EPS)
