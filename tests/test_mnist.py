"""Tests for stacked_mnist: the IDX reader, the errors a user can cause with --mnist, and the
dataset on small synthetic "MNIST" files (scikit-learn digits upscaled to 28x28): classifier,
modes, scores, the 28x28 conv networks and a short training run."""

from __future__ import annotations

import gzip
import json
import os
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import cli, digest
from sklearn.datasets import load_digits
from torch import nn
from torch.nn import functional as F

import modecov.classifiers.mnist as mnist_files
import modecov.data.mnist as mnist
from modecov.config import RunConfig, grid_configs
from modecov.convnets import StackedConvD, StackedConvG
from modecov.data import BUNDLED, DATASETS, USER_DATASETS
from modecov.evaluate import train
from modecov.metrics import score_samples

N_TRAIN, N_TEST = 1200, 120
"""Synthetic train and t10k images: learnable in seconds (the classifier's 400-step minimum
reaches 0.955 held-out accuracy on these 1,200; 0.93 on 600)."""


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def write_idx(path: Path, array: np.ndarray, *, code: int = 0x08) -> Path:
    """An IDX file written by hand (magic, big-endian dims, big-endian data), .gz by name."""
    big = array.astype(array.dtype.newbyteorder(">"))
    blob = bytes([0, 0, code, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    blob += big.tobytes()
    path.write_bytes(gzip.compress(blob) if path.name.endswith(".gz") else blob)
    return path


def fake_mnist(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(N, 28, 28) uint8 digits (8x8 scikit-learn digits upscaled to 20x20 at a random offset)
    and (N,) uint8 labels."""
    bunch = load_digits()
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(bunch.target), n)
    small = torch.tensor(bunch.images[idx], dtype=torch.float32)[:, None] / 16.0
    big = F.interpolate(small, size=(20, 20), mode="bilinear", align_corners=False)[:, 0]
    out = torch.zeros(n, 28, 28)
    for i, (r, c) in enumerate(rng.integers(3, 6, (n, 2))):
        out[i, r : r + 20, c : c + 20] = big[i]
    pixels = (out.clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    return pixels, bunch.target[idx].astype(np.uint8)


def write_mnist(root: Path, *, test: bool = False, gz: bool = True) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    ext = ".gz" if gz else ""
    x, y = fake_mnist(N_TRAIN, 0)
    write_idx(root / f"train-images-idx3-ubyte{ext}", x)
    write_idx(root / f"train-labels-idx1-ubyte{ext}", y)
    if test:
        tx, ty = fake_mnist(N_TEST, 1)
        write_idx(root / f"t10k-images-idx3-ubyte{ext}", tx)
        write_idx(root / f"t10k-labels-idx1-ubyte{ext}", ty)
    return root


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return write_mnist(tmp_path_factory.mktemp("mnist") / "files")


@pytest.fixture(scope="module", autouse=True)
def cache(tmp_path_factory):
    """A private classifier cache for this module (trained once here, in seconds)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MODECOV_CACHE", str(tmp_path_factory.mktemp("cache")))
        mp.delenv(mnist.ENV, raising=False)
        yield


@pytest.fixture(scope="module")
def data(root) -> mnist.StackedMnist:
    return mnist.StackedMnist(root)


# The IDX reader


@pytest.mark.parametrize("name", ["images-idx3-ubyte", "images-idx3-ubyte.gz"])
def test_idx_round_trip_plain_and_gz(tmp_path, name):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (5, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, 5, dtype=np.uint8)
    got = mnist_files.read_idx(write_idx(tmp_path / name, images))
    assert got.dtype == np.uint8 and np.array_equal(got, images)
    got = mnist_files.read_idx(write_idx(tmp_path / f"labels-{name}", labels))
    assert got.shape == (5,) and np.array_equal(got, labels)
    # Multi-byte types are big-endian in the file and native once read.
    wide = np.array([[1, -2, 300], [-32768, 32767, 0]], dtype=np.int16)
    got = mnist_files.read_idx(write_idx(tmp_path / f"wide-{name}", wide, code=0x0B))
    assert got.dtype == np.int16 and np.array_equal(got, wide)


def good_idx(path: Path) -> bytes:
    return write_idx(path, np.zeros((2, 28, 28), np.uint8)).read_bytes()


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        pytest.param(lambda b: b"\x01\x00" + b[2:], "bad magic", id="magic"),
        pytest.param(lambda b: b[:2] + b"\x07" + b[3:], "bad magic", id="type-code"),
        pytest.param(lambda b: b[:3], "bad magic", id="three-bytes"),
        pytest.param(lambda b: b[:10], "truncated", id="header-cut"),
        pytest.param(lambda b: b[:-1], "truncated", id="data-cut"),
        pytest.param(lambda b: b + b"\0", "longer than", id="trailing"),
    ],
)
def test_idx_reader_refuses_damaged_files(tmp_path, damage, message):
    path = tmp_path / "x-idx3-ubyte"
    path.write_bytes(damage(good_idx(path)))
    with pytest.raises(mnist_files.MnistError, match=message):
        mnist_files.read_idx(path)


def test_gz_name_on_a_plain_file_is_refused(tmp_path):
    path = tmp_path / "x-idx3-ubyte.gz"
    path.write_bytes(good_idx(tmp_path / "plain"))
    with pytest.raises(mnist_files.MnistError, match="cannot read"):
        mnist_files.read_idx(path)


def test_t10k_pair_is_the_held_out_set_and_plain_equals_gz(tmp_path):
    plain = mnist_files.load_split(write_mnist(tmp_path / "plain", test=True, gz=False))
    packed = mnist_files.load_split(write_mnist(tmp_path / "gz", test=True))
    assert len(plain.labels) == N_TRAIN and len(plain.held_labels) == N_TEST
    assert plain.digest == packed.digest and torch.equal(plain.images, packed.images)
    split = mnist_files.load_split(write_mnist(tmp_path / "train-only"))
    assert len(split.held_labels) == N_TRAIN // mnist_files.HELD_OUT_SHARE
    assert len(split.labels) + len(split.held_labels) == N_TRAIN
    assert split.digest != plain.digest


# Errors a user can cause, through the CLI


def assert_one_error(rc, out, err, *needles):
    assert rc == 2, err
    assert out == "" and "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("modecov: error: "), err
    for needle in needles:
        assert needle in lines[0], lines[0]


def damaged_dir(tmp_path: Path, case: str) -> Path:
    """An MNIST directory broken in one way."""
    d = tmp_path / case
    d.mkdir()
    x, y = np.zeros((6, 28, 28), np.uint8), np.arange(6, dtype=np.uint8)
    images, labels = d / "train-images-idx3-ubyte", d / "train-labels-idx1-ubyte"
    if case == "empty":
        return d
    write_idx(images, x)
    write_idx(labels, y)
    if case == "no-labels":
        labels.unlink()
    elif case == "bad-magic":
        images.write_bytes(b"\x1f\x8b" + images.read_bytes()[2:])
    elif case == "truncated":
        labels.write_bytes(labels.read_bytes()[:-2])
    elif case == "counts":
        write_idx(labels, y[:5])
    elif case == "labels":
        write_idx(labels, y + 5)
    elif case == "not-images":
        write_idx(images, np.zeros((6, 8, 8), np.uint8))
    elif case == "half-t10k":
        write_idx(d / "t10k-images-idx3-ubyte", x)
    return d


BAD_DIRS = {
    "empty": "has no train-images",
    "no-labels": "has no train-labels",
    "bad-magic": "bad magic",
    "truncated": "truncated",
    "counts": "6 images but",
    "labels": "digits are 0-9",
    "not-images": "expected uint8 images of shape (N, 28, 28)",
    "half-t10k": "no t10k-labels",
}


@pytest.mark.parametrize(("case", "message"), list(BAD_DIRS.items()))
def test_run_with_bad_mnist_files_is_one_error_and_writes_nothing(
    capsys, tmp_path, monkeypatch, case, message
):
    monkeypatch.setattr(mnist_files, "train_classifier", None)  # never reached
    d = damaged_dir(tmp_path, case)
    store = tmp_path / "store"
    store.mkdir()
    (store / "runs.csv").write_text("config_id,seed\n")
    before = digest(store)
    argv = ["run", "--variants", "nsgan", "--datasets", "stacked_mnist", "--out", store]
    assert_one_error(*cli(capsys, *argv, "--mnist", d), message)
    assert digest(store) == before
    assert mnist.ENV not in os.environ, "--mnist is undone after the command"
    monkeypatch.setenv(mnist.ENV, str(d))  # the environment variable is checked the same way
    assert_one_error(*cli(capsys, *argv), message)
    assert digest(store) == before


def test_stacked_mnist_without_a_directory_is_one_error(capsys, tmp_path):
    out = tmp_path / "never"
    argv = ["--variants", "nsgan", "--datasets", "ring8,stacked_mnist", "--out", out]
    assert_one_error(*cli(capsys, "run", *argv), "stacked_mnist", "--mnist DIR")
    assert_one_error(*cli(capsys, "run", *argv, "--mnist", tmp_path / "missing"), "does not exist")
    samples = tmp_path / "s.npy"
    np.save(samples, np.zeros((10, 2352)))
    assert_one_error(*cli(capsys, "score", samples, "--dataset", "stacked_mnist"), "--mnist DIR")
    assert_one_error(*cli(capsys, "run", *argv[:2], "--datasets", "stacked_mnst"), "did you mean")
    assert not out.exists()


def test_list_shows_stacked_mnist_and_what_it_needs(capsys, root, monkeypatch):
    assert "stacked_mnist" not in DATASETS and "stacked_mnist" in USER_DATASETS
    rc, out, _ = cli(capsys, "list")
    line = next(x for x in out.splitlines() if "stacked_mnist" in x)
    assert rc == 0 and "D=2352, K=1000" in line and "--mnist DIR" in line
    monkeypatch.setenv(mnist.ENV, str(root))
    assert list(DATASETS) == [*BUNDLED, "stacked_mnist"]
    assert DATASETS["stacked_mnist"] is DATASETS["stacked_mnist"]  # one instance per directory
    rc, out, _ = cli(capsys, "list")
    assert "needs" not in next(x for x in out.splitlines() if "stacked_mnist" in x)


# The dataset


def test_classifier_learns_the_synthetic_digits_and_is_cached(data, monkeypatch):
    assert data.held_out_accuracy() >= 0.93
    path = mnist_files.classifier_path(mnist_files.recipe_key(data.split))
    assert path.exists()
    monkeypatch.setattr(mnist_files, "train_classifier", None)  # a second load must read the cache
    again = mnist_files.load_classifier(data.split)
    assert all(torch.equal(again[k], v) for k, v in data.classifier.items())


def test_layout_sampling_and_held_out_images(data):
    assert data.dim == 2352 and data.n_modes == 1000 and data.bounds() == (-1.0, 1.0)
    f = torch.bincount(data.labels, minlength=10).double() / len(data.labels)
    assert float(data.weights[372]) == pytest.approx(float(f[3] * f[7] * f[2]), rel=1e-12)
    x = data.sample(400, gen(1), dtype=torch.float64)
    assert float(x.min()) >= -1.0 and float(x.max()) <= 1.0
    pool = {img.numpy().tobytes() for img in data.split.images}
    held = {img.numpy().tobytes() for img in data.split.held_images} - pool
    channels = ((x.reshape(-1, 28, 28) + 1) * 127.5).round().to(torch.uint8)
    seen = {img.numpy().tobytes() for img in channels}
    assert len(held) > 50 and seen <= pool and not seen & held
    idx, hq = data.assign(data.sample_mode(409, 50, gen(2)))
    assert float((idx == 409).double().mean()) > 0.9


def test_assign_posterior_features_shapes_and_noise(data):
    x = torch.stack([data.sample(200, gen(3)), 2 * torch.rand(200, 2352, generator=gen(4)) - 1])
    idx, hq = data.assign(x)
    post, feats = data.posterior(x), data.features(x)
    assert idx.shape == hq.shape == (2, 200)
    assert post.shape == (2, 200, 1000) and post.dtype == torch.float64
    assert feats.shape == (2, 200, 192) and feats.dtype == torch.float64
    torch.testing.assert_close(post.sum(-1), torch.ones(2, 200, dtype=torch.float64))
    assert torch.equal(post.argmax(-1), idx)
    assert hq[0].double().mean() > 0.9 and hq[1].double().mean() < 0.05
    assert not data.assign(torch.full((1, 2352), -1.0))[1].item()


def test_true_sampler_covers_many_modes_and_one_digit_at_most_ten(data):
    true = data.sample(8_000, gen(5))
    out = score_samples(fake=true[None], real=true[:1000], data=data, names=("modes",))
    assert out["modes_covered"] >= 950
    assert out["hq_fraction"].item() == pytest.approx(data.expected_hq, abs=0.01)
    digit = torch.randint(10, (1500,), generator=gen(6))
    pools = data._by_class
    rows = [pools[d][torch.randint(len(pools[d]), (3,), generator=gen(i))] for i, d in
            enumerate(digit.tolist())]  # fmt: skip
    one = mnist_files.scale(data.split.images[torch.stack(rows)]).reshape(1500, 2352)
    bad = score_samples(fake=one[None], real=true[:1000], data=data, names=("modes",))
    assert bad["modes_covered"] <= 10


# 28x28 conv networks and training


def test_conv_nets_28_match_torch_nn():
    G = StackedConvG(5, 6, [gen(s) for s in (4, 1)], side=28, dtype=torch.float64)
    D = StackedConvD(6, [gen(s) for s in (4, 1)], side=28, dtype=torch.float64)
    z = torch.randn(2, 3, 5, generator=gen(7), dtype=torch.float64)
    x = G(z)
    assert x.shape == (2, 3, 2352)
    for s in range(2):
        w = {k: v[s].detach() for k, v in G._views(G.params).items()}
        h = F.relu(F.linear(z[s], w["fc.w"], w["fc.b"][0])).reshape(3, 6, 7, 7)
        h = F.relu(F.conv_transpose2d(h, w["up1.w"], w["up1.b"], stride=2, padding=1))
        want = torch.tanh(F.conv_transpose2d(h, w["up2.w"], w["up2.b"], stride=2, padding=1))
        torch.testing.assert_close(x[s], want.flatten(1), rtol=0, atol=1e-12)
        v = {k: t[s].detach() for k, t in D._views(D.params).items()}
        ref = nn.Sequential(
            nn.Unflatten(1, (3, 28, 28)), nn.Conv2d(3, 3, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(3, 6, 4, 2, 1), nn.LeakyReLU(0.2), nn.Flatten(), nn.Linear(6 * 49, 1),
        ).double()  # fmt: skip
        with torch.no_grad():
            for layer, name in ((ref[1], "down1"), (ref[3], "down2"), (ref[6], "fc")):
                layer.weight.copy_(v[f"{name}.w"])
                layer.bias.copy_(v[f"{name}.b"].reshape(-1))
        torch.testing.assert_close(D(x)[s], ref(x[s]), rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="multiple of 4"):
        StackedConvG(5, 6, [gen(0)], side=30)


def test_seeds_together_equal_separate_runs_float64(root, monkeypatch):
    monkeypatch.setenv(mnist.ENV, str(root))
    common = dict(
        dataset="stacked_mnist", variant="nsgan", steps=3, eval_every=3, batch_size=8,
        hidden=4, z_dim=5, n_eval=20, n_eval_large=20, dtype="float64", device="cpu",
    )  # fmt: skip
    together = train(RunConfig(seeds=(2, 0), **common))
    for i, s in enumerate((2, 0)):
        alone = train(RunConfig(seeds=(s,), **common))
        torch.testing.assert_close(together.samples[i], alone.samples[0], rtol=0, atol=1e-10)
    assert not torch.equal(together.samples[0], together.samples[1])


def test_short_nsgan_training_gives_finite_metrics(root, monkeypatch):
    monkeypatch.setenv(mnist.ENV, str(root))
    cfg = grid_configs(
        variants=("nsgan",), datasets=("stacked_mnist",), references=False, seeds=(0, 1),
        steps=4, eval_every=2, batch_size=16, hidden=8, n_eval=200, n_eval_large=200,
    )[0]  # fmt: skip
    assert cfg.z_dim == 100
    out = train(cfg)
    assert out.samples.shape == (2, 200, 2352) and out.counts.shape == (3, 2, 1000)
    for name in ("modes_covered", "hq_fraction", "kl_true_gen", "inception_score_norm",
                 "frechet_distance", "precision", "mmd2"):  # fmt: skip
        assert bool(torch.isfinite(out.final[name]).all()), name
    assert out.status == ["ok", "ok"]


def test_run_with_mnist_writes_a_store(capsys, tmp_path, root):
    out = tmp_path / "store"
    rc, _, err = cli(
        capsys, "run", "--variants", "nsgan", "--datasets", "stacked_mnist", "--mnist", root,
        "--steps", "2", "--set", "hidden=4", "--set", "batch_size=8", "--set", "n_eval=30",
        "--set", "n_eval_large=30", "--workers", "1", "--quiet", "--out", out,
    )  # fmt: skip
    assert rc == 0, err
    rows = (out / "runs.csv").read_text().splitlines()
    assert len(rows) == 4 and all(",stacked_mnist," in r for r in rows[1:])
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["stacked_mnist_sha256"] == mnist_files.load_split(root).digest
    assert manifest["stacked_mnist_dir"] == str(root.resolve())
    assert mnist.ENV not in os.environ
