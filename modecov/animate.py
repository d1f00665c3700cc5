"""The training movie of one seed of a variant on a 2-D dataset with a 2-D latent (GIF), in
the spiral article's five panels: losses and D's accuracy, the step, real and generated
samples, D's output over the latent square and over the sample space; and the latent-grid
figure: where lines of constant z1 and z2 land under the final generator."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from modecov.config import RunConfig
from modecov.data import DATASETS
from modecov.errors import ConfigError, ModecovError, unknown
from modecov.store import atomic_write
from modecov.variants import REFERENCES, VARIANTS

log = logging.getLogger(__name__)

FRAMES = 60
"""Default number of frames (evenly spaced over training)."""
MOVIE_POINTS = 1_000
"""Generated and real points drawn per frame (a multiple of every pack size)."""
RESOLUTION = 48
"""Grid points per axis of the landscapes (sample space and latent square) in the movie."""
LATENT_BOX = 3.0
"""The latent square is [-3, 3]^2: z ~ N(0, I) falls inside with probability 0.995."""
LATENT_LINES = 21
"""Lines of constant z1 (and of constant z2) in the latent-grid figure."""
LINE_POINTS = 200
"""Points along each latent line."""
FPS = 10
DPI = 80
SIZE = (12.0, 8.0)
"""Inches: at DPI 80 a frame is 960 x 640 pixels."""
GRID_SIZE = (10.0, 5.2)
"""Inches of the latent-grid figure (two panels: the latent square and its image)."""
PANELS = ("losses", "step", "samples", "latent", "landscape")


@dataclass
class Frame:
    """What one movie frame shows."""

    step: int
    samples: np.ndarray
    """(N, 2) generated samples on the movie's fixed noise."""
    landscape: np.ndarray | None
    """(L, L) D's judgement over the dataset's box (higher = more real), or None where D does
    not judge one sample (``Variant.landscape``)."""
    latent: np.ndarray | None = None
    """(L, L) D's judgement of G(z) over the latent square (row i: z2_i, column j: z1_j)."""
    accuracy: float | None = None
    """P(D ranks a real point above a generated one) on the frame's points; 0.5 = chance."""


@dataclass
class Recording:
    """Frames, the per-step losses and the final latent grid of one training run."""

    frames: list[Frame] = field(default_factory=list)
    steps: list[int] = field(default_factory=list)
    losses: dict[str, list[float]] = field(default_factory=dict)
    latent_lines: np.ndarray | None = None
    """(2, LATENT_LINES, LINE_POINTS, 2): G's image of the lines of constant z1 (index 0) and
    of constant z2 (index 1) after the last step."""


def check(variant: str, dataset: str, steps: int, frames: int, z_dim: int = 2) -> None:
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
    if z_dim != 2:
        raise ConfigError(f"animate draws D over the latent square and needs z_dim=2, "
                          f"got z_dim={z_dim}")  # fmt: skip
    if steps < 1:
        raise ConfigError(f"--steps must be >= 1, got {steps}")
    if frames < 1:
        raise ConfigError(f"--frames must be >= 1, got {frames}")


def latent_grid(resolution: int = RESOLUTION) -> torch.Tensor:
    """(L * L, 2) points of a square grid over the latent square, z1 varying fastest."""
    axis = torch.linspace(-LATENT_BOX, LATENT_BOX, resolution, dtype=torch.float64)
    z2, z1 = torch.meshgrid(axis, axis, indexing="ij")
    return torch.stack((z1.flatten(), z2.flatten()), -1)


def latent_lines() -> torch.Tensor:
    """(2, LATENT_LINES, LINE_POINTS, 2): lines of constant z1, then of constant z2."""
    fixed = torch.linspace(-LATENT_BOX, LATENT_BOX, LATENT_LINES, dtype=torch.float64)
    along = torch.linspace(-LATENT_BOX, LATENT_BOX, LINE_POINTS, dtype=torch.float64)
    f, a = torch.meshgrid(fixed, along, indexing="ij")
    return torch.stack((torch.stack((f, a), -1), torch.stack((a, f), -1)))


@torch.no_grad()
def _judge(st, x: torch.Tensor) -> np.ndarray:
    """Seed 0's D on (N, 2) points, oriented so that higher = more real (energies negated);
    a packed D sees each point ``pack`` times, as in the stored landscape."""
    pack = st.variant.pack
    x = x.to(device=st.device, dtype=st.dtype).repeat_interleave(pack, dim=0)
    out = st.critic(x[None].expand(st.G.n_seeds, -1, -1).contiguous())[0, :, 0]
    sign = -1.0 if st.variant.d_energy else 1.0
    return sign * out.double().cpu().numpy()


