"""The ``stacked_digits`` classifier: an 11-class conv net (ten digits and "not a digit") on
the scikit-learn 8x8 digits, its training recipe and split, and its weights, which ship inside
the package so that every machine scores with the same network."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import zipfile
from functools import lru_cache
from importlib import resources

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F

from modecov.classifiers.common import init_params, reject_images
from modecov.errors import ModecovError

log = logging.getLogger(__name__)

SIDE, CLASSES = 8, 10
"""Image side and digit classes."""

REJECT = CLASSES
"""The eleventh class, "not a digit", trained on noise and blank images so that noise is not
high quality (a digits-only classifier calls 78% of uniform noise a confident digit)."""

N_HELD_OUT = 360
"""Digits held out to check the classifier (20% of the 1,797); never sampled."""

MIN_ACCURACY = 0.97
"""The held-out accuracy the training script demands before it writes weights."""

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
"""Everything that determines the classifier's weights (on a given CPU and torch version);
stored with the shipped weights."""

SHAPES = {
    "conv1.w": (8, 1, 3, 3), "conv1.b": (8,),
    "conv2.w": (16, 8, 3, 3), "conv2.b": (16,),
    "fc1.w": (64, 256), "fc1.b": (64,),
    "fc2.w": (CLASSES + 1, 64), "fc2.b": (CLASSES + 1,),
}  # fmt: skip
"""Parameter name -> shape, in the order they are initialised."""

FEATURES = SHAPES["fc1.b"][0]
"""Width of the classifier's penultimate layer: features per image."""

WEIGHTS_FILE = "digits_classifier.npz"
"""The shipped weights, a resource of this package (written by ``train_digits``)."""

WEIGHTS_SHA256 = "632a5c73a96cd8002e1228c9afd29a3d34f332ca95f3cc2eda42be82e529d3a0"
"""sha256 of the shipped weights file: loading checks it, and provenance records it."""

_META = "meta"
"""The npz member that holds the JSON metadata (recipe, held-out accuracy, versions)."""

_EPOCH = (1980, 1, 1, 0, 0, 0)
"""Timestamp of every member of the weights file, so that equal weights give equal bytes."""


class ClassifierError(ModecovError):
    """The shipped classifier weights are missing, altered or malformed."""


