"""The metric benchmark's report (``modecov report results/metrics``), from scores.csv alone:
the sensitivity of every metric output to every corruption (rank correlation with the
strength, detection of the mildest strength), the samples each needs, a figure per
(corruption, dataset) and a README whose sentences are derived from the table."""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from modecov.errors import ConfigError, StoreError
from modecov.metricbench import COLUMNS, CORRUPTIONS, NAME, NONE, NONE_LABEL, SCORES
from modecov.metrics import DIRECTIONS
from modecov.report import render, stats
from modecov.report.readme import provenance
from modecov.report.render import Cell, Column, Row, Table, bold_best, fmt
from modecov.report.tables import STAT_TEXT, dataset_label
from modecov.store import RUNS, Store, atomic_write, read_csv

REPORT_N = 2_500
"""The sample size of the sensitivity table (the VEEGAN/PacGAN evaluation count); the long
CSV has every size."""
SEES_RHO = 0.5
"""A metric sees a corruption when its mean signed rank correlation reaches this and it
detects the mildest strength on at least half the datasets."""
BLIND_RHO = 0.3
"""A metric is blind to a corruption when its mean signed rank correlation is within ±this
and it detects the mildest strength on fewer than half the datasets; a correlation at most
-this means the corruption makes it look better. Spearman's rho over 10 seeds x 3-5 levels of
unrelated values has a standard deviation of 0.14-0.19 on one dataset: this keeps noise out of
both verdicts."""
WORSE, BETTER, UNMOVED = "worse", "better", "no"
"""Outcomes of the mildest strength: the metric moves in its declared direction (worse),
significantly the other way (better), or its interval holds 0."""
TABLES = ("sensitivity", "samples_needed")
LONG = "sensitivity_by_n.csv"
FORMATS = {"md": render.markdown, "tex": render.latex, "csv": render.csv}


def is_store(root: str | Path) -> bool:
    """Whether ``root`` holds a metric-benchmark store (its manifest's suite, or scores.csv
    without a training store's runs.csv)."""
    root = Path(root)
    try:
        if Store(root).manifest().get("suite") == NAME:
            return True
    except (OSError, StoreError):
        pass
    return (root / SCORES).exists() and not (root / RUNS).exists()


def _arrow(metric: str) -> str:
    return "↑" if DIRECTIONS[metric] else "↓"


def _refuse_mixed(path: Path, scores: pd.DataFrame) -> None:
    """Raise StoreError when one output holds rows of two versions of its metric or
    corruption: one table would mix two definitions."""
    for col in ("metric_versions", "corruption_version"):
        key = "metric" if col == "metric_versions" else "corruption"
        counts = scores.groupby(key)[col].nunique(dropna=False)
        mixed = counts[counts > 1]
        if len(mixed):
            raise StoreError(
                f"{path} mixes rows of {int(mixed.iloc[0])} versions of {mixed.index[0]!r}; finish "
                f"`modecov run --suite {NAME} --rerun-stale --out {path.parent}` before reporting"
            )


@dataclass(frozen=True)
class Test:
    """The sensitivity of one metric output to one corruption on one dataset at one N."""

    dataset: str
    corruption: str
    metric: str
    n: int
    scored_at: int
    """The N whose cell gave the values: ``n``, or a smaller N for a metric that reads no
    more samples at ``n`` than there (not re-scored, ``metricbench.sizes_for``)."""
    rho: float
    """Spearman correlation with the level, signed so +1 = worse as the corruption grows."""
    values: int
    """Finite values behind ``rho`` (seeds x levels)."""
    levels: int
    """Levels with a finite value, the true sampler's included."""
    mildest: float
    """Strength of level 1."""
    diff: float
    """Signed difference of means, mildest strength minus true sampler (> 0: worse)."""
    low: float
    high: float
    detected: str
    """``WORSE``, ``BETTER``, ``UNMOVED``, or "" when undefined."""


