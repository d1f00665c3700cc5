"""Tests for modecov.report: summary.csv and the tables (Markdown, LaTeX, CSV) built from
runs.csv alone, byte-reproducible, with every statistic checked against scipy, a hand-
computed case or a brute-force count."""

from __future__ import annotations

import itertools
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.stats
from helpers import cli, digest

from modecov import report
from modecov.config import RunConfig, grid_configs
from modecov.data import DATASETS
from modecov.evaluate import train
from modecov.metrics import DIRECTIONS
from modecov.report import render, stats, tables
from modecov.report.stats import (
    BOOTSTRAP_RESAMPLES,
    bootstrap_ci,
    poi_ci,
    probability_of_improvement,
    summarise,
)
from modecov.store import RUNS, Store
from modecov.variants import REFERENCES, VARIANTS

GROUP = ["dataset", "variant"]
TABLE_EXTS = ("md", "tex", "csv")


def outputs(root: Path) -> dict[str, str]:
    """Digests of the tables and summary the report writes."""
    return {k: v for k, v in digest(root).items() if k == "summary.csv" or k.startswith("tables")}


def write_runs(
    root: Path, values: dict[tuple[str, str], dict[str, list[float]]], **config
) -> pd.DataFrame:
    """A runs.csv as modecov writes it: (dataset, variant) -> metric -> per-seed values."""
    rows = []
    for (dataset, variant), metrics in values.items():
        n = len(next(iter(metrics.values())))
        cfg = RunConfig(dataset=dataset, variant=variant, seeds=tuple(range(n)), steps=100,
                        **config)  # fmt: skip
        for s in range(n):
            row = {"config_id": cfg.config_id, "seed": s, **cfg.canonical()}
            row.update({m: v[s] for m, v in metrics.items()}, status="ok")
            rows.append(row)
    root.mkdir(parents=True, exist_ok=True)
    runs = pd.DataFrame(rows)
    if (root / RUNS).exists():
        runs = pd.concat([pd.read_csv(root / RUNS, dtype={"config_id": str}), runs])
    runs.to_csv(root / RUNS, index=False)
    return runs


def random_runs(root: Path, seed: int = 0) -> pd.DataFrame:
    """Random per-seed values for metrics of both directions, with some NaNs."""
    rng = np.random.default_rng(seed)
    metrics = ["modes_covered", "hq_fraction", "kl_gen_true", "frechet_distance"]
    values = {}
    for dataset in ("ring8", "grid25", "spiral"):
        for variant in (*list(VARIANTS)[:6], *REFERENCES):  # a few rows keep the test fast
            n = int(rng.integers(3, 9))
            values[(dataset, variant)] = {
                m: [x if rng.random() > 0.1 else math.nan for x in rng.normal(1, 0.4, n)]
                for m in metrics
            }
    return write_runs(root, values)


def build(root: Path, **kw) -> list[Path]:
    return report.build(root, figures=False, **kw)


@pytest.fixture(scope="module")
def smoke_store(tmp_path_factory) -> Path:
    """A tiny real store (two variants and the references on ring8), written by Store."""
    root = tmp_path_factory.mktemp("report") / "store"
    configs = grid_configs(
        variants=("gan", "nsgan"), datasets=("ring8",), seeds=(0, 1), steps=20, eval_every=10,
        n_eval=500, n_eval_large=1000, batch_size=64, hidden=32,
    )  # fmt: skip
    with Store(root) as store:
        for cfg in configs:
            store.commit(train(cfg), commit="test")
    return root


# -- files --------------------------------------------------------------------------------


