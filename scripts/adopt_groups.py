"""One-off: replace stale groups of committed stores by the same groups from another store,
trained by the current code (2026-11-30, MBD version 2).

The committed MBD groups of ``results/default`` (ring8) and ``results/validation`` (grid25)
were trained at 29b536b and 73bae40; MBD's minibatch layer was rewritten since without a
version bump, and a re-run of those configs at the current code gives other samples. The
four-set run (``results/core``) trained every MBD group with the current code. This script

1. relabels the MBD rows of the source store with the current MBD version, after checking
   that ``modecov/variants/mbd.py`` is unchanged since the commit recorded in those rows
   (the code that computed them is the code that is now version 2);
2. copies each MBD group of the source whose config_id a target's suite holds into that
   target: runs.csv rows, trajectory.csv rows and samples/<config_id>.npz replace the
   target's (the config_ids are equal, so the groups are the same configs).

Usage: ``python scripts/adopt_groups.py results/core results/default results/validation``
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd

from modecov.config import suite
from modecov.store import RUNS, SAMPLES, TRAJECTORY, Store, atomic_write, column_order
from modecov.variants import VARIANTS

VARIANT = "mbd"
SOURCE_FILE = "modecov/variants/mbd.py"


def _only_the_version_changed(commit: str) -> bool:
    """Whether mbd.py differs from ``commit`` by added lines only (the version and its
    comment): then the code that computed rows at ``commit`` is the current version's."""
    rev = commit.removesuffix("+dirty")
    body = subprocess.run(["git", "diff", "-U0", rev, "--", SOURCE_FILE], check=True,
                          capture_output=True, text=True).stdout  # fmt: skip
    changed = [ln for ln in body.splitlines() if ln[:1] in "+-" and ln[:3] not in ("+++", "---")]
    return all(ln.startswith("+") and (ln[1:].strip().startswith("#") or "version=" in ln)
               for ln in changed)  # fmt: skip


def main(source: Path, targets: list[Path]) -> None:
    version = VARIANTS[VARIANT].version
    with Store(source) as store:
        runs = store.runs()
    runs["config_id"] = runs["config_id"].astype(str)
    mine = runs["variant"] == VARIANT
    for commit in set(runs.loc[mine, "git_commit"]):
        if not _only_the_version_changed(commit):
            raise SystemExit(f"{SOURCE_FILE} changed since {commit}: re-run instead")
    runs.loc[mine, "variant_version"] = version
    with Store(source):
        atomic_write(source / RUNS, runs[column_order(runs)].to_csv(index=False))
    traj = pd.read_csv(source / TRAJECTORY, dtype={"config_id": str})
    ids = set(runs.loc[mine, "config_id"])
    print(f"{source}: {mine.sum()} {VARIANT} rows relabelled version {version}")
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
        print(f"{target}: {len(wanted)} {VARIANT} groups replaced")


if __name__ == "__main__":
    main(Path(sys.argv[1]), [Path(a) for a in sys.argv[2:]])
