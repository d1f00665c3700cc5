"""Workloads for the speed benchmarks: modecov's trainer, a naive loop, a large matmul.

Each returns a rate measured in its own process, so that thread settings do not leak
between them; shapes are DESIGN's defaults (Z = 2, 3 x 128 LeakyReLU MLPs, batch 256).
"""

from __future__ import annotations

import multiprocessing
import time

import torch
from torch import nn

SHAPES = {"z_dim": 2, "hidden": 128, "depth": 3, "batch_size": 256}


def _trainer_rate(seeds: int, steps: int, threads: int) -> float:
    """Run-iterations per second of ``standard_step`` on ``seeds`` stacked seeds."""
    torch.set_num_threads(threads)
    from modecov.backends import _init_worker
    from modecov.config import RunConfig
    from modecov.data import DATASETS
    from modecov.train import TrainState, standard_step

    if threads == 1:
        _init_worker()
    cfg = RunConfig(dataset="ring8", variant="nsgan", seeds=tuple(range(seeds)), device="cpu")
    st = TrainState(cfg, DATASETS["ring8"], cfg.spec, torch.device("cpu"))
    for st.step in range(1, 21):
        standard_step(st)
    start = time.perf_counter()
    for st.step in range(21, 21 + steps):
        standard_step(st)
    return seeds * steps / (time.perf_counter() - start)


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.LeakyReLU(0.2))
    return nn.Sequential(*layers)


def _naive_rate(runs: int, steps: int, threads: int) -> float:
    """Run-iterations per second of the usual loop: one nn.Sequential GAN at a time."""
    torch.set_num_threads(threads)
    from modecov.data import DATASETS

    data = DATASETS["ring8"]
    Z, H, B = SHAPES["z_dim"], SHAPES["hidden"], SHAPES["batch_size"]
    bce = nn.BCEWithLogitsLoss()
    elapsed = 0.0
    for run in range(runs):
        torch.manual_seed(run)  # the usual way; the benchmark's baseline, not library code
        gen, disc = _mlp([Z, H, H, H, 2]), _mlp([2, H, H, H, 1])
        opt_g = torch.optim.Adam(gen.parameters(), lr=1e-4, betas=(0.5, 0.999))
        opt_d = torch.optim.Adam(disc.parameters(), lr=1e-4, betas=(0.5, 0.999))
        g = torch.Generator().manual_seed(run)
        ones, zeros = torch.ones(B, 1), torch.zeros(B, 1)
        for i in range(steps + 5):
            if i == 5:
                start = time.perf_counter()
            real = data.sample(B, g)
            fake = gen(torch.randn(B, Z, generator=g))
            opt_d.zero_grad()
            loss_d = bce(disc(real), ones) + bce(disc(fake.detach()), zeros)
            loss_d.backward()
            opt_d.step()
            opt_g.zero_grad()
            loss_g = bce(disc(fake), ones)
            loss_g.backward()
            opt_g.step()
        elapsed += time.perf_counter() - start
    return runs * steps / elapsed


def _matmul_rate(n: int, repeats: int, threads: int) -> float:
    """FLOP/s of a large fp32 matmul."""
    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(2):
        a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2.0 * n**3 * repeats / (time.perf_counter() - start)


def step_flops(seeds: int = 1) -> float:
    """FLOPs of one modecov training step per seed (FlopCounterMode)."""
    from torch.utils.flop_counter import FlopCounterMode

    from modecov.config import RunConfig
    from modecov.data import DATASETS
    from modecov.train import TrainState, standard_step

    cfg = RunConfig(dataset="ring8", variant="nsgan", seeds=tuple(range(seeds)), device="cpu")
    st = TrainState(cfg, DATASETS["ring8"], cfg.spec, torch.device("cpu"))
    with FlopCounterMode(display=False) as counter:
        standard_step(st)
    return counter.get_total_flops() / seeds


def in_processes(fn, args: tuple, processes: int) -> float:
    """Run ``fn(*args)`` in ``processes`` fresh processes at once; the summed rate."""
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(processes) as pool:
        return float(sum(pool.starmap(fn, [args] * processes)))


def trainer_rate(*, seeds: int = 16, steps: int = 150, processes: int = 2) -> float:
    """modecov's way on this machine: one worker process per core, one thread each."""
    return in_processes(_trainer_rate, (seeds, steps, 1), processes)


def naive_rate(*, runs: int = 2, steps: int = 150, threads: int = 2) -> float:
    """The usual way: one process, all cores as torch threads."""
    return in_processes(_naive_rate, (runs, steps, threads), 1)


def matmul_rate(*, n: int = 2048, repeats: int = 10, threads: int = 2) -> float:
    """The practical ceiling: a large matmul on all cores."""
    return in_processes(_matmul_rate, (n, repeats, threads), 1)