def _signed_rho(levels: np.ndarray, values: np.ndarray, sign: float) -> float:
    keep = np.isfinite(values)
    levels, values = levels[keep], values[keep]
    if len(np.unique(levels)) < 2:
        return math.nan
    if np.all(values == values[0]):
        return 0.0  # a metric that does not move at all: blind, not undefined
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rho = spearmanr(levels, values).statistic
    return float(sign * rho) if math.isfinite(rho) else math.nan


def sensitivity(
    scores: pd.DataFrame, reuse: Mapping[str, Sequence[int]] | None = None
) -> list[Test]:
    """Every (dataset, corruption, metric, N) test of a store's rows.

    The signed Spearman correlation pools every seed of every level, the true sampler as
    level 0; the mildest strength's difference to the true sampler has a 95% percentile
    bootstrap interval over each side's seeds (``stats.bootstrap_diff``, fixed seed).

    Args:
        scores: the rows of scores.csv.
        reuse: output key -> the sizes N at which it was not re-scored because it reads no
            more samples there than at the next smaller N, whose cells stand for them.
    """
    reuse = reuse or {}
    metrics = [m for m in DIRECTIONS if m in set(scores["metric"])]
    groups = {
        key: part.sort_values("seed")["value"].to_numpy(float)
        for key, part in scores.groupby(["dataset", "corruption", "level", "n", "metric"])
    }
    strengths = {
        key: float(part["strength"].iloc[0])
        for key, part in scores.groupby(["dataset", "corruption", "level"])
    }
    sizes = {d: sorted(set(part["n"])) for d, part in scores.groupby("dataset")}
    out = []
    for d in _order(set(scores["dataset"])):
        for c in [c for c in CORRUPTIONS if (d, c, 1) in strengths]:
            levels = sorted(lv for (dd, cc, lv) in strengths if dd == d and cc == c)
            for m in metrics:
                sign = -1.0 if DIRECTIONS[m] else 1.0
                scored = [n for n in sizes[d] if (d, NONE, 0, n, m) in groups]
                for n in sizes[d]:
                    src = n
                    if n not in scored:
                        smaller = [k for k in scored if k < n]
                        if n not in reuse.get(m, ()) or not smaller:
                            continue
                        src = smaller[-1]
                    base = groups[(d, NONE, 0, src, m)]
                    series = [(lv, groups.get((d, c, lv, src, m))) for lv in levels]
                    series = [(lv, v) for lv, v in series if v is not None]
                    if not series or series[0][0] != 1:
                        continue
                    lv = np.concatenate(
                        [np.zeros(len(base))] + [np.full(len(v), k) for k, v in series]
                    )
                    vals = np.concatenate([base] + [v for _, v in series])
                    est, low, high = stats.bootstrap_diff(base, series[0][1])
                    if sign < 0:
                        est, low, high = -est, -high, -low
                    if not math.isfinite(est):
                        detected = ""
                    else:
                        detected = WORSE if low > 0 else BETTER if high < 0 else UNMOVED
                    finite = np.isfinite(vals)
                    out.append(Test(
                        dataset=d, corruption=c, metric=m, n=int(n), scored_at=int(src),
                        rho=_signed_rho(lv, vals, sign), values=int(finite.sum()),
                        levels=len(np.unique(lv[finite])), mildest=strengths[(d, c, 1)],
                        diff=est, low=low, high=high, detected=detected,
                    ))  # fmt: skip
    return out


def reused_sizes(manifest: dict) -> dict[str, list[int]]:
    """Output key -> the sizes at which the run did not re-score its metric (the manifest's
    ``sample_counts.not_rescored``, by metric name)."""
    from modecov.metrics import METRICS

    skipped = manifest.get("sample_counts", {}).get("not_rescored", {})
    out: dict[str, list[int]] = {}
    for name, sizes in skipped.items():
        if name in METRICS:
            out.update({k: [int(n) for n in sizes] for k in METRICS[name].outputs})
    return out


def _order(datasets: set[str]) -> list[str]:
    from modecov.data import DATASETS

    known = [d for d in DATASETS if d in datasets]
    return known + sorted(datasets - set(known))


