"""Distribution metrics between generated and real sample sets: precision, recall, density and
coverage (k-NN manifolds), unbiased MMD², exact and sliced 2-Wasserstein distances.

They run on the large final sample set, not at every snapshot. Pairwise work is done in
float64 row chunks of at most ``CHUNK`` distances, so no N x N matrix is ever held; each
metric reads at most its ``*_MAX_POINTS`` first samples per side (samples are i.i.d., so
these are a random subset) and, within that cap, does not depend on sample order. Samples
far from the real set, and values whose squares would overflow, get the value the metric's
definition gives (``EXACT_BEYOND``; ``BIG`` = 1e100 in ``frechet``), or NaN; never one made by
an overflow.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Iterator

import numpy as np
import ot
import torch
from torch import Tensor

from modecov.data import Dataset
from modecov.metrics.frechet import scale_back, scale_for

log = logging.getLogger(__name__)

K_NEIGHBOURS = 5
"""k of the k-nearest-neighbour balls of precision, recall, density and coverage."""

PRDC_MAX_POINTS = 5_000
"""Samples per side (real, and fake per seed) read by precision/recall/density/coverage."""

MMD_MAX_POINTS = 5_000
"""Samples per side read by ``mmd2`` (and by its median-heuristic bandwidth)."""

W2_MAX_POINTS = 2_000
"""Samples per side read by the exact ``w2`` (the transport problem is N x N)."""

SLICED_MAX_POINTS = 10_000
"""Samples per side read by ``sliced_w2``."""

KID_MAX_POINTS = 5_000
"""Samples per side read by ``kid`` (``modecov.metrics.kernel``)."""

VENDI_MAX_POINTS = 1_000
"""Samples read by ``vendi`` per fake set and from the real set (``modecov.metrics.kernel``):
its eigensolver is O(N^3), ~0.1 s at 1,000 points on one core (0.55 s at 2,500)."""

RKE_MAX_POINTS = 5_000
"""Samples per fake set read by ``rke`` (``modecov.metrics.kernel``)."""

NDB_MAX_POINTS = 5_000
"""Samples per side read by ``ndb``: the real set its k-means cells are fitted on, and each
fake set (``modecov.metrics.ndb``)."""

SLICED_PROJECTIONS = 128
"""Random directions of ``sliced_w2``."""

SLICED_SEED = 0
"""Seed of the ``sliced_w2`` directions: the same directions for every run of a dimension."""

CHUNK = 1 << 18
"""Most pairwise distances held at once (2 MiB of float64, in one reused buffer): a block
stays in a core's L2 cache through the passes made over it (product, clamp, exponential or
comparison, sum), which halves the cost of ``mmd2`` against 32 MiB blocks that go to memory
on every pass (measured at 5,000 points per side, one thread), and is still large enough for
efficient matrix products."""

EXACT_BEYOND = 1e4
"""A seed with a coordinate beyond this many times the real set's extent (around the real
mean) gets its distances from exact coordinate differences (``torch.cdist`` without the matrix
product), the product form |a|^2 + |b|^2 - 2 a.b losing ~eps |a|^2 to rounding (two copies of
one far point would seem apart); no seed within that range changes. Beyond ``BIG`` (1e100),
where squares overflow, such a seed is divided by a power of two first (``_seed_scale``)."""

SPAN = 1e100
"""Most a scaled seed's sample sizes (max_d |x_d|) may span: dividing by a scale near the
largest keeps every distance from a sample within 1/SPAN of it well above underflow (two
distinct floats differ by at least 2^-52 of their size), and a seed spanning more would lose
its small distances to underflow, so its prdc and mmd2 are NaN."""

MIN_SAMPLES = K_NEIGHBOURS + 1
"""Fewest samples per side: a point's k-th neighbour must exist besides itself."""


def _check(fake: Tensor, real: Tensor) -> None:
    """Raise ValueError unless fake is (S, N, D), real is finite (N', D), both with >= 6 rows."""
    if real.ndim != 2 or fake.ndim != 3 or fake.shape[-1] != real.shape[-1]:
        raise ValueError(
            f"need fake (S, N, D) and real (N', D) with the same D, got "
            f"{tuple(fake.shape)} and {tuple(real.shape)}"
        )
    if min(real.shape[0], fake.shape[1]) < MIN_SAMPLES:
        raise ValueError(
            f"distribution metrics need at least {MIN_SAMPLES} real and {MIN_SAMPLES} fake "
            f"samples (k = {K_NEIGHBOURS} neighbours besides the point itself), got "
            f"{real.shape[0]} and {fake.shape[1]}"
        )
    if not torch.isfinite(real).all():
        raise ValueError("real samples contain NaN or inf")


