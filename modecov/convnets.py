"""Seed-batched DCGAN-style conv networks for 3-channel square images: 8x8 (``stacked_digits``)
and 28x28 (``stacked_mnist``).

They follow StackedMLP's interface (``modecov.nets``): one flat (S, P) parameter buffer that
the optimisers update in place, leaf views of it that autograd differentiates, and
``__call__(x, params=None)`` on flat (S, B, D) samples. The S seeds run as one grouped
convolution (``groups=S``: seed s's channels only ever meet seed s's kernels), so no
operation mixes seeds. There is no batch normalisation: its batch statistics would make a
sample's output depend on the rest of its batch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor
from torch.nn import functional as F

from modecov.data.base import CHUNK

SIDE, CHANNELS = 8, 3
"""Default image side and channels of the samples (D = 3 * 8 * 8); ``side`` picks another
side divisible by 4 (28 for Stacked MNIST)."""

KERNEL, STRIDE, PADDING = 4, 2, 1
"""Every (transposed) convolution doubles (halves) the side: DCGAN's 4x4, stride 2."""

G_INIT_GAIN = 4.0
"""The generator's weights are drawn U(-g/sqrt(fan_in), g/sqrt(fan_in)) with this g (biases
and the discriminator keep PyTorch's default, g = 1). Without DCGAN's batch normalisation,
the default init gives a generator whose outputs barely depend on z (per-pixel std 0.05
across z, against the digits' ~0.5), and NS-GAN then collapses to one image from the start
(measured: 0-8 of 1000 modes after 2,000-3,000 steps, width 64, batch 64, 5 seeds). With
g = 4 the initial outputs spread like the data (std 0.59) and NS-GAN covers ~470 modes after
2,000 steps (2 seeds); g = 2 (std 0.30) still collapses (14-91 modes)."""


class _StackedNet:
    """Named per-seed tensors laid out in one flat (S, P) buffer, initialised per seed.

    Subclasses list ``(name, shape, bound)`` in ``self.spec`` before calling ``_build``;
    every tensor is drawn U(-bound, bound) from its seed's generator, in the order listed
    (``_bound`` gives PyTorch's default for Linear, Conv2d and ConvTranspose2d).
    """

    spec: list[tuple[str, tuple[int, ...], float]]

    def _build(self, generators: Sequence[torch.Generator], dtype: torch.dtype, device) -> None:
        self.layout: dict[str, tuple[int, tuple[int, ...]]] = {}
        offset = 0
        for name, shape, _ in self.spec:
            self.layout[name] = (offset, shape)
            offset += math.prod(shape)
        self.n_params = offset
        rows = [self._init_row(g) for g in generators]
        self.params = torch.stack(rows).to(device=device, dtype=dtype)
        """(S, P) flat parameters; optimisers update it in place."""
        self._leaf_views = {k: v.requires_grad_(True) for k, v in self._views(self.params).items()}
        self.leaves = list(self._leaf_views.values())
        """Per-tensor views of ``params`` that autograd differentiates."""

    def _init_row(self, generator: torch.Generator) -> Tensor:
        """(P,) initial parameters of one seed, from ``generator`` alone."""
        parts = []
        for _, shape, bound in self.spec:
            u = torch.rand(math.prod(shape), generator=generator, dtype=torch.float64)
            parts.append((u * 2 - 1).mul_(bound))
        return torch.cat(parts)

    def _views(self, p: Tensor) -> dict[str, Tensor]:
        """Name -> (S, *shape) view of flat ``p``."""
        S = p.shape[0]
        return {
            name: p[:, o : o + math.prod(shape)].view(S, *shape)
            for name, (o, shape) in self.layout.items()
        }

    @property
    def n_seeds(self) -> int:
        """S, the number of seeds."""
        return int(self.params.shape[0])

    def flat_grad(self, grads: Sequence[Tensor]) -> Tensor:
        """Concatenate per-leaf gradients into one (S, P) tensor laid out as ``params``."""
        S = self.params.shape[0]
        return torch.cat([g.reshape(S, -1) for g in grads], dim=1)

    def _weights(self, params: Tensor | None) -> dict[str, Tensor]:
        return self._views(params) if params is not None else self._leaf_views

    def __call__(self, x: Tensor, params: Tensor | None = None) -> Tensor:
        """Map (S, B, in) to (S, B, out); ``params`` (S, P) overrides the stored weights
        (functional use, e.g. an unrolled discriminator). Without autograd, large batches
        run in chunks of ``CHUNK`` rows (the result does not depend on it)."""
        w = self._weights(params)
        if torch.is_grad_enabled() or x.shape[1] <= CHUNK:
            return self._forward(x, w)
        return torch.cat(
            [self._forward(x[:, i : i + CHUNK], w) for i in range(0, x.shape[1], CHUNK)], 1
        )

    def _forward(self, x: Tensor, w: dict[str, Tensor]) -> Tensor:
        raise NotImplementedError