def long_table(tests: list[Test]) -> pd.DataFrame:
    """One row per test (``tables/sensitivity_by_n.csv``)."""
    cols = list(Test.__dataclass_fields__)
    return pd.DataFrame([[getattr(t, c) for c in cols] for t in tests], columns=cols)


@dataclass(frozen=True)
class Verdict:
    """One metric output against one corruption at ``REPORT_N``, over the datasets."""

    rho: float
    """Mean signed correlation over the datasets."""
    low: float
    high: float
    datasets: int
    worse: int
    better: int

    @property
    def kind(self) -> str:
        """``sees``, ``wrong way``, ``blind`` or ``partly`` (see ``KINDS_TEXT``)."""
        half = self.datasets / 2.0
        if self.rho >= SEES_RHO and self.worse >= half:
            return "sees"
        if self.rho <= -BLIND_RHO or (self.better >= half and self.rho < BLIND_RHO):
            return "wrong way"
        if abs(self.rho) < BLIND_RHO and self.worse < half:
            return "blind"
        return "partly"


KINDS_TEXT = (
    f"a metric *sees* a corruption when its mean signed rank correlation with the strength "
    f"is at least {SEES_RHO} and the mildest strength moves it in its declared direction on "
    f"at least half the datasets; the corruption makes it look *better* when the correlation "
    f"is at most -{BLIND_RHO}, or below {BLIND_RHO} with the mildest strength moving it "
    f"significantly the other way on at least half the datasets; it is *blind* when the "
    f"correlation is within ±{BLIND_RHO} and the mildest strength is detected on fewer than "
    "half the datasets; anything else is *partly*"
)
"""How ``Verdict.kind`` decides, for the README."""


def verdicts(tests: list[Test], n: int) -> dict[tuple[str, str], Verdict]:
    """(metric, corruption) -> its verdict over the datasets at sample size ``n``."""
    out = {}
    frame = long_table([t for t in tests if t.n == n])
    if frame.empty:
        return out
    for (m, c), part in frame.groupby(["metric", "corruption"], sort=False):
        rhos = part["rho"].to_numpy(float)
        rhos = rhos[np.isfinite(rhos)]
        if rhos.size == 0:
            continue
        out[(m, c)] = Verdict(
            rho=float(rhos.mean()), low=float(rhos.min()), high=float(rhos.max()),
            datasets=len(part), worse=int((part["detected"] == WORSE).sum()),
            better=int((part["detected"] == BETTER).sum()),
        )  # fmt: skip
    return out


def report_n(tests: list[Test]) -> int:
    """``REPORT_N`` when the store has it, else its largest sample size."""
    sizes = {t.n for t in tests}
    return REPORT_N if REPORT_N in sizes or not sizes else max(sizes)


def _metrics(tests: list[Test]) -> list[str]:
    have = {t.metric for t in tests}
    return [m for m in DIRECTIONS if m in have]


def _corruptions(tests: list[Test]) -> list[str]:
    have = {t.corruption for t in tests}
    return [c for c in CORRUPTIONS if c in have]


def protocol(scores: pd.DataFrame) -> str:
    """What every table states: datasets, sizes, seeds, real sets and the corruptions."""
    datasets = ", ".join(dataset_label(d) for d in _order(set(scores["dataset"])))
    sizes = "/".join(f"{n:,}" for n in sorted(set(scores["n"].astype(int))))
    seeds = scores.groupby(["dataset", "corruption", "level", "n", "metric"])["seed"].nunique()
    seeds_text = str(seeds.min()) if seeds.min() == seeds.max() else f"{seeds.min()}-{seeds.max()}"
    corruptions = "; ".join(
        f"{c}: {CORRUPTIONS[c].description}" for c in CORRUPTIONS if c in set(scores["corruption"])
    )
    return (
        f"Corruptions of each dataset's true sampler ({datasets}), no training; "
        f"N = {sizes} samples per set, {seeds_text} seeds per cell, each scored against N true "
        f"samples from a stream of their own, as training scores its final samples. "
        f"Corruptions ({corruptions})."
    )


