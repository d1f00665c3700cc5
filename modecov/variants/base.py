"""The Variant dataclass: a GAN variant as data, overriding only what differs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from torch import Tensor

from modecov.optim import Adam, Optimizer


@dataclass(frozen=True, kw_only=True, slots=True)
class Variant:
    """One GAN variant (or a reference sampler), trained by the shared trainer.

    The default update (``modecov.steps.standard_step``) runs ``n_critic`` discriminator
    steps on ``d_loss`` (+ ``penalty_weight * penalty``), clips the discriminator when
    ``clip`` is set, then one generator step on ``g_loss``. A variant whose update rule
    itself differs (unrolling, an encoder) supplies ``step``; one that adds networks
    supplies ``extra_nets``.
    """

    name: str
    """Registry key; a CSV value, never changes."""
    label: str
    """Display name for tables."""
    reference: str
    """BibTeX key of the paper that defines it."""
    d_loss: Callable[..., Tensor] | None = None
    """``d_loss(real=logits, fake=logits) -> (S,)``."""
    g_loss: Callable[..., Tensor] | None = None
    """``g_loss(fake=logits) -> (S,)``."""
    n_critic: int = 1
    """Discriminator updates per generator update."""
    pack: int = 1
    """Samples concatenated into one discriminator input (PacGAN); 1 = no packing."""
    penalty: Callable[..., Tensor] | None = None
    """``penalty(state, real=, fake=) -> (S,)`` added to the discriminator loss."""
    penalty_weight: float = 0.0
    """Weight of ``penalty``."""
    g_regularizer: Callable[..., Tensor] | None = None
    """``g_regularizer(state, z=, fake=) -> (S,)`` added to the generator loss."""
    g_regularizer_weight: float = 0.0
    """Weight of ``g_regularizer``."""
    clip: float | None = None
    """Clip discriminator weights to [-clip, clip] after each update (WGAN)."""
    optimizer: Optimizer = field(default_factory=Adam)
    """Default optimiser for every network; RunConfig's lr/betas override it."""
    make_d: Callable[..., object] | None = None
    """``make_d(state) -> net`` for a discriminator of another shape (an (x, z) pair input, an
    autoencoder, a minibatch-discrimination layer, spectral normalisation); None = the
    shared MLP on ``pack * D`` inputs. The net has StackedMLP's interface (``params``,
    ``leaves``, ``flat_grad``, ``n_seeds``, ``__call__(x, params=None)``)."""
    extra_nets: Callable[..., dict] | None = None
    """``extra_nets(state, generators) -> {name: StackedMLP}`` for encoders and the like."""
    step: Callable[..., dict[str, Tensor]] | None = None
    """Custom update ``step(state) -> {loss name: (S,)}``; None = the standard update."""
    relative_cost: float = 1.0
    """Wall time of one step relative to NS-GAN's (measured on a 2-core CPU, quick suite);
    only orders the groups so that the longest start first."""
    landscape: bool = True
    """D judges one sample at a time, so its output over the sample space (the landscape) is
    its view of each point. False for critics of (x, z) pairs or of whole minibatches, whose
    output on a grid batch is not their view of one sample, and for variants that train no
    D; their landscape is neither stored nor drawn."""
    d_energy: bool = False
    """D outputs an energy (low = judged real, EBGAN's reconstruction error) instead of a
    score (high = judged real); figures negate it so that red means judged real in all."""
    sampler: Callable[..., Tensor] | None = None
    """Reference samplers only: ``sampler(data, n, generator) -> (N, D)``; no training."""
    version: int = 1
    """Implementation version: bumped whenever a change to the update rule (or, for a
    reference sampler, the sampler) can move what a seed computes, so a store refuses rows
    of another version (``modecov run --rerun-stale`` re-runs exactly those groups)."""
