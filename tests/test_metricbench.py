"""The metric benchmark (``modecov run --suite metrics``): the corruptions do what they say,
cells are deterministic and resumable, the CLI and the report run on a small grid, and the
committed results/metrics holds the suite, computed by this code."""

from __future__ import annotations

import math
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from helpers import cli, digest, layout_problems

from modecov import metricbench as mb
from modecov.config import comparison_sets
from modecov.data import DATASETS
from modecov.errors import ConfigError, StoreError
from modecov.metrics import DIRECTIONS, METRICS, score_samples
from modecov.report import metricbench as rep
from modecov.variants.reference import ONE_MODE

RESULTS = Path(__file__).resolve().parents[1] / "results" / mb.NAME

TINY = mb.MetricSuite(
    datasets=("ring8",), corruptions=("drop", "blur"), sizes=(250,), seeds=(0, 1), levels=2
)
"""Five cells (the true sampler, two strengths of drop and blur), a few seconds in all."""


def _modes(x: torch.Tensor, dataset: str) -> dict[str, float]:
    scores = score_samples(fake=x[None], real=x, data=DATASETS[dataset], names=["modes"])
    return {k: float(v[0]) for k, v in scores.items()}


def _cell(dataset: str, corruption: str, strength: float, n: int = 10_000) -> mb.Cell:
    return mb.Cell(dataset, corruption, 1, float(strength), n)


