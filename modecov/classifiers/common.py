"""Pieces shared by the digit classifiers: the "not a digit" training images and PyTorch's
default initialisation drawn from a generator of one's own."""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.nn import functional as F


def reject_images(
    pool: Tensor,
    generator: torch.Generator,
    n: int = 200,
    *,
    side: int,
    n_constant: int | None = None,
    n_blank: int | None = None,
) -> Tensor:
    """Images that are "not a digit", in [-1, 1], for a classifier's reject class.

    Args:
        pool: (M, side, side) digits whose pixels are shuffled into non-digits.
        generator: the source of every draw.
        n: images of each of uniform noise, 3x3-smoothed noise and shuffled digits.
        side: image side.
        n_constant: uniform-constant images (default n / 4).
        n_blank: how many of the constant images are blank, all -1 (default n / 8).

    Returns:
        (3 n + n_constant, side, side) float32 images, in that order.
    """
    n_constant = n // 4 if n_constant is None else n_constant
    n_blank = n // 8 if n_blank is None else n_blank
    uniform = torch.rand(n, side, side, generator=generator) * 2.0 - 1.0
    raw = torch.rand(n, 1, side, side, generator=generator) * 2.0 - 1.0
    smooth = F.avg_pool2d(F.pad(raw, (1, 1, 1, 1), mode="replicate"), 3, stride=1)[:, 0]
    smooth = smooth / smooth.abs().amax((1, 2), keepdim=True).clamp_min(1e-6)
    picks = pool[torch.randint(len(pool), (n,), generator=generator)].reshape(n, -1)
    order = torch.argsort(torch.rand(n, side * side, generator=generator), -1)
    shuffled = torch.gather(picks, 1, order).reshape(n, side, side)
    levels = torch.rand(n_constant, 1, 1, generator=generator) * 2.0 - 1.0
    levels[:n_blank] = -1.0
    constant = levels.expand(-1, side, side)
    return torch.cat([uniform, smooth, shuffled, constant])


def init_params(
    shapes: dict[str, tuple[int, ...]], generator: torch.Generator
) -> dict[str, Tensor]:
    """PyTorch's default Conv2d / Linear initialisation, U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
    drawn from ``generator`` alone in the order of ``shapes`` (``layer.w`` / ``layer.b``)."""
    params = {}
    for name, shape in shapes.items():
        layer = name.split(".")[0]
        fan_in = math.prod(shapes[f"{layer}.w"][1:])
        bound = 1.0 / math.sqrt(fan_in)
        u = torch.rand(shape, generator=generator, dtype=torch.float32)
        params[name] = (u * 2.0 - 1.0) * bound
    return params
