"""`modecov animate`: a GIF of the expected frames and size from a short run, in five panels
whose titles and legends stay clear of each other; the latent-grid figure; and one clear
line with exit code 2 for every bad input (not 2-D, Z != 2 among them)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import cli, layout_problems
from PIL import Image

from modecov import animate as movie
from modecov.config import RunConfig
from modecov.errors import ConfigError
from modecov.evaluate import train
from modecov.train import d_landscape

TINY = dict(steps=8, eval_every=8, n_eval=100, n_eval_large=100, batch_size=32, hidden=16)


def test_animate_writes_a_gif_and_the_latent_grid(tmp_path, capsys):
    out, grid = tmp_path / "movie.gif", tmp_path / "grid.png"
    rc, printed, err = cli(capsys, "animate", "--variant", "nsgan", "--dataset", "spiral",
                           "--steps", "6", "--frames", "3", "--out", out,
                           "--latent-grid", grid)  # fmt: skip
    assert rc == 0, err
    assert printed.split() == [str(out), str(grid)]
    with Image.open(grid) as im:
        assert im.format == "PNG"
        assert im.size == tuple(round(x * movie.DPI) for x in movie.GRID_SIZE)
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


def test_recording_has_both_landscapes_and_the_accuracy_per_frame_and_every_loss():
    cfg = RunConfig(dataset="ring8", variant="nsgan", seeds=(1,), **TINY)
    rec = movie.record(cfg, frames=4)
    assert [f.step for f in rec.frames] == [2, 4, 6, 8]
    assert rec.steps == list(range(1, 9))
    assert set(rec.losses) == {"loss_d", "loss_g"} and len(rec.losses["loss_g"]) == 8
    L = movie.RESOLUTION
    for f in rec.frames:
        assert f.samples.shape == (movie.MOVIE_POINTS, 2)
        assert f.landscape.shape == f.latent.shape == (L, L)
        assert 0.0 <= f.accuracy <= 1.0
    assert rec.latent_lines.shape == (2, movie.LATENT_LINES, movie.LINE_POINTS, 2)
    gmmn = movie.record(RunConfig(**{**cfg.canonical(), "variant": "gmmn"}), frames=2)
    assert all(f.landscape is None and f.latent is None for f in gmmn.frames)  # no D


def test_latent_panel_is_d_of_g_on_the_latent_grid():
    cfg = RunConfig(dataset="ring8", variant="pacgan2", seeds=(0,), **TINY)
    rec = movie.record(cfg, frames=1)  # one frame, at the last step
    states = []
    train(cfg, callback=lambda st, _: states.append(st) if not states else None)
    st = states[0]  # the same state object, holding the final weights
    z = movie.latent_grid()
    i, j = 5, 30
    step = 2 * movie.LATENT_BOX / (movie.RESOLUTION - 1)
    point = z[i * movie.RESOLUTION + j]
    assert point.tolist() == pytest.approx([-movie.LATENT_BOX + j * step,
                                            -movie.LATENT_BOX + i * step])  # fmt: skip
    with torch.no_grad():  # a packed D judges ``pack`` copies of the point
        x = st.G(point.to(st.dtype)[None, None])[0, 0]
        want = st.D(x.repeat(st.variant.pack)[None, None])[0, 0, 0]
    assert rec.frames[0].latent[i, j] == pytest.approx(float(want), rel=1e-5, abs=1e-6)


def test_energy_is_negated_so_red_means_real():
    cfg = RunConfig(dataset="ring8", variant="ebgan", seeds=(0,), **TINY)
    raw = []
    train(cfg, callback=lambda st, _: raw.append(d_landscape(st, movie.RESOLUTION)[0]))
    rec = movie.record(cfg, frames=1)
    assert np.allclose(rec.frames[0].landscape, -raw[-1].double().numpy(), atol=1e-6)


@pytest.mark.parametrize("variant", ["nsgan", "ebgan", "bigan"])
def test_movie_has_five_panels_clear_of_each_other(variant):
    cfg = RunConfig(dataset="spiral", variant=variant, seeds=(0,), **TINY)
    rec = movie.record(cfg, frames=2)
    m = movie.movie_figure()
    assert len(m.panels) == 5 and len({id(ax) for ax in m.panels}) == 5
    for frame in rec.frames:
        movie.draw_frame(m, rec, frame, cfg, rec.frames[0].samples)
        assert layout_problems(m.fig) == [], variant
    assert m.latent.get_images() or variant == "bigan"  # pair critic: no landscape
    assert layout_problems(movie.latent_grid_figure(rec, cfg)) == []


def test_latent_dimension_other_than_two_is_refused():
    with pytest.raises(ConfigError, match="z_dim=2, got z_dim=3"):
        movie.animate("gan", "ring8", steps=2, frames=1, z_dim=3)
    with pytest.raises(ConfigError, match="z_dim=2"):
        movie.record(RunConfig(dataset="ring8", variant="gan", seeds=(0,), z_dim=4, **TINY))


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
            ["--variant", "gan", "--dataset", "ring8", "--latent-grid", "g.gif"],
            ["--latent-grid", ".png"],
            id="grid-suffix",
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
