"""Implementation versions: a store refuses rows computed by another version of a variant or
a metric, and ``--rerun-stale`` re-runs exactly those groups."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from types import MappingProxyType

import pandas as pd
import pytest
from helpers import cli, digest

import modecov.config as config_mod
import modecov.store as store_mod
from modecov.config import suite
from modecov.metrics import METRICS, versions
from modecov.store import KEY, RUNS, TRAJECTORY
from modecov.variants import REFERENCES, VARIANTS

SMOKE = ["run", "--suite", "smoke", "--workers", "1"]


def read_runs(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype={"config_id": str})


@pytest.fixture
def store(smoke_store, tmp_path) -> Path:
    root = tmp_path / "store"
    shutil.copytree(smoke_store, root)
    return root


NSGAN_NOW = VARIANTS["nsgan"].version
"""NS-GAN's version, under which the smoke store is computed; the fixture bumps it by one."""


@pytest.fixture
def nsgan_v2(monkeypatch):
    """The registry as it would be after a change to NS-GAN's update rule."""
    bumped = {**VARIANTS, "nsgan": dataclasses.replace(VARIANTS["nsgan"], version=NSGAN_NOW + 1)}
    monkeypatch.setattr(config_mod, "VARIANTS", MappingProxyType(bumped))


def test_every_variant_and_metric_has_a_version():
    for spec in [*VARIANTS.values(), *REFERENCES.values(), *METRICS.values()]:
        assert isinstance(spec.version, int) and spec.version >= 1, spec.name
    listed = dict(part.split("=") for part in versions().split(";"))
    assert listed == {name: str(spec.version) for name, spec in METRICS.items()}


def test_rows_record_the_implementation_that_computed_them(smoke_store):
    runs = read_runs(smoke_store / RUNS)
    for _, row in runs.iterrows():
        spec = VARIANTS.get(row["variant"]) or REFERENCES[row["variant"]]
        assert row["variant_version"] == spec.version
        assert row["metric_versions"] == versions()


def test_a_changed_variant_is_refused_in_one_line_and_the_store_is_unchanged(
    store, capsys, nsgan_v2
):
    before = digest(store)
    rc, _, err = cli(capsys, *SMOKE, "--out", store)
    assert rc == 2
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert f"nsgan on ring8: nsgan v{NSGAN_NOW}, now v{NSGAN_NOW + 1}" in err
    assert "--rerun-stale" in err
    assert digest(store) == before


def test_rerun_stale_reruns_exactly_the_changed_group(store, capsys, nsgan_v2):
    before = read_runs(store / RUNS)
    traj_before = pd.read_csv(store / TRAJECTORY, dtype={"config_id": str})
    rc, _, err = cli(capsys, *SMOKE, "--rerun-stale", "--out", store)
    assert rc == 0, err
    n = len(suite("smoke"))
    assert f"1 groups to run (2 stale rows re-run), {n - 1} already stored" in err
    after = read_runs(store / RUNS)
    assert not after.duplicated(KEY).any() and len(after) == len(before)
    nsgan = after["variant"] == "nsgan"
    assert (after.loc[nsgan, "variant_version"] == NSGAN_NOW + 1).all()
    # Every other group's rows are exactly as stored.
    pd.testing.assert_frame_equal(
        after[~nsgan].reset_index(drop=True),
        before[before["variant"] != "nsgan"].reset_index(drop=True),
    )
    traj = pd.read_csv(store / TRAJECTORY, dtype={"config_id": str})
    assert not traj.duplicated(KEY + ["step", "metric"]).any()
    assert len(traj) == len(traj_before)
    # Run again: nothing is stale any more.
    rc, _, err = cli(capsys, *SMOKE, "--out", store)
    assert rc == 0 and f"0 groups to run, {n} already stored" in err


def test_a_changed_metric_makes_every_row_stale(store, capsys, monkeypatch):
    changed = versions().replace("modes=", "modes=9") + ";brand_new=1"
    monkeypatch.setattr(store_mod, "metric_versions", lambda: changed)
    rc, _, err = cli(capsys, *SMOKE, "--out", store)
    assert rc == 2 and len(err.strip().splitlines()) == 1
    assert "brand_new v-, now v1" in err and "and 2 more groups" in err
    rc, _, err = cli(capsys, *SMOKE, "--rerun-stale", "--quiet", "--out", store)
    assert rc == 0, err
    assert (read_runs(store / RUNS)["metric_versions"] == changed).all()


def test_rows_without_versions_are_stale(store, capsys):
    runs = read_runs(store / RUNS).drop(columns=["variant_version", "metric_versions"])
    runs.to_csv(store / RUNS, index=False)
    rc, _, err = cli(capsys, *SMOKE, "--out", store)
    assert rc == 2 and "stored before implementation versions were recorded" in err


def test_report_refuses_a_store_that_mixes_metric_versions(store, capsys):
    runs = read_runs(store / RUNS)
    runs.loc[0, "metric_versions"] = runs.loc[0, "metric_versions"].replace("modes=", "modes=7")
    runs.to_csv(store / RUNS, index=False)
    rc, _, err = cli(capsys, "report", store)
    assert rc == 2 and len(err.strip().splitlines()) == 1
    assert "mixes rows computed by 2 different metric versions" in err


def test_manifest_names_the_shipped_digit_classifier(smoke_store):
    import hashlib
    import json

    import modecov.classifiers.digits as digits

    manifest = json.loads((smoke_store / "manifest.json").read_text())
    weights = Path(digits.__file__).with_name("digits_classifier.npz").read_bytes()
    assert manifest["digits_classifier_sha256"] == hashlib.sha256(weights).hexdigest()[:16]