def _prepare(fake: Tensor, real: Tensor, cap: int) -> tuple[Tensor, Tensor]:
    """The first ``cap`` samples per side in float64, centred on the real mean (which leaves
    distances unchanged but keeps |x|^2 small in the matmul form of the distance)."""
    _check(fake, real)
    real = real[:cap].to(torch.float64)
    # The mean of huge values would overflow; their centre is the mean of the scaled values.
    s = scale_for(float(real.abs().max()))
    centre = real.mean(0) if s == 1.0 else (real / s).mean(0) * s
    return (fake[:, :cap].to(device=real.device, dtype=torch.float64) - centre), real - centre


def _unit(fake: Tensor, real: Tensor) -> tuple[Tensor, Tensor]:
    """Both (centred) sets divided by a power of two when the real set has a coordinate
    beyond ``BIG``, for the metrics that do not change with a common scale (k-NN balls, MMD at
    the median bandwidth): their squared distances would overflow."""
    s = scale_for(float(real.abs().max()))
    return (fake, real) if s == 1.0 else (fake / s, real / s)


def _exact(fake: Tensor, real: Tensor) -> bool:
    """Whether distances from one seed's (centred) samples need the exact difference form:
    a coordinate beyond ``EXACT_BEYOND`` times the real set's extent."""
    return float(fake.abs().max()) > EXACT_BEYOND * float(real.abs().max())


def _seed_scale(fake: Tensor) -> float | None:
    """The power of two to divide a seed's exact distances by (1.0 when no coordinate exceeds
    ``BIG``), or None when its sample sizes span more than ``SPAN``."""
    size = fake.abs().amax(-1)
    s = scale_for(float(size.max()))
    if s != 1.0 and float(size.min()) * SPAN < float(size.max()):
        return None
    return s


def _sqdist(a: Tensor, b: Tensor, a2: Tensor, b2: Tensor, out: Tensor | None = None) -> Tensor:
    """(n, m) squared Euclidean distances from squared norms a2 (n,), b2 (m,), clamped at 0."""
    d = torch.addmm(b2[None, :], a, b.mT, alpha=-2.0, out=out)
    return d.add_(a2[:, None]).clamp_min_(0.0)


