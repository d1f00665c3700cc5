"""Tests for modecov.config: RunConfig validation, --seeds / --set parsing, config_id and
the suites."""

from __future__ import annotations

import dataclasses
from types import MappingProxyType

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modecov import config as config_module
from modecov.config import (
    EXECUTION_FIELDS,
    FIELD_TYPES,
    SUITES,
    RunConfig,
    parse_seeds,
    parse_value,
    suite,
    with_overrides,
)
from modecov.errors import ConfigError
from modecov.variants import REFERENCES, VARIANTS


def cfg(**overrides) -> RunConfig:
    return RunConfig(**{"dataset": "ring8", "variant": "nsgan", **overrides})


@pytest.mark.parametrize(
    "field, value, hint",
    [
        pytest.param("dataset", "ring9", "'ring8'", id="dataset"),
        pytest.param("dataset", "grid_25", "'grid25'", id="dataset_underscore"),
        pytest.param("variant", "nsgn", "'nsgan'", id="variant"),
        pytest.param("variant", "true_samplr", "'true_sampler'", id="reference"),
    ],
)
def test_unknown_names_suggest_a_close_match(field, value, hint):
    with pytest.raises(ConfigError, match="did you mean") as exc:
        cfg(**{field: value})
    message = str(exc.value)
    assert hint in message and "\n" not in message


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(ConfigError) as exc:
        cfg(variant="zzzz")
    assert all(name in str(exc.value) for name in [*VARIANTS, *REFERENCES])


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"steps": -1}, id="steps_negative"),
        pytest.param({"steps": 1.5}, id="steps_float"),
        pytest.param({"steps": True}, id="steps_bool"),
        pytest.param({"batch_size": 0}, id="batch_zero"),
        pytest.param({"z_dim": 0}, id="z_dim_zero"),
        pytest.param({"hidden": 0}, id="hidden_zero"),
        pytest.param({"depth": -1}, id="depth_negative"),
        pytest.param({"eval_every": 0}, id="eval_every_zero"),
        pytest.param({"n_eval": 5}, id="n_eval_small"),
        pytest.param({"n_eval_large": 0}, id="n_eval_large_zero"),
        pytest.param({"eval_seed": -1}, id="eval_seed_negative"),
        pytest.param({"lr": 0.0}, id="lr_zero"),
        pytest.param({"lr": 1.5}, id="lr_above_one"),
        pytest.param({"beta1": 1.0}, id="beta1_one"),
        pytest.param({"beta2": -0.1}, id="beta2_negative"),
        pytest.param({"dtype": "float16"}, id="dtype"),
        pytest.param({"device": "tpu"}, id="device"),
        pytest.param({"seeds": ()}, id="no_seeds"),
        pytest.param({"seeds": (0, 1, 0)}, id="duplicate_seeds"),
        pytest.param({"seeds": (-1,)}, id="negative_seed"),
        pytest.param({"seeds": (2**31,)}, id="huge_seed"),
        pytest.param({"seeds": ("0",)}, id="string_seed"),
    ],
)
def test_bad_values_raise_config_error(overrides):
    with pytest.raises(ConfigError):
        cfg(**overrides)


def test_valid_edges_are_accepted():
    cfg(steps=0, lr=1.0, beta1=0.0, beta2=0.999, depth=0, n_eval=10, dtype="float64", device="cpu")


def test_a_packed_variant_takes_any_batch_size(monkeypatch):
    # A batch is batch_size packs of pack samples (PacGAN), so no batch size is refused.
    packed = dataclasses.replace(VARIANTS["nsgan"], name="packed4", pack=4)
    monkeypatch.setattr(
        config_module, "VARIANTS", MappingProxyType({**VARIANTS, "packed4": packed})
    )
    assert cfg(variant="packed4", batch_size=30).spec.pack == 4
    assert cfg(variant="packed4", batch_size=1).batch_size == 1


def test_config_is_frozen_and_overrides_revalidate():
    c = cfg()
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.steps = 10  # type: ignore[misc]
    assert with_overrides(c, steps=10).steps == 10
    with pytest.raises(ConfigError):
        with_overrides(c, steps=-5)
    with pytest.raises(ConfigError):
        with_overrides(c, stpes=10)


@pytest.mark.parametrize(
    "text, seeds",
    [
        pytest.param("0-9", tuple(range(10)), id="range"),
        pytest.param("0,3,5", (0, 3, 5), id="list"),
        pytest.param("0-2,7", (0, 1, 2, 7), id="mixed"),
        pytest.param("4", (4,), id="single"),
        pytest.param("5-5", (5,), id="range_of_one"),
        pytest.param(" 1, 2 ", (1, 2), id="spaces"),
    ],
)
def test_parse_seeds_accepts(text, seeds):
    assert parse_seeds(text) == seeds


@given(parts=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 5)), min_size=1, max_size=6))
def test_parse_seeds_reads_any_list_of_ranges(parts):
    expected, texts = [], []
    for lo, width in parts:
        hi = lo + width
        expected.extend(range(lo, hi + 1))
        texts.append(f"{lo}-{hi}" if width else str(lo))
    text = ",".join(texts)
    if len(set(expected)) != len(expected):
        with pytest.raises(ConfigError, match="twice"):
            parse_seeds(text)
    else:
        assert parse_seeds(text) == tuple(expected)


@pytest.mark.parametrize("text", ["3-1", "a", "-1", "1,1", "0-2,2", "", "1.5", "0-", "1,,2"])
def test_parse_seeds_rejects(text):
    with pytest.raises(ConfigError, match="--seeds"):
        parse_seeds(text)