# -- the corruptions ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "dataset", ["ring8", "grid25", "ring8_imbalanced", "heavy_center", "spiral"]
)
def test_drop_removes_exactly_j_modes_the_lightest_first(dataset):
    data = DATASETS[dataset]
    k = data.n_modes
    strengths = mb.CORRUPTIONS["drop"].strengths(data)
    assert strengths == tuple(float(j) for j in dict.fromkeys((1, k // 4, k // 2, k - 1)))
    for j in strengths:
        x = mb.sample(_cell(dataset, "drop", j), seed=3)
        assert _modes(x, dataset)["modes_covered"] == k - j, (dataset, j)
        idx, hq = data.assign(x)
        kept = torch.unique(idx[hq])
        # Every kept mode is at least as heavy as every dropped one.
        dropped = torch.ones(k, dtype=torch.bool)
        dropped[kept] = False
        assert data.weights[kept].min() >= data.weights[dropped].max(), (dataset, j)


def test_the_suite_drops_one_a_quarter_a_half_and_all_but_one_mode():
    grid = DATASETS["grid25"]
    assert mb.SUITE.strengths("grid25", "drop") == (1.0, 6.0, 12.0, 24.0)
    assert mb.SUITE.strengths("ring8", "drop") == (1.0, 2.0, 4.0, 7.0)
    assert mb.SUITE.strengths("heavy_center", "drop") == (1.0, 2.0, 4.0, 8.0)
    assert grid.n_modes == 25


@pytest.mark.parametrize("dataset", ["ring8_imbalanced", "heavy_center", "grid25"])
def test_reweight_moves_mass_to_the_heaviest_mode_and_is_one_mode_at_100(dataset):
    data = DATASETS[dataset]
    top = mb.heaviest(data)
    assert top == int(torch.argmax(data.weights))
    full = mb.sample(_cell(dataset, "reweight", 1.0), seed=0)
    idx, _ = data.assign(full)
    assert (idx == top).all()
    one = ONE_MODE.sampler(data, 10_000, torch.Generator().manual_seed(0))
    a, b = _modes(full, dataset), _modes(one, dataset)
    assert a["modes_covered"] == b["modes_covered"] == 1
    assert a["kl_gen_true"] == pytest.approx(b["kl_gen_true"])
    assert a["hq_fraction"] == pytest.approx(b["hq_fraction"], abs=0.005)
    half = mb.sample(_cell(dataset, "reweight", 0.5), seed=0)
    share = float((data.assign(half)[0] == top).double().mean())
    assert share == pytest.approx(0.5 + 0.5 * float(data.weights[top]), abs=0.01)


@pytest.mark.parametrize("dataset", ["ring8", "grid25", "heavy_center"])
@pytest.mark.parametrize("factor", [1.5, 2.0, 4.0])
def test_blur_scales_the_spread_within_every_mode(dataset, factor):
    data = DATASETS[dataset]
    x = mb.sample(_cell(dataset, "blur", factor), seed=1).double()
    idx, _ = data.assign(x)  # modes stay far apart even at x4: the nearest centre is the own
    spread = (x - data.centers[idx]).std(0)
    assert torch.allclose(spread, factor * data.std, rtol=0.03), (spread, data.std)


@pytest.mark.parametrize("size", [10, 100])
@pytest.mark.parametrize("n", [250, 1_000])
def test_memorise_repeats_exactly_its_training_points(size, n):
    x = mb.sample(mb.Cell("grid25", "memorise", 1, float(size), n), seed=0)
    rows, counts = torch.unique(x, dim=0, return_counts=True)
    assert len(rows) == size
    assert counts.max() - counts.min() <= 1  # every point repeated N / size times


@pytest.mark.parametrize("fraction", [0.1, 0.25, 0.5])
def test_noise_replaces_the_stated_share_by_uniform_noise_over_the_box(fraction):
    n, data = 1_000, DATASETS["ring8"]
    cell = mb.Cell("ring8", "noise", 1, fraction, n)
    x = mb.sample(cell, seed=2).double()
    # The corruption draws the true sampler first, from the cell's own stream.
    g = mb.generator("ring8", "noise", repr(fraction), n, 2)
    base = data.sample(n, g, dtype=torch.float64).float().double()
    changed = (x != base).any(-1)
    assert int(changed.sum()) == mb.noise_count(n, fraction) == round(fraction * n + 1e-9)
    lo, hi = data.bounds()
    assert float(x[changed].min()) >= lo and float(x[changed].max()) <= hi
    spread = x[changed].std(0) / ((hi - lo) / 12**0.5)  # uniform over the box, not on modes
    assert torch.allclose(spread, torch.ones(2, dtype=spread.dtype), atol=0.2), spread


@pytest.mark.parametrize("dataset", ["ring8", "grid25"])
@pytest.mark.parametrize("spreads", [0.5, 1.0, 2.0])
def test_shift_moves_every_sample_by_one_offset_of_d_mode_scales(dataset, spreads):
    n, data = 500, DATASETS[dataset]
    x = mb.sample(mb.Cell(dataset, "shift", 1, spreads, n), seed=0).double()
    g = mb.generator(dataset, "shift", repr(spreads), n, 0)
    base = data.sample(n, g, dtype=torch.float64)
    offset = x - base
    assert torch.allclose(offset, offset[0].expand_as(offset), atol=1e-5)
    assert float((offset[0] / data.std).norm()) == pytest.approx(spreads, rel=1e-3)


def test_blur_and_shift_apply_to_gaussian_modes_only():
    for name in ("spiral", "stacked_digits"):
        assert mb.MetricSuite(datasets=(name,)).strengths(name, "blur") == ()
        assert mb.MetricSuite(datasets=(name,)).strengths(name, "shift") == ()
    assert mb.SUITE.strengths("ring8", "blur") == (1.5, 2.0, 4.0)


# -- the grid -------------------------------------------------------------------------------


def test_the_suite_is_the_issue_grid():
    assert mb.SUITE.datasets == comparison_sets()
    assert mb.SUITE.sizes == (250, 1_000, 2_500, 10_000)
    assert mb.SUITE.seeds == tuple(range(10))
    assert set(mb.SUITE.corruptions) == {"drop", "reweight", "blur", "noise", "shift", "memorise"}
    cells = mb.SUITE.cells()
    assert len(cells) == len(set(cells))
    # Per dataset: the true sampler and 4 + 4 + 3 + 3 + 3 + 2 strengths at three sizes; at
    # 10,000 the true sampler and the mildest strength of each of the 6 corruptions.
    assert len(cells) == len(comparison_sets()) * ((1 + 19) * 3 + (1 + 6))
    assert {c.level for c in cells if c.n == 10_000} == {0, 1}
    for name in ("gauss1200", "stacked_digits"):
        assert name in mb.excluded() and len(mb.excluded()[name]) > 40


def test_a_metric_is_not_rescored_where_it_reads_no_more_samples():
    w2 = METRICS["w2"]
    assert mb.sizes_for(w2, (250, 1_000, 2_500, 10_000)) == (250, 1_000, 2_500)
    assert mb.sizes_for(METRICS["modes"], (250, 10_000)) == (250, 10_000)


# -- determinism -------------------------------------------------------------------------------


def test_samples_depend_on_their_key_alone():
    cell = mb.Cell("grid25", "noise", 1, 0.25, 500)
    a = mb.sample(cell, 4)
    mb.sample(mb.Cell("grid25", "drop", 1, 1.0, 500), 4)  # another draw in between
    assert torch.equal(a, mb.sample(cell, 4))
    assert a.dtype == torch.float32
    assert not torch.equal(a, mb.sample(cell, 5))
    assert not torch.equal(a, mb.sample(mb.Cell("grid25", "noise", 2, 0.5, 500), 4))
    assert torch.equal(mb.real_set("ring8", 300), mb.real_set("ring8", 300))


def test_a_cell_scores_the_same_twice():
    cell = mb.Cell("ring8", "memorise", 2, 10.0, 250)
    a, b = mb.score_cell(cell, (0, 1)), mb.score_cell(cell, (0, 1))
    assert a.keys() == {k for s in mb.suite_metrics() for k in s.outputs}
    for key in a:
        assert a[key] == pytest.approx(b[key], rel=0, abs=0, nan_ok=True), key
    one = mb.score_cell(cell, (1,))
    for key in a:
        assert one[key][0] == pytest.approx(a[key][1], rel=1e-12, nan_ok=True), key


# -- the store ------------------------------------------------------------------------------


def _expected_rows(suite: mb.MetricSuite) -> int:
    return sum(_cell_rows(cell.n, suite) for cell in suite.cells())


@pytest.fixture(scope="module")
def tiny_store(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("metrics") / "store"
    out = mb.run(root, suite=TINY)
    assert out["cells"] == len(TINY.cells()) == 5 and out["skipped"] == 0
    return root


def test_run_stores_every_number_of_every_cell(tiny_store):
    scores = mb.read_scores(tiny_store)
    assert len(scores) == _expected_rows(TINY)
    assert list(pd.read_csv(tiny_store / mb.SCORES).columns) == mb.COLUMNS
    assert not mb.stale_rows(scores).any()
    assert mb.todo(TINY, scores) == []
    base = scores[scores["corruption"] == mb.NONE]
    assert set(base["level"]) == {0} and set(base["strength"]) == {0.0}
    man = (tiny_store / "manifest.json").read_text()
    for word in ('"suite": "metrics"', "started_at", "finished_at", "metric_versions",
                 "excluded_datasets", "distribution_sample_caps"):  # fmt: skip
        assert word in man, word


def test_a_rerun_skips_every_stored_cell(tiny_store, tmp_path):
    root = tmp_path / "copy"
    root.mkdir()
    (root / mb.SCORES).write_bytes((tiny_store / mb.SCORES).read_bytes())
    before = (root / mb.SCORES).read_bytes()
    assert mb.run(root, suite=TINY)["cells"] == 0
    assert (root / mb.SCORES).read_bytes() == before


def test_a_store_missing_cells_scores_exactly_those(tiny_store, tmp_path):
    full = (tiny_store / mb.SCORES).read_bytes()
    scores = mb.read_scores(tiny_store)
    root = tmp_path / "partial"
    root.mkdir()
    gone = (scores["corruption"] == "blur") | (
        (scores["corruption"] == mb.NONE) & (scores["metric"] == "w2")
    )
    scores[~gone].to_csv(root / mb.SCORES, index=False, lineterminator="\n")
    out = mb.run(root, suite=TINY)
    assert out["cells"] == 3  # two blur cells, and the true sampler's missing w2
    assert (root / mb.SCORES).read_bytes() == full


def test_a_killed_run_keeps_whole_cells_and_resumes(tiny_store, tmp_path):
    # A run whose cells are slowed down is killed once it has committed a cell or two.
    root = tmp_path / "killed"
    script = textwrap.dedent(f"""
        import time
        from modecov import metricbench as mb
        slow = mb.score_cell
        def score_cell(*args, **kw):
            time.sleep(0.4)
            return slow(*args, **kw)
        mb.score_cell = score_cell
        suite = mb.MetricSuite(datasets=("ring8",), corruptions=("drop", "blur"), sizes=(250,),
                               seeds=(0, 1), levels=2)
        mb.run({str(root)!r}, suite=suite, commit_every=0.0)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if (root / mb.SCORES).exists() and len(mb.read_scores(root)):
                break
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    stored = mb.read_scores(root)  # readable: complete rows only
    assert 0 < len(stored)
    for key, rows in stored.groupby(["dataset", "corruption", "level", "n"]):
        assert len(rows) == _cell_rows(key[3], TINY), key  # every stored cell is whole
    left = len(mb.todo(TINY, stored))
    assert mb.run(root, suite=TINY)["cells"] == left
    assert (root / mb.SCORES).read_bytes() == (tiny_store / mb.SCORES).read_bytes()


def _cell_rows(n: int, suite: mb.MetricSuite) -> int:
    """Rows of one cell at N = ``n``: every output of every metric scored there, per seed."""
    specs = [s for s in mb.suite_metrics() if n in mb.sizes_for(s, suite.sizes)]
    return sum(len(s.outputs) for s in specs) * len(suite.seeds)


def test_stale_rows_are_refused_then_rescored(tiny_store, tmp_path):
    root = tmp_path / "stale"
    root.mkdir()
    scores = mb.read_scores(tiny_store)
    bump = scores["metric"] == "hq_fraction"
    scores.loc[bump, "metric_versions"] = "modes=0"
    scores.to_csv(root / mb.SCORES, index=False, lineterminator="\n")
    with pytest.raises(StoreError, match="--rerun-stale"):
        mb.run(root, suite=TINY)
    out = mb.run(root, suite=TINY, rerun_stale=True)
    assert out["cells"] == len(TINY.cells())  # every cell has hq_fraction rows
    assert (root / mb.SCORES).read_bytes() == (tiny_store / mb.SCORES).read_bytes()


def test_run_refuses_a_training_store(tmp_path):
    (tmp_path / "runs.csv").write_text("config_id,seed\n")
    with pytest.raises(StoreError, match="training store"):
        mb.run(tmp_path, suite=TINY)


def test_workers_do_not_change_the_numbers(tiny_store, tmp_path):
    out = mb.run(tmp_path / "two", suite=TINY, workers=2)
    assert out["cells"] == 5
    assert (tmp_path / "two" / mb.SCORES).read_bytes() == (tiny_store / mb.SCORES).read_bytes()


# -- the CLI ----------------------------------------------------------------------------------


def test_cli_runs_and_reports_the_metrics_suite(capsys, monkeypatch, tiny_store, tmp_path):
    monkeypatch.setattr(mb, "SUITE", TINY)
    root = tmp_path / "cli"
    rc, out, err = cli(capsys, "run", "--suite", "metrics", "--workers", "1", "--quiet",
                       "--out", root)  # fmt: skip
    assert rc == 0, err
    assert (root / mb.SCORES).read_bytes() == (tiny_store / mb.SCORES).read_bytes()
    rc, out, err = cli(capsys, "run", "--suite", "metrics", "--workers", "2", "--out", root)
    assert rc == 0 and "0 cells to score, 5 already stored" in err, err
    rc, out, err = cli(capsys, "report", root)
    assert rc == 0, err
    assert str(root / "README.md") in out and (root / "tables" / "sensitivity.tex").exists()


@pytest.mark.parametrize(
    "flags", [["--variants", "gan"], ["--steps", "10"], ["--set", "lr=1e-3"], ["--seeds", "0-2"]]
)
def test_cli_refuses_training_flags_for_the_metrics_suite(capsys, tmp_path, flags):
    rc, out, err = cli(capsys, "run", "--suite", "metrics", "--out", tmp_path / "x", *flags)
    assert rc == 2 and err.startswith("modecov: error:") and len(err.splitlines()) == 1
    assert "metrics suite" in err
    assert not (tmp_path / "x").exists()


def test_list_names_the_metrics_suite(capsys):
    rc, out, _ = cli(capsys, "list")
    assert rc == 0 and f"  {mb.NAME} " in out


# -- the report -------------------------------------------------------------------------------

SMALL = mb.MetricSuite(
    datasets=("ring8",), corruptions=("drop", "blur", "memorise"), sizes=(250, 1_000),
    seeds=tuple(range(5)),
)  # fmt: skip


@pytest.fixture(scope="module")
def small_store(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("metrics") / "small"
    mb.run(root, suite=SMALL)
    return root


def test_report_tables_are_byte_reproducible(small_store, tmp_path):
    first = rep.build(small_store, figures=False)
    digests = digest(small_store / "tables"), (small_store / "README.md").read_bytes()
    rep.build(small_store, figures=False)
    assert (digest(small_store / "tables"), (small_store / "README.md").read_bytes()) == digests
    names = {p.name for p in first}
    for table in ("sensitivity", "samples_needed"):
        assert {f"{table}.md", f"{table}.tex", f"{table}.csv"} <= names
    long = pd.read_csv(small_store / "tables" / rep.LONG)
    assert set(long["n"]) == {250, 1_000} and set(long["corruption"]) == {
        "drop",
        "blur",
        "memorise",
    }
    assert set(long["metric"]) == {k for s in mb.suite_metrics() for k in s.outputs}


def test_report_says_which_metric_sees_what(small_store):
    rep.build(small_store, figures=False)
    tests = rep.sensitivity(mb.read_scores(small_store))
    found = rep.verdicts(tests, 1_000)
    assert found[("modes_covered", "drop")].kind == "sees"
    assert found[("modes_covered", "drop")].rho > 0.9
    assert found[("hq_fraction", "drop")].kind == "blind"
    assert found[("modes_covered", "blur")].kind == "blind"
    assert found[("modes_covered", "blur")].rho == 0.0  # constant: every mode stays covered
    assert found[("hq_fraction", "blur")].kind == "sees"
    text = (small_store / "README.md").read_text()
    line = next(x for x in text.splitlines() if x.startswith("- `hq_fraction`"))
    assert "sees blur" in line and "is blind to drop" in line
    line = next(x for x in text.splitlines() if x.startswith("- `modes_covered` "))
    assert "sees drop" in line and "blur" in line.split("is blind to")[1]
    assert "`gauss1200`" in text and "`stacked_digits`" in text  # why they are left out


def test_report_figures_one_per_corruption_and_dataset(small_store):
    paths = rep.build(small_store)
    figs = {p.name for p in paths if p.parent.name == "figures"}
    assert figs == {f"{c}_ring8.{ext}" for c in SMALL.corruptions for ext in ("png", "pdf")}
    scores = mb.read_scores(small_store)
    fig = rep.figure(scores, "drop", "ring8", "mean", "ci95")
    assert layout_problems(fig) == []
    assert "![drop_ring8](figures/drop_ring8.png)" in (small_store / "README.md").read_text()


def test_report_latex_tables_compile(small_store, tmp_path):
    import shutil

    from test_report_latex import compile_document

    if shutil.which("pdflatex") is None:
        pytest.skip("pdflatex is not installed")
    rep.build(small_store, figures=False)
    for name in rep.TABLES:
        shutil.copy(small_store / "tables" / f"{name}.tex", tmp_path / f"{name}.tex")
    compile_document(shutil.which("pdflatex"), tmp_path, list(rep.TABLES))


def test_report_dispatches_on_the_store_kind(small_store, capsys):
    assert rep.is_store(small_store)
    rc, out, err = cli(capsys, "report", small_store, "--baseline", "gan")
    assert rc == 2 and "baseline" in err


def _synthetic(values: dict[int, list[float]], metric: str) -> pd.DataFrame:
    rows = []
    for level, vals in values.items():
        for seed, v in enumerate(vals):
            rows.append({"dataset": "ring8", "corruption": mb.NONE if level == 0 else "noise",
                         "strength": 0.1 * level, "level": level, "n": 250, "seed": seed,
                         "metric": metric, "value": v, "metric_versions": "x",
                         "corruption_version": 1})  # fmt: skip
    return pd.DataFrame(rows)


def test_sensitivity_signs_by_the_declared_direction():
    rising = {0: [0.0, 0.1, 0.2], 1: [1.0, 1.1, 1.2], 2: [2.0, 2.1, 2.2]}
    (low_better,) = rep.sensitivity(_synthetic(rising, "kl_gen_true"))
    (high_better,) = rep.sensitivity(_synthetic(rising, "hq_fraction"))
    assert not DIRECTIONS["kl_gen_true"] and DIRECTIONS["hq_fraction"]
    assert low_better.rho == pytest.approx(1.0, abs=0.15) and low_better.detected == rep.WORSE
    assert high_better.rho == pytest.approx(-1.0, abs=0.15) and high_better.detected == rep.BETTER
    flat = {0: [1.0, 1.0], 1: [1.0, 1.0], 2: [1.0, 1.0]}
    (blind,) = rep.sensitivity(_synthetic(flat, "kl_gen_true"))
    assert blind.rho == 0.0 and blind.detected == rep.UNMOVED
    noisy = {0: [1.0, 3.0, 2.0], 1: [2.0, 1.0, 3.0], 2: [3.0, 2.0, 1.0]}
    (unmoved,) = rep.sensitivity(_synthetic(noisy, "kl_gen_true"))
    assert unmoved.detected == rep.UNMOVED and abs(unmoved.rho) < 0.2
    nan = {0: [math.nan, math.nan], 1: [1.0, 2.0]}
    (undefined,) = rep.sensitivity(_synthetic(nan, "kl_gen_true"))
    assert math.isnan(undefined.rho) and undefined.detected == ""


def test_a_capped_metric_is_reported_at_larger_n_from_its_last_scored_cell():
    frame = _synthetic({0: [0.0, 0.1], 1: [1.0, 1.1]}, "w2")
    bigger = _synthetic({0: [5.0, 5.1], 1: [5.0, 5.1]}, "hq_fraction").assign(n=10_000)
    scores = pd.concat([frame, bigger])
    tests = {(t.metric, t.n): t for t in rep.sensitivity(scores, {"w2": [10_000]})}
    assert tests[("w2", 10_000)].scored_at == 250
    assert tests[("w2", 10_000)].rho == tests[("w2", 250)].rho
    assert ("w2", 10_000) not in {(t.metric, t.n) for t in rep.sensitivity(scores)}
    assert rep.reused_sizes({"sample_counts": {"not_rescored": {"vendi": [2_500]}}}) == {
        "vendi": [2_500], "vendi_norm": [2_500]
    }  # fmt: skip


def test_report_refuses_mixed_versions(small_store, tmp_path):
    root = tmp_path / "mixed"
    root.mkdir()
    scores = mb.read_scores(small_store)
    scores.loc[scores.index[:3], "metric_versions"] = "modes=0"
    scores.to_csv(root / mb.SCORES, index=False, lineterminator="\n")
    with pytest.raises(StoreError, match="--rerun-stale"):
        rep.build(root, figures=False)


def test_report_refuses_an_empty_store(tmp_path):
    (tmp_path / mb.SCORES).write_text(",".join(mb.COLUMNS) + "\n")
    with pytest.raises(StoreError, match="no rows"):
        rep.build(tmp_path, figures=False)
    with pytest.raises(ConfigError):
        rep.build(tmp_path, baseline="nsgan")


# -- the committed store --------------------------------------------------------------------


@pytest.fixture(scope="module")
def committed() -> pd.DataFrame:
    if not (RESULTS / mb.SCORES).exists():
        pytest.fail(
            f"{RESULTS / mb.SCORES} is missing: run `modecov run --suite metrics` and "
            "`modecov report results/metrics`, and commit them"
        )
    return mb.read_scores(RESULTS)


def test_committed_store_holds_every_cell_of_the_suite(committed):
    # Every number of every cell, from the metric and corruption versions of this code.
    assert not mb.stale_rows(committed).any()
    assert mb.todo(mb.SUITE, committed) == []
    assert len(committed) >= _expected_rows(mb.SUITE)


def test_committed_store_rescores_to_its_values(committed):
    # A cell per (dataset, corruption) at N = 250, and one at 1,000, re-scored by this code.
    by_key = committed.set_index(["dataset", "corruption", "level", "n", "seed", "metric"])
    cells = [c for c in mb.SUITE.cells() if c.n == 250 and c.level in (0, 1)]
    cells.append(next(c for c in mb.SUITE.cells() if c.n == 1_000 and c.corruption == "drop"))
    for cell in cells:
        scores = mb.score_cell(cell, mb.SUITE.seeds)
        for key, values in scores.items():
            for seed, value in zip(mb.SUITE.seeds, values):
                want = by_key.loc[(cell.dataset, cell.corruption, cell.level, cell.n, seed, key),
                                  "value"]  # fmt: skip
                assert value == pytest.approx(float(want), rel=1e-9, abs=1e-12, nan_ok=True), (
                    cell,
                    seed,
                    key,
                )


def test_committed_report_is_up_to_date(committed):
    # The README shows the tables as they are in tables/, and every figure it names exists.
    text = (RESULTS / "README.md").read_text()
    for name in rep.TABLES:
        rows = [
            x for x in (RESULTS / "tables" / f"{name}.md").read_text().splitlines() if x[:1] == "|"
        ]
        assert rows and all(row in text for row in rows), name
    shown = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert shown and all((RESULTS / name).exists() for name in shown)