def _blocks(
    a: Tensor, b: Tensor | None = None, *, exact: bool = False
) -> Iterator[tuple[int, Tensor]]:
    """Row blocks (i, d) of squared distances, d[r, c] = |a_{i+r} - b_c|^2, at most ``CHUNK``
    per block. With ``b`` None, the blocks of a against itself from the diagonal on:
    d[r, c] = |a_{i+r} - a_{i+c}|^2, so the pairs j > i are the entries c > r.

    Every block is a view of one buffer, reused (and overwritten) by the next: allocating
    a fresh block each time costs page faults and lets the heap grow to many blocks. With
    ``exact``, blocks come from coordinate differences instead of the matrix product (see
    ``EXACT_BEYOND``): 0 between equal points, inf beyond the float64 range, never NaN.
    """
    same = b is None
    b = a if same else b
    step = max(1, CHUNK // b.shape[0])
    if exact:
        for i in range(0, a.shape[0], step):
            j = i if same else 0
            d = torch.cdist(a[i : i + step], b[j:], compute_mode="donot_use_mm_for_euclid_dist")
            yield i, d.square_()
        return
    a2, b2 = a.square().sum(-1), b.square().sum(-1)
    buffer = torch.empty(min(step, a.shape[0]) * b.shape[0], dtype=a.dtype, device=a.device)
    for i in range(0, a.shape[0], step):
        j = i if same else 0
        rows, cols = min(step, a.shape[0] - i), b.shape[0] - j
        out = buffer[: rows * cols].view(rows, cols)
        yield i, _sqdist(a[i : i + rows], b[j:], a2[i : i + rows], b2[j:], out=out)


def knn_radii2(x: Tensor, k: int = K_NEIGHBOURS, *, exact: bool = False) -> Tensor:
    """Squared distance from each point to its k-th nearest other point.

    As ``prdc``: the (k+1)-th smallest distance in the point's row, itself included.

    Args:
        x: (N, D) float64 points, N > k.
        k: neighbours.
        exact: distances from coordinate differences (see ``EXACT_BEYOND``).

    Returns:
        (N,) squared radii.
    """
    blocks = _blocks(x, x, exact=exact)
    return torch.cat([d.topk(k + 1, largest=False).values[:, -1] for _, d in blocks])


def _prdc_one(fake: Tensor, real: Tensor, real_r2: Tensor, k: int) -> Tensor:
    """(4,) precision, recall, density, coverage of one seed's (N, D) ``fake``."""
    exact = _exact(fake, real)
    if exact:
        s = _seed_scale(fake)
        if s is None:
            return torch.full((4,), math.nan, dtype=torch.float64)
        if s != 1.0:  # every comparison is between squared distances: divide all by s^2
            fake, real, real_r2 = fake / s, real / s, real_r2 / s / s
    fake_r2 = knn_radii2(fake, k, exact=exact)
    in_real_ball = 0  # fake samples inside at least one real ball
    ball_hits = 0  # (fake, real ball) pairs, for density
    recalled = torch.zeros(real.shape[0], dtype=torch.bool, device=real.device)
    covered = torch.zeros_like(recalled)  # real balls holding a fake: nearest fake inside
    mask = None
    for i, d in _blocks(fake, real, exact=exact):  # d: (rows, N_real)
        if mask is None or mask.shape != d.shape:
            mask = torch.empty_like(d, dtype=torch.bool)
        inside = torch.lt(d, real_r2[None, :], out=mask)
        in_real_ball += int(inside.any(1).sum())
        ball_hits += int(torch.count_nonzero(inside))
        covered |= inside.any(0)
        recalled |= torch.lt(d, fake_r2[i : i + d.shape[0], None], out=mask).any(0)
    n_fake = fake.shape[0]
    return torch.tensor(
        [
            in_real_ball / n_fake,
            float(recalled.double().mean()),
            ball_hits / (k * n_fake),
            float(covered.double().mean()),
        ],
        dtype=torch.float64,
    )


def prdc(*, fake: Tensor, real: Tensor, data: Dataset | None) -> dict[str, Tensor]:
    """Precision and recall (Kynkäänniemi et al. 2019), density and coverage (Naeem et al.
    2020) of k-nearest-neighbour manifolds, k = ``K_NEIGHBOURS`` = 5.

    With r_i the distance from real sample i to its k-th nearest real neighbour and s_j the
    same for fake sample j among the fakes (strict inequalities, as ``prdc.compute_prdc``):

    - ``precision``: share of fakes within r_i of some real i.
    - ``recall``: share of reals within s_j of some fake j.
    - ``density``: (1 / kN) sum_j #{i : |f_j - x_i| < r_i}; about 1 when fake = real, and
      above 1 when fakes crowd the dense regions.
    - ``coverage``: share of reals whose nearest fake lies within r_i.

    Distances are float64 (float32 cannot resolve sigma = 0.02 rings), exact for far seeds
    (``EXACT_BEYOND``); at most ``PRDC_MAX_POINTS`` samples per side are read.

    Args:
        fake: (S, N, D) generated samples, one set per seed; N >= 6.
        real: (N', D) finite real samples, shared by all seeds; N' >= 6.
        data: ignored; kept so every metric shares one signature.

    Returns:
        ``precision``, ``recall``, ``density``, ``coverage``, each (S,) float64; NaN for a
        seed whose samples are not all finite or span more than ``SPAN`` beyond ``BIG``.

    Example:
        Fakes on one of ring8's 8 modes score precision ~1, recall and coverage ~1/8.
    """
    fake, real = _unit(*_prepare(fake, real, PRDC_MAX_POINTS))
    real_r2 = knn_radii2(real)
    rows = [
        _prdc_one(f, real, real_r2, K_NEIGHBOURS)
        if bool(torch.isfinite(f).all())
        else torch.full((4,), math.nan, dtype=torch.float64)
        for f in fake
    ]
    table = torch.stack(rows).mT
    return dict(zip(("precision", "recall", "density", "coverage"), table))


def median_pairwise_distance(x: Tensor) -> float:
    """Median of the N(N-1)/2 distances between distinct rows of ``x``, computed exactly
    without holding them all: a strided pilot subset brackets the median, then one chunked
    pass counts the distances below the bracket and keeps those inside it.

    Args:
        x: (N, D) float64 points, N >= 2.

    Returns:
        The median distance (the mean of the two middle ones when their count is even,
        as ``numpy.median``).
    """
    n = x.shape[0]
    total = n * (n - 1) // 2
    ranks = ((total - 1) // 2, total // 2)
    pilot = x[:: max(1, n // 1_000)]
    pilot_d2 = torch.cat([_upper(d).flatten() for _, d in _blocks(pilot)])
    pilot_d2 = pilot_d2[pilot_d2 < math.inf]
    for half_width in (0.05, 0.15, 0.5):  # widen the bracket if the pilot missed the median
        qs = torch.tensor([0.5 - half_width, 0.5 + half_width], dtype=torch.float64)
        lo, hi = torch.quantile(pilot_d2, qs).tolist()
        if half_width == 0.5:  # every finite distance (the masked pairs j <= i are +inf)
            lo, hi = -math.inf, torch.finfo(torch.float64).max
        below, kept = 0, []
        for _, d in _blocks(x):
            d = _upper(d)  # pairs j > i only
            below += int(torch.count_nonzero(d < lo))
            kept.append(d[(d >= lo) & (d <= hi)])
        inside = torch.cat(kept)
        if below <= ranks[0] and ranks[1] < below + inside.numel():
            ordered = inside.sort().values
            middle = ordered[ranks[0] - below], ordered[ranks[1] - below]
            return 0.5 * (float(middle[0].sqrt()) + float(middle[1].sqrt()))
    raise AssertionError("unreachable: the last bracket holds every distance")


def _upper(d: Tensor) -> Tensor:
    """A from-diagonal block of ``_blocks(x)`` with the pairs j <= i set to +inf, in place."""
    rows = d.shape[0]
    lower = torch.ones(rows, rows, dtype=torch.bool, device=d.device).tril_()
    d[:, :rows].masked_fill_(lower, math.inf)
    return d


def _kernel_sum(x: Tensor, gamma: float, y: Tensor | None = None, *, exact: bool = False) -> float:
    """Sum of exp(-gamma |x_i - y_j|^2) over all pairs (i, j); with ``y`` None, over the
    pairs i != j of ``x`` (the unbiased estimator leaves out k(x, x) = 1).

    Distances are float64; the exponential runs in float32 (relative error ~1e-7 per term,
    far below the estimator's own noise) and is summed in float64. With ``exact`` (see
    ``EXACT_BEYOND``), distances come from coordinate differences and the kernel is float64,
    1 between equal points even when ``gamma`` is inf (coordinates divided by a huge scale).
    """
    total, k = 0.0, None
    for _, d in _blocks(x, y, exact=exact):
        if y is None:
            d = _upper(d)
        if exact:
            kernel = torch.where(d == 0.0, 1.0, torch.exp(d * -gamma))
            total += float(kernel.sum())
            continue
        if k is None or k.numel() < d.numel():
            k = torch.empty(d.numel(), dtype=torch.float32, device=d.device)
        kernel = torch.mul(d, -gamma, out=k[: d.numel()].view(d.shape)).exp_()
        total += float(kernel.sum(dtype=torch.float64))
    return 2.0 * total if y is None else total


def _per_seed(fake: Tensor, score) -> Tensor:
    """(S,) float64 of ``score(f)`` for each seed's (N, D) samples ``f``; NaN for a seed whose
    samples are not all finite (the other seeds are scored as usual)."""
    values = [score(f) if bool(torch.isfinite(f).all()) else math.nan for f in fake]
    return torch.tensor(values, dtype=torch.float64)


def mmd2(*, fake: Tensor, real: Tensor, data: Dataset | None) -> dict[str, Tensor]:
    """Unbiased MMD² (Gretton et al. 2012) with an RBF kernel at the median-heuristic bandwidth.

    MMD²_u = sum_{i != j} k(f_i, f_j) / N(N-1) + sum_{i != j} k(x_i, x_j) / M(M-1)
    - 2 sum_{i, j} k(f_i, x_j) / NM, with k(a, b) = exp(-|a - b|^2 / (2 h^2)) and h the
    median of the distances between distinct *real* samples (``median_pairwise_distance``).
    The bandwidth comes from the real set alone, so every seed and every generator scored
    against the same real set is measured with the same kernel (a pooled median would
    shrink the bandwidth for a collapsed generator). Unbiased, so it can be slightly
    negative when fake and real come from one distribution. At most ``MMD_MAX_POINTS``
    samples per side are read.

    Args:
        fake: (S, N, D) generated samples, one set per seed; N >= 6.
        real: (N', D) finite real samples, shared by all seeds; N' >= 6.
        data: ignored; kept so every metric shares one signature.

    Returns:
        ``mmd2``, (S,) float64; NaN for a seed whose samples are not all finite or span
        more than ``SPAN`` beyond ``BIG``.

    Example:
        Two independent draws of one distribution score ``mmd2`` ~ 0 (within ~1/N).
    """
    fake, real = _unit(*_prepare(fake, real, MMD_MAX_POINTS))
    h = median_pairwise_distance(real)
    if h == 0.0:
        raise ValueError("real samples are all identical: the median bandwidth is 0")
    gamma = 1.0 / (2.0 * h * h)
    m = real.shape[0]
    real_term = _kernel_sum(real, gamma) / (m * (m - 1))

    def score(f: Tensor) -> float:
        n, exact, gamma_f, real_f = f.shape[0], _exact(f, real), gamma, real
        if exact:
            s = _seed_scale(f)
            if s is None:
                return math.nan
            if s != 1.0:  # exp(-gamma |a - b|^2) = exp(-(gamma s^2) |a/s - b/s|^2)
                f, real_f, gamma_f = f / s, real / s, gamma * s * s
        fake_term = _kernel_sum(f, gamma_f, exact=exact) / (n * (n - 1))
        cross = _kernel_sum(f, gamma_f, real_f, exact=exact) / (n * m)
        return fake_term + real_term - 2.0 * cross

    return {"mmd2": _per_seed(fake, score)}


def w2(*, fake: Tensor, real: Tensor, data: Dataset | None) -> dict[str, Tensor]:
    """Exact 2-Wasserstein distance between the empirical distributions, through POT.

    W2 = sqrt(min_pi sum_ij pi_ij |f_i - x_j|^2) over couplings pi of the uniform weights,
    solved exactly by ``ot.emd2`` (network simplex) on at most ``W2_MAX_POINTS`` samples
    per side. When a coordinate exceeds ``BIG`` (1e100), whose square would overflow the
    cost matrix, both sets are divided by the power of two s of ``scale_for`` and W2 is s times
    theirs (W2 scales linearly with a common scale; the division is exact up to underflow
    of what is negligible beside the result). A seed whose solver does not reach the optimum
    (an infeasible or non-finite problem, the iteration cap) scores NaN, never the solver's
    partial cost.

    Args:
        fake: (S, N, D) generated samples, one set per seed; N >= 6.
        real: (N', D) finite real samples, shared by all seeds; N' >= 6.
        data: ignored; kept so every metric shares one signature.

    Returns:
        ``w2``, (S,) float64; NaN for a seed whose samples are not all finite, whose
        solver stops early, or whose distance exceeds the float64 range.

    Example:
        A sample set shifted by the vector m scores ``w2`` = |m| against the original.
    """
    fake, real = _prepare(fake, real, W2_MAX_POINTS)
    r2 = real.square().sum(-1)
    real_top = float(real.abs().max())
    b = np.full(real.shape[0], 1.0 / real.shape[0])

    def score(f: Tensor) -> float:
        s = scale_for(max(real_top, float(f.abs().max())))
        x, y, y2 = (f, real, r2) if s == 1.0 else (f / s, real / s, (real / s).square().sum(-1))
        cost = _sqdist(x, y, x.square().sum(-1), y2)
        a = np.full(f.shape[0], 1.0 / f.shape[0])
        with warnings.catch_warnings():  # reported below, once, through logging
            warnings.simplefilter("ignore", UserWarning)
            value, info = ot.emd2(a, b, cost.cpu().numpy(), numItermax=10**8, log=True)
        if info["result_code"] != 1:  # 1 is OPTIMAL in POT's network simplex
            log.warning("w2: the transport solver stopped early (%s); w2 is NaN", info["warning"])
            return math.nan
        return scale_back(math.sqrt(max(float(value), 0.0)), s, 1)

    return {"w2": _per_seed(fake, score)}


def sliced_directions(dim: int, n: int = SLICED_PROJECTIONS, seed: int = SLICED_SEED) -> Tensor:
    """(D, P) unit projection directions, uniform on the sphere, from their own seeded stream
    (the layout of ``ot.sliced_wasserstein_distance(projections=...)``)."""
    g = torch.Generator().manual_seed(seed)
    theta = torch.randn(dim, n, generator=g, dtype=torch.float64)
    return theta / theta.norm(dim=0, keepdim=True)


def _w2_1d_squared(u: Tensor, v: Tensor) -> Tensor:
    """(P,) squared 1-D W2 between (N, P) and (M, P) columns with uniform weights: the
    integral of the squared difference of the quantile functions, with breakpoints i/N and
    j/M taken as exact integers i*M and j*N over N*M."""
    return _w2_1d_sorted(u.mT.contiguous().sort(-1).values, v.mT.contiguous().sort(-1).values)


def _w2_1d_sorted(u: Tensor, v: Tensor) -> Tensor:
    """``_w2_1d_squared`` of (P, N) and (P, M) rows already sorted along the last axis (the
    layout in which sorting is fastest: each projection contiguous)."""
    n, m = u.shape[-1], v.shape[-1]
    if n == m:
        return (u - v).square().mean(-1)
    cuts = torch.cat([torch.arange(1, n + 1) * m, torch.arange(1, m + 1) * n]).unique()
    widths = torch.diff(cuts, prepend=cuts.new_zeros(1)).to(torch.float64) / (n * m)
    iu = (cuts + m - 1) // m - 1  # quantile index of u on the interval ending at each cut
    iv = (cuts + n - 1) // n - 1
    return (widths * (u[:, iu] - v[:, iv]).square()).sum(-1)


def sliced_w2(*, fake: Tensor, real: Tensor, data: Dataset | None) -> dict[str, Tensor]:
    """Sliced 2-Wasserstein distance over fixed random directions (Bonneel et al. 2015).

    SW2 = sqrt(mean_p W2²(theta_p . fake, theta_p . real)) over the P =
    ``SLICED_PROJECTIONS`` directions of ``sliced_directions(D)`` (seed ``SLICED_SEED``),
    exact in each 1-D projection; ``ot.sliced_wasserstein_distance(fake, real,
    projections=sliced_directions(D), p=2)`` computes the same number. At most
    ``SLICED_MAX_POINTS`` samples per side are read. When a coordinate exceeds ``BIG``
    (1e100), both sets are divided by the power of two s of ``scale_for`` and SW2 is s times theirs,
    so squares do not overflow; a distance beyond the float64 range is NaN.

    Args:
        fake: (S, N, D) generated samples, one set per seed; N >= 6.
        real: (N', D) finite real samples, shared by all seeds; N' >= 6.
        data: ignored; kept so every metric shares one signature.

    Returns:
        ``sliced_w2``, (S,) float64; NaN for a seed whose samples are not all finite or
        whose distance exceeds the float64 range.

    Example:
        A sample set shifted by m scores ``sliced_w2`` = |m| sqrt(mean_p (theta_p . m)^2 / |m|^2),
        about |m| / sqrt(D) over many directions.
    """
    fake, real = _prepare(fake, real, SLICED_MAX_POINTS)
    theta = sliced_directions(real.shape[1]).to(real.device)
    # (P, N) projections, each row contiguous and sorted; the real set's once for every seed.
    real_sorted = (theta.mT @ real.mT).sort(-1).values

    real_top = float(real.abs().max())

    def score(f: Tensor) -> float:
        s = scale_for(max(real_top, float(f.abs().max())))
        if s == 1.0:
            fake_sorted = (theta.mT @ f.mT).sort(-1).values
            return math.sqrt(float(_w2_1d_sorted(fake_sorted, real_sorted).mean()))
        squared = _w2_1d_squared((f / s) @ theta, (real / s) @ theta).mean()
        return scale_back(math.sqrt(float(squared)), s, 1)

    return {"sliced_w2": _per_seed(fake, score)}