def sensitivity_table(tests: list[Test], n: int, caption: str) -> Table:
    """Metric outputs by corruptions at ``n``: mean signed rank correlation over datasets and
    how many datasets detect the mildest strength."""
    found = verdicts(tests, n)
    corruptions = _corruptions(tests)
    rows = []
    for m in _metrics(tests):
        cells: list[Cell | None] = []
        for c in corruptions:
            v = found.get((m, c))
            if v is None:
                cells.append(None)
                continue
            text = f"{fmt(v.rho)} ({v.worse}/{v.datasets}" + (
                f"; {v.better} rev.)" if v.better else ")"
            )
            cells.append(Cell(v.rho, v.low, v.high, v.datasets, text))
        rows.append(Row(m, f"{m} {_arrow(m)}", False, cells))
    bold_best(rows, higher=True)
    note = (
        f"Cells at N = {n:,}: Spearman rank correlation (rho) of the metric with the "
        "corruption's level (0 = the true sampler, then each strength from the mildest), over "
        "every seed of every level, signed so that +1 = the metric worsens (in its declared "
        "direction, ↑ or ↓) as the corruption grows; mean over the datasets (their range is "
        "the CSV's low/high); a metric constant over every level has rho = 0. (d/D): datasets "
        "on which the mildest strength moves the metric in its declared direction, its 95% "
        f"percentile bootstrap interval of the difference of means to the true sampler "
        f"({stats.BOOTSTRAP_RESAMPLES} resamples of each side's seeds, seed "
        f"{stats.BOOTSTRAP_SEED}) excluding 0; rev.: datasets on which it moves significantly "
        "the other way (looks better). Bold: the highest rho per corruption."
    )
    title = "Sensitivity of each metric to each corruption (rank correlation with strength)"
    return Table("sensitivity", title, [Column(c, CORRUPTIONS[c].label) for c in corruptions],
                 rows, f"{caption} {note}", corner="metric")  # fmt: skip


def samples_needed(tests: list[Test]) -> dict[tuple[str, str], float]:
    """(metric, corruption) -> the smallest N from which the mildest strength is detected in
    the declared direction on at least half the datasets, at that N and every larger N the
    metric is scored at (NaN when at none)."""
    frame = long_table(tests)
    out = {}
    for (m, c), part in frame.groupby(["metric", "corruption"], sort=False):
        ok = {
            int(n): (g["detected"] == WORSE).sum() >= len(g) / 2.0
            for n, g in part.groupby("n", sort=True)
        }
        needed = math.nan
        for n in sorted(ok, reverse=True):
            if not ok[n]:
                break
            needed = float(n)
        out[(m, c)] = needed
    return out


def samples_table(tests: list[Test], caption: str) -> Table:
    """Metric outputs by corruptions: the samples each needs to see the mildest strength."""
    needed = samples_needed(tests)
    corruptions = _corruptions(tests)
    rows = []
    for m in _metrics(tests):
        cells: list[Cell | None] = []
        for c in corruptions:
            if (m, c) not in needed:
                cells.append(None)
                continue
            n = needed[(m, c)]
            cells.append(Cell(n, text=f"{int(n):,}" if math.isfinite(n) else "–"))
        rows.append(Row(m, f"{m} {_arrow(m)}", False, cells))
    bold_best(rows, higher=False)
    note = (
        "Cells: the smallest N from which the mildest strength moves the metric in its declared "
        "direction (95% bootstrap interval of the difference to the true sampler excluding 0) "
        "on at least half the datasets, at that N and at every larger N the metric is scored "
        "at; –: at no N. A metric that reads at most C samples per set is not re-scored at an N "
        "beyond C where it would read no more than at a smaller N. Bold: the fewest per "
        "corruption."
    )
    title = "Samples needed to detect the mildest strength of each corruption"
    return Table("samples_needed", title, [Column(c, CORRUPTIONS[c].label) for c in corruptions],
                 rows, f"{caption} {note}", corner="metric")  # fmt: skip


def _listing(items: list[tuple[str, float]]) -> str:
    return ", ".join(f"`{m}` ({fmt(r)})" for m, r in items)