def test_report_writes_summary_tables_and_readme(smoke_store, tmp_path, capsys):
    root = tmp_path / "store"
    shutil.copytree(smoke_store, root)
    rc, out, err = cli(capsys, "report", root)
    assert rc == 0, err
    printed = out.split()
    runs = pd.read_csv(root / RUNS)
    metrics = [m for m in DIRECTIONS if m in runs.columns]
    names = ["paper", "ranks", *(f"poi_{m}" for m in tables.POI_METRICS), *metrics]
    expected = [root / "tables" / f"{n}.{e}" for n in names for e in TABLE_EXTS]
    assert printed[0] == str(root / "summary.csv")
    assert printed[-1] == str(root / "README.md")
    assert [p for p in printed if "/tables/" in p] == [str(p) for p in expected]
    assert all(Path(p).is_file() for p in printed)
    summary = pd.read_csv(root / "summary.csv")
    assert set(summary["metric"]) == set(metrics)
    assert len(summary) == runs.groupby(GROUP).ngroups * len(metrics)
    readme = (root / "README.md").read_text()
    assert "Protocol: 20 generator steps" in readme and "\n## Mode coverage" in readme
    assert "\n#### Ring-8\n" in readme  # the paper table per dataset
    assert "![samples_ring8](figures/samples_ring8.png)" in readme


def test_report_built_twice_is_byte_identical_and_uses_runs_csv_only(smoke_store, tmp_path):
    root = tmp_path / "store"
    shutil.copytree(smoke_store, root)
    build(root)
    first = outputs(root)
    assert {k.rsplit(".", 1)[1] for k in first} == {"csv", "md", "tex", "json"}
    build(root)
    assert outputs(root) == first
    alone = tmp_path / "elsewhere" / "only_runs"
    alone.mkdir(parents=True)
    shutil.copy(root / RUNS, alone / RUNS)
    build(alone)
    assert outputs(alone) == first


def test_report_of_random_runs_is_byte_identical(tmp_path):
    random_runs(tmp_path / "a")
    random_runs(tmp_path / "b")
    build(tmp_path / "a")
    build(tmp_path / "b")
    assert outputs(tmp_path / "a") == outputs(tmp_path / "b")
    build(tmp_path / "a", stat="iqm", interval="sem")
    assert outputs(tmp_path / "a") != outputs(tmp_path / "b")


# -- numbers ------------------------------------------------------------------------------


@pytest.mark.parametrize("stat", stats.STATS)
@pytest.mark.parametrize("interval", stats.INTERVALS)
def test_summary_matches_pandas_and_the_chosen_interval(tmp_path, stat, interval):
    runs = random_runs(tmp_path)
    build(tmp_path, stat=stat, interval=interval)
    summary = pd.read_csv(tmp_path / "summary.csv")
    metrics = [m for m in DIRECTIONS if m in runs.columns]
    grouped = runs.groupby(GROUP)
    assert len(summary) == grouped.ngroups * len(metrics)
    assert (summary["stat"] == stat).all() and (summary["interval"] == interval).all()
    reference = {
        "mean": lambda v: v.mean(),
        "median": lambda v: v.median(),
        "iqm": lambda v: scipy.stats.trim_mean(v.dropna(), 0.25),
    }[stat]
    for row in summary.itertuples():
        values = grouped.get_group((row.dataset, row.variant))[row.metric]
        assert row.n_seeds == values.count()
        assert row.mean == pytest.approx(values.mean(), rel=1e-12, abs=1e-15)
        assert row.estimate == pytest.approx(reference(values), rel=1e-12, abs=1e-15)
        half = {"std": values.std(), "sem": values.std() / math.sqrt(values.count())}
        if interval == "ci95":
            low, high = bootstrap_ci(values.to_numpy(), stat=stat)
            assert (row.low, row.high) == (low, high)
        else:
            assert row.low == pytest.approx(row.estimate - half[interval], rel=1e-12)
            assert row.high == pytest.approx(row.estimate + half[interval], rel=1e-12)
        assert row.low <= row.estimate <= row.high


@pytest.mark.parametrize("stat", stats.STATS)
@pytest.mark.parametrize("n", [5, 10, 40])
def test_bootstrap_ci_is_scipy_percentile_bootstrap_with_the_same_resampling(n, stat):
    # scipy draws rng.integers(0, n, (resamples, n)) like modecov: the same seed, the same
    # resamples, so the intervals agree to rounding.
    x = np.random.default_rng(n).normal(1.0, 1.0, n)
    fn = stats.STAT_FNS[stat]
    ref = scipy.stats.bootstrap(
        (x,), lambda s, axis: fn(s, axis=axis), method="percentile",
        n_resamples=BOOTSTRAP_RESAMPLES, rng=np.random.default_rng(stats.BOOTSTRAP_SEED),
    ).confidence_interval  # fmt: skip
    assert bootstrap_ci(x, stat=stat) == pytest.approx((ref.low, ref.high), rel=1e-12)


