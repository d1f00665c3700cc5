"""The METRICS registry: every metric as a MetricSpec (its function and the direction of each
output), and the helpers that run them on samples or on training trajectories."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from torch import Tensor

from modecov.data import Dataset
from modecov.errors import ConfigError, unknown
from modecov.metrics import distribution as dist
from modecov.metrics.distribution import mmd2, prdc, sliced_w2, w2
from modecov.metrics.dynamics import dominant_switches, hop_tv, modes_lost, steps_to_all_modes
from modecov.metrics.frechet import frechet
from modecov.metrics.inception import inception
from modecov.metrics.kernel import kid, rke, vendi
from modecov.metrics.modes import mode_counts, modes
from modecov.metrics.ndb import ndb

KINDS = ("samples", "trajectory", "distribution")
"""What a metric scores: one set of samples per seed, per-snapshot HQ mode counts, or the
large final sample set against a real set of its size (too costly for every snapshot)."""

_SNAKE = re.compile(r"[a-z][a-z0-9]*(_[a-z0-9]+)*")


@dataclass(frozen=True, kw_only=True, slots=True)
class MetricSpec:
    """A metric: a pure function and the direction of each number it returns."""

    name: str
    """Registry key, snake_case (a CSV value; never changes)."""
    label: str
    """Display name for tables."""
    reference: str
    """BibTeX key(s) or paper that defines the metric."""
    fn: Callable[..., dict[str, Tensor]]
    """``fn(*, fake, real, data)`` (samples, distribution) or ``fn(*, steps, counts, data)``
    (trajectory), returning one (S,) float64 tensor per output key."""
    outputs: Mapping[str, bool]
    """Output key -> True when higher is better; the only place directions are declared."""
    kind: Literal["samples", "trajectory", "distribution"]
    """``samples``: scores (S, N, D) samples; ``trajectory``: scores (T, S, K) counts;
    ``distribution``: scores the large final (S, N, D) samples against real ones (``data``
    may be None)."""
    needs_dataset: bool = True
    """Read for ``samples`` metrics: False when ``fn`` also runs with ``data=None``, on raw
    coordinates (the Fréchet distance, KID, Vendi, RKE, NDB), so a real set alone is enough to
    compute it."""
    version: int = 1
    """Implementation version: bumped whenever a change can move a stored value, so a store
    refuses rows computed by another version (``modecov run --rerun-stale`` replaces them)."""
    max_points: int | None = None
    """Most samples per side ``fn`` reads (its first ones; samples are i.i.d.), None = all:
    provenance for the manifest, and the size of the large final set (``sample_caps``)."""
    every_snapshot: bool = False
    """``samples`` metrics only: also scored at every trajectory snapshot (cheap ones: the
    mode metrics' nearest-mode assignment), not only on the final samples."""

    def __post_init__(self) -> None:
        if not _SNAKE.fullmatch(self.name):
            raise ValueError(f"metric name {self.name!r} is not snake_case")
        if self.kind not in KINDS:
            raise ValueError(f"metric {self.name!r}: kind must be one of {KINDS}")
        if isinstance(self.version, bool) or not isinstance(self.version, int) or self.version < 1:
            raise ValueError(f"metric {self.name!r}: version must be a positive int")
        if not self.outputs:
            raise ValueError(f"metric {self.name!r} declares no outputs")
        if self.every_snapshot and self.kind != "samples":
            raise ValueError(f"metric {self.name!r}: only samples metrics run at snapshots")
        for key, higher in self.outputs.items():
            if not _SNAKE.fullmatch(key) or not isinstance(higher, bool):
                raise ValueError(
                    f"metric {self.name!r}: output {key!r} needs a snake_case key and a "
                    f"bool direction, got {higher!r}"
                )
        object.__setattr__(self, "outputs", MappingProxyType(dict(self.outputs)))


METRICS: Mapping[str, MetricSpec] = MappingProxyType(
    {
        m.name: m
        for m in (
            MetricSpec(
                name="modes", version=2, label="Mode coverage", kind="samples", fn=modes,
                reference="srivastava2017veegan,lin2018pacgan", every_snapshot=True,
                outputs={
                    "modes_covered": True, "modes_covered_frac": True, "modes_balanced": True,
                    "hq_fraction": True, "kl_gen_true": False, "kl_true_gen": False,
                    "mode_jsd": False,
                },
            ),
            MetricSpec(
                name="inception", version=2, label="Inception score", kind="samples", fn=inception,
                reference="salimans2016improved,che2017mode",
                outputs={"inception_score": True, "inception_score_norm": True, "mode_score": True},
            ),
            MetricSpec(
                name="frechet", label="Fréchet distance", kind="samples", fn=frechet,
                reference="heusel2017gans", outputs={"frechet_distance": False},
                needs_dataset=False,
            ),
            MetricSpec(
                name="kid", label="Kernel inception distance", kind="samples", fn=kid,
                reference="binkowski2018demystifying", outputs={"kid": False},
                needs_dataset=False, max_points=dist.KID_MAX_POINTS,
            ),
            MetricSpec(
                name="vendi", label="Vendi score", kind="samples", fn=vendi,
                reference="friedman2023vendi", outputs={"vendi": True, "vendi_norm": True},
                needs_dataset=False, max_points=dist.VENDI_MAX_POINTS,
            ),
            MetricSpec(
                name="rke", label="Rényi kernel entropy mode count", kind="samples", fn=rke,
                reference="jalali2023information", outputs={"rke": True}, needs_dataset=False,
                max_points=dist.RKE_MAX_POINTS,
            ),
            MetricSpec(
                name="ndb", label="Number of statistically different bins", kind="samples",
                fn=ndb, reference="richardson2018gans", outputs={"ndb": False, "ndb_jsd": False},
                needs_dataset=False, max_points=dist.NDB_MAX_POINTS,
            ),
            MetricSpec(
                name="hop_tv", label="Mode hopping (TV)", kind="trajectory", fn=hop_tv,
                reference="modecov", outputs={"hop_tv": False},
            ),
            MetricSpec(
                name="dominant_switches", label="Dominant-mode switches", kind="trajectory",
                fn=dominant_switches, reference="modecov", outputs={"dominant_switches": False},
            ),
            MetricSpec(
                name="modes_lost", label="Modes lost", kind="trajectory", fn=modes_lost,
                reference="modecov", outputs={"modes_lost": False},
            ),
            MetricSpec(
                name="steps_to_all_modes", label="Steps to all modes", kind="trajectory",
                fn=steps_to_all_modes, reference="modecov", outputs={"steps_to_all_modes": False},
            ),
            MetricSpec(
                name="prdc", label="Precision, recall, density, coverage", kind="distribution",
                fn=prdc, reference="kynkaanniemi2019improved,naeem2020reliable",
                outputs={"precision": True, "recall": True, "density": True, "coverage": True},
                max_points=dist.PRDC_MAX_POINTS,
            ),
            MetricSpec(
                name="mmd", label="MMD²", kind="distribution", fn=mmd2,
                reference="gretton2012kernel", outputs={"mmd2": False},
                max_points=dist.MMD_MAX_POINTS,
            ),
            MetricSpec(
                name="w2", label="Wasserstein-2", kind="distribution", fn=w2,
                reference="villani2009optimal", outputs={"w2": False},
                max_points=dist.W2_MAX_POINTS,
            ),
            MetricSpec(
                name="sliced_w2", label="Sliced Wasserstein-2", kind="distribution", fn=sliced_w2,
                reference="bonneel2015sliced", outputs={"sliced_w2": False},
                max_points=dist.SLICED_MAX_POINTS,
            ),
        )
    }
)  # fmt: skip


def _directions(metrics: Mapping[str, MetricSpec]) -> Mapping[str, bool]:
    """Every output key -> higher is better; an output key declared twice is an error."""
    directions: dict[str, bool] = {}
    for spec in metrics.values():
        for key, higher in spec.outputs.items():
            if key in directions:
                raise ValueError(f"output {key!r} of metric {spec.name!r} is declared twice")
            directions[key] = higher
    return MappingProxyType(directions)


DIRECTIONS: Mapping[str, bool] = _directions(METRICS)
"""Every output key of every metric -> True when higher is better (read by the report)."""


def sample_caps(kind: str | None = None) -> dict[str, int]:
    """Metric name -> most samples per side it reads (``MetricSpec.max_points``), for the
    metrics (of ``kind``, when given) that cap them: provenance for the manifest; the large
    final set is as large as the largest cap of the distribution metrics."""
    return {
        name: spec.max_points
        for name, spec in METRICS.items()
        if spec.max_points and kind in (None, spec.kind)
    }


def snapshot_metrics() -> tuple[str, ...]:
    """The samples metrics scored at every trajectory snapshot (``every_snapshot``)."""
    return tuple(name for name, spec in METRICS.items() if spec.every_snapshot)


def parse_versions(text: str) -> dict[str, int]:
    """The ``name -> version`` of a ``metric_versions`` string (``versions``' inverse)."""
    return {k: int(v) for k, v in (p.split("=", 1) for p in str(text).split(";") if "=" in p)}


def versions(metrics: Mapping[str, MetricSpec] | None = None) -> str:
    """``name=version`` of every metric, sorted by name and ``;``-joined: the
    ``metric_versions`` a stored row records, so a store can tell rows computed by another
    implementation of any metric (a metric missing from a stored row's string counts as
    changed: the row lacks its outputs)."""
    metrics = METRICS if metrics is None else metrics
    return ";".join(f"{name}={metrics[name].version}" for name in sorted(metrics))


def _select(names: Iterable[str] | None, kind: str) -> list[MetricSpec]:
    """The specs of ``kind`` named in ``names`` (all of them when None), in order."""
    of_kind = [spec.name for spec in METRICS.values() if spec.kind == kind]
    if names is None:
        return [METRICS[name] for name in of_kind]
    if isinstance(names, str):
        raise ConfigError(f"names must be a list of {kind} metric names, not the string {names!r}")
    selected = list(dict.fromkeys(names))
    for name in selected:
        if name not in of_kind:
            raise unknown(f"{kind} metric", name, of_kind)
    return [METRICS[name] for name in selected]


def _run(spec: MetricSpec, **kwargs) -> dict[str, Tensor]:
    """Call a metric and check that it returned exactly its declared outputs."""
    result = spec.fn(**kwargs)
    if set(result) != set(spec.outputs):
        raise RuntimeError(
            f"metric {spec.name!r} returned {sorted(result)}, declared {sorted(spec.outputs)}"
        )
    return result


def score_samples(
    *, fake: Tensor, real: Tensor, data: Dataset | None, names: Iterable[str] | None = None
) -> dict[str, Tensor]:
    """Run the samples metrics on generated samples.

    Args:
        fake: (S, N, D) generated samples, one set per seed.
        real: (N', D) real samples, shared by all seeds.
        data: the dataset that defines the modes, or None for sample sets from outside
            modecov (only the metrics with ``needs_dataset`` False run then).
        names: keys of ``kind == "samples"`` metrics to run; all of them (that apply) when
            None.

    Returns:
        Every output key of the chosen metrics -> (S,) float64 tensor.

    Raises:
        ConfigError: a name is not a samples metric, or needs a dataset and ``data`` is None.
    """
    specs = _select(names, "samples")
    if data is None:
        if names is None:
            specs = [spec for spec in specs if not spec.needs_dataset]
        for spec in specs:
            if spec.needs_dataset:
                raise ConfigError(f"samples metric {spec.name!r} needs a dataset's modes")
    out: dict[str, Tensor] = {}
    for spec in specs:
        out.update(_run(spec, fake=fake, real=real, data=data))
    return out


def score_distribution(
    *, fake: Tensor, real: Tensor, data: Dataset | None = None, names: Iterable[str] | None = None
) -> dict[str, Tensor]:
    """Run the distribution metrics (precision, recall, MMD², W2 ...) between two sample sets.

    Args:
        fake: (S, N, D) generated samples, one set per seed (the large final set).
        real: (N', D) real samples, shared by all seeds.
        data: the dataset, or None when scoring sample sets from outside modecov.
        names: keys of ``kind == "distribution"`` metrics to run; all of them when None.

    Returns:
        Every output key of the chosen metrics -> (S,) float64 tensor.

    Raises:
        ConfigError: a name is not a distribution metric.
    """
    out: dict[str, Tensor] = {}
    for spec in _select(names, "distribution"):
        out.update(_run(spec, fake=fake, real=real, data=data))
    return out


def score_trajectory(
    *, steps: Tensor, counts: Tensor, data: Dataset, names: Iterable[str] | None = None
) -> dict[str, Tensor]:
    """Run the trajectory metrics on the HQ mode counts recorded during training.

    Args:
        steps: (T,) training step of each snapshot.
        counts: (T, S, K) HQ samples per mode, per snapshot and seed (``mode_counts`` at
            each snapshot, stacked).
        data: the dataset whose K modes the counts are over.
        names: keys of ``kind == "trajectory"`` metrics to run; all of them when None.

    Returns:
        Every output key of the chosen metrics -> (S,) float64 tensor.

    Raises:
        ConfigError: a name is not a trajectory metric.
    """
    out: dict[str, Tensor] = {}
    for spec in _select(names, "trajectory"):
        out.update(_run(spec, steps=steps, counts=counts, data=data))
    return out


__all__ = [
    "DIRECTIONS",
    "KINDS",
    "METRICS",
    "MetricSpec",
    "mode_counts",
    "parse_versions",
    "sample_caps",
    "score_distribution",
    "score_samples",
    "score_trajectory",
    "snapshot_metrics",
    "versions",
]
