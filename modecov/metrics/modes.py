"""Mode metrics: how many modes the high-quality samples cover, how balanced they are, and
divergences between their mode histogram and the true weights (VEEGAN/PacGAN protocol)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from modecov.data import Dataset

BALANCED_SHARE = 0.2
"""A mode is balanced when its HQ count is at least this share of its expected count N * w_k."""

_SLACK = 1e-9
"""Relative slack on the balance threshold, so an exactly integral N * w_k * 0.2 is not lost to
the last bit of float weights (counts are integers, so nothing else can fall inside it)."""


def check_samples(fake: Tensor, data: Dataset) -> None:
    """Raise ValueError unless ``fake`` is (S, N, D) with N >= 1 and D = ``data.dim``."""
    if fake.ndim != 3 or fake.shape[-1] != data.dim or fake.shape[1] == 0:
        raise ValueError(
            f"fake must be (S, N, D) with N >= 1 and D = {data.dim} for {data.name!r}, "
            f"got shape {tuple(fake.shape)}"
        )


def kl_nats(p: Tensor, q: Tensor) -> Tensor:
    """KL(p || q) in nats over the last axis, with 0 log 0 = 0 (and +inf where q = 0 < p)."""
    return (torch.special.xlogy(p, p) - torch.special.xlogy(p, q)).sum(-1)


def mode_counts(*, fake: Tensor, data: Dataset) -> Tensor:
    """Number of high-quality samples assigned to each mode.

    Args:
        fake: (S, N, D) generated samples, one set per seed.
        data: the dataset whose ``assign`` defines modes and high quality.

    Returns:
        (S, K) int64 counts; a row sums to that seed's number of HQ samples.

    Example:
        Four samples exactly on ring8's centre 0 and one at the origin give
        ``[4, 0, 0, 0, 0, 0, 0, 0]``: the origin is nearest some mode but not HQ.
    """
    check_samples(fake, data)
    idx, hq = data.assign(fake)
    counts = torch.zeros(fake.shape[0], data.n_modes, dtype=torch.long, device=idx.device)
    return counts.scatter_add_(-1, idx, hq.long())


def modes(*, fake: Tensor, real: Tensor, data: Dataset) -> dict[str, Tensor]:
    """Mode coverage of generated samples.

    Only high-quality (HQ) samples count towards a mode. With p̂ the histogram of HQ
    samples over modes and w the true weights:

    - ``modes_covered``: modes with at least one HQ sample; ``modes_covered_frac`` = / K.
    - ``modes_balanced``: modes whose HQ count is at least 0.2 * N * w_k, so one stray
      sample does not count as a covered mode.
    - ``hq_fraction``: share of the N samples that are HQ.
    - ``kl_gen_true``: KL(p̂ || w) in nats, 0 log 0 = 0 (finite when modes are missed);
      NaN when no sample is HQ.
    - ``kl_true_gen``: KL(w || p̃) in nats over the K modes plus one "off-mode" bin that
      holds the N - n_HQ samples that are not HQ, with Jeffreys smoothing over all N
      samples: p̃_k = (c_k + 0.5) / (N + 0.5 (K + 1)) for the K HQ counts c_k (and the
      off-mode count), and w puts no mass on the off-mode bin, so
      kl_true_gen = sum_k w_k log(w_k / p̃_k) over the K modes. It punishes missed modes,
      which reverse KL cannot see, and samples that are not HQ: with no HQ sample it is
      log(2N + K + 1) - H(w), worse than any set with an HQ sample; defined for any counts.
    - ``mode_jsd``: Jensen-Shannon divergence between p̂ and w in nats (at most log 2);
      NaN when no sample is HQ.

    Args:
        fake: (S, N, D) generated samples, one set per seed.
        real: (N', D) real samples; ignored, kept so every samples metric shares one
            signature.
        data: the dataset whose modes define coverage.

    Returns:
        ``modes_covered``, ``modes_covered_frac``, ``modes_balanced``, ``hq_fraction``,
        ``kl_gen_true``, ``kl_true_gen``, ``mode_jsd``, each (S,) float64.

    Example:
        A generator that puts every sample on one of 8 equal modes scores
        ``modes_covered == 1`` and ``kl_gen_true == log(8)``.
    """
    counts = mode_counts(fake=fake, data=data).to(torch.float64)
    n, k = fake.shape[1], data.n_modes
    w = data.weights.to(device=counts.device, dtype=torch.float64)
    n_hq = counts.sum(-1)
    has_hq = n_hq > 0
    nan = torch.full_like(n_hq, math.nan)

    p_hat = counts / n_hq.clamp_min(1.0)[:, None]
    # The off-mode bin's smoothed share is left out of p_tilde: w has no mass there.
    p_tilde = (counts + 0.5) / (n + 0.5 * (k + 1))
    mid = 0.5 * (p_hat + w)
    jsd = 0.5 * kl_nats(p_hat, mid) + 0.5 * kl_nats(w.expand_as(mid), mid)
    need = BALANCED_SHARE * n * w * (1.0 - _SLACK)
    covered = (counts >= 1).sum(-1).to(torch.float64)
    return {
        "modes_covered": covered,
        "modes_covered_frac": covered / k,
        "modes_balanced": (counts >= need).sum(-1).to(torch.float64),
        "hq_fraction": n_hq / n,
        "kl_gen_true": torch.where(has_hq, kl_nats(p_hat, w), nan),
        "kl_true_gen": kl_nats(w.expand_as(p_tilde), p_tilde),
        "mode_jsd": torch.where(has_hq, jsd, nan),
    }