@pytest.mark.parametrize(("n", "scale"), [(5, 0.5), (10, 1.0), (40, 0.3)], ids=["n5", "n10", "n40"])
def test_bootstrap_ci_of_the_mean_agrees_with_an_independent_scipy_bootstrap(n, scale):
    x = np.random.default_rng(n).normal(1.0, scale, n)
    low, high = bootstrap_ci(x)
    ref = scipy.stats.bootstrap(
        (x,), np.mean, method="percentile", n_resamples=100_000, rng=np.random.default_rng(1)
    ).confidence_interval
    assert low == pytest.approx(ref.low, abs=0.02)
    assert high == pytest.approx(ref.high, abs=0.02)
    assert low < x.mean() < high


def test_bootstrap_ci_equals_the_same_resampling_done_by_hand():
    x = np.array([0.3, 1.2, 0.7, 2.5, 0.9, 1.1])
    idx = np.random.default_rng(stats.BOOTSTRAP_SEED).integers(0, 6, (BOOTSTRAP_RESAMPLES, 6))
    for stat, fn in (("mean", np.mean), ("median", np.median)):
        boot = np.array([fn(x[i]) for i in idx])
        want = np.quantile(boot, [0.025, 0.975])
        assert bootstrap_ci(x, stat=stat) == pytest.approx(tuple(want), rel=1e-12)


def test_point_estimates_and_symmetric_intervals_on_a_hand_computed_case():
    x = np.array([8.0, 1.0, 7.0, 2.0, 6.0, 3.0, 5.0, 4.0, math.nan])
    # Sorted 1..8: the middle half is 3, 4, 5, 6 -> IQM 4.5; median 4.5; mean 4.5.
    std = math.sqrt(sum((v - 4.5) ** 2 for v in range(1, 9)) / 7)  # 2.449...
    assert summarise(x, stat="iqm", interval="std")["estimate"] == 4.5
    skew = np.array([0.0, 1.0, 2.0, 3.0, 100.0, 101.0, 102.0, 1000.0])
    assert summarise(skew, stat="iqm")["estimate"] == pytest.approx((2 + 3 + 100 + 101) / 4)
    assert summarise(skew, stat="median")["estimate"] == 51.5
    s = summarise(x, stat="mean", interval="std")
    assert (s["n_seeds"], s["low"], s["high"]) == (
        8,
        pytest.approx(4.5 - std),
        pytest.approx(4.5 + std),
    )
    s = summarise(x, stat="mean", interval="sem")
    assert s["high"] - s["estimate"] == pytest.approx(std / math.sqrt(8))


def test_bootstrap_ci_is_seeded_and_leaves_global_state_alone():
    x = np.random.default_rng(3).random(7)
    state = np.random.get_state()[1].copy()
    assert bootstrap_ci(x) == bootstrap_ci(x.copy())
    assert bootstrap_ci(x, seed=1) != bootstrap_ci(x)
    assert poi_ci([(x, x[::-1] + 0.1)]) == poi_ci([(x, x[::-1] + 0.1)])
    assert (np.random.get_state()[1] == state).all()
    assert BOOTSTRAP_RESAMPLES >= 1_000


def test_bootstrap_ci_edge_cases():
    assert bootstrap_ci(np.array([0.25])) == (0.25, 0.25)
    assert all(math.isnan(v) for v in bootstrap_ci(np.array([math.nan, math.inf])))
    assert bootstrap_ci(np.array([1.0, math.nan, 2.0])) == bootstrap_ci(np.array([1.0, 2.0]))
    s = summarise(np.array([1.0, math.nan, 3.0]))
    assert s["n_seeds"] == 2 and s["estimate"] == 2.0
    assert math.isnan(summarise(np.array([math.nan]))["estimate"])


