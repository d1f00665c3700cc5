"""The results store: the only writer of results/<suite>/ (runs, trajectory, manifest), its
public readers, and ``atomic_write``, the one way modecov replaces a file.

A group's rows are committed only when the group finishes: each file is rewritten by
``atomic_write`` (a temporary file, fsynced, renamed over the old one, the directory
fsynced), so a run killed at any moment leaves complete rows only. ``runs.csv`` is the
commit record: the final samples (``samples/<config_id>.npz``) and the trajectory are
written first, and trajectory rows or sample seeds whose (config_id, seed) has no run row
are dropped on the next commit and by readers. Which final samples are kept is decided here
alone (``samples_kept``); the backends ask before sending outputs back.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import math
import os
import platform
import secrets
import subprocess
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch

import modecov
from modecov.classifiers.digits import classifier_hash
from modecov.config import RunConfig
from modecov.data import DATASETS
from modecov.errors import StoreError
from modecov.metrics import parse_versions, sample_caps
from modecov.metrics import versions as metric_versions

if TYPE_CHECKING:
    from modecov.train import TrainOutput  # annotations only: the store does not need the trainer

RUNS = "runs.csv"
TRAJECTORY = "trajectory.csv"
MANIFEST = "manifest.json"
KEY = ["config_id", "seed"]
TRAJECTORY_COLUMNS = ["config_id", "seed", "step", "metric", "value"]
RUN_INFO = ["status", "diverged_step", "wall_time", "group_size", "device"]
IMPLEMENTATION = ["variant_version", "metric_versions"]
"""Columns naming the implementations that computed a row: the version of its variant (or
reference sampler) and of every metric. A row whose values differ from the running code's
is stale: the store refuses to mix it with new rows unless asked to re-run it."""
PROVENANCE = [*IMPLEMENTATION, "modecov_version", "torch_version", "git_commit", "finished_at"]
SAMPLES = "samples"
"""Directory of ``<config_id>.npz``: per seed the final samples (float32), the final HQ
counts per mode and, for 2-D datasets with a discriminator, its output on a grid."""
MAX_SAMPLES_PER_SEED = 2_500
"""Final samples stored per seed, at most."""
MAX_SAMPLE_DIM = 3
"""Final samples are stored only for data of at most this dimension: the figures draw 2-D
sets, and high-dimensional samples would make the store large (and cost a worker's pipe)."""


def git_commit() -> str:
    """The commit of the modecov checkout, with ``+dirty`` when it has local changes."""
    here = Path(modecov.__file__).resolve().parent
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10
        )
        if sha.returncode != 0:
            return "unknown"
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", "."],
            cwd=here, capture_output=True, text=True, timeout=10,
        )  # fmt: skip
        return sha.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def atomic_write(path: str | Path, content: str | bytes | Callable[[Path], object]) -> Path:
    """Replace ``path`` so that a crash at any moment leaves the old file or the new one, whole.

    The content goes to a new temporary file beside ``path`` (``.<stem>.<random>.tmp<suffix>``:
    its own name, so concurrent writers of one path do not mix, and the target's suffix, for
    writers that infer the format from it), which is flushed and fsynced, renamed over
    ``path``, and then the directory is fsynced so that the rename itself is durable. On an
    error the temporary file is removed; a killed process can leave one behind, which no
    reader looks at.

    Args:
        path: the file to write; its directory must exist.
        content: text (written as UTF-8, newlines as given), bytes, or a function that
            writes the file at the temporary path it is given (``fig.savefig``, ``torch.save``).

    Returns:
        ``path``.

    Example:
        ``atomic_write(root / "summary.csv", df.to_csv(index=False))``;
        ``atomic_write(root / "fig.png", lambda tmp: fig.savefig(tmp, dpi=100))``.
    """
    path = Path(path)
    tmp = _temporary(path)
    try:
        if callable(content):
            content(tmp)
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        else:
            data = content.encode("utf-8") if isinstance(content, str) else content
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    with contextlib.suppress(OSError):  # some file systems cannot fsync a directory
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    return path


