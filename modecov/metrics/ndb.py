"""NDB, the number of statistically different bins (Richardson & Weiss 2018): k-means cells
fitted on the real set, a two-proportion z-test per cell, and the Jensen-Shannon divergence of
the two cell histograms."""

from __future__ import annotations

import math

import numpy as np
import torch
from sklearn.cluster import KMeans
from threadpoolctl import threadpool_limits
from torch import Tensor

from modecov.data import Dataset
from modecov.metrics import distribution as dist
from modecov.metrics.frechet import scale_for
from modecov.metrics.modes import kl_nats

NDB_BINS = 100
"""k-means cells (the paper's K = 100)."""

NDB_ALPHA = 0.05
"""Significance level of each cell's two-sided two-proportion z-test."""

NDB_SEED = 0
"""``random_state`` of the k-means fit: the same cells for the same real set on every run."""

NDB_N_INIT = 10
"""k-means restarts (the best inertia is kept; scikit-learn's default when the authors wrote
their code)."""

NDB_MAX_ITER = 100
"""Most Lloyd iterations per restart (the authors' ``max_iter``)."""


def ndb_cells(real: Tensor) -> tuple[Tensor, Tensor] | None:
    """The NDB cells of a real set: k-means with ``NDB_BINS`` cells.

    As the authors' ``construct_bins`` (without whitening, their default): scikit-learn's
    ``KMeans`` (``NDB_SEED``, ``NDB_N_INIT``, ``NDB_MAX_ITER``) fitted on every coordinate,
    each cell's centre the mean of the real samples it labels, its share their count / N'.
    The rows are sorted first, so the cells do not depend on sample order, and the fit runs on
    one thread (scikit-learn's per-thread partial sums would round differently with another
    thread count). A cell left empty by the fit (it has no mean) is dropped.

    Args:
        real: (N', D) finite real samples.

    Returns:
        (B, D) float64 cell centres and (B,) float64 real shares, or None when the real set
        has fewer than ``NDB_BINS`` distinct samples (no ``NDB_BINS`` cells exist).
    """
    x = real.detach().to(device="cpu", dtype=torch.float64).numpy()
    if len(np.unique(x, axis=0)) < NDB_BINS:
        return None
    # Squared distances of values beyond 1e100 would overflow: fit on x / s, s a power of two.
    s = scale_for(float(np.abs(x).max()))
    x = x[np.lexsort(x.T[::-1])] / s
    with threadpool_limits(limits=1):
        fit = KMeans(
            n_clusters=NDB_BINS, n_init=NDB_N_INIT, max_iter=NDB_MAX_ITER,
            random_state=NDB_SEED,
        ).fit(x)  # fmt: skip
    counts = np.bincount(fit.labels_, minlength=NDB_BINS)
    keep = counts > 0
    sums = np.zeros((NDB_BINS, x.shape[1]))
    np.add.at(sums, fit.labels_, x)
    centres = sums[keep] / counts[keep, None] * s
    shares = counts[keep] / len(x)
    return torch.from_numpy(centres), torch.from_numpy(shares)


def assign_cells(x: Tensor, centres: Tensor, origin: Tensor) -> Tensor:
    """(N,) index of the nearest cell centre (Euclidean) of each of (N, D) finite samples.

    Computed as argmin_b |c_b|^2 / m - 2 (x / m) . c_b in coordinates centred on ``origin``
    (the real mean) and divided by a power of two when the centres exceed 1e100, with
    m = max(1, max_d |x_d|) per sample: the same argmin as |x - c_b|^2, without its common
    |x|^2, so nothing overflows and far samples keep the direction that decides their cell.
    """
    s = scale_for(float((centres - origin).abs().max()))
    c = (centres - origin) / s
    x = x.to(torch.float64) / s - origin / s
    m = x.abs().amax(-1, keepdim=True).clamp_min(1.0)
    score = c.square().sum(-1) / m - 2.0 * (x / m) @ c.mT
    return score.argmin(-1)


