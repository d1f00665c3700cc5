"""The committed results/default/ is the output of `make bench` and meets the suite's bar."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd
import pytest
import torch

from modecov.config import suite
from modecov.data import DATASETS
from modecov.metrics import METRICS, score_samples, versions
from modecov.report import validation
from modecov.store import read_samples
from modecov.train import real_reference
from modecov.variants import VARIANTS

RESULTS = Path(__file__).resolve().parents[1] / "results"
DEFAULT = RESULTS / "default"


@pytest.fixture(scope="module")
def runs() -> pd.DataFrame:
    if not (DEFAULT / "runs.csv").exists():
        pytest.fail("results/default/runs.csv is missing: run `make bench` and commit it")
    return pd.read_csv(DEFAULT / "runs.csv")


def test_every_default_group_and_seed_is_stored(runs):
    stored = set(zip(runs["config_id"], runs["seed"]))
    expected = {(c.config_id, s) for c in suite("default") for s in c.seeds}
    assert expected <= stored, f"{len(expected - stored)} (config, seed) pairs missing"


def test_nsgan_has_learnt_ring8(runs):
    rows = runs[(runs["variant"] == "nsgan") & (runs["dataset"] == "ring8")]
    assert len(rows) >= 5
    assert rows["hq_fraction"].median() >= 0.5


def test_reference_rows_calibrate(runs):
    true = runs[runs["variant"] == "true_sampler"]
    assert (true["status"] == "ok").all()
    # The plug-in KL of a K-bin histogram of n samples is biased up by about (K - 1) / 2n:
    # ~0.2 nats for stacked_digits' 1,000 modes at 2,500 samples, ~0.002 on ring8.
    n_modes = true["dataset"].map(lambda d: DATASETS[d].n_modes)
    bias = (n_modes - 1) / (2 * true["n_eval"] * true["hq_fraction"])
    assert (true["kl_gen_true"] < 0.01 + 1.5 * bias).all()
    one = runs[runs["variant"] == "one_mode"]
    assert (one["modes_covered"] == 1).all()


def test_summary_and_tables_are_built(runs):
    summary = pd.read_csv(DEFAULT / "summary.csv")
    assert set(summary["variant"]) == set(runs["variant"])
    assert (DEFAULT / "tables" / "hq_fraction.md").exists()


def test_default_runs_every_variant_on_the_mixtures_and_the_imbalanced_sets(runs):
    # The mission's comparison, written out: >= 5 ok seeds of every variant on each set.
    ok = runs[runs["status"] == "ok"]
    for dataset in ("ring8", "grid25", "ring8_imbalanced", "heavy_center"):
        for variant in VARIANTS:
            rows = ok[(ok["dataset"] == dataset) & (ok["variant"] == variant)]
            assert rows["seed"].nunique() >= 5, (variant, dataset)


def test_validation_store_holds_the_validation_suite():
    stored = pd.read_csv(RESULTS / "validation" / "runs.csv", dtype={"config_id": str})
    pairs = set(zip(stored["config_id"], stored["seed"]))
    expected = {(c.config_id, s) for c in suite("validation") for s in c.seeds}
    assert expected <= pairs, f"{len(expected - pairs)} (config, seed) pairs missing"


def test_validation_note_tables_match_the_stores(capsys):
    # The measured tables of results/validation.md are exactly what the stores give.
    assert validation.main(["--results", str(RESULTS), "--check"]) == 0, capsys.readouterr().err


STORES = ("default", "validation", "optim")
"""The committed stores."""
STORE_DATASETS = [(name, d) for name in STORES for d in sorted({c.dataset for c in suite(name)})]
"""(store, dataset) pairs of the re-scoring test: one test each, so that pytest-xdist shares
the ~1 s per stored seed between its workers."""


@pytest.mark.parametrize("name", STORES)
def test_every_stored_row_was_computed_by_this_code(name):
    # A change to a variant's update rule or a metric bumps its version; a committed row of
    # another version is stale and must be re-run (`modecov run --rerun-stale`).
    stored = pd.read_csv(RESULTS / name / "runs.csv", dtype={"config_id": str})
    configs = {c.config_id: c for c in suite(name)}
    for _, row in stored.iterrows():
        cfg = configs[row["config_id"]]
        assert row["variant_version"] == cfg.spec.version, (name, cfg.variant)
        assert row["metric_versions"] == versions(), (name, cfg.variant)


@pytest.mark.parametrize(("name", "dataset"), STORE_DATASETS)
def test_stored_final_samples_rescore_to_the_stored_metrics(name, dataset):
    # Every samples metric of every stored group, recomputed by this code from the stored
    # final samples (all n_eval of them on the 2-D sets), equals the committed value.
    root = RESULTS / name
    stored = pd.read_csv(root / "runs.csv", dtype={"config_id": str})
    stored = stored[stored["dataset"] == dataset]
    configs = {c.config_id: c for c in suite(name)}
    keys = [k for spec in METRICS.values() if spec.kind == "samples" for k in spec.outputs]
    checked = 0
    for config_id, rows in stored.groupby("config_id"):
        cfg = configs[config_id]
        arrays = read_samples(root, config_id)
        assert arrays is not None, config_id
        if arrays["samples"].shape[1] != cfg.n_eval or cfg.is_reference:
            continue  # reference samplers draw in float64; the store keeps float32 copies
        data = DATASETS[cfg.dataset]
        cfg = dataclasses.replace(cfg, seeds=tuple(int(s) for s in arrays["seeds"]))
        fake = torch.from_numpy(arrays["samples"]).to(getattr(torch, cfg.dtype))
        scores = score_samples(fake=fake, real=real_reference(cfg, data, cfg.n_eval), data=data)
        by_seed = rows.set_index("seed")
        for s, seed in enumerate(cfg.seeds):
            for key in keys:
                want = float(by_seed.loc[seed, key])
                assert float(scores[key][s]) == pytest.approx(
                    want, rel=1e-9, abs=1e-12, nan_ok=True
                ), (name, cfg.variant, cfg.dataset, seed, key)
        checked += 1
    trained = {configs[c].variant for c in stored["config_id"] if not configs[c].is_reference}
    assert trained and checked >= len(trained)
