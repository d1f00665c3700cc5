"""DIR/README.md: the headline tables, the figures and the protocol of one results store,
so that committed results read as a short paper section."""

from __future__ import annotations

from pathlib import Path

from modecov.errors import StoreError
from modecov.report.render import Table, markdown
from modecov.store import Store
from modecov.variants import VARIANTS

HEADLINE_TABLES = ("paper", "ranks", "poi_hq_fraction", "poi_modes_covered")
SUMMARY_FIGURE = "summary_heatmap"
"""The figure shown first, right after the protocol: the whole comparison at a glance."""
FIGURE_TITLES = {
    "samples": "Generated samples over the true modes",
    "curves": "Metrics during training",
    "modes": "Mode histograms against the true weights",
    "landscape": "Discriminator landscapes",
}
FIGURE_CAPTIONS = {
    "samples": "First stored seed of each row, in the row's colour; true samples in grey, "
    "mode centres as crosses.",
    "curves": "Each row keeps one colour and line style in every figure.",
    "landscape": "D's output over the sample space at the end of training (first seed), "
    "red = judged real, blue = judged fake, centred on its median; EBGAN's energy (low = "
    "real) is negated to match. Drawn only where D judges one sample",
}


PROVENANCE = ("device_name", "torch_version", "modecov_version", "git_commit", "started_at",
              "finished_at")  # fmt: skip
"""Manifest fields a README names under its protocol."""


def provenance(man: dict) -> list[str]:
    """README lines naming the manifest's machine, versions and times (none when absent)."""
    prov = [f"{k.replace('_', ' ')}: {man[k]}" for k in PROVENANCE if k in man]
    return ["", "Provenance: " + "; ".join(prov) + "."] if prov else []


def _caption(kind: str) -> str:
    """The caption of a figure kind; the landscape's names the variants it leaves out."""
    text = FIGURE_CAPTIONS[kind]
    if kind != "landscape":
        return text
    without = [v.label for v in VARIANTS.values() if not v.landscape]
    if not without:
        return f"{text}."
    return f"{text}: not for {', '.join(without)} (D judges pairs or minibatches, or no D)."


def _manifest(root: Path) -> dict:
    try:
        return Store(root).manifest()
    except (OSError, StoreError):
        return {}


def readme(
    root: Path, tables: list[Table], figures: list[Path], notes: list[str], caption: str
) -> str:
    """The README text of the store at ``root``."""
    man = _manifest(root)
    suite = man.get("suite", root.name)
    lines = [
        f"# modecov results: {suite}",
        "",
        "Written by `modecov report` from the CSVs in this directory; do not edit by hand.",
        "",
        "## Protocol",
        "",
        caption,
    ]
    lines += provenance(man)
    pngs = [p for p in figures if p.suffix == ".png"]
    summary = [p for p in pngs if p.stem == SUMMARY_FIGURE]
    if summary:
        lines += [
            "",
            "## At a glance",
            "",
            "Modes covered (as a fraction of K), high-quality samples (%) and KL(gen ‖ true) "
            "of every variant on every dataset; each cell gives the estimate over seeds and "
            "its interval, rows run from the best mean rank to the worst, the reference "
            "samplers sit below the line, and brighter is better.",
            "",
            f"![{SUMMARY_FIGURE}](figures/{summary[0].name})",
        ]
    by_name = {t.name: t for t in tables}
    lines += ["", "## Headline tables", ""]
    for name in HEADLINE_TABLES:
        if name in by_name:
            text = markdown(by_name[name]).replace("### ", "#### ", 1)
            # The protocol is stated once above; a table keeps only its own notes.
            lines += [text.replace(f"{caption} ", "").replace(f"\n{caption}\n", "\n"), ""]
    others = [t.name for t in tables if t.name not in HEADLINE_TABLES]
    lines += [
        "Every table is also in `tables/` as Markdown, LaTeX (booktabs) and CSV: "
        + ", ".join(f"[{n}](tables/{n}.md)" for n in [*HEADLINE_TABLES, *others] if n in by_name)
        + ".",
        "",
        "## Figures",
    ]
    for kind, title in FIGURE_TITLES.items():
        mine = [p for p in pngs if p.stem.startswith(f"{kind}_")]
        if not mine:
            continue
        lines += ["", f"### {title}", ""]
        if kind in FIGURE_CAPTIONS:
            lines += [_caption(kind), ""]
        for p in mine:
            lines.append(f"![{p.stem}](figures/{p.name})")
    if notes:
        lines += ["", "Not drawn: " + "; ".join(notes) + "."]
    return "\n".join(lines) + "\n"
