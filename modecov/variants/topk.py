"""Top-k training (Sinha et al. 2020): NS-GAN whose generator update keeps only the k fakes
of its batch that the discriminator scores highest, k shrinking during training."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from modecov import losses
from modecov.steps import discriminator_updates
from modecov.variants.base import Variant

if TYPE_CHECKING:
    from modecov.state import StepState

DECAY = 0.99
"""Factor by which the kept fraction shrinks per period (the paper's γ)."""

PERIOD = 100
"""Generator steps per decay (DESIGN); the paper decays per epoch, which toy sampling lacks."""

MIN_FRACTION = 0.5
"""Smallest kept fraction of the batch (the paper's ν)."""


def top_k(step: int, batch: int) -> int:
    """Fakes kept at generator step ``step`` (1-based) of a batch of ``batch``.

    ``int(batch · max(DECAY ** ((step − 1) // PERIOD), MIN_FRACTION))``, at least 1: the whole
    batch for steps 1–100, 0.99 of it for 101–200, and so on down to half of it (step 6,901
    on; at the default 5,000 steps k ends at 156 of 256). Computed from the Python step
    counter, so choosing k never waits on the device.
    """
    periods = max(step - 1, 0) // PERIOD
    return max(int(batch * max(DECAY**periods, MIN_FRACTION)), 1)


def topk_step(st: StepState) -> dict[str, Tensor]:
    """``n_critic`` discriminator updates, then one generator update on the non-saturating
    loss of the ``top_k(st.step, B)`` fakes D scores highest, per seed.

    ``torch.topk`` along each seed's batch keeps the k largest logits; the others get no
    gradient, which is the paper's "zero out the gradient contributions" of the least
    realistic samples. The batch mean runs over the k kept.
    """
    v = st.variant
    _, _, fake, loss_d = discriminator_updates(st)
    logits = st.critic(fake)
    kept = torch.topk(logits, top_k(st.step, logits.shape[1]), dim=1).values
    loss_g = v.g_loss(fake=kept)
    st.update("G", loss_g)
    return {"loss_d": loss_d, "loss_g": loss_g.detach()}


TOPK = Variant(
    name="topk",
    label="Top-k GAN",
    reference="sinha2020topk",
    d_loss=losses.bce_d,
    g_loss=losses.nonsaturating_g,
    step=topk_step,
    relative_cost=1.0,
)
"""Keeps the shared Adam: the method changes only which fakes the generator step uses."""
