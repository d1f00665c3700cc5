"""Seed-batched networks: every weight carries a leading seed axis S.

A network's parameters live in one flat (S, P) buffer; each layer's weight and bias are
leaf views into it (so autograd writes their gradients directly, with no zero-filled
flat gradient per slice) and run as batched matrix products (``torch.baddbmm``). One
optimiser step updates the flat buffer for every seed with a handful of fused ops, and no
operation mixes seeds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor
from torch.nn import functional as F


class StackedMLP:
    """An MLP with LeakyReLU hidden layers, one independent copy per seed.

    Args:
        sizes: layer widths, input first, output last (e.g. ``[Z, 128, 128, 128, D]``).
        generators: one ``torch.Generator`` per seed; seed s's initial weights come from
            ``generators[s]`` alone (PyTorch's default ``nn.Linear`` initialisation).
        dtype, device: of the parameters.
        slope: negative slope of the LeakyReLU.
    """

    def __init__(
        self,
        sizes: Sequence[int],
        generators: Sequence[torch.Generator],
        *,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
        slope: float = 0.2,
    ) -> None:
        self.sizes = tuple(int(s) for s in sizes)
        self.slope = slope
        self.layout: list[tuple[int, int, int, int]] = []  # (w offset, b offset, out, in)
        offset = 0
        for fan_in, fan_out in zip(self.sizes[:-1], self.sizes[1:]):
            self.layout.append((offset, offset + fan_out * fan_in, fan_out, fan_in))
            offset += fan_out * fan_in + fan_out
        self.n_params = offset
        rows = [self._init_row(g) for g in generators]
        self.params = torch.stack(rows).to(device=device, dtype=dtype)
        """(S, P) flat parameters; optimisers update it in place."""
        self._leaf_layers = [
            (w.requires_grad_(True), b.requires_grad_(True)) for w, b in self._views(self.params)
        ]
        self.leaves = [t for layer in self._leaf_layers for t in layer]
        """Weight and bias views of ``params`` that autograd differentiates."""

    def _init_row(self, generator: torch.Generator) -> Tensor:
        """(P,) initial parameters of one seed: U(-1/sqrt(in), 1/sqrt(in)) as nn.Linear."""
        parts = []
        for _, _, fan_out, fan_in in self.layout:
            bound = 1.0 / math.sqrt(fan_in)
            w = torch.rand(fan_out, fan_in, generator=generator, dtype=torch.float64)
            b = torch.rand(fan_out, generator=generator, dtype=torch.float64)
            parts += [(w * 2 - 1).mul_(bound).reshape(-1), (b * 2 - 1).mul_(bound)]
        return torch.cat(parts)

    @property
    def n_seeds(self) -> int:
        """S, the number of seeds."""
        return int(self.params.shape[0])

    def _views(self, p: Tensor) -> list[tuple[Tensor, Tensor]]:
        """Per layer, the (S, out, in) weight and (S, 1, out) bias views of flat ``p``."""
        S = p.shape[0]
        return [
            (p[:, w : w + o * i].view(S, o, i), p[:, b : b + o].view(S, 1, o))
            for w, b, o, i in self.layout
        ]

    def flat_grad(self, grads: Sequence[Tensor]) -> Tensor:
        """Concatenate per-leaf gradients into one (S, P) tensor laid out as ``params``."""
        S = self.params.shape[0]
        return torch.cat([g.reshape(S, -1) for g in grads], dim=1)

    def __call__(self, x: Tensor, params: Tensor | None = None) -> Tensor:
        """Map (S, B, in) to (S, B, out); ``params`` (S, P) overrides the stored weights
        (functional use, e.g. an unrolled discriminator)."""
        layers = self._layers(params)
        return self._head(self._features(x, layers), layers)

    def features(self, x: Tensor, params: Tensor | None = None) -> Tensor:
        """(S, B, H) activations of the last hidden layer, the input of the output layer, on
        (S, B, in) samples; ``head(features(x))`` computes exactly ``self(x)``."""
        return self._features(x, self._layers(params))

    def head(self, h: Tensor, params: Tensor | None = None) -> Tensor:
        """The output layer alone: (S, B, H) features of :meth:`features` to (S, B, out)."""
        return self._head(h, self._layers(params))

    def _layers(self, params: Tensor | None) -> list[tuple[Tensor, Tensor]]:
        """(weight, bias) per layer: views of ``params`` when given, else the stored leaves."""
        return self._views(params) if params is not None else self._leaf_layers

    def _features(self, x: Tensor, layers: list[tuple[Tensor, Tensor]]) -> Tensor:
        for w, b in layers[:-1]:
            x = F.leaky_relu(torch.baddbmm(b, x, w.transpose(1, 2)), self.slope)
        return x

    def _head(self, h: Tensor, layers: list[tuple[Tensor, Tensor]]) -> Tensor:
        w, b = layers[-1]
        return torch.baddbmm(b, h, w.transpose(1, 2))
