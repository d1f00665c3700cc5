"""The report's figures (PNG and PDF, matplotlib without pyplot): a summary heatmap of the
store, generated samples over the true modes, metric-vs-step curves with interval bands,
mode histograms against the true weights on imbalanced sets, and the discriminator
landscape over the sample space where D judges one sample.

Everything is drawn from the store: runs.csv, trajectory.csv and samples/<config_id>.npz.
A group without a samples file is left out of the sample figures with a note. Every row
keeps the colour and line style of ``modecov.report.style`` in every figure, and legends
sit below the axes, never on them.
"""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from matplotlib import colormaps
from matplotlib.colors import Normalize, TwoSlopeNorm, to_rgb
from matplotlib.figure import Figure
from scipy.stats import rankdata

from modecov.data import DATASETS
from modecov.metrics import DIRECTIONS
from modecov.report import stats
from modecov.report.render import fmt
from modecov.report.style import style
from modecov.report.tables import (
    Options,
    RowKey,
    dataset_label,
    datasets_of,
    row_keys,
    settings,
)
from modecov.store import atomic_write, read_samples
from modecov.variants import VARIANTS

KINDS = ("summary", "samples", "curves", "modes", "landscape")
"""Figure file prefixes: ``<kind>_<dataset>.png`` and ``.pdf`` (``summary_heatmap``)."""
SUMMARY_STEM = "summary_heatmap"
DPI = 100
PANEL = 3.0
"""Inches per panel side: a grid of r x c panels is (300 c) x (300 r) pixels."""
MAX_COLS = 4
CURVE_METRICS = ("modes_covered", "hq_fraction", "kl_gen_true")
CURVE_SIZE = (4.5, 3.4)
"""Inches per panel of the curve figures (one panel per metric), legend not included."""
REAL_POINTS = 2_000
"""True samples drawn (seeded) as the backdrop of the sample panels."""
LEGEND_FONT = 8
LEGEND_ROW = 0.2
"""Inches per legend row at ``LEGEND_FONT`` points."""
LEGEND_PAD = 0.25
"""Inches between the axes and the legend below them."""
TITLE_CHARS = 34
"""Panel titles wrap past this many characters (a 3-inch panel at 9 points)."""
SUMMARY_METRICS = (
    ("modes_covered_frac", "modes covered / K", 1.0),
    ("hq_fraction", "HQ %", 100.0),
    ("kl_gen_true", "KL(gen ‖ true)", 1.0),
)
"""(runs.csv column, panel title, scale) of the summary heatmap; ``modes_covered_frac`` is
derived from ``modes_covered`` and K when a store lacks it."""
CELL = (0.95, 0.42)
"""Inches per heatmap cell (estimate above, interval below)."""


@dataclass
class Group:
    """One stored group: its dataset, row, committed seeds and style index."""

    config_id: str
    dataset: str
    key: RowKey
    seeds: list[int]
    setting_index: int = 0
    """Position of the row's setting among its variant's settings in the store."""

    @property
    def style(self) -> dict[str, object]:
        return style(self.key.variant, self.setting_index)


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
    # A row's style index is fixed for the whole store, so one config looks alike everywhere;
    # the config at the registry's defaults keeps the variant's own style.
    index = {}
    for v in dict.fromkeys(k.variant for k in order):
        mine = sorted((k for k in order if k.variant == v), key=lambda k: not _is_default(k))
        index.update({k: i for i, k in enumerate(mine)})
    out = [found[(d, k)] for d in datasets_of(summ_like) for k in order if (d, k) in found]
    for g in out:
        g.setting_index = index[g.key]
    return out


def _is_default(key: RowKey) -> bool:
    return all(part.endswith("=default") for part in key.setting.split(", "))


def grid_shape(n: int) -> tuple[int, int]:
    """(rows, cols) of a grid of ``n`` panels."""
    cols = min(MAX_COLS, max(n, 1))
    return math.ceil(max(n, 1) / cols), cols


