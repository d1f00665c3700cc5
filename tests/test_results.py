"""The committed results/default/ is the output of `make bench` and meets the suite's bar."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from modecov.config import suite

DEFAULT = Path(__file__).resolve().parents[1] / "results" / "default"


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
    assert true["kl_gen_true"].max() < 0.01
    one = runs[runs["variant"] == "one_mode"]
    assert (one["modes_covered"] == 1).all()


def test_summary_and_tables_are_built(runs):
    summary = pd.read_csv(DEFAULT / "summary.csv")
    assert set(summary["variant"]) == set(runs["variant"])
    assert (DEFAULT / "tables" / "hq_fraction.md").exists()
