"""`modecov animate`: a GIF of the expected frames and size from a short run, and one clear
line with exit code 2 for every bad input."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import cli
from PIL import Image

from modecov import animate as movie
from modecov.config import RunConfig


def test_animate_writes_a_gif_with_samples_landscape_and_losses(tmp_path, capsys):
    out = tmp_path / "movie.gif"
    rc, printed, err = cli(capsys, "animate", "--variant", "nsgan", "--dataset", "spiral",
                           "--steps", "6", "--frames", "3", "--out", out)  # fmt: skip
    assert rc == 0, err
    assert printed.strip() == str(out)
    with Image.open(out) as im:
        assert im.format == "GIF"
        assert im.n_frames == 3
        assert im.size == (round(movie.SIZE[0] * movie.DPI), round(movie.SIZE[1] * movie.DPI))
        frames = []
        for k in range(im.n_frames):
            im.seek(k)
            frames.append(np.asarray(im.convert("RGB"), dtype=np.int16))
    assert frames[0].std() > 10
    assert np.abs(frames[0] - frames[-1]).sum() > 0  # training moves something
    assert not list(tmp_path.glob(".*tmp*"))


def test_recording_has_a_landscape_per_frame_and_every_loss():
    cfg = RunConfig(dataset="ring8", variant="nsgan", seeds=(1,), steps=8, eval_every=8,
                    n_eval=100, n_eval_large=100, batch_size=32, hidden=16)  # fmt: skip
    rec = movie.record(cfg, frames=4)
    assert [f.step for f in rec.frames] == [2, 4, 6, 8]
    assert rec.steps == list(range(1, 9))
    assert set(rec.losses) == {"loss_d", "loss_g"} and len(rec.losses["loss_g"]) == 8
    for f in rec.frames:
        assert f.samples.shape == (movie.MOVIE_POINTS, 2)
        assert f.landscape.shape == (movie.RESOLUTION, movie.RESOLUTION)
    gmmn = movie.record(RunConfig(**{**cfg.canonical(), "variant": "gmmn"}), frames=2)
    assert all(f.landscape is None for f in gmmn.frames)  # no discriminator


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        pytest.param(["--variant", "nsgn", "--dataset", "ring8"], ["'nsgan'"], id="variant"),
        pytest.param(["--variant", "gan", "--dataset", "rign8"], ["'ring8'"], id="dataset"),
        pytest.param(
            ["--variant", "true_sampler", "--dataset", "ring8"], ["reference"], id="reference"
        ),  # fmt: skip
        pytest.param(["--variant", "gan", "--dataset", "gauss1200"], ["2-D", "D=1200"], id="dim"),
        pytest.param(
            ["--variant", "gan", "--dataset", "ring8", "--steps", "0"], [">= 1"], id="steps"
        ),  # fmt: skip
        pytest.param(
            ["--variant", "gan", "--dataset", "ring8", "--seed", "x"], ["integer"], id="seed"
        ),  # fmt: skip
        pytest.param(
            ["--variant", "gan", "--dataset", "ring8", "--frames", "-2"], [">= 1"], id="frames"
        ),  # fmt: skip
        pytest.param(
            ["--variant", "gan", "--dataset", "ring8", "--out", "x.png"], [".gif"], id="suffix"
        ),  # fmt: skip
        pytest.param(
            ["--variant", "gan", "--dataset", "ring8", "--out", "no/such/dir/m.gif"],
            ["does not exist"],
            id="out-dir",
        ),  # fmt: skip
        pytest.param(["--dataset", "ring8"], ["--variant"], id="missing-variant"),
    ],
)
def test_bad_animate_input_is_one_line_exit_2(tmp_path, capsys, monkeypatch, args, needles):
    monkeypatch.chdir(tmp_path)
    rc, out, err = cli(capsys, "animate", *args)
    assert rc == 2 and out == "" and "Traceback" not in err, err
    assert len(err.splitlines()) == 1 and err.startswith("modecov: error: ")
    for n in needles:
        assert n in err
    assert not list(tmp_path.iterdir())
