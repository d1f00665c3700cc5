"""Helpers shared by the tests: the CLI in-process, file digests, a recording network, a
worker that dies."""

from __future__ import annotations

import hashlib
import os
import secrets
import signal
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


def layout_problems(fig) -> list[str]:
    """What in a drawn matplotlib figure sits outside it or on top of something else: titles
    and legends outside the figure, a figure legend or the suptitle on any axes, an axes
    title or legend on another axes, two axes (with their labels) on each other. Twin axes
    (same position) count as one; a legend inside its own axes may cover lines, not the
    title."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    page = fig.bbox
    problems = []

    def clash(a, b) -> bool:  # a shared pixel edge is not an overlap
        return min(a.x1, b.x1) - max(a.x0, b.x0) > 1 and min(a.y1, b.y1) - max(a.y0, b.y0) > 1

    def outside(bb) -> bool:
        return (bb.x0 < page.x0 - 1 or bb.y0 < page.y0 - 1 or bb.x1 > page.x1 + 1
                or bb.y1 > page.y1 + 1)  # fmt: skip

    axes = [a for a in fig.axes if a.get_visible()]
    tight = {id(a): a.get_tightbbox(r) for a in axes}
    place = {id(a): tuple(a.get_position().bounds) for a in axes}

    def others(ax):
        return [b for b in axes if b is not ax and place[id(b)] != place[id(ax)]]

    labelled = []  # (name, bbox, owning axes or None)
    for ax in axes:
        for t in (ax.title, ax._left_title, ax._right_title):
            if t.get_text():
                labelled.append((f"title {t.get_text()!r}", t.get_window_extent(r), ax))
        if ax.get_legend() is not None:
            leg = ax.get_legend().get_window_extent(r)
            labelled.append(("axes legend", leg, ax))
            for t in (ax.title, ax._left_title, ax._right_title):
                if t.get_text() and clash(leg, t.get_window_extent(r)):
                    problems.append(f"axes legend covers its title {t.get_text()!r}")
    if fig._suptitle is not None and fig._suptitle.get_text():
        labelled.append(("suptitle", fig._suptitle.get_window_extent(r), None))
    for leg in fig.legends:
        labelled.append(("figure legend", leg.get_window_extent(r), None))
    for name, bb, owner in labelled:
        if outside(bb):
            problems.append(f"{name} reaches outside the figure: {bb.bounds} vs {page.bounds}")
        for ax in axes if owner is None else others(owner):
            if clash(bb, tight[id(ax)]):
                problems.append(f"{name} overlaps axes {ax.get_title()!r}")
    names = [t for ax in axes for t in (ax.xaxis.label, ax.yaxis.label) if t.get_text()]
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            if clash(a.get_window_extent(r), b.get_window_extent(r)):
                problems.append(f"axis labels {a.get_text()!r} and {b.get_text()!r} overlap")
    for i, a in enumerate(axes):
        for b in axes[i + 1 :]:
            if place[id(a)] != place[id(b)] and clash(tight[id(a)], tight[id(b)]):
                problems.append(f"axes {a.get_title()!r} overlaps axes {b.get_title()!r}")
    return problems


class KillWorker:
    """A backends ``before_group`` hook (picklable): the process about to run ``group``
    (``variant/dataset``) kills itself with SIGKILL, a stand-in for an out-of-memory kill, on
    that group's first ``times`` attempts. Every call, in whichever process, leaves a file in
    ``log``; ``calls()`` reads them back."""

    def __init__(self, group: str, log: Path, times: int = 1) -> None:
        self.group, self.log, self.times = group, str(log), times
        Path(log).mkdir(parents=True, exist_ok=True)

    def __call__(self, cfg, attempt: int) -> None:
        name = f"{cfg.variant}~{cfg.dataset}~{attempt}~{os.getpid()}~{secrets.token_hex(4)}"
        Path(self.log, name).touch()
        if f"{cfg.variant}/{cfg.dataset}" == self.group and attempt < self.times:
            os.kill(os.getpid(), signal.SIGKILL)

    def calls(self) -> list[tuple[str, int]]:
        """``(variant/dataset, attempt)`` of every call so far, sorted."""
        parts = [p.name.split("~") for p in Path(self.log).iterdir()]
        return sorted((f"{v}/{d}", int(a)) for v, d, a, *_ in parts)
