"""Kernel metrics of the final samples: the kernel inception distance (KID) against the real
set, and two kernel mode counts of the generated set alone, the Vendi score and the order-2
Rényi kernel entropy (RKE).

Each reads at most its ``*_MAX_POINTS`` first samples per set (``modecov.metrics.distribution``,
where every cap is listed for the manifest) and, within that cap, does not depend on sample
order or on the chunk size; the work is float64. Values whose kernels would overflow get the
value the metric's definition gives, or NaN when that is beyond the float64 range.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch import Tensor

from modecov.data import Dataset
from modecov.metrics import distribution as dist
from modecov.metrics.frechet import scale_for

EXACT_WITHIN = 1e3
"""Largest |x - mean| / h (times sqrt(D)) for which RBF distances come from the matrix product:
its rounding, ~eps |z|^2 in units of h, stays below 1e-9. A set spread wider (samples scaled
far out) gets its distances from coordinate differences, which never overflow into NaN."""


def _check(fake: Tensor, real: Tensor) -> None:
    """Raise ValueError unless fake is (S, N, D) and real finite (N', D), each with >= 2 rows."""
    if real.ndim != 2 or fake.ndim != 3 or fake.shape[-1] != real.shape[-1]:
        raise ValueError(
            f"need fake (S, N, D) and real (N', D) with the same D, got "
            f"{tuple(fake.shape)} and {tuple(real.shape)}"
        )
    if min(real.shape[0], fake.shape[1]) < 2:
        raise ValueError(
            f"kernel metrics need at least 2 real and 2 fake samples, got "
            f"{real.shape[0]} and {fake.shape[1]}"
        )
    if not torch.isfinite(real).all():
        raise ValueError("real samples contain NaN or inf")


def _centred(x: Tensor) -> Tensor:
    """(N, D) float64 ``x`` minus its mean (the mean of huge values taken on scaled ones); a
    coordinate may overflow to inf only for sets spanning the float64 range."""
    s = scale_for(float(x.abs().max()))
    centre = x.mean(0) if s == 1.0 else (x / s).mean(0) * s
    return x - centre


def kernel_bandwidth(real: Tensor, data: Dataset | None) -> float:
    """The RBF bandwidth h of ``vendi`` and ``rke``.

    The dataset's ``kernel_scale`` when ``data`` has one; else the median heuristic: the
    median distance between distinct samples of the first ``VENDI_MAX_POINTS`` real samples
    (``median_pairwise_distance``), so every seed and every generator scored against one
    real set is measured with the same kernel.

    Args:
        real: (N', D) finite real samples, N' >= 2.
        data: the dataset, or None.

    Returns:
        h > 0.

    Raises:
        ValueError: the median heuristic is needed and the median distance is 0 (as
            ``mmd2``).
    """
    scale = getattr(data, "kernel_scale", None)
    if scale is not None:
        return float(scale)
    x = _centred(real[: dist.VENDI_MAX_POINTS].to(torch.float64))
    s = scale_for(float(x.abs().max()))
    h = dist.median_pairwise_distance(x / s) * s
    if h == 0.0:
        raise ValueError("real samples are all identical (or most are): the median bandwidth is 0")
    return h if math.isfinite(h) else torch.finfo(torch.float64).max


def _rbf_rows(x: Tensor, h: float) -> Iterator[tuple[int, Tensor]]:
    """Row blocks (i, k) of the RBF Gram matrix of (N, D) float64 ``x``,
    k[r, c] = exp(-|x_{i+r} - x_c|^2 / (2 h^2)), at most ``CHUNK`` entries per block.

    From the matrix product on the centred set in units of h (each block a view of one reused
    buffer), or, for a set spread beyond ``EXACT_WITHIN``, from coordinate differences in the
    original coordinates: a difference or its square that overflows is inf and its kernel
    exactly 0, as the definition gives for distances beyond ~40 h; never NaN.
    """
    n, d = x.shape
    z = _centred(x) / h
    top = float(z.abs().max()) * math.sqrt(d)
    if top <= EXACT_WITHIN:  # NaN and inf fail the test
        for i, d2 in dist._blocks(z, z):
            yield i, d2.mul_(-0.5).exp_()
        return
    step = max(1, dist.CHUNK // (n * d))
    for i in range(0, n, step):
        diff = (x[i : i + step, None, :] - x[None]) / h
        yield i, diff.square_().sum(-1).mul_(-0.5).exp_()


def _vendi_of(x: Tensor, h: float) -> float:
    """The Vendi score of (N, D) float64 finite ``x``: exp(-sum lambda log lambda) over the
    eigenvalues of K / N, clipped at 0 (0 log 0 = 0)."""
    n = x.shape[0]
    gram = torch.empty(n, n, dtype=torch.float64, device=x.device)
    for i, block in _rbf_rows(x, h):
        gram[i : i + block.shape[0]] = block
    eig = torch.linalg.eigvalsh(gram.div_(n)).clamp_min_(0.0)
    return math.exp(-float(torch.special.xlogy(eig, eig).sum()))


def _rke_of(x: Tensor, h: float) -> float:
    """The order-2 RKE mode count of (N, D) float64 finite ``x``: N^2 / sum_ij K_ij^2."""
    n = x.shape[0]
    total = sum(float(block.square_().sum()) for _, block in _rbf_rows(x, h))
    return n * n / total


def vendi(*, fake: Tensor, real: Tensor, data: Dataset | None) -> dict[str, Tensor]:
    """Vendi score (Friedman & Dieng 2023) of each seed's samples, and its ratio to the real set's.

    VS = exp(-sum_i lambda_i log lambda_i) over the eigenvalues lambda of K / N, with
    K_ij = exp(-|x_i - x_j|^2 / (2 h^2)) on the seed's N samples (``score_K`` of the
    ``vendi-score`` package on that matrix): the effective number of distinct samples at
    scale h, from 1 (every sample alike) to N (all kernel-orthogonal). h is the dataset's
    ``kernel_scale``, between the spread of a mode and the gap between modes, so on a dataset
    with separated modes VS ~ exp(H(p)) for p the share of samples per mode (8 for ring8's
    true sampler); without one, the median heuristic on the real set (``kernel_bandwidth``).
    Eigenvalues are clipped at 0 (rounding makes the null ones ~ +-1e-17). It reads the
    first ``VENDI_MAX_POINTS`` samples of each set (the eigensolver is O(N^3)).

    ``vendi_norm`` = VS(fake) / VS(real), the real set's VS computed once per call on its
    first ``VENDI_MAX_POINTS`` samples with the same h: ~1 for a sampler as diverse as the
    data.

    VS measures diversity alone: samples spread over a huge region (every pair kernel-
    orthogonal) score N, and a set shifted away from the data scores as the set itself.

    Args:
        fake: (S, N, D) generated samples, one set per seed; N >= 2.
        real: (N', D) finite real samples, shared by all seeds; N' >= 2.
        data: the dataset (for its ``kernel_scale``), or None.

    Returns:
        ``vendi`` and ``vendi_norm``, each (S,) float64; NaN for a seed whose samples are not
        all finite.

    Example:
        Samples on 5 of ring8's 8 modes, evenly, score ``vendi`` ~ 5.
    """
    _check(fake, real)
    cap = dist.VENDI_MAX_POINTS
    h = kernel_bandwidth(real, data)
    real_vs = _vendi_of(real[:cap].to(torch.float64), h)
    fake = fake[:, :cap]
    values = dist._per_seed(fake, lambda f: _vendi_of(f.to(torch.float64), h))
    return {"vendi": values, "vendi_norm": values / real_vs}


def rke(*, fake: Tensor, real: Tensor, data: Dataset | None) -> dict[str, Tensor]:
    """Order-2 Rényi kernel entropy mode count (Jalali et al. 2023) of each seed's samples.

    RKE = 1 / ||K / N||_F^2 = N^2 / sum_{i, j} K_ij^2 over all N^2 ordered pairs of the seed's
    samples, the diagonal included: exp of the order-2 Rényi entropy of the eigenvalues of
    K / N (1 / sum lambda^2), with the kernel and bandwidth of ``vendi``
    (``kernel_bandwidth``). From 1 (every sample alike) to N; RKE <= VS on the same samples
    (Rényi entropies fall with the order). Chunked: no N x N matrix is held. It reads the
    first ``RKE_MAX_POINTS`` samples of each seed.

    Args:
        fake: (S, N, D) generated samples, one set per seed; N >= 2.
        real: (N', D) finite real samples (for the median heuristic); N' >= 2.
        data: the dataset (for its ``kernel_scale``), or None.

    Returns:
        ``rke``, (S,) float64; NaN for a seed whose samples are not all finite.

    Example:
        Samples spread evenly over ring8's 8 modes score ``rke`` ~ 8.
    """
    _check(fake, real)
    h = kernel_bandwidth(real, data)
    fake = fake[:, : dist.RKE_MAX_POINTS]
    return {"rke": dist._per_seed(fake, lambda f: _rke_of(f.to(torch.float64), h))}


def _poly_sum(a: Tensor, b: Tensor | None, c: float) -> float:
    """Sum of (a_i . b_j / D + c)^3 over all pairs (i, j); with ``b`` None, over the pairs
    i != j of ``a`` (the diagonal of each row block taken out)."""
    same = b is None
    b = a if same else b
    inv_d = 1.0 / a.shape[1]
    step = max(1, dist.CHUNK // b.shape[0])
    total = 0.0
    for i in range(0, a.shape[0], step):
        block = (a[i : i + step] @ b.mT).mul_(inv_d).add_(c).pow_(3)
        total += float(block.sum())
        if same:
            total -= float(block.diagonal(offset=i).sum())
    return total


def _grow(value: float, e: int) -> float:
    """``value`` times 2^e, exact; NaN when beyond the float64 range (never inf)."""
    try:
        out = math.ldexp(value, e)
    except OverflowError:
        return math.nan
    return out if math.isfinite(out) else math.nan


def _exponent(x: Tensor) -> int:
    """e >= 0 with every |x_d| < 2^e (0 for values below 1)."""
    return max(0, math.frexp(float(x.abs().max()))[1])


def kid(*, fake: Tensor, real: Tensor, data: Dataset | None) -> dict[str, Tensor]:
    """Kernel inception distance (Bińkowski et al. 2018), as torch-fidelity and torchmetrics
    define it, on the full (capped) sets: one subset made of every sample.

    KID = sum_{i != j} k(f_i, f_j) / N(N-1) + sum_{i != j} k(x_i, x_j) / M(M-1)
    - 2 sum_{i, j} k(f_i, x_j) / NM, the unbiased MMD² with the cubic polynomial kernel
    k(a, b) = (a . b / D + 1)^3 on raw coordinates (``torchmetrics.image.kid.poly_mmd`` when
    N = M). Unbiased, so it can be negative: for samples spread over a huge region its
    i != j terms are dominated by the third-moment term, of either sign, of order scale^6.

    The kernel is not shift invariant and grows as the coordinates cubed, so a seed is
    scored in coordinates divided by 2^e, e >= 0 the exponent of its largest coordinate (and
    the real set's): the kernel becomes (a' . b' / D + 2^-2e)^3 = k / 2^6e with every term
    below 8, and KID is 2^6e times the result (exact scalings by powers of two; NaN when
    beyond the float64 range, e.g. for samples of 1e300, whose KID is ~1e1800). At most
    ``KID_MAX_POINTS`` samples per side are read.

    Args:
        fake: (S, N, D) generated samples, one set per seed; N >= 2.
        real: (N', D) finite real samples, shared by all seeds; N' >= 2.
        data: ignored; kept so every metric shares one signature.

    Returns:
        ``kid``, (S,) float64; NaN for a seed whose samples are not all finite or whose KID
        is beyond the float64 range.

    Example:
        Two independent draws of one distribution score ``kid`` ~ 0, of either sign (ring8's
        true sampler against its real set: ~5e-4; a sampler on one mode: ~20).
    """
    _check(fake, real)
    cap = dist.KID_MAX_POINTS
    real = real[:cap].to(torch.float64)
    fake = fake[:, :cap]
    e_real = _exponent(real)
    m = real.shape[0]
    # The real term at e_real; at a larger e it is 2^-6(e - e_real) times that (exact).
    real_term = _poly_sum(real * math.ldexp(1.0, -e_real), None, math.ldexp(1.0, -2 * e_real))
    real_term /= m * (m - 1)

    def score(f: Tensor) -> float:
        f = f.to(torch.float64)
        n, e = f.shape[0], max(e_real, _exponent(f))
        shrink = math.ldexp(1.0, -e)  # exact, a subnormal power of two included
        f, x, c = f * shrink, real * shrink, math.ldexp(1.0, -2 * e)
        fake_term = _poly_sum(f, None, c) / (n * (n - 1))
        cross = _poly_sum(f, x, c) / (n * m)
        return _grow(fake_term + math.ldexp(real_term, -6 * (e - e_real)) - 2.0 * cross, 6 * e)

    return {"kid": dist._per_seed(fake, score)}
