"""One-off migration of the committed stores to the metrics of issue 13 (kid, vendi,
vendi_norm, rke, ndb, ndb_jsd).

The new metrics are ``samples`` metrics: functions of the final evaluation samples, which
every store keeps (``samples/<config_id>.npz``: all 2,500 final samples per seed on the 2-D
sets, exactly the float32 values that were scored). So no group needs retraining to gain
them. For every group of a trained variant whose implementation is current and whose
stored ``metric_versions`` differ from the code's only by metrics that are absent from the
row (added since) and are ``samples`` metrics, this script

1. re-scores the stored final samples with every current samples metric and checks that
   each output the row already holds equals the stored value to 1e-9: the proof that the
   stored samples are the ones that were scored and that no stored metric changed;
2. writes the new metrics' outputs;
3. records the current ``metric_versions``.

Rows it cannot migrate (reference samplers, whose stored samples are float32 copies of
float64 draws; a stale variant; a changed metric) are left as they are: stale, and
``modecov run --suite NAME --rerun-stale`` re-runs exactly them afterwards.

Usage: ``python scripts/migrate_metrics_v3.py results/default results/validation ...``
"""

from __future__ import annotations

import dataclasses
import math
import sys
from pathlib import Path

import torch

from modecov.config import suite
from modecov.data import DATASETS
from modecov.metrics import METRICS, parse_versions, score_samples, versions
from modecov.store import RUNS, Store, atomic_write, column_order, read_samples
from modecov.train import real_reference


def _close(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


def migrate(root: Path) -> None:
    with Store(root) as store:
        runs = store.runs()
    runs["config_id"] = runs["config_id"].astype(str)
    configs = {c.config_id: c for c in suite(root.name)}
    current = parse_versions(versions())
    for spec in METRICS.values():
        for key in spec.outputs:
            if key not in runs.columns:
                runs[key] = math.nan
    migrated = 0
    for config_id, rows in runs.groupby("config_id"):
        cfg = configs.get(config_id)
        if cfg is None:
            raise SystemExit(f"{root}: config {config_id} is not in suite {root.name!r}")
        if cfg.is_reference or set(rows["variant_version"]) != {cfg.spec.version}:
            continue  # re-run by --rerun-stale
        stored = {text for text in rows["metric_versions"]}
        if len(stored) != 1:
            continue
        old = parse_versions(stored.pop())
        changed = {n for n in old if old[n] != current.get(n)}
        added = set(current) - set(old)
        if changed or any(METRICS[n].kind != "samples" for n in added):
            continue
        seeds = tuple(int(s) for s in rows["seed"])
        arrays = read_samples(root, config_id, set(seeds))
        if arrays is None or sorted(arrays["seeds"].tolist()) != sorted(seeds):
            raise SystemExit(f"{root}: samples of {config_id} missing")
        if arrays["samples"].shape[1] != cfg.n_eval:
            continue  # fewer samples stored than were scored: re-run
        cfg = dataclasses.replace(cfg, seeds=tuple(int(s) for s in arrays["seeds"]))
        data = DATASETS[cfg.dataset]
        fake = torch.from_numpy(arrays["samples"]).to(getattr(torch, cfg.dtype))
        scores = score_samples(fake=fake, real=real_reference(cfg, data, cfg.n_eval), data=data)
        new_keys = [k for n in sorted(added) for k in METRICS[n].outputs]
        for s, seed in enumerate(cfg.seeds):
            idx = rows.index[rows["seed"] == seed][0]
            for key, value in scores.items():
                if key in new_keys:
                    continue
                held, now = float(runs.at[idx, key]), float(value[s])
                if not _close(held, now):
                    raise SystemExit(
                        f"{root}: {config_id} seed {seed} {key} stored {held!r}, "
                        f"re-scored {now!r}: the stored samples are not the scored ones"
                    )
            for key in new_keys:
                runs.at[idx, key] = float(scores[key][s])
            runs.at[idx, "metric_versions"] = versions()
            migrated += 1
    with Store(root):
        atomic_write(root / RUNS, runs[column_order(runs)].to_csv(index=False))
    left = len(runs) - migrated
    print(f"{root}: {migrated} rows gained the new metrics; {left} left for --rerun-stale")


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        migrate(Path(arg))