def brute_poi(x, y, higher=True) -> float:
    """P(x beats y) + ½ P(tie) by counting every pair."""
    wins = ties = 0
    for a, b in itertools.product(x, y):
        if a == b:
            ties += 1
        elif (a > b) == higher:
            wins += 1
    return (wins + 0.5 * ties) / (len(x) * len(y))


@pytest.mark.parametrize("higher", [True, False], ids=["higher-better", "lower-better"])
@pytest.mark.parametrize("seed", range(4))
def test_probability_of_improvement_is_the_brute_force_count_and_mann_whitney(seed, higher):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 6, int(rng.integers(2, 9))).astype(float)  # integers: many ties
    y = rng.integers(0, 6, int(rng.integers(2, 9))).astype(float)
    p = probability_of_improvement(x, y, higher=higher)
    assert p == pytest.approx(brute_poi(x, y, higher), rel=1e-12)
    sign = 1.0 if higher else -1.0
    u = scipy.stats.mannwhitneyu(sign * x, sign * y, alternative="two-sided").statistic
    assert p == pytest.approx(u / (len(x) * len(y)), rel=1e-12)
    assert probability_of_improvement(x, y, higher=higher) + probability_of_improvement(
        y, x, higher=higher
    ) == pytest.approx(1.0)


def test_probability_of_improvement_edge_cases():
    assert probability_of_improvement(np.array([2.0, 3.0]), np.array([1.0])) == 1.0
    assert probability_of_improvement(np.array([1.0]), np.array([1.0])) == 0.5
    assert probability_of_improvement(np.array([1.0, math.nan]), np.array([0.0])) == 1.0
    assert math.isnan(probability_of_improvement(np.array([math.nan]), np.array([1.0])))


def test_poi_interval_is_the_stratified_bootstrap_done_by_brute_force():
    rng = np.random.default_rng(7)
    tasks = [
        (rng.normal(0.2, 1, 5), rng.normal(0, 1, 4)),
        (rng.normal(0, 1, 3), rng.normal(0, 1, 6)),
    ]
    resamples = 300
    est, low, high = poi_ci(tasks, higher=False, resamples=resamples)
    assert est == pytest.approx(np.mean([brute_poi(x, y, False) for x, y in tasks]))
    g = np.random.default_rng(stats.BOOTSTRAP_SEED)
    draws = [
        (g.integers(0, len(x), (resamples, len(x))), g.integers(0, len(y), (resamples, len(y))))
        for x, y in tasks
    ]
    boot = [
        np.mean([brute_poi(x[xi[r]], y[yi[r]], False) for (x, y), (xi, yi) in zip(tasks, draws)])
        for r in range(resamples)
    ]
    assert (low, high) == pytest.approx(tuple(np.quantile(boot, [0.025, 0.975])), rel=1e-12)
    assert low <= est <= high


# -- tables -------------------------------------------------------------------------------


def _label(variant: str) -> str:
    if variant in REFERENCES:
        return f"*{REFERENCES[variant].label}* (reference)"
    return VARIANTS[variant].label


def parse_table(path: Path) -> tuple[str, list[str], dict[str, list[str]]]:
    """(title, column labels, row label -> cells) of a Markdown table written by the report."""
    lines = path.read_text().splitlines()
    title = lines[0]
    rows = [line for line in lines if line.startswith("| ")]
    header = rows[0].strip("| ").split(" | ")
    assert header[0] == "variant"
    body = {}
    for line in rows[1:]:
        cells = line[2:-2].split(" | ")
        if cells[0] == "*reference samplers*":
            continue
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
    build(tmp_path)
    want = {"modes_covered": ("NS-GAN", "GAN"), "kl_gen_true": ("NS-GAN", "GAN")}
    for metric, best in want.items():
        title, columns, body = parse_table(tmp_path / "tables" / f"{metric}.md")
        assert title == f"### {metric} {'↑' if DIRECTIONS[metric] else '↓'}"
        assert columns == [DATASETS["ring8"].label, DATASETS["grid25"].label]
        for j, label in enumerate(best):
            bold = [row for row, cells in body.items() if cells[j].startswith("**")]
            assert bold == [label], (metric, columns[j], body)
        tex = (tmp_path / "tables" / f"{metric}.tex").read_text()
        assert tex.count(r"\textbf{") == 2
        assert ("$\\uparrow$" if DIRECTIONS[metric] else "$\\downarrow$") in tex
        cells = pd.read_csv(tmp_path / "tables" / f"{metric}.csv")
        assert sorted(cells.loc[cells["best"], "row"]) == ["gan", "nsgan"]
        assert not cells.loc[cells["reference"], "best"].any()


