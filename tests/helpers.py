"""Helpers shared by the tests: the CLI in-process, file digests, a recording network."""

from __future__ import annotations

import hashlib
from pathlib import Path

from torch import Tensor

from modecov.cli import main


def cli(capsys, *argv) -> tuple[int, str, str]:
    """Run ``modecov argv`` in this process: (exit code, stdout, stderr)."""
    try:
        rc = main([str(a) for a in argv])
    except SystemExit as exc:
        rc = exc.code
    out, err = capsys.readouterr()
    return rc, out, err


def digest(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root``, by relative path."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


class RecordingNet:
    """Wraps a seed-batched network (a TrainState's ``D``) and keeps each call's input and
    output; every other attribute is the wrapped net's."""

    def __init__(self, net) -> None:
        self.net = net
        self.calls: list[tuple[Tensor, Tensor]] = []

    def __call__(self, x: Tensor, params: Tensor | None = None) -> Tensor:
        out = self.net(x, params)
        self.calls.append((x.detach().clone(), out.detach().clone()))
        return out

    def __getattr__(self, name: str):
        return getattr(self.net, name)
