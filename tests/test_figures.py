"""The report's figures and the store's samples files they are drawn from: every figure is a
valid image of the expected pixel size; samples/<config_id>.npz is written before runs.csv,
merges resumed seeds and drops uncommitted ones; the discriminator landscape is the
discriminator's output on the documented grid."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import layout_problems
from PIL import Image

import modecov.store as store_mod
from modecov import report
from modecov.config import TOY_CORE, RunConfig, grid_configs
from modecov.data import DATASETS
from modecov.evaluate import train
from modecov.report import figures
from modecov.report.style import style
from modecov.report.tables import dataset_label
from modecov.store import RUNS, SAMPLES, TRAJECTORY, Store, read_samples, sample_arrays
from modecov.train import LANDSCAPE_RESOLUTION, landscape_grid
from modecov.variants import REFERENCES, VARIANTS

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
    width = w * len(figures.CURVE_METRICS)
    legend = figures.legend_height([VARIANTS[v].label for v in VARIANTS_HERE], width)
    curves = (round(width * dpi), round((h + legend) * dpi))
    sizes = {}
    for d in DATASETS_HERE:
        sizes[f"samples_{d}"] = grid
        sizes[f"landscape_{d}"] = land
        sizes[f"curves_{d}"] = curves
    sizes["modes_heavy_center"] = hist  # the only imbalanced set here
    sizes[figures.SUMMARY_STEM] = None  # its width follows the longest row label
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
            assert im.format == "PNG", stem
            assert sizes[stem] is None or im.size == sizes[stem], stem
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
    assert stems == {f"curves_{d}" for d in DATASETS_HERE} | {figures.SUMMARY_STEM}
    readme = (root / "README.md").read_text()
    assert "Ring-8: no samples stored for any group" in readme


# -- the zoo: every figure at the size of the core suite --------------------------------

EXTRA_SETTINGS = (("gan", {"lr": 1e-3}), ("nsgan", {"lr": 1e-3}))
"""Second configs of two variants: every registered row and two more, with setting labels."""
ZOO_METRICS = ("modes_covered", "hq_fraction", "kl_gen_true")


def write_zoo(root: Path) -> None:
    """A store as `modecov run` leaves it for every variant, reference and two extra configs
    on the core suite's four sets (3 seeds): runs.csv, trajectory.csv and samples files
    (with a landscape for every trained row, as an older store may hold), no training."""
    rng = np.random.default_rng(0)
    rows, traj = [], []
    configs = [(v, {}) for v in (*VARIANTS, *REFERENCES)] + list(EXTRA_SETTINGS)
    (root / SAMPLES).mkdir(parents=True)
    for d in TOY_CORE:
        data = DATASETS[d]
        K = data.n_modes
        for v, setting in configs:
            cfg = RunConfig(dataset=d, variant=v, seeds=(0, 1, 2), steps=5_000, **setting)
            covered = rng.integers(1, K + 1, size=3)
            for s in cfg.seeds:
                rows.append({"config_id": cfg.config_id, "seed": s, **cfg.canonical(),
                             "modes_covered": covered[s], "modes_covered_frac": covered[s] / K,
                             "hq_fraction": rng.uniform(0, 1), "kl_gen_true": rng.gamma(1.0),
                             "status": "ok"})  # fmt: skip
                if v not in REFERENCES:
                    for step in range(0, 5_001, 500):
                        for m in ZOO_METRICS:
                            traj.append({"config_id": cfg.config_id, "seed": s, "step": step,
                                         "metric": m, "value": rng.uniform(0, K)})  # fmt: skip
            g = torch.Generator().manual_seed(len(rows))
            samples = torch.stack([data.sample(400, g) for _ in cfg.seeds]).numpy()
            arrays = {"seeds": np.array(cfg.seeds), "samples": samples.astype(np.float32),
                      "mode_counts": rng.integers(0, 50, size=(3, K)),
                      "bounds": np.array(data.bounds())}  # fmt: skip
            if v not in REFERENCES:
                L = LANDSCAPE_RESOLUTION
                arrays["landscape"] = rng.normal(size=(3, L, L)).cumsum(1).astype(np.float32)
            np.savez_compressed(root / SAMPLES / f"{cfg.config_id}.npz", **arrays)
    pd.DataFrame(rows).to_csv(root / RUNS, index=False)
    pd.DataFrame(traj).to_csv(root / TRAJECTORY, index=False)


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    """Every figure of the zoo store: stem -> (Figure, its PNG path), and the README."""
    root = tmp_path_factory.mktemp("zoo") / "core"
    write_zoo(root)
    drawn = {}
    real_save = figures._save

    def keep(fig, folder, stem):
        paths = real_save(fig, folder, stem)
        drawn[stem] = (fig, paths[0])
        return paths

    mp = pytest.MonkeyPatch()
    mp.setattr(figures, "_save", keep)
    try:
        report.build(root)
    finally:
        mp.undo()
    return drawn, (root / "README.md").read_text()


def test_zoo_draws_every_kind_for_every_dataset(zoo):
    drawn, _ = zoo
    imbalanced = [d for d in TOY_CORE if not torch.allclose(DATASETS[d].weights,
                                                            DATASETS[d].weights[0])]  # fmt: skip
    want = {figures.SUMMARY_STEM}
    want |= {f"{k}_{d}" for k in ("samples", "curves", "landscape") for d in TOY_CORE}
    want |= {f"modes_{d}" for d in imbalanced}
    assert set(drawn) == want


def test_zoo_figures_keep_legends_and_titles_inside_and_off_the_axes(zoo):
    drawn, _ = zoo
    for stem, (fig, _) in drawn.items():
        assert layout_problems(fig) == [], stem


def test_curve_legend_names_every_row_once_in_its_style(zoo):
    drawn, _ = zoo
    fig, _ = drawn["curves_ring8"]
    (legend,) = fig.legends
    labels = [t.get_text() for t in legend.get_texts()]
    assert len(labels) == len(set(labels)) == len(VARIANTS) + len(EXTRA_SETTINGS)
    assert not any(ax.get_legend() for ax in fig.axes)  # none on the panels
    keys = [("gan", 1), ("gan", 0), ("nsgan", 1), ("nsgan", 0)]  # the default config: 0
    keys += [(v, 0) for v in VARIANTS if v not in ("gan", "nsgan")]
    want = [style(v, i) for v, i in keys]
    assert len({(w["color"], str(w["linestyle"])) for w in want}) == len(want)  # all distinct
    for label, handle, w in zip(labels, legend.legend_handles, want):
        assert (handle.get_color(), handle.get_marker()) == (w["color"], w["marker"]), label
    assert labels[4:6] == ["LSGAN", "Hinge GAN"]  # registry order
    assert labels[-1] == list(VARIANTS.values())[-1].label


def test_every_variant_has_its_own_colour_and_line_style():
    looks = [(style(v)["color"], style(v)["linestyle"]) for v in VARIANTS]
    looks += [(style(v)["color"], style(v)["linestyle"]) for v in REFERENCES]
    assert len(set(looks)) == len(looks)
    assert style("gan") == style("gan")  # a pure function of the key
    assert style("nsgan", 1)["color"] == style("nsgan")["color"]
    assert style("nsgan", 1)["linestyle"] not in {style(v)["linestyle"] for v in VARIANTS}
    assert style("not_registered") == style("not_registered")


def test_landscapes_only_where_d_judges_one_sample(zoo):
    drawn, _ = zoo
    fig, _ = drawn["landscape_ring8"]
    titles = {ax.get_title().split(" (seed")[0] for ax in fig.axes}
    judged = {VARIANTS[v].label for v in VARIANTS if VARIANTS[v].landscape}
    assert {"GAN (lr=0.001)", "GAN (lr=default)", "EBGAN"} <= titles
    assert titles - {"GAN (lr=0.001)", "GAN (lr=default)", "NS-GAN (lr=0.001)",
                     "NS-GAN (lr=default)"} == judged - {"GAN", "NS-GAN"}  # fmt: skip
    for gone in ("MBD", "BiGAN", "BiGAN-PGP", "VEEGAN", "GMMN"):
        assert gone not in titles
    assert "EBGAN, EBGAN-PT: energy negated" in fig._suptitle.get_text()
    energy = np.arange(4.0).reshape(2, 2)
    assert np.array_equal(figures.realness("ebgan", energy), -energy)
    assert np.array_equal(figures.realness("wgan", energy), energy)


def test_summary_heatmap_orders_rows_by_mean_rank_and_leads_the_readme(zoo):
    drawn, readme = zoo
    fig, _ = drawn[figures.SUMMARY_STEM]
    heat = [ax for ax in fig.axes if ax.get_images()]
    assert [ax.get_title() for ax in heat] == ["modes covered / K ↑", "HQ % ↑",
                                               "KL(gen ‖ true) ↓"]  # fmt: skip
    labels = [t.get_text() for t in heat[0].get_yticklabels()]
    assert len(labels) == len(VARIANTS) + len(REFERENCES) + len(EXTRA_SETTINGS)
    ranks = [float(t.rsplit("(", 1)[1].rstrip(")")) for t in labels[: -len(REFERENCES)]]
    assert ranks == sorted(ranks)
    assert labels[-len(REFERENCES) :] == [r.label for r in REFERENCES.values()]
    cells = [t.get_text() for t in heat[1].texts]
    assert len(cells) == len(labels) * len(TOY_CORE)
    assert all("\n[" in c for c in cells)  # estimate over its interval
    heatmap = readme.index(f"figures/{figures.SUMMARY_STEM}.png")
    assert heatmap < readme.index("## Headline tables") < readme.index("figures/samples_")


def test_readme_leads_with_the_paper_table_per_dataset_the_ranks_and_the_histograms(zoo):
    # Issue 12: the protocol, then one modes / HQ / KL table per dataset (reference rows
    # under a rule), the rank table across the sets, the imbalanced sets' mode histograms,
    # and only then the heatmap and the rest.
    _, readme = zoo
    heads = [readme.index(f"#### {dataset_label(d)}\n") for d in TOY_CORE]
    assert heads == sorted(heads) and readme.index("## Protocol") < heads[0]
    ranks = readme.index("## Mean rank across datasets")
    hists = [readme.index(f"figures/modes_{d}.png") for d in TOY_CORE if "imbalanced" in d
             or d == "heavy_center"]  # fmt: skip
    assert hists and heads[-1] < ranks < min(hists)
    assert max(hists) < readme.index(f"figures/{figures.SUMMARY_STEM}.png")
    assert readme.count("figures/modes_") == len(hists)  # shown once, not again under Figures
    for start, end in zip(heads, [*heads[1:], ranks]):
        block = readme[start:end]
        header = block.splitlines()[2]
        assert header.count("|") == 5 and "modes" in header and "HQ" in header, header
        rows = [ln for ln in block.splitlines() if ln.startswith("| ")]
        labels = [ln.split("|")[1].strip() for ln in rows[1:]]
        rule = labels.index("*reference samplers*")
        assert all("(reference)" in lab for lab in labels[rule + 1 :])
        assert not any("(reference)" in lab for lab in labels[:rule])


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


def test_final_samples_are_kept_in_low_dimension_only(outputs):
    out = outputs[0]
    many = type(out)(**{**out.__dict__, "samples": torch.zeros(2, 3_000, 2)})
    assert sample_arrays(many)["samples"].shape == (2, store_mod.MAX_SAMPLES_PER_SEED, 2)
    big = type(out)(**{**out.__dict__, "samples": torch.zeros(2, 2_500, 1_200)})
    assert sample_arrays(big)["samples"].shape == (2, 0, 1_200)
    assert store_mod.samples_kept(2_500, store_mod.MAX_SAMPLE_DIM) == 2_500
    assert store_mod.samples_kept(2_500, store_mod.MAX_SAMPLE_DIM + 1) == 0


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
    real_write = store_mod.atomic_write

    def write(path, content):
        order.append(path.parent.name if path.parent.name == SAMPLES else path.name)
        return real_write(path, content)

    monkeypatch.setattr(store_mod, "atomic_write", write)
    with Store(tmp_path) as store:
        store.commit(outputs[0], commit="x")
    assert order == [SAMPLES, "trajectory.csv", RUNS]


def test_killed_commit_leaves_samples_that_readers_ignore_and_resume_merges(tmp_path, monkeypatch):
    cfg = RunConfig(dataset="ring8", variant="gan", seeds=(0, 1), **TINY)
    first = train(cfg)
    later = train(RunConfig(dataset="ring8", variant="gan", seeds=(2,), **TINY))
    orphan = train(RunConfig(dataset="ring8", variant="gan", seeds=(5,), **TINY))
    real_write = store_mod.atomic_write

    def killed_before_runs(path, text):
        if path.name == RUNS:
            raise KeyboardInterrupt
        real_write(path, text)

    with Store(tmp_path) as store:
        store.commit(first, commit="x")
        monkeypatch.setattr(store_mod, "atomic_write", killed_before_runs)
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