def findings(tests: list[Test], n: int) -> list[str]:
    """README sentences, one per corruption and one per metric, derived from the verdicts at
    ``n`` (nothing here is typed by hand)."""
    found = verdicts(tests, n)
    lines = ["### By corruption", ""]
    for c in _corruptions(tests):
        by_kind: dict[str, list[tuple[str, float]]] = {}
        for m in _metrics(tests):
            if (m, c) in found:
                v = found[(m, c)]
                by_kind.setdefault(v.kind, []).append((m, v.rho))
        parts = []
        if by_kind.get("sees"):
            parts.append("seen by " + _listing(by_kind["sees"]))
        if by_kind.get("partly"):
            parts.append("partly seen by " + _listing(by_kind["partly"]))
        if by_kind.get("blind"):
            parts.append("not seen by " + _listing(by_kind["blind"]))
        if by_kind.get("wrong way"):
            parts.append("it makes these look *better*: " + _listing(by_kind["wrong way"]))
        spec = CORRUPTIONS[c]
        lines.append(f"- **{spec.label}** ({spec.description}): " + "; ".join(parts) + ".")
    lines += ["", "### By metric", ""]
    for m in _metrics(tests):
        kinds: dict[str, list[str]] = {}
        for c in _corruptions(tests):
            if (m, c) in found:
                kinds.setdefault(found[(m, c)].kind, []).append(CORRUPTIONS[c].name)
        parts = []
        for kind, words in (("sees", "sees"), ("partly", "partly sees"),
                            ("blind", "is blind to"), ("wrong way", "improves under")):  # fmt: skip
            if kinds.get(kind):
                parts.append(f"{words} {', '.join(kinds[kind])}")
        lines.append(f"- `{m}` {_arrow(m)} " + "; ".join(parts) + ".")
    return lines


def figure(scores: pd.DataFrame, corruption: str, dataset: str, stat: str, interval: str):
    """The figure of one (corruption, dataset): a panel per metric output, the metric against
    the strength (the true sampler first), one curve per sample size with its interval over
    seeds; None when the store lacks the corruption or the true sampler there.

    Returns:
        A matplotlib Figure, or None.
    """
    from matplotlib import colormaps

    from modecov.report.figures import PANEL, _figure, _legend_below, grid_shape, legend_height

    rows_of = scores["dataset"] == dataset
    part = scores[rows_of & scores["corruption"].isin([NONE, corruption])]
    if not (part["corruption"] == corruption).any() or not (part["corruption"] == NONE).any():
        return None
    sizes = sorted(set(scores["n"].astype(int)))
    cmap = colormaps["viridis"]
    colors = {n: cmap(0.85 * i / max(1, len(sizes) - 1)) for i, n in enumerate(sizes)}
    markers = dict(zip(sizes, "osD^v<>*"))
    levels = part.groupby("level")["strength"].first().sort_index()
    spec = CORRUPTIONS[corruption]
    ticks = [NONE_LABEL if lv == 0 else spec.text(s) for lv, s in levels.items()]
    mine = [m for m in DIRECTIONS if m in set(part["metric"])]
    values = {k: g["value"].to_numpy(float) for k, g in part.groupby(["metric", "n", "level"])}
    shown = [n for n in sizes if any(k[1] == n for k in values)]
    labels = [f"N = {n:,}" for n in shown]
    rows, cols = grid_shape(len(mine))
    width = PANEL * cols
    fig = _figure(rows, cols, extra_height=legend_height(labels, width))
    handles: dict[int, object] = {}
    for j, m in enumerate(mine):
        ax = fig.add_subplot(rows, cols, j + 1)
        for n in shown:
            pts = [(lv, values[(m, n, lv)]) for lv in levels.index if (m, n, lv) in values]
            if not pts:
                continue
            summ = [stats.summarise(v, stat=stat, interval=interval) for _, v in pts]
            xs = [lv for lv, _ in pts]
            (line,) = ax.plot(xs, [s["estimate"] for s in summ], color=colors[n],
                              marker=markers[n], ms=3.5, lw=1.2)  # fmt: skip
            ax.fill_between(xs, [s["low"] for s in summ], [s["high"] for s in summ],
                            color=colors[n], alpha=0.15, lw=0)  # fmt: skip
            handles.setdefault(n, line)
        ax.set_title(f"{m} {_arrow(m)}", fontsize=10)
        ax.set_xticks(list(levels.index), ticks, fontsize=8)
        ax.tick_params(axis="y", labelsize=8)
    _legend_below(fig, [handles[n] for n in shown if n in handles],
                  [f"N = {n:,}" for n in shown if n in handles], width)  # fmt: skip
    fig.suptitle(f"{spec.label} on {dataset_label(dataset)}: {STAT_TEXT[stat]} over seeds, "
                 f"band: {_BAND[interval]}")  # fmt: skip
    return fig


