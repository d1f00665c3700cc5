"""Training-dynamics metrics: mode hopping, lost modes and time to cover every mode, from
the per-snapshot HQ mode counts recorded during training."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from modecov.data import Dataset


def _check(steps: Tensor, counts: Tensor, data: Dataset) -> Tensor:
    """Validate shapes and return the counts as float64."""
    if counts.ndim != 3 or counts.shape[-1] != data.n_modes or counts.shape[0] == 0:
        raise ValueError(
            f"counts must be (T, S, K) with T >= 1 and K = {data.n_modes} for {data.name!r}, "
            f"got shape {tuple(counts.shape)}"
        )
    if steps.shape != counts.shape[:1]:
        raise ValueError(
            f"steps must be (T,) with T = {counts.shape[0]}, got shape {tuple(steps.shape)}"
        )
    return counts.to(torch.float64)


def _histograms(counts: Tensor) -> tuple[Tensor, Tensor]:
    """(T, S, K) mode histograms and the (T, S) mask of snapshots with at least one HQ sample."""
    total = counts.sum(-1)
    return counts / total.clamp_min(1.0)[..., None], total > 0


def hop_tv(*, steps: Tensor, counts: Tensor, data: Dataset) -> dict[str, Tensor]:
    """Mean total-variation distance between consecutive snapshot histograms.

    A snapshot's histogram is its HQ counts divided by their sum. A snapshot with no HQ
    sample has no histogram, so the pairs (t-1, t) and (t, t+1) that involve it are
    skipped; the mean is over the remaining pairs.

    Args:
        steps: (T,) training step of each snapshot.
        counts: (T, S, K) HQ samples assigned to each mode, per snapshot and seed.
        data: the dataset whose K modes the counts are over.

    Returns:
        ``hop_tv``, (S,) float64 in [0, 1]; NaN for a seed with no valid pair.

    Example:
        A generator whose samples jump from mode 0 to mode 1 and back over three
        snapshots scores 1; one that stays put scores 0.
    """
    hist, valid = _histograms(_check(steps, counts, data))
    tv = 0.5 * (hist[1:] - hist[:-1]).abs().sum(-1)
    pair = valid[1:] & valid[:-1]
    n_pairs = pair.sum(0)
    mean = torch.where(pair, tv, 0.0).sum(0) / n_pairs.clamp_min(1)
    return {"hop_tv": torch.where(n_pairs > 0, mean, math.nan)}


def dominant_switches(*, steps: Tensor, counts: Tensor, data: Dataset) -> dict[str, Tensor]:
    """How often the most-populated mode changes during training.

    Snapshots with no HQ sample are dropped, and the count is over consecutive pairs of
    the snapshots that remain, so a blob that jumps from one mode to another across an
    empty snapshot still counts one switch. Ties go to the lowest mode index.

    Args:
        steps: (T,) training step of each snapshot.
        counts: (T, S, K) HQ samples assigned to each mode, per snapshot and seed.
        data: the dataset whose K modes the counts are over.

    Returns:
        ``dominant_switches``, (S,) float64 counts; 0 with fewer than two valid snapshots.

    Example:
        Dominant modes 0, 0, 3, 3, 0 over five snapshots score 2.
    """
    counts = _check(steps, counts, data)
    _, valid = _histograms(counts)
    dominant = counts.argmax(-1)
    switches = []
    for s in range(counts.shape[1]):
        seq = dominant[valid[:, s], s]
        switches.append((seq[1:] != seq[:-1]).sum())
    return {"dominant_switches": torch.stack(switches).to(torch.float64)}


def modes_lost(*, steps: Tensor, counts: Tensor, data: Dataset) -> dict[str, Tensor]:
    """Modes covered (at least one HQ sample) at some snapshot but not at the last.

    Args:
        steps: (T,) training step of each snapshot.
        counts: (T, S, K) HQ samples assigned to each mode, per snapshot and seed.
        data: the dataset whose K modes the counts are over.

    Returns:
        ``modes_lost``, (S,) float64 counts in [0, K].

    Example:
        Covered modes {0, 1, 2} at the first snapshot and {2, 5} at the last score 2.
    """
    covered = _check(steps, counts, data) >= 1
    lost = covered.any(0) & ~covered[-1]
    return {"modes_lost": lost.sum(-1).to(torch.float64)}


def steps_to_all_modes(*, steps: Tensor, counts: Tensor, data: Dataset) -> dict[str, Tensor]:
    """First training step at which every mode has at least one HQ sample.

    Args:
        steps: (T,) training step of each snapshot.
        counts: (T, S, K) HQ samples assigned to each mode, per snapshot and seed.
        data: the dataset whose K modes the counts are over.

    Returns:
        ``steps_to_all_modes``, (S,) float64 steps; NaN for a seed that never covers all
        modes.

    Example:
        Steps (0, 500, 1000) where all modes are covered only at the second and third
        snapshots score 500.
    """
    complete = (_check(steps, counts, data) >= 1).all(-1)
    first = complete.to(torch.uint8).argmax(0)
    at = steps.to(device=complete.device, dtype=torch.float64)[first]
    return {"steps_to_all_modes": torch.where(complete.any(0), at, math.nan)}
