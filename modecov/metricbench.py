"""The metric benchmark (``modecov run --suite metrics``): controlled corruptions of the true
sampler of every cheap dataset with known modes, scored by every metric at several strengths,
sample sizes and seeds (no training), so the report can say which metric sees what.

A corruption is data: a ``Corruption`` names its strengths (in increasing severity) and a
function that draws corrupted samples through the Dataset interface alone (``sample``,
``sample_mode``, ``centers``, ``weights``, ``bounds``, a Gaussian mixture's ``std``). Every set
is drawn from its own ``torch.Generator``, seeded from (dataset, corruption, strength, N,
seed), and scored by ``score_samples`` and ``score_distribution`` against a real set of the
same N, as training scores its final samples. Scores go to ``results/metrics/scores.csv``,
one row per number, written atomically; a cell already stored is skipped on a re-run.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from types import MappingProxyType

import pandas as pd
import torch
from torch import Tensor
from tqdm import tqdm

from modecov.config import METRIC_SUITE, comparison_sets
from modecov.data import BUNDLED, DATASETS, Dataset, GaussianMixture
from modecov.device import device_name
from modecov.errors import ConfigError, ModecovError, StoreError, unknown
from modecov.metrics import METRICS, MetricSpec, score_distribution, score_samples, versions
from modecov.store import RUNS, Store, atomic_write, machine, read_csv

log = logging.getLogger(__name__)

NAME = METRIC_SUITE
"""The suite's name (``modecov run --suite metrics``, the manifest's ``suite``)."""
SCORES = "scores.csv"
KEY = ["dataset", "corruption", "level", "n", "seed", "metric"]
"""A stored number: one metric output of one seed of one cell."""
COLUMNS = [
    "dataset", "corruption", "strength", "level", "n", "seed", "metric", "value",
    "metric_versions", "corruption_version",
]  # fmt: skip
"""``scores.csv``: ``metric_versions`` is ``name=version`` of the metric that computed the value
(the format of runs.csv's column, restricted to that metric); ``corruption_version`` the
version of the corruption that drew the samples."""
NONE = "none"
"""The ``corruption`` of the true sampler itself: level 0, strength 0, of every corruption."""
COMMIT_EVERY = 20.0
"""Seconds between commits of finished cells: a run killed at any moment loses at most this
much work, and a store of ~10^5 rows is not rewritten after every cell."""
STREAM = "modecov-metricbench"
"""Prefix of the text every sample set's generator seed is hashed from."""


def generator(*parts: object) -> torch.Generator:
    """A generator seeded from the SHA-256 of ``parts``: a set's stream depends on nothing but
    its own key, so adding a dataset, a strength or a seed leaves every other set unchanged."""
    text = "/".join((STREAM, *(str(p) for p in parts)))
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") >> 1
    return torch.Generator().manual_seed(seed)


def _mixture(data: Dataset, weights: Tensor, n: int, g: torch.Generator) -> tuple[Tensor, Tensor]:
    """(N, D) float64 samples of the dataset's modes mixed with ``weights`` (K,), in random
    order, and the (N,) mode each was drawn from."""
    idx = torch.multinomial(weights, n, replacement=True, generator=g)
    x = torch.empty(n, data.dim, dtype=torch.float64)
    for k in torch.unique(idx).tolist():
        rows = idx == k
        x[rows] = data.sample_mode(k, int(rows.sum()), g, dtype=torch.float64)
    return x, idx


def lightest_first(weights: Tensor, g: torch.Generator) -> Tensor:
    """(K,) mode indices from the lightest to the heaviest, ties in a random order."""
    perm = torch.randperm(len(weights), generator=g)
    return perm[torch.sort(weights[perm], stable=True).indices]


def _drop(data: Dataset, n: int, j: float, g: torch.Generator) -> Tensor:
    keep = torch.ones(data.n_modes, dtype=torch.bool)
    keep[lightest_first(data.weights, g)[: int(j)]] = False
    w = torch.where(keep, data.weights, 0.0)
    return _mixture(data, w / w.sum(), n, g)[0]


def heaviest(data: Dataset) -> int:
    """The mode ``one_mode`` samples: the first of the heaviest."""
    return int(torch.argmax(data.weights))


def _reweight(data: Dataset, n: int, p: float, g: torch.Generator) -> Tensor:
    w = (1.0 - p) * data.weights
    w[heaviest(data)] += p
    return _mixture(data, w, n, g)[0]


def _blur(data: Dataset, n: int, factor: float, g: torch.Generator) -> Tensor:
    # A Gaussian mode's deviation from its mean, scaled by f, is the mode widened f times.
    x, idx = _mixture(data, data.weights, n, g)
    centre = data.centers[idx]
    return centre + factor * (x - centre)


def _shift(data: Dataset, n: int, spreads: float, g: torch.Generator) -> Tensor:
    # One random direction per set; its length is `spreads` mode scales in every dimension's
    # own unit (a Mahalanobis length), so a 1200-D set moves as far as a 2-D one.
    x = data.sample(n, g, dtype=torch.float64)
    u = torch.randn(data.dim, generator=g, dtype=torch.float64)
    return x + spreads * data.std * (u / u.norm())


def noise_count(n: int, fraction: float) -> int:
    """How many of N samples ``noise`` replaces: the nearest whole number to fraction * N."""
    return int(math.floor(fraction * n + 0.5))


def _noise(data: Dataset, n: int, fraction: float, g: torch.Generator) -> Tensor:
    x = data.sample(n, g, dtype=torch.float64)
    m = noise_count(n, fraction)
    rows = torch.randperm(n, generator=g)[:m]
    lo, hi = data.bounds()
    x[rows] = lo + (hi - lo) * torch.rand(m, data.dim, generator=g, dtype=torch.float64)
    return x


def _memorise(data: Dataset, n: int, size: float, g: torch.Generator) -> Tensor:
    # Each of the `size` training points is repeated N / size times (to within one), in a
    # random order, so every one of them appears.
    train = data.sample(int(size), g, dtype=torch.float64)
    return train[torch.randperm(n, generator=g) % int(size)]


def _drop_counts(data: Dataset) -> tuple[float, ...]:
    k = data.n_modes
    return tuple(float(j) for j in dict.fromkeys((1, k // 4, k // 2, k - 1)) if 1 <= j < k)


def _gaussian(data: Dataset) -> bool:
    return isinstance(data, GaussianMixture)


def _always(data: Dataset) -> bool:
    return data.n_modes >= 2


@dataclass(frozen=True, kw_only=True, slots=True)
class Corruption:
    """A controlled corruption of a dataset's true sampler."""

    name: str
    """Key (a CSV value; never changes), snake_case."""
    label: str
    """Display name for tables and figures."""
    description: str
    """What a strength means, for captions and the README."""
    strengths: Callable[[Dataset], tuple[float, ...]]
    """The strengths on a dataset, from the mildest to the most severe (level 1, 2, ...)."""
    sample: Callable[[Dataset, int, float, torch.Generator], Tensor]
    """``sample(data, n, strength, generator)`` -> (N, D) float64 corrupted samples."""
    text: Callable[[float], str]
    """A strength as figures label it (``×1.5``, ``25%``)."""
    applies: Callable[[Dataset], bool] = _always
    """Whether the corruption is defined on a dataset."""
    not_applicable: str = ""
    """Why it is not defined where ``applies`` is False (for the README)."""
    version: int = 1
    """Bumped whenever a change can move a stored value (a stored row of another version is
    stale, as a metric's)."""


def _pct(x: float) -> str:
    return f"{100 * x:g}%"


CORRUPTIONS: Mapping[str, Corruption] = MappingProxyType({c.name: c for c in (
    Corruption(
        name="drop", label="Dropped modes", sample=_drop, strengths=_drop_counts,
        description="j of the K modes removed (j = 1, K/4, K/2, K - 1, the lightest first, "
        "ties in random order), the rest renormalised",
        text=lambda j: f"j={j:g}",
    ),
    Corruption(
        name="reweight", label="Reweighted modes", sample=_reweight,
        strengths=lambda data: (0.25, 0.5, 0.75, 1.0),
        description="a share p = 25/50/75/100% of the mass moved to the heaviest mode (a "
        "mixture with one_mode; 100% is one_mode)",
        text=_pct,
    ),
    Corruption(
        name="blur", label="Blurred modes", sample=_blur, strengths=lambda data: (1.5, 2.0, 4.0),
        description="every mode widened ×1.5, ×2, ×4 about its centre", text=lambda f: f"×{f:g}",
        applies=_gaussian,
        not_applicable="a width is defined for Gaussian modes only",
    ),
    Corruption(
        name="noise", label="Uniform noise", sample=_noise,
        strengths=lambda data: (0.1, 0.25, 0.5),
        description="10/25/50% of the samples replaced by uniform noise over the data box",
        text=_pct,
    ),
    Corruption(
        name="shift", label="Shifted samples", sample=_shift,
        strengths=lambda data: (0.5, 1.0, 2.0),
        description="every sample moved by one fixed offset of 0.5, 1, 2 mode scales (a random "
        "direction per set, its length measured in each dimension's own scale)",
        text=lambda d: f"{d:g}σ", applies=_gaussian,
        not_applicable="a mode scale σ is defined for Gaussian modes only",
    ),
    Corruption(
        name="memorise", label="Memorised samples", sample=_memorise,
        strengths=lambda data: (100.0, 10.0),
        description="a fixed set of 100, then 10, true samples repeated (a copy of a tiny "
        "training set)",
        text=lambda m: f"{m:g} pts",
    ),
)})  # fmt: skip
"""Every corruption, by key; the suite runs each on every dataset where it applies."""

NONE_LABEL = "true"
"""The true sampler's label on a figure's strength axis."""

EXCLUDED: Mapping[str, str] = MappingProxyType({
    "grid25_imbalanced": "budget: it repeats grid25's geometry with an imbalance between "
    "ring8_imbalanced's and heavy_center's, which the suite already scores",
    "spiral": "budget: its nearest-point search along the curve makes a cell 1.6 times a "
    "mixture's cost, and blur and shift are not defined on its band",
    "gauss1200": "budget and memory: a cell costs ~2 min on one core (the Fréchet distance "
    "alone, a 1200 × 1200 matrix square root per seed, is 1 s a seed; W2 and MMD in 1200-D "
    "1 s each at N = 2,500), so its cells would take hours, and 10 seeds × 10,000 samples × "
    "1200 dimensions are 1 GB a cell",
    "stacked_digits": "its modes are a classifier's decisions, so its mode metrics measure the "
    "classifier's response to corrupted images rather than the metric; blur and shift are not "
    "defined (no per-mode scale in pixel space: widening about a triple's mean image leaves "
    "the pixel range); its samples come from a pool of 1,437 digits that the real set "
    "shares; and W2 in 192-D (1 s a seed) makes its cells 2-3 times a mixture's",
})  # fmt: skip
"""Datasets with known modes that the suite leaves out, and why (the report's README says it);
``modecov run --suite metrics --datasets NAME`` scores any of them into a store of its own."""


def suite_datasets() -> tuple[str, ...]:
    """The datasets the suite scores: those of the mission's comparison (``comparison_sets``),
    the sets whose tables users cite, so the benchmark calibrates the metrics where they are
    read."""
    return comparison_sets()


def excluded() -> dict[str, str]:
    """Every bundled dataset the suite leaves out -> why."""
    keep = set(suite_datasets())
    default = "not in the mission's comparison (Dataset.comparison)"
    return {name: EXCLUDED.get(name, default) for name in BUNDLED if name not in keep}


def suite_metrics() -> tuple[MetricSpec, ...]:
    """The metrics the suite runs: every ``samples`` and ``distribution`` metric (trajectory
    metrics need training)."""
    return tuple(s for s in METRICS.values() if s.kind in ("samples", "distribution"))


def sizes_for(spec: MetricSpec, sizes: Sequence[int]) -> tuple[int, ...]:
    """The sizes at which ``spec`` is scored: each of ``sizes`` except one at which it would read
    no more samples than at a smaller one (``MetricSpec.max_points``: W2 reads 2,000 per side
    at both 2,500 and 10,000, so its 10,000 cell would only draw the same statistic again)."""
    cap = spec.max_points or math.inf
    kept, read = [], set()
    for n in sorted(sizes):
        if min(n, cap) not in read:
            kept.append(n)
            read.add(min(n, cap))
    return tuple(kept)


@dataclass(frozen=True, slots=True)
class Cell:
    """Every seed of one (dataset, corruption, strength, N): one batched scoring call."""

    dataset: str
    corruption: str
    level: int
    """0 for the true sampler, then 1, 2, ... in increasing severity."""
    strength: float
    n: int

    @property
    def label(self) -> str:
        if self.corruption == NONE:
            return f"{self.dataset} true sampler N={self.n}"
        text = CORRUPTIONS[self.corruption].text(self.strength)
        return f"{self.dataset} {self.corruption} {text} N={self.n}"


@dataclass(frozen=True, kw_only=True, slots=True)
class MetricSuite:
    """The grid of the metric benchmark."""

    datasets: tuple[str, ...] = field(default_factory=suite_datasets)
    """Dataset keys."""
    corruptions: tuple[str, ...] = tuple(CORRUPTIONS)
    """Corruption keys (each runs where it applies)."""
    sizes: tuple[int, ...] = (250, 1_000, 2_500, 10_000)
    """Sample sizes N (fake and real sets alike)."""
    seeds: tuple[int, ...] = tuple(range(10))
    """Seeds per cell."""
    mildest_only: tuple[int, ...] = (10_000,)
    """Sizes scored at the true sampler and each corruption's mildest strength only. The
    largest N answers one question, whether more samples let a metric detect the mildest
    damage (the sensitivity table is at 2,500), and is half the suite's cost at every
    strength: scoring it there alone keeps the suite within its minutes."""
    levels: int | None = None
    """Keep only the first ``levels`` strengths of each corruption (None: all); for tests."""

    def __post_init__(self) -> None:
        for d in self.datasets:
            if d not in DATASETS:
                raise unknown("dataset", d, DATASETS)
        for c in self.corruptions:
            if c not in CORRUPTIONS:
                raise unknown("corruption", c, CORRUPTIONS)
        if not self.datasets or not self.corruptions or not self.sizes or not self.seeds:
            raise ConfigError("a metric suite needs datasets, corruptions, sizes and seeds")
        if min(self.sizes) < 6:
            raise ConfigError(f"sample sizes must be >= 6, got {min(self.sizes)}")

    def strengths(self, dataset: str, corruption: str) -> tuple[float, ...]:
        """Strengths of ``corruption`` on ``dataset`` (empty where it does not apply)."""
        data, spec = DATASETS[dataset], CORRUPTIONS[corruption]
        if not spec.applies(data):
            return ()
        return spec.strengths(data)[: self.levels]

    def cells(self) -> list[Cell]:
        """Every cell, the true sampler's first, in (dataset, corruption, level, N) order."""
        out = []
        for d in self.datasets:
            out += [Cell(d, NONE, 0, 0.0, n) for n in self.sizes]
            for c in self.corruptions:
                for level, s in enumerate(self.strengths(d, c), start=1):
                    sizes = [n for n in self.sizes if level == 1 or n not in self.mildest_only]
                    out += [Cell(d, c, level, s, n) for n in sizes]
        return out


SUITE = MetricSuite()
"""The metric benchmark's grid."""


def sample(cell: Cell, seed: int) -> Tensor:
    """(N, D) float32 samples of one seed of ``cell`` (float32, as a generator outputs),
    determined by (dataset, corruption, strength, N, seed) alone."""
    data = DATASETS[cell.dataset]
    g = generator(cell.dataset, cell.corruption, repr(float(cell.strength)), cell.n, seed)
    if cell.corruption == NONE:
        x = data.sample(cell.n, g, dtype=torch.float64)
    else:
        x = CORRUPTIONS[cell.corruption].sample(data, cell.n, cell.strength, g)
    return x.to(torch.float32)


def real_set(dataset: str, n: int) -> Tensor:
    """(N, D) float64 true samples every cell of (dataset, N) is scored against, from their own
    stream (as training's real reference set)."""
    return DATASETS[dataset].sample(n, generator(dataset, "real", n), dtype=torch.float64)


def score_cell(cell: Cell, seeds: Sequence[int], names: Sequence[str] | None = None) -> dict:
    """Score every seed of ``cell`` in one batched call per metric kind.

    Args:
        cell: the (dataset, corruption, strength, N).
        seeds: the seeds, stacked as S.
        names: metric names to run (default: every metric of the suite).

    Returns:
        Every output key -> list of S floats.
    """
    if names is None:
        names = [s.name for s in suite_metrics()]
    data = DATASETS[cell.dataset]
    fake = torch.stack([sample(cell, s) for s in seeds])
    real = real_set(cell.dataset, cell.n)
    kinds = {k: [n for n in names if METRICS[n].kind == k] for k in ("samples", "distribution")}
    out: dict[str, Tensor] = {}
    if kinds["samples"]:
        out.update(score_samples(fake=fake, real=real, data=data, names=kinds["samples"]))
    if kinds["distribution"]:
        out.update(score_distribution(fake=fake, real=real, data=data, names=kinds["distribution"]))
    return {k: [float(x) for x in v] for k, v in out.items()}


def _task(index: int, cell: Cell, seeds: tuple[int, ...], names: tuple[str, ...]):
    start = time.perf_counter()
    return index, score_cell(cell, seeds, names), time.perf_counter() - start


def read_scores(root: str | Path) -> pd.DataFrame:
    """The stored rows of ``root/scores.csv`` (empty when there is none yet).

    Raises:
        StoreError: the file is truncated, unreadable or lacks columns.
    """
    df = read_csv(Path(root) / SCORES, COLUMNS)
    return df.astype({"level": int, "n": int, "seed": int}) if len(df) else df


def _owner() -> dict[str, MetricSpec]:
    """Output key -> the metric that computes it."""
    return {k: spec for spec in suite_metrics() for k in spec.outputs}


def _version(spec: MetricSpec) -> str:
    return versions({spec.name: spec})


def _corruption_version(name: str) -> int:
    return 1 if name == NONE else CORRUPTIONS[name].version


def stale_rows(scores: pd.DataFrame) -> pd.Series:
    """Rows computed by another version of their metric or corruption, or of an output no
    suite metric declares (a metric removed or renamed)."""
    if scores.empty:
        return pd.Series(False, index=scores.index)
    owner = _owner()
    now = scores["metric"].map(lambda m: _version(owner[m]) if m in owner else None)
    corr = scores["corruption"].map(
        lambda c: _corruption_version(c) if c in CORRUPTIONS or c == NONE else -1
    )
    return (now != scores["metric_versions"]) | (corr != scores["corruption_version"])


def todo(suite: MetricSuite, scores: pd.DataFrame) -> list[tuple[Cell, tuple[str, ...]]]:
    """The cells of ``suite`` with metrics still to score, and those metrics (a metric is done
    for a cell when every seed has each of its outputs, from the running versions)."""
    have: set[tuple] = set()
    if len(scores):
        fresh = scores[~stale_rows(scores)]
        cols = ["dataset", "corruption", "level", "n", "seed", "metric"]
        have = set(fresh[cols].itertuples(index=False, name=None))
    out = []
    for cell in suite.cells():
        names = tuple(
            spec.name
            for spec in suite_metrics()
            if cell.n in sizes_for(spec, suite.sizes)
            and not all(
                (cell.dataset, cell.corruption, cell.level, cell.n, s, k) in have
                for s in suite.seeds
                for k in spec.outputs
            )
        )
        if names:
            out.append((cell, names))
    return out


def _rows(cell: Cell, seeds: Sequence[int], scores: dict) -> list[dict]:
    owner = _owner()
    version = _corruption_version(cell.corruption)
    return [
        {"dataset": cell.dataset, "corruption": cell.corruption, "strength": cell.strength,
         "level": cell.level, "n": cell.n, "seed": seed, "metric": key, "value": values[i],
         "metric_versions": _version(owner[key]), "corruption_version": version}
        for key, values in scores.items()
        for i, seed in enumerate(seeds)
    ]  # fmt: skip


def commit(root: Path, stored: pd.DataFrame, rows: list[dict]) -> pd.DataFrame:
    """Merge ``rows`` into ``stored`` (new rows replace stored ones with the same key) and
    write scores.csv atomically, sorted by its key; returns the merged rows."""
    new = pd.DataFrame(rows, columns=COLUMNS)
    merged = pd.concat([stored, new], ignore_index=True) if len(stored) else new
    merged = merged.drop_duplicates(KEY, keep="last").sort_values(KEY, kind="stable")
    merged = merged.reset_index(drop=True)
    atomic_write(root / SCORES, merged[COLUMNS].to_csv(index=False, lineterminator="\n"))
    return merged


def _progress(mode: str, total: int):
    if mode != "bars":
        return None
    return tqdm(total=total, desc=f"suite {NAME}", unit="cell", file=sys.stderr, dynamic_ncols=True)


def _results(tasks: list[tuple[Cell, tuple[str, ...]]], seeds: tuple[int, ...], workers: int):
    """Yield ``(index, scores, seconds)`` of each task as it finishes, in ``workers`` processes
    of one torch thread each (in this process when 1); results do not depend on ``workers``."""
    if not tasks:
        return
    if workers == 1 or len(tasks) == 1:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            for i, (cell, names) in enumerate(tasks):
                yield _task(i, cell, seeds, names)
        finally:
            torch.set_num_threads(threads)
        return
    from modecov.worker import init_pool_worker  # one torch thread, dies with the driver

    ctx = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(
        min(workers, len(tasks)), mp_context=ctx, initializer=init_pool_worker,
        initargs=(os.getpid(),),
    )  # fmt: skip
    pending = {pool.submit(_task, i, cell, seeds, names) for i, (cell, names) in enumerate(tasks)}
    try:
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                try:
                    yield fut.result()
                except BrokenProcessPool:
                    raise ModecovError(
                        "a worker process died (out of memory or killed); finished cells are "
                        "stored, re-run the same command to resume"
                    ) from None
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def run(
    out: str | Path,
    *,
    suite: MetricSuite | None = None,
    workers: int = 1,
    progress: str = "quiet",
    rerun_stale: bool = False,
    datasets: Sequence[str] | None = None,
    commit_every: float = COMMIT_EVERY,
) -> dict:
    """Score every cell of the metric benchmark not yet stored in ``out``.

    Args:
        out: the results directory (``results/metrics``).
        suite: the grid (default ``SUITE``; tests pass a smaller one).
        workers: processes, one torch thread each.
        progress: ``bars``, ``lines`` or ``quiet`` (``modecov.progress.choose_mode``).
        rerun_stale: re-score and replace stored rows of another metric or corruption
            version (default: refuse them).
        datasets: score these datasets (any with known modes) instead of the suite's.
        commit_every: seconds between commits of finished cells (and at the end).

    Returns:
        ``cells`` run, ``skipped`` (already stored) and ``seconds`` of wall time.

    Raises:
        StoreError: ``out`` holds a training store, is in use, is damaged, or holds stale
            rows without ``rerun_stale``.
        ConfigError: an unknown dataset, or fewer than one worker.
    """
    suite = SUITE if suite is None else suite
    if workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {workers}")
    if datasets is not None:
        suite = dataclasses.replace(suite, datasets=tuple(datasets))
    root = Path(out)
    if (root / RUNS).exists():
        raise StoreError(f"{root} holds a training store ({RUNS}); use another --out")
    start = time.perf_counter()
    with Store(root) as store:
        stored = read_scores(root)
        stale = stale_rows(stored)
        if stale.any():
            if not rerun_stale:
                first = stored[stale].iloc[0]
                raise StoreError(
                    f"{root / SCORES} holds {int(stale.sum())} rows computed by another version "
                    f"of a metric or corruption (e.g. {first['metric']}: {first['metric_versions']}"
                    f"); re-score exactly those with --rerun-stale, or use another --out"
                )
            stored = stored[~stale].reset_index(drop=True)
        tasks = todo(suite, stored)
        tasks.sort(key=lambda t: -t[0].n)  # the largest first balances the workers
        n_cells = len(suite.cells())
        provenance = machine()
        store.write_manifest(
            suite=NAME,
            started_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            device_name=device_name(torch.device("cpu")),
            workers=workers,
            metric_versions=versions({s.name: s for s in suite_metrics()}),
            sample_counts={
                "sizes": list(suite.sizes),
                "seeds": list(suite.seeds),
                "real_set": "N true samples per (dataset, N), shared by every cell",
                "mildest_only": [n for n in suite.mildest_only if n in suite.sizes],
                "not_rescored": {
                    s.name: [n for n in suite.sizes if n not in sizes_for(s, suite.sizes)]
                    for s in suite_metrics()
                    if len(sizes_for(s, suite.sizes)) < len(suite.sizes)
                },
            },
            datasets=list(suite.datasets),
            corruptions={
                c: {d: list(suite.strengths(d, c)) for d in suite.datasets}
                for c in suite.corruptions
            },
            excluded_datasets=excluded(),
            **provenance,
        )
        if progress != "quiet":
            print(f"modecov: {len(tasks)} cells to score, {n_cells - len(tasks)} already stored, "
                  f"{workers} workers -> {root}", file=sys.stderr)  # fmt: skip
        pending: list[dict] = []
        last = time.perf_counter()
        bar = _progress(progress, len(tasks))
        finished = 0
        try:
            for i, scores, seconds in _results(tasks, suite.seeds, workers):
                cell = tasks[i][0]
                pending += _rows(cell, suite.seeds, scores)
                finished += 1
                if bar is not None:
                    bar.update(1)
                elif progress == "lines":
                    elapsed = time.perf_counter() - start
                    print(f"[{finished}/{len(tasks)}] {cell.label}: {seconds:.1f}s "
                          f"({elapsed:.0f}s elapsed)", file=sys.stderr)  # fmt: skip
                if time.perf_counter() - last >= commit_every:
                    stored, pending, last = commit(root, stored, pending), [], time.perf_counter()
        finally:
            if bar is not None:
                bar.close()
            if pending:  # finished cells are kept even when the run stops early
                stored = commit(root, stored, pending)
        store.write_manifest(finished_at=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    return {"cells": len(tasks), "skipped": n_cells - len(tasks),
            "seconds": time.perf_counter() - start}  # fmt: skip


UNUSED = {
    "variants": "--variants", "seeds": "--seeds", "steps": "--steps",
    "batch_size": "--batch-size", "address": "--address", "mnist": "--mnist",
}  # fmt: skip
"""Flags of ``modecov run`` that the metric benchmark has no use for."""


def run_from_args(args) -> int:
    """``modecov run --suite metrics``: the CLI's flags onto ``run``."""
    from modecov.progress import choose_mode

    for attr, flag in UNUSED.items():
        if getattr(args, attr, None) is not None:
            raise ConfigError(f"{flag} does not apply to the metrics suite (no training)")
    if getattr(args, "set", None):
        raise ConfigError("--set does not apply to the metrics suite (no training)")
    if getattr(args, "backend", "local") != "local":
        raise ConfigError("the metrics suite runs locally; drop --backend")
    if getattr(args, "device", None) not in (None, "auto", "cpu"):
        raise ConfigError("the metrics suite scores on the CPU; drop --device")
    if args.workers == "auto":
        workers = os.cpu_count() or 1
    else:
        try:
            workers = int(str(args.workers).replace("_", ""))
        except ValueError:
            raise ConfigError(f"--workers: expected an integer, got {args.workers!r}") from None
    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()] if args.datasets else None
    run(
        args.out or f"results/{NAME}",
        workers=workers,
        progress=choose_mode(quiet=args.quiet),
        rerun_stale=args.rerun_stale,
        datasets=datasets,
    )
    return 0