def legend_shape(labels: list[str], width: float) -> tuple[int, int]:
    """(columns, rows) of a legend of ``labels`` spread over ``width`` inches."""
    longest = max((len(t) for t in labels), default=1)
    # ~0.075 in per character at 8 pt, plus the line sample and the gap between columns.
    ncol = max(1, min(len(labels), int(width // (0.075 * longest + 0.8))))
    return ncol, math.ceil(len(labels) / ncol)


def legend_height(labels: list[str], width: float) -> float:
    """Inches a figure grows by to hold the legend of ``labels`` below its axes."""
    return LEGEND_PAD + LEGEND_ROW * legend_shape(labels, width)[1]


def _legend_below(fig: Figure, handles: list, labels: list[str], width: float) -> None:
    ncol, _ = legend_shape(labels, width)
    fig.legend(handles, labels, loc="outside lower center", ncol=ncol, fontsize=LEGEND_FONT,
               frameon=False, handlelength=3.0)  # fmt: skip


def _title(text: str) -> str:
    return textwrap.fill(text, TITLE_CHARS, break_long_words=False)


def _figure(rows: int, cols: int, size=(PANEL, PANEL), extra_height: float = 0.0) -> Figure:
    return Figure(
        figsize=(size[0] * cols, size[1] * rows + extra_height), dpi=DPI, layout="constrained"
    )


def _save(fig: Figure, folder: Path, stem: str) -> list[Path]:
    paths = [folder / f"{stem}.png", folder / f"{stem}.pdf"]
    atomic_write(paths[0], lambda tmp: fig.savefig(tmp, dpi=DPI, metadata={"Software": None}))
    pdf_meta = {"CreationDate": None, "Creator": None, "Producer": None}
    atomic_write(paths[1], lambda tmp: fig.savefig(tmp, metadata=pdf_meta))
    return paths


def backdrop(ax, dataset: str) -> None:
    """True samples in grey and the mode centres as black crosses, on the dataset's box."""
    data = DATASETS[dataset]
    real = data.sample(REAL_POINTS, torch.Generator().manual_seed(0), dtype=torch.float64)
    ax.scatter(real[:, 0], real[:, 1], s=2, c="0.8", linewidths=0, rasterized=True)
    c = data.centers.numpy()
    # Under the samples: a cross left in sight is a mode no sample reached.
    ax.scatter(c[:, 0], c[:, 1], s=12, c="k", marker="x", linewidths=0.8, zorder=2)
    sample_box(ax, dataset)


def sample_box(ax, dataset: str) -> None:
    """Limit ``ax`` to the dataset's square plot box, without ticks."""
    lo, hi = DATASETS[dataset].bounds()
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


def _modes_fraction(runs: pd.DataFrame) -> pd.Series | None:
    """Per-row modes covered as a fraction of K: the stored column, else modes_covered / K."""
    if "modes_covered_frac" in runs.columns:
        return runs["modes_covered_frac"].astype(float)
    if "modes_covered" not in runs.columns:
        return None
    k = runs["dataset"].map(lambda d: DATASETS[d].n_modes if d in DATASETS else math.nan)
    return runs["modes_covered"].astype(float) / k.astype(float)


def summary_figure(folder: Path, runs: pd.DataFrame, opts: Options, title: str) -> list[Path]:
    """Variant x dataset heatmaps of modes covered / K, HQ % and KL, each cell annotated with
    its estimate and interval over seeds; trained rows by mean rank over the datasets and
    the three metrics (1 = best), reference samplers below them; brighter is better."""
    runs = runs.copy()
    frac = _modes_fraction(runs)
    if frac is not None:
        runs["modes_covered_frac"] = frac
    metrics = [(m, t, sc) for m, t, sc in SUMMARY_METRICS if m in runs.columns]
    if not metrics:
        return []
    all_groups = groups(runs)
    datasets = list(dict.fromkeys(g.dataset for g in all_groups))
    keys = list(dict.fromkeys(g.key for g in all_groups))
    by_cid = {cid: part for cid, part in runs.groupby(runs["config_id"].astype(str))}
    cells: dict[tuple[str, str, RowKey], dict] = {}
    for g in all_groups:
        part = by_cid[g.config_id]
        for m, _, scale in metrics:
            s = stats.summarise(part[m].to_numpy(float) * scale, stat=opts.stat,
                                interval=opts.interval)  # fmt: skip
            cells[(m, g.dataset, g.key)] = s
    trained = [k for k in keys if not k.reference]
    ranks: dict[RowKey, list[float]] = {k: [] for k in trained}
    for m, _, _ in metrics:
        for d in datasets:
            present = [(k, cells[(m, d, k)]["estimate"]) for k in trained if (m, d, k) in cells]
            present = [(k, v) for k, v in present if math.isfinite(v)]
            if not present:
                continue
            vals = np.array([v for _, v in present])
            for (k, _), r in zip(present, rankdata(-vals if DIRECTIONS[m] else vals)):
                ranks[k].append(float(r))
    mean_rank = {k: float(np.mean(r)) if r else math.inf for k, r in ranks.items()}
    ordered = sorted(trained, key=lambda k: mean_rank[k])  # stable: ties keep registry order
    rows = ordered + [k for k in keys if k.reference]
    labels = [
        f"{k.label}  ({mean_rank[k]:.1f})" if k in mean_rank and math.isfinite(mean_rank[k])
        else k.label
        for k in rows
    ]  # fmt: skip
    n_r, n_c = len(rows), len(datasets)
    width = 0.08 * max(len(t) for t in labels) + 0.6 + len(metrics) * (n_c * CELL[0] + 0.9)
    fig = Figure(figsize=(width, 1.6 + n_r * CELL[1]), dpi=DPI, layout="constrained")
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    for j, ((m, name, scale), ax) in enumerate(zip(metrics, axes)):
        est = np.array([[cells.get((m, d, k), {}).get("estimate", math.nan) for d in datasets]
                        for k in rows])  # fmt: skip
        finite = est[np.isfinite(est)]
        top = scale if m != "kl_gen_true" else max(float(finite.max()) if finite.size else 1.0,
                                                    1e-9)  # fmt: skip
        cmap = colormaps["viridis" if DIRECTIONS[m] else "viridis_r"].with_extremes(bad="0.9")
        norm = Normalize(0.0, top)
        im = ax.imshow(np.ma.masked_invalid(est), cmap=cmap, norm=norm, aspect="auto")
        for i, k in enumerate(rows):
            for c, d in enumerate(datasets):
                s = cells.get((m, d, k))
                if s is None or not math.isfinite(s["estimate"]):
                    ax.text(c, i, "–", ha="center", va="center", fontsize=7)
                    continue
                rgb = to_rgb(im.cmap(norm(s["estimate"])))
                ink = "k" if 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2] > 0.5 else "w"
                ax.text(c, i, f"{fmt(s['estimate'])}\n{_interval(s, opts.interval)}",
                        ha="center", va="center", fontsize=6.5, color=ink,
                        linespacing=1.1)  # fmt: skip
        if len(ordered) < n_r and ordered:
            ax.axhline(len(ordered) - 0.5, color="w", lw=2.5)  # trained rows above, refs below
        ax.set_xticks(range(n_c), [textwrap.fill(dataset_label(d), 12) for d in datasets],
                      fontsize=8)  # fmt: skip
        ax.xaxis.tick_top()
        ax.set_yticks(range(n_r), labels if j == 0 else [], fontsize=8)
        ax.tick_params(length=0)
        ax.set_title(f"{name} {'↑' if DIRECTIONS[m] else '↓'}", fontsize=10)
        fig.colorbar(im, ax=ax, location="bottom", shrink=0.8, aspect=30, pad=0.01)
    # ~0.09 in per character at 10 pt: the title wraps to the figure's width.
    fig.suptitle(textwrap.fill(title, max(40, int(width / 0.09))), fontsize=10)
    return _save(fig, folder, SUMMARY_STEM)


def _interval(s: dict, interval: str) -> str:
    if interval == "ci95":
        return f"[{fmt(s['low'])}, {fmt(s['high'])}]"
    return f"± {fmt((s['high'] - s['low']) / 2.0)}"


def samples_figures(root: Path, folder: Path, runs: pd.DataFrame, notes: list[str]) -> list[Path]:
    """One grid per 2-D dataset: every row's first seed's samples, in the row's colour, over
    the true samples (grey) and the mode centres (black crosses)."""
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
            backdrop(ax, d)
            x = arrays["samples"][0]
            ax.scatter(x[:, 0], x[:, 1], s=3, color=g.style["color"], alpha=0.6, linewidths=0,
                       rasterized=True, zorder=3)  # fmt: skip
            ax.set_title(_title(f"{g.key.label} (seed {int(arrays['seeds'][0])})"), fontsize=9)
        fig.suptitle(f"{dataset_label(d)}: generated samples (colour) over true samples (grey); "
                     "a visible × is a mode no sample reached")  # fmt: skip
        written += _save(fig, folder, f"samples_{d}")
    return written


def landscape_figures(root: Path, folder: Path, runs: pd.DataFrame, notes: list[str]) -> list[Path]:
    """One grid per 2-D dataset: the discriminator's judgement over the sample space at the
    end of training (first seed), its samples on top, for every row whose D judges one
    sample (``Variant.landscape``); red = judged real, EBGAN's energy negated to match."""
    written = []
    all_groups = [g for g in groups(runs) if _judges_one_sample(g.key.variant)]
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
            draw_landscape(ax, d, realness(g.key.variant, arrays["landscape"][0]),
                           arrays["samples"][0])  # fmt: skip
            ax.set_title(_title(f"{g.key.label} (seed {int(arrays['seeds'][0])})"), fontsize=9)
        energy = [g.key.label for g, _ in entries if VARIANTS[g.key.variant].d_energy]
        note = f"; {', '.join(energy)}: energy negated" if energy else ""
        fig.suptitle(f"{dataset_label(d)}: discriminator over the sample space, red = judged "
                     f"real, blue = judged fake (centred on its median){note}",
                     fontsize=10)  # fmt: skip
        written += _save(fig, folder, f"landscape_{d}")
    return written


def _judges_one_sample(variant: str) -> bool:
    # A store written before Variant.landscape existed may hold grid outputs of pair or
    # minibatch critics; the declaration, not the file, decides what is drawn.
    return variant in VARIANTS and VARIANTS[variant].landscape


def realness(variant: str, values: np.ndarray) -> np.ndarray:
    """D's stored output oriented so that higher means judged more real (energies negated)."""
    v = np.asarray(values, dtype=np.float64)
    spec = VARIANTS.get(variant)
    return -v if spec is not None and spec.d_energy else v


def draw_landscape(ax, dataset: str, values: np.ndarray, samples: np.ndarray | None) -> object:
    """Draw an (L, L) judgement (higher = more real, see ``realness``) over the dataset's box,
    centred on its median: red above, blue below."""
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
    sample_box(ax, dataset)
    return im


def histogram_figures(root: Path, folder: Path, runs: pd.DataFrame, notes: list[str]) -> list[Path]:
    """One grid per imbalanced dataset: each row's share of HQ samples per mode (mean over
    seeds) as bars in the row's colour, the true weights as black marks, modes sorted by
    weight."""
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
            ax.bar(k, share, color=g.style["color"], width=0.8)
            ax.scatter(k, w[order], c="k", marker="_", s=60 if len(w) <= 50 else 4,
                       linewidths=1.5, zorder=3)  # fmt: skip
            ax.set_ylim(0, top)
            ax.set_xticks([])
            ax.tick_params(labelsize=7)
            ax.set_title(_title(g.key.label), fontsize=9)
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
    the ``opts`` estimate and interval over seeds as a line and a band, in the row's style;
    one legend below the panels."""
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
        labels = [g.key.label for g in mine]
        width = CURVE_SIZE[0] * len(metrics)
        fig = _figure(1, len(metrics), size=CURVE_SIZE,
                      extra_height=legend_height(labels, width))  # fmt: skip
        handles = []
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
                st = g.style
                (line,) = ax.plot(steps, est, lw=1.2, color=st["color"], ls=st["linestyle"],
                                  marker=st["marker"], ms=3.5,
                                  markevery=max(1, len(steps) // 5))  # fmt: skip
                ax.fill_between(steps, low, high, color=st["color"], alpha=0.12, lw=0)
                if j == 0:
                    handles.append(line)
            ax.set_title(f"{m} {'↑' if DIRECTIONS[m] else '↓'}", fontsize=10)
            ax.set_xlabel("generator step")
        _legend_below(fig, handles, labels, width)
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
    title = (
        f"{root.name}: {opts.stat} over seeds, {_INTERVAL_WORDS[opts.interval]}; rows by mean "
        "rank (in brackets) over datasets and metrics, references below the line; "
        "brighter = better"
    )
    written = summary_figure(folder, runs, opts, title)
    written += samples_figures(root, folder, runs, notes)
    written += curve_figures(folder, runs, traj, opts)
    written += histogram_figures(root, folder, runs, notes)
    written += landscape_figures(root, folder, runs, notes)
    return written, notes


_INTERVAL_WORDS = {"ci95": "95% bootstrap interval", "std": "± std", "sem": "± sem"}
