"""fit(cfg) -> Fitted: all seeds of one group trained at once, no file I/O and no metric.

Training produces samples (at every snapshot, at the end, and the large final set),
the discriminator landscape and the losses; ``modecov.evaluate`` turns them into scores
(``evaluate.train`` runs both stages and is what the backends call).

Every weight has a leading seed axis; the loss is the batch mean summed over seeds and
no operation mixes seeds, so seed s follows its independent run. Seed s's weights come
from ``torch.Generator().manual_seed(s)`` alone, and so does its data and noise stream
(on CPU that generator continued; on an accelerator a generator there, seeded with s); the
evaluation noise comes from its own generator (``eval_seed``), shared by all seeds.

A step never waits on the device (DESIGN §9): it draws from the per-seed streams on the
training device, divergence is tracked in device tensors, and losses, divergence and
scores come back to the host only at snapshots.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor

from modecov.config import RunConfig
from modecov.data import DATASETS, Dataset
from modecov.device import random_streams, resolve
from modecov.nets import StackedMLP
from modecov.optim import Adam, RMSprop
from modecov.steps import standard_step
from modecov.variants.base import Variant

log = logging.getLogger(__name__)


@dataclass
class Fitted:
    """What one group's training produced, per seed, before any scoring."""

    samples: Tensor
    """(S, N, D) final evaluation samples (G on the evaluation noise), on the device."""
    large: Tensor
    """(S, N_large, D) the large final set of the distribution metrics, on the device."""
    status: list[str]
    """Per seed: ``ok`` or ``diverged``."""
    diverged_step: list[int | None]
    """Per seed: the step at which it was frozen, or None."""
    device: torch.device
    losses: dict[str, list[Tensor]] = field(default_factory=dict)
    """Loss name -> per-snapshot (S,) values."""
    landscape: Tensor | None = None
    """As ``TrainOutput.landscape``."""


@dataclass
class TrainOutput:
    """What one group's training produced, per seed, and its scores (``evaluate.train``)."""

    config: RunConfig
    final: dict[str, Tensor]
    """Final metric name -> (S,) values on the evaluation samples."""
    steps: Tensor
    """(T,) snapshot steps."""
    trajectory: dict[str, Tensor]
    """Metric name -> (T, S) values at each snapshot."""
    counts: Tensor
    """(T, S, K) high-quality samples per mode at each snapshot."""
    status: list[str]
    """Per seed: ``ok`` or ``diverged``."""
    diverged_step: list[int | None]
    """Per seed: the step at which it was frozen, or None."""
    samples: Tensor
    """(S, N, D) final evaluation samples."""
    wall_time: float
    device: str
    losses: dict[str, list[Tensor]] = field(default_factory=dict)
    """Loss name -> per-snapshot (S,) values, for curves and movies."""
    landscape: Tensor | None = None
    """(S, L, L) final discriminator output on ``landscape_grid`` (row i: y_i, column j: x_j)
    for 2-D datasets and variants whose D judges one sample (``Variant.landscape``); else
    None."""


NOT_DIVERGED = -1
"""``TrainState.diverged_at`` of a seed still alive."""


