"""results/validation.md's measured tables come from the stores alone: ring8 from the
default store, grid25 from the validation store, and ``--check`` catches a stale note."""

from __future__ import annotations

import pandas as pd
import pytest
from test_report import write_runs

from modecov.config import VALIDATION_VARIANTS
from modecov.report import validation

NOTE_TEXT = (
    f"# Validation\n\nprose before\n\n{validation.BEGIN}\nstale\n{validation.END}\n\nprose after\n"
)


@pytest.fixture
def results(tmp_path):
    """A results folder: ring8 in default/ (with a variant outside the validation set),
    grid25 in validation/, and a note with stale tables."""
    write_runs(tmp_path / "default", {
        ("ring8", "nsgan"): {"modes_covered": [8, 8, 7], "hq_fraction": [0.7, 0.6, 0.8],
                             "kl_gen_true": [0.01, 0.02, 0.03], "hop_tv": [0.1, 0.2, 0.3]},
        ("ring8", "veegan"): {"modes_covered": [3, 4, 5], "hq_fraction": [0.1, 0.2, 0.3],
                              "kl_gen_true": [0.5, 0.6, 0.7], "hop_tv": [0.3, 0.2, 0.1]},
        ("ring8", "lsgan"): {"modes_covered": [1, 1, 1], "hq_fraction": [0.9, 0.9, 0.9],
                             "kl_gen_true": [2.0, 2.0, 2.0], "hop_tv": [0.0, 0.0, 0.0]},
    })  # fmt: skip
    write_runs(tmp_path / "validation", {
        ("grid25", "nsgan"): {"modes_covered": [20, 22, 24], "hq_fraction": [0.05, 0.06, 0.07],
                              "kl_gen_true": [0.2, 0.3, 0.4], "hop_tv": [0.1, 0.1, 0.1]},
    })  # fmt: skip
    (tmp_path / "validation.md").write_text(NOTE_TEXT)
    return tmp_path


def test_runs_come_from_both_stores_and_only_the_validation_variants(results):
    runs = validation.validation_runs(results)
    groups = set(zip(runs["dataset"], runs["variant"]))
    assert groups == {("ring8", "nsgan"), ("ring8", "veegan"), ("grid25", "nsgan")}
    assert set(runs["variant"]) <= set(VALIDATION_VARIANTS)


def test_tables_hold_the_per_seed_means_and_leave_the_prose(results):
    assert validation.main(["--results", str(results)]) == 0
    text = (results / "validation.md").read_text()
    assert text.startswith("# Validation\n\nprose before\n\n")
    assert text.endswith(f"{validation.END}\n\nprose after\n")
    assert "stale" not in text
    # nsgan: 7.67 modes, 70% HQ on ring8; 22 modes, 6% HQ on grid25 (means of the seeds).
    nsgan = next(line for line in text.splitlines() if line.startswith("| NS-GAN |"))
    cells = [c.strip().strip("*") for c in nsgan.split("|")[2:-1]]
    assert cells[0].startswith("7.67 ") and cells[1].startswith("70 ")
    assert cells[3].startswith("22 ") and cells[4].startswith("6 ")
    assert "LSGAN" not in text
    assert "### hop_tv" in text


def test_check_passes_when_current_and_fails_when_stale(results, capsys):
    assert validation.main(["--results", str(results), "--check"]) == 1
    assert "out of date" in capsys.readouterr().err
    assert validation.main(["--results", str(results)]) == 0
    assert validation.main(["--results", str(results), "--check"]) == 0
    write_runs(results / "validation", {
        ("grid25", "gan"): {"modes_covered": [1, 2, 3], "hq_fraction": [0.1, 0.1, 0.1],
                            "kl_gen_true": [1.0, 1.0, 1.0], "hop_tv": [0.1, 0.1, 0.1]},
    })  # fmt: skip
    assert validation.main(["--results", str(results), "--check"]) == 1


def test_missing_store_or_markers_is_one_line_and_exit_2(results, capsys):
    (results / "validation.md").write_text("# no markers\n")
    assert validation.main(["--results", str(results)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "markers" in err
    (results / "validation.md").write_text(NOTE_TEXT)
    (results / "validation" / "runs.csv").unlink()
    assert validation.main(["--results", str(results)]) == 2
    assert "modecov run --suite validation" in capsys.readouterr().err
    assert pd.read_csv(results / "default" / "runs.csv").shape[0] == 9
