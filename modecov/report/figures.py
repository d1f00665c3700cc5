"""The report's figures (PNG and PDF, matplotlib without pyplot): generated samples over the
true modes, metric-vs-step curves with interval bands, mode histograms against the true
weights on imbalanced sets, and the discriminator landscape over the sample space.

Everything is drawn from the store: runs.csv, trajectory.csv and samples/<config_id>.npz.
A group without a samples file is left out of the sample figures with a note.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure

from modecov.data import DATASETS
from modecov.metrics import DIRECTIONS
from modecov.report import stats
from modecov.report.tables import (
    Options,
    RowKey,
    dataset_label,
    datasets_of,
    row_keys,
    settings,
)
from modecov.store import read_samples

KINDS = ("samples", "curves", "modes", "landscape")
"""Figure file prefixes: ``<kind>_<dataset>.png`` and ``.pdf``."""
DPI = 100
PANEL = 3.0
"""Inches per panel side: a grid of r x c panels is (300 c) x (300 r) pixels."""
MAX_COLS = 4
CURVE_METRICS = ("modes_covered", "hq_fraction", "kl_gen_true")
CURVE_SIZE = (4.0, 3.2)
"""Inches per panel of the curve figures (one panel per metric)."""
REAL_POINTS = 2_000
"""True samples drawn (seeded) as the backdrop of the sample panels."""


@dataclass
class Group:
    """One stored group: its dataset, row and committed seeds."""

    config_id: str
    dataset: str
    key: RowKey
    seeds: list[int]


def groups(runs: pd.DataFrame) -> list[Group]:
    """Every stored group, in table order (datasets, then rows)."""
    setting = settings(runs)
    found = {}
    for (cid, d, v), g in runs.groupby(["config_id", "dataset", "variant"], sort=True):
        key = RowKey(v, setting[str(cid)])
        found[(d, key)] = Group(str(cid), d, key, sorted(int(s) for s in g["seed"]))
    summ_like = pd.DataFrame(
        [{"dataset": d, "variant": k.variant, "setting": k.setting} for d, k in found]
    )
    order = row_keys(summ_like)
    return [found[(d, k)] for d in datasets_of(summ_like) for k in order if (d, k) in found]


def grid_shape(n: int) -> tuple[int, int]:
    """(rows, cols) of a grid of ``n`` panels."""
    cols = min(MAX_COLS, max(n, 1))
    return math.ceil(max(n, 1) / cols), cols


def _figure(rows: int, cols: int, size=(PANEL, PANEL)) -> Figure:
    return Figure(figsize=(size[0] * cols, size[1] * rows), dpi=DPI, layout="constrained")


def _save(fig: Figure, folder: Path, stem: str) -> list[Path]:
    paths = [folder / f"{stem}.png", folder / f"{stem}.pdf"]
    fig.savefig(paths[0], dpi=DPI, metadata={"Software": None})
    fig.savefig(paths[1], metadata={"CreationDate": None, "Creator": None, "Producer": None})
    return paths


def _backdrop(ax, dataset: str) -> None:
    """True samples in grey and the mode centres as red crosses, on the dataset's box."""
    data = DATASETS[dataset]
    real = data.sample(REAL_POINTS, torch.Generator().manual_seed(0), dtype=torch.float64)
    ax.scatter(real[:, 0], real[:, 1], s=2, c="0.75", linewidths=0, rasterized=True)
    c = data.centers.numpy()
    ax.scatter(c[:, 0], c[:, 1], s=12, c="tab:red", marker="x", linewidths=0.8)
    lo, hi = data.bounds()
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])


def _plane(dataset: str) -> bool:
    return dataset in DATASETS and DATASETS[dataset].dim == 2


def _stored(root: Path, groups_of_d: list[Group], need: str) -> tuple[list, list[str]]:
    """(group, arrays) for the groups whose samples file holds ``need``, and the labels of
    those without a readable samples file."""
    entries, missing = [], []
    for g in groups_of_d:
        arrays = read_samples(root, g.config_id, set(g.seeds))
        if arrays is None:
            missing.append(g.key.label)
        elif need in arrays:
            entries.append((g, arrays))
    return entries, missing


