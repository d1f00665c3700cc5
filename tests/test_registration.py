"""A new variant, dataset or metric is one module (here: one constant in this test) plus one
registry line. A throwaway of each, registered here and nowhere else, shows up in
`modecov list`, the suites, a run, the store and the report.

Registering is what one more line in the registry's tuple does: the registry becomes a new
read-only mapping with the entry added. The test puts that mapping wherever the registry is
held (every loaded ``modecov`` module that imported it), and re-derives ``DIRECTIONS``, which
``modecov.metrics`` computes from ``METRICS`` once. The run uses ``--workers 1``: worker
processes import the package afresh and would not see a registration made in a test.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from types import MappingProxyType

import pandas as pd
import pytest
import torch
from helpers import cli

import modecov.data
import modecov.metrics
import modecov.variants
from modecov import losses
from modecov.config import suite
from modecov.data.mixtures import ring
from modecov.metrics import MetricSpec
from modecov.store import RUNS, TRAJECTORY, Store
from modecov.variants import Variant

VARIANT = Variant(
    name="throwaway_gan",
    label="Throwaway GAN",
    reference="test",
    d_loss=losses.bce_d,
    g_loss=losses.nonsaturating_g,
)
DATASET = ring(
    name="throwaway_ring", n_modes=3, radius=1.0, std=0.05, label="Throwaway ring",
    reference="test", comparison=True,
)  # fmt: skip


def spread(*, fake: torch.Tensor, real: torch.Tensor, data) -> dict[str, torch.Tensor]:
    """(S,) standard deviation of each seed's samples."""
    return {"throwaway_spread": fake.double().flatten(1).std(dim=1)}


METRIC = MetricSpec(
    name="throwaway_spread", label="Throwaway spread", reference="test", kind="samples",
    fn=spread, outputs={"throwaway_spread": True}, needs_dataset=False,
)  # fmt: skip

RUN = [
    "--seeds", "0-1", "--steps", "4", "--batch-size", "16", "--set", "eval_every=2",
    "--set", "hidden=8", "--set", "n_eval=200", "--set", "n_eval_large=200",
    "--workers", "1", "--quiet",
]  # fmt: skip


def _put(monkeypatch, old: Mapping, new: Mapping) -> None:
    """Replace the registry object ``old`` by ``new`` in every loaded modecov module."""
    for name, module in list(sys.modules.items()):
        if module is None or not (name == "modecov" or name.startswith("modecov.")):
            continue
        for attr, value in list(vars(module).items()):
            if value is old:
                monkeypatch.setattr(module, attr, new)


def _register(monkeypatch, registry: Mapping, entry) -> Mapping:
    """``registry`` with ``entry`` added as its last line, in place of ``registry``."""
    new = MappingProxyType({**registry, entry.name: entry})
    _put(monkeypatch, registry, new)
    return new


@pytest.fixture
def registered(monkeypatch):
    """The throwaway variant, dataset and metric, registered for the test."""
    _register(monkeypatch, modecov.variants.VARIANTS, VARIANT)
    _register(monkeypatch, modecov.data.BUNDLED, DATASET)  # DATASETS reads BUNDLED
    directions = modecov.metrics.DIRECTIONS
    _register(monkeypatch, modecov.metrics.METRICS, METRIC)
    _put(monkeypatch, directions, MappingProxyType({**directions, **METRIC.outputs}))
    assert VARIANT.name in modecov.variants.VARIANTS
    assert DATASET.name in modecov.data.DATASETS
    assert METRIC.name in modecov.metrics.METRICS


def test_list_shows_them(registered, capsys):
    rc, out, err = cli(capsys, "list")
    assert rc == 0, err
    assert f"  {VARIANT.name} " in out and VARIANT.label in out
    assert f"  {DATASET.name} " in out and "(D=2, K=3)" in out
    assert f"  {METRIC.name} " in out and "throwaway_spread ↑" in out


@pytest.mark.parametrize("name", ["quick", "default", "paper"])
def test_the_suites_of_every_variant_take_a_new_variant(registered, name):
    configs = suite(name)
    assert {c.variant for c in configs} >= {VARIANT.name, "nsgan"}


@pytest.mark.parametrize("name", ["quick", "default", "paper"])
def test_the_suites_take_a_new_dataset(registered, name):
    # paper trains every dataset; quick and default those that declare ``comparison``.
    configs = suite(name)
    assert {(c.variant, c.dataset) for c in configs} >= {
        (VARIANT.name, DATASET.name),
        ("nsgan", DATASET.name),
        ("true_sampler", DATASET.name),
    }


def test_run_store_and_report_take_them(registered, capsys, tmp_path):
    root = tmp_path / "store"
    rc, _, err = cli(capsys, "run", "--variants", VARIANT.name, "--datasets", DATASET.name,
                     *RUN, "--out", root)  # fmt: skip
    assert rc == 0, err
    with Store(root) as store:
        runs = store.runs()
        traj = store.trajectory()
    assert set(runs["dataset"]) == {DATASET.name}
    assert VARIANT.name in set(runs["variant"])
    assert runs["throwaway_spread"].notna().all() and (runs["throwaway_spread"] > 0).all()
    assert (runs["metric_versions"].str.contains(f"{METRIC.name}={METRIC.version}")).all()
    assert set(traj["config_id"]) == set(runs["config_id"])
    assert (root / TRAJECTORY).exists() and (root / RUNS).exists()

    rc, out, err = cli(capsys, "report", root)
    assert rc == 0, err
    table = (root / "tables" / f"{METRIC.name}.md").read_text()
    assert VARIANT.label in table and DATASET.label in table and "throwaway_spread ↑" in table
    paper = (root / "tables" / "paper.md").read_text()
    assert VARIANT.label in paper and DATASET.label in paper
    summary = pd.read_csv(root / "summary.csv")
    assert METRIC.name in set(summary["metric"]) and VARIANT.name in set(summary["variant"])
    assert (root / "figures" / f"samples_{DATASET.name}.png").exists()
    assert (root / "figures" / f"landscape_{DATASET.name}.png").exists()
    assert f"figures/samples_{DATASET.name}.png" in (root / "README.md").read_text()
