"""Pure GAN loss functions: discriminator logits in, one loss per seed (S,) out.

Logits have shape (S, B, 1); each loss is the mean over the batch, so summing the
result over seeds gives every seed the gradient of its own independent run.
``mmd2_rbf`` takes samples instead of logits (GMMN has no discriminator).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable
from torch.nn import functional as F


def _mean(x: Tensor) -> Tensor:
    return x.flatten(1).mean(1)


def bce_d(*, real: Tensor, fake: Tensor) -> Tensor:
    """Discriminator cross-entropy: -log D(x) - log(1 - D(G(z))), D = sigmoid(logit)."""
    return _mean(F.softplus(-real)) + _mean(F.softplus(fake))


def minimax_g(*, fake: Tensor) -> Tensor:
    """Original (saturating) generator loss: log(1 - D(G(z)))."""
    return -_mean(F.softplus(fake))


def nonsaturating_g(*, fake: Tensor) -> Tensor:
    """Non-saturating generator loss: -log D(G(z))."""
    return _mean(F.softplus(-fake))


def least_squares_d(*, real: Tensor, fake: Tensor) -> Tensor:
    """Least-squares discriminator loss on raw logits: ½(D(x) - 1)² + ½D(G(z))² (a=0, b=1)."""
    return 0.5 * _mean((real - 1.0).square()) + 0.5 * _mean(fake.square())


def least_squares_g(*, fake: Tensor) -> Tensor:
    """Least-squares generator loss on raw logits: ½(D(G(z)) - 1)² (c=1)."""
    return 0.5 * _mean((fake - 1.0).square())


def hinge_d(*, real: Tensor, fake: Tensor) -> Tensor:
    """Hinge discriminator loss: max(0, 1 - D(x)) + max(0, 1 + D(G(z)))."""
    return _mean(F.relu(1.0 - real)) + _mean(F.relu(1.0 + fake))


def hinge_g(*, fake: Tensor) -> Tensor:
    """Hinge generator loss: -D(G(z)) (the same linear loss as the Wasserstein generator)."""
    return -_mean(fake)


def wasserstein_d(*, real: Tensor, fake: Tensor) -> Tensor:
    """Wasserstein critic loss: D(G(z)) - D(x), the negated dual estimate of W1."""
    return _mean(fake) - _mean(real)


def wasserstein_g(*, fake: Tensor) -> Tensor:
    """Wasserstein generator loss: -D(G(z))."""
    return -_mean(fake)


def relativistic_d(*, real: Tensor, fake: Tensor) -> Tensor:
    """Relativistic pairing (RpGAN) discriminator loss: softplus(D(G(z)) − D(x)), sample i of
    ``real`` paired with sample i of ``fake`` (Huang et al. 2024, the R3GAN objective)."""
    return _mean(F.softplus(fake - real))


def relativistic_g(*, real: Tensor, fake: Tensor) -> Tensor:
    """Relativistic pairing (RpGAN) generator loss: softplus(D(x) − D(G(z))), paired as
    :func:`relativistic_d`. Unlike the other generator losses it reads real logits too."""
    return _mean(F.softplus(real - fake))


def _sq_dists(x: Tensor, y: Tensor) -> Tensor:
    """(S, M, N) squared distances ‖x‖² + ‖y‖² − 2x·y (no sqrt: smooth at 0). Not clamped:
    rounding may leave them slightly below 0, which ``_KernelSum`` treats as 0."""
    xx = x.square().sum(-1)
    yy = y.square().sum(-1)
    return torch.baddbmm(xx[:, :, None] + yy[:, None, :], x, y.transpose(1, 2), alpha=-2.0)


def _exp_floor(dtype: torch.dtype) -> float:
    """Lowest exponent passed to ``exp``: one above log of the dtype's smallest normal.

    CPU ``exp`` is about 200x slower on arguments whose result is subnormal or zero (below
    −87.3 in float32, −708.4 in float64), which the narrow bandwidths hit for almost every
    pair. Clamping there changes each such kernel value by less than e^floor (3e-38 in
    float32, 6e-308 in float64) instead of an underflow to (near) zero, far below the
    rounding of any sum it joins.
    """
    return math.log(torch.finfo(dtype).tiny) + 1.0


class _KernelSum(torch.autograd.Function):
    """(S,) ``Σ_ij Σ_σ exp(c_σ max(d²_ij, 0))`` of (S, M, N) squared distances,
    c_σ = −1/(2σ²), optionally without the diagonal i = j; each exponent clamped at
    ``_exp_floor``.

    The clamp at 0 (matrix-product distances round below it for near-coincident points) has
    ``clamp_min``'s gradient: none where d² < 0. One pass per bandwidth keeps the kernel
    values' derivative ``Σ_σ c_σ exp(c_σ d²)`` in one (S, M, N) tensor for the backward,
    instead of autograd's eight saved exponentials and their separate products and sums.
    """

    @staticmethod
    def forward(ctx, d2: Tensor, coefs: tuple[float, ...], no_diagonal: bool) -> Tensor:
        floor = _exp_floor(d2.dtype)
        e = torch.empty_like(d2)
        grad = torch.zeros_like(d2) if ctx.needs_input_grad[0] else None
        total = d2.new_zeros(d2.shape[0])
        for c in coefs:
            torch.mul(d2, c, out=e).clamp_(floor, 0.0).exp_()
            if no_diagonal:
                e.diagonal(dim1=1, dim2=2).zero_()
            total += e.sum((1, 2))
            if grad is not None:
                grad.add_(e, alpha=c)
        if grad is not None:
            grad.masked_fill_(d2 < 0, 0.0)
        ctx.save_for_backward(grad)
        return total

    @staticmethod
    @once_differentiable
    def backward(ctx, g: Tensor) -> tuple[Tensor | None, None, None]:
        (grad,) = ctx.saved_tensors
        return (None if grad is None else grad * g[:, None, None]), None, None


def _kernel_sum(d2: Tensor, bandwidths: Sequence[float], *, no_diagonal: bool) -> Tensor:
    """(S,) sum over the pairs (diagonal left out when ``no_diagonal``) of
    ``Σ_σ exp(−d² / (2σ²))``."""
    return _KernelSum.apply(d2, tuple(-0.5 / (s * s) for s in bandwidths), no_diagonal)


def mmd2_rbf(*, fake: Tensor, real: Tensor, bandwidths: Sequence[float]) -> Tensor:
    """Unbiased MMD² per seed with a mixture of RBF kernels (Gretton et al. 2012, eq. 3).

    ``k(x, y) = Σ_σ exp(−‖x − y‖² / (2σ²))`` and, with X = ``fake`` (M draws) and
    Y = ``real`` (N draws) of one seed,
    ``MMD²_u = Σ_{i≠j} k(xᵢ, xⱼ) / (M(M−1)) + Σ_{i≠j} k(yᵢ, yⱼ) / (N(N−1))
    − 2 Σ_{i,j} k(xᵢ, yⱼ) / (MN)``. Diagonal terms are left out, so the estimate is
    unbiased and can be slightly negative. Squared distances come from batched matrix
    products with no square root, so the value and its gradient are finite when two
    points coincide. Each seed's value depends on its own samples alone.

    Args:
        fake: (S, M, D) generated samples, M >= 2.
        real: (S, N, D) real samples, N >= 2.
        bandwidths: the kernel widths σ, in the units of the data.

    Returns:
        (S,) MMD² estimate per seed, differentiable w.r.t. ``fake`` and ``real``.

    Raises:
        ValueError: if a sample has fewer than 2 points, the seed axes differ, or
            ``bandwidths`` is empty.

    Example:
        Two independent samples of one distribution give values scattered around 0.
        Two point masses far apart (distance ≫ max σ) give the maximum, 2 · len(bandwidths):
        each within-sample kernel is len(bandwidths) and the cross kernel vanishes.
    """
    S, M, _ = fake.shape
    _, N, _ = real.shape
    if real.shape[0] != S or real.shape[2] != fake.shape[2]:
        raise ValueError(f"fake {tuple(fake.shape)} and real {tuple(real.shape)} do not match")
    if M < 2 or N < 2:
        raise ValueError(f"the unbiased MMD² needs at least 2 points per sample; got {M}, {N}")
    if not bandwidths:
        raise ValueError("bandwidths is empty")
    # Zeroing the diagonal's kernel values (rather than subtracting the trace) drops it
    # exactly, whatever rounding the matrix-product distances leave there.
    xx = _kernel_sum(_sq_dists(fake, fake), bandwidths, no_diagonal=True) / (M * (M - 1))
    yy = _kernel_sum(_sq_dists(real, real), bandwidths, no_diagonal=True) / (N * (N - 1))
    xy = _kernel_sum(_sq_dists(fake, real), bandwidths, no_diagonal=False) / (M * N)
    return xx + yy - 2.0 * xy


def energy_margin_d(*, real: Tensor, fake: Tensor, margin: float) -> Tensor:
    """EBGAN discriminator loss on energies: D(x) + [m − D(G(z))]⁺ (Zhao et al. 2017, eq. 1).

    ``real`` and ``fake`` are energies (S, B, 1), not logits: low on data, pushed up to
    the margin ``m`` on generated samples, and no further.
    """
    return _mean(real) + _mean(F.relu(margin - fake))


def energy_g(*, fake: Tensor) -> Tensor:
    """EBGAN generator loss on energies: D(G(z)) (Zhao et al. 2017, eq. 2)."""
    return _mean(fake)