def test_reference_rows_come_after_a_rule(tmp_path):
    random_runs(tmp_path, seed=2)
    build(tmp_path)
    tex = (tmp_path / "tables" / "hq_fraction.tex").read_text().splitlines()
    body = tex[tex.index(r"\midrule") + 1 : tex.index(r"\bottomrule")]
    rule = body.index(r"\midrule")
    assert all(line.startswith(r"\textit{") for line in body[rule + 1 :])
    assert len(body[rule + 1 :]) == len(REFERENCES)
    assert not any(line.startswith(r"\textit{") for line in body[:rule])
    md = (tmp_path / "tables" / "hq_fraction.md").read_text()
    assert md.index("*reference samplers*") < md.index("*True sampler* (reference)")


def test_every_table_bolds_exactly_the_best_non_reference_cells(tmp_path):
    random_runs(tmp_path, seed=5)
    build(tmp_path)
    summary = pd.read_csv(tmp_path / "summary.csv")
    for metric, part in summary.groupby("metric"):
        title, columns, body = parse_table(tmp_path / "tables" / f"{metric}.md")
        assert title.endswith("↑" if DIRECTIONS[metric] else "↓")
        assert "Protocol:" in (tmp_path / "tables" / f"{metric}.md").read_text()
        assert "Protocol:" in (tmp_path / "tables" / f"{metric}.tex").read_text()
        labels = {DATASETS[d].label: d for d in part["dataset"]}
        assert sorted(columns) == sorted(labels)
        for j, column in enumerate(columns):
            cells = part[part["dataset"] == labels[column]].set_index("variant")
            trained = cells.loc[[v for v in cells.index if v in VARIANTS], "estimate"].dropna()
            best = trained.max() if DIRECTIONS[metric] else trained.min()
            for variant, r in cells.iterrows():
                text = (
                    f"{render.fmt(r['estimate'])} [{render.fmt(r['low'])}, {render.fmt(r['high'])}]"
                )
                should_bold = variant in VARIANTS and r["estimate"] == best
                expected = f"**{text}**" if should_bold else text
                assert body[_label(variant)][j] == expected, (metric, column, variant)


def test_std_and_sem_cells_read_plus_minus(tmp_path):
    write_runs(tmp_path, {("ring8", "gan"): {"hq_fraction": [0.1, 0.2, 0.3, 0.4]}})
    build(tmp_path, stat="median", interval="std")
    _, _, body = parse_table(tmp_path / "tables" / "hq_fraction.md")
    std = float(np.std([0.1, 0.2, 0.3, 0.4], ddof=1))
    assert body["GAN"] == [f"**0.25 ± {std:.3g}**"]
    assert (
        "median over seeds with ± one standard deviation"
        in (tmp_path / "tables" / "hq_fraction.md").read_text()
    )


def test_paper_table_has_modes_hq_percent_and_kl_per_dataset(tmp_path):
    cols = ("modes_covered", "hq_fraction", "kl_gen_true")
    values = {
        ("ring8", "gan"): ([6, 8], [0.5, 0.7], [0.3, 0.1]),
        ("ring8", "nsgan"): ([8, 8], [0.2, 0.4], [0.5, 0.7]),
        ("grid25", "gan"): ([20, 22], [0.1, 0.1], [1, 1]),
    }
    write_runs(tmp_path, {k: dict(zip(cols, v)) for k, v in values.items()})
    build(tmp_path)
    _, columns, body = parse_table(tmp_path / "tables" / "paper.md")
    assert columns == [
        f"{d} {m}" for d in ("Ring-8", "Grid-25") for m in ("modes ↑", "HQ % ↑", "KL ↓")
    ]
    assert body["GAN"][:3] == ["7 [6, 8]", "**60 [50, 70]**", "**0.2 [0.1, 0.3]**"]
    assert body["NS-GAN"][:3] == ["**8 [8, 8]**", "30 [20, 40]", "0.6 [0.5, 0.7]"]
    assert body["NS-GAN"][3:] == ["", "", ""]
    tex = (tmp_path / "tables" / "paper.tex").read_text()
    assert r"\multicolumn{3}{c}{Ring-8}" in tex and r"\cmidrule(lr){5-7}" in tex
    assert "HQ \\% $\\uparrow$" in tex


