"""Constructors for the Gaussian-mixture datasets: rings, grids, and the 1200-D mixture (each
gets its ``kernel_scale`` from its own centres and scale, ``base.mixture_kernel_scale``)."""

from __future__ import annotations

import math

import numpy as np
import torch

from modecov.data.base import GaussianMixture


def ring_centers(n_modes: int, radius: float) -> torch.Tensor:
    """(K, 2) centres at angles 2*pi*k/K, k = 0..K-1 (not linspace(0, 2*pi, K))."""
    angles = 2.0 * math.pi * torch.arange(n_modes, dtype=torch.float64) / n_modes
    return radius * torch.stack((torch.cos(angles), torch.sin(angles)), -1)


def ring(
    *,
    name: str,
    n_modes: int,
    radius: float,
    std: float,
    weights=None,
    label: str,
    reference: str,
    comparison: bool = False,
) -> GaussianMixture:
    """Isotropic Gaussians equally spaced on a circle."""
    w = torch.ones(n_modes) if weights is None else torch.as_tensor(weights)
    return GaussianMixture(
        name=name,
        label=label,
        reference=reference,
        centers=ring_centers(n_modes, radius),
        weights=w.to(torch.float64),
        std=torch.tensor([std], dtype=torch.float64),
        comparison=comparison,
    )


def grid(
    *,
    name: str,
    side: int,
    spacing: float,
    std: float,
    weights=None,
    label: str,
    reference: str,
    comparison: bool = False,
) -> GaussianMixture:
    """Isotropic Gaussians on a side x side grid centred at the origin."""
    ticks = (torch.arange(side, dtype=torch.float64) - (side - 1) / 2) * spacing
    xs, ys = torch.meshgrid(ticks, ticks, indexing="ij")
    centers = torch.stack((xs.reshape(-1), ys.reshape(-1)), -1)
    w = torch.ones(side * side) if weights is None else torch.as_tensor(weights)
    return GaussianMixture(
        name=name,
        label=label,
        reference=reference,
        centers=centers,
        weights=w.to(torch.float64),
        std=torch.tensor([std], dtype=torch.float64),
        comparison=comparison,
    )


def heavy_center(
    *,
    name: str,
    center_weight: float,
    n_minor: int,
    radius: float,
    std: float,
    comparison: bool = False,
) -> GaussianMixture:
    """One heavy mode at the origin plus ``n_minor`` light modes on a ring."""
    centers = torch.cat((torch.zeros(1, 2, dtype=torch.float64), ring_centers(n_minor, radius)))
    weights = torch.tensor(
        [center_weight] + [(1.0 - center_weight) / n_minor] * n_minor, dtype=torch.float64
    )
    return GaussianMixture(
        name=name,
        label="Heavy centre",
        reference="modecov",
        centers=centers,
        weights=weights.to(torch.float64),
        std=torch.tensor([std], dtype=torch.float64),
        comparison=comparison,
    )


def geometric_weights(n_modes: int, halving: float, shuffle_seed: int) -> np.ndarray:
    """Weights proportional to 2^(-k/halving), placed on the modes in a fixed shuffled order."""
    w = 2.0 ** (-np.arange(n_modes) / halving)
    order = np.random.default_rng(shuffle_seed).permutation(n_modes)
    out = np.empty(n_modes)
    out[order] = w
    return out / out.sum()


def gauss1200(*, name: str, offsets, dim: int, wide_dims: int, wide: float, narrow: float):
    """Gaussians with means c_k * 1 in ``dim`` dimensions, scale ``wide`` on the first
    ``wide_dims`` coordinates and ``narrow`` on the rest (VEEGAN's high-dimensional set)."""
    c = torch.tensor(offsets, dtype=torch.float64)
    std = torch.full((dim,), narrow, dtype=torch.float64)
    std[:wide_dims] = wide
    return GaussianMixture(
        name=name,
        label="1200-D mixture",
        reference="srivastava2017veegan",
        centers=c[:, None].expand(len(offsets), dim).clone(),
        weights=torch.ones(len(offsets), dtype=torch.float64),
        std=std,
    )
