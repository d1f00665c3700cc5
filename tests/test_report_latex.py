"""The report's LaTeX tables compile as they are: one document with booktabs and graphicx
\\input-s every .tex table of a store and pdflatex must finish without an error."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modecov import report
from modecov.config import RunConfig
from modecov.report.render import LATEX_PREAMBLE, Cell, Column, Row, Table, latex
from modecov.store import RUNS

PDFLATEX = shutil.which("pdflatex")


@pytest.fixture(scope="module")
def pdflatex() -> str:
    if PDFLATEX is None:
        if os.environ.get("CI"):
            pytest.fail("pdflatex is missing: .ci/run installs texlive-latex-recommended")
        pytest.skip("pdflatex is not installed (apt-get install texlive-latex-recommended)")
    return PDFLATEX


def store(root: Path) -> None:
    """Runs of every paper metric on three datasets, two configs of one variant (rows with a
    setting such as lr=0.001), NaNs and the reference samplers."""
    rng = np.random.default_rng(0)
    rows = []
    metrics = ["modes_covered", "hq_fraction", "kl_gen_true", "kl_true_gen", "frechet_distance"]
    for dataset in ("ring8", "grid25_imbalanced", "spiral"):
        for variant, lr in [("gan", None), ("nsgan", 1e-3), ("nsgan", 2e-4), ("wgan_gp", None),
                            ("true_sampler", None), ("one_mode", None)]:  # fmt: skip
            cfg = RunConfig(dataset=dataset, variant=variant, seeds=(0, 1, 2), lr=lr)
            for s in cfg.seeds:
                row = {"config_id": cfg.config_id, "seed": s, **cfg.canonical(), "status": "ok"}
                row.update({m: rng.normal(1, 0.3) for m in metrics})
                row["kl_gen_true"] = np.nan if variant == "wgan_gp" else row["kl_gen_true"]
                rows.append(row)
    root.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(root / RUNS, index=False)


def compile_document(pdflatex: str, folder: Path, inputs: list[str]) -> str:
    """pdflatex a document that \\input-s ``inputs``; returns the log, fails on an error."""
    body = "\n".join(rf"\input{{{name}}}" + "\n\\clearpage" for name in inputs)
    (folder / "doc.tex").write_text(
        "\\documentclass{article}\n" + LATEX_PREAMBLE + "\n\\begin{document}\n" + body
        + "\n\\end{document}\n"
    )  # fmt: skip
    proc = subprocess.run(
        [pdflatex, "-interaction=nonstopmode", "-halt-on-error", "doc.tex"],
        cwd=folder, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    log = (folder / "doc.log").read_text(errors="replace") if (folder / "doc.log").exists() else ""
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert (folder / "doc.pdf").stat().st_size > 1000
    return log


def test_every_latex_table_of_a_report_compiles(pdflatex, tmp_path):
    root = tmp_path / "store"
    store(root)
    # GAN as the baseline: it has one config per dataset, so both NS-GAN rows compare with it.
    report.build(root, figures=False, baseline="gan")
    names = sorted(p.stem for p in (root / "tables").glob("*.tex"))
    assert {"paper", "ranks", "poi_hq_fraction", "hq_fraction"} <= set(names)
    tex = (root / "tables" / "paper.tex").read_text()
    assert r"\toprule" in tex and r"\bottomrule" in tex and r"\cmidrule(lr)" in tex
    assert "NS-GAN (lr=0.001)" in tex and "NS-GAN (lr=0.0002)" in tex
    # An extra table with every character that LaTeX treats specially.
    odd = Table(
        "odd", "Specials: 50% & $5 #1 a_b {x} ~ ^ \\ – — ± ↑ ↓ ≥ ≤ ×",
        [Column("a", "a_b %", "group & co")],
        [Row("r", "row_1 & #2", False, [Cell(1.0, text="1 ± 0.1")])],
        "caption with 95% and under_score",
    )  # fmt: skip
    (root / "tables" / "odd.tex").write_text(latex(odd))
    log = compile_document(pdflatex, root / "tables", [*names, "odd"])
    assert "Undefined control sequence" not in log
    assert "Missing character" not in log
