"""Tests for modecov.train: registry-driven smoke runs, the seed-batching invariance in
float64, NaN isolation between seeds, reproducibility, and the shared evaluation noise.
Also checks the VARIANTS / REFERENCES registries that the trainer consumes."""

from __future__ import annotations

import math
import re

import pytest
import torch

from modecov.config import RunConfig
from modecov.data import DATASETS
from modecov.evaluate import train
from modecov.metrics import DIRECTIONS, METRICS, snapshot_metrics
from modecov.nets import StackedMLP
from modecov.optim import Adam
from modecov.train import TrainState, eval_noise, generate
from modecov.variants import REFERENCES, VARIANTS

SNAKE = re.compile(r"[a-z][a-z0-9]*(_[a-z0-9]+)*")
ALL = [*VARIANTS, *REFERENCES]

MAY_BE_NAN = {"kl_gen_true", "mode_jsd", "hop_tv", "steps_to_all_modes"}
"""Outputs documented as NaN in some cases (no HQ sample, no valid snapshot pair, never all
modes); every other final metric must be finite."""


def tiny(variant: str, **overrides) -> RunConfig:
    """A config that trains in well under a second."""
    base = dict(
        dataset="ring8", variant=variant, seeds=(0, 1), steps=4, eval_every=2,
        batch_size=32, hidden=16, depth=2, n_eval=100, n_eval_large=100, device="cpu",
    )  # fmt: skip
    return RunConfig(**{**base, **overrides})


def assert_equal_nan(a: torch.Tensor, b: torch.Tensor) -> None:
    torch.testing.assert_close(a, b, rtol=0, atol=0, equal_nan=True)


@pytest.mark.parametrize("key", ALL)
def test_registry_entry(key):
    v = VARIANTS.get(key) or REFERENCES[key]
    assert v.name == key and SNAKE.fullmatch(key)
    assert v.label and v.reference
    if key in REFERENCES:
        assert v.sampler is not None and v.step is None
    else:
        assert v.sampler is None
        assert v.step is not None or (v.d_loss is not None and v.g_loss is not None)
        assert v.pack >= 1 and v.n_critic >= 1


def test_registries_are_read_only_and_disjoint():
    assert not set(VARIANTS) & set(REFERENCES)
    with pytest.raises(TypeError):
        VARIANTS["x"] = VARIANTS["gan"]  # type: ignore[index]


@pytest.mark.parametrize("key", ALL)
def test_smoke(key):
    cfg = tiny(key)
    out = train(cfg)
    S, K, N = 2, DATASETS["ring8"].n_modes, cfg.n_eval
    T = len(out.steps)
    expected_steps = [0] if cfg.is_reference else [0, 2, 4]
    assert out.steps.tolist() == expected_steps

    assert set(out.final) == set(DIRECTIONS)
    for name, value in out.final.items():
        assert value.shape == (S,) and value.dtype == torch.float64, name
        assert not torch.isinf(value).any(), name
        if name not in MAY_BE_NAN:
            assert torch.isfinite(value).all(), name
    no_hq = out.final["hq_fraction"] == 0
    assert torch.equal(out.final["kl_gen_true"].isnan(), no_hq)
    assert torch.equal(out.final["mode_jsd"].isnan(), no_hq)

    trajectory_keys = {k for m in snapshot_metrics() for k in METRICS[m].outputs}
    assert set(out.trajectory) == trajectory_keys
    for name, value in out.trajectory.items():
        assert value.shape == (T, S), name
    assert out.counts.shape == (T, S, K)
    assert (out.counts >= 0).all() and (out.counts.sum(-1) <= N).all()
    covered = (out.counts[-1] >= 1).sum(-1).to(torch.float64)
    assert torch.equal(covered, out.final["modes_covered"])
    assert torch.equal(out.trajectory["modes_covered"][-1], out.final["modes_covered"])

    assert out.samples.shape == (S, N, 2) and torch.isfinite(out.samples).all()
    assert out.status == ["ok", "ok"] and out.diverged_step == [None, None]
    for name, values in out.losses.items():
        assert len(values) == T - 1, name
        assert all(v.shape == (S,) and torch.isfinite(v).all() for v in values), name
    if not cfg.is_reference:
        assert out.losses, "a trained variant reports its losses"


