"""The report's figures and the store's samples files they are drawn from: every figure is a
valid image of the expected pixel size; samples/<config_id>.npz is written before runs.csv,
merges resumed seeds and drops uncommitted ones; the discriminator landscape is the
discriminator's output on the documented grid."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import modecov.store as store_mod
from modecov import report
from modecov.config import RunConfig, grid_configs
from modecov.data import DATASETS
from modecov.report import figures
from modecov.store import RUNS, SAMPLES, Store, read_samples, sample_arrays
from modecov.train import LANDSCAPE_RESOLUTION, landscape_grid, train

VARIANTS_HERE = ("gan", "pacgan2", "gmmn")
DATASETS_HERE = ("ring8", "heavy_center")
TINY = dict(steps=20, eval_every=10, n_eval=500, n_eval_large=500, batch_size=64, hidden=32)


@pytest.fixture(scope="module")
def outputs():
    """TrainOutputs of three variants (plain, packed D, no D) and the references."""
    configs = grid_configs(variants=VARIANTS_HERE, datasets=DATASETS_HERE, seeds=(0, 1), **TINY)
    return [train(cfg) for cfg in configs]


@pytest.fixture(scope="module")
def built(outputs, tmp_path_factory) -> tuple[Path, list[Path]]:
    root = tmp_path_factory.mktemp("figures") / "store"
    with Store(root) as store:
        for out in outputs:
            store.commit(out, commit="test")
    return root, report.build(root)


# -- figures ------------------------------------------------------------------------------


def expected_sizes() -> dict[str, tuple[int, int]]:
    """Pixel size of every figure of the fixture store, from the grid layout."""
    dpi, panel = figures.DPI, figures.PANEL
    n_groups = len(VARIANTS_HERE) + 2  # + true_sampler, one_mode
    rows, cols = figures.grid_shape(n_groups)
    grid = (round(panel * dpi * cols), round(panel * dpi * rows))
    hist = (round(panel * dpi * cols), round(panel * 0.8 * dpi * rows))
    lrows, lcols = figures.grid_shape(2)  # gan and pacgan2 have a D; gmmn has none
    land = (round(panel * dpi * lcols), round(panel * dpi * lrows))
    w, h = figures.CURVE_SIZE
    curves = (round(w * dpi * len(figures.CURVE_METRICS)), round(h * dpi))
    sizes = {}
    for d in DATASETS_HERE:
        sizes[f"samples_{d}"] = grid
        sizes[f"landscape_{d}"] = land
        sizes[f"curves_{d}"] = curves
    sizes["modes_heavy_center"] = hist  # the only imbalanced set here
    return sizes


def test_every_figure_is_a_png_and_pdf_of_the_expected_size(built):
    root, written = built
    sizes = expected_sizes()
    pngs = {p.stem: p for p in written if p.suffix == ".png"}
    assert set(pngs) == set(sizes)
    for stem, path in pngs.items():
        with Image.open(path) as im:
            im.verify()
        with Image.open(path) as im:
            assert im.format == "PNG" and im.size == sizes[stem], stem
            pixels = np.asarray(im.convert("L"))
        assert pixels.std() > 10, f"{stem} is blank"
        pdf = path.with_suffix(".pdf").read_bytes()
        assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF"), stem
    readme = (root / "README.md").read_text()
    for stem in sizes:
        assert f"![{stem}](figures/{stem}.png)" in readme


def test_missing_samples_skip_the_sample_figures_with_a_note(built, tmp_path):
    root = tmp_path / "store"
    shutil.copytree(built[0], root)
    shutil.rmtree(root / SAMPLES)
    for p in (root / "figures").iterdir():
        p.unlink()
    written = report.build(root)
    stems = {p.stem for p in written if p.suffix == ".png"}
    assert stems == {f"curves_{d}" for d in DATASETS_HERE}
    readme = (root / "README.md").read_text()
    assert "Ring-8: no samples stored for any group" in readme


# -- samples files ------------------------------------------------------------------------


def test_samples_file_holds_capped_samples_counts_and_landscape(built, outputs):
    root, _ = built
    for out in outputs:
        arrays = read_samples(root, out.config.config_id)
        cfg = out.config
        assert arrays["seeds"].tolist() == list(cfg.seeds)
        assert arrays["samples"].dtype == np.float32
        assert np.array_equal(arrays["samples"], out.samples.float().numpy())
        assert np.array_equal(arrays["mode_counts"], out.counts[-1].numpy())
        assert arrays["bounds"].tolist() == list(DATASETS[cfg.dataset].bounds())
        has_d = cfg.variant in ("gan", "pacgan2")
        assert ("landscape" in arrays) == has_d, cfg.variant
        if has_d:
            L = LANDSCAPE_RESOLUTION
            assert arrays["landscape"].shape == (2, L, L)
            assert np.isfinite(arrays["landscape"]).all()


def test_high_dimensional_samples_are_capped_by_numbers_per_seed(outputs):
    out = outputs[0]
    big = type(out)(**{**out.__dict__, "samples": torch.zeros(2, 2_500, 1_200)})
    arrays = sample_arrays(big)
    assert arrays["samples"].shape == (2, store_mod.MAX_NUMBERS_PER_SEED // 1_200, 1_200)


def test_landscape_is_the_discriminator_on_the_grid(tmp_path):
    cfg = RunConfig(dataset="ring8", variant="pacgan2", seeds=(3,), **TINY)
    states = []
    out = train(cfg, callback=lambda st, _: states.append(st) if not states else None)
    st = states[0]
    grid = landscape_grid(st.data)
    lo, hi = st.data.bounds()
    L = LANDSCAPE_RESOLUTION
    assert grid[0].tolist() == [lo, lo] and grid[1, 0] > lo and grid[L, 1] > lo  # x fastest
    i, j = 17, 40
    point = grid[i * L + j].to(st.dtype)
    assert point[0] == pytest.approx(lo + j * (hi - lo) / (L - 1))
    assert point[1] == pytest.approx(lo + i * (hi - lo) / (L - 1))
    with torch.no_grad():  # a packed D judges ``pack`` copies of the point
        want = st.D(point.repeat(st.variant.pack)[None, None])[0, 0, 0]
    assert out.landscape.shape == (1, L, L)
    assert float(out.landscape[0, i, j]) == pytest.approx(float(want), rel=1e-5, abs=1e-6)


def test_samples_are_written_before_runs_csv(tmp_path, monkeypatch, outputs):
    order = []
    real_write, real_npz = store_mod._atomic_write, store_mod._atomic_write_npz
    monkeypatch.setattr(store_mod, "_atomic_write",
                        lambda p, t: (order.append(p.name), real_write(p, t)))  # fmt: skip
    monkeypatch.setattr(store_mod, "_atomic_write_npz",
                        lambda p, a: (order.append(p.parent.name), real_npz(p, a)))  # fmt: skip
    with Store(tmp_path) as store:
        store.commit(outputs[0], commit="x")
    assert order == [SAMPLES, "trajectory.csv", RUNS]


def test_killed_commit_leaves_samples_that_readers_ignore_and_resume_merges(tmp_path, monkeypatch):
    cfg = RunConfig(dataset="ring8", variant="gan", seeds=(0, 1), **TINY)
    first = train(cfg)
    later = train(RunConfig(dataset="ring8", variant="gan", seeds=(2,), **TINY))
    orphan = train(RunConfig(dataset="ring8", variant="gan", seeds=(5,), **TINY))
    real_write = store_mod._atomic_write

    def killed_before_runs(path, text):
        if path.name == RUNS:
            raise KeyboardInterrupt
        real_write(path, text)

    with Store(tmp_path) as store:
        store.commit(first, commit="x")
        monkeypatch.setattr(store_mod, "_atomic_write", killed_before_runs)
        with pytest.raises(KeyboardInterrupt):
            store.commit(orphan, commit="x")
        monkeypatch.undo()
        raw = read_samples(tmp_path, cfg.config_id)
        assert raw["seeds"].tolist() == [0, 1, 5]  # on disk, but seed 5 is not committed
        committed = {int(s) for s in store.runs()["seed"]}
        assert read_samples(tmp_path, cfg.config_id, committed)["seeds"].tolist() == [0, 1]
        store.commit(later, commit="x")
    merged = read_samples(tmp_path, cfg.config_id)
    assert merged["seeds"].tolist() == [0, 1, 2]  # the orphan is gone, seed 2 joined
    want = torch.cat([first.samples, later.samples]).float().numpy()
    assert np.array_equal(merged["samples"], want)
    assert np.array_equal(merged["landscape"], torch.cat([first.landscape, later.landscape]))
