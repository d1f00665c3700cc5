"""GDPP (Elfeki et al. 2019): NS-GAN whose generator also matches the eigenvalues and
eigenvectors of a determinantal-point-process kernel of the discriminator's last hidden
features on a fake batch to those on a real batch (:func:`gdpp_loss`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable
from torch.nn import functional as F

from modecov import losses
from modecov.steps import discriminator_updates
from modecov.variants.base import Variant

if TYPE_CHECKING:
    from modecov.state import StepState

GDPP_WEIGHT = 1.0
"""Weight of the GDPP loss in the generator loss (the authors' toy code: equal to the
adversarial loss's)."""

EIGENVALUE_WEIGHT = 1e-4
"""Weight of the magnitude (eigenvalue) term inside the GDPP loss (``eig_vals_loss_weight``)."""


RCOND = 1e-6
"""Eigenvalues of the kernel below ``RCOND`` times the largest (or below rounding, n · ε
times it, when that is larger) count as zero: their eigenvectors, and the rotation between
eigenvalues closer than that, are rounding noise amplified by up to 1 / gap. The
threshold makes the loss a stable function of the features. Measured on ring8 (float64,
batch 64, width 32, 200 steps), G's weights of seeds trained together drift from separate
runs (BLAS rounding differs with the number of seeds) by up to 1e-7 with n · ε alone, by
2e-13 with 1e-6, by 1e-16 for NS-GAN."""


def _tolerance(eigenvalues: Tensor) -> Tensor:
    """(..., 1) level below which an n × n kernel's (..., n) eigenvalues count as zero:
    max(RCOND, n · ε) · max |λ| (never 0)."""
    n = eigenvalues.shape[-1]
    scale = eigenvalues.abs().amax(dim=-1, keepdim=True)
    rel = max(RCOND, n * torch.finfo(eigenvalues.dtype).eps)
    return (scale * rel).clamp_min(torch.finfo(eigenvalues.dtype).tiny)


class _SymmetricEig(torch.autograd.Function):
    """``torch.linalg.eigh`` whose backward leaves out the eigenvector rotation between
    eigenvalues closer than ``_tolerance``.

    Otherwise autograd's formula: with A = V diag(λ) Vᵀ, upstream gradients gλ and gV,
    K = skew(Vᵀ gV), ``gA = V (diag(gλ) + K_ij / (λ_j − λ_i)) Vᵀ``; here the (i, j) term is
    0 when |λ_j − λ_i| is within the tolerance, where autograd's is inf or NaN.
    """

    @staticmethod
    def forward(ctx, a: Tensor) -> tuple[Tensor, Tensor]:
        # A host synchronisation no step can avoid (DESIGN §9): on CUDA, eigh reads its
        # solver's info flags back to raise on failure (ATen's _linalg_check_errors, an
        # .item()); torch has no eigh_ex without the check (eigvalsh and _linalg_eigh share
        # it). A GDPP step on a GPU therefore waits twice (fake and real kernels); on CPU the
        # check is a host read with nothing to wait for.
        eigenvalues, eigenvectors = torch.linalg.eigh(a)
        ctx.save_for_backward(eigenvalues, eigenvectors)
        return eigenvalues, eigenvectors

    @staticmethod
    @once_differentiable
    def backward(ctx, g_values: Tensor, g_vectors: Tensor) -> Tensor:
        lam, v = ctx.saved_tensors
        inner = v.mT @ g_vectors
        inner = 0.5 * (inner - inner.mT)
        gap = lam[..., None, :] - lam[..., :, None]
        apart = gap.abs() > _tolerance(lam)[..., None]
        core = torch.where(apart, inner / torch.where(apart, gap, 1.0), 0.0)
        core = core + torch.diag_embed(g_values)
        return v @ core @ v.mT


def kernel_eigen(phi: Tensor) -> tuple[Tensor, Tensor]:
    """Eigen-decomposition of GDPP's kernel ``L = φ̂ φ̂ᵀ``, φ̂ the rows of ``phi`` L2-normalised.

    Runs on L itself (B × B) when B <= H, else on the dual ``φ̂ᵀ φ̂`` (H × H), whose
    eigenvalues μ are L's nonzero ones and whose eigenvectors w give L's as ``φ̂ w / √μ``;
    L's remaining B − H eigenvalues are 0. The eigenvector of an eigenvalue below
    ``_tolerance`` (numerically zero) is not defined and is returned as 0. Each other is
    signed so that its entry of largest magnitude is positive.

    Args:
        phi: (S, B, H) features, one batch per seed.

    Returns:
        (S, B) eigenvalues of L, ascending, and (S, B, r) eigenvectors (unit, or 0) of its
        r = min(B, H) largest (columns, in the same order as the last r eigenvalues).
    """
    phi = F.normalize(phi, dim=-1)
    S, B, H = phi.shape
    if B <= H:
        lam, u = _SymmetricEig.apply(phi @ phi.mT)
        top = lam
    else:
        top, w = _SymmetricEig.apply(phi.mT @ phi)
        u = (phi @ w) / top.clamp_min(_tolerance(top)).sqrt()[:, None, :]
        lam = torch.cat((top.new_zeros(S, B - H), top), dim=1)
    u = torch.where((top > _tolerance(top))[:, None, :], u, 0.0)
    peak = torch.gather(u, 1, u.abs().argmax(dim=1, keepdim=True)).sign()
    return lam, u * torch.where(peak == 0, 1.0, peak)


def gdpp_loss(*, real: Tensor, fake: Tensor) -> Tensor:
    """The GDPP loss per seed: a magnitude term plus a structure term.

    ``1e-4 · mean_i (λ_fake,i − λ_real,i)² − Σ_i λ̂_i cos(v_fake,i, v_real,i)``, eigenpairs
    of :func:`kernel_eigen` in ascending order, ``λ̂ = (λ_real − min) / (max − min)``. The
    eigenvectors have unit norm, so the cosine is their dot product. Only ``fake`` is
    differentiated; the real decomposition is a constant.

    As the authors' toy code (M-Elfeki/GDPP, ``gdppgan_Synthetic.py``, ``compute_diversity_loss``;
    the same loss in ``GDPP_Loss_Tensorflow_Pytorch.py``): ``h`` is D's last hidden layer, each
    row L2-normalised; ``Ly = h hᵀ`` (B × B) is decomposed by ``tf.self_adjoint_eig``
    (eigenvalues ascending, eigenvectors as columns);
    ``eigen_values_loss = 0.0001 · mean((λ_fake − λ_real)²)``;
    ``eigen_vectors_loss = −Σ_rows (v_fake ∘ v_real)``, the dot product of the i-th eigenvectors;
    ``weighted = Σ_i λ̂_i · eigen_vectors_loss_i`` with λ̂ the real eigenvalues min-max
    normalised; and ``gen_loss = 0.5 · (gen_loss + diversity_loss)``. modecov adds the GDPP loss
    with weight 1 (the 0.5 on the sum only rescales G's gradient, to which Adam is invariant
    up to its ε).

    Where modecov differs, and why:

    - When the batch B exceeds the feature width H (256 > 128 on the toy sets) the rank of L
      is at most H, and the decomposition runs on the H × H dual ``hᵀ h``: the same nonzero
      eigenvalues, eigenvectors ``h w / √μ`` of L. L's other B − H eigenvalues are zero for
      real and fake alike, so their magnitude terms vanish and their structure weights are
      zero (the real minimum is 0); the authors' B × B form gives the same loss to rounding. The
      dual is cheaper, and it keeps out the zero eigenspace, whose eigenvectors are arbitrary
      and whose rotation gradients divide rounding noise by rounding noise.
    - An eigenvector's sign is arbitrary, so each is signed to make its largest entry positive
      (fake and real alike). The loss is then a function of the two kernels, the same from
      any LAPACK build or device; TensorFlow's sign is whatever its solver returns.
    - Eigenvalues below 1e-6 of the largest (``RCOND``) count as zero: their eigenvectors
      are not defined (rounding noise divided by √λ) and count as zero in the structure term,
      and eigenvalue pairs closer than that contribute no eigenvector-rotation gradient, where
      autograd's eigh divides by their gap (inf or NaN at a tie, e.g. a collapsed fake batch,
      which would freeze the seed). The features' spectrum falls off fast (a fresh D on ring8
      has fake eigenvalues from 64 down to 1e-15), and without the threshold those directions
      turn rounding into gradient noise. The eigenvalue (magnitude) term is unchanged.

    Args:
        real: (S, B, H) D's last hidden features of a real batch.
        fake: (S, B, H) the same of a fake batch.

    Returns:
        (S,) loss, differentiable w.r.t. ``fake``.
    """
    lam_fake, u_fake = kernel_eigen(fake)
    with torch.no_grad():
        lam_real, u_real = kernel_eigen(real)
        lo = lam_real.amin(dim=1, keepdim=True)
        span = (lam_real.amax(dim=1, keepdim=True) - lo).clamp_min(torch.finfo(lo.dtype).tiny)
        weight = ((lam_real - lo) / span)[:, -u_real.shape[-1] :]
    magnitude = EIGENVALUE_WEIGHT * (lam_fake - lam_real).square().mean(dim=1)
    structure = -(weight * (u_fake * u_real).sum(dim=1)).sum(dim=1)
    return magnitude + structure


def gdpp_step(st: StepState) -> dict[str, Tensor]:
    """``n_critic`` discriminator updates, then one generator update on the non-saturating
    loss plus ``GDPP_WEIGHT`` times :func:`gdpp_loss` of D's last hidden features on the last
    real batch and the fake batch (one pass of D over the fakes gives features and logits).

    As in the authors' code, the real and fake batches are the discriminator update's; D's
    features come from the updated D (the authors run both updates in one session call).
    """
    v = st.variant
    real, _, fake, loss_d = discriminator_updates(st)
    with torch.no_grad():
        h_real = st.D.features(real)
    h_fake = st.D.features(fake)
    diversity = gdpp_loss(real=h_real, fake=h_fake)
    loss_g = v.g_loss(fake=st.D.head(h_fake)) + GDPP_WEIGHT * diversity
    st.update("G", loss_g)
    return {"loss_d": loss_d, "loss_g": loss_g.detach(), "gdpp": diversity.detach()}


GDPP = Variant(
    name="gdpp",
    label="GDPP",
    reference="elfeki2019gdpp",
    d_loss=losses.bce_d,
    g_loss=losses.nonsaturating_g,
    step=gdpp_step,
    relative_cost=2.1,
)
"""Keeps the shared networks and Adam: the authors' toy run uses its own (tanh MLPs,
Z = 256, batch 512, G lr 1e-3, D lr 1e-4), a setting of theirs, not of the method."""
