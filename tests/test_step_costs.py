"""The committed table of training-step costs (``benchmarks/step_costs.md``, written by
``make perf``) lists every registered variant, so a new variant's cost is measured and its
``relative_cost`` set before it is committed."""

from __future__ import annotations

from pathlib import Path

from modecov.variants import VARIANTS

TABLE = Path(__file__).resolve().parents[1] / "benchmarks" / "step_costs.md"


def table_rows() -> dict[str, float]:
    """Variant -> its step cost over NS-GAN's, from the table's rows."""
    rows = {}
    for line in TABLE.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] not in ("variant", "---"):
            rows[cells[0]] = float(cells[2])
    return rows


def test_the_table_lists_every_registered_variant():
    rows = table_rows()
    assert sorted(rows) == sorted(VARIANTS), "re-run `make perf` to measure every variant"
    assert rows["nsgan"] == 1.0
