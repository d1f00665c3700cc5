"""The Fréchet distance between Gaussian fits of real and generated samples (the FID
formula on raw coordinates)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from modecov.data import Dataset


def _gaussian(x: Tensor) -> tuple[Tensor, Tensor]:
    """Mean (D,) and unbiased (ddof = 1) covariance (D, D) of (N, D) samples, in float64."""
    x = x.to(torch.float64)
    mean = x.mean(0)
    centred = x - mean
    return mean, centred.mT @ centred / (x.shape[0] - 1)


def _psd_sqrt(cov: Tensor) -> Tensor:
    """Symmetric square root of a PSD matrix, with rounding-negative eigenvalues set to 0."""
    eigval, eigvec = torch.linalg.eigh(cov)
    return (eigvec * eigval.clamp_min(0.0).sqrt()) @ eigvec.mT


def frechet(*, fake: Tensor, real: Tensor, data: Dataset) -> dict[str, Tensor]:
    """Fréchet distance between Gaussian fits of ``real`` and each seed's ``fake``.

    d = ||mu_r - mu_f||^2 + tr(C_r + C_f - 2 (C_r C_f)^(1/2)), with unbiased covariances.
    tr (C_r C_f)^(1/2) is the sum of the square roots of the eigenvalues of the symmetric
    PSD matrix C_r^(1/2) C_f C_r^(1/2) (same spectrum as C_r C_f), which stays defined
    when a covariance is singular (fewer samples than dimensions); eigenvalues that
    rounding makes negative are set to 0, and so is a rounding-negative distance. That
    matrix squares the covariances' condition number, so directions whose variance is
    below ~1e-8 of the largest are lost to rounding: on ``gauss1200`` (variance ~5e4
    along the modes' axis, 1e-4 on the narrow dimensions) results carry a relative error
    and a dependence on sample order of ~1e-5.

    Args:
        fake: (S, N, D) generated samples, one set per seed.
        real: (N', D) real samples, shared by all seeds; N, N' >= 2.
        data: ignored (the fit uses raw coordinates); kept so every samples metric
            shares one signature.

    Returns:
        ``frechet_distance``, (S,) float64; 0 for identical sample sets, NaN for a seed
        whose samples are not all finite.

    Example:
        Two sample sets with the same covariance whose means differ by the vector m
        score ``||m||^2``.
    """
    if real.ndim != 2 or fake.ndim != 3 or fake.shape[-1] != real.shape[-1]:
        raise ValueError(
            f"need fake (S, N, D) and real (N', D) with the same D, got "
            f"{tuple(fake.shape)} and {tuple(real.shape)}"
        )
    if real.shape[0] < 2 or fake.shape[1] < 2:
        raise ValueError("the Fréchet distance needs at least 2 real and 2 fake samples")
    if not torch.isfinite(real).all():
        raise ValueError("real samples contain NaN or inf")
    mean_r, cov_r = _gaussian(real)
    sqrt_r = _psd_sqrt(cov_r)
    distances = []
    # One seed at a time: a float64 copy of all S sample sets can be large.
    for fake_s in fake:
        if not torch.isfinite(fake_s).all():
            # One diverged seed scores NaN instead of failing the eigensolver for all seeds.
            distances.append(torch.tensor(math.nan, dtype=torch.float64, device=real.device))
            continue
        mean_f, cov_f = _gaussian(fake_s.to(real.device))
        middle = sqrt_r @ cov_f @ sqrt_r
        eigval = torch.linalg.eigvalsh(0.5 * (middle + middle.mT)).clamp_min(0.0)
        distance = (
            (mean_r - mean_f).square().sum()
            + cov_r.trace()
            + cov_f.trace()
            - 2.0 * eigval.sqrt().sum()
        )
        distances.append(distance.clamp_min(0.0))
    return {"frechet_distance": torch.stack(distances)}