def load_digits_split() -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The scikit-learn digits scaled to [-1, 1] (pixel / 8 - 1), split once with a fixed seed.

    Returns:
        Training images (M, 8, 8) float32 and labels (M,), then the held-out images and
        labels (``N_HELD_OUT`` of them). ``stacked_digits`` samples only the training split.
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
    (M, 8, 8) images in [-1, 1]."""
    h = F.relu(F.conv2d(x[:, None], params["conv1.w"], params["conv1.b"], padding=1))
    h = F.relu(F.conv2d(h, params["conv2.w"], params["conv2.b"], padding=1))
    h = F.max_pool2d(h, 2).flatten(1)
    feats = F.relu(F.linear(h, params["fc1.w"], params["fc1.b"]))
    return F.linear(feats, params["fc2.w"], params["fc2.b"]), feats


def train_classifier() -> dict[str, Tensor]:
    """Train the classifier by ``RECIPE`` on the training split.

    Runs on one torch thread, so that the weights do not depend on the machine's core count
    (they still depend on its instruction set and the torch version, which is why the result
    ships rather than being retrained on each machine). Takes seconds on one core.

    Returns:
        Parameter name -> float32 tensor of shape ``SHAPES[name]``.
    """
    images, labels, _, _ = load_digits_split()
    generator = torch.Generator().manual_seed(RECIPE["seed"])
    params = {k: v.requires_grad_(True) for k, v in init_params(SHAPES, generator).items()}
    opt = torch.optim.Adam(params.values(), lr=RECIPE["lr"], betas=(0.9, 0.999))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for _ in range(RECIPE["epochs"]):
            reject = reject_images(images, generator, side=SIDE)
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


def accuracy(params: dict[str, Tensor], images: Tensor, labels: Tensor) -> float:
    """Share of (M, 8, 8) ``images`` whose most probable class (of the 11) is their label."""
    with torch.no_grad():
        logits, _ = classifier_forward(params, images.to(torch.float32))
    return float((logits.argmax(-1) == labels).double().mean())


def held_out_accuracy(params: dict[str, Tensor]) -> float:
    """Accuracy of ``params`` on the held-out split (never trained on, never sampled)."""
    _, _, images, labels = load_digits_split()
    return accuracy(params, images, labels)


def encode_weights(params: dict[str, Tensor], meta: dict) -> bytes:
    """The weights file's bytes: an uncompressed npz of float32 arrays (``SHAPES`` order) and
    a JSON ``meta`` string, with fixed timestamps so that equal inputs give equal bytes."""
    buf = io.BytesIO()
    arrays = {k: params[k].detach().cpu().contiguous().numpy().astype(np.float32) for k in SHAPES}
    arrays[_META] = np.array(json.dumps(meta, sort_keys=True))
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for name, array in arrays.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, array, allow_pickle=False)
            zf.writestr(zipfile.ZipInfo(f"{name}.npy", date_time=_EPOCH), member.getvalue())
    return buf.getvalue()


def decode_weights(blob: bytes) -> tuple[dict[str, Tensor], dict]:
    """Parameters and metadata from a weights file's bytes.

    Raises:
        ClassifierError: not an npz, a missing or misshapen parameter, a non-finite value.
    """
    try:
        with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        meta = json.loads(arrays.pop(_META).item())
    except Exception as exc:  # a truncated zip, a foreign file, no metadata
        raise ClassifierError(f"unreadable classifier weights ({exc})") from None
    params = {}
    for name, shape in SHAPES.items():
        array = arrays.get(name)
        if array is None or array.shape != shape or array.dtype != np.float32:
            got = "missing" if array is None else f"{array.dtype} {array.shape}"
            raise ClassifierError(f"classifier weight {name}: expected float32 {shape}, got {got}")
        if not np.isfinite(array).all():
            raise ClassifierError(f"classifier weight {name} is not finite")
        params[name] = torch.from_numpy(array.copy())
    return params, meta


@lru_cache(maxsize=1)
def _shipped_blob() -> bytes:
    """The shipped weights file's bytes, checked against ``WEIGHTS_SHA256`` (read once)."""
    try:
        blob = resources.files(__package__).joinpath(WEIGHTS_FILE).read_bytes()
    except OSError as exc:
        raise ClassifierError(
            f"the stacked_digits classifier weights ({WEIGHTS_FILE}) are missing from the "
            f"modecov package ({exc}); reinstall modecov"
        ) from None
    digest = hashlib.sha256(blob).hexdigest()
    if digest != WEIGHTS_SHA256:
        raise ClassifierError(
            f"the stacked_digits classifier weights ({WEIGHTS_FILE}) have sha256 "
            f"{digest[:16]}, not {WEIGHTS_SHA256[:16]}: reinstall modecov, or after retraining "
            "them on purpose set WEIGHTS_SHA256 in modecov/classifiers/digits.py"
        )
    return blob


def load_classifier() -> dict[str, Tensor]:
    """The shipped classifier's parameters (``SHAPES``, float32, CPU), fresh tensors.

    Reads the package's own file: no cache, no write access, no training.

    Raises:
        ClassifierError: the file is missing, altered (its hash is not ``WEIGHTS_SHA256``)
            or malformed.
    """
    return decode_weights(_shipped_blob())[0]


def shipped_metadata() -> dict:
    """The shipped weights' metadata: ``recipe``, ``held_out_accuracy``, and the ``torch``
    and ``numpy`` versions that trained them."""
    return decode_weights(_shipped_blob())[1]


def classifier_hash() -> str:
    """First 16 hex digits of the shipped weights' sha256, for provenance (checked against the
    file, so it names the weights actually used)."""
    _shipped_blob()
    return WEIGHTS_SHA256[:16]
