"""Progress of a run on stderr: tqdm bars (suite and per group, with an ETA) on a terminal,
one line per finished group otherwise, nothing with ``--quiet``."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal, TextIO

from tqdm import tqdm

from modecov.config import RunConfig

if TYPE_CHECKING:
    from modecov.train import TrainOutput  # annotations only: the store does not need the trainer

Mode = Literal["bars", "lines", "quiet"]


def choose_mode(*, quiet: bool, stream: TextIO | None = None) -> Mode:
    """``quiet`` when asked, ``bars`` when ``stream`` (stderr) is a terminal, else ``lines``."""
    if quiet:
        return "quiet"
    stream = sys.stderr if stream is None else stream
    try:
        return "bars" if stream.isatty() else "lines"
    except (AttributeError, ValueError):  # a closed or unusual stream
        return "lines"


def _trained_steps(cfg: RunConfig) -> int:
    return 0 if cfg.is_reference else cfg.steps


class Progress:
    """Reports the groups of one run as they train and finish. Use as a context manager.

    The suite bar counts generator updates over all groups (references count none), so
    its ETA weighs long groups properly; each running group has its own bar of steps.
    """

    def __init__(
        self, configs: Sequence[RunConfig], *, mode: Mode, stream: TextIO | None = None
    ) -> None:
        self.configs, self.mode = list(configs), mode
        self.stream = sys.stderr if stream is None else stream
        self.finished = 0
        self._done_steps = [0] * len(self.configs)
        self._bars: dict[int, tqdm] = {}
        self._suite: tqdm | None = None
        self._t0 = time.perf_counter()

    def __enter__(self) -> Progress:
        if self.mode == "bars":
            total = sum(_trained_steps(c) for c in self.configs)
            self._suite = tqdm(
                total=total, desc=f"suite 0/{len(self.configs)} groups", unit="step",
                file=self.stream, dynamic_ncols=True,
            )  # fmt: skip
        return self

    def __exit__(self, *exc) -> None:
        for bar in self._bars.values():
            bar.close()
        self._bars.clear()
        if self._suite is not None:
            self._suite.close()
            self._suite = None

    def step(self, index: int, step: int) -> None:
        """Group ``configs[index]`` has done ``step`` updates (called by the backends)."""
        if self._suite is None or index in self._bars and step <= self._done_steps[index]:
            return
        bar = self._bars.get(index)
        if bar is None:
            cfg = self.configs[index]
            bar = self._bars[index] = tqdm(
                total=cfg.steps, desc=f"{cfg.variant} on {cfg.dataset}", unit="step",
                file=self.stream, dynamic_ncols=True, leave=False,
            )  # fmt: skip
        gained = step - self._done_steps[index]
        self._done_steps[index] = step
        bar.update(gained)
        self._suite.update(gained)

    def done(self, index: int, out: TrainOutput) -> None:
        """Group ``configs[index]`` finished and its rows are stored."""
        self.finished += 1
        cfg = out.config
        if self._suite is not None:
            bar = self._bars.pop(index, None)
            if bar is not None:
                bar.close()
            self._suite.update(_trained_steps(cfg) - self._done_steps[index])
            self._done_steps[index] = _trained_steps(cfg)
            self._suite.set_description(f"suite {self.finished}/{len(self.configs)} groups")
        elif self.mode == "lines":
            print(
                f"[{self.finished}/{len(self.configs)}] {cfg.variant} on {cfg.dataset}, seeds "
                f"{','.join(map(str, cfg.seeds))}: {out.wall_time:.1f}s "
                f"({time.perf_counter() - self._t0:.0f}s elapsed)",
                file=self.stream,
            )
