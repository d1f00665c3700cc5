"""Variants that learn an inverse map and judge (x, z) pairs: BiGAN/ALI, BiGAN with the
pairwise gradient penalty, and VEEGAN.

All three add one seed-batched network from data to latent space (BiGAN's encoder E,
VEEGAN's reconstructor F), a :class:`~modecov.nets.StackedMLP` of the shared shape, and a
discriminator on the concatenated pair ``(x, z)`` (input width D + Z). Their update rules
differ from the standard step, so each supplies its own ``step``. BiGAN-PGP and VEEGAN
follow their authors' code (cited in each step's docstring), not only the papers' equations.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from modecov import losses
from modecov.nets import StackedMLP, input_gradient
from modecov.variants.base import Variant

if TYPE_CHECKING:
    from modecov.state import StepState

PGP_WEIGHT = 0.1
"""λ of the pairwise gradient penalty (Sharma & Namboodiri 2018): ``gp_lambda`` in the
authors' toy config (shashank879/logan, ``visual_train.py``)."""


def _mlp(st: StepState, n_in: int, n_out: int, generators) -> StackedMLP:
    """A StackedMLP of the shared hidden shape from ``n_in`` to ``n_out`` units."""
    hidden = [st.cfg.hidden] * st.cfg.depth
    return StackedMLP([n_in, *hidden, n_out], generators, dtype=st.dtype, device=st.device)


def pair_critic(st: StepState) -> StackedMLP:
    """The joint discriminator on ``cat(x, z)``: D + Z inputs, one logit."""
    return _mlp(st, st.data.dim + st.cfg.z_dim, 1, st.generators)


def encoder(st: StepState, generators) -> dict[str, StackedMLP]:
    """The inverse network, data (D) to latent (Z): BiGAN's E, VEEGAN's F."""
    return {"E": _mlp(st, st.data.dim, st.cfg.z_dim, generators)}


def _pairs(x: Tensor, z: Tensor) -> Tensor:
    """(S, B, D + Z) concatenated pairs."""
    return torch.cat((x, z), dim=-1)


def pairwise_gradient_penalty(st: StepState, *, real: Tensor, code: Tensor) -> Tensor:
    """``‖∇ₓ D(x̂, E(x)) − u‖₂`` (the norm, not its square) at ``x̂ = εx + (1 − ε)G(E(x))``,
    batch mean per seed.

    ``u = (x − G(E(x))) / ‖x − G(E(x))‖`` is the unit vector from the reconstruction to
    the data point: the penalty pulls the discriminator's input gradient on the segment
    between them towards it, so D's slope points G(E(x)) back at x (Sharma & Namboodiri
    2018). The code is held at E(x) along the segment (x and its reconstruction share it),
    ``ε ~ U[0, 1]`` is drawn per sample from each seed's own stream, and only the
    discriminator is trained by the penalty (E and G enter detached).

    As the authors' code (shashank879/logan, ``image_models.py``,
    ``BIGAN._gradient_penalty``, inherited by the toy model ``vizBIGAN``):
    ``x_pen = sqrt(sum((x_grads − x_unit)²))``, ``gp_loss = mean(x_pen)``; its latent-side
    term ``gp_loss_z`` is computed but left out of the loss there, and here.

    Args:
        st: the group's StepState (``D``, ``G``, ``streams``).
        real: (S, B, D) data batch.
        code: (S, B, Z) its codes E(x) (detached).

    Returns:
        (S,) penalty, differentiable w.r.t. D's parameters.
    """
    S, B, _ = real.shape
    with torch.no_grad():
        recon = st.G(code)
    eps = torch.stack(
        [torch.rand(B, 1, generator=g, dtype=real.dtype, device=g.device) for g in st.streams]
    )
    x_hat = eps * real + (1.0 - eps) * recon
    # The pair critic's input gradient (differentiable w.r.t. D), x's part.
    grad = input_gradient(st.D, _pairs(x_hat, code))[..., : real.shape[-1]]
    gap = real - recon
    unit = gap / gap.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return (grad - unit).norm(dim=-1).mean(dim=1)


def _bigan_step(st: StepState, *, pgp: bool) -> dict[str, Tensor]:
    """One discriminator update on (x, E(x)) (label 1) against (G(z), z) (label 0), then one
    joint update of G and E: on the flipped labels for BiGAN (the non-saturating form of its
    minimax game); on ``mean D(x, E(x)) − mean D(G(z), z)`` (logits) with the pairwise
    gradient penalty on D for BiGAN-PGP."""
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
    if pgp:
        loss_ge = d_real.flatten(1).mean(dim=1) - d_fake.flatten(1).mean(dim=1)
    else:
        loss_ge = losses.bce_d(real=d_fake, fake=d_real)
    st.update(("G", "E"), loss_ge)
    return {"loss_d": loss_d.detach(), "loss_g": loss_ge.detach()}


def bigan_step(st: StepState) -> dict[str, Tensor]:
    """BiGAN/ALI update (see :func:`_bigan_step`)."""
    return _bigan_step(st, pgp=False)