@pytest.mark.parametrize("key", list(VARIANTS))
def test_seeds_together_equal_separate_runs_float64(key):
    seeds = (3, 0, 7)  # not 0..S-1, so a seed is never confused with its position
    common = dict(
        dataset="ring8", variant=key, steps=200, eval_every=100, batch_size=64, hidden=32,
        n_eval=200, n_eval_large=200, dtype="float64", device="cpu",
    )  # fmt: skip
    together = train(RunConfig(seeds=seeds, **common))
    for i, s in enumerate(seeds):
        alone = train(RunConfig(seeds=(s,), **common))
        torch.testing.assert_close(together.samples[i], alone.samples[0], rtol=0, atol=1e-10)
    assert not torch.equal(together.samples[0], together.samples[1])


def test_nan_in_one_seed_leaves_the_others_untouched():
    fault_step = 12
    cfg = tiny("nsgan", seeds=(0, 1, 2), steps=30, eval_every=10, n_eval=200)
    frozen_g = {}

    def inject(st, losses):
        if st.step == fault_step:
            with torch.no_grad():
                st.D.params[1, 0] = math.nan
            frozen_g["at_fault"] = st.G.params[1].clone()
        if st.step == cfg.steps:
            frozen_g["final"] = st.G.params[1].clone()

    clean = train(cfg)
    faulty = train(cfg, callback=inject)

    assert faulty.status == ["ok", "diverged", "ok"]
    assert faulty.diverged_step[0] is None and faulty.diverged_step[2] is None
    # The NaN is in D after step 12's update; step 13's losses are the first to see it.
    assert faulty.diverged_step[1] in (fault_step, fault_step + 1)
    assert torch.equal(frozen_g["final"], frozen_g["at_fault"])  # frozen, not trained on NaN
    assert torch.isfinite(faulty.samples[1]).all()
    for name, value in faulty.final.items():
        assert not torch.isinf(value[1]), name

    ok = [0, 2]
    assert torch.equal(faulty.samples[ok], clean.samples[ok])
    for name in clean.final:
        assert_equal_nan(faulty.final[name][ok], clean.final[name][ok])
    for name in clean.trajectory:
        assert_equal_nan(faulty.trajectory[name][:, ok], clean.trajectory[name][:, ok])
    assert torch.equal(faulty.counts[:, ok], clean.counts[:, ok])
    assert clean.status == ["ok", "ok", "ok"]


def test_same_config_twice_is_bitwise_identical():
    cfg = tiny("nsgan", steps=20, eval_every=5)
    torch.manual_seed(0)  # training must not read the global RNG
    a = train(cfg)
    torch.manual_seed(1)
    b = train(cfg)
    assert torch.equal(a.samples, b.samples)
    assert torch.equal(a.counts, b.counts)
    for name in a.final:
        assert_equal_nan(a.final[name], b.final[name])
    for name in a.losses:
        assert torch.equal(torch.stack(a.losses[name]), torch.stack(b.losses[name]))


def test_eval_noise_is_shared_and_independent_of_the_seed_set():
    a = eval_noise(tiny("gan", seeds=(0, 1)), 50)
    b = eval_noise(tiny("gan", seeds=(7,)), 50)
    assert a.shape == (50, 2)
    assert torch.equal(a, b)
    assert not torch.equal(a, eval_noise(tiny("gan", eval_seed=1), 50))
    assert eval_noise(tiny("gan", dtype="float64"), 50).dtype == torch.float64


def test_every_seed_maps_the_same_eval_noise():
    cfg = tiny("gan", seeds=(4, 9), steps=0, dtype="float64")
    out = train(cfg)
    z = eval_noise(cfg, cfg.n_eval)
    for i, s in enumerate(cfg.seeds):
        g = StackedMLP([2, 16, 16, 2], [torch.Generator().manual_seed(s)], dtype=torch.float64)
        expected = g(z[None])[0].detach()
        torch.testing.assert_close(out.samples[i], expected, rtol=0, atol=1e-12)
    # With identical generators, every seed gives identical samples.
    st = TrainState(cfg, DATASETS[cfg.dataset], cfg.spec, torch.device("cpu"))
    with torch.no_grad():
        st.G.params[1] = st.G.params[0]
    fake = generate(st, z)
    assert torch.equal(fake[0], fake[1])


def test_config_optimizer_settings_override_the_variant():
    cfg = tiny("nsgan", lr=1e-3, beta1=0.9)
    st = TrainState(cfg, DATASETS[cfg.dataset], cfg.spec, torch.device("cpu"))
    default = VARIANTS["nsgan"].optimizer
    for state in st.optims.values():
        assert state.spec == Adam(lr=1e-3, betas=(0.9, default.betas[1]), eps=default.eps)
