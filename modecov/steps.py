"""Update rules shared by variants: the discriminator steps and the standard GAN step.

Kept apart from ``train.py`` so that variant modules can build on them without importing
the trainer (which imports the registries).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import torch
from torch import Tensor

if TYPE_CHECKING:
    from modecov.state import StepState


class DiscriminatorBatch(NamedTuple):
    """The last discriminator update's batches, for the generator step to reuse."""

    real: Tensor
    """(S, B · m, D) real samples."""
    z: Tensor
    """(S, B · m, Z) noise."""
    fake: Tensor
    """(S, B · m, D) generated samples, attached to G's graph."""
    loss_d: Tensor
    """(S,) discriminator loss (detached)."""


def discriminator_updates(st: StepState) -> DiscriminatorBatch:
    """The variant's ``n_critic`` discriminator updates (loss, penalty, clipping).

    Each update draws B · m real and B · m fake samples (m = ``pack``, 1 unless packed), so
    the discriminator judges B real and B fake inputs, packed or not.

    Returns:
        The last update's real batch, noise, fake batch (attached to G's graph) and loss.
    """
    v = st.variant
    for _ in range(v.n_critic):
        real, z = st.real(), st.noise()
        fake = st.G(z)
        # One discriminator pass over real and fake together: larger, faster matmuls.
        d_real, d_fake = st.critic(torch.cat((real, fake.detach()), dim=1)).chunk(2, dim=1)
        loss_d = v.d_loss(real=d_real, fake=d_fake)
        if v.penalty is not None:
            loss_d = loss_d + v.penalty_weight * v.penalty(st, real=real, fake=fake.detach())
        st.update("D", loss_d)
        if v.clip is not None:
            with torch.no_grad():
                st.D.params.clamp_(-v.clip, v.clip)
    return DiscriminatorBatch(real, z, fake, loss_d.detach())


def standard_step(st: StepState) -> dict[str, Tensor]:
    """``n_critic`` discriminator updates, then one generator update on the last fake batch."""
    v = st.variant
    _, z, fake, loss_d = discriminator_updates(st)
    loss_g = v.g_loss(fake=st.critic(fake))
    if v.g_regularizer is not None:
        loss_g = loss_g + v.g_regularizer_weight * v.g_regularizer(st, z=z, fake=fake)
    st.update("G", loss_g)
    return {"loss_d": loss_d, "loss_g": loss_g.detach()}


__all__ = ["DiscriminatorBatch", "discriminator_updates", "standard_step"]
