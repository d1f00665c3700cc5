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


class _SlopeMask(torch.autograd.Function):
    """``g`` times LeakyReLU's slope at ``x`` (1 where x > 0, else the slope): LeakyReLU's
    backward, linear in ``g``, whose own gradient treats the mask as the constant it is
    (almost everywhere). Autograd's double backward of LeakyReLU differentiates the mask as
    well, to a zeros tensor it then adds into the graph's gradients: the same values, one
    allocation, fill and sum more per layer."""

    @staticmethod
    def forward(ctx, g: Tensor, x: Tensor, slope: float) -> Tensor:
        ctx.save_for_backward(x)
        ctx.slope = slope
        return torch.ops.aten.leaky_relu_backward(g, x, slope, False)

    @staticmethod
    def backward(ctx, gg: Tensor) -> tuple[Tensor, None, None]:
        (x,) = ctx.saved_tensors
        return _SlopeMask.apply(gg, x, ctx.slope), None, None


class _LeakyReLU(torch.autograd.Function):
    """``F.leaky_relu`` whose backward is :class:`_SlopeMask`, for graphs differentiated twice
    (the same values as autograd's, at every order)."""

    @staticmethod
    def forward(ctx, x: Tensor, slope: float) -> Tensor:
        ctx.save_for_backward(x)
        ctx.slope = slope
        return F.leaky_relu(x, slope)

    @staticmethod
    def backward(ctx, g: Tensor) -> tuple[Tensor, None]:
        (x,) = ctx.saved_tensors
        return _SlopeMask.apply(g, x, ctx.slope), None


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
        """Per layer, the (S, out, in) weight and (S, 1, out) bias views of flat ``p``.

        One ``split`` rather than a slice per view: differentiated (a functional pass on
        parameters that need a gradient, as the unrolled discriminator's), its backward
        concatenates the views' gradients instead of summing one zero-padded (S, P) tensor
        per view.
        """
        S = p.shape[0]
        parts = p.split([n for _, _, o, i in self.layout for n in (o * i, o)], dim=1)
        return [
            (w.view(S, o, i), b.view(S, 1, o))
            for w, b, (_, _, o, i) in zip(parts[0::2], parts[1::2], self.layout, strict=True)
        ]

    def flat_grad(self, grads: Sequence[Tensor]) -> Tensor:
        """Concatenate per-leaf gradients into one (S, P) tensor laid out as ``params``.

        Each gradient is copied once, straight into its slot: a weight's gradient arrives
        transposed from ``baddbmm``'s backward, and reshaping it before a concatenation would
        copy it twice.
        """
        flat = torch.empty_like(self.params)
        slots = [t for layer in self._views(flat) for t in layer]
        for slot, g in zip(slots, grads, strict=True):
            slot.copy_(g)
        return flat

    def __call__(self, x: Tensor, params: Tensor | None = None) -> Tensor:
        """Map (S, B, in) to (S, B, out); ``params`` (S, P) overrides the stored weights
        (functional use, e.g. an unrolled discriminator)."""
        layers = self._layers(params)
        return self._head(self._features(x, layers, params is not None), layers)

    def features(self, x: Tensor, params: Tensor | None = None) -> Tensor:
        """(S, B, H) activations of the last hidden layer, the input of the output layer, on
        (S, B, in) samples; ``head(features(x))`` computes exactly ``self(x)``."""
        return self._features(x, self._layers(params), params is not None)

    def head(self, h: Tensor, params: Tensor | None = None) -> Tensor:
        """The output layer alone: (S, B, H) features of :meth:`features` to (S, B, out)."""
        return self._head(h, self._layers(params))

    def input_gradient(self, x: Tensor) -> Tensor:
        """(S, B, in) gradient of ``self(x).sum()`` w.r.t. (S, B, in) ``x``, differentiable
        w.r.t. the weights: the value of ``torch.autograd.grad(self(x).sum(), x,
        create_graph=True)`` and the same gradient w.r.t. the weights, for one output unit.

        The input gradient is the chain ``w M_L W_L ⋯ M_1 W_1`` of the weights and
        LeakyReLU's slope masks M, which depend on x alone. Autograd's double backward
        differentiates the masks too, to zeros, and carries those zeros back through every
        matrix product of the forward pass; here the forward runs without a graph (for the
        masks) and only the chain is differentiated: a gradient penalty costs 4 passes of the
        network instead of 6.

        Raises:
            ValueError: when the network has more than one output unit.
        """
        layers = self._layers(None)
        *hidden, (w_out, _) = layers
        if w_out.shape[1] != 1:
            raise ValueError(f"input_gradient needs one output unit, not {w_out.shape[1]}")
        acts = []
        with torch.no_grad():
            h = x
            for w, b in hidden:
                h = F.leaky_relu_(torch.baddbmm(b, h, w.transpose(1, 2)), self.slope)
                acts.append(h)
        S, B, _ = x.shape
        # d(sum)/d(last features) is the output row w_out for every sample; then back through
        # each layer: its slope mask (read off its activation, which has the sign of its
        # pre-activation), then its weight.
        g = w_out.expand(S, B, w_out.shape[2])
        for (w, _), h in zip(reversed(hidden), reversed(acts)):
            g = torch.bmm(torch.ops.aten.leaky_relu_backward(g, h, self.slope, True), w)
        return g

    def _layers(self, params: Tensor | None) -> list[tuple[Tensor, Tensor]]:
        """(weight, bias) per layer: views of ``params`` when given, else the stored leaves."""
        return self._views(params) if params is not None else self._leaf_layers

    def _features(
        self, x: Tensor, layers: list[tuple[Tensor, Tensor]], functional: bool = False
    ) -> Tensor:
        """The hidden layers on x. A functional pass (``params`` given: an unrolled critic,
        differentiated twice) uses :class:`_LeakyReLU`; otherwise LeakyReLU runs in place on
        its product's fresh output (the same values, one buffer less)."""
        for w, b in layers[:-1]:
            a = torch.baddbmm(b, x, w.transpose(1, 2))
            x = _LeakyReLU.apply(a, self.slope) if functional else F.leaky_relu_(a, self.slope)
        return x

    def _head(self, h: Tensor, layers: list[tuple[Tensor, Tensor]]) -> Tensor:
        w, b = layers[-1]
        return torch.baddbmm(b, h, w.transpose(1, 2))


def input_gradient(net, x: Tensor) -> Tensor:
    """(S, B, in) gradient of ``net(x).sum()`` w.r.t. (S, B, in) ``x``, differentiable w.r.t.
    ``net``'s weights (for a penalty on it): ``net.input_gradient`` where the network has
    one (:meth:`StackedMLP.input_gradient`), else autograd with ``create_graph=True``; the
    same values either way."""
    explicit = getattr(net, "input_gradient", None)
    if explicit is not None:
        return explicit(x)
    x = x.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(net(x).sum(), x, create_graph=True)
    return grad
