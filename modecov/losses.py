"""Pure GAN loss functions: discriminator logits in, one loss per seed (S,) out.

Logits have shape (S, B, 1); each loss is the mean over the batch, so summing the
result over seeds gives every seed the gradient of its own independent run.
"""

from __future__ import annotations

from torch import Tensor
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
