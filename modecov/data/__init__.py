"""The DATASETS registry: every dataset with known modes, by key."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from types import MappingProxyType

from modecov.data.base import HQ_MASS, Dataset, GaussianMixture, Spiral
from modecov.data.digits import StackedDigits
from modecov.data.mixtures import gauss1200, geometric_weights, grid, heavy_center, ring
from modecov.data.mnist import StackedMnist

BUNDLED: Mapping[str, Dataset] = MappingProxyType(
    {
        d.name: d
        for d in (
            ring(
                name="ring8", n_modes=8, radius=2.0, std=0.02,
                label="Ring-8", reference="metz2017unrolled", comparison=True,
            ),
            grid(
                name="grid25", side=5, spacing=2.0, std=0.05,
                label="Grid-25", reference="srivastava2017veegan", comparison=True,
            ),
            ring(
                name="ring8_imbalanced", n_modes=8, radius=2.0, std=0.02,
                weights=[8 - k for k in range(8)],
                label="Ring-8 imbalanced", reference="balaji2019normalized", comparison=True,
            ),
            heavy_center(
                name="heavy_center", center_weight=0.9, n_minor=8, radius=2.0, std=0.02,
                comparison=True,
            ),
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

"""The datasets that need nothing but modecov: always in DATASETS."""

USER_DATASETS: Mapping[str, type[StackedMnist]] = MappingProxyType(
    {StackedMnist.name: StackedMnist}
)
"""Datasets read from files the user names (``needs`` says how): in DATASETS only once named,
so no suite and no registry-driven test depends on files a machine may not have."""


class _Registry(Mapping[str, Dataset]):
    """Read-only: BUNDLED, then each of USER_DATASETS whose files are named (``from_env``)."""

    def __getitem__(self, key: str) -> Dataset:
        if key in BUNDLED:
            return BUNDLED[key]
        found = USER_DATASETS[key].from_env() if key in USER_DATASETS else None
        if found is None:
            raise KeyError(key)
        return found

    def __iter__(self) -> Iterator[str]:
        yield from BUNDLED
        yield from (k for k, cls in USER_DATASETS.items() if cls.from_env() is not None)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __repr__(self) -> str:
        return f"DATASETS({', '.join(self)})"


DATASETS: Mapping[str, Dataset] = _Registry()
"""Every dataset available here, by key: BUNDLED, plus ``stacked_mnist`` when ``$MODECOV_MNIST``
names the MNIST directory (``modecov run --mnist DIR`` sets it)."""

__all__ = [
    "BUNDLED", "DATASETS", "HQ_MASS", "USER_DATASETS", "Dataset", "GaussianMixture", "Spiral",
    "StackedDigits", "StackedMnist",
]  # fmt: skip
