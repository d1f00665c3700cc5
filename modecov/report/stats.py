"""Aggregate statistics over seeds: point estimates and intervals, reproducibly."""

from __future__ import annotations

import numpy as np

BOOTSTRAP_SEED = 0
"""Fixed so that tables are byte-reproducible."""
BOOTSTRAP_RESAMPLES = 10_000


def bootstrap_ci(values: np.ndarray, *, level: float = 0.95, seed: int = BOOTSTRAP_SEED):
    """Percentile bootstrap interval of the mean over seeds.

    Args:
        values: (S,) per-seed values; NaNs are dropped first.
        level: coverage of the interval.
        seed: bootstrap seed (a fresh ``numpy.random.Generator``; no global state).

    Returns:
        (low, high); both NaN with no finite value, both equal to the value with one.
    """
    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return float("nan"), float("nan")
    if x.size == 1:
        return float(x[0]), float(x[0])
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, x.size, size=(BOOTSTRAP_RESAMPLES, x.size))
    means = x[idx].mean(axis=1)
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    return float(low), float(high)


def summarise(values: np.ndarray) -> dict[str, float]:
    """Mean over finite seeds with its 95% bootstrap interval and the seed count."""
    x = np.asarray(values, dtype=np.float64)
    finite = x[np.isfinite(x)]
    low, high = bootstrap_ci(finite)
    return {
        "n_seeds": int(finite.size),
        "mean": float(finite.mean()) if finite.size else float("nan"),
        "ci_low": low,
        "ci_high": high,
    }
