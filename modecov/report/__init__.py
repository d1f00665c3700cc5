"""Report: summary.csv, tables (Markdown, LaTeX, CSV), figures and README.md, built from a
results store's files alone (runs.csv, trajectory.csv, samples/); no metric is re-run."""

from __future__ import annotations

import json
from pathlib import Path

from modecov.errors import StoreError, unknown
from modecov.report import metricbench, render
from modecov.report.stats import INTERVALS, STATS
from modecov.report.tables import BASELINE, Options, build_tables, protocol
from modecov.store import RUNS, Store, atomic_write
from modecov.variants import VARIANTS

SUMMARY = "summary.csv"
README = "README.md"
FORMATS = {"md": render.markdown, "tex": render.latex, "csv": render.csv}


def _options(stat: str, interval: str, baseline: str) -> Options:
    if stat not in STATS:
        raise unknown("statistic", stat, STATS)
    if interval not in INTERVALS:
        raise unknown("interval", interval, INTERVALS)
    if baseline not in VARIANTS:
        raise unknown("baseline variant", baseline, VARIANTS)
    return Options(stat=stat, interval=interval, baseline=baseline)


def _previous_tables(folder: Path) -> list[Path]:
    """Files of the tables that the last report listed in tables/index.json."""
    try:
        names = json.loads((folder / "index.json").read_text())["tables"]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    return [folder / f"{n}.{ext}" for n in names if isinstance(n, str) for ext in FORMATS]


def _remove_stale(folder: Path, written: list[Path], previous: list[Path]) -> None:
    """Delete report outputs of an earlier build that this build did not write (a table of a
    baseline no longer chosen), so the directory shows one report."""
    keep = set(written)
    for path in previous:
        if path.parent == folder and path not in keep and path.is_file():
            path.unlink()


def _refuse_mixed(root: Path, runs) -> None:
    """Raise StoreError when rows were computed by different versions of the metrics: one
    table would rank numbers of two definitions (a ``--rerun-stale`` run cut short)."""
    if "metric_versions" not in runs.columns:
        return
    kinds = runs["metric_versions"].fillna("<none recorded>").astype(str).unique()
    if len(kinds) > 1:
        raise StoreError(
            f"{root / RUNS} mixes rows computed by {len(kinds)} different metric versions; "
            f"finish `modecov run --rerun-stale --out {root}` before reporting"
        )


def build(
    root: str | Path,
    *,
    stat: str = "mean",
    interval: str = "ci95",
    baseline: str | None = None,
    figures: bool = True,
) -> list[Path]:
    """Write summary.csv, tables/, figures/ and README.md under ``root``.

    Args:
        root: a results directory holding runs.csv.
        stat: point estimate over seeds (``mean``, ``median``, ``iqm``).
        interval: ``ci95`` (percentile bootstrap), ``std`` or ``sem``.
        baseline: variant the probability-of-improvement tables compare against; None means
            ``tables.BASELINE``, and those tables are left out when it is not in the store.
        figures: draw the figures (tests of tables alone turn them off).

    Returns:
        The written paths, in order.

    Raises:
        StoreError: no runs.csv, no rows, a damaged CSV, or a named baseline not stored.
        ConfigError: an unknown statistic, interval or baseline.
    """
    if metricbench.is_store(root):  # the metric benchmark: scores.csv, no runs
        return metricbench.build(root, stat=stat, interval=interval, baseline=baseline,
                                 figures=figures)  # fmt: skip
    opts = _options(stat, interval, baseline or BASELINE)
    root = Path(root)
    if not (root / RUNS).exists():
        raise StoreError(f"{root} holds no {RUNS}; run `modecov run --out {root}` first")
    store = Store(root)  # read only: no lock, every file is replaced atomically
    runs = store.runs()
    if runs.empty:
        raise StoreError(f"{root / RUNS} has no rows yet")
    runs["config_id"] = runs["config_id"].astype(str)
    if baseline is not None and baseline not in set(runs["variant"]):
        stored = sorted(set(runs["variant"]))
        raise StoreError(f"baseline {baseline!r} is not in {root / RUNS}; it holds "
                         f"{', '.join(stored)}")  # fmt: skip
    _refuse_mixed(root, runs)
    traj = store.trajectory()
    summ, tables = build_tables(runs, opts)
    written = [root / SUMMARY]
    atomic_write(root / SUMMARY, summ.to_csv(index=False, lineterminator="\n"))
    folder = root / "tables"
    folder.mkdir(exist_ok=True)
    for t in tables:
        for ext, fn in FORMATS.items():
            path = folder / f"{t.name}.{ext}"
            atomic_write(path, fn(t))
            written.append(path)
    _remove_stale(folder, written, _previous_tables(folder))
    index = {"tables": [t.name for t in tables], "formats": list(FORMATS)}
    atomic_write(folder / "index.json", json.dumps(index, indent=2) + "\n")
    figs, notes = [], []
    if figures:
        from modecov.report.figures import KINDS, build_figures

        figs, notes = build_figures(root, runs, traj, opts)
        written += figs
        old = [p for p in (root / "figures").glob("*_*.*") if p.stem.split("_")[0] in KINDS]
        _remove_stale(root / "figures", figs, old)
    from modecov.report.readme import readme

    text = readme(root, tables, figs, notes, protocol(runs, opts))
    atomic_write(root / README, text)
    written.append(root / README)
    return written
