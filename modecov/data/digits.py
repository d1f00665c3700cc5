"""``stacked_digits``: three independent scikit-learn 8x8 digits stacked as channels (1000
modes, the digit triples), whose modes come from the classifier shipped in
``modecov.classifiers.digits``."""

from __future__ import annotations

from functools import cached_property
from types import MappingProxyType

import torch
from torch import Tensor

from modecov.classifiers.digits import (
    CLASSES,
    FEATURES,
    SIDE,
    accuracy,
    classifier_forward,
    load_classifier,
    load_digits_split,
)
from modecov.data.base import CHUNK, Dataset

CHANNELS = 3
"""Digits per sample, stacked as channels."""

HQ_PROB = 0.5
"""A sample is high quality when every channel's top digit probability reaches this."""


class StackedDigits(Dataset):
    """Three independent 8x8 digits stacked as channels: x = (3, 8, 8) flattened, D = 192.

    Pixels are scaled from the digits' 0..16 to [-1, 1] (x / 8 - 1, the range of a tanh
    generator). ``sample`` draws each channel uniformly and independently from the
    training split (1,437 digits; the other 360 only check the classifier), so the mode
    k = 100 a + 10 b + c of digit triple (a, b, c) has weight f_a f_b f_c, f the class
    frequencies of the training split (0.088-0.106): the exact distribution of the
    sampler. A sample's mode is the classifier's most probable digit per channel; it is
    high quality when every channel's top digit probability is at least 0.5. The
    classifier has an eleventh class, "not a digit" (noise, blank images), so noise is not
    high quality. Its weights ship with modecov (``modecov.classifiers.digits``), so every
    machine scores with the same network. Its ``kernel_scale`` is None (the kernel metrics
    take the median heuristic): its modes come from the classifier, not from centres whose
    spread and distances would set a bandwidth.
    """

    name = "stacked_digits"
    label = "Stacked digits"
    reference = "srivastava2017veegan,lin2018pacgan"
    dim = CHANNELS * SIDE * SIDE
    side = SIDE
    n_features = FEATURES
    classify = staticmethod(classifier_forward)
    """The classifier's forward (``(params, images) -> (logits, features)``) for ``side``."""
    config_defaults = MappingProxyType({"z_dim": 100})
    """RunConfig fields this dataset sets unless the user does: DCGAN's Z = 100 (a 2-D
    latent cannot reach 1000 image modes with a small conv generator)."""

    @cached_property
    def _split(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        return load_digits_split()

    @property
    def images(self) -> Tensor:
        """(M, 8, 8) float32 training digits in [-1, 1], the pool every sample draws from."""
        return self._split[0]

    @property
    def labels(self) -> Tensor:
        """(M,) their digit classes."""
        return self._split[1]

    @cached_property
    def _by_class(self) -> list[Tensor]:
        return [torch.nonzero(self.labels == c).flatten() for c in range(CLASSES)]

    @cached_property
    def class_freq(self) -> Tensor:
        """(10,) float64 class frequencies of the training split."""
        return torch.bincount(self.labels, minlength=CLASSES).to(torch.float64) / len(self.labels)

    @cached_property
    def weights(self) -> Tensor:
        f = self.class_freq
        return (f[:, None, None] * f[None, :, None] * f[None, None, :]).reshape(-1)

    @cached_property
    def centers(self) -> Tensor:
        """(1000, 192) mean image of each digit triple (for display; modes come from the
        classifier, not from distances to these)."""
        means = torch.stack([self.images[i].mean(0) for i in self._by_class]).to(torch.float64)
        a, b, c = self.triples().unbind(-1)
        return torch.stack((means[a], means[b], means[c]), 1).reshape(-1, self.dim)

    @staticmethod
    def triples() -> Tensor:
        """(1000, 3) digit triple (a, b, c) of mode k = 100 a + 10 b + c."""
        k = torch.arange(CLASSES**CHANNELS)
        return torch.stack((k // 100, k // 10 % 10, k % 10), -1)

    @cached_property
    def classifier(self) -> dict[str, Tensor]:
        """The digit classifier's parameters, read from the weights shipped with modecov."""
        return load_classifier()

    def held_out_accuracy(self) -> float:
        """The classifier's accuracy on the held-out digits (never sampled nor trained on)."""
        _, _, images, labels = self._split
        return accuracy(self.classifier, images, labels)

    @cached_property
    def expected_hq(self) -> float:
        """Exact HQ share of the dataset's own samples: q^3, q the share of training digits
        whose top digit probability is at least 0.5."""
        top = self._digit_probs(self.images)[0].max(-1).values
        return float((top >= HQ_PROB).double().mean()) ** CHANNELS

    def sample(self, n: int, generator: torch.Generator, dtype=torch.float32) -> Tensor:
        at = generator.device
        (images,) = self._on(at, "images")
        idx = torch.randint(len(self.labels), (n, CHANNELS), generator=generator, device=at)
        return images[idx].reshape(n, self.dim).to(dtype)

    def sample_mode(
        self, k: int, n: int, generator: torch.Generator, dtype=torch.float32
    ) -> Tensor:
        if not 0 <= k < self.n_modes:
            raise ValueError(f"mode must be in [0, {self.n_modes}), got {k}")
        pools = [self._by_class[int(c)] for c in self.triples()[k]]
        cols = [p[torch.randint(len(p), (n,), generator=generator)] for p in pools]
        return self.images[torch.stack(cols, 1)].reshape(n, self.dim).to(dtype)

    def _digit_probs(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """Digit probabilities (M, 10) and features (M, F) of (M, side, side) images, as
        float64.

        The probabilities are the first ten of the classifier's 11-way softmax, so they sum
        to 1 minus the "not a digit" probability. It runs in float32 chunks of
        ``CHUNK`` samples (3 * ``CHUNK`` images).
        """
        params = {k: v.to(images.device) for k, v in self.classifier.items()}
        probs, feats = [], []
        step = CHUNK * CHANNELS
        with torch.no_grad():
            for i in range(0, images.shape[0], step):
                logits, f = self.classify(params, images[i : i + step].to(torch.float32))
                probs.append(torch.softmax(logits.double(), -1)[:, :CLASSES])
                feats.append(f.double())
        if not probs:
            empty = images.new_zeros(0, dtype=torch.float64)
            return empty.reshape(0, CLASSES), empty.reshape(0, self.n_features)
        return torch.cat(probs), torch.cat(feats)

    def _channels(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Per-channel digit probabilities (..., N, 3, 10) and features (..., N, 3, F) of
        (..., N, D) samples."""
        if x.shape[-1] != self.dim:
            raise ValueError(f"{self.name} samples have D = {self.dim}, got {tuple(x.shape)}")
        probs, feats = self._digit_probs(x.reshape(-1, self.side, self.side))
        lead = x.shape[:-1]
        return (
            probs.reshape(*lead, CHANNELS, CLASSES),
            feats.reshape(*lead, CHANNELS, self.n_features),
        )

    def assign(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Mode = the most probable digit per channel; HQ = each channel's top digit
        probability is at least 0.5 (so noise, which the classifier calls "not a digit",
        is not HQ)."""
        top, digit = self._channels(x)[0].max(-1)
        idx = digit[..., 0] * 100 + digit[..., 1] * 10 + digit[..., 2]
        return idx, (top >= HQ_PROB).all(-1)

    def posterior(self, x: Tensor) -> Tensor:
        """p(k | x) = p(a | x_0) p(b | x_1) p(c | x_2) for k = 100 a + 10 b + c, each channel's
        digit probabilities renormalised over the ten digits; (..., N, 1000) float64."""
        p = self._channels(x)[0]
        p = p / p.sum(-1, keepdim=True)
        a, b, c = p.unbind(-2)
        joint = a[..., :, None, None] * b[..., None, :, None] * c[..., None, None, :]
        return joint.reshape(*x.shape[:-1], self.n_modes)

    def features(self, x: Tensor) -> Tensor:
        """(..., N, 192) the classifier's penultimate activations, channel after channel,
        float64: the space of the Fréchet distance on this dataset."""
        return self._channels(x)[1].flatten(-2)

    def bounds(self) -> tuple[float, float]:
        """The pixel range [-1, 1]: the box of uniform noise (this dataset has no 2-D plot)."""
        return -1.0, 1.0

    def accepts(self, variant) -> bool:
        """False for a variant these conv networks cannot train: one whose discriminator has
        a shape of its own (``make_d``: a pair critic, an autoencoder...)."""
        return variant.make_d is None

    def check_variant(self, variant) -> None:
        """Raise ConfigError for a variant these conv networks cannot train (``accepts``)."""
        from modecov.errors import ConfigError

        if not self.accepts(variant):
            raise ConfigError(
                f"variant {variant.name!r} brings a discriminator of its own shape, which "
                f"{self.name} (conv networks) does not support"
            )

    def make_nets(self, state) -> tuple:
        """Seed-batched DCGAN-style conv G and D (``modecov.convnets``), of width
        ``cfg.hidden`` (``cfg.depth`` does not apply); the D reads PacGAN's packed samples
        as extra channels.

        Raises:
            ConfigError: the variant brings a discriminator of its own shape (``make_d``).
        """
        from modecov.convnets import StackedConvD, StackedConvG

        cfg, variant = state.cfg, state.variant
        self.check_variant(variant)
        kw = {"dtype": state.dtype, "device": state.device}
        G = StackedConvG(cfg.z_dim, cfg.hidden, state.generators, **kw)
        D = StackedConvD(cfg.hidden, state.generators, pack=variant.pack, **kw)
        return G, D
