"""Tests for modecov.classifiers: the shipped stacked_digits classifier (hash, shapes, held-out
accuracy, loading with no cache), its training script, and the user cache that the
classifiers trained on user files (stacked_mnist) use."""

from __future__ import annotations

import hashlib
import logging
import os
from importlib import resources

import pytest
import torch

import modecov.classifiers.digits as digits
from modecov.classifiers import cache, train_digits
from modecov.classifiers.common import init_params
from modecov.data.digits import StackedDigits
from modecov.metrics import score_samples


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture
def fresh_weights():
    """Forget the shipped file's bytes before and after, so the test reads (or fails to read)
    it itself."""
    digits._shipped_blob.cache_clear()
    yield
    digits._shipped_blob.cache_clear()


# The shipped classifier


def test_shipped_weights_match_their_hash_and_shapes(fresh_weights):
    blob = resources.files("modecov.classifiers").joinpath(digits.WEIGHTS_FILE).read_bytes()
    assert 20_000 < len(blob) < 200_000  # tens of KB
    assert hashlib.sha256(blob).hexdigest() == digits.WEIGHTS_SHA256
    assert digits.classifier_hash() == digits.WEIGHTS_SHA256[:16]
    params = digits.load_classifier()
    assert list(params) == list(digits.SHAPES)
    for name, shape in digits.SHAPES.items():
        assert params[name].shape == shape and params[name].dtype == torch.float32, name
        assert bool(torch.isfinite(params[name]).all()), name
    meta = digits.shipped_metadata()
    assert meta["recipe"] == digits.RECIPE, "the shipped weights come from today's recipe"
    # Each load gives fresh tensors: a caller that edits them cannot change another's.
    params["fc2.b"] += 1.0
    assert not torch.equal(digits.load_classifier()["fc2.b"], params["fc2.b"])


def test_shipped_classifier_reaches_97_percent_on_held_out_digits():
    _, _, images, labels = digits.load_digits_split()
    assert len(labels) == digits.N_HELD_OUT
    acc = digits.held_out_accuracy(digits.load_classifier())
    assert acc >= 0.97
    # The accuracy recorded with the weights; another CPU may round one borderline digit
    # the other way.
    assert acc == pytest.approx(digits.shipped_metadata()["held_out_accuracy"], abs=1.5 / 360)
    assert StackedDigits().held_out_accuracy() == acc


def test_scoring_needs_no_cache_and_writes_nothing(tmp_path, monkeypatch, fresh_weights):
    readonly = tmp_path / "cache"
    readonly.mkdir()
    readonly.chmod(0o555)
    for var in ("MODECOV_CACHE", "XDG_CACHE_HOME", "HOME"):
        monkeypatch.setenv(var, str(readonly))

    def no_training():
        raise AssertionError("stacked_digits must not train its classifier")

    monkeypatch.setattr(digits, "train_classifier", no_training)
    data = StackedDigits()  # a new instance, so the classifier is loaded in this test
    true = data.sample(2_000, gen(0))
    fake = torch.stack([true, data.sample_mode(0, 2_000, gen(1))])
    names = ["modes", "inception", "frechet"]
    out = score_samples(fake=fake, real=true, data=data, names=names)
    assert out["modes_covered"][0] > 700 and out["modes_covered"][1] == 1
    assert out["frechet_distance"][0] < out["frechet_distance"][1]
    assert bool((out["hq_fraction"] > 0.95).all())
    assert out["inception_score_norm"][0] > 10 * out["inception_score_norm"][1]
    assert list(readonly.iterdir()) == []
    readonly.chmod(0o755)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        pytest.param({"WEIGHTS_FILE": "absent.npz"}, "missing", id="missing"),
        pytest.param({"WEIGHTS_SHA256": "0" * 64}, "reinstall", id="altered"),
    ],
)
def test_missing_or_altered_weights_are_one_error(monkeypatch, fresh_weights, change, message):
    for name, value in change.items():
        monkeypatch.setattr(digits, name, value)
    with pytest.raises(digits.ClassifierError, match=message):
        digits.load_classifier()
    with pytest.raises(digits.ClassifierError, match=message):
        digits.classifier_hash()