def samples_figures(root: Path, folder: Path, runs: pd.DataFrame, notes: list[str]) -> list[Path]:
    """One grid per 2-D dataset: every row's first seed's samples over the true modes."""
    written = []
    all_groups = groups(runs)
    for d in dict.fromkeys(g.dataset for g in all_groups):
        if not _plane(d):
            continue
        entries, missing = _stored(root, [g for g in all_groups if g.dataset == d], "samples")
        if missing:
            which = "any group" if not entries else ", ".join(missing)
            notes.append(f"{dataset_label(d)}: no samples stored for {which}")
        if not entries:
            continue
        rows, cols = grid_shape(len(entries))
        fig = _figure(rows, cols)
        for i, (g, arrays) in enumerate(entries):
            ax = fig.add_subplot(rows, cols, i + 1)
            _backdrop(ax, d)
            x = arrays["samples"][0]
            ax.scatter(
                x[:, 0], x[:, 1], s=3, c="tab:blue", alpha=0.6, linewidths=0, rasterized=True
            )
            ax.set_title(f"{g.key.label} (seed {int(arrays['seeds'][0])})", fontsize=9)
        fig.suptitle(f"{dataset_label(d)}: generated samples (blue) over the true modes")
        written += _save(fig, folder, f"samples_{d}")
    return written


def landscape_figures(root: Path, folder: Path, runs: pd.DataFrame, notes: list[str]) -> list[Path]:
    """One grid per 2-D dataset: each trained row's discriminator output over the sample
    space at the end of training (first seed), its samples on top."""
    written = []
    all_groups = [g for g in groups(runs) if not g.key.reference]
    for d in dict.fromkeys(g.dataset for g in all_groups):
        if not _plane(d):
            continue
        entries, _ = _stored(root, [g for g in all_groups if g.dataset == d], "landscape")
        if not entries:
            continue
        rows, cols = grid_shape(len(entries))
        fig = _figure(rows, cols)
        for i, (g, arrays) in enumerate(entries):
            ax = fig.add_subplot(rows, cols, i + 1)
            draw_landscape(ax, d, arrays["landscape"][0], arrays["samples"][0])
            ax.set_title(f"{g.key.label} (seed {int(arrays['seeds'][0])})", fontsize=9)
        fig.suptitle(f"{dataset_label(d)}: discriminator output (red high, blue low) and samples")
        written += _save(fig, folder, f"landscape_{d}")
    return written


def draw_landscape(ax, dataset: str, values: np.ndarray, samples: np.ndarray | None) -> object:
    """Draw an (L, L) discriminator output over the dataset's box, centred on its median."""
    data = DATASETS[dataset]
    lo, hi = data.bounds()
    v = np.asarray(values, dtype=np.float64)
    mid = float(np.median(v))
    span = max(float(np.abs(v - mid).max()), 1e-12)
    im = ax.imshow(
        v, origin="lower", extent=(lo, hi, lo, hi), cmap="RdBu_r",
        norm=TwoSlopeNorm(mid, mid - span, mid + span), interpolation="bilinear",
    )  # fmt: skip
    c = data.centers.numpy()
    ax.scatter(c[:, 0], c[:, 1], s=12, c="k", marker="x", linewidths=0.8)
    if samples is not None:
        ax.scatter(samples[:, 0], samples[:, 1], s=2, c="k", alpha=0.4, linewidths=0,
                   rasterized=True)  # fmt: skip
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    return im


