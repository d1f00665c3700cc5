"""Layering: variants, datasets and metrics depend on interfaces below them, never on the
trainer; the report reads results without loading the trainer."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from modecov.config import RunConfig
from modecov.data import DATASETS
from modecov.state import StepState
from modecov.train import TrainState

PACKAGE = Path(__file__).resolve().parents[1] / "modecov"
LOWER = ("variants", "data", "metrics")
"""Subpackages that must not import the trainer, even for types."""


def _imported_modules(path: Path) -> set[str]:
    """Every module a file imports, anywhere in it (TYPE_CHECKING blocks included)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


@pytest.mark.parametrize(
    "path",
    [p for sub in LOWER for p in sorted((PACKAGE / sub).glob("*.py"))]
    + [PACKAGE / "penalties.py", PACKAGE / "steps.py"],
    ids=lambda p: str(p.relative_to(PACKAGE)),
)
def test_lower_layers_do_not_import_the_trainer(path):
    trainer = {m for m in _imported_modules(path) if m.split(".")[:2] == ["modecov", "train"]}
    assert not trainer, f"{path.name} imports {sorted(trainer)}"


def test_importing_the_report_does_not_load_the_trainer():
    code = "import sys, modecov.report; print('modecov.train' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_trainer_state_implements_the_step_interface():
    cfg = RunConfig(dataset="ring8", variant="nsgan", seeds=(0,), hidden=8, batch_size=4)
    state = TrainState(cfg, DATASETS["ring8"], cfg.spec, device="cpu")
    assert isinstance(state, StepState)
    for name in ("real", "noise", "critic", "update"):
        assert callable(getattr(state, name))


def test_training_does_not_score():
    # Training produces samples; the evaluation stage (modecov.evaluate) scores them.
    imported = _imported_modules(PACKAGE / "train.py")
    assert not {m for m in imported if m.split(".")[:2] == ["modecov", "metrics"]}
    assert "modecov.metrics" not in imported and "modecov" not in imported
    code = "import sys, modecov.train; print('modecov.metrics' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
