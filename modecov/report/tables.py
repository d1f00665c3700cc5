"""The report's tables from runs.csv: summary, per-metric tables, the VEEGAN/PacGAN paper
table, ranks across datasets and the probability of beating a baseline.

Rows are keyed by variant and, when one store holds several configs of the same
(dataset, variant), by the config fields that differ between them, e.g.
``NS-GAN (lr=0.001, beta1=0.9)``: no config is silently dropped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from modecov.config import EXECUTION_FIELDS, RunConfig
from modecov.data import DATASETS
from modecov.errors import StoreError
from modecov.metrics import DIRECTIONS
from modecov.report import stats
from modecov.report.render import Cell, Column, Row, Table, bold_best, fmt
from modecov.store import RUNS
from modecov.variants import REFERENCES, VARIANTS

CONFIG_FIELDS = tuple(
    f for f in RunConfig.__dataclass_fields__ if f not in (*EXECUTION_FIELDS, "dataset", "variant")
)
"""Config columns that can tell two groups of the same (dataset, variant) apart."""

PAPER = (("modes_covered", "modes"), ("hq_fraction", "HQ %"), ("kl_gen_true", "KL"))
"""The VEEGAN/PacGAN table: per dataset, modes covered, high-quality share (%), reverse KL."""
HEADLINE = ("modes_covered", "modes_balanced", "hq_fraction", "kl_gen_true", "kl_true_gen")
"""Metrics of the rank table (those present in the store)."""
POI_METRICS = ("modes_covered", "hq_fraction", "kl_gen_true")
"""Metrics with a probability-of-improvement table."""
BASELINE = "nsgan"
"""The variant the probability-of-improvement tables compare against by default."""

INTERVAL_TEXT = {
    "ci95": "95% percentile bootstrap interval [low, high] "
    f"({stats.BOOTSTRAP_RESAMPLES} resamples, seed {stats.BOOTSTRAP_SEED})",
    "std": "± one standard deviation over seeds",
    "sem": "± one standard error of the mean",
}
STAT_TEXT = {"mean": "mean", "median": "median", "iqm": "interquartile mean (IQM)"}


@dataclass(frozen=True)
class Options:
    """How cells are aggregated."""

    stat: str = "mean"
    interval: str = "ci95"
    baseline: str = BASELINE


def _order(names, registry_order) -> list[str]:
    known = [n for n in registry_order if n in names]
    return known + sorted(n for n in names if n not in registry_order)


def dataset_label(d: str) -> str:
    """Display name of a dataset key."""
    return DATASETS[d].label if d in DATASETS else d


def variant_label(v: str) -> str:
    """Display name of a variant (or reference sampler) key."""
    spec = VARIANTS.get(v) or REFERENCES.get(v)
    return spec.label if spec is not None else v


def _value_text(x) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "default"
    if isinstance(x, float) and x.is_integer() and abs(x) >= 1:
        return str(int(x))
    if isinstance(x, (float, np.floating)):
        return f"{float(x):g}"
    return str(x)


def settings(runs: pd.DataFrame) -> dict[str, str]:
    """config_id -> the config fields that tell it apart from the other configs of its
    variant on some dataset (``lr=0.001, beta1=0.9``), or "" when it is the only one."""
    fields = [f for f in CONFIG_FIELDS if f in runs.columns]
    configs = runs.drop_duplicates("config_id").set_index("config_id")
    out: dict[str, str] = {}
    for _, group in configs.groupby("variant", sort=True):
        varying = set()
        for _, per_dataset in group.groupby("dataset", sort=True):
            if len(per_dataset) < 2:
                continue
            for f in fields:
                vals = {_value_text(x) for x in per_dataset[f]}
                if len(vals) > 1:
                    varying.add(f)
        keep = [f for f in fields if f in varying]
        for cid, row in group.iterrows():
            out[str(cid)] = ", ".join(f"{f}={_value_text(row[f])}" for f in keep)
    return out


def metrics_of(runs: pd.DataFrame) -> list[str]:
    """Metric columns of runs.csv, in registry order; refuses non-numeric ones."""
    metrics = [m for m in DIRECTIONS if m in runs.columns]
    for metric in metrics:
        if not pd.api.types.is_numeric_dtype(runs[metric]):
            raise StoreError(f"column {metric} of {RUNS} holds values that are not numbers; "
                             "it was edited by hand or damaged")  # fmt: skip
    return metrics


def summary(runs: pd.DataFrame, opts: Options = Options()) -> pd.DataFrame:
    """One row per (dataset, variant, config, metric): n_seeds, the estimate and interval
    chosen by ``opts``, and the plain mean and standard deviation."""
    metrics = metrics_of(runs)
    setting = settings(runs)
    rows = []
    for (dataset, variant, config_id), group in runs.groupby(
        ["dataset", "variant", "config_id"], sort=True
    ):
        for metric in metrics:
            s = stats.summarise(
                group[metric].to_numpy(dtype=float), stat=opts.stat, interval=opts.interval
            )
            rows.append({"dataset": dataset, "variant": variant, "config_id": config_id,
                         "setting": setting[str(config_id)], "metric": metric,
                         "stat": opts.stat, "interval": opts.interval, **s})  # fmt: skip
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class RowKey:
    """A table row: a variant and the setting that tells its configs apart."""

    variant: str
    setting: str

    @property
    def reference(self) -> bool:
        return self.variant in REFERENCES

    @property
    def key(self) -> str:
        return f"{self.variant} ({self.setting})" if self.setting else self.variant

    @property
    def label(self) -> str:
        base = variant_label(self.variant)
        return f"{base} ({self.setting})" if self.setting else base


def row_keys(summ: pd.DataFrame) -> list[RowKey]:
    """Rows in registry order: trained variants first, then the reference samplers."""
    pairs = set(zip(summ["variant"], summ["setting"].fillna("")))
    trained = _order({v for v, _ in pairs if v not in REFERENCES}, list(VARIANTS))
    refs = _order({v for v, _ in pairs if v in REFERENCES}, list(REFERENCES))
    return [RowKey(v, s) for v in (*trained, *refs) for s in sorted(s for w, s in pairs if w == v)]


def datasets_of(summ: pd.DataFrame) -> list[str]:
    return _order(set(summ["dataset"]), list(DATASETS))


def _cells(summ: pd.DataFrame, metric: str) -> dict[tuple[str, RowKey], pd.Series]:
    part = summ[summ["metric"] == metric]
    out = {}
    for _, r in part.iterrows():
        setting = r["setting"] if isinstance(r["setting"], str) else ""
        out[(r["dataset"], RowKey(r["variant"], setting))] = r
    return out


def cell_text(est: float, low: float, high: float, interval: str) -> str:
    """``0.93 [0.88, 0.97]`` for a bootstrap interval, ``0.93 ± 0.04`` for std or sem."""
    if interval == "ci95":
        return f"{fmt(est)} [{fmt(low)}, {fmt(high)}]"
    return f"{fmt(est)} ± {fmt((high - low) / 2.0)}"


def _cell(r: pd.Series | None, interval: str, scale: float = 1.0) -> Cell | None:
    if r is None:
        return None
    est, low, high = (float(r[k]) * scale for k in ("estimate", "low", "high"))
    return Cell(est, low, high, int(r["n_seeds"]), cell_text(est, low, high, interval))


def arrow(metric: str) -> str:
    return "↑" if DIRECTIONS[metric] else "↓"


def metric_table(summ: pd.DataFrame, metric: str, caption: str, opts: Options) -> Table:
    """Variants by datasets for one metric; best cell per column in bold."""
    cells = _cells(summ, metric)
    datasets = datasets_of(summ[summ["metric"] == metric])
    rows = []
    for k in row_keys(summ):
        row_cells = [_cell(cells.get((d, k)), opts.interval) for d in datasets]
        rows.append(Row(k.key, k.label, k.reference, row_cells))
    rows = [r for r in rows if any(c is not None for c in r.cells)]
    bold_best(rows, DIRECTIONS[metric])
    columns = [Column(d, dataset_label(d)) for d in datasets]
    return Table(metric, f"{metric} {arrow(metric)}", columns, rows, caption)


def paper_table(summ: pd.DataFrame, caption: str, opts: Options) -> Table | None:
    """The VEEGAN/PacGAN shape: per dataset, modes covered / HQ % / reverse KL."""
    present = [(m, lab) for m, lab in PAPER if m in set(summ["metric"])]
    if not present:
        return None
    datasets = datasets_of(summ)
    columns = [
        Column(f"{d}:{m}", f"{lab} {arrow(m)}", dataset_label(d))
        for d in datasets
        for m, lab in present
    ]
    tables = {m: _cells(summ, m) for m, _ in present}
    rows = []
    for k in row_keys(summ):
        cells = [
            _cell(tables[m].get((d, k)), opts.interval, 100.0 if m == "hq_fraction" else 1.0)
            for d in datasets
            for m, _ in present
        ]
        rows.append(Row(k.key, k.label, k.reference, cells))
    for j, (_, (m, _)) in enumerate((d, p) for d in datasets for p in present):
        _bold_column(rows, j, DIRECTIONS[m])
    title = "Mode coverage (VEEGAN/PacGAN protocol): modes covered, high-quality samples (%), KL"
    return Table("paper", title, columns, rows, caption)


def _bold_column(rows: list[Row], j: int, higher: bool) -> None:
    sub = [Row(r.key, r.label, r.reference, [r.cells[j]]) for r in rows]
    bold_best(sub, higher)
    for r, s in zip(rows, sub):
        r.cells[j] = s.cells[0]


def rank_table(summ: pd.DataFrame, caption: str) -> Table | None:
    """Mean rank of each trained row across datasets (1 = best; ties share the mean rank),
    per headline metric, ranked by the estimate in the direction of the metric's spec."""
    metrics = [m for m in HEADLINE if m in set(summ["metric"])]
    keys = [k for k in row_keys(summ) if not k.reference]
    if not metrics or len(keys) < 1:
        return None
    columns, per_metric = [], []
    for m in metrics:
        cells = _cells(summ, m)
        ranks: dict[RowKey, list[float]] = {k: [] for k in keys}
        for d in datasets_of(summ):
            present = [
                (k, float(cells[(d, k)]["estimate"]))
                for k in keys
                if (d, k) in cells and math.isfinite(float(cells[(d, k)]["estimate"]))
            ]
            if not present:
                continue
            vals = np.array([v for _, v in present])
            r = rankdata(-vals if DIRECTIONS[m] else vals, method="average")
            for (k, _), rank in zip(present, r):
                ranks[k].append(float(rank))
        per_metric.append(ranks)
        columns.append(Column(m, f"{m} {arrow(m)}"))
    rows = []
    for k in keys:
        cells = []
        for ranks in per_metric:
            rs = ranks[k]
            if not rs:
                cells.append(None)
                continue
            mean = float(np.mean(rs))
            cells.append(Cell(mean, min(rs), max(rs), len(rs), fmt(mean)))
        rows.append(Row(k.key, k.label, False, cells))
    bold_best(rows, higher=False)
    title = (
        "Mean rank across datasets (1 = best, lower is better; arrows give each metric's direction)"
    )
    return Table("ranks", title, columns, rows, caption)


