"""The VARIANTS registry (GAN variants) and REFERENCES (calibration samplers)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from modecov import losses, penalties
from modecov.optim import Adam, RMSprop
from modecov.variants.base import Variant
from modecov.variants.bigan import BIGAN, BIGAN_PGP, VEEGAN
from modecov.variants.ebgan import EBGAN, EBGAN_PT
from modecov.variants.gdpp import GDPP
from modecov.variants.gmmn import GMMN
from modecov.variants.mbd import MBD
from modecov.variants.reference import ONE_MODE, TRUE_SAMPLER
from modecov.variants.rpgan import RPGAN
from modecov.variants.sngan import SNGAN
from modecov.variants.topk import TOPK
from modecov.variants.unrolled import UNROLLED

GAN = Variant(
    name="gan",
    label="GAN",
    version=2,  # v2: groups of v1 (29b536b, 73bae40) do not re-run bitwise
    reference="goodfellow2014generative",
    d_loss=losses.bce_d,
    g_loss=losses.minimax_g,
)

NSGAN = Variant(
    name="nsgan",
    label="NS-GAN",
    version=2,  # v2: groups of v1 (29b536b, 73bae40) do not re-run bitwise
    reference="goodfellow2014generative",
    d_loss=losses.bce_d,
    g_loss=losses.nonsaturating_g,
)

LSGAN = Variant(
    name="lsgan",
    label="LSGAN",
    version=2,  # v2: groups of v1 (29b536b, 73bae40) do not re-run bitwise
    reference="mao2017least",
    d_loss=losses.least_squares_d,
    g_loss=losses.least_squares_g,
)

HINGE = Variant(
    name="hinge",
    label="Hinge GAN",
    version=2,  # v2: groups of v1 (29b536b, 73bae40) do not re-run bitwise
    reference="lim2017geometric",
    d_loss=losses.hinge_d,
    g_loss=losses.hinge_g,
)

WGAN = Variant(
    name="wgan",
    label="WGAN",
    version=2,  # v2: groups of v1 (29b536b, 73bae40) do not re-run bitwise
    reference="arjovsky2017wasserstein",
    relative_cost=3.3,
    d_loss=losses.wasserstein_d,
    g_loss=losses.wasserstein_g,
    clip=0.01,
    n_critic=5,
    optimizer=RMSprop(lr=5e-5),
)

WGAN_GP = Variant(
    name="wgan_gp",
    # v2: the penalty's input gradient without autograd's graph through D's forward pass
    # (the same values; the weights' gradients round differently)
    version=2,
    label="WGAN-GP",
    reference="gulrajani2017improved",
    relative_cost=4.8,
    d_loss=losses.wasserstein_d,
    g_loss=losses.wasserstein_g,
    penalty=penalties.gradient_penalty,
    penalty_weight=10.0,
    n_critic=5,
    optimizer=Adam(lr=1e-4, betas=(0.5, 0.9)),
)

R1 = Variant(
    name="r1",
    # v2: the penalty's input gradient without autograd's graph through D's forward pass
    # (the same values; the weights' gradients round differently)
    version=2,
    label="R1",
    reference="mescheder2018which",
    relative_cost=1.3,
    d_loss=losses.bce_d,
    g_loss=losses.nonsaturating_g,
    penalty=penalties.r1_penalty,
    penalty_weight=0.5,  # gamma / 2 with gamma = 1
)

PACGAN2 = Variant(
    name="pacgan2",
    version=2,  # v2: a batch is B packs (v1 held B samples, so D saw B / m inputs)
    label="PacGAN2",
    reference="lin2018pacgan",
    relative_cost=1.2,
    d_loss=losses.bce_d,
    g_loss=losses.nonsaturating_g,
    pack=2,
)
"""D judges packs of m = 2 samples, as in the authors' toy code (fjxmlzn/PacGAN, under
``synthetic_data_experiments/``: ``2DRing_GAN&PacGAN/pacgan_task.py``,
``PacGAN/pacgan/bricks.py``, ``PacGAN/pacgan/datasets.py``). A batch is B packs: each real
pack is m independent draws (``GaussianPackingMixture`` puts m resampled copies side by side),
G draws m latent batches of B, and only D's first layer widens (input
``num_xdim * num_packing``, hidden sizes fixed), as the shared D here takes m · D inputs.
Their G loss, softplus(D(x)) + softplus(−D(G(z))), has the non-saturating gradient."""

PACGAN4 = Variant(
    name="pacgan4",
    version=2,  # v2: a batch is B packs (v1 held B samples, so D saw B / m inputs)
    label="PacGAN4",
    reference="lin2018pacgan",
    relative_cost=1.6,
    d_loss=losses.bce_d,
    g_loss=losses.nonsaturating_g,
    pack=4,
)
"""PacGAN2 with packs of m = 4 samples."""

MSGAN = Variant(
    name="msgan",
    label="MSGAN",
    version=2,  # v2: groups of v1 (29b536b, 73bae40) do not re-run bitwise
    reference="mao2019mode",
    d_loss=losses.bce_d,
    g_loss=losses.nonsaturating_g,
    g_regularizer=penalties.mode_seeking,
    g_regularizer_weight=1.0,
)

DRAGAN = Variant(
    name="dragan",
    # v2: the penalty's input gradient without autograd's graph through D's forward pass
    # (the same values; the weights' gradients round differently)
    version=2,
    label="DRAGAN",
    reference="kodali2017convergence",
    relative_cost=1.35,
    d_loss=losses.bce_d,
    g_loss=losses.nonsaturating_g,
    penalty=penalties.dragan_penalty,
    penalty_weight=10.0,
)
"""NS-GAN + DRAGAN's penalty around real data (``penalties.dragan_points``), λ = 10, as the
authors' code (kodalinaveen3/DRAGAN, ``DRAGAN.ipynb``: ``lambd = 10``, BCE losses). Keeps the
shared Adam; that notebook (MNIST) uses Adam lr 1e-4, betas (0.5, 0.9)."""

VARIANTS: Mapping[str, Variant] = MappingProxyType(
    {
        v.name: v
        for v in (
            GAN,
            NSGAN,
            LSGAN,
            HINGE,
            WGAN,
            WGAN_GP,
            R1,
            PACGAN2,
            PACGAN4,
            MSGAN,
            GMMN,
            UNROLLED,
            BIGAN,
            BIGAN_PGP,
            VEEGAN,
            EBGAN,
            EBGAN_PT,
            MBD,
            SNGAN,
            RPGAN,
            GDPP,
            TOPK,
            DRAGAN,
        )
    }
)
REFERENCES: Mapping[str, Variant] = MappingProxyType({v.name: v for v in (TRUE_SAMPLER, ONE_MODE)})
"""Samplers scored by the same code as the variants, so every table calibrates itself."""

__all__ = ["REFERENCES", "VARIANTS", "Variant"]
