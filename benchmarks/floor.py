"""The FLOP floor of a suite: the matrix-product FLOPs its training needs over the rate of a
large matmul on this machine, the time no implementation on these cores can beat.

    python benchmarks/floor.py [--suite default] [--workers 2]

FLOPs per step come from ``torch.utils.flop_counter.FlopCounterMode`` on one real step of
each (variant, dataset) with one seed (it counts matrix products and convolutions, forward
and backward; elementwise work is not counted, so the floor is a lower bound). A group
costs steps x seeds x that, plus its evaluation snapshots (G on the evaluation noise).
The rate is a 2,048 x 2,048 fp32 matmul on all ``--workers`` cores (``workloads.matmul_rate``).
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from workloads import matmul_rate  # noqa: E402


def step_flops(variant: str, dataset: str, **overrides) -> float:
    """Matrix-product FLOPs of one training step of ``variant`` on ``dataset``, one seed, at
    the suite's shapes (``overrides``: RunConfig fields such as batch_size)."""
    from torch.utils.flop_counter import FlopCounterMode

    from modecov.config import RunConfig
    from modecov.data import DATASETS
    from modecov.steps import standard_step
    from modecov.train import TrainState

    cfg = RunConfig(dataset=dataset, variant=variant, seeds=(0,), device="cpu", **overrides)
    st = TrainState(cfg, DATASETS[dataset], cfg.spec, torch.device("cpu"))
    step = cfg.spec.step or standard_step
    for st.step in range(1, 3):  # past any first-step special case (schedules, buffers)
        step(st)
    with FlopCounterMode(display=False) as counter:
        st.step = 3
        step(st)
    return float(counter.get_total_flops())


def eval_flops(cfg) -> float:
    """FLOPs of a group's evaluation passes of G, per seed: one per snapshot on the
    evaluation noise and one on the large set (2 FLOPs per multiply-add of the MLP)."""
    from modecov.data import DATASETS
    from modecov.metrics import sample_caps

    dim = DATASETS[cfg.dataset].dim
    sizes = [cfg.z_dim, *[cfg.hidden] * cfg.depth, dim]
    per_sample = 2 * sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
    snapshots = cfg.steps // cfg.eval_every + 2
    large = min(cfg.n_eval_large, max(sample_caps("distribution").values()))
    return float(per_sample * (snapshots * cfg.n_eval + large))


def suite_flops(name: str) -> dict[str, float]:
    """Variant -> training FLOPs of its groups in suite ``name`` (all seeds, all datasets)."""
    from modecov.config import suite

    per_step: dict[tuple[str, str], float] = {}
    totals: dict[str, float] = defaultdict(float)
    for cfg in suite(name):
        if cfg.is_reference:
            continue
        shape = {k: getattr(cfg, k) for k in ("batch_size", "z_dim", "hidden", "depth")}
        key = (cfg.variant, cfg.dataset)
        if key not in per_step:
            per_step[key] = step_flops(cfg.variant, cfg.dataset, **shape)
        totals[cfg.variant] += len(cfg.seeds) * (cfg.steps * per_step[key] + eval_flops(cfg))
    return dict(totals)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default="default")
    parser.add_argument("--workers", type=int, default=2, help="cores the suite runs on")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    totals = suite_flops(args.suite)
    rate = matmul_rate(threads=args.workers)
    total = sum(totals.values())
    print(f"suite {args.suite}: {total / 1e15:.2f} PFLOP of matrix products")
    for variant, flops in sorted(totals.items(), key=lambda kv: -kv[1]):
        print(f"  {variant:12s} {flops / 1e12:9.1f} TFLOP  {flops / rate / 60:6.1f} min")
    print(
        f"matmul rate on {args.workers} cores: {rate / 1e9:.0f} GFLOP/s; "
        f"floor {total / rate / 60:.1f} min"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
