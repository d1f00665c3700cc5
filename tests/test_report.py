"""Tests for modecov.report: summary.csv and the Markdown tables, built from runs.csv alone,
byte-reproducible, with means and bootstrap intervals checked against pandas and scipy."""

from __future__ import annotations

import hashlib
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from modecov import report
from modecov.cli import main
from modecov.config import RunConfig
from modecov.data import DATASETS
from modecov.metrics import DIRECTIONS
from modecov.report.stats import BOOTSTRAP_RESAMPLES, bootstrap_ci, summarise
from modecov.store import RUNS
from modecov.variants import REFERENCES, VARIANTS

GROUP = ["dataset", "variant"]


def digest(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root``, by relative path."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def outputs(root: Path) -> dict[str, str]:
    """Digests of what the report writes."""
    return {k: v for k, v in digest(root).items() if k == "summary.csv" or k.startswith("tables")}


def write_runs(root: Path, values: dict[tuple[str, str], dict[str, list[float]]]) -> pd.DataFrame:
    """A runs.csv as modecov writes it: (dataset, variant) -> metric -> per-seed values."""
    rows = []
    for (dataset, variant), metrics in values.items():
        n = len(next(iter(metrics.values())))
        cfg = RunConfig(dataset=dataset, variant=variant, seeds=tuple(range(n)), steps=100)
        for s in range(n):
            row = {"config_id": cfg.config_id, "seed": s, **cfg.canonical()}
            row.update({m: v[s] for m, v in metrics.items()}, status="ok")
            rows.append(row)
    root.mkdir(parents=True, exist_ok=True)
    runs = pd.DataFrame(rows)
    runs.to_csv(root / RUNS, index=False)
    return runs


def random_runs(root: Path, seed: int = 0) -> pd.DataFrame:
    """Random per-seed values for a few metrics of both directions, with some NaNs."""
    rng = np.random.default_rng(seed)
    metrics = ["modes_covered", "hq_fraction", "kl_gen_true", "frechet_distance"]
    values = {}
    for dataset in ("ring8", "grid25", "spiral"):
        for variant in (*VARIANTS, *REFERENCES):
            n = int(rng.integers(3, 9))
            values[(dataset, variant)] = {
                m: [x if rng.random() > 0.1 else math.nan for x in rng.normal(1, 0.4, n)]
                for m in metrics
            }
    return write_runs(root, values)


@pytest.fixture(scope="module")
def smoke_store(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("report") / "store"
    assert main(["run", "--suite", "smoke", "--workers", "1", "--quiet", "--out", str(root)]) == 0
    return root


# -- files --------------------------------------------------------------------------------


def test_report_writes_summary_and_a_table_per_metric(smoke_store, tmp_path, capsys):
    root = tmp_path / "store"
    shutil.copytree(smoke_store, root)
    assert main(["report", str(root)]) == 0
    printed = capsys.readouterr().out.split()
    runs = pd.read_csv(root / RUNS)
    metrics = [m for m in DIRECTIONS if m in runs.columns]
    assert metrics
    expected = [root / "summary.csv", *(root / "tables" / f"{m}.md" for m in metrics)]
    assert printed == [str(p) for p in expected]
    assert all(p.is_file() for p in expected)
    summary = pd.read_csv(root / "summary.csv")
    assert set(summary["metric"]) == set(metrics)
    assert len(summary) == runs.groupby(GROUP).ngroups * len(metrics)


def test_report_built_twice_is_byte_identical_and_uses_runs_csv_only(smoke_store, tmp_path):
    root = tmp_path / "store"
    shutil.copytree(smoke_store, root)
    report.build(root)
    first = outputs(root)
    report.build(root)
    assert outputs(root) == first
    alone = tmp_path / "elsewhere" / "only_runs"
    alone.mkdir(parents=True)
    shutil.copy(root / RUNS, alone / RUNS)
    report.build(alone)
    assert outputs(alone) == first


def test_report_of_random_runs_is_byte_identical(tmp_path):
    random_runs(tmp_path / "a")
    random_runs(tmp_path / "b")
    report.build(tmp_path / "a")
    report.build(tmp_path / "b")
    assert outputs(tmp_path / "a") == outputs(tmp_path / "b")


# -- numbers ------------------------------------------------------------------------------


def test_summary_mean_and_interval_match_pandas_and_bootstrap_ci(tmp_path):
    runs = random_runs(tmp_path)
    report.build(tmp_path)
    summary = pd.read_csv(tmp_path / "summary.csv")
    metrics = [m for m in DIRECTIONS if m in runs.columns]
    grouped = runs.groupby(GROUP)
    assert len(summary) == grouped.ngroups * len(metrics)
    for row in summary.itertuples():
        values = grouped.get_group((row.dataset, row.variant))[row.metric]
        assert row.n_seeds == values.count()
        assert row.mean == pytest.approx(values.mean(), rel=1e-12, abs=1e-15)
        low, high = bootstrap_ci(values.to_numpy())
        assert (row.ci_low, row.ci_high) == (low, high)
        assert row.ci_low <= row.mean <= row.ci_high


@pytest.mark.parametrize(("n", "scale"), [(5, 0.5), (10, 1.0), (40, 0.3)], ids=["n5", "n10", "n40"])
def test_bootstrap_ci_agrees_with_scipy_percentile_bootstrap(n, scale):
    x = np.random.default_rng(n).normal(1.0, scale, n)
    low, high = bootstrap_ci(x)
    ref = scipy.stats.bootstrap(
        (x,), np.mean, method="percentile", n_resamples=100_000, rng=np.random.default_rng(1)
    ).confidence_interval
    assert low == pytest.approx(ref.low, abs=0.02)
    assert high == pytest.approx(ref.high, abs=0.02)
    assert low < x.mean() < high


def test_bootstrap_ci_is_seeded_and_leaves_global_state_alone():
    x = np.random.default_rng(3).random(7)
    state = np.random.get_state()[1].copy()
    assert bootstrap_ci(x) == bootstrap_ci(x.copy())
    assert bootstrap_ci(x, seed=1) != bootstrap_ci(x)
    assert (np.random.get_state()[1] == state).all()
    assert BOOTSTRAP_RESAMPLES >= 1_000


def test_bootstrap_ci_edge_cases():
    assert bootstrap_ci(np.array([0.25])) == (0.25, 0.25)
    assert all(math.isnan(v) for v in bootstrap_ci(np.array([math.nan, math.inf])))
    assert bootstrap_ci(np.array([1.0, math.nan, 2.0])) == bootstrap_ci(np.array([1.0, 2.0]))
    stats = summarise(np.array([1.0, math.nan, 3.0]))
    assert stats["n_seeds"] == 2 and stats["mean"] == 2.0


# -- tables -------------------------------------------------------------------------------


def _label(variant: str) -> str:
    if variant in REFERENCES:
        return f"*{REFERENCES[variant].label}* (reference)"
    return VARIANTS[variant].label


def parse_table(path: Path) -> tuple[str, list[str], dict[str, list[str]]]:
    """(title, column labels, row label -> cells) of a table written by the report."""
    lines = path.read_text().splitlines()
    title = lines[0]
    rows = [line for line in lines if line.startswith("| ")]
    header = rows[0].strip("| ").split(" | ")
    assert header[0] == "variant"
    body = {}
    for line in rows[1:]:
        cells = line[2:-2].split(" | ")
        body[cells[0]] = cells[1:]
    return title, header[1:], body


def test_table_bolds_the_best_variant_per_column_by_direction(tmp_path):
    table = {  # modes_covered is higher-better, kl_gen_true lower-better
        ("ring8", "gan"): (5.0, 0.5),
        ("ring8", "nsgan"): (7.0, 0.2),
        ("ring8", "true_sampler"): (8.0, 0.0),
        ("ring8", "one_mode"): (1.0, 2.0),
        ("grid25", "gan"): (20.0, 0.1),
        ("grid25", "nsgan"): (12.0, 0.3),
        ("grid25", "true_sampler"): (25.0, 0.0),
        ("grid25", "one_mode"): (1.0, 3.0),
    }
    write_runs(tmp_path, {
        key: {"modes_covered": [up] * 3, "kl_gen_true": [down] * 3}
        for key, (up, down) in table.items()
    })  # fmt: skip
    report.build(tmp_path)
    want = {"modes_covered": ("NS-GAN", "GAN"), "kl_gen_true": ("NS-GAN", "GAN")}
    for metric, best in want.items():
        title, columns, body = parse_table(tmp_path / "tables" / f"{metric}.md")
        assert title == f"### {metric} {'↑' if DIRECTIONS[metric] else '↓'}"
        assert columns == [DATASETS["ring8"].label, DATASETS["grid25"].label]
        for j, label in enumerate(best):
            bold = [row for row, cells in body.items() if cells[j].startswith("**")]
            assert bold == [label], (metric, columns[j], body)


def test_every_table_bolds_exactly_the_best_non_reference_cells(tmp_path):
    random_runs(tmp_path, seed=5)
    report.build(tmp_path)
    summary = pd.read_csv(tmp_path / "summary.csv")
    for metric, part in summary.groupby("metric"):
        title, columns, body = parse_table(tmp_path / "tables" / f"{metric}.md")
        assert title.endswith("↑" if DIRECTIONS[metric] else "↓")
        assert "Protocol:" in (tmp_path / "tables" / f"{metric}.md").read_text()
        assert any(c.startswith("**") for cells in body.values() for c in cells)
        labels = {DATASETS[d].label: d for d in part["dataset"]}
        assert sorted(columns) == sorted(labels)
        for j, column in enumerate(columns):
            cells = part[part["dataset"] == labels[column]].set_index("variant")
            trained = cells.loc[[v for v in cells.index if v in VARIANTS], "mean"].dropna()
            best = trained.max() if DIRECTIONS[metric] else trained.min()
            for variant, r in cells.iterrows():
                text = f"{r['mean']:.3g} [{r['ci_low']:.3g}, {r['ci_high']:.3g}]"
                if not math.isfinite(r["mean"]):
                    text = "– [–, –]"
                should_bold = variant in VARIANTS and r["mean"] == best
                expected = f"**{text}**" if should_bold else text
                assert body[_label(variant)][j] == expected, (metric, column, variant)
