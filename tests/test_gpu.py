"""Training and metrics on CUDA (marker ``gpu``: deselected by default, run with
``pytest -m gpu`` on a machine with a CUDA device, where it must pass)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from modecov.cli import main
from modecov.config import RunConfig
from modecov.device import device_name, resolve
from modecov.evaluate import train
from modecov.store import MANIFEST, RUNS

pytestmark = pytest.mark.gpu

TINY = dict(dataset="ring8", variant="nsgan", seeds=(0, 1), steps=300, eval_every=100,
            hidden=32, batch_size=64, n_eval=500, n_eval_large=1000)  # fmt: skip


def test_cuda_is_there():
    assert torch.cuda.is_available(), "the gpu tests need a CUDA device"
    assert resolve("auto").type == "cuda" and resolve("cuda").type == "cuda"


def test_a_tiny_group_on_cuda_matches_cpu_loosely():
    cpu = train(RunConfig(**TINY, device="cpu"))
    gpu = train(RunConfig(**TINY, device="cuda"))
    assert gpu.device == device_name(torch.device("cuda")) != cpu.device
    assert set(gpu.final) == set(cpu.final)
    for name, values in gpu.final.items():
        assert values.device.type == "cpu" and values.shape == (2,), name
    # Float32 GAN dynamics amplify rounding differences: the same regime, not the same digits.
    assert torch.allclose(gpu.trajectory["hq_fraction"][0], cpu.trajectory["hq_fraction"][0],
                          atol=0.01)  # fmt: skip
    assert (gpu.final["hq_fraction"] - cpu.final["hq_fraction"]).abs().max() < 0.3
    assert (gpu.final["modes_covered"] - cpu.final["modes_covered"]).abs().max() <= 3


def test_run_on_cuda_records_the_device(tmp_path):
    out = tmp_path / "store"
    args = ["run", "--variants", "nsgan", "--datasets", "ring8", "--seeds", "0-1",
            "--steps", "100", "--set", "hidden=32", "--device", "cuda", "--workers", "1",
            "--quiet"]  # fmt: skip
    assert main([*args, "--out", str(out)]) == 0
    name = torch.cuda.get_device_name(0)
    runs = pd.read_csv(out / RUNS)
    assert (runs["device"] == name).all()
    assert json.loads((out / MANIFEST).read_text())["device_name"] == name
