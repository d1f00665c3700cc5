"""Train the ``stacked_digits`` classifier and write the weights file that ships with modecov:
``python -m modecov.classifiers.train_digits [--out PATH]``. It refuses to write weights that
reach less than 97% on the held-out split."""

from __future__ import annotations

import argparse
import hashlib
import logging
import platform
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from modecov.classifiers import digits
from modecov.store import atomic_write

log = logging.getLogger(__name__)

DEFAULT_OUT = Path(digits.__file__).with_name(digits.WEIGHTS_FILE)
"""The shipped file in this source tree."""


def write_weights(path: str | Path, params: dict[str, Tensor], meta: dict) -> str:
    """Write the weights file (``digits.encode_weights``) atomically, readable by all like the
    rest of the package whatever the umask.

    Returns:
        The file's sha256 (64 hex digits).
    """
    path = Path(path)
    blob = digits.encode_weights(params, meta)
    path.parent.mkdir(parents=True, exist_ok=True)

    def write(tmp: Path) -> None:
        tmp.write_bytes(blob)
        tmp.chmod(0o644)

    atomic_write(path, write)
    return hashlib.sha256(blob).hexdigest()


def train_and_write(out: str | Path) -> tuple[str, float]:
    """Train by ``digits.RECIPE``, check the held-out accuracy and write the weights to
    ``out``.

    Returns:
        The file's sha256 (64 hex digits) and the held-out accuracy.

    Raises:
        ClassifierError: the held-out accuracy is below ``digits.MIN_ACCURACY``; nothing is
            written.
    """
    params = digits.train_classifier()
    acc = digits.held_out_accuracy(params)
    if acc < digits.MIN_ACCURACY:
        raise digits.ClassifierError(
            f"the classifier reaches {acc:.4f} on the held-out digits, below "
            f"{digits.MIN_ACCURACY}; not writing {out}"
        )
    meta = {
        "recipe": digits.RECIPE,
        "held_out_accuracy": acc,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "machine": platform.machine(),
    }
    return write_weights(out, params, meta), acc


def main(argv: list[str] | None = None) -> int:
    """The command line: train, check, write, and log the hash to put in ``WEIGHTS_SHA256``."""
    parser = argparse.ArgumentParser(prog="python -m modecov.classifiers.train_digits",
                                     description=__doc__)  # fmt: skip
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help=f"weights file to write (default: {DEFAULT_OUT})")  # fmt: skip
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        sha256, acc = train_and_write(args.out)
    except digits.ClassifierError as exc:
        log.error("%s", exc)
        return 1
    log.info("wrote %s: held-out accuracy %.4f, sha256 %s", args.out, acc, sha256)
    if sha256 != digits.WEIGHTS_SHA256:
        log.info("to ship it, set WEIGHTS_SHA256 = %r in modecov/classifiers/digits.py", sha256)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
