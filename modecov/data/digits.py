"""``stacked_digits``: three independent scikit-learn 8x8 digits stacked as channels (1000
modes, the digit triples), and the digit classifier that defines its modes, trained by
modecov itself and cached under the user cache directory."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import tempfile
from functools import cached_property
from pathlib import Path
from types import MappingProxyType

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F

from modecov.data.base import CHUNK, Dataset

log = logging.getLogger(__name__)

SIDE, CHANNELS, CLASSES = 8, 3, 10
"""Image side, digits per sample (channels) and digit classes."""

REJECT = CLASSES
"""The classifier's eleventh class, "not a digit", trained on noise and blank images so that
noise is not high quality (a digits-only classifier calls 78% of uniform noise a confident
digit)."""

N_HELD_OUT = 360
"""Digits held out to check the classifier (20% of the 1,797); never sampled."""

HQ_PROB = 0.5
"""A sample is high quality when every channel's top digit probability reaches this."""

RECIPE = {
    "version": 1,
    "split_seed": 0,
    "held_out": N_HELD_OUT,
    "scale": "x / 8 - 1",
    "layers": "conv3x3(1->8) relu conv3x3(8->16) relu maxpool2 linear(256->64) relu linear(64->11)",
    "reject": "fresh each epoch: 200 each of uniform noise, 3x3-smoothed noise and "
    "pixel-shuffled digits, 25 blank (-1) and 25 uniform-constant images",
    "init": "torch default (U(-1/sqrt(fan_in), 1/sqrt(fan_in)))",
    "optimizer": "Adam betas (0.9, 0.999)",
    "lr": 3e-3,
    "epochs": 60,
    "batch": 64,
    "seed": 0,
    "dtype": "float32",
    "threads": 1,
}
"""Everything that determines the classifier's weights; its hash (with the torch version and
the digits themselves) names the cache file."""

_SHAPES = {
    "conv1.w": (8, 1, 3, 3), "conv1.b": (8,),
    "conv2.w": (16, 8, 3, 3), "conv2.b": (16,),
    "fc1.w": (64, 256), "fc1.b": (64,),
    "fc2.w": (CLASSES + 1, 64), "fc2.b": (CLASSES + 1,),
}  # fmt: skip
FEATURES = _SHAPES["fc1.b"][0]
"""Width of the classifier's penultimate layer: features per channel."""


def load_digits_split() -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The scikit-learn digits scaled to [-1, 1] (pixel / 8 - 1), split once with a fixed seed.

    Returns:
        Training images (N, 8, 8) float32 and labels (N,), then the held-out images and
        labels (``N_HELD_OUT`` of them). The dataset samples only the training split.
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = torch.tensor(bunch.images, dtype=torch.float32) / 8.0 - 1.0
    labels = torch.tensor(bunch.target, dtype=torch.long)
    split = torch.Generator().manual_seed(RECIPE["split_seed"])
    perm = torch.randperm(len(labels), generator=split)
    held, train = perm[:N_HELD_OUT], perm[N_HELD_OUT:]
    return images[train], labels[train], images[held], labels[held]


def classifier_forward(params: dict[str, Tensor], x: Tensor) -> tuple[Tensor, Tensor]:
    """Logits (M, 11: ten digits, then "not a digit") and penultimate features (M, 64) of
    (M, 8, 8) images."""
    h = F.relu(F.conv2d(x[:, None], params["conv1.w"], params["conv1.b"], padding=1))
    h = F.relu(F.conv2d(h, params["conv2.w"], params["conv2.b"], padding=1))
    h = F.max_pool2d(h, 2).flatten(1)
    feats = F.relu(F.linear(h, params["fc1.w"], params["fc1.b"]))
    return F.linear(feats, params["fc2.w"], params["fc2.b"]), feats


def reject_images(
    pool: Tensor,
    generator: torch.Generator,
    n: int = 200,
    *,
    side: int = SIDE,
    n_constant: int | None = None,
    n_blank: int | None = None,
) -> Tensor:
    """(3 n + n_constant, side, side) "not a digit" images in [-1, 1] for the classifier's
    reject class: n each of uniform noise, 3x3-smoothed noise and ``pool`` digits with their
    pixels shuffled, then ``n_constant`` uniform-constant images of which the first
    ``n_blank`` are blank (all -1). Defaults: n / 4 constant, n / 8 of them blank."""
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


def _init_params(generator: torch.Generator) -> dict[str, Tensor]:
    """PyTorch's default Conv2d / Linear initialisation, drawn from ``generator`` alone."""
    params = {}
    for name, shape in _SHAPES.items():
        layer = name.split(".")[0]
        fan_in = math.prod(_SHAPES[f"{layer}.w"][1:])
        bound = 1.0 / math.sqrt(fan_in)
        u = torch.rand(shape, generator=generator, dtype=torch.float32)
        params[name] = (u * 2.0 - 1.0) * bound
    return params


