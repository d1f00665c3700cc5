"""DIR/README.md: the headline tables, the figures and the protocol of one results store,
so that committed results read as a short paper section."""

from __future__ import annotations

from pathlib import Path

from modecov.errors import StoreError
from modecov.report.render import Column, Row, Table, markdown
from modecov.store import Store
from modecov.variants import VARIANTS

HEADLINE_TABLES = ("paper", "ranks", "poi_hq_fraction", "poi_modes_covered")
LEAD_TABLES = ("paper", "ranks")
"""The tables a README opens with, before the summary heatmap: what a paper cites."""
SUMMARY_FIGURE = "summary_heatmap"
"""The first figure after the lead tables and the mode histograms: every cell at a glance."""
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


def per_group(t: Table) -> list[Table]:
    """One table per column group (the paper table's datasets), each with the rows that
    have a cell in it and the group as its title; a table without groups is itself."""
    groups = list(dict.fromkeys(c.group for c in t.columns))
    if groups == [""]:
        return [t]
    out = []
    for g in groups:
        idx = [j for j, c in enumerate(t.columns) if c.group == g]
        rows = [Row(r.key, r.label, r.reference, [r.cells[j] for j in idx]) for r in t.rows]
        rows = [r for r in rows if any(c is not None for c in r.cells)]
        columns = [Column(t.columns[j].key, t.columns[j].label) for j in idx]
        out.append(Table(t.name, g, columns, rows, "", t.corner))
    return out


def _table_text(t: Table, caption: str, heading: str = "####") -> str:
    """A table's Markdown under a heading of the given depth, without the protocol (stated
    once under Protocol) and without an empty footer."""
    text = markdown(t).replace("### ", f"{heading} ", 1)
    text = text.replace(f"{caption} ", "").replace(f"\n{caption}\n", "\n")
    return text.rstrip() + "\n"


def _figures(pngs: list[Path], kind: str) -> list[str]:
    return [f"![{p.stem}](figures/{p.name})" for p in pngs if p.stem.startswith(f"{kind}_")]


def readme(
    root: Path, tables: list[Table], figures: list[Path], notes: list[str], caption: str
) -> str:
    """The README text of the store at ``root``: the protocol, then what a paper cites (the
    mode-coverage table per dataset, the mean ranks across datasets, the imbalanced sets'
    mode histograms), then the summary heatmap, the other tables and the figures."""
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
    by_name = {t.name: t for t in tables}
    pngs = [p for p in figures if p.suffix == ".png"]
    if "paper" in by_name:
        paper = by_name["paper"]
        lines += ["", f"## {paper.title}", ""]
        lines += [
            "Per dataset: the estimate over seeds and its interval (as under Protocol), bold "
            "the best trained variant, the reference samplers below the rule.",
            "",
        ]
        for t in per_group(paper):
            lines += [_table_text(t, caption)]
    if "ranks" in by_name:
        lines += ["", _table_text(by_name["ranks"], caption, heading="##")]
    hist = _figures(pngs, "modes")
    if hist:
        lines += ["", f"## Imbalanced sets: {FIGURE_TITLES['modes'].lower()}", ""]
        lines += [
            "Each row's share of high-quality samples per mode (mean over seeds) against the "
            "true weights: where a variant that covers every mode still loses the light ones, "
            "or piles onto the heavy one.",
            "",
            *hist,
        ]
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
    rest = [n for n in HEADLINE_TABLES if n in by_name and n not in LEAD_TABLES]
    lines += ["", "## Headline tables", ""]
    for name in rest:
        lines += [_table_text(by_name[name], caption), ""]
    others = [t.name for t in tables if t.name not in HEADLINE_TABLES]
    lines += [
        "Every table is also in `tables/` as Markdown, LaTeX (booktabs) and CSV: "
        + ", ".join(f"[{n}](tables/{n}.md)" for n in [*HEADLINE_TABLES, *others] if n in by_name)
        + ".",
        "",
        "## Figures",
    ]
    for kind, title in FIGURE_TITLES.items():
        mine = _figures(pngs, kind)
        if not mine or (kind == "modes" and hist):
            continue
        lines += ["", f"### {title}", ""]
        if kind in FIGURE_CAPTIONS:
            lines += [_caption(kind), ""]
        lines += mine
    if notes:
        lines += ["", "Not drawn: " + "; ".join(notes) + "."]
    return "\n".join(lines) + "\n"
