"""Variants that learn an inverse map and judge (x, z) pairs: BiGAN/ALI, BiGAN with the
pairwise gradient penalty, and VEEGAN.

All three add one seed-batched network from data to latent space (BiGAN's encoder E,
VEEGAN's reconstructor F), a :class:`~modecov.nets.StackedMLP` of the shared shape, and a
discriminator on the concatenated pair ``(x, z)`` (input width D + Z). Their update rules
differ from the standard step, so each supplies its own ``step``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from modecov import losses
from modecov.nets import StackedMLP
from modecov.variants.base import Variant

if TYPE_CHECKING:
    from modecov.train import TrainState

PGP_WEIGHT = 0.1
"""λ of the pairwise gradient penalty (Sharma & Namboodiri 2018)."""


def _mlp(st: TrainState, n_in: int, n_out: int, generators) -> StackedMLP:
    """A StackedMLP of the shared hidden shape from ``n_in`` to ``n_out`` units."""
    hidden = [st.cfg.hidden] * st.cfg.depth
    return StackedMLP([n_in, *hidden, n_out], generators, dtype=st.dtype, device=st.device)


def pair_critic(st: TrainState) -> StackedMLP:
    """The joint discriminator on ``cat(x, z)``: D + Z inputs, one logit."""
    return _mlp(st, st.data.dim + st.cfg.z_dim, 1, st.generators)


def encoder(st: TrainState, generators) -> dict[str, StackedMLP]:
    """The inverse network, data (D) to latent (Z): BiGAN's E, VEEGAN's F."""
    return {"E": _mlp(st, st.data.dim, st.cfg.z_dim, generators)}


def _pairs(x: Tensor, z: Tensor) -> Tensor:
    """(S, B, D + Z) concatenated pairs."""
    return torch.cat((x, z), dim=-1)


def pairwise_gradient_penalty(st: TrainState, *, real: Tensor, code: Tensor) -> Tensor:
    """``‖∇ₓ D(x̂, E(x)) − u‖²`` at ``x̂ = εx + (1 − ε)G(E(x))``, batch mean per seed.

    ``u = (x − G(E(x))) / ‖x − G(E(x))‖`` is the unit vector from the reconstruction to
    the data point: the penalty pulls the discriminator's input gradient on the segment
    between them towards it, so D's slope points G(E(x)) back at x (Sharma & Namboodiri
    2018). The code is held at E(x) along the segment (x and its reconstruction share it),
    ``ε ~ U[0, 1]`` is drawn per sample from each seed's own stream, and only the
    discriminator is trained by the penalty (E and G enter detached).

    Args:
        st: the group's TrainState (``D``, ``G``, ``generators``).
        real: (S, B, D) data batch.
        code: (S, B, Z) its codes E(x) (detached).

    Returns:
        (S,) penalty, differentiable w.r.t. D's parameters.
    """
    S, B, _ = real.shape
    with torch.no_grad():
        recon = st.G(code)
    eps = torch.stack([torch.rand(B, 1, generator=g, dtype=real.dtype) for g in st.generators]).to(
        real.device
    )
    x_hat = (eps * real + (1.0 - eps) * recon).requires_grad_(True)
    (grad,) = torch.autograd.grad(st.D(_pairs(x_hat, code)).sum(), x_hat, create_graph=True)
    gap = real - recon
    unit = gap / gap.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return (grad - unit).square().sum(dim=-1).mean(dim=1)


def _bigan_step(st: TrainState, *, pgp: bool) -> dict[str, Tensor]:
    """One discriminator update on (x, E(x)) against (G(z), z), then one joint update of
    G and E on the flipped labels (the non-saturating form of BiGAN's minimax game)."""
    E = st.nets["E"]
    real, z = st.real(), st.noise()
    fake, code = st.G(z), E(real)
    both = torch.cat((_pairs(real, code.detach()), _pairs(fake.detach(), z)), dim=1)
    d_real, d_fake = st.D(both).chunk(2, dim=1)
    loss_d = losses.bce_d(real=d_real, fake=d_fake)
    if pgp:
        loss_d = loss_d + PGP_WEIGHT * pairwise_gradient_penalty(st, real=real, code=code.detach())
    st.update("D", loss_d)
    d_real, d_fake = st.D(torch.cat((_pairs(real, code), _pairs(fake, z)), dim=1)).chunk(2, 1)
    loss_ge = losses.bce_d(real=d_fake, fake=d_real)
    st.update(("G", "E"), loss_ge)
    return {"loss_d": loss_d.detach(), "loss_g": loss_ge.detach()}


def bigan_step(st: TrainState) -> dict[str, Tensor]:
    """BiGAN/ALI update (see :func:`_bigan_step`)."""
    return _bigan_step(st, pgp=False)


def bigan_pgp_step(st: TrainState) -> dict[str, Tensor]:
    """BiGAN update with the pairwise gradient penalty on the discriminator."""
    return _bigan_step(st, pgp=True)


def veegan_step(st: TrainState) -> dict[str, Tensor]:
    """One VEEGAN update (Srivastava et al. 2017).

    The discriminator tells generator pairs (z, G(z)) (label 1) from reconstructor pairs
    (F(x), x) (label 0). Its logit on a generator pair estimates the log density ratio
    of VEEGAN's bound, so G and F jointly minimise
    ``mean D(z, G(z)) + mean ‖z − F(G(z))‖²``: the pair term moves G's joint towards the
    data's, the ℓ2 term makes F invert G, so two latent regions mapped onto one mode
    cannot both be reconstructed, which is what penalises collapse.
    """
    F = st.nets["E"]
    real, z = st.real(), st.noise()
    fake = st.G(z)
    with torch.no_grad():
        code = F(real)
    both = torch.cat((_pairs(fake.detach(), z), _pairs(real, code)), dim=1)
    d_gen, d_data = st.D(both).chunk(2, dim=1)
    loss_d = losses.bce_d(real=d_gen, fake=d_data)
    st.update("D", loss_d)
    logit = st.D(_pairs(fake, z)).squeeze(-1).mean(dim=1)
    recon = (z - F(fake)).square().sum(dim=-1).mean(dim=1)
    loss_gf = logit + recon
    st.update(("G", "E"), loss_gf)
    return {"loss_d": loss_d.detach(), "loss_g": loss_gf.detach(), "recon": recon.detach()}


BIGAN = Variant(
    name="bigan",
    label="BiGAN",
    reference="donahue2017adversarial",
    make_d=pair_critic,
    extra_nets=encoder,
    step=bigan_step,
    relative_cost=1.65,
)
"""Deterministic encoder, shared Adam (lr 1e-4, betas (0.5, 0.999)); ALI
(Dumoulin et al. 2017) is the same game with a stochastic encoder."""

BIGAN_PGP = Variant(
    name="bigan_pgp",
    label="BiGAN-PGP",
    reference="sharma2018no",
    make_d=pair_critic,
    extra_nets=encoder,
    step=bigan_pgp_step,
    relative_cost=2.5,
)

VEEGAN = Variant(
    name="veegan",
    label="VEEGAN",
    reference="srivastava2017veegan",
    make_d=pair_critic,
    extra_nets=encoder,
    step=veegan_step,
    relative_cost=1.6,
)
"""Deterministic reconstructor F (registered as net ``E``), shared Adam: the paper's toy
experiments use the same generator for every method, and so does modecov."""