def bigan_pgp_step(st: StepState) -> dict[str, Tensor]:
    """BiGAN-PGP update (Sharma & Namboodiri 2018), as the authors' toy code.

    shashank879/logan, ``image_models.py`` (class ``BIGAN``, used by the toy model
    ``vizBIGAN`` in ``visual_models.py``; config in ``visual_train.py``: ``loss='lol1'``,
    ``grad_pen=True``, ``gp_lambda=.1``). With ``D = D(X, E(X))`` and ``D_ = D(G(Z), Z)``
    (logits), ``lol1`` gives ``d_loss = mean(BCE(D, 1) + BCE(D_, 0)) + 0.1 · gp_loss`` and
    ``g_loss = mean(D − D_)``, which G and E both minimise (``e_total_loss = [g_loss]``).
    One D update, then one G and E update on the same batch; minimising the logit gap
    pushes the generator pair's logit up and the encoder pair's down.
    """
    return _bigan_step(st, pgp=True)


def veegan_step(st: StepState) -> dict[str, Tensor]:
    """One VEEGAN update (Srivastava et al. 2017), as the authors' code.

    The reconstructor F gives the mean of a unit-variance Gaussian p(z | x) = N(F(x), I).
    The discriminator tells generator pairs (z, G(z)) (label 1) from data pairs (z̃, x)
    with z̃ ~ N(F(x), I) (label 0). Its logit on a generator pair estimates the log
    density ratio of VEEGAN's bound, so G and F jointly minimise
    ``mean D(z, G(z)) + mean ½‖z − F(G(z))‖²``, the second term being the Gaussian
    negative log-likelihood −log N(z; F(G(z)), I) less its constant. The pair term moves
    G's joint towards the data's (it does not depend on F); the likelihood term makes F
    invert G, so two latent regions mapped onto one mode cannot both be reconstructed,
    which is what penalises collapse.

    akashgit/VEEGAN, ``VEEGAN_2D_RING.ipynb``, whose names run the other way:
    ``inference_network`` is the generator (noise ``x`` to samples ``q_z``) and
    ``generative_network`` the reconstructor (data ``p_z`` to ``p_x = Normal(F(p_z), 1)``).
    ``log_d_prior = D(p_x.sample(), p_z)`` is the data pair, ``log_d_posterior = D(x, q_z)``
    the generator pair (logits); ``disc_loss = mean(BCE(log_d_posterior, 1) +
    BCE(log_d_prior, 0))``; ``gen_loss = mean(log_d_posterior) − mean(sum p_x.log_prob(x)
    with p_z replaced by q_z)``, minimised over the generator's and the reconstructor's
    variables together. The draw z̃ − F(x) ~ N(0, I) comes from each seed's own stream.
    """
    F = st.nets["E"]
    real, z = st.real(), st.noise()
    fake = st.G(z)
    with torch.no_grad():
        # The unit-variance noise of z̃ has the latent's shape: one more standard normal
        # draw from each seed's stream.
        code = F(real) + st.noise()
    both = torch.cat((_pairs(fake.detach(), z), _pairs(real, code)), dim=1)
    d_gen, d_data = st.D(both).chunk(2, dim=1)
    loss_d = losses.bce_d(real=d_gen, fake=d_data)
    st.update("D", loss_d)
    logit = st.D(_pairs(fake, z)).squeeze(-1).mean(dim=1)
    recon = 0.5 * (z - F(fake)).square().sum(dim=-1).mean(dim=1)
    loss_gf = logit + recon
    st.update(("G", "E"), loss_gf)
    return {"loss_d": loss_d.detach(), "loss_g": loss_gf.detach(), "recon": recon.detach()}


BIGAN = Variant(
    name="bigan",
    label="BiGAN",
    version=2,  # v2: groups of v1 (29b536b, 73bae40) do not re-run bitwise
    reference="donahue2017adversarial",
    make_d=pair_critic,
    extra_nets=encoder,
    step=bigan_step,
    relative_cost=1.4,
    landscape=False,  # D judges (x, z) pairs: a sample alone has no score
)
"""Deterministic encoder, shared Adam (lr 1e-4, betas (0.5, 0.999)); ALI
(Dumoulin et al. 2017) is the same game with a stochastic encoder."""

BIGAN_PGP = Variant(
    name="bigan_pgp",
    # v2: G/E on the logit gap, penalty the norm (v1: flipped BCE, squared norm); v3: the
    # penalty's input gradient without autograd's graph through D's forward (rounding only)
    version=3,
    label="BiGAN-PGP",
    reference="sharma2018no",
    make_d=pair_critic,
    extra_nets=encoder,
    step=bigan_pgp_step,
    relative_cost=1.8,
    landscape=False,  # D judges (x, z) pairs: a sample alone has no score
)
"""Shared Adam (lr 1e-4, betas (0.5, 0.999)); the authors' toy config uses Adam lr 1e-4,
betas (0.5, 0.9) and uniform latents."""

VEEGAN = Variant(
    name="veegan",
    version=2,  # v2: z̃ ~ N(F(x), I) in D's data pair, ½‖z − F(G(z))‖² (v1: F(x), weight 1)
    label="VEEGAN",
    reference="srivastava2017veegan",
    make_d=pair_critic,
    extra_nets=encoder,
    step=veegan_step,
    relative_cost=1.35,
    landscape=False,  # D judges (x, z) pairs: a sample alone has no score
)
"""Reconstructor F (registered as net ``E``) giving the mean of N(F(x), I); shared Adam
(the authors' notebook uses Adam lr 1e-3, β1 0.5): the paper's toy experiments use the same
generator for every method, and so does modecov."""