def test_rank_table_ranks_by_each_metric_direction(tmp_path):
    # ring8: hq gan 0.9 > nsgan 0.5 = lsgan 0.5; grid25: lsgan 0.8 > gan 0.3 > nsgan 0.1.
    # kl (lower better) on ring8: nsgan 0.1 < gan 0.2 < lsgan 0.3; grid25 only gan and lsgan.
    hq = {("ring8", "gan"): 0.9, ("ring8", "nsgan"): 0.5, ("ring8", "lsgan"): 0.5,
          ("grid25", "gan"): 0.3, ("grid25", "nsgan"): 0.1, ("grid25", "lsgan"): 0.8}  # fmt: skip
    kl = {("ring8", "gan"): 0.2, ("ring8", "nsgan"): 0.1, ("ring8", "lsgan"): 0.3,
          ("grid25", "gan"): 0.5, ("grid25", "nsgan"): math.nan,
          ("grid25", "lsgan"): 0.4}  # fmt: skip
    write_runs(tmp_path, {k: {"hq_fraction": [hq[k]] * 2, "kl_gen_true": [kl[k]] * 2} for k in hq})
    build(tmp_path)
    cells = pd.read_csv(tmp_path / "tables" / "ranks.csv").set_index(["row", "column"])
    want = {
        ("gan", "hq_fraction"): (1 + 2) / 2,
        ("nsgan", "hq_fraction"): (2.5 + 3) / 2,
        ("lsgan", "hq_fraction"): (2.5 + 1) / 2,
        ("gan", "kl_gen_true"): (2 + 2) / 2,
        ("nsgan", "kl_gen_true"): 1.0,
        ("lsgan", "kl_gen_true"): (3 + 1) / 2,
    }
    for key, rank in want.items():
        assert cells.loc[key, "estimate"] == rank, key
    assert cells.loc[("nsgan", "kl_gen_true"), "n"] == 1
    assert list(cells[cells["best"]].index) == [("gan", "hq_fraction"), ("nsgan", "kl_gen_true")]


def test_poi_table_matches_the_brute_force_count_per_dataset(tmp_path):
    runs = random_runs(tmp_path, seed=9)
    build(tmp_path, baseline="lsgan")
    for metric in ("hq_fraction", "kl_gen_true"):
        cells = pd.read_csv(tmp_path / "tables" / f"poi_{metric}.csv")
        assert "lsgan" not in set(cells["row"]) and not cells["reference"].any()
        assert "LSGAN" in (tmp_path / "tables" / f"poi_{metric}.md").read_text().splitlines()[0]
        for r in cells.itertuples():
            if r.column == "all":
                continue
            part = runs[runs["dataset"] == r.column]
            x = part.loc[part["variant"] == r.row, metric].dropna().to_numpy()
            y = part.loc[part["variant"] == "lsgan", metric].dropna().to_numpy()
            assert r.estimate == pytest.approx(brute_poi(x, y, DIRECTIONS[metric]), abs=1e-12)
            assert r.low <= r.estimate <= r.high
        for _, part in cells.groupby("row"):
            per = part[part["column"] != "all"]["estimate"].mean()
            assert part[part["column"] == "all"]["estimate"].item() == pytest.approx(per)