@pytest.mark.parametrize(
    "name, text, value",
    [
        pytest.param("steps", "2000", 2000, id="int"),
        pytest.param("steps", "20_000", 20000, id="int_underscore"),
        pytest.param("lr", "1e-3", 1e-3, id="float"),
        pytest.param("beta1", "None", None, id="none"),
        pytest.param("dtype", "float64", "float64", id="str"),
        pytest.param("seeds", "0-2,5", (0, 1, 2, 5), id="seeds"),
    ],
)
def test_parse_value_converts(name, text, value):
    got = parse_value(name, text)
    assert got == value and type(got) is type(value)


def _as_text(value) -> str:
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return "none" if value is None else str(value)


@pytest.mark.parametrize("name", list(FIELD_TYPES))
def test_parse_value_round_trips_every_field(name):
    """A new RunConfig field whose type parse_value does not handle fails here."""
    example = cfg(seeds=(0, 2), lr=2e-4, beta1=0.5)
    value = getattr(example, name)
    got = parse_value(name, _as_text(value))
    assert got == value and type(got) is type(value)
    assert with_overrides(example, **{name: got}) == example


@pytest.mark.parametrize(
    "name, text",
    [
        pytest.param("steps", "many", id="int"),
        pytest.param("steps", "1.5", id="int_float"),
        pytest.param("lr", "fast", id="float"),
        pytest.param("seeds", "x", id="seeds"),
    ],
)
def test_parse_value_rejects_bad_text(name, text):
    with pytest.raises(ConfigError):
        parse_value(name, text)


def test_parse_value_rejects_unknown_fields():
    with pytest.raises(ConfigError, match="did you mean 'steps'"):
        parse_value("stpes", "10")


def test_config_id():
    base = cfg(seeds=(0, 1), device="cpu")
    assert len(base.config_id) == 12 and int(base.config_id, 16) >= 0
    assert base.config_id == cfg(seeds=(5,), device="auto").config_id
    assert base.config_id != cfg(seeds=(0, 1), device="cpu", steps=base.steps + 1).config_id
    assert base.config_id != cfg(variant="gan").config_id
    assert not set(EXECUTION_FIELDS) & set(base.canonical())
    assert set(base.canonical()) | set(EXECUTION_FIELDS) == set(FIELD_TYPES)


@pytest.mark.parametrize("name", list(SUITES))
def test_every_suite_builds(name):
    configs = suite(name)
    assert configs and all(isinstance(c, RunConfig) for c in configs)
    ids = [c.config_id for c in configs]
    assert len(set(ids)) == len(ids), "a suite runs the same group twice"
    # A (variant, dataset) pair appears more than once only with a setting that differs
    # (optim's Adam settings, validation's 20,000-step runs), which the report names.
    seen: dict = {}
    for c in configs:
        seen.setdefault((c.variant, c.dataset), []).append(
            (c.lr, c.beta1, c.beta2, c.steps, c.z_dim)
        )
    assert all(len(set(opts)) == len(opts) for opts in seen.values())


def test_unknown_suite():
    with pytest.raises(ConfigError, match="did you mean 'default'"):
        suite("defualt")


def test_default_suite_runs_every_variant_on_the_four_comparison_sets():
    # DESIGN §9: every variant x the mixtures and the imbalanced sets, 5 seeds, 5,000 steps,
    # batch 256, Adam 1e-4 (written out here, not read from the config under test).
    configs = suite("default")
    by_group = {(c.variant, c.dataset): c for c in configs}
    datasets = ("ring8", "grid25", "ring8_imbalanced", "heavy_center")
    assert {c.dataset for c in configs} == set(datasets)
    for dataset in datasets:
        for variant in [*VARIANTS, "true_sampler", "one_mode"]:
            cfg = by_group[variant, dataset]
            assert len(cfg.seeds) >= 5, (variant, dataset)
            assert cfg.steps == 5_000 and cfg.batch_size == 256, (variant, dataset)
            if cfg.variant in VARIANTS:
                assert cfg.lr in (None, 1e-4), (variant, dataset, cfg.lr)
    # validation's 5,000-step grid25 groups are default's: a validation store re-uses them.
    default_ids = {c.config_id for c in configs}
    validation = suite("validation")
    assert {
        c.config_id for c in validation if c.dataset == "grid25" and c.steps == 5_000
    } <= default_ids
    long = {c.variant for c in validation if c.steps == 20_000}
    assert long and long < {c.variant for c in validation}


def test_quick_suite_is_every_variant_on_the_default_sets_with_fewer_seeds_and_steps():
    quick, default = suite("quick"), suite("default")
    assert {(c.variant, c.dataset) for c in quick} == {(c.variant, c.dataset) for c in default}
    assert all(len(c.seeds) == 3 and c.steps < 5_000 for c in quick)


def test_optim_suite_compares_two_adam_settings_on_spiral_and_ring8():
    configs = suite("optim")
    trained = [c for c in configs if c.variant == "nsgan"]
    settings = {(c.lr, c.beta1) for c in trained}
    assert settings == {(1e-3, 0.9), (2e-4, 0.5)}
    assert {(c.dataset, c.lr) for c in trained} == {
        (d, lr) for d in ("spiral", "ring8") for lr in (1e-3, 2e-4)
    }
    assert all(len(c.seeds) >= 10 for c in configs)
    # Dynamics metrics need a path, not two end points: at least 20 snapshots per run.
    assert all(c.steps // c.eval_every >= 20 for c in trained)
    assert len({c.config_id for c in configs}) == len(configs)