def poi_table(
    runs: pd.DataFrame, summ: pd.DataFrame, metric: str, baseline: str, caption: str
) -> Table | None:
    """P(row beats the baseline) + ½ P(tie) over seed pairs, per dataset and averaged over
    datasets, with stratified bootstrap intervals (rliable's probability of improvement)."""
    if metric not in set(summ["metric"]) or baseline not in set(runs["variant"]):
        return None
    setting = settings(runs)
    values: dict[tuple[str, RowKey], np.ndarray] = {}
    for (d, v, cid), g in runs.groupby(["dataset", "variant", "config_id"], sort=True):
        values[(d, RowKey(v, setting[str(cid)]))] = g[metric].to_numpy(dtype=float)
    datasets = datasets_of(summ)
    higher = DIRECTIONS[metric]
    keys = [k for k in row_keys(summ) if not k.reference and k.variant != baseline]
    rows = []
    for k in keys:
        pairs = []
        for d in datasets:
            base = _baseline_values(values, d, baseline, k.setting)
            pairs.append(None if base is None or (d, k) not in values else (values[(d, k)], base))
        cells = [_poi_cell([p], higher) if p is not None else None for p in pairs]
        both = [p for p in pairs if p is not None]
        cells.append(_poi_cell(both, higher) if both else None)
        if both:  # a row with no comparable baseline on any dataset is left out
            rows.append(Row(k.key, k.label, False, cells))
    if not rows:
        return None
    bold_best(rows, higher=True)
    columns = [Column(d, dataset_label(d)) for d in datasets] + [Column("all", "all datasets")]
    title = (
        f"Probability of beating {variant_label(baseline)} on {metric} {arrow(metric)}: "
        "P(X > Y) + ½ P(X = Y) over seed pairs"
    )
    note = (
        "Intervals: 95% stratified percentile bootstrap over each side's seeds "
        f"({stats.BOOTSTRAP_RESAMPLES} resamples, seed {stats.BOOTSTRAP_SEED}); "
        "'all datasets' averages the per-dataset probabilities; 0.5 = no difference."
    )
    return Table(f"poi_{metric}", title, columns, rows, f"{caption} {note}")


