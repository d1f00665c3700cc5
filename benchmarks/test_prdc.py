"""PRDC at 10k x 10k against ``prdc.compute_prdc`` in the same run (issue 4).

The bars, in 2-D and 64-D: modecov's precision/recall/density/coverage is >= 4x faster than
``prdc.compute_prdc``, needs <= 1/10 of its peak memory, and gives the same values (within
1/N). Each implementation runs in a fresh subprocess, BLAS limited to the 2 cores; modecov
runs two torch threads (``MODECOV_BENCH_THREADS``; on a shared, busy machine two threads
that wait on each other can be slower than one), while ``prdc`` keeps its own ``n_jobs=8``
for scikit-learn's distances, so both use the whole machine. Its peak
memory is the rise of the peak resident set size (VmHWM, reset through
/proc/self/clear_refs once the data are built) over the resident size before the call, so
it counts numpy, BLAS and torch allocations alike. ``prdc`` gets float32 features, the dtype
its docstring asks for; modecov computes in float64 whatever it gets.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

N = 10_000
THREADS = int(os.environ.get("MODECOV_BENCH_THREADS", "2"))
"""Torch threads for modecov: both cores, as prdc's BLAS and scikit-learn get them."""
CORES = min(2, os.cpu_count() or 1)
HERE = Path(__file__).resolve()


def _data(dim: int) -> tuple[np.ndarray, np.ndarray]:
    """(N, D) real and fake features: a Gaussian and a shifted, wider one."""
    rng = np.random.default_rng(dim)
    real = rng.normal(size=(N, dim))
    fake = 1.1 * rng.normal(size=(N, dim)) + 0.1
    return real, fake


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def _measure(impl: str, dim: int) -> dict:
    """Run one implementation once in this process: seconds, peak extra MiB, values."""
    real, fake = _data(dim)
    if impl == "modecov":
        import torch

        from modecov.metrics import distribution

        torch.set_num_threads(THREADS)
        distribution.PRDC_MAX_POINTS = N  # the default cap is lower; this is the 10k bar
        real_t, fake_t = torch.from_numpy(real), torch.from_numpy(fake)[None]

        def run() -> dict:
            out = distribution.prdc(fake=fake_t, real=real_t, data=None)
            return {k: float(v[0]) for k, v in out.items()}
    else:
        import prdc

        real32, fake32 = real.astype(np.float32), fake.astype(np.float32)

        def run() -> dict:
            out = prdc.compute_prdc(real_features=real32, fake_features=fake32, nearest_k=5)
            return {k: float(v) for k, v in out.items()}

    Path("/proc/self/clear_refs").write_text("5")  # reset the peak to the current size
    before = _status_kib("VmRSS")
    start = time.perf_counter()
    values = run()
    seconds = time.perf_counter() - start
    peak = _status_kib("VmHWM")
    return {"seconds": seconds, "peak_mib": (peak - before) / 1024, "values": values}


def _in_subprocess(impl: str, dim: int) -> dict:
    env = {**os.environ, **{v: str(CORES) for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS",
                                                      "OPENBLAS_NUM_THREADS")}}  # fmt: skip
    done = subprocess.run(
        [sys.executable, str(HERE), impl, str(dim)],
        capture_output=True, text=True, env=env, check=True, timeout=1_800,
    )  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("dim", [2, 64])
def test_prdc_speed_memory_and_values(benchmark, dim):
    theirs = _in_subprocess("prdc", dim)
    runs = []
    benchmark.pedantic(lambda: runs.append(_in_subprocess("modecov", dim)), rounds=1)
    ours = runs[0]
    speedup = theirs["seconds"] / ours["seconds"]
    memory = ours["peak_mib"] / theirs["peak_mib"]
    benchmark.extra_info.update(
        dim=dim, modecov_s=ours["seconds"], prdc_s=theirs["seconds"], speedup=speedup,
        modecov_peak_mib=ours["peak_mib"], prdc_peak_mib=theirs["peak_mib"],
        memory_ratio=memory,
    )  # fmt: skip
    print(
        f"\nPRDC {N} x {N}, D = {dim}: modecov {ours['seconds']:.2f}s, "
        f"+{ours['peak_mib']:.0f} MiB; prdc {theirs['seconds']:.2f}s, "
        f"+{theirs['peak_mib']:.0f} MiB -> {speedup:.1f}x faster (bar 4x), "
        f"{memory:.3f} of its memory (bar 0.1)"
    )
    for key, value in theirs["values"].items():
        print(f"  {key:<10} modecov {ours['values'][key]:.6f}  prdc {value:.6f}")
        assert abs(ours["values"][key] - value) <= 1.0 / N, key
    assert speedup >= 4.0
    assert memory <= 0.1


if __name__ == "__main__":
    print(json.dumps(_measure(sys.argv[1], int(sys.argv[2]))))
