"""StepState: what a variant's step, penalty or network builder may touch of a training group.

A ``typing.Protocol``, so that ``variants/``, ``penalties.py`` and ``steps.py`` depend on
this narrow interface below them rather than on the trainer (``train.TrainState``
implements it; ``tests/test_layers.py`` checks both).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import torch
from torch import Tensor

if TYPE_CHECKING:
    from modecov.config import RunConfig
    from modecov.data import Dataset
    from modecov.variants.base import Variant


@runtime_checkable
class StepState(Protocol):
    """The networks, optimisers and per-seed random streams of one group of S seeds."""

    cfg: RunConfig
    """The group's config."""
    data: Dataset
    """Its dataset."""
    variant: Variant
    """Its variant."""
    device: torch.device
    """Where it trains."""
    dtype: torch.dtype
    """Training precision."""
    generators: Sequence[torch.Generator]
    """One CPU generator per seed, seeded with the seed alone: initial weights only (networks
    built by a variant or a dataset draw from these)."""
    streams: Sequence[torch.Generator]
    """One random stream per seed on ``device``: every draw inside a step (batches, noise,
    penalty points) takes ``generator=`` one of these and ``device=`` its device, so no step
    waits for a CPU draw and its copy. On CPU they are ``generators``, continued."""
    G: Any
    """The seed-batched generator."""
    D: Any
    """The seed-batched discriminator (or critic, or autoencoder)."""
    nets: Mapping[str, Any]
    """Every trained network by name (``G``, ``D`` and the variant's extra ones)."""
    optims: Mapping[str, Any]
    """The optimiser of each network, by name."""
    alive: Tensor
    """(S,) bool: seeds not frozen by divergence."""
    step: int
    """The current generator update (1-based inside a step)."""

    def real(self) -> Tensor:
        """(S, B · m, D) real samples, one batch per seed from its own stream."""
        ...

    def noise(self) -> Tensor:
        """(S, B · m, Z) latent draws, one batch per seed from its own stream."""
        ...

    def critic(self, x: Tensor, params: Tensor | None = None) -> Tensor:
        """Discriminator logits on (S, N, D) samples, packed by the variant."""
        ...

    def update(self, name: str | tuple[str, ...], loss: Tensor) -> None:
        """One optimiser step of network(s) ``name`` on the (S,) ``loss``."""
        ...
