"""The DATASETS registry: every dataset with known modes, by key."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from modecov.data.base import HQ_MASS, Dataset, GaussianMixture, Spiral
from modecov.data.digits import StackedDigits
from modecov.data.mixtures import gauss1200, geometric_weights, grid, heavy_center, ring

DATASETS: Mapping[str, Dataset] = MappingProxyType(
    {
        d.name: d
        for d in (
            ring(
                name="ring8", n_modes=8, radius=2.0, std=0.02,
                label="Ring-8", reference="metz2017unrolled",
            ),
            grid(
                name="grid25", side=5, spacing=2.0, std=0.05,
                label="Grid-25", reference="srivastava2017veegan",
            ),
            ring(
                name="ring8_imbalanced", n_modes=8, radius=2.0, std=0.02,
                weights=[8 - k for k in range(8)],
                label="Ring-8 imbalanced", reference="balaji2019normalized",
            ),
            heavy_center(name="heavy_center", center_weight=0.9, n_minor=8, radius=2.0, std=0.02),
            grid(
                name="grid25_imbalanced", side=5, spacing=2.0, std=0.05,
                weights=geometric_weights(25, halving=6.0, shuffle_seed=0),
                label="Grid-25 imbalanced", reference="modecov",
            ),
            Spiral(name="spiral", label="Spiral", reference="modecov"),
            gauss1200(
                name="gauss1200", offsets=[-1, -0.5, 0, 0.5, -2, -2.5, 10, 0.25, -13, -5.5],
                dim=1200, wide_dims=700, wide=1.0, narrow=0.01,
            ),
            StackedDigits(),
        )
    }
)  # fmt: skip

__all__ = ["DATASETS", "HQ_MASS", "Dataset", "GaussianMixture", "Spiral", "StackedDigits"]
