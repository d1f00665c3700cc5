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