def _baseline_values(values, dataset: str, baseline: str, setting: str) -> np.ndarray | None:
    """The baseline's values on ``dataset``: the config with the same setting, else its only
    config there (None when ambiguous or absent)."""
    same = values.get((dataset, RowKey(baseline, setting)))
    if same is not None:
        return same
    mine = [v for (d, k), v in values.items() if d == dataset and k.variant == baseline]
    return mine[0] if len(mine) == 1 else None


def _poi_cell(pairs, higher: bool) -> Cell:
    est, low, high = stats.poi_ci(pairs, higher=higher)
    n = sum(int(np.isfinite(x).sum()) for x, _ in pairs)
    return Cell(est, low, high, n, cell_text(est, low, high, "ci95"))


def protocol(runs: pd.DataFrame, opts: Options) -> str:
    """The caption of every table: steps, batch, seeds, sample counts and the statistics."""
    trained = runs[~runs["variant"].isin(list(REFERENCES))]
    base = trained if len(trained) else runs

    def span(col: str) -> str:
        vals = sorted(set(base[col].dropna().astype(int))) if col in base else []
        return "/".join(str(v) for v in vals) or "?"

    counts = base.groupby("config_id")["seed"].nunique()
    seeds = str(counts.min()) if counts.min() == counts.max() else f"{counts.min()}–{counts.max()}"
    large = span("n_eval_large")
    return (
        f"Protocol: {span('steps')} generator steps, batch {span('batch_size')}, "
        f"{seeds} seeds per cell, {span('n_eval')} evaluation samples per seed "
        f"({large} for distribution metrics); cells: {STAT_TEXT[opts.stat]} over seeds with "
        f"{INTERVAL_TEXT[opts.interval]}; bold = best variant per column; "
        "reference samplers (below the rule) are scored, not trained."
    )


def build_tables(runs: pd.DataFrame, opts: Options) -> tuple[pd.DataFrame, list[Table]]:
    """The summary and every table, in the order they are written."""
    summ = summary(runs, opts)
    caption = protocol(runs, opts)
    tables: list[Table] = []
    paper = paper_table(summ, caption, opts)
    if paper is not None:
        tables.append(paper)
    ranks = rank_table(summ, caption)
    if ranks is not None:
        tables.append(ranks)
    for m in POI_METRICS:
        t = poi_table(runs, summ, m, opts.baseline, caption)
        if t is not None:
            tables.append(t)
    for m in _order(set(summ["metric"]), list(DIRECTIONS)):
        tables.append(metric_table(summ, m, caption, opts))
    return summ, tables