def histogram_figures(root: Path, folder: Path, runs: pd.DataFrame, notes: list[str]) -> list[Path]:
    """One grid per imbalanced dataset: each row's share of HQ samples per mode (mean over
    seeds) as bars, the true weights as black marks, modes sorted by weight."""
    written = []
    all_groups = groups(runs)
    for d in dict.fromkeys(g.dataset for g in all_groups):
        if d not in DATASETS:
            continue
        w = DATASETS[d].weights.numpy()
        if np.allclose(w, w[0]):
            continue
        order = np.argsort(-w, kind="stable")
        entries, _ = _stored(root, [g for g in all_groups if g.dataset == d], "mode_counts")
        if not entries:
            continue
        rows, cols = grid_shape(len(entries))
        fig = _figure(rows, cols, size=(PANEL, PANEL * 0.8))
        k = np.arange(len(w))
        shares = []
        for _, arrays in entries:
            counts = arrays["mode_counts"].astype(np.float64)
            totals = counts.sum(axis=1, keepdims=True)
            share = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
            shares.append(share.mean(axis=0)[order])
        for i, ((g, _), share) in enumerate(zip(entries, shares)):
            # Each panel's y-scale fits its tallest bar or weight: with 1,000 modes
            # (stacked_digits) every bar would be a hairline on a 0-1 axis.
            top = min(1.0, 1.15 * max(float(w.max()), float(share.max())))
            ax = fig.add_subplot(rows, cols, i + 1)
            ax.bar(k, share, color="tab:blue", width=0.8)
            ax.scatter(k, w[order], c="k", marker="_", s=60 if len(w) <= 50 else 4,
                       linewidths=1.5, zorder=3)  # fmt: skip
            ax.set_ylim(0, top)
            ax.set_xticks([])
            ax.set_title(g.key.label, fontsize=9)
        fig.suptitle(
            f"{dataset_label(d)}: share of HQ samples per mode (bars, mean over seeds) "
            "vs true weights (black)",
            fontsize=10,
        )
        written += _save(fig, folder, f"modes_{d}")
    return written


def curve_figures(
    folder: Path, runs: pd.DataFrame, traj: pd.DataFrame, opts: Options
) -> list[Path]:
    """One figure per dataset: each trained row's metric against the training step, with
    the ``opts`` estimate and interval over seeds as a line and a band."""
    if traj.empty:
        return []
    written = []
    metrics = [m for m in CURVE_METRICS if m in set(traj["metric"])]
    trained = [g for g in groups(runs) if not g.key.reference]
    by_config = {cid: part for cid, part in traj.groupby(traj["config_id"].astype(str))}
    for d in dict.fromkeys(g.dataset for g in trained):
        mine = [g for g in trained if g.dataset == d and g.config_id in by_config]
        if not mine or not metrics:
            continue
        fig = _figure(1, len(metrics), size=CURVE_SIZE)
        for j, m in enumerate(metrics):
            ax = fig.add_subplot(1, len(metrics), j + 1)
            for g in mine:
                part = by_config[g.config_id]
                part = part[(part["metric"] == m) & part["seed"].isin(g.seeds)]
                steps, est, low, high = [], [], [], []
                for step, at in part.groupby("step", sort=True):
                    s = stats.summarise(at["value"].to_numpy(float), stat=opts.stat,
                                        interval=opts.interval)  # fmt: skip
                    steps.append(step)
                    est.append(s["estimate"])
                    low.append(s["low"])
                    high.append(s["high"])
                (line,) = ax.plot(steps, est, label=g.key.label, lw=1.2)
                ax.fill_between(steps, low, high, color=line.get_color(), alpha=0.2, lw=0)
            ax.set_title(f"{m} {'↑' if DIRECTIONS[m] else '↓'}", fontsize=10)
            ax.set_xlabel("generator step")
            if j == 0:
                ax.legend(fontsize=7)
        fig.suptitle(f"{dataset_label(d)}: {opts.stat} over seeds, band: {opts.interval}")
        written += _save(fig, folder, f"curves_{d}")
    return written


def build_figures(
    root: Path, runs: pd.DataFrame, traj: pd.DataFrame, opts: Options
) -> tuple[list[Path], list[str]]:
    """Write every figure under root/figures/; returns the paths and notes on what is missing."""
    folder = root / "figures"
    folder.mkdir(exist_ok=True)
    notes: list[str] = []
    written = samples_figures(root, folder, runs, notes)
    written += curve_figures(folder, runs, traj, opts)
    written += histogram_figures(root, folder, runs, notes)
    written += landscape_figures(root, folder, runs, notes)
    return written, notes
