"""RpGAN + R1 + R2 (Huang et al. 2024): the relativistic pairing loss with zero-centred
gradient penalties on real and generated data, the objective of R3GAN."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from modecov import losses, penalties
from modecov.steps import discriminator_updates
from modecov.variants.base import Variant

if TYPE_CHECKING:
    from modecov.state import StepState

GAMMA = 1.0
"""γ of the R1 and R2 penalties, weighted γ / 2 (DESIGN: 1; R3GAN's presets schedule γ per
dataset, from 0.05 to 150, with a cosine decay to a tenth)."""


def rpgan_step(st: StepState) -> dict[str, Tensor]:
    """One RpGAN update, as the authors' code (brownvc/R3GAN, ``R3GAN/Trainer.py``).

    ``AccumulateDiscriminatorGradients``: ``softplus(-(RealLogits - FakeLogits)) +
    (Gamma / 2) * (R1Penalty + R2Penalty)`` per sample, batch mean, real sample i paired
    with fake sample i; here the shared discriminator update with
    :func:`~modecov.losses.relativistic_d` and :func:`~modecov.penalties.r1_r2_penalty`
    weighted γ / 2. ``AccumulateGeneratorGradients``: ``softplus(-(FakeLogits -
    RealLogits))``, batch mean, with D's logits on real data (no gradient to G from them).

    The generator update reuses the discriminator update's fake batch, as every modecov
    variant does, and its real batch, paired as in D's loss, judged by the updated D. The
    authors' loop draws a new real and latent batch for the G phase; either is an unbiased
    estimate of the same gradient.
    """
    v = st.variant
    real, _, fake, loss_d = discriminator_updates(st)
    with torch.no_grad():
        d_real = st.critic(real)
    loss_g = v.g_loss(real=d_real, fake=st.critic(fake))
    st.update("G", loss_g)
    return {"loss_d": loss_d, "loss_g": loss_g.detach()}


RPGAN = Variant(
    name="rpgan",
    label="RpGAN + R1 + R2",
    reference="huang2024gan",
    d_loss=losses.relativistic_d,
    g_loss=losses.relativistic_g,
    penalty=penalties.r1_r2_penalty,
    penalty_weight=GAMMA / 2,
    step=rpgan_step,
    relative_cost=1.7,
    version=2,
)
"""Keeps the shared Adam: the paper's optimiser (Adam β1 = 0, lr and β2 scheduled) belongs
to its image architectures, and it has no toy settings."""
