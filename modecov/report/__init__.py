"""Report: summary.csv and per-metric tables, built from the store's CSVs alone."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from modecov.data import DATASETS
from modecov.errors import StoreError
from modecov.metrics import DIRECTIONS
from modecov.report.stats import summarise
from modecov.store import RUNS, _atomic_write, _read_csv
from modecov.variants import REFERENCES, VARIANTS

SUMMARY = "summary.csv"


def summary(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per (dataset, variant, metric): n_seeds, mean, 95% bootstrap interval."""
    metrics = [m for m in DIRECTIONS if m in runs.columns]
    for metric in metrics:
        if not pd.api.types.is_numeric_dtype(runs[metric]):
            raise StoreError(f"column {metric} of {RUNS} holds values that are not numbers; "
                             "it was edited by hand or damaged")  # fmt: skip
    rows = []
    for (dataset, variant, config_id), group in runs.groupby(
        ["dataset", "variant", "config_id"], sort=True
    ):
        for metric in metrics:
            stats = summarise(group[metric].to_numpy(dtype=float))
            rows.append({"dataset": dataset, "variant": variant, "config_id": config_id,
                         "metric": metric, **stats})  # fmt: skip
    return pd.DataFrame(rows)


def _fmt(x: float) -> str:
    """Three significant figures; an en dash for a missing value."""
    return f"{x:.3g}" if math.isfinite(x) else "–"


def _order(names, registry_order) -> list[str]:
    known = [n for n in registry_order if n in names]
    return known + sorted(n for n in names if n not in registry_order)


def metric_table(summ: pd.DataFrame, metric: str, protocol: str) -> str:
    """A Markdown table of one metric: variants by datasets, best cell per column in bold."""
    higher = DIRECTIONS[metric]
    part = summ[summ["metric"] == metric]
    datasets = _order(set(part["dataset"]), list(DATASETS))
    variants = _order(set(part["variant"]) - set(REFERENCES), list(VARIANTS))
    refs = _order(set(part["variant"]) & set(REFERENCES), list(REFERENCES))
    cell = {(r.dataset, r.variant): r for r in part.itertuples()}
    best = {}
    for d in datasets:
        means = [cell[(d, v)].mean for v in variants if (d, v) in cell]
        means = [m for m in means if math.isfinite(m)]
        if means:
            best[d] = max(means) if higher else min(means)
    arrow = "↑" if higher else "↓"
    lines = [
        f"### {metric} {arrow}",
        "",
        "| variant | "
        + " | ".join(DATASETS[d].label if d in DATASETS else d for d in datasets)
        + " |",
        "|---|" + "---|" * len(datasets),
    ]
    for group in (variants, refs):
        for v in group:
            label = (
                (VARIANTS.get(v) or REFERENCES.get(v)).label
                if v in VARIANTS or v in REFERENCES
                else v
            )
            if group is refs:
                label = f"*{label}* (reference)"
            cells = []
            for d in datasets:
                r = cell.get((d, v))
                if r is None:
                    cells.append("")
                    continue
                text = f"{_fmt(r.mean)} [{_fmt(r.ci_low)}, {_fmt(r.ci_high)}]"
                if group is variants and d in best and r.mean == best[d]:
                    text = f"**{text}**"
                cells.append(text)
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += ["", protocol, ""]
    return "\n".join(lines)


def protocol_line(runs: pd.DataFrame) -> str:
    """A footer stating the protocol behind a table."""
    trained = runs[~runs["variant"].isin(list(REFERENCES))]
    base = trained if len(trained) else runs

    def span(col):
        vals = sorted(set(base[col].dropna().astype(int))) if col in base else []
        return "/".join(str(v) for v in vals) or "?"

    counts = base.groupby("config_id")["seed"].nunique()
    seeds = str(counts.min()) if counts.min() == counts.max() else f"{counts.min()}–{counts.max()}"
    return (
        f"Protocol: {span('steps')} generator steps, batch {span('batch_size')}, "
        f"{seeds} seeds per cell, {span('n_eval')} evaluation samples; "
        "cells are the mean over seeds with a 95% bootstrap interval [low, high]; "
        "bold = best variant per column; reference rows are not trained."
    )


def build(root: str | Path) -> list[Path]:
    """Write summary.csv and tables/<metric>.md under ``root`` from its runs.csv."""
    root = Path(root)
    if not (root / RUNS).exists():
        raise StoreError(f"{root} holds no {RUNS}; run `modecov run --out {root}` first")
    runs = _read_csv(root / RUNS, ["config_id", "seed", "dataset", "variant"])
    if runs.empty:
        raise StoreError(f"{root / RUNS} has no rows yet")
    summ = summary(runs)
    written = [root / SUMMARY]
    _atomic_write(root / SUMMARY, summ.to_csv(index=False))
    tables = root / "tables"
    tables.mkdir(exist_ok=True)
    protocol = protocol_line(runs)
    for metric in _order(set(summ["metric"]), list(DIRECTIONS)):
        path = tables / f"{metric}.md"
        _atomic_write(path, metric_table(summ, metric, protocol))
        written.append(path)
    index = {"tables": [p.name for p in written[1:]]}
    _atomic_write(tables / "index.json", json.dumps(index, indent=2) + "\n")
    return written
