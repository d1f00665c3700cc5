"""Aggregate statistics over seeds: point estimates, intervals and the probability of
improvement, reproducibly (every bootstrap draws from its own seeded generator)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from scipy.stats import trim_mean

BOOTSTRAP_SEED = 0
"""Fixed so that tables are byte-reproducible."""
BOOTSTRAP_RESAMPLES = 10_000
LEVEL = 0.95
"""Coverage of every bootstrap interval."""

STATS = ("mean", "median", "iqm")
"""Point estimates over seeds: mean, median, interquartile mean (rliable's IQM)."""
INTERVALS = ("ci95", "std", "sem")
"""Intervals: 95% percentile bootstrap of the estimate, ± one standard deviation over
seeds, ± one standard error of the mean."""


def _iqm(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Interquartile mean: the mean of the middle 50% (25% trimmed from each end)."""
    return trim_mean(x, 0.25, axis=axis)


STAT_FNS: dict[str, Callable[..., np.ndarray]] = {
    "mean": np.mean,
    "median": np.median,
    "iqm": _iqm,
}
"""Statistic name -> ``fn(x, axis=...)``."""


def _finite(values) -> np.ndarray:
    x = np.asarray(values, dtype=np.float64).ravel()
    return x[np.isfinite(x)]


def bootstrap_ci(
    values: np.ndarray,
    *,
    stat: str = "mean",
    level: float = LEVEL,
    seed: int = BOOTSTRAP_SEED,
    resamples: int = BOOTSTRAP_RESAMPLES,
) -> tuple[float, float]:
    """Percentile bootstrap interval of a statistic over seeds.

    Args:
        values: (S,) per-seed values; NaNs and infinities are dropped first.
        stat: one of ``STATS``.
        level: coverage of the interval.
        seed: bootstrap seed (a fresh ``numpy.random.Generator``; no global state).
        resamples: bootstrap resamples.

    Returns:
        (low, high); both NaN with no finite value, both equal to the value with one.
    """
    x = _finite(values)
    if x.size == 0:
        return math.nan, math.nan
    if x.size == 1:
        return float(x[0]), float(x[0])
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, x.size, size=(resamples, x.size))
    boot = STAT_FNS[stat](x[idx], axis=1)
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(boot, [alpha, 1.0 - alpha])
    return float(low), float(high)


def summarise(values: np.ndarray, *, stat: str = "mean", interval: str = "ci95") -> dict:
    """Point estimate and interval of per-seed values.

    Args:
        values: (S,) per-seed values; non-finite ones are left out (diverged seeds keep
            their last finite scores, so a NaN means the score is undefined).
        stat: one of ``STATS``.
        interval: one of ``INTERVALS``; ``std`` and ``sem`` are symmetric about the estimate.

    Returns:
        ``n_seeds``, ``estimate``, ``low``, ``high``, and the plain ``mean`` and ``std``
        (ddof = 1) for reference.
    """
    x = _finite(values)
    n = int(x.size)
    if n == 0:
        nan = math.nan
        return {"n_seeds": 0, "estimate": nan, "low": nan, "high": nan, "mean": nan, "std": nan}
    est = float(STAT_FNS[stat](x))
    std = float(x.std(ddof=1)) if n > 1 else 0.0
    if interval == "ci95":
        low, high = bootstrap_ci(x, stat=stat)
    else:
        half = std if interval == "std" else std / math.sqrt(n)
        low, high = est - half, est + half
    return {
        "n_seeds": n,
        "estimate": est,
        "low": low,
        "high": high,
        "mean": float(x.mean()),
        "std": std,
    }


def probability_of_improvement(x: np.ndarray, y: np.ndarray, *, higher: bool = True) -> float:
    """P(X beats Y) + ½ P(X ties Y) over all (x, y) seed pairs (Mann–Whitney U / (n m)).

    Args:
        x: (S,) values of the candidate; non-finite ones are dropped.
        y: (S',) values of the baseline; non-finite ones are dropped.
        higher: True when a higher value beats a lower one.

    Returns:
        The probability in [0, 1]; NaN when either side has no finite value.
    """
    x, y = _finite(x), _finite(y)
    if x.size == 0 or y.size == 0:
        return math.nan
    return float(_poi(x[None], y[None], higher)[0])


def _poi(x: np.ndarray, y: np.ndarray, higher: bool) -> np.ndarray:
    """Row-wise probability of improvement of (R, n) ``x`` over (R, m) ``y``."""
    diff = x[:, :, None] - y[:, None, :]
    if not higher:
        diff = -diff
    return ((diff > 0).mean(axis=(1, 2)) + 0.5 * (diff == 0).mean(axis=(1, 2))).astype(float)


def poi_ci(
    pairs: Sequence[tuple[np.ndarray, np.ndarray]],
    *,
    higher: bool = True,
    level: float = LEVEL,
    seed: int = BOOTSTRAP_SEED,
    resamples: int = BOOTSTRAP_RESAMPLES,
) -> tuple[float, float, float]:
    """Probability of improvement averaged over tasks, with a stratified bootstrap interval.

    As rliable reports it: each task (dataset) gives P(X > Y) + ½ P(X = Y) over its seed
    pairs; the estimate is their mean over tasks; each bootstrap resample draws the
    candidate's and the baseline's seeds with replacement within every task.

    Args:
        pairs: per task, the candidate's (S,) and the baseline's (S',) values.
        higher: True when a higher value beats a lower one.
        level: coverage of the interval.
        seed: bootstrap seed.
        resamples: bootstrap resamples.

    Returns:
        (estimate, low, high); NaN when no task has finite values on both sides.
    """
    tasks = [(_finite(x), _finite(y)) for x, y in pairs]
    tasks = [(x, y) for x, y in tasks if x.size and y.size]
    if not tasks:
        return math.nan, math.nan, math.nan
    est = float(np.mean([_poi(x[None], y[None], higher)[0] for x, y in tasks]))
    rng = np.random.default_rng(seed)
    boot = np.zeros(resamples)
    for x, y in tasks:
        xi = x[rng.integers(0, x.size, size=(resamples, x.size))]
        yi = y[rng.integers(0, y.size, size=(resamples, y.size))]
        boot += _poi(xi, yi, higher)
    boot /= len(tasks)
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(boot, [alpha, 1.0 - alpha])
    return est, float(low), float(high)


def bootstrap_diff(
    x: np.ndarray,
    y: np.ndarray,
    *,
    stat: str = "mean",
    level: float = LEVEL,
    seed: int = BOOTSTRAP_SEED,
    resamples: int = BOOTSTRAP_RESAMPLES,
) -> tuple[float, float, float]:
    """stat(y) - stat(x) of two independent samples, with a percentile bootstrap interval.

    Each resample draws x's and y's values with replacement, each side on its own (the
    seeds of two sample sets are not paired).

    Args:
        x: (S,) values of the reference (e.g. the true sampler); non-finite ones are dropped.
        y: (S',) values of the other side; non-finite ones are dropped.
        stat: one of ``STATS``.
        level: coverage of the interval.
        seed: bootstrap seed (a fresh ``numpy.random.Generator``; no global state).
        resamples: bootstrap resamples.

    Returns:
        (estimate, low, high); NaN when either side has no finite value.
    """
    x, y = _finite(x), _finite(y)
    if x.size == 0 or y.size == 0:
        return math.nan, math.nan, math.nan
    fn = STAT_FNS[stat]
    est = float(fn(y) - fn(x))
    rng = np.random.default_rng(seed)
    bx = fn(x[rng.integers(0, x.size, size=(resamples, x.size))], axis=1)
    by = fn(y[rng.integers(0, y.size, size=(resamples, y.size))], axis=1)
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(by - bx, [alpha, 1.0 - alpha])
    return est, float(low), float(high)