def train_classifier() -> dict[str, Tensor]:
    """Train the digit classifier by ``RECIPE`` (one torch thread, so the weights do not
    depend on the machine's core count) and return its parameters."""
    images, labels, _, _ = load_digits_split()
    generator = torch.Generator().manual_seed(RECIPE["seed"])
    params = {k: v.requires_grad_(True) for k, v in _init_params(generator).items()}
    opt = torch.optim.Adam(params.values(), lr=RECIPE["lr"], betas=(0.9, 0.999))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for _ in range(RECIPE["epochs"]):
            reject = reject_images(images, generator)
            x = torch.cat((images, reject))
            y = torch.cat((labels, torch.full((len(reject),), REJECT)))
            order = torch.randperm(len(y), generator=generator)
            for start in range(0, len(order), RECIPE["batch"]):
                idx = order[start : start + RECIPE["batch"]]
                loss = F.cross_entropy(classifier_forward(params, x[idx])[0], y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
    finally:
        torch.set_num_threads(threads)
    return {k: v.detach().clone() for k, v in params.items()}


def cache_dir() -> Path:
    """``$MODECOV_CACHE``, else ``$XDG_CACHE_HOME/modecov``, else ``~/.cache/modecov``."""
    if os.environ.get("MODECOV_CACHE"):
        return Path(os.environ["MODECOV_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "modecov"


def recipe_key() -> str:
    """Hash of the training recipe, the torch version and the digits themselves."""
    from sklearn.datasets import load_digits

    digest = hashlib.sha256(np.ascontiguousarray(load_digits().images).tobytes()).hexdigest()
    blob = json.dumps(
        {"recipe": RECIPE, "torch": torch.__version__, "digits": digest}, sort_keys=True
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def classifier_path(key: str | None = None) -> Path:
    """Where the cached classifier for ``key`` (default: the current recipe and torch
    version) lives."""
    return cache_dir() / f"digits_classifier_{key or recipe_key()}.pt"


def read_cache(
    path: Path, key: str, shapes: dict[str, tuple[int, ...]] | None = None
) -> dict[str, Tensor] | None:
    """The cached classifier parameters at ``path`` (``shapes``: name -> shape, default this
    module's classifier), or None when missing, unreadable or not ours."""
    shapes = _SHAPES if shapes is None else shapes
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        params = blob["params"]
        ok = blob["key"] == key and all(
            tuple(params[k].shape) == shape
            and params[k].dtype == torch.float32
            and bool(torch.isfinite(params[k]).all())
            for k, shape in shapes.items()
        )
    except FileNotFoundError:
        return None
    except Exception as exc:  # any corruption: a truncated zip, a foreign pickle, wrong keys
        log.warning("ignoring unreadable classifier cache %s (%s); rebuilding", path, exc)
        return None
    if not ok:
        log.warning("classifier cache %s does not match its recipe; rebuilding", path)
        return None
    return {k: params[k] for k in shapes}


def write_cache(path: Path, key: str, params: dict[str, Tensor]) -> None:
    """Write the cache atomically (temporary file, fsync, rename); warn if it cannot."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                torch.save({"key": key, "params": params}, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        log.warning("cannot cache the digit classifier at %s (%s); keeping it in memory", path, exc)


def load_classifier() -> dict[str, Tensor]:
    """The digit classifier's parameters: from the cache, or trained (seconds) and cached."""
    key = recipe_key()
    path = classifier_path(key)
    params = read_cache(path, key)
    if params is None:
        log.info("training the stacked_digits classifier (cached at %s)", path)
        params = train_classifier()
        write_cache(path, key, params)
    return params


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
    high quality.
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
        """The digit classifier's parameters (loaded or trained on first use)."""
        return load_classifier()

    @cached_property
    def expected_hq(self) -> float:
        """Exact HQ share of the dataset's own samples: q^3, q the share of training digits
        whose top digit probability is at least 0.5."""
        top = self._digit_probs(self.images)[0].max(-1).values
        return float((top >= HQ_PROB).double().mean()) ** CHANNELS

    def sample(self, n: int, generator: torch.Generator, dtype=torch.float32) -> Tensor:
        idx = torch.randint(len(self.labels), (n, CHANNELS), generator=generator)
        return self.images[idx].reshape(n, self.dim).to(dtype)

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

    def check_variant(self, variant) -> None:
        """Raise ConfigError for a variant these conv networks cannot train: one whose
        discriminator has a shape of its own (``make_d``: a pair critic, an autoencoder...)."""
        from modecov.errors import ConfigError

        if variant.make_d is not None:
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