def _bound(fan_in: int, gain: float = 1.0) -> float:
    """Half-width of PyTorch's default uniform init, 1 / sqrt(fan_in), times ``gain``."""
    return gain / math.sqrt(fan_in)


def _base(side: int) -> int:
    """Side of the smallest feature map, side / 4 (two stride-2 layers); ValueError unless
    ``side`` is a positive multiple of 4."""
    if side <= 0 or side % 4:
        raise ValueError(f"image side must be a positive multiple of 4, got {side}")
    return side // 4


def _to_groups(x: Tensor, channels: int, side: int) -> Tensor:
    """(S, B, C * side * side) -> (B, S * C, side, side): seeds become channel groups."""
    S, B, _ = x.shape
    return (
        x.reshape(S, B, channels, side, side).transpose(0, 1).reshape(B, S * channels, side, side)
    )


def _from_groups(h: Tensor, S: int) -> Tensor:
    """(B, S * C, H, W) -> (S, B, C * H * W): back to one row per sample and seed."""
    B = h.shape[0]
    return h.reshape(B, S, -1).transpose(0, 1)


class StackedConvG(_StackedNet):
    """DCGAN-style generator, one independent copy per seed.

    z (Z) -> linear -> width * 2 * 2 -> ReLU -> transposed conv -> width/2 * 4 * 4 -> ReLU
    -> transposed conv -> 3 * 8 * 8 -> tanh, flattened channel-first to D = 192 (for
    ``side`` = 28: 7 * 7 -> 14 * 14 -> 28 * 28, D = 2352).

    Args:
        z_dim: Z, latent dimension.
        width: channels of the side/4 feature map (the side/2 map has half as many).
        generators: one ``torch.Generator`` per seed; seed s's initial weights come from
            ``generators[s]`` alone (PyTorch's default init, weights times ``G_INIT_GAIN``).
        side: image side, divisible by 4.
        dtype, device: of the parameters.
    """

    def __init__(
        self,
        z_dim: int,
        width: int,
        generators: Sequence[torch.Generator],
        *,
        side: int = SIDE,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
    ) -> None:
        c1, c2, base = width, max(width // 2, 1), _base(side)
        self.z_dim, self.c1, self.c2, self.side, self.base = z_dim, c1, c2, side, base
        k2, g = KERNEL * KERNEL, G_INIT_GAIN
        # ConvTranspose2d's default init takes fan_in from weight.size(1) = out channels.
        self.spec = [
            ("fc.w", (c1 * base * base, z_dim), _bound(z_dim, g)),
            ("fc.b", (1, c1 * base * base), _bound(z_dim)),
            ("up1.w", (c1, c2, KERNEL, KERNEL), _bound(c2 * k2, g)),
            ("up1.b", (c2,), _bound(c2 * k2)),
            ("up2.w", (c2, CHANNELS, KERNEL, KERNEL), _bound(CHANNELS * k2, g)),
            ("up2.b", (CHANNELS,), _bound(CHANNELS * k2)),
        ]  # fmt: skip
        self._build(generators, dtype, device)

    def _forward(self, z: Tensor, w: dict[str, Tensor]) -> Tensor:
        S = z.shape[0]
        h = F.relu(torch.baddbmm(w["fc.b"], z, w["fc.w"].transpose(1, 2)))
        h = _to_groups(h, self.c1, self.base)
        h = F.conv_transpose2d(
            h, w["up1.w"].reshape(S * self.c1, self.c2, KERNEL, KERNEL), w["up1.b"].reshape(-1),
            stride=STRIDE, padding=PADDING, groups=S,
        )  # fmt: skip
        h = F.conv_transpose2d(
            F.relu(h), w["up2.w"].reshape(S * self.c2, CHANNELS, KERNEL, KERNEL),
            w["up2.b"].reshape(-1), stride=STRIDE, padding=PADDING, groups=S,
        )  # fmt: skip
        return _from_groups(torch.tanh(h), S)


class StackedConvD(_StackedNet):
    """DCGAN-style discriminator, one independent copy per seed.

    3·pack * 8 * 8 -> conv -> width/2 * 4 * 4 -> LeakyReLU -> conv -> width * 2 * 2 ->
    LeakyReLU -> linear -> 1 (for ``side`` = 28: 28 * 28 -> 14 * 14 -> 7 * 7). PacGAN's
    ``pack`` samples arrive concatenated (pack * D inputs) and are read as 3 * pack
    channels, so only the first layer changes with pack.

    Args:
        width: channels of the side/4 feature map (the side/2 map has half as many).
        generators: one ``torch.Generator`` per seed; seed s's initial weights come from
            ``generators[s]`` alone (PyTorch's default init).
        pack: samples per discriminator input (PacGAN); 1 = no packing.
        side: image side, divisible by 4.
        dtype, device: of the parameters.
        slope: negative slope of the LeakyReLU.
    """

    def __init__(
        self,
        width: int,
        generators: Sequence[torch.Generator],
        *,
        pack: int = 1,
        side: int = SIDE,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
        slope: float = 0.2,
    ) -> None:
        c1, c2, cin, base = width, max(width // 2, 1), CHANNELS * pack, _base(side)
        self.c1, self.c2, self.cin, self.slope, self.side = c1, c2, cin, slope, side
        k2, flat = KERNEL * KERNEL, c1 * base * base
        self.spec = [
            ("down1.w", (c2, cin, KERNEL, KERNEL), _bound(cin * k2)),
            ("down1.b", (c2,), _bound(cin * k2)),
            ("down2.w", (c1, c2, KERNEL, KERNEL), _bound(c2 * k2)),
            ("down2.b", (c1,), _bound(c2 * k2)),
            ("fc.w", (1, flat), _bound(flat)), ("fc.b", (1, 1), _bound(flat)),
        ]  # fmt: skip
        self._build(generators, dtype, device)

    def features(self, x: Tensor, params: Tensor | None = None) -> Tensor:
        """(S, B, width * side/4 * side/4) flattened last feature map, the input of the
        output layer; ``head(features(x))`` computes exactly ``self(x)`` (unchunked)."""
        return self._features(x, self._weights(params))

    def head(self, h: Tensor, params: Tensor | None = None) -> Tensor:
        """The output layer alone: features of :meth:`features` to (S, B, 1) logits."""
        return self._head(h, self._weights(params))

    def _forward(self, x: Tensor, w: dict[str, Tensor]) -> Tensor:
        return self._head(self._features(x, w), w)

    def _head(self, h: Tensor, w: dict[str, Tensor]) -> Tensor:
        return torch.baddbmm(w["fc.b"], h, w["fc.w"].transpose(1, 2))

    def _features(self, x: Tensor, w: dict[str, Tensor]) -> Tensor:
        S = x.shape[0]
        h = _to_groups(x, self.cin, self.side)
        h = F.conv2d(
            h, w["down1.w"].reshape(S * self.c2, self.cin, KERNEL, KERNEL),
            w["down1.b"].reshape(-1), stride=STRIDE, padding=PADDING, groups=S,
        )  # fmt: skip
        h = F.conv2d(
            F.leaky_relu(h, self.slope), w["down2.w"].reshape(S * self.c1, self.c2, KERNEL, KERNEL),
            w["down2.b"].reshape(-1), stride=STRIDE, padding=PADDING, groups=S,
        )  # fmt: skip
        return _from_groups(F.leaky_relu(h, self.slope), S)
