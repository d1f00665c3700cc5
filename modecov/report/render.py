"""A table as data (rows of cells with estimates and intervals) and its three renderings:
Markdown, LaTeX (booktabs) and a tidy CSV with one line per cell."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field

import pandas as pd

LATEX_PREAMBLE = r"\usepackage{booktabs} \usepackage{graphicx}"
"""What a document needs to \\input the .tex tables."""


@dataclass(frozen=True)
class Cell:
    """One number of a table with its interval and display text."""

    estimate: float
    low: float = math.nan
    high: float = math.nan
    n: int = 0
    """Seeds (or datasets, for ranks) behind the number."""
    text: str = ""
    bold: bool = False


@dataclass(frozen=True)
class Column:
    """A column: its CSV key, its display label and an optional group spanning columns."""

    key: str
    label: str
    group: str = ""


@dataclass
class Row:
    """A row: CSV key, display label, reference (set apart below a rule) and cells."""

    key: str
    label: str
    reference: bool
    cells: list[Cell | None]


@dataclass
class Table:
    """A table ready to render; ``caption`` carries the protocol."""

    name: str
    """File stem under tables/."""
    title: str
    columns: list[Column]
    rows: list[Row]
    caption: str
    corner: str = "variant"
    notes: list[str] = field(default_factory=list)


def fmt(x: float) -> str:
    """Three significant figures (whole numbers from 1000 up); an en dash when missing."""
    if not math.isfinite(x):
        return "–"
    if abs(x) >= 1000:
        return f"{x:.0f}"
    text = f"{x:.3g}"
    return "0" if text == "-0" else text


def bold_best(rows: list[Row], higher: bool) -> None:
    """Bold the best non-reference estimate of every column (ties: all of them)."""
    n_cols = max((len(r.cells) for r in rows), default=0)
    for j in range(n_cols):
        vals = [
            r.cells[j].estimate
            for r in rows
            if not r.reference and r.cells[j] is not None and math.isfinite(r.cells[j].estimate)
        ]
        if not vals:
            continue
        best = max(vals) if higher else min(vals)
        for r in rows:
            c = r.cells[j]
            if not r.reference and c is not None and c.estimate == best:
                r.cells[j] = Cell(c.estimate, c.low, c.high, c.n, c.text, bold=True)


def markdown(t: Table) -> str:
    """GitHub Markdown: a heading, the table, the reference rows after a divider row, the
    protocol as a footer."""
    labels = [f"{c.group} {c.label}".strip() for c in t.columns]
    lines = [
        f"### {t.title}",
        "",
        f"| {t.corner} | " + " | ".join(labels) + " |",
        "|---|" + "---|" * len(labels),
    ]
    refs_started = False
    for r in t.rows:
        if r.reference and not refs_started:
            refs_started = True
            lines.append("| *reference samplers* |" + " |" * len(labels))
        label = f"*{r.label}* (reference)" if r.reference else r.label
        cells = ["" if c is None else (f"**{c.text}**" if c.bold else c.text) for c in r.cells]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += ["", t.caption, *(f"\n{n}" for n in t.notes), ""]
    return "\n".join(lines)


_TEX_ESCAPES = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "↑": r"$\uparrow$",
    "↓": r"$\downarrow$",
    "±": r"$\pm$",
    "–": "--",
    "—": "---",
    "²": r"\textsuperscript{2}",
    "≥": r"$\geq$",
    "≤": r"$\leq$",
    "×": r"$\times$",
}


def tex_escape(text: str) -> str:
    """Escape LaTeX specials and map the few Unicode symbols the tables use."""
    return "".join(_TEX_ESCAPES.get(ch, ch) for ch in text)


def latex(t: Table) -> str:
    """A booktabs table float that compiles as is (needs ``LATEX_PREAMBLE``); wide tables
    shrink to the line width, narrow ones keep their natural size."""
    n = len(t.columns)
    out = [
        f"% modecov table {t.name}; needs {LATEX_PREAMBLE}",
        r"\begin{table}[tbp]",
        r"\centering",
        rf"\caption{{{tex_escape(t.title)}. {tex_escape(t.caption)}}}",
        rf"\label{{tab:modecov-{t.name.replace('_', '-')}}}",
        r"\resizebox{\ifdim\width>\linewidth\linewidth\else\width\fi}{!}{%",
        r"\begin{tabular}{l" + "c" * n + "}",
        r"\toprule",
    ]
    groups = _spans([c.group for c in t.columns])
    if any(g for g, _, _ in groups):
        heads, rules = [], []
        for g, start, stop in groups:
            width = stop - start
            heads.append(rf"\multicolumn{{{width}}}{{c}}{{{tex_escape(g)}}}" if g else "")
            if g:
                rules.append(rf"\cmidrule(lr){{{start + 2}-{stop + 1}}}")
        out.append(" & " + " & ".join(heads) + r" \\")
        out.append(" ".join(rules))
    out.append(
        " & ".join([tex_escape(t.corner), *(tex_escape(c.label) for c in t.columns)]) + r" \\"
    )
    out.append(r"\midrule")
    refs_started = False
    for r in t.rows:
        if r.reference and not refs_started:
            refs_started = True
            out.append(r"\midrule")
        label = rf"\textit{{{tex_escape(r.label)}}}" if r.reference else tex_escape(r.label)
        cells = []
        for c in r.cells:
            text = "" if c is None else tex_escape(c.text)
            cells.append(rf"\textbf{{{text}}}" if c is not None and c.bold else text)
        out.append(" & ".join([label, *cells]) + r" \\")
    out += [r"\bottomrule", r"\end{tabular}}", r"\end{table}", ""]
    return "\n".join(out)


def _spans(groups: list[str]) -> list[tuple[str, int, int]]:
    """Runs of equal consecutive group names as (name, start, stop)."""
    spans: list[tuple[str, int, int]] = []
    for j, g in enumerate(groups):
        if spans and spans[-1][0] == g:
            spans[-1] = (g, spans[-1][1], j + 1)
        else:
            spans.append((g, j, j + 1))
    return spans


def csv(t: Table) -> str:
    """Tidy CSV: one line per cell (row, column, estimate, interval, n, bold), full precision."""
    records = []
    for r in t.rows:
        for c, cell in zip(t.columns, r.cells):
            if cell is None:
                continue
            records.append(
                {
                    "row": r.key,
                    "reference": r.reference,
                    "group": c.group,
                    "column": c.key,
                    "estimate": cell.estimate,
                    "low": cell.low,
                    "high": cell.high,
                    "n": cell.n,
                    "best": cell.bold,
                    "text": cell.text,
                }
            )
    cols = ["row", "reference", "group", "column", "estimate", "low", "high", "n", "best", "text"]
    buf = io.StringIO()
    pd.DataFrame(records, columns=cols).to_csv(buf, index=False, lineterminator="\n")
    return buf.getvalue()