def ndb(*, fake: Tensor, real: Tensor, data: Dataset | None) -> dict[str, Tensor]:
    """Number of statistically different bins and the JS divergence of the cell histograms
    (Richardson & Weiss 2018).

    The real set is split into ``NDB_BINS`` = 100 k-means cells once per call
    (``ndb_cells``); each fake sample falls in the cell of its nearest centre. For cell b with
    real share p1 (of n1 real samples) and fake share p2 (of n2), the test of the authors'
    code (github.com/eitanrich/gans-n-gmms, ``utils/ndb.py``,
    ``NDB.two_proportions_z_test``): pooled p = (p1 n1 + p2 n2) / (n1 + n2),
    se = sqrt(p (1 - p) (1/n1 + 1/n2)), z = (p1 - p2) / se, and the cell is different when
    the two-sided p-value 2 Phi(-|z|) < ``NDB_ALPHA`` = 0.05 (a cell with se = 0 has
    p1 = p2: not different). ``ndb_jsd`` is the Jensen-Shannon divergence of the two
    histograms in nats, 0.5 KL(p1 || m) + 0.5 KL(p2 || m) with m = (p1 + p2) / 2 and
    0 log 0 = 0 (at most log 2; the authors' ``jensen_shannon_divergence``, ``mode_jsd``'s
    convention). Raw coordinates, no whitening, every dimension (the authors' defaults,
    except that they bin on a random sixth of the dimensions beyond D = 1000, for speed). At
    most ``NDB_MAX_POINTS`` samples per side are read. Needs no known modes.

    Args:
        fake: (S, N, D) generated samples, one set per seed; N >= 1.
        real: (N', D) finite real samples, shared by all seeds.
        data: ignored; kept so every metric shares one signature.

    Returns:
        ``ndb`` (a count of cells, 0 to 100) and ``ndb_jsd``, each (S,) float64; NaN for a
        seed whose samples are not all finite, and for every seed when the real set has
        fewer than 100 distinct samples.

    Example:
        Fakes on one of ring8's 8 modes leave the ~88 cells of the other modes empty, and
        overfill that mode's cells: ``ndb`` above 90 and ``ndb_jsd`` ~ 0.5 (log 2 = 0.69).
    """
    if real.ndim != 2 or fake.ndim != 3 or fake.shape[-1] != real.shape[-1]:
        raise ValueError(
            f"need fake (S, N, D) and real (N', D) with the same D, got "
            f"{tuple(fake.shape)} and {tuple(real.shape)}"
        )
    if fake.shape[1] == 0 or not torch.isfinite(real).all():
        raise ValueError("ndb needs at least one fake sample and finite real samples")
    cap = dist.NDB_MAX_POINTS
    real, fake = real[:cap], fake[:, :cap]
    out = torch.full((2, fake.shape[0]), math.nan, dtype=torch.float64)
    cells = ndb_cells(real)
    if cells is not None:
        centres, p1 = cells
        x = real.detach().to(device="cpu", dtype=torch.float64)
        s = scale_for(float(x.abs().max()))
        origin = (x / s).mean(0) * s
        n1, n2 = real.shape[0], fake.shape[1]
        for i, f in enumerate(fake):
            if not bool(torch.isfinite(f).all()):
                continue
            cell = assign_cells(f.cpu(), centres, origin)
            p2 = torch.bincount(cell, minlength=len(p1)).to(torch.float64) / n2
            pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
            se = (pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2)).sqrt()
            z = (p1 - p2) / se  # 0 / 0 = NaN where p1 = p2 in {0, 1}: its test is False
            p_value = torch.special.erfc(z.abs() / math.sqrt(2.0))  # 2 Phi(-|z|)
            mid = 0.5 * (p1 + p2)
            out[0, i] = float((p_value < NDB_ALPHA).sum())
            out[1, i] = float(0.5 * kl_nats(p1, mid) + 0.5 * kl_nats(p2, mid))
    return {"ndb": out[0], "ndb_jsd": out[1]}
