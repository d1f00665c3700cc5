"""One-off: replace stale groups of committed stores by the same groups from another store,
trained by the current code.

Used twice on 2026-11-30:

- MBD version 2. The committed MBD groups of ``results/default`` (ring8) and
  ``results/validation`` (grid25) were trained at 29b536b and 73bae40; MBD's minibatch layer
  was rewritten since without a version bump, and a re-run of those configs gave other
  samples. The four-set run (``results/core``) had trained every MBD group with the
  current code.
- Version 2 of gan, nsgan, lsgan, hinge, wgan, msgan, ebgan, ebgan_pt, sngan and bigan. The
  finished four-set run re-trained their ring8 and grid25 groups, and none of them equals the
  committed group trained at 29b536b or 73bae40 (the shared training code changed their
  float32 rounding since, without a bump; the groups stored at 8e85f9d or later re-run
  bitwise). The four-set store is the new ``results/default``; this script relabels its rows
  and copies the groups that ``validation`` shares with it (the others were re-run).

What it does, for the ``--variants`` given:

1. relabels their rows in the source store with each variant's current version, after
   checking that the package (``modecov/``) differs from the commit recorded in those rows
   by version lines and comments only (the code that computed them is the code that is now
   the new version);
2. copies each of their groups whose config_id a target's suite holds into that target:
   runs.csv rows, trajectory.csv rows and samples/<config_id>.npz replace the target's (the
   config_ids are equal, so the groups are the same configs).

Usage: ``python scripts/adopt_groups.py SOURCE TARGET... --variants mbd``
"""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

import pandas as pd

from modecov.config import suite
from modecov.store import RUNS, SAMPLES, TRAJECTORY, Store, atomic_write, column_order
from modecov.variants import VARIANTS

PACKAGE = "modecov"


def _only_versions_changed(commit: str) -> bool:
    """Whether the package differs from ``commit`` by version lines and comments only: then
    the code that computed rows at ``commit`` is the current versions'."""
    rev = commit.removesuffix("+dirty")
    body = subprocess.run(["git", "diff", "-U0", rev, "--", PACKAGE], check=True,
                          capture_output=True, text=True).stdout  # fmt: skip
    changed = [ln for ln in body.splitlines() if ln[:1] in "+-" and ln[:3] not in ("+++", "---")]
    return all(ln[1:].strip().startswith("#") or "version=" in ln for ln in changed)


def main(source: Path, targets: list[Path], variants: list[str]) -> None:
    with Store(source) as store:
        runs = store.runs()
    runs["config_id"] = runs["config_id"].astype(str)
    mine = runs["variant"].isin(variants)
    for commit in set(runs.loc[mine, "git_commit"]):
        if commit.endswith("+dirty") or not _only_versions_changed(commit):
            raise SystemExit(f"{PACKAGE}/ changed since {commit}: re-run instead")
    versions = {v: VARIANTS[v].version for v in variants}
    runs.loc[mine, "variant_version"] = runs.loc[mine, "variant"].map(versions)
    with Store(source):
        atomic_write(source / RUNS, runs[column_order(runs)].to_csv(index=False))
    traj = pd.read_csv(source / TRAJECTORY, dtype={"config_id": str})
    ids = set(runs.loc[mine, "config_id"])
    print(f"{source}: {mine.sum()} rows of {', '.join(variants)} relabelled")
    for target in targets:
        wanted = {c.config_id for c in suite(target.name)} & ids
        with Store(target) as store:
            t_runs = store.runs()
        t_runs["config_id"] = t_runs["config_id"].astype(str)
        t_traj = pd.read_csv(target / TRAJECTORY, dtype={"config_id": str})
        t_runs = pd.concat([t_runs[~t_runs["config_id"].isin(wanted)],
                            runs[runs["config_id"].isin(wanted)]], ignore_index=True)  # fmt: skip
        t_traj = pd.concat([t_traj[~t_traj["config_id"].isin(wanted)],
                            traj[traj["config_id"].isin(wanted)]], ignore_index=True)  # fmt: skip
        t_runs = t_runs.sort_values(["config_id", "seed"], kind="stable")
        t_traj = t_traj.sort_values(["config_id", "seed", "metric", "step"], kind="stable")
        with Store(target):
            for cid in sorted(wanted):
                src = source / SAMPLES / f"{cid}.npz"
                atomic_write(target / SAMPLES / f"{cid}.npz", src.read_bytes())
            atomic_write(target / TRAJECTORY, t_traj.to_csv(index=False))
            atomic_write(target / RUNS, t_runs[column_order(t_runs)].to_csv(index=False))
        print(f"{target}: {len(wanted)} groups replaced")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python scripts/adopt_groups.py")
    parser.add_argument("source", type=Path)
    parser.add_argument("targets", type=Path, nargs="*")
    parser.add_argument("--variants", required=True, help="comma-separated variant names")
    args = parser.parse_args()
    main(args.source, args.targets, args.variants.split(","))