def test_two_configs_of_one_variant_get_rows_named_by_what_differs(tmp_path):
    fast = {
        ("spiral", "nsgan"): {"hq_fraction": [0.9, 0.8]},
        ("spiral", "gan"): {"hq_fraction": [0.5, 0.5]},
    }
    write_runs(tmp_path, fast, lr=1e-3, beta1=0.9)
    write_runs(tmp_path, {("spiral", "nsgan"): {"hq_fraction": [0.1, 0.2]}}, lr=2e-4, beta1=0.5)
    build(tmp_path)
    _, _, body = parse_table(tmp_path / "tables" / "hq_fraction.md")
    assert body == {
        "GAN": ["0.5 [0.5, 0.5]"],
        "NS-GAN (lr=0.0002, beta1=0.5)": ["0.15 [0.1, 0.2]"],
        "NS-GAN (lr=0.001, beta1=0.9)": ["**0.85 [0.8, 0.9]**"],
    }
    summary = pd.read_csv(tmp_path / "summary.csv", keep_default_na=False)
    assert sorted(summary["setting"]) == ["", "lr=0.0002, beta1=0.5", "lr=0.001, beta1=0.9"]
    # The baseline (NS-GAN) has two configs on spiral: GAN's single config matches neither,
    # so it gets no probability of improvement rather than a silently chosen one.
    assert not (tmp_path / "tables" / "poi_hq_fraction.md").exists()


# -- bad input ----------------------------------------------------------------------------


def assert_one_error(rc, out, err, *needles):
    assert rc == 2 and out == "" and "Traceback" not in err, err
    assert len(err.splitlines()) == 1 and err.startswith("modecov: error: ")
    for n in needles:
        assert n in err


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        pytest.param(["--stat", "mode"], ["mean", "iqm"], id="bad-stat"),
        pytest.param(["--interval", "ci99"], ["ci95"], id="bad-interval"),
        pytest.param(["--baseline", "nsgn"], ["'nsgan'"], id="unknown-baseline"),
        pytest.param(["--baseline", "wgan"], ["'wgan'", "gan"], id="baseline-not-stored"),
    ],
)
def test_bad_report_options_are_one_line_and_change_nothing(tmp_path, capsys, args, needles):
    random_runs(tmp_path)
    keep = [v for v in (*VARIANTS, *REFERENCES) if v != "wgan"]
    assert "wgan" in list(VARIANTS)[:6]
    runs = pd.read_csv(tmp_path / RUNS)
    runs[runs["variant"].isin(keep)].to_csv(tmp_path / RUNS, index=False)
    build(tmp_path)
    before = digest(tmp_path)
    assert_one_error(*cli(capsys, "report", tmp_path, *args), *needles)
    assert digest(tmp_path) == before


def test_missing_default_baseline_leaves_out_the_poi_tables(tmp_path):
    write_runs(tmp_path, {("ring8", "gan"): {"hq_fraction": [0.1, 0.2]}})
    names = [p.name for p in build(tmp_path)]
    assert "hq_fraction.md" in names and not any(n.startswith("poi_") for n in names)


def test_a_rebuild_removes_tables_it_no_longer_writes(tmp_path):
    random_runs(tmp_path)
    build(tmp_path, baseline="lsgan")
    poi = tmp_path / "tables" / "poi_hq_fraction.md"
    assert "LSGAN" in poi.read_text()
    runs = pd.read_csv(tmp_path / RUNS)
    runs[runs["variant"] != "nsgan"].to_csv(tmp_path / RUNS, index=False)
    build(tmp_path)  # the default baseline, nsgan, is not stored: no poi tables
    assert not list((tmp_path / "tables").glob("poi_*"))
    assert (tmp_path / "tables" / "hq_fraction.tex").exists()


def test_the_report_names_only_declared_metrics_and_variants():
    # The headline lists are choices of what to show first; a renamed output or variant must
    # fail here rather than silently drop a table, a curve or a heatmap panel.
    from modecov.report import figures

    named = [m for m, _ in tables.PAPER] + [*tables.HEADLINE, *tables.POI_METRICS]
    named += [*figures.CURVE_METRICS] + [m for m, _, _ in figures.SUMMARY_METRICS]
    assert set(named) <= set(DIRECTIONS)
    assert tables.BASELINE in VARIANTS and tables.Options().baseline == tables.BASELINE
