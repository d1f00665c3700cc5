"""Helpers shared by the CLI and store tests."""

from __future__ import annotations

import hashlib
from pathlib import Path

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
