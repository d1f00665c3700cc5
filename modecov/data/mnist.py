"""``stacked_mnist``: three MNIST digits stacked as channels (3x28x28, 1000 modes), from the
standard MNIST IDX files in a directory the user names (``--mnist DIR`` or ``MODECOV_MNIST``;
nothing is downloaded). Reading the files and the classifier that defines the modes (trained
by modecov on those files and cached) live in ``modecov.classifiers.mnist``: this module
opens no file."""

from __future__ import annotations

import os
from functools import cached_property, lru_cache
from pathlib import Path
from types import MappingProxyType

import torch
from torch import Tensor

from modecov.classifiers.digits import CLASSES
from modecov.classifiers.mnist import (
    FEATURES,
    SIDE,
    MnistSplit,
    accuracy,
    classifier_forward,
    load_classifier,
    load_split,
    scale,
)
from modecov.data.digits import CHANNELS, StackedDigits

ENV = "MODECOV_MNIST"
"""Environment variable naming the MNIST directory; ``modecov run --mnist DIR`` sets it for
the run and its worker processes."""


def mnist_root() -> Path | None:
    """The MNIST directory named by ``$MODECOV_MNIST``, or None when it is unset or empty."""
    value = os.environ.get(ENV, "").strip()
    return Path(value).expanduser().resolve() if value else None


class StackedMnist(StackedDigits):
    """Three MNIST digits stacked as channels: x = (3, 28, 28) flattened, D = 2352.

    Pixels are scaled from 0..255 to [-1, 1] (x / 127.5 - 1). ``sample`` draws each channel
    uniformly and independently from the training split (the train files, less a held-out
    sixth when the t10k pair is absent), so mode k = 100 a + 10 b + c has weight
    f_a f_b f_c, f the split's class frequencies. Modes and HQ (every channel's top digit
    probability >= 0.5) come from an 11-class classifier ("not a digit" included) that
    modecov trains on the training split and caches, keyed by the files and the recipe.

    Args:
        root: the directory holding the MNIST IDX files; read on first use.
    """

    name = "stacked_mnist"
    label = "Stacked MNIST"
    reference = "metz2017unrolled,srivastava2017veegan,lin2018pacgan"
    dim = CHANNELS * SIDE * SIDE
    side = SIDE
    n_features = FEATURES
    classify = staticmethod(classifier_forward)
    K = CLASSES**CHANNELS
    """Modes, known without reading the files."""
    needs = f"--mnist DIR or ${ENV}, the directory of the MNIST IDX files"
    """What makes this dataset available (``modecov list`` prints it)."""
    config_defaults = MappingProxyType({"z_dim": 100})

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    @classmethod
    def from_env(cls) -> StackedMnist | None:
        """The dataset for ``$MODECOV_MNIST`` (one instance per directory), or None if unset."""
        root = mnist_root()
        return None if root is None else _at(str(root))

    @property
    def n_modes(self) -> int:
        return self.K

    @cached_property
    def split(self) -> MnistSplit:
        """The files, read and checked once (MnistError when missing or invalid)."""
        return load_split(self.root)

    def check(self) -> None:
        """Read and check the files now. Raises MnistError."""
        self.split  # noqa: B018 (reading is the check)

    def prepare(self) -> dict[str, str]:
        """Check the files and load or train the classifier now (before worker processes
        start, so that they read the cache rather than each train it).

        Returns:
            Provenance for the run's manifest: the directory and the files' digest.
        """
        self.classifier  # noqa: B018
        return {f"{self.name}_dir": str(self.root), f"{self.name}_sha256": self.split.digest}

    @property
    def images(self) -> Tensor:
        """(M, 28, 28) float32 training images in [-1, 1] (made on each call; the uint8
        copy is what is kept)."""
        return scale(self.split.images)

    @property
    def labels(self) -> Tensor:
        return self.split.labels

    @cached_property
    def centers(self) -> Tensor:
        """(1000, 2352) mean image of each digit triple (for display)."""
        means = torch.stack([scale(self.split.images[i]).mean(0) for i in self._by_class])
        a, b, c = self.triples().unbind(-1)
        return torch.stack((means[a], means[b], means[c]), 1).double().reshape(-1, self.dim)

    @cached_property
    def classifier(self) -> dict[str, Tensor]:
        """The digit classifier's parameters (loaded or trained on first use)."""
        return load_classifier(self.split)

    def held_out_accuracy(self) -> float:
        """The classifier's accuracy on the held-out images (never sampled nor trained on)."""
        return accuracy(self.classifier, self.split.held_images, self.split.held_labels)

    @property
    def _pool(self) -> Tensor:
        """(M, 28, 28) uint8 training images, the pool every sample draws from."""
        return self.split.images

    def sample(self, n: int, generator: torch.Generator, dtype=torch.float32) -> Tensor:
        at = generator.device
        (pool,) = self._on(at, "_pool")
        idx = torch.randint(len(self.labels), (n, CHANNELS), generator=generator, device=at)
        return scale(pool[idx]).reshape(n, self.dim).to(dtype)

    def sample_mode(
        self, k: int, n: int, generator: torch.Generator, dtype=torch.float32
    ) -> Tensor:
        if not 0 <= k < self.n_modes:
            raise ValueError(f"mode must be in [0, {self.n_modes}), got {k}")
        pools = [self._by_class[int(c)] for c in self.triples()[k]]
        cols = [p[torch.randint(len(p), (n,), generator=generator)] for p in pools]
        return scale(self.split.images[torch.stack(cols, 1)]).reshape(n, self.dim).to(dtype)

    def make_nets(self, state) -> tuple:
        """Seed-batched DCGAN-style conv G and D for 28x28 (``modecov.convnets``, 7 -> 14
        -> 28), of width ``cfg.hidden``; the D reads PacGAN's packed samples as channels.

        Raises:
            ConfigError: the variant brings a discriminator of its own shape (``make_d``).
        """
        from modecov.convnets import StackedConvD, StackedConvG

        cfg, variant = state.cfg, state.variant
        self.check_variant(variant)
        kw = {"dtype": state.dtype, "device": state.device, "side": SIDE}
        G = StackedConvG(cfg.z_dim, cfg.hidden, state.generators, **kw)
        D = StackedConvD(cfg.hidden, state.generators, pack=variant.pack, **kw)
        return G, D


@lru_cache(maxsize=4)
def _at(root: str) -> StackedMnist:
    """One StackedMnist per directory, so its files and classifier are read once."""
    return StackedMnist(root)
