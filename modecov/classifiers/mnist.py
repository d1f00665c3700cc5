"""The ``stacked_mnist`` classifier and the files it is trained on: the standard MNIST IDX
files in a directory the user names (read and checked here; nothing is downloaded), their
split into the images the dataset samples and a held-out check set, and the 11-class digit
classifier that defines the dataset's modes, trained by modecov on those files and cached
under the user cache directory (``modecov.classifiers.cache``)."""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F

from modecov.classifiers.cache import cache_dir, read_cache, write_cache
from modecov.classifiers.common import reject_images
from modecov.classifiers.digits import CLASSES, REJECT
from modecov.errors import ModecovError

log = logging.getLogger(__name__)

SIDE = 28
"""MNIST image side."""

CHUNK = 2048
"""Images per forward pass when measuring accuracy."""

FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
"""The standard file names; each may also end in ``.gz``. The t10k pair is optional."""

IDX_TYPES = MappingProxyType(
    {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
)
"""IDX type code (third magic byte) -> big-endian numpy dtype."""

HELD_OUT_SHARE = 6
"""Without the t10k pair, 1 / this of the train files is held out (MNIST's own 10k : 60k)."""

MIN_ACCURACY = 0.97
"""Held-out accuracy below this is logged as a warning (labels and images out of step?)."""

RECIPE = {
    "version": 1,
    "held_out": "the t10k pair when present, else 1/6 of the train files (seed 0)",
    "scale": "x / 127.5 - 1",
    "layers": "conv3x3/2(1->16) relu conv3x3/2(16->32) relu linear(1568->64) relu linear(64->11)",
    "reject": "each step: 8 each of uniform noise, 3x3-smoothed noise and pixel-shuffled "
    "digits, 1 blank (-1) and 1 uniform-constant image",
    "steps": "3 epochs of the training split, clipped to [400, 2400]",
    "init": "torch default (U(-1/sqrt(fan_in), 1/sqrt(fan_in)))",
    "optimizer": "Adam betas (0.9, 0.999)",
    "lr": 2e-3,
    "batch": 64,
    "seed": 0,
    "dtype": "float32",
    "threads": 1,
}
"""Everything that determines the classifier's weights; its hash (with the torch version and
the images and labels themselves) names the cache file."""

EPOCHS, MIN_STEPS, MAX_STEPS, BATCH, REJECT_N = 3, 400, 2400, 64, 8

_SHAPES = {
    "conv1.w": (16, 1, 3, 3), "conv1.b": (16,),
    "conv2.w": (32, 16, 3, 3), "conv2.b": (32,),
    "fc1.w": (64, 32 * 7 * 7), "fc1.b": (64,),
    "fc2.w": (CLASSES + 1, 64), "fc2.b": (CLASSES + 1,),
}  # fmt: skip
FEATURES = _SHAPES["fc1.b"][0]
"""Width of the classifier's penultimate layer: features per channel."""


class MnistError(ModecovError):
    """Missing or invalid MNIST files."""


def read_idx(path: str | Path) -> np.ndarray:
    """Read one IDX file (plain, or gzip-compressed when its name ends in ``.gz``).

    Returns:
        The array in native byte order, shaped by the file's dimensions.

    Raises:
        MnistError: unreadable, not gzip although named ``.gz``, bad magic number, or a
            payload shorter or longer than its dimensions say.
    """
    path = Path(path)
    try:
        if path.name.endswith(".gz"):
            with gzip.open(path, "rb") as f:
                raw = f.read()
        else:
            raw = path.read_bytes()
    except (OSError, EOFError) as exc:  # gzip.BadGzipFile is an OSError
        raise MnistError(f"{path}: cannot read ({exc})") from None
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] not in IDX_TYPES or raw[3] == 0:
        raise MnistError(f"{path} is not an IDX file (bad magic number {raw[:4].hex() or 'none'})")
    ndim, dtype = raw[3], np.dtype(IDX_TYPES[raw[2]])
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise MnistError(f"{path} is truncated (its header names {ndim} dimensions)")
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    need = math.prod(dims) * dtype.itemsize
    if len(raw) - header != need:
        state = "truncated" if len(raw) - header < need else "longer than its dimensions say"
        raise MnistError(
            f"{path} is {state}: shape {dims} needs {need} bytes of data, it has "
            f"{len(raw) - header}"
        )
    return np.frombuffer(raw, dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


def find_files(root: str | Path) -> dict[str, Path]:
    """The MNIST files in ``root`` by role (``FILES`` keys; the t10k pair only when both are
    there), preferring a plain file over its ``.gz``.

    Raises:
        MnistError: ``root`` is not a directory, a train file is missing, or only one of the
            t10k pair is there.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise MnistError(f"MNIST directory {root} does not exist or is not a directory")
    found = {}
    for role, name in FILES.items():
        for candidate in (root / name, root / f"{name}.gz"):
            if candidate.is_file():
                found[role] = candidate
                break
    for role in ("train_images", "train_labels"):
        if role not in found:
            raise MnistError(f"{root} has no {FILES[role]} (or .gz): give the directory that "
                             "holds the MNIST IDX files")  # fmt: skip
    test = [r for r in ("test_images", "test_labels") if r in found]
    if len(test) == 1:
        other = "test_labels" if test[0] == "test_images" else "test_images"
        raise MnistError(f"{root} has {found[test[0]].name} but no {FILES[other]} (or .gz)")
    return found


def _pair(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read and check one images/labels pair: uint8 (N, 28, 28) images, (N,) labels 0..9."""
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (SIDE, SIDE):
        raise MnistError(f"{images_path} holds {images.dtype} {images.shape}; expected uint8 "
                         f"images of shape (N, {SIDE}, {SIDE})")  # fmt: skip
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise MnistError(f"{labels_path} holds {labels.dtype} {labels.shape}; expected uint8 "
                         "labels of shape (N,)")  # fmt: skip
    if len(images) != len(labels):
        raise MnistError(f"{images_path} has {len(images)} images but {labels_path} has "
                         f"{len(labels)} labels")  # fmt: skip
    if len(labels) and int(labels.max()) >= CLASSES:
        raise MnistError(f"{labels_path} holds label {int(labels.max())}; digits are 0-9")
    return images, labels


@dataclass(frozen=True)
class MnistSplit:
    """The images the dataset samples and the classifier trains on, the held-out check set,
    and a digest of everything read."""

    images: Tensor
    """(M, 28, 28) uint8 training-split images."""
    labels: Tensor
    """(M,) long digit classes."""
    held_images: Tensor
    """(H, 28, 28) uint8 held-out images: never sampled, never trained on."""
    held_labels: Tensor
    """(H,) long."""
    digest: str
    """sha256 of the decoded images and labels (the same for plain and .gz files)."""


def load_split(root: str | Path) -> MnistSplit:
    """Read and check the MNIST files in ``root`` and split them.

    The held-out set is the t10k pair when present, else a fixed-seed sixth of the train
    files; the rest is the training split, which must hold every digit.

    Raises:
        MnistError: missing or invalid files (see ``find_files``, ``read_idx``).
    """
    files = find_files(root)
    images, labels = _pair(files["train_images"], files["train_labels"])
    digest = hashlib.sha256(images.tobytes() + labels.tobytes())
    x, y = torch.from_numpy(images), torch.from_numpy(labels.astype(np.int64))
    if "test_images" in files:
        held_x, held_y = _pair(files["test_images"], files["test_labels"])
        digest.update(held_x.tobytes() + held_y.tobytes())
        held = torch.from_numpy(held_x), torch.from_numpy(held_y.astype(np.int64))
        train = x, y
    else:
        perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
        cut = len(y) // HELD_OUT_SHARE
        held, train = (x[perm[:cut]], y[perm[:cut]]), (x[perm[cut:]], y[perm[cut:]])
    missing = sorted(set(range(CLASSES)) - set(train[1].tolist()))
    if missing:
        raise MnistError(f"{files['train_labels']}: the training split has no image of "
                         f"digit {', '.join(map(str, missing))}")  # fmt: skip
    return MnistSplit(*train, *held, digest=digest.hexdigest())


def scale(images: Tensor) -> Tensor:
    """uint8 pixels 0..255 -> float32 in [-1, 1]."""
    return images.to(torch.float32) / 127.5 - 1.0


def classifier_forward(params: dict[str, Tensor], x: Tensor) -> tuple[Tensor, Tensor]:
    """Logits (M, 11: ten digits, then "not a digit") and penultimate features (M, 64) of
    (M, 28, 28) images in [-1, 1]."""
    h = F.relu(F.conv2d(x[:, None], params["conv1.w"], params["conv1.b"], stride=2, padding=1))
    h = F.relu(F.conv2d(h, params["conv2.w"], params["conv2.b"], stride=2, padding=1))
    feats = F.relu(F.linear(h.flatten(1), params["fc1.w"], params["fc1.b"]))
    return F.linear(feats, params["fc2.w"], params["fc2.b"]), feats


def _init_params(generator: torch.Generator) -> dict[str, Tensor]:
    """PyTorch's default Conv2d / Linear initialisation, drawn from ``generator`` alone."""
    params = {}
    for name, shape in _SHAPES.items():
        fan_in = math.prod(_SHAPES[f"{name.split('.')[0]}.w"][1:])
        u = torch.rand(shape, generator=generator, dtype=torch.float32)
        params[name] = (u * 2.0 - 1.0) / math.sqrt(fan_in)
    return params


def train_steps(n_train: int) -> int:
    """Optimiser steps for a training split of ``n_train`` images (see ``RECIPE``)."""
    return min(max(math.ceil(EPOCHS * n_train / BATCH), MIN_STEPS), MAX_STEPS)


def train_classifier(split: MnistSplit) -> dict[str, Tensor]:
    """Train the digit classifier on ``split``'s training images by ``RECIPE`` (one torch
    thread, so the weights do not depend on the machine's core count)."""
    images, labels = scale(split.images), split.labels
    generator = torch.Generator().manual_seed(RECIPE["seed"])
    params = {k: v.requires_grad_(True) for k, v in _init_params(generator).items()}
    opt = torch.optim.Adam(params.values(), lr=RECIPE["lr"], betas=(0.9, 0.999))
    order = torch.randperm(len(labels), generator=generator)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        at = 0
        for _ in range(train_steps(len(labels))):
            if at + BATCH > len(order):
                order, at = torch.randperm(len(labels), generator=generator), 0
            idx = order[at : at + BATCH]
            at += BATCH
            # n each of noise, smoothed noise and shuffled digits, one blank, one constant.
            reject = reject_images(images, generator, REJECT_N, side=SIDE, n_constant=2, n_blank=1)
            x = torch.cat((images[idx], reject))
            y = torch.cat((labels[idx], torch.full((len(reject),), REJECT)))
            loss = F.cross_entropy(classifier_forward(params, x)[0], y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    finally:
        torch.set_num_threads(threads)
    return {k: v.detach().clone() for k, v in params.items()}


def accuracy(params: dict[str, Tensor], images: Tensor, labels: Tensor) -> float:
    """Share of uint8 ``images`` whose most probable class (of the 11) is their label."""
    with torch.no_grad():
        hits = sum(
            int((classifier_forward(params, scale(images[i : i + CHUNK]))[0].argmax(-1)
                 == labels[i : i + CHUNK]).sum())
            for i in range(0, len(labels), CHUNK)
        )  # fmt: skip
    return hits / max(len(labels), 1)


def recipe_key(split: MnistSplit) -> str:
    """Hash of the training recipe, the torch version and the images and labels."""
    blob = json.dumps(
        {"recipe": RECIPE, "torch": torch.__version__, "mnist": split.digest}, sort_keys=True
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def classifier_path(key: str) -> Path:
    """Where the cached classifier for ``key`` lives."""
    return cache_dir() / f"mnist_classifier_{key}.pt"


def load_classifier(split: MnistSplit) -> dict[str, Tensor]:
    """The MNIST digit classifier: from the cache, or trained (about a minute) and cached."""
    key = recipe_key(split)
    path = classifier_path(key)
    params = read_cache(path, key, _SHAPES)
    if params is None:
        log.info("training the stacked_mnist classifier (cached at %s)", path)
        params = train_classifier(split)
        held = accuracy(params, split.held_images, split.held_labels)
        log.info("stacked_mnist classifier: %.4f held-out accuracy", held)
        if held < MIN_ACCURACY:
            log.warning("the MNIST classifier reaches only %.3f on the held-out images; are "
                        "the label files those of the image files?", held)  # fmt: skip
        write_cache(path, key, params)
    return params