def _figures(root: Path, scores: pd.DataFrame, stat: str, interval: str) -> list[Path]:
    """Every (corruption, dataset) figure, as figures/<corruption>_<dataset>.png and .pdf."""
    from modecov.report.figures import _save

    folder = root / "figures"
    folder.mkdir(exist_ok=True)
    written = []
    for c in [c for c in CORRUPTIONS if c in set(scores["corruption"])]:
        for d in _order(set(scores["dataset"])):
            fig = figure(scores, c, d, stat, interval)
            if fig is not None:
                written += _save(fig, folder, f"{c}_{d}")
    for old in folder.glob("*_*.*"):  # figures of an earlier build this one did not draw
        if old.stem.split("_")[0] in CORRUPTIONS and old not in written:
            old.unlink()
    return written


_BAND = {"ci95": "95% bootstrap interval", "std": "± std", "sem": "± sem"}
"""``--interval`` in a figure's title."""


def _manifest(root: Path) -> dict:
    try:
        return Store(root).manifest()
    except (OSError, StoreError):
        return {}


def readme(
    root: Path, scores: pd.DataFrame, tests: list[Test], tables: list[Table], figures: list[Path]
) -> str:
    """The README of a metric-benchmark store."""
    man = _manifest(root)
    n = report_n(tests)
    caption = protocol(scores)
    lines = [
        f"# modecov results: {man.get('suite', NAME)}",
        "",
        "Written by `modecov report` from the CSVs in this directory; do not edit by hand.",
        "",
        "Which metric sees which kind of damage, and how many samples it needs: controlled "
        "corruptions of each dataset's true sampler, whose ground truth is known, scored by "
        "every metric (`modecov run --suite metrics`, no training).",
        "",
        "## Protocol",
        "",
        caption,
    ]
    lines += provenance(man)
    skipped = man.get("sample_counts", {}).get("not_rescored", {})
    if skipped:
        lines += [
            "",
            "Not re-scored where they would read no more samples than at a smaller N: "
            + "; ".join(
                f"`{m}` at N = {', '.join(f'{k:,}' for k in ns)}" for m, ns in skipped.items()
            )
            + " (`distribution_sample_caps` in manifest.json).",
        ]
    mildest = man.get("sample_counts", {}).get("mildest_only", [])
    if mildest:
        sizes = ", ".join(f"{n:,}" for n in mildest)
        lines += [
            "",
            f"At N = {sizes} only the true sampler and each corruption's mildest strength are "
            "scored: that size answers whether more samples let a metric detect the mildest "
            "damage (the samples-needed table); its rank correlations in the long CSV span "
            "those two levels.",
        ]
    left_out = man.get("excluded_datasets", {})
    if left_out:
        lines += ["", "Datasets left out:", ""]
        lines += [f"- `{d}`: {why}." for d, why in left_out.items()]
    pairs = set(zip(scores["dataset"], scores["corruption"]))
    datasets = _order(set(scores["dataset"]))
    for c in [c for c in CORRUPTIONS if any((d, c) in pairs for d in datasets)]:
        without = [d for d in datasets if (d, c) not in pairs]
        if without:
            why = CORRUPTIONS[c].not_applicable or "not run"
            lines += ["", f"`{c}` is not run on {', '.join(f'`{d}`' for d in without)}: {why}."]
    lines += [
        "",
        f"## Which metric sees what (N = {n:,})",
        "",
        f"Derived from the sensitivity table: {KINDS_TEXT}.",
        "",
        *findings(tests, n),
    ]
    by_name = {t.name: t for t in tables}
    lines += ["", "## Tables", ""]
    for name in TABLES:
        if name in by_name:
            text = render.markdown(by_name[name])
            lines += [text.replace(f"{caption} ", "").replace(f"\n{caption}\n", "\n"), ""]
    lines += [
        "Every table is also in `tables/` as Markdown, LaTeX (booktabs) and CSV; "
        f"[`tables/{LONG}`](tables/{LONG}) has every dataset and every N.",
    ]
    pngs = [p for p in figures if p.suffix == ".png"]
    if pngs:
        lines += ["", "## Figures", "",
                  "Each metric against the corruption's strength (the true sampler first), one "
                  "curve per sample size, the band its interval over seeds.", ""]  # fmt: skip
        for c in CORRUPTIONS:
            mine = [p for p in pngs if p.stem.startswith(f"{c}_")]
            if not mine:
                continue
            lines += [
                f"### {CORRUPTIONS[c].label}",
                "",
                f"![{mine[0].stem}](figures/{mine[0].name})",
            ]
            if len(mine) > 1:
                lines += [
                    "",
                    "Other datasets: "
                    + ", ".join(f"[{p.stem}](figures/{p.name})" for p in mine[1:])
                    + ".",
                ]
            lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def build(
    root: str | Path,
    *,
    stat: str = "mean",
    interval: str = "ci95",
    baseline: str | None = None,
    figures: bool = True,
) -> list[Path]:
    """Write tables/, figures/ and README.md of a metric-benchmark store.

    Args:
        root: the store (``results/metrics``).
        stat: point estimate over seeds in the figures.
        interval: interval over seeds in the figures.
        baseline: must be None: the benchmark compares corruptions, not variants.
        figures: draw the figures (tests of tables alone turn them off).

    Returns:
        The written paths, in order.

    Raises:
        StoreError: no scores, a damaged CSV, or rows of two versions of a metric.
        ConfigError: a baseline, or an unknown statistic or interval.
    """
    if baseline is not None:
        raise ConfigError(f"--baseline does not apply to the {NAME} suite (no variants)")
    if stat not in stats.STATS or interval not in stats.INTERVALS:
        raise ConfigError(f"--stat must be one of {', '.join(stats.STATS)} and --interval one "
                          f"of {', '.join(stats.INTERVALS)}")  # fmt: skip
    root = Path(root)
    path = root / SCORES
    if not path.exists():
        raise StoreError(f"{root} holds no {SCORES}; run `modecov run --suite {NAME} --out {root}`")
    scores = read_csv(path, COLUMNS)
    if scores.empty:
        raise StoreError(f"{path} has no rows yet")
    scores = scores.astype({"level": int, "n": int, "seed": int})
    _refuse_mixed(path, scores)
    scores = scores[scores["metric"].isin(list(DIRECTIONS))]
    tests = sensitivity(scores, reused_sizes(_manifest(root)))
    if not tests:
        raise StoreError(f"{path} holds no corruption with its true-sampler rows yet")
    caption = protocol(scores)
    tables = [
        sensitivity_table(tests, report_n(tests), caption),
        samples_table(tests, caption),
    ]
    folder = root / "tables"
    folder.mkdir(exist_ok=True)
    written = []
    for t in tables:
        for ext, fn in FORMATS.items():
            written.append(atomic_write(folder / f"{t.name}.{ext}", fn(t)))
    long = long_table(tests)
    written.append(atomic_write(folder / LONG, long.to_csv(index=False, lineterminator="\n")))
    index = {"tables": [t.name for t in tables], "formats": list(FORMATS), "long": LONG}
    atomic_write(folder / "index.json", json.dumps(index, indent=2) + "\n")
    figs = _figures(root, scores, stat, interval) if figures else []
    written += figs
    written.append(atomic_write(root / "README.md", readme(root, scores, tests, tables, figs)))
    return written
