"""Optimisers over stacked (S, P) parameters, masked per seed so a frozen seed stays put.

Each spec is a frozen dataclass (a variant's default, or overridden by the config); its
``build`` returns the stateful optimiser for one network. The update is elementwise,
so seeds never mix, and a seed whose mask is False keeps its weights exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True, kw_only=True, slots=True)
class Adam:
    """Adam (Kingma & Ba 2015), the same arithmetic as ``torch.optim.Adam``."""

    lr: float = 1e-4
    betas: tuple[float, float] = (0.5, 0.999)
    eps: float = 1e-8

    def build(self, params: Tensor) -> _AdamState:
        """The optimiser state for one (S, P) parameter tensor."""
        return _AdamState(self, params)


class _AdamState:
    def __init__(self, spec: Adam, params: Tensor) -> None:
        self.spec, self.params = spec, params
        self.m = torch.zeros_like(params, requires_grad=False)
        self.v = torch.zeros_like(params, requires_grad=False)
        self.t = 0

    @torch.no_grad()
    def step(self, grad: Tensor, alive: Tensor) -> None:
        """Apply one update with (S, P) ``grad`` to the seeds where ``alive`` (S,) is True."""
        beta1, beta2 = self.spec.betas
        self.t += 1
        g = torch.where(alive[:, None], grad, 0.0)
        self.m.lerp_(g, 1.0 - beta1)
        self.v.mul_(beta2).addcmul_(g, g, value=1.0 - beta2)
        bc1 = 1.0 - beta1**self.t
        bc2_sqrt = math.sqrt(1.0 - beta2**self.t)
        denom = (self.v.sqrt() / bc2_sqrt).add_(self.spec.eps)
        # A frozen seed's moments stay finite (its gradient is zeroed), so a 0/1 mask is safe.
        step = self.m / denom * (self.spec.lr / bc1)
        self.params.sub_(step.mul_(alive[:, None]))


@dataclass(frozen=True, kw_only=True, slots=True)
class RMSprop:
    """RMSprop, the same arithmetic as ``torch.optim.RMSprop`` (no momentum, not centred)."""

    lr: float = 5e-5
    alpha: float = 0.99
    eps: float = 1e-8

    def build(self, params: Tensor) -> _RMSpropState:
        """The optimiser state for one (S, P) parameter tensor."""
        return _RMSpropState(self, params)


class _RMSpropState:
    def __init__(self, spec: RMSprop, params: Tensor) -> None:
        self.spec, self.params = spec, params
        self.v = torch.zeros_like(params, requires_grad=False)

    @torch.no_grad()
    def step(self, grad: Tensor, alive: Tensor) -> None:
        """Apply one update with (S, P) ``grad`` to the seeds where ``alive`` (S,) is True."""
        g = torch.where(alive[:, None], grad, 0.0)
        self.v.mul_(self.spec.alpha).addcmul_(g, g, value=1.0 - self.spec.alpha)
        update = g / self.v.sqrt().add_(self.spec.eps) * self.spec.lr
        self.params.sub_(torch.where(alive[:, None], update, 0.0))


Optimizer = Adam | RMSprop