@torch.no_grad()
def _accuracy(st, real: torch.Tensor, fake: torch.Tensor) -> float:
    """P(D(x) > D(G(z))) + ½ P(tie) over pairs of the frame's real and generated points:
    threshold-free, so a critic or an energy reads on the same scale as a classifier."""
    r, f = _judge(st, real), _judge(st, fake)
    f = np.sort(f)
    below = np.searchsorted(f, r, side="left")
    ties = np.searchsorted(f, r, side="right") - below
    return float((below + 0.5 * ties).sum() / (r.size * f.size))


def record(cfg: RunConfig, frames: int = FRAMES) -> Recording:
    """Train ``cfg`` (one seed) and keep ``frames`` snapshots through ``train``'s callback."""
    from modecov.evaluate import train
    from modecov.train import d_landscape, eval_noise, generate

    check(cfg.variant, cfg.dataset, cfg.steps, frames, cfg.z_dim)
    rec = Recording()
    every = max(1, cfg.steps // frames)
    z = eval_noise(cfg, MOVIE_POINTS, stream=3)
    data = DATASETS[cfg.dataset]
    real = data.sample(MOVIE_POINTS, torch.Generator().manual_seed(0), dtype=torch.float64)
    grid = latent_grid()
    sign = -1.0 if cfg.spec.d_energy else 1.0

    def callback(st, losses: dict) -> None:
        rec.steps.append(st.step)
        for k, v in losses.items():
            rec.losses.setdefault(k, []).append(float(v[0]))
        if st.step % every == 0 and len(rec.frames) < frames:
            fake = generate(st, z)[0]
            frame = Frame(st.step, fake.double().cpu().numpy(), None)
            land = d_landscape(st, RESOLUTION)  # None where D does not judge one sample
            if land is not None:
                frame.landscape = sign * land[0].double().numpy()
                on_grid = generate(st, grid.to(st.dtype))[0]
                frame.latent = _judge(st, on_grid).reshape(RESOLUTION, RESOLUTION)
                frame.accuracy = _accuracy(st, real, fake)
            rec.frames.append(frame)
        if st.step == cfg.steps:
            lines = latent_lines().to(st.dtype)
            rec.latent_lines = generate(st, lines.reshape(-1, 2))[0].double().cpu().numpy()
            rec.latent_lines = rec.latent_lines.reshape(*lines.shape)

    train(cfg, callback=callback)
    return rec


@dataclass
class Movie:
    """The movie's figure and its five panels (plus the accuracy axis over the losses)."""

    fig: object
    losses: object
    accuracy: object
    step: object
    samples: object
    latent: object
    landscape: object

    @property
    def panels(self) -> list:
        return [getattr(self, name) for name in PANELS]


def movie_figure() -> Movie:
    """An empty movie figure with a fixed layout, so that panels stay still between frames."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=SIZE, dpi=DPI)
    FigureCanvasAgg(fig)
    gs = fig.add_gridspec(2, 3, height_ratios=(1.0, 1.6), left=0.06, right=0.95, top=0.91,
                          bottom=0.06, hspace=0.25, wspace=0.3)  # fmt: skip
    losses = fig.add_subplot(gs[0, :2])
    return Movie(
        fig, losses, losses.twinx(), fig.add_subplot(gs[0, 2]),
        *(fig.add_subplot(gs[1, j]) for j in range(3)),
    )  # fmt: skip


def draw_frame(m: Movie, rec: Recording, frame: Frame, cfg: RunConfig, real: np.ndarray) -> None:
    """Draw ``frame`` into the movie's panels (cleared first)."""
    from modecov.report.figures import draw_landscape, sample_box

    for ax in (*m.panels, m.accuracy):
        ax.clear()
    upto = int(np.searchsorted(rec.steps, frame.step, side="right"))
    handles = []
    for name, values in rec.losses.items():
        handles += m.losses.plot(rec.steps[:upto], values[:upto], lw=0.8, label=name)
    m.losses.set_xlim(0, cfg.steps)
    m.losses.set_xlabel("generator step", fontsize=8)
    m.losses.set_ylabel("loss", fontsize=8)
    m.losses.set_title("losses and D's accuracy", fontsize=9)
    acc = [
        (f.step, f.accuracy) for f in rec.frames if f.step <= frame.step and f.accuracy is not None
    ]
    if acc:
        handles += m.accuracy.plot(*zip(*acc), c="k", lw=1.2, marker=".", ms=3,
                                   label="D's accuracy P(D(x) > D(G(z)))")  # fmt: skip
    # clear() puts a twin's ticks and label back on the left, over the losses' own.
    m.accuracy.yaxis.tick_right()
    m.accuracy.yaxis.set_label_position("right")
    m.accuracy.set_ylim(0, 1)
    m.accuracy.set_ylabel("accuracy", fontsize=8)
    for ax in (m.losses, m.accuracy):
        ax.tick_params(labelsize=7)

    m.step.set_axis_off()
    m.step.set_xlim(0, 1)
    m.step.set_ylim(0, 1)
    m.step.text(0.5, 0.82, f"step {frame.step:,}", ha="center", va="center", fontsize=20)
    m.step.barh(0.6, frame.step / cfg.steps, height=0.08, left=0, color="0.3")
    m.step.barh(0.6, 1, height=0.08, left=0, fill=False, edgecolor="0.3")
    m.step.text(0.5, 0.48, f"of {cfg.steps:,}", ha="center", va="center", fontsize=9)
    if handles:
        m.step.legend(handles=handles, loc="lower center", fontsize=7, frameon=False)

    ax = m.samples
    ax.scatter(real[:, 0], real[:, 1], s=2, c="0.6", linewidths=0)
    ax.scatter(frame.samples[:, 0], frame.samples[:, 1], s=2, c="tab:orange", linewidths=0)
    sample_box(ax, cfg.dataset)
    ax.set_title("samples: real grey, generated orange", fontsize=9)

    if frame.latent is not None:
        draw_latent(m.latent, frame.latent)
        draw_landscape(m.landscape, cfg.dataset, frame.landscape, frame.samples)
        m.latent.set_title("D(G(z)) over the latent square", fontsize=9)
        m.landscape.set_title("D(x) over the sample space", fontsize=9)
    else:
        for ax in (m.latent, m.landscape):
            ax.text(0.5, 0.5, "D does not judge\none sample", ha="center", va="center")
            ax.set_axis_off()
    label = f"{VARIANTS[cfg.variant].label} on {DATASETS[cfg.dataset].label}, seed {cfg.seeds[0]}"
    energy = "; EBGAN's energy negated" if VARIANTS[cfg.variant].d_energy else ""
    m.fig.suptitle(f"{label}: red = judged real, blue = judged fake{energy}", fontsize=10)


def draw_latent(ax, values: np.ndarray) -> None:
    """Draw an (L, L) judgement of G(z) over the latent square, centred on its median."""
    from matplotlib.colors import TwoSlopeNorm

    v = np.asarray(values, dtype=np.float64)
    mid = float(np.median(v))
    span = max(float(np.abs(v - mid).max()), 1e-12)
    box = (-LATENT_BOX, LATENT_BOX, -LATENT_BOX, LATENT_BOX)
    ax.imshow(v, origin="lower", extent=box, cmap="RdBu_r", interpolation="bilinear",
              norm=TwoSlopeNorm(mid, mid - span, mid + span))  # fmt: skip
    ax.set_aspect("equal")
    ax.set_xlabel("z1", fontsize=8, labelpad=1)
    ax.set_ylabel("z2", fontsize=8, labelpad=1)
    ax.tick_params(labelsize=7)


def render(rec: Recording, cfg: RunConfig, out: Path) -> Path:
    """Write the recording as a GIF (atomically: ``store.atomic_write``)."""
    from matplotlib.animation import PillowWriter

    data = DATASETS[cfg.dataset]
    real = data.sample(MOVIE_POINTS, torch.Generator().manual_seed(0), dtype=torch.float64)
    m = movie_figure()

    def write(tmp: Path) -> None:
        writer = PillowWriter(fps=FPS)
        with writer.saving(m.fig, str(tmp), dpi=DPI):
            for frame in rec.frames:
                draw_frame(m, rec, frame, cfg, real.numpy())
                writer.grab_frame()

    return atomic_write(out, write)


def latent_grid_figure(rec: Recording, cfg: RunConfig):
    """The latent square's grid lines (left) and where the final G puts them (right), over
    the true samples: how G folds the latent square onto the data."""
    from matplotlib import colormaps
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from modecov.report.figures import backdrop

    fig = Figure(figsize=GRID_SIZE, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    ax_z, ax_x = fig.subplots(1, 2)
    lines = latent_lines().numpy()
    shades = np.linspace(0.35, 1.0, LATENT_LINES)
    for k, cmap in enumerate(("Blues", "Oranges")):
        for i in range(LATENT_LINES):
            c = colormaps[cmap](shades[i])
            ax_z.plot(lines[k, i, :, 0], lines[k, i, :, 1], c=c, lw=0.8)
            ax_x.plot(rec.latent_lines[k, i, :, 0], rec.latent_lines[k, i, :, 1], c=c, lw=0.8)
    ax_z.set_xlim(-LATENT_BOX, LATENT_BOX)
    ax_z.set_ylim(-LATENT_BOX, LATENT_BOX)
    ax_z.set_aspect("equal")
    ax_z.set_xlabel("z1", fontsize=8)
    ax_z.set_ylabel("z2", fontsize=8)
    ax_z.tick_params(labelsize=7)
    ax_z.set_title("latent square: constant z1 blue, constant z2 orange", fontsize=9)
    backdrop(ax_x, cfg.dataset)
    ax_x.set_title("their images G(z) over the true samples", fontsize=9)
    label = f"{VARIANTS[cfg.variant].label} on {DATASETS[cfg.dataset].label}, seed {cfg.seeds[0]}"
    fig.suptitle(f"{label}, step {cfg.steps:,}: where a grid of latent points lands", fontsize=10)
    return fig


def _writable(path: Path, suffixes: tuple[str, ...], flag: str) -> None:
    if path.suffix.lower() not in suffixes:
        raise ModecovError(f"{flag} {path}: give a path ending in {' or '.join(suffixes)}")
    if not path.parent.is_dir():
        raise ModecovError(f"{flag} {path}: directory {path.parent} does not exist")


def animate(
    variant: str,
    dataset: str,
    *,
    seed: int = 0,
    steps: int = 2_000,
    frames: int = FRAMES,
    out: str | Path | None = None,
    latent_grid_out: str | Path | None = None,
    **overrides,
) -> list[Path]:
    """Train one seed of ``variant`` on ``dataset`` and write its training movie.

    Args:
        variant: a trained variant's key.
        dataset: a 2-D dataset's key.
        seed: the training seed.
        steps: generator updates.
        frames: frames of the movie, evenly spaced over training.
        out: GIF path (default ``<variant>_<dataset>.gif``); its directory must exist.
        latent_grid_out: also write the latent-grid figure here (.png or .pdf).
        **overrides: other RunConfig fields (batch_size, hidden, lr, ...); z_dim must stay 2.

    Returns:
        The paths written: the GIF, then the latent-grid figure when asked for.

    Raises:
        ConfigError: an unknown or unsuitable variant or dataset (not 2-D, Z != 2), or a bad
            number.
        ModecovError: an output path that cannot be written.
    """
    check(variant, dataset, steps, frames, int(overrides.get("z_dim", 2)))
    path = Path(out) if out is not None else Path(f"{variant}_{dataset}.gif")
    if path.suffix.lower() != ".gif":
        raise ModecovError(f"--out {path}: the movie is a GIF; give a path ending in .gif")
    if not path.parent.is_dir():
        raise ModecovError(f"--out {path}: directory {path.parent} does not exist")
    grid_path = None if latent_grid_out is None else Path(latent_grid_out)
    if grid_path is not None:
        _writable(grid_path, (".png", ".pdf"), "--latent-grid")
    cfg = RunConfig(
        dataset=dataset, variant=variant, seeds=(seed,), steps=steps, eval_every=steps,
        n_eval=MOVIE_POINTS, n_eval_large=MOVIE_POINTS, **overrides,
    )  # fmt: skip
    check(variant, dataset, steps, frames, cfg.z_dim)  # a dataset default may set z_dim
    rec = record(cfg, min(frames, steps))
    written = []
    try:
        written.append(render(rec, cfg, path))
        if grid_path is not None:
            fig = latent_grid_figure(rec, cfg)
            kind = grid_path.suffix[1:].lower()
            atomic_write(grid_path, lambda tmp: fig.savefig(tmp, dpi=DPI, format=kind))
            written.append(grid_path)
    except OSError as exc:
        raise ModecovError(f"cannot write {exc.filename or path}: {exc.strerror or exc}") from None
    return written
