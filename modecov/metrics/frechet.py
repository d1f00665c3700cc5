"""The Fréchet distance between Gaussian fits of real and generated samples (the FID
formula, on the dataset's ``features`` when it has them, else on raw coordinates)."""

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


BIG = 1e100
"""Coordinate size beyond which the distance is computed in coordinates divided by a power of
two (exact), then scaled back: squares of such values would overflow."""


def scale_for(top: float) -> float:
    """1.0 when the largest coordinate size ``top`` is at most ``BIG``, else the largest power
    of two not above it, so scaled coordinates are below 2 (dividing by it is exact; the
    power just above ``top`` overflows for sizes from 2^1023 up to the float64 maximum)."""
    return 1.0 if top <= BIG else math.ldexp(1.0, math.frexp(top)[1] - 1)


def scale_back(value: float, s: float, power: int) -> float:
    """``value`` computed on coordinates divided by ``s``, as on the original ones: times
    ``s ** power`` (a distance scales as s, a squared one as s^2), NaN when that is beyond
    the float64 range (never inf)."""
    for _ in range(power):
        value *= s
    return value if math.isfinite(value) else math.nan


def _distance(mean_r: Tensor, cov_r: Tensor, sqrt_r: Tensor, fake: Tensor) -> Tensor:
    """The Fréchet distance between the real fit and the fit of (N, D) ``fake``."""
    mean_f, cov_f = _gaussian(fake)
    cross = torch.linalg.svdvals(sqrt_r @ _psd_sqrt(cov_f)).sum()
    distance = (mean_r - mean_f).square().sum() + cov_r.trace() + cov_f.trace() - 2.0 * cross
    return distance.clamp_min(0.0)


def frechet(*, fake: Tensor, real: Tensor, data: Dataset | None) -> dict[str, Tensor]:
    """Fréchet distance between Gaussian fits of ``real`` and each seed's ``fake``.

    d = ||mu_r - mu_f||^2 + tr(C_r + C_f - 2 (C_r C_f)^(1/2)), with unbiased covariances
    (the FID formula, as torch-fidelity computes it on features).
    tr (C_r C_f)^(1/2) is the sum of the singular values of C_r^(1/2) C_f^(1/2) (their
    squares are the eigenvalues of C_r C_f), which stays defined when a covariance is
    singular (fewer samples than dimensions); square roots use the symmetric eigensolver
    with rounding-negative eigenvalues set to 0, and a rounding-negative distance is set
    to 0. Working with the square roots keeps the covariances' condition number instead
    of squaring it (as C_r^(1/2) C_f C_r^(1/2) or sqrtm(C_r C_f) do): on ``gauss1200``
    (variance ~5e4 along the modes' axis, 1e-4 on the narrow dimensions) those lose
    ~1e-5 relative, this ~1e-12.

    When a coordinate exceeds ``BIG`` (1e100), whose square would overflow, both sets are
    divided by the power of two s of ``scale_for`` and the distance is s^2 times theirs (d scales as
    s^2, and the division is exact); a distance beyond the float64 range is NaN, never inf.

    Args:
        fake: (S, N, D) generated samples, one set per seed.
        real: (N', D) real samples, shared by all seeds; N, N' >= 2.
        data: the dataset, or None; when it has ``features(x) -> (..., N, F)`` other than
            the raw coordinates (the digit classifier's penultimate layer on
            ``stacked_digits``) the fits are on those features, else on raw coordinates.

    Returns:
        ``frechet_distance``, (S,) float64; 0 for identical sample sets, NaN for a seed
        whose samples (or features) are not all finite or whose distance exceeds the
        float64 range.

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
    features = getattr(data, "features", None)
    if features is not None:
        real = features(real)
        # Non-finite samples stay non-finite (NaN) features, so their seed scores NaN.
        bad = ~torch.isfinite(fake).all(-1)
        fake = features(torch.where(bad[..., None], 0.0, fake))
        fake = torch.where(bad[..., None], torch.nan, fake)
    nan = torch.tensor(math.nan, dtype=torch.float64, device=real.device)
    real_ok = bool(torch.isfinite(real).all())  # features of huge samples can overflow
    real_top = float(real.abs().max()) if real_ok else math.nan
    fit_r = None
    distances = []
    # One seed at a time: a float64 copy of all S sample sets can be large.
    for fake_s in fake:
        fake_s = fake_s.to(real.device)
        if not real_ok or not torch.isfinite(fake_s).all():
            # One diverged seed scores NaN instead of failing the eigensolver for all seeds.
            distances.append(nan)
            continue
        s = scale_for(max(real_top, float(fake_s.abs().max())))
        if s == 1.0:
            if fit_r is None:
                mean_r, cov_r = _gaussian(real)
                fit_r = mean_r, cov_r, _psd_sqrt(cov_r)
            distances.append(_distance(*fit_r, fake_s))
            continue
        mean_r, cov_r = _gaussian(real / s)
        distance = float(_distance(mean_r, cov_r, _psd_sqrt(cov_r), fake_s / s))
        distances.append(nan.new_tensor(scale_back(distance, s, 2)))
    return {"frechet_distance": torch.stack(distances)}
