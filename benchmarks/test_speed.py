"""Speed bars of the trainer, as ratios against baselines measured in the same run.

`make perf` runs these. The bars (issue 2): at DESIGN's default shapes on 2 cores,
modecov trains >= 2x the run-iterations per second of the usual one-GAN-at-a-time loop,
and achieves >= 55% of the FLOP rate of a large matmul on the same machine.
"""

from __future__ import annotations

import os

import pytest
from workloads import matmul_rate, naive_rate, step_flops, trainer_rate

CORES = min(2, os.cpu_count() or 1)


@pytest.fixture(scope="module")
def baselines() -> dict[str, float]:
    return {"naive": naive_rate(threads=CORES), "matmul": matmul_rate(threads=CORES)}


def test_trainer_throughput(benchmark, baselines):
    rates: list[float] = []

    def once() -> None:
        rates.append(trainer_rate(processes=CORES))

    benchmark.pedantic(once, rounds=3, iterations=1)
    rate = sorted(rates)[len(rates) // 2]
    flops = step_flops()
    achieved = rate * flops
    speedup = rate / baselines["naive"]
    efficiency = achieved / baselines["matmul"]
    benchmark.extra_info.update(
        run_iterations_per_s=rate,
        naive_run_iterations_per_s=baselines["naive"],
        mflop_per_run_iteration=flops / 1e6,
        achieved_gflops=achieved / 1e9,
        matmul_gflops=baselines["matmul"] / 1e9,
        speedup_vs_naive=speedup,
        fraction_of_matmul=efficiency,
    )
    print(
        f"\ntrainer {rate:.0f} run-it/s vs naive {baselines['naive']:.0f} run-it/s: "
        f"{speedup:.2f}x (bar 2x)\n"
        f"achieved {achieved / 1e9:.1f} GFLOP/s ({flops / 1e6:.0f} MFLOP per run-iteration) "
        f"vs matmul {baselines['matmul'] / 1e9:.1f} GFLOP/s: {efficiency:.0%} (bar 55%)"
    )
    assert speedup >= 2.0
    assert efficiency >= 0.55