def _temporary(path: Path) -> Path:
    """Create an empty, new temporary file beside ``path`` (permissions as the umask says)."""
    while True:
        tmp = path.with_name(f".{path.stem}.{secrets.token_hex(4)}.tmp{path.suffix}")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        return tmp


def _truncated(path: Path) -> bool:
    """True when a non-empty file does not end with a newline: its last row was cut short."""
    with open(path, "rb") as fh:
        if fh.seek(0, os.SEEK_END) == 0:
            return False
        fh.seek(-1, os.SEEK_END)
        return fh.read(1) != b"\n"


def read_csv(path: str | Path, required: list[str]) -> pd.DataFrame:
    """Read a CSV the store (or a tool built on it) wrote, refusing a damaged one.

    Args:
        path: the file; a missing file reads as no rows.
        required: columns it must have; those of ``KEY`` among them must be filled (and
            ``seed`` whole numbers). ``config_id`` is read as text.

    Raises:
        StoreError: truncated, unparsable, lacking a required column, or a malformed key.
    """
    path = Path(path)
    if not path.exists():
        return pd.DataFrame(columns=required)
    try:
        if _truncated(path):
            raise StoreError(f"{path} is truncated (its last row is incomplete); "
                             "move it aside or restore it")  # fmt: skip
        # config_id is a hex string; read as a number, '012345678901' or '12e4...' would change.
        df = pd.read_csv(path, keep_default_na=True, dtype={"config_id": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StoreError(f"{path} is not a readable modecov CSV ({first}); "
                         "move it aside or restore it") from None  # fmt: skip
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise StoreError(f"{path} lacks the columns {', '.join(missing)}; it was not "
                         "written by modecov or was edited by hand")  # fmt: skip
    keys = [c for c in KEY if c in required]
    seeds = pd.to_numeric(df["seed"], errors="coerce") if "seed" in keys else None
    if df[keys].isna().any(axis=None) or (seeds is not None and (seeds % 1 != 0).any()):
        raise StoreError(f"{path} has rows with a missing or malformed {' or '.join(keys)}; "
                         "it was edited by hand or damaged")  # fmt: skip
    return df


def _same(stored, new) -> bool:
    """Compare a CSV cell with a config value (None is stored as an empty cell)."""
    if new is None:
        return stored is None or (isinstance(stored, float) and math.isnan(stored))
    if isinstance(new, (int, float)) and not isinstance(new, bool):
        try:
            return float(stored) == float(new)
        except (TypeError, ValueError):
            return False
    return str(stored) == str(new)


class Store:
    """One results directory. Use as a context manager: it holds an exclusive lock."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self._lock = None

    def __enter__(self) -> Store:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"cannot create results directory {self.root}: {exc.strerror}"
            ) from None
        self._lock = open(self.root / ".lock", "w")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            raise StoreError(f"{self.root} is in use by another modecov run") from None
        try:  # refuse a corrupt store before any work
            self.runs()
            read_csv(self.root / TRAJECTORY, TRAJECTORY_COLUMNS)
        except StoreError:
            self._lock.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        if self._lock is not None:
            self._lock.close()

    def runs(self) -> pd.DataFrame:
        """The committed run rows (readers need not enter the store: every file is replaced
        atomically)."""
        return read_csv(self.root / RUNS, KEY + ["dataset", "variant", "status"])

    def trajectory(self) -> pd.DataFrame:
        """The committed trajectory rows (orphans of uncommitted groups dropped)."""
        traj = read_csv(self.root / TRAJECTORY, TRAJECTORY_COLUMNS)
        return committed(traj, self.runs())

    def done(self) -> set[tuple[str, int]]:
        """(config_id, seed) pairs already stored."""
        runs = self.runs()
        return {(str(c), int(s)) for c, s in zip(runs["config_id"], runs["seed"])}

    def check(self, *configs: RunConfig, rerun_stale: bool = False) -> set[tuple[str, int]]:
        """Refuse a config whose id is stored (in any of its rows) with a different config,
        and rows of these configs computed by another implementation (``IMPLEMENTATION``)
        unless ``rerun_stale``.

        Returns:
            The stale (config_id, seed) pairs of ``configs``, to be re-run and replaced.

        Raises:
            StoreError: a stored config differs, or stale rows without ``rerun_stale``.
        """
        runs = self.runs()  # read once for all configs
        ids = runs["config_id"].astype(str)
        stale: set[tuple[str, int]] = set()
        changes: dict[str, str] = {}
        for cfg in configs:
            rows = runs[ids == cfg.config_id]
            _check_rows(rows, cfg, self.root / RUNS)
            for _, row in rows.iterrows():
                change = _implementation_change(row, cfg)
                if change:
                    stale.add((cfg.config_id, int(row["seed"])))
                    changes.setdefault(f"{cfg.variant} on {cfg.dataset}", change)
        if stale and not rerun_stale:
            groups = list(changes.items())
            shown = "; ".join(f"{g}: {c}" for g, c in groups[:2])
            more = f"; and {len(groups) - 2} more groups" if len(groups) > 2 else ""
            raise StoreError(
                f"{self.root / RUNS} holds {len(stale)} rows computed by another implementation "
                f"({shown}{more}); re-run exactly those with --rerun-stale, or use another --out"
            )
        return stale

    def commit(self, out: TrainOutput, *, commit: str) -> None:
        """Add one finished group's rows to runs.csv and trajectory.csv atomically."""
        runs = self.runs()
        new_runs = pd.DataFrame(_run_rows(out, commit=commit))
        merged = pd.concat([runs, new_runs], ignore_index=True) if len(runs) else new_runs
        merged = merged.drop_duplicates(KEY, keep="last").sort_values(KEY, kind="stable")
        traj = read_csv(self.root / TRAJECTORY, TRAJECTORY_COLUMNS)
        traj = committed(traj, runs)
        # A re-run group (stale rows) replaces its old trajectory whole, not step by step.
        if len(traj):
            mine = pd.MultiIndex.from_frame(traj[KEY].astype({"config_id": str, "seed": int}))
            traj = traj[~mine.isin(_keys(out))]
        new_traj = _trajectory_rows(out)
        traj = pd.concat([traj, new_traj], ignore_index=True) if len(traj) else new_traj
        traj = traj.drop_duplicates(KEY + ["step", "metric"], keep="last")
        traj = traj.sort_values(KEY + ["metric", "step"], kind="stable")
        # Samples and trajectory go first: runs.csv is the record that the group is complete.
        self._write_samples(out, runs)
        atomic_write(self.root / TRAJECTORY, traj.to_csv(index=False))
        atomic_write(self.root / RUNS, merged[column_order(merged)].to_csv(index=False))

    def _write_samples(self, out: TrainOutput, runs: pd.DataFrame) -> None:
        """Merge the group's final samples into samples/<config_id>.npz, atomically; seeds of
        this config already committed are kept, uncommitted leftovers dropped."""
        cfg = out.config
        new = sample_arrays(out)
        old = read_samples(self.root, cfg.config_id)
        if old is not None:
            ids = runs["config_id"].astype(str) == cfg.config_id
            committed = {int(s) for s in runs.loc[ids, "seed"]}
            keep = [i for i, s in enumerate(old["seeds"]) if s in committed and s not in cfg.seeds]
            if keep and _compatible(old, new):
                new = {k: np.concatenate([old[k][keep], new[k]]) if k in PER_SEED else new[k]
                       for k in new}  # fmt: skip
        order = np.argsort(new["seeds"], kind="stable")
        new = {k: v[order] if k in PER_SEED else v for k, v in new.items()}
        folder = self.root / SAMPLES
        folder.mkdir(exist_ok=True)
        buf = io.BytesIO()
        np.savez_compressed(buf, **new)
        atomic_write(folder / f"{cfg.config_id}.npz", buf.getvalue())

    def manifest(self) -> dict:
        """The fields of manifest.json ({} when there is none).

        Raises:
            StoreError: it is not valid JSON or not a JSON object.
        """
        path = self.root / MANIFEST
        if not path.exists():
            return {}
        try:
            data = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise StoreError(f"{path} is not valid JSON; move it aside or restore it") from None
        if not isinstance(data, dict):
            raise StoreError(f"{path} does not hold a JSON object; move it aside or restore it")
        return data

    def write_manifest(self, **fields) -> None:
        """Merge ``fields`` into manifest.json (atomically)."""
        data = self.manifest()
        data.update(fields)
        atomic_write(self.root / MANIFEST, json.dumps(data, indent=2, sort_keys=True) + "\n")


PER_SEED = ("seeds", "samples", "mode_counts", "landscape")
"""Arrays of a samples file with a leading seed axis."""


def samples_kept(n: int, dim: int) -> int:
    """How many of a seed's ``n`` final samples of dimension ``dim`` the store keeps: at most
    MAX_SAMPLES_PER_SEED, and none above MAX_SAMPLE_DIM. The one place this is decided."""
    return 0 if dim > MAX_SAMPLE_DIM else min(n, MAX_SAMPLES_PER_SEED)


def sample_arrays(out: TrainOutput) -> dict[str, np.ndarray]:
    """The arrays stored for one group: seeds, float32 samples (``samples_kept`` per seed,
    possibly none), final HQ counts per mode, the dataset's plot bounds and the
    discriminator landscape when there is one."""
    S, N, D = out.samples.shape
    n = samples_kept(N, D)
    arrays = {
        "seeds": np.asarray(out.config.seeds, dtype=np.int64),
        "samples": out.samples[:, :n].float().numpy(),
        "mode_counts": out.counts[-1].long().numpy(),
        "bounds": np.asarray(DATASETS[out.config.dataset].bounds(), dtype=np.float64),
    }
    if out.landscape is not None:
        arrays["landscape"] = out.landscape.float().numpy()
    return arrays


def _compatible(old: dict, new: dict) -> bool:
    """Same arrays with the same per-seed shapes: stored seeds can join the new ones."""
    return set(old) == set(new) and all(
        old[k].shape[1:] == new[k].shape[1:] for k in PER_SEED if k in new
    )


def read_samples(
    root: str | Path, config_id: str, committed: set[int] | None = None
) -> dict[str, np.ndarray] | None:
    """The samples file of ``config_id`` (only the seeds in ``committed`` when given), or
    None when it is missing, unreadable or holds none of those seeds."""
    path = Path(root) / SAMPLES / f"{config_id}.npz"
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, KeyError):
        return None
    if "seeds" not in arrays or "samples" not in arrays:
        return None
    if committed is not None:
        keep = np.isin(arrays["seeds"], sorted(committed))
        if not keep.any():
            return None
        arrays = {k: v[keep] if k in PER_SEED else v for k, v in arrays.items()}
    return arrays


def _check_rows(rows: pd.DataFrame, cfg: RunConfig, path: Path) -> None:
    """Raise StoreError when a stored row of ``cfg``'s config_id differs from ``cfg``."""
    for _, stored in rows.iterrows():
        for name, value in cfg.canonical().items():
            if name in stored.index and _same(stored[name], value):
                continue
            got = stored.get(name, "<missing>")
            got = got.item() if hasattr(got, "item") else got  # np.int64(33) -> 33
            raise StoreError(
                f"config_id {cfg.config_id} in {path} was stored with "
                f"{name}={got!r} but this run has {name}={value!r}; use another --out"
            )


def _keys(out: TrainOutput) -> list[tuple[str, int]]:
    """The (config_id, seed) pairs of a finished group."""
    return [(out.config.config_id, int(s)) for s in out.config.seeds]


def implementation(cfg: RunConfig) -> dict:
    """The ``IMPLEMENTATION`` columns of a row of ``cfg`` computed by the running code."""
    return {"variant_version": cfg.spec.version, "metric_versions": metric_versions()}


def _implementation_change(row: pd.Series, cfg: RunConfig) -> str:
    """What differs between the implementation that computed a stored row and the running
    code's (``""`` when nothing does)."""
    now = implementation(cfg)
    stored_variant = row.get("variant_version")
    stored_metrics = row.get("metric_versions")
    if not isinstance(stored_metrics, str) or pd.isna(stored_variant):
        return "stored before implementation versions were recorded"
    parts = []
    if int(stored_variant) != now["variant_version"]:
        parts.append(f"{cfg.variant} v{int(stored_variant)}, now v{now['variant_version']}")
    old = parse_versions(stored_metrics)
    new = parse_versions(now["metric_versions"])
    moved = [f"{m} v{old.get(m, '-')}, now v{v}" for m, v in new.items() if old.get(m) != v]
    if moved:
        parts.append("metrics " + ", ".join(moved))
    return "; ".join(parts)


def committed(traj: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``traj`` (any frame with the ``KEY`` columns) whose (config_id, seed) has
    a committed run row in ``runs``."""
    if traj.empty:
        return traj
    keys = pd.MultiIndex.from_frame(runs[KEY].astype({"config_id": str, "seed": int}))
    mine = pd.MultiIndex.from_frame(traj[KEY].astype({"config_id": str, "seed": int}))
    return traj[mine.isin(keys)]


def _run_rows(out: TrainOutput, *, commit: str) -> list[dict]:
    cfg = out.config
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    rows = []
    for s, seed in enumerate(cfg.seeds):
        row = {"config_id": cfg.config_id, "seed": seed, **cfg.canonical()}
        row.update(
            status=out.status[s],
            diverged_step=out.diverged_step[s],
            wall_time=out.wall_time / len(cfg.seeds),
            group_size=len(cfg.seeds),
            device=out.device,
        )
        row.update({k: float(v[s]) for k, v in sorted(out.final.items())})
        row.update(
            **implementation(cfg),
            modecov_version=modecov.__version__,
            torch_version=torch.__version__,
            git_commit=commit,
            finished_at=now,
        )
        rows.append(row)
    return rows


def _trajectory_rows(out: TrainOutput) -> pd.DataFrame:
    cfg = out.config
    frames = []
    steps = out.steps.tolist()
    for name, values in sorted(out.trajectory.items()):
        for s, seed in enumerate(cfg.seeds):
            frames.append(
                pd.DataFrame(
                    {
                        "config_id": cfg.config_id,
                        "seed": seed,
                        "step": steps,
                        "metric": name,
                        "value": values[:, s].double().numpy(),
                    }
                )
            )
    return pd.concat(frames, ignore_index=True)


def column_order(df: pd.DataFrame) -> list[str]:
    """Key and config first, metrics in the middle, run info and provenance last."""
    config = [f for f in RunConfig.__dataclass_fields__ if f not in ("seeds", "device")]
    head = [c for c in KEY + config if c in df.columns]
    tail = [c for c in RUN_INFO + PROVENANCE if c in df.columns]
    middle = sorted(c for c in df.columns if c not in head and c not in tail)
    return head + middle + tail


def machine() -> dict:
    """Provenance of the machine and software for the manifest, with the samples per side
    each capped metric reads (sample counts are provenance; the key predates the capped
    samples metrics)."""
    return {
        "modecov_version": modecov.__version__,
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "platform": platform.platform(),
        "git_commit": git_commit(),
        "distribution_sample_caps": sample_caps(),
        # The shipped network that defines stacked_digits' modes, as FID names its Inception.
        "digits_classifier_sha256": classifier_hash(),
    }