class TrainState:
    """The networks, optimisers and random streams of one group, shared with step functions."""

    def __init__(self, cfg: RunConfig, data: Dataset, variant: Variant, device) -> None:
        self.cfg, self.data, self.variant, self.device = cfg, data, variant, device
        self.dtype = getattr(torch, cfg.dtype)
        self.generators = [torch.Generator().manual_seed(s) for s in cfg.seeds]
        S = len(cfg.seeds)
        # The dataset may bring its own architecture (conv nets on images); else the shared
        # MLPs. A variant whose discriminator has another shape builds it itself.
        nets = data.make_nets(self)
        if nets is None:
            hidden = [cfg.hidden] * cfg.depth
            kw = {"dtype": self.dtype, "device": device}
            self.G = StackedMLP([cfg.z_dim, *hidden, data.dim], self.generators, **kw)
            self.D = (
                variant.make_d(self)
                if variant.make_d is not None
                else StackedMLP([data.dim * variant.pack, *hidden, 1], self.generators, **kw)
            )
        else:
            self.G, self.D = nets
        self.nets = {"G": self.G, "D": self.D}
        if variant.extra_nets is not None:
            self.nets.update(variant.extra_nets(self, self.generators))
        spec = _optimizer(variant, cfg)
        self.optims = {name: spec.build(net.params) for name, net in self.nets.items()}
        # After every initial weight is drawn: on CPU the streams continue these generators.
        self.streams = random_streams(cfg.seeds, device, self.generators)
        self.alive = torch.ones(S, dtype=torch.bool, device=device)
        self.diverged_at = torch.full((S,), NOT_DIVERGED, dtype=torch.long, device=device)
        """(S,) step at which each seed was frozen, or ``NOT_DIVERGED``."""
        self._logged: set[int] = set()
        self.step = 0

    @property
    def draws(self) -> int:
        """Samples per batch: ``batch_size`` packs of ``pack`` samples (B · m). As in PacGAN
        (Lin et al. 2018), a batch is B packs, so a packed discriminator sees B inputs per
        real or fake batch and G draws B · m samples; without packing this is B."""
        return self.cfg.batch_size * self.variant.pack

    def real(self) -> Tensor:
        """(S, B · m, D) real samples, one batch per seed from its own stream; consecutive
        draws are independent, so every run of m of them is a real pack."""
        n = self.draws
        return torch.stack([self.data.sample(n, g, dtype=self.dtype) for g in self.streams])

    def noise(self) -> Tensor:
        """(S, B · m, Z) standard normal latent draws, one batch per seed from its own stream."""
        shape = (self.draws, self.cfg.z_dim)
        return torch.stack(
            [
                torch.randn(shape, generator=g, dtype=self.dtype, device=g.device)
                for g in self.streams
            ]
        )

    def critic(self, x: Tensor, params: Tensor | None = None) -> Tensor:
        """Discriminator logits (S, N / m, 1) on (S, N, D) samples: each run of m = ``pack``
        consecutive samples is concatenated into one (m · D,) input."""
        S, N, D = x.shape
        pack = self.variant.pack
        return self.D(x.reshape(S, N // pack, pack * D), params)

    def update(self, name: str | tuple[str, ...], loss: Tensor) -> None:
        """One optimiser step of network ``name`` (or of several networks trained jointly on
        one objective, e.g. ``("G", "E")``) on the (S,) ``loss``; freezes seeds that go
        non-finite (loss or gradient), keeping their last finite weights."""
        names = (name,) if isinstance(name, str) else tuple(name)
        nets = [self.nets[n] for n in names]
        leaves = [t for net in nets for t in net.leaves]
        grads = torch.autograd.grad(loss.sum(), leaves, materialize_grads=True)
        flat, at = [], 0
        for net in nets:
            flat.append(net.flat_grad(grads[at : at + len(net.leaves)]))
            at += len(net.leaves)
        # A sum over a seed's gradient is non-finite when any entry is: one cheap reduction.
        finite = torch.isfinite(loss)
        for grad in flat:
            finite &= torch.isfinite(grad.sum(dim=1))
        self._freeze(~finite)
        for n, grad in zip(names, flat):
            self.optims[n].step(grad, self.alive)

    def _freeze(self, bad: Tensor) -> None:
        """Freeze the seeds where ``bad`` (S,) is True and note the step, on the device."""
        self.diverged_at.masked_fill_(bad & self.alive, self.step)
        self.alive &= ~bad

    @property
    def diverged_step(self) -> list[int | None]:
        """Per seed: the step at which it was frozen, or None. Reads the device: outside
        steps only."""
        return [None if s == NOT_DIVERGED else s for s in self.diverged_at.tolist()]

    def log_divergence(self) -> None:
        """Log each seed frozen since the last call. Reads the device: at snapshots only."""
        for i, step in enumerate(self.diverged_step):
            if step is not None and i not in self._logged:
                self._logged.add(i)
                log.warning("seed %d diverged at step %d; frozen", self.cfg.seeds[i], step)


def _optimizer(variant: Variant, cfg: RunConfig):
    """The variant's default optimiser with the config's lr/betas applied over it."""
    spec = variant.optimizer
    changes = {}
    if cfg.lr is not None:
        changes["lr"] = cfg.lr
    if isinstance(spec, Adam) and (cfg.beta1 is not None or cfg.beta2 is not None):
        b1, b2 = spec.betas
        changes["betas"] = (
            b1 if cfg.beta1 is None else cfg.beta1,
            b2 if cfg.beta2 is None else cfg.beta2,
        )
    elif isinstance(spec, RMSprop) and cfg.beta1 is not None:
        raise ValueError("beta1 does not apply to RMSprop")
    return type(spec)(**{**{f: getattr(spec, f) for f in spec.__slots__}, **changes})


EVAL_STREAMS = 1 << 40
"""Evaluation generators are seeded from here up, apart from every training seed (< 2^31)."""


def eval_generator(cfg: RunConfig, stream: int) -> torch.Generator:
    """Generator of evaluation stream ``stream`` (0 noise, 1 large-set noise, 2 real samples,
    3 large-set real samples)."""
    return torch.Generator().manual_seed(EVAL_STREAMS + 4 * cfg.eval_seed + stream)


def eval_noise(cfg: RunConfig, n: int, stream: int = 0) -> Tensor:
    """(N, Z) fixed evaluation noise, seeded apart from training and shared by all seeds."""
    g = eval_generator(cfg, stream)
    return torch.randn(n, cfg.z_dim, generator=g, dtype=getattr(torch, cfg.dtype))


def real_reference(cfg: RunConfig, data: Dataset, n: int) -> Tensor:
    """(N, D) true samples for metrics that compare with real data."""
    return data.sample(n, eval_generator(cfg, 2), dtype=torch.float64)


@torch.no_grad()
def generate(st: TrainState, z: Tensor) -> Tensor:
    """(S, N, D) samples of every seed's generator on the shared (N, Z) noise."""
    S = st.G.n_seeds
    zs = z.to(st.device)[None].expand(S, -1, -1).contiguous()
    return st.G(zs)


LANDSCAPE_RESOLUTION = 64
"""Grid points per axis of the stored discriminator landscape."""


def landscape_grid(data: Dataset, resolution: int = LANDSCAPE_RESOLUTION) -> Tensor:
    """(L * L, 2) points of a square grid over ``data.bounds()``, x varying fastest."""
    lo, hi = data.bounds()
    axis = torch.linspace(lo, hi, resolution, dtype=torch.float64)
    yy, xx = torch.meshgrid(axis, axis, indexing="ij")
    return torch.stack((xx.flatten(), yy.flatten()), -1)


@torch.no_grad()
def d_landscape(st: TrainState, resolution: int = LANDSCAPE_RESOLUTION) -> Tensor | None:
    """(S, L, L) discriminator output over ``landscape_grid``, or None when the dataset is not
    2-D or the variant declares that its D does not judge one sample (``Variant.landscape``:
    pair critics, minibatch features, no D).

    The output is D's own (an energy for ``Variant.d_energy``); figures orient it. A packed
    discriminator (PacGAN) sees each grid point repeated ``pack`` times.
    """
    if st.data.dim != 2 or not st.variant.landscape:
        return None
    grid = landscape_grid(st.data, resolution).to(device=st.device, dtype=st.dtype)
    S, pack = st.G.n_seeds, st.variant.pack
    x = grid.repeat_interleave(pack, dim=0)[None].expand(S, -1, -1).contiguous()
    return st.critic(x).reshape(S, resolution, resolution).float().cpu()


LARGE_SAMPLER_SEEDS = 1 << 32
"""A reference sampler draws seed s's large set from seed ``LARGE_SAMPLER_SEEDS + s``, apart
from its small set (seed s) and from the evaluation streams."""


def large_samples(cfg: RunConfig, data: Dataset, st: TrainState | None, n: int) -> Tensor:
    """(S, N, D) the large final sample set of the distribution metrics: G on the large-set
    noise (evaluation stream 1), or for a reference sampler (``st`` None) its own draws."""
    if st is None:
        gens = [torch.Generator().manual_seed(LARGE_SAMPLER_SEEDS + s) for s in cfg.seeds]
        return torch.stack([cfg.spec.sampler(data, n, g) for g in gens])
    return generate(st, eval_noise(cfg, n, stream=1))


def fit(
    cfg: RunConfig,
    *,
    on_snapshot: Callable[[int, Tensor], None],
    n_large: int,
    callback: Callable[[TrainState, dict], None] | None = None,
) -> Fitted:
    """Train (or, for reference samplers, sample) every seed of ``cfg``.

    Args:
        cfg: the group; its ``seeds`` are trained together.
        on_snapshot: called as ``on_snapshot(step, samples)`` with the (S, N, D) evaluation
            samples at step 0, every ``eval_every`` steps and at the end (the evaluation
            stage scores them).
        n_large: samples per seed of the large final set.
        callback: called as ``callback(state, losses)`` after every step (movies, tests).

    Returns:
        The final samples, the large set, status, losses and landscape, per seed.
    """
    device = resolve(cfg.device)
    data = DATASETS[cfg.dataset]
    variant = cfg.spec
    S = len(cfg.seeds)
    losses: dict[str, list[Tensor]] = {}
    if variant.sampler is not None:
        samples = torch.stack(
            [variant.sampler(data, cfg.n_eval, torch.Generator().manual_seed(s)) for s in cfg.seeds]
        ).to(device)
        on_snapshot(0, samples)
        return Fitted(
            samples=samples,
            large=large_samples(cfg, data, None, n_large).to(device),
            status=["ok"] * S,
            diverged_step=[None] * S,
            device=device,
        )
    st = TrainState(cfg, data, variant, device)
    step_fn = variant.step or standard_step
    z_eval = eval_noise(cfg, cfg.n_eval).to(device)
    samples = generate(st, z_eval)
    on_snapshot(0, samples)
    out: dict[str, Tensor] = {}
    for st.step in range(1, cfg.steps + 1):
        out = step_fn(st)
        if callback is not None:
            callback(st, out)
        if st.step % cfg.eval_every == 0 or st.step == cfg.steps:
            # The last snapshot's samples are the final samples (same G, same noise).
            samples = generate(st, z_eval)
            on_snapshot(st.step, samples)
            for k, v in out.items():
                losses.setdefault(k, []).append(v.cpu())
            st.log_divergence()
    return Fitted(
        samples=samples,
        large=large_samples(cfg, data, st, n_large),
        status=["ok" if bool(a) else "diverged" for a in st.alive.cpu()],
        diverged_step=st.diverged_step,
        device=device,
        losses=losses,
        landscape=d_landscape(st),
    )
