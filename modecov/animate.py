"""The training movie: real and generated samples, the discriminator landscape over the
sample space and the losses over time, for one seed of a variant on a 2-D dataset (GIF)."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from modecov.config import RunConfig
from modecov.data import DATASETS
from modecov.errors import ConfigError, ModecovError, unknown
from modecov.variants import REFERENCES, VARIANTS

log = logging.getLogger(__name__)

FRAMES = 60
"""Default number of frames (evenly spaced over training)."""
MOVIE_POINTS = 1_000
"""Generated and real points drawn per frame."""
RESOLUTION = 48
"""Grid points per axis of the landscape in the movie."""
FPS = 10
DPI = 80
SIZE = (12.0, 4.0)
"""Inches: at DPI 80 a frame is 960 x 320 pixels."""


@dataclass
class Frame:
    """What one movie frame shows."""

    step: int
    samples: np.ndarray
    """(N, 2) generated samples on the movie's fixed noise."""
    landscape: np.ndarray | None
    """(L, L) discriminator output over the dataset's box, or None without a D."""


@dataclass
class Recording:
    """Frames and the per-step losses of one training run."""

    frames: list[Frame] = field(default_factory=list)
    steps: list[int] = field(default_factory=list)
    losses: dict[str, list[float]] = field(default_factory=dict)


def check(variant: str, dataset: str, steps: int, frames: int) -> None:
    """Refuse what cannot be filmed, with one clear message."""
    if variant in REFERENCES:
        raise ConfigError(f"{variant!r} is a reference sampler and is not trained; "
                          f"choose one of {', '.join(VARIANTS)}")  # fmt: skip
    if variant not in VARIANTS:
        raise unknown("variant", variant, VARIANTS)
    if dataset not in DATASETS:
        raise unknown("dataset", dataset, DATASETS)
    plane = [d for d, spec in DATASETS.items() if spec.dim == 2]
    if DATASETS[dataset].dim != 2:
        raise ConfigError(f"animate draws 2-D datasets; {dataset} has D={DATASETS[dataset].dim} "
                          f"(choose one of {', '.join(plane)})")  # fmt: skip
    if steps < 1:
        raise ConfigError(f"--steps must be >= 1, got {steps}")
    if frames < 1:
        raise ConfigError(f"--frames must be >= 1, got {frames}")


def record(cfg: RunConfig, frames: int = FRAMES) -> Recording:
    """Train ``cfg`` (one seed) and keep ``frames`` snapshots through ``train``'s callback."""
    from modecov.train import d_landscape, eval_noise, generate, train

    rec = Recording()
    every = max(1, cfg.steps // frames)
    z = eval_noise(cfg, MOVIE_POINTS, stream=3)

    def callback(st, losses: dict) -> None:
        rec.steps.append(st.step)
        for k, v in losses.items():
            rec.losses.setdefault(k, []).append(float(v[0]))
        if st.step % every == 0 and len(rec.frames) < frames:
            samples = generate(st, z)[0].double().cpu().numpy()
            # As in train(): only a discriminator the step trains (it reports its loss).
            land = d_landscape(st, RESOLUTION) if "loss_d" in losses else None
            rec.frames.append(
                Frame(st.step, samples, None if land is None else land[0].double().numpy())
            )

    train(cfg, callback=callback)
    return rec


def render(rec: Recording, cfg: RunConfig, out: Path) -> Path:
    """Write the recording as a GIF (written to a temporary file, then renamed)."""
    from matplotlib.animation import PillowWriter
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from modecov.report.figures import draw_landscape

    data = DATASETS[cfg.dataset]
    real = data.sample(MOVIE_POINTS, torch.Generator().manual_seed(0), dtype=torch.float64)
    lo, hi = data.bounds()
    label = f"{VARIANTS[cfg.variant].label} on {data.label}, seed {cfg.seeds[0]}"
    fig = Figure(figsize=SIZE, dpi=DPI)
    fig.subplots_adjust(left=0.03, right=0.98, top=0.86, bottom=0.13, wspace=0.2)
    FigureCanvasAgg(fig)
    ax_s, ax_d, ax_l = (fig.add_subplot(1, 3, i) for i in (1, 2, 3))
    tmp = out.with_name(f".{out.stem}.tmp{out.suffix}")
    writer = PillowWriter(fps=FPS)
    with writer.saving(fig, str(tmp), dpi=DPI):
        for frame in rec.frames:
            for ax in (ax_s, ax_d, ax_l):
                ax.clear()
            ax_s.scatter(real[:, 0], real[:, 1], s=2, c="0.6", linewidths=0, label="real")
            ax_s.scatter(frame.samples[:, 0], frame.samples[:, 1], s=2, c="tab:orange",
                         linewidths=0, label="generated")  # fmt: skip
            ax_s.set_xlim(lo, hi)
            ax_s.set_ylim(lo, hi)
            ax_s.set_aspect("equal")
            ax_s.set_title("samples (grey real, orange generated)", fontsize=9)
            if frame.landscape is not None:
                draw_landscape(ax_d, cfg.dataset, frame.landscape, frame.samples)
                ax_d.set_title("discriminator output (red high, blue low)", fontsize=9)
            else:
                ax_d.text(0.5, 0.5, "no discriminator on samples", ha="center", va="center")
                ax_d.set_axis_off()
            upto = int(np.searchsorted(rec.steps, frame.step, side="right"))
            for name, values in rec.losses.items():
                ax_l.plot(rec.steps[:upto], values[:upto], lw=0.8, label=name)
            ax_l.set_xlim(0, cfg.steps)
            ax_l.set_xlabel("generator step")
            ax_l.set_title("losses", fontsize=9)
            if rec.losses:
                ax_l.legend(fontsize=7, loc="upper right")
            fig.suptitle(f"{label}: step {frame.step}", fontsize=10)
            writer.grab_frame()
    os.replace(tmp, out)
    return out


def animate(
    variant: str,
    dataset: str,
    *,
    seed: int = 0,
    steps: int = 2_000,
    frames: int = FRAMES,
    out: str | Path | None = None,
    **overrides,
) -> Path:
    """Train one seed of ``variant`` on ``dataset`` and write its training movie.

    Args:
        variant: a trained variant's key.
        dataset: a 2-D dataset's key.
        seed: the training seed.
        steps: generator updates.
        frames: frames of the movie, evenly spaced over training.
        out: GIF path (default ``<variant>_<dataset>.gif``); its directory must exist.
        **overrides: other RunConfig fields (batch_size, hidden, lr, ...).

    Returns:
        The path written.

    Raises:
        ConfigError: an unknown or unsuitable variant or dataset, or a bad number.
        ModecovError: an output path that cannot be written.
    """
    check(variant, dataset, steps, frames)
    path = Path(out) if out is not None else Path(f"{variant}_{dataset}.gif")
    if path.suffix.lower() != ".gif":
        raise ModecovError(f"--out {path}: the movie is a GIF; give a path ending in .gif")
    if not path.parent.is_dir():
        raise ModecovError(f"--out {path}: directory {path.parent} does not exist")
    cfg = RunConfig(
        dataset=dataset, variant=variant, seeds=(seed,), steps=steps, eval_every=steps,
        n_eval=MOVIE_POINTS, n_eval_large=MOVIE_POINTS, **overrides,
    )  # fmt: skip
    rec = record(cfg, min(frames, steps))
    try:
        return render(rec, cfg, path)
    except OSError as exc:
        raise ModecovError(f"cannot write {path}: {exc.strerror or exc}") from None
