"""modecov: a benchmark suite for mode collapse in GANs."""

from __future__ import annotations

__version__ = "0.1.0"
