"""One-off migration of the committed stores to the metric versions of 2026-11-30.

Two metric definitions changed (DESIGN §6): ``kl_true_gen`` gained an off-mode bin and
``mode_score`` is now IS · exp(−KL(p(k) ‖ w)). Neither needs retraining: both are functions
of the final evaluation samples, which every store keeps (``samples/<config_id>.npz``: all
2,500 final samples per seed on the 2-D sets, exactly the float32 values that were scored).
For every group of a trained variant whose implementation did not change this script

1. re-scores the stored final samples with the current samples metrics and checks that
   every output whose definition did not change (modes covered, HQ fraction, KL(p̂ ‖ w),
   JSD, IS, normalised IS, Fréchet distance) equals the stored value to 1e-9: the proof
   that the stored samples are the ones that were scored;
2. replaces the final ``kl_true_gen`` and ``mode_score`` by the re-scored values;
3. rewrites the trajectory's ``kl_true_gen`` exactly: with n_HQ = hq_fraction · N, the old
   value was Σ w log w − Σ w log(c + ½) + log(n_HQ + K/2) and the new one is the same with
   log(N + (K + 1)/2) as the last term, so new = old − log(n_HQ + K/2) + log(N + (K+1)/2)
   (checked against the re-scored final value at the last snapshot);
4. records the current ``variant_version`` and ``metric_versions``.

Rows of variants whose update rule changed (their version is above 1) and of the
reference samplers are left without versions: they are stale, and
``modecov run --suite NAME --rerun-stale`` re-runs exactly them afterwards.

Usage: ``python scripts/migrate_metrics_v2.py results/default results/validation ...``
"""

from __future__ import annotations

import dataclasses
import math
import sys
from pathlib import Path

import numpy as np
import torch

from modecov.config import suite
from modecov.data import DATASETS
from modecov.metrics import score_samples
from modecov.store import (
    RUNS,
    TRAJECTORY,
    Store,
    atomic_write,
    column_order,
    implementation,
    read_samples,
)
from modecov.train import real_reference

UNCHANGED = (
    "modes_covered",
    "modes_covered_frac",
    "modes_balanced",
    "hq_fraction",
    "kl_gen_true",
    "mode_jsd",
    "inception_score",
    "inception_score_norm",
    "frechet_distance",
)
RESCORED = ("kl_true_gen", "mode_score")


def _close(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


def migrate(root: Path) -> None:
    with Store(root) as store:
        runs = store.runs()
        traj = store.trajectory()
    runs["config_id"] = runs["config_id"].astype(str)
    traj["config_id"] = traj["config_id"].astype(str)
    name = root.name
    configs = {c.config_id: c for c in suite(name)}
    for col in ("variant_version", "metric_versions"):
        if col not in runs.columns:
            runs[col] = None
    runs["variant_version"] = runs["variant_version"].astype(object)
    runs["metric_versions"] = runs["metric_versions"].astype(object)
    migrated = 0
    for config_id, rows in runs.groupby("config_id"):
        cfg = configs.get(config_id)
        if cfg is None:
            raise SystemExit(f"{root}: config {config_id} is not in suite {name!r}")
        if cfg.is_reference or cfg.spec.version != 1:
            continue  # re-run by --rerun-stale
        seeds = tuple(int(s) for s in rows["seed"])
        arrays = read_samples(root, config_id, set(seeds))
        if arrays is None or sorted(arrays["seeds"].tolist()) != sorted(seeds):
            raise SystemExit(f"{root}: samples of {config_id} missing")
        if arrays["samples"].shape[1] != cfg.n_eval:
            raise SystemExit(f"{root}: {config_id} stores fewer samples than were scored")
        cfg = dataclasses.replace(cfg, seeds=tuple(int(s) for s in arrays["seeds"]))
        data = DATASETS[cfg.dataset]
        fake = torch.from_numpy(arrays["samples"]).to(getattr(torch, cfg.dtype))
        real = real_reference(cfg, data, cfg.n_eval)
        scores = score_samples(fake=fake, real=real, data=data)
        n, k = cfg.n_eval, data.n_modes
        for s, seed in enumerate(cfg.seeds):
            idx = rows.index[rows["seed"] == seed][0]
            for key in UNCHANGED:
                stored, now = float(runs.at[idx, key]), float(scores[key][s])
                if not _close(stored, now):
                    raise SystemExit(
                        f"{root}: {config_id} seed {seed} {key} stored {stored!r}, "
                        f"re-scored {now!r}: the stored samples are not the scored ones"
                    )
            for key in RESCORED:
                runs.at[idx, key] = float(scores[key][s])
            mine = (traj["config_id"] == config_id) & (traj["seed"] == seed)
            hq = traj[mine & (traj["metric"] == "hq_fraction")].set_index("step")["value"]
            sel = mine & (traj["metric"] == "kl_true_gen")
            steps = traj.loc[sel, "step"]
            n_hq = hq.loc[steps].to_numpy() * n
            shift = -np.log(n_hq + 0.5 * k) + math.log(n + 0.5 * (k + 1))
            traj.loc[sel, "value"] = traj.loc[sel, "value"].to_numpy() + shift
            last = traj.loc[sel].sort_values("step")["value"].iloc[-1]
            if not _close(float(last), float(scores["kl_true_gen"][s])):
                raise SystemExit(
                    f"{root}: {config_id} seed {seed} trajectory kl_true_gen "
                    f"{last!r} != re-scored {float(scores['kl_true_gen'][s])!r}"
                )
            for key, value in implementation(cfg).items():
                runs.at[idx, key] = value
            migrated += 1
    with Store(root):
        atomic_write(root / TRAJECTORY, traj.to_csv(index=False))
        atomic_write(root / RUNS, runs[column_order(runs)].to_csv(index=False))
    left = len(runs) - migrated
    print(f"{root}: {migrated} rows re-scored; {left} rows left stale for --rerun-stale")


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        migrate(Path(arg))
