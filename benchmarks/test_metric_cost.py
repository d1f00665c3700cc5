"""Cost of the kernel metrics and NDB per seed, against the existing final scoring (issue 13).

The bar: together ``kid``, ``vendi`` (with ``vendi_norm``), ``rke`` and ``ndb`` add at most
0.5 s per seed to a 2-D group's final scoring, on one torch thread, for 5 seeds of 2,500 ring8
samples against the 2,500-sample real set (``train.train``'s final samples). Seconds depend on
the machine and on what else runs on it, so the test asserts a ratio: the new metrics' cost
over the existing final scoring of the same group (the other samples metrics on those
samples, and the distribution metrics on the large set, 10,000 per seed, as ``train.train``
runs them), both timed in one fresh process with every thread pool at one thread,
interleaved, best of ``ROUNDS``. On the 2-core reference machine the existing final scoring
costs 1.31 s per seed (the best of several runs beside other jobs; an idle machine can only be
faster, which would raise the ratio the budget allows), so 0.5 s per seed is the ratio
``BAR = 0.5 / 1.31 = 0.38``. Both sides are single-threaded float64 work (matrix products,
exponentials, sorting, an eigensolver, k-means, a transport solver), so the ratio carries
across machines and loads: runs at loads of 2 to 3 per core gave existing 1.31 to 2.02 s per
seed and ratios 0.14 to 0.18. Measured in the 1.31 s run: kid 0.030, vendi 0.140, rke 0.022,
ndb 0.037 s per seed, 0.23 s in all, a ratio of 0.175. ``REFERENCE_EXISTING_S`` is re-measured
when the existing scoring's cost changes: a faster existing scoring tightens the bar (never
passing a new cost above 0.5 s), a slower one would loosen it.

It also prints each metric's own cost per seed and the whole final scoring's (issue 12 asks
0.5 s per seed of it; the README's Suites section gives the figures and why exact ``w2``,
``prdc`` and ``mmd2`` at their sample caps stay above that).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

SEEDS = 5
ROUNDS = 3
NEW = ("kid", "vendi", "rke", "ndb")
REFERENCE_EXISTING_S = 1.31
"""The existing final scoring per seed on the reference machine, where the budget is stated."""
BUDGET_S = 0.5
BAR = BUDGET_S / REFERENCE_EXISTING_S
"""Most the new metrics may cost, as a share of the existing final scoring."""
HERE = Path(__file__).resolve()


def _measure() -> dict:
    """Seconds per seed (best of ROUNDS) of the existing final scoring and of each new metric."""
    import torch

    torch.set_num_threads(1)
    from modecov import metrics
    from modecov.config import RunConfig
    from modecov.data import DATASETS
    from modecov.evaluate import Evaluation
    from modecov.train import large_samples

    cfg = RunConfig(dataset="ring8", variant="true_sampler", seeds=tuple(range(SEEDS)))
    data = DATASETS[cfg.dataset]
    evaluation = Evaluation(cfg, data, torch.device("cpu"))
    real = evaluation.real
    gens = [torch.Generator().manual_seed(s) for s in cfg.seeds]
    samples = torch.stack([cfg.spec.sampler(data, cfg.n_eval, g) for g in gens])
    fake_large = large_samples(cfg, data, None, evaluation.n_large)
    real_large = evaluation.real_large(evaluation.n_large)
    old = [m.name for m in metrics.METRICS.values() if m.kind == "samples" and m.name not in NEW]
    spread = [m.name for m in metrics.METRICS.values() if m.kind == "distribution"]
    on_samples = partial(metrics.score_samples, fake=samples, real=real, data=data)
    on_large = partial(metrics.score_distribution, fake=fake_large, real=real_large, data=data)

    def existing() -> None:
        on_samples(names=old)
        on_large()

    def timed(fn) -> float:
        start = time.perf_counter()
        fn()
        return (time.perf_counter() - start) / SEEDS

    runs = {"existing": existing}
    runs |= {name: partial(on_samples, names=[name]) for name in old + list(NEW)}
    runs |= {name: partial(on_large, names=[name]) for name in spread}
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(ROUNDS):
        for name, run in runs.items():
            best[name] = min(best[name], timed(run))
    return best


def _in_subprocess() -> dict:
    threads = {v: "1" for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    done = subprocess.run(
        [sys.executable, str(HERE)], capture_output=True, text=True,
        env={**os.environ, **threads}, check=True, timeout=1_800,
    )  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_new_metrics_cost_per_seed(benchmark):
    runs: list[dict] = []
    benchmark.pedantic(lambda: runs.append(_in_subprocess()), rounds=1)
    best = runs[0]
    new = sum(best[n] for n in NEW)
    ratio = new / best["existing"]
    benchmark.extra_info.update(
        existing_s_per_seed=best["existing"], new_s_per_seed=new, ratio=ratio, bar=BAR,
        **{f"{n}_s_per_seed": t for n, t in best.items() if n != "existing"},
        **{f"{n}_ratio": best[n] / best["existing"] for n in NEW},
    )  # fmt: skip
    print(
        f"\nfinal scoring of ring8, {SEEDS} seeds, one thread: existing "
        f"{best['existing']:.3f} s/seed; new {new:.3f} s/seed = {ratio:.3f} of it (bar {BAR:.3f}, "
        f"0.5 s at the reference machine's {REFERENCE_EXISTING_S} s)\n  "
        + ", ".join(f"{n} {best[n]:.3f} s ({best[n] / best['existing']:.3f})" for n in NEW)
        + f"\n  final scoring in all {best['existing'] + new:.3f} s/seed (issue 12 asks 0.5 s)"
        + "\n  each metric alone, s/seed: "
        + ", ".join(f"{n} {t:.3f}" for n, t in best.items() if n != "existing")
    )
    assert ratio <= BAR


if __name__ == "__main__":
    print(json.dumps(_measure()))