def test_malformed_weights_are_refused():
    params = digits.load_classifier()
    good = digits.encode_weights(params, {"note": "test"})
    assert digits.decode_weights(good)[1] == {"note": "test"}
    with pytest.raises(digits.ClassifierError, match="unreadable"):
        digits.decode_weights(good[: len(good) // 2])
    with pytest.raises(digits.ClassifierError, match="unreadable"):
        digits.decode_weights(b"not an npz")
    wide = dict(params, **{"fc1.w": torch.zeros(64, 257)})
    with pytest.raises(digits.ClassifierError, match=r"fc1\.w"):
        digits.decode_weights(digits.encode_weights(wide, {}))
    nan = dict(params, **{"fc2.b": torch.full((11,), float("nan"))})
    with pytest.raises(digits.ClassifierError, match="not finite"):
        digits.decode_weights(digits.encode_weights(nan, {}))


# The training script


def test_retraining_reaches_97_percent_and_writes_a_loadable_file(tmp_path, caplog):
    # About 7 s on one core: the whole recipe, not a shortened one.
    out = tmp_path / "sub" / "weights.npz"
    with caplog.at_level(logging.INFO):
        assert train_digits.main(["--out", str(out)]) == 0
    blob = out.read_bytes()
    sha256 = hashlib.sha256(blob).hexdigest()
    assert sha256 in caplog.text
    params, meta = digits.decode_weights(blob)
    acc = digits.held_out_accuracy(params)
    assert acc >= 0.97 and meta["held_out_accuracy"] == acc
    assert meta["recipe"] == digits.RECIPE and meta["torch"] == torch.__version__
    # Equal weights give equal bytes (no timestamps), so the file is a function of the weights.
    assert digits.encode_weights(params, meta) == blob
    assert not list(out.parent.glob(".*tmp*"))
    assert os.stat(out).st_mode & 0o044 == 0o044, "readable by all, like the rest of the package"


def test_script_refuses_weights_below_97_percent(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(
        digits, "train_classifier", lambda: init_params(digits.SHAPES, gen(0))
    )  # untrained: chance level
    out = tmp_path / "weights.npz"
    with caplog.at_level(logging.INFO):
        assert train_digits.main(["--out", str(out)]) == 1
    assert "below 0.97" in caplog.text and not out.exists()
    assert list(tmp_path.iterdir()) == []


# The user cache (classifiers trained on the user's files)


def test_cache_directory_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("MODECOV_CACHE", str(tmp_path / "mine"))
    assert cache.cache_dir() == tmp_path / "mine"
    monkeypatch.delenv("MODECOV_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache.cache_dir() == tmp_path / "modecov"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache.cache_dir() == tmp_path / "home" / ".cache" / "modecov"


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda p: p.unlink(), id="deleted"),
        pytest.param(lambda p: p.write_bytes(b"not a torch file"), id="garbage"),
        pytest.param(lambda p: p.write_bytes(p.read_bytes()[:500]), id="truncated"),
        pytest.param(lambda p: torch.save({"key": "stale", "params": {}}, p), id="another-recipe"),
    ],
)
def test_cache_round_trips_and_refuses_damaged_files(tmp_path, damage):
    params = init_params(digits.SHAPES, gen(0))
    path = tmp_path / "nested" / "dir" / "c.pt"
    cache.write_cache(path, "key", params)
    assert not list(path.parent.glob(".*tmp*")), "the temporary file is renamed, not left"
    back = cache.read_cache(path, "key", digits.SHAPES)
    assert all(torch.equal(back[k], v) for k, v in params.items())
    assert cache.read_cache(path, "other key", digits.SHAPES) is None
    damage(path)
    assert cache.read_cache(path, "key", digits.SHAPES) is None


def test_unwritable_cache_warns_and_goes_on(tmp_path, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache directory should be")
    with caplog.at_level(logging.WARNING):
        cache.write_cache(blocker / "cache" / "c.pt", "key", {"w": torch.zeros(2)})
    assert "cannot cache" in caplog.text
    assert list(tmp_path.iterdir()) == [blocker]
