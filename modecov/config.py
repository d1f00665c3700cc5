"""RunConfig (one training group: a variant, a dataset, hyper-parameters, its seeds) and SUITES."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from types import MappingProxyType

from modecov.data import BUNDLED, DATASETS
from modecov.device import DEVICES
from modecov.errors import ConfigError, unknown
from modecov.variants import REFERENCES, VARIANTS

EXECUTION_FIELDS = ("seeds", "device")
"""Fields that say where and for which seeds a group runs, not what it computes."""


@dataclass(frozen=True, kw_only=True, slots=True)
class RunConfig:
    """Everything that defines a training group; validated on construction."""

    dataset: str
    """Key in DATASETS."""
    variant: str
    """Key in VARIANTS (or REFERENCES for the calibration samplers)."""
    seeds: tuple[int, ...] = (0,)
    """Seeds trained together in one vectorised group; not part of config_id."""
    steps: int = 5_000
    """Generator updates."""
    batch_size: int = 256
    """B, samples per batch (real and generated)."""
    z_dim: int = 2
    """Z, latent dimension; z ~ N(0, I)."""
    hidden: int = 128
    """Width of every hidden layer of G and D."""
    depth: int = 3
    """Hidden layers of G and D."""
    lr: float | None = None
    """Learning rate of every network; None = the variant's default."""
    beta1: float | None = None
    """Adam beta1; None = the variant's default."""
    beta2: float | None = None
    """Adam beta2; None = the variant's default."""
    eval_every: int = 500
    """Generator updates between trajectory snapshots."""
    n_eval: int = 2_500
    """Samples scored per snapshot and for the final mode metrics (VEEGAN/PacGAN count)."""
    n_eval_large: int = 25_000
    """Samples for the distribution-level metrics at the end."""
    eval_seed: int = 2_024
    """Seed of the fixed evaluation noise, shared by every seed of a group."""
    dtype: str = "float32"
    """Training precision: float32 or float64."""
    device: str = "auto"
    """auto|cpu|cuda; not part of config_id (recorded as provenance)."""

    def __post_init__(self) -> None:
        if self.dataset not in DATASETS:
            raise unknown("dataset", self.dataset, DATASETS)
        if self.variant not in VARIANTS and self.variant not in REFERENCES:
            raise unknown("variant", self.variant, [*VARIANTS, *REFERENCES])
        if not self.seeds:
            raise ConfigError("seeds: give at least one seed")
        if len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"seeds: duplicates in {list(self.seeds)}")
        for s in self.seeds:
            _check_int("seed", s, 0, 2**31 - 1)
        _check_int("steps", self.steps, 0, 10**8)
        _check_int("batch_size", self.batch_size, 1, 2**20)
        _check_int("z_dim", self.z_dim, 1, 4096)
        _check_int("hidden", self.hidden, 1, 65536)
        _check_int("depth", self.depth, 0, 64)
        _check_int("eval_every", self.eval_every, 1, 10**8)
        _check_int("n_eval", self.n_eval, 10, 10**7)
        _check_int("n_eval_large", self.n_eval_large, 10, 10**7)
        _check_int("eval_seed", self.eval_seed, 0, 2**31 - 1)
        if self.lr is not None and not 0.0 < self.lr <= 1.0:
            raise ConfigError(f"lr must be in (0, 1], got {self.lr}")
        for name in ("beta1", "beta2"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value < 1.0:
                raise ConfigError(f"{name} must be in [0, 1), got {value}")
        if self.dtype not in ("float32", "float64"):
            raise ConfigError(f"dtype must be float32 or float64, got {self.dtype!r}")
        if self.device not in DEVICES:
            raise unknown("device", self.device, DEVICES)
        # A dataset with networks of its own (stacked_digits' conv pair) may refuse a variant.
        if not self.is_reference:
            DATASETS[self.dataset].check_variant(self.spec)

    @property
    def spec(self):
        """The Variant (or reference sampler) this config trains."""
        return VARIANTS.get(self.variant) or REFERENCES[self.variant]

    @property
    def cost(self) -> float:
        """Relative training cost (multiply-adds of a network per sample, times batch, steps,
        seeds and the variant's relative step cost), used to start the longest groups first."""
        if self.is_reference:
            return 0.0
        dim = DATASETS[self.dataset].dim
        per_net = self.hidden * self.hidden * max(self.depth - 1, 0) + self.hidden * (
            dim + self.z_dim
        )
        work = self.steps * len(self.seeds) * self.batch_size * per_net
        return float(work * self.spec.relative_cost)

    @property
    def is_reference(self) -> bool:
        """True for the calibration samplers, which are scored but not trained."""
        return self.variant in REFERENCES

    def canonical(self) -> dict:
        """The fields that define the computation (everything but seeds and device)."""
        return {
            f.name: getattr(self, f.name) for f in fields(self) if f.name not in EXECUTION_FIELDS
        }

    @property
    def config_id(self) -> str:
        """Short hash of the canonical config: the same for every seed of a group."""
        blob = json.dumps(self.canonical(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


def _check_int(name: str, value, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name} must be an integer, got {value!r}")
    if not low <= value <= high:
        raise ConfigError(f"{name} must be in [{low}, {high}], got {value}")


FIELD_TYPES: Mapping[str, type] = MappingProxyType({f.name: f.type for f in fields(RunConfig)})


def parse_value(name: str, text: str):
    """Parse ``--set name=text`` into the type of RunConfig field ``name``."""
    if name not in FIELD_TYPES:
        raise unknown("config field", name, [f for f in FIELD_TYPES if f != "seeds"])
    kind = FIELD_TYPES[name]
    if name == "seeds":
        return parse_seeds(text)
    try:
        if kind == "int":
            return int(text.replace("_", ""))
        if kind == "float | None":
            return None if text.lower() == "none" else float(text)
    except ValueError:
        expected = "an integer" if kind == "int" else "a number or none"
        raise ConfigError(f"--set {name}: expected {expected}, got {text!r}") from None
    return text


MAX_SEEDS = 10_000
"""More seeds than this in one command is a typo, not an experiment."""


def parse_seeds(text: str) -> tuple[int, ...]:
    """Parse ``0-9``, ``0,3,5`` or a mix (``0-4,8``) into a tuple of seeds."""
    seeds: list[int] = []
    try:
        for part in text.split(","):
            part = part.strip()
            if "-" in part:
                lo, hi = (int(p) for p in part.split("-", 1))
                if hi < lo:
                    raise ValueError
                if hi - lo >= MAX_SEEDS:
                    raise ConfigError(f"--seeds: {text!r} names more than {MAX_SEEDS} seeds")
                seeds.extend(range(lo, hi + 1))
            else:
                seeds.append(int(part))
    except ValueError:
        raise ConfigError(
            f"--seeds: cannot read {text!r}; use a range like 0-9 or a list like 0,3,5"
        ) from None
    if any(s < 0 for s in seeds):
        raise ConfigError(f"--seeds: seeds must be >= 0, got {text!r}")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"--seeds: {text!r} names a seed twice")
    return tuple(seeds)


def grid_configs(
    *, variants: Sequence[str], datasets: Sequence[str], references: bool = True, **overrides
) -> tuple[RunConfig, ...]:
    """One config per (variant, dataset), plus the reference samplers per dataset. A dataset's
    ``config_defaults`` (stacked_digits' Z = 100) apply unless ``overrides`` set the field."""
    names = [*variants, *(REFERENCES if references else ())]
    return tuple(
        RunConfig(dataset=d, variant=v, **{**_dataset_defaults(d), **overrides})
        for d in datasets
        for v in names
    )


def _dataset_defaults(name: str) -> Mapping:
    """RunConfig fields that dataset ``name`` sets unless the user does (none for most)."""
    return DATASETS[name].config_defaults if name in DATASETS else {}


def comparison_sets() -> tuple[str, ...]:
    """The datasets of the mission's comparison (``Dataset.comparison``), in registry order:
    the mixtures ring8 and grid25 and the imbalanced ring8_imbalanced and heavy_center."""
    return tuple(name for name, data in BUNDLED.items() if data.comparison)


def accepted_variants(dataset: str) -> tuple[str, ...]:
    """Every registered variant that ``dataset`` can train (``Dataset.accepts``)."""
    data = BUNDLED[dataset]
    return tuple(name for name, v in VARIANTS.items() if data.accepts(v))


TOY_CORE = comparison_sets()
"""``comparison_sets()`` of the registry as imported (for figures and tests)."""

VALIDATION_VARIANTS = (
    "gan",
    "nsgan",
    "bigan",
    "bigan_pgp",
    "mbd",
    "unrolled",
    "veegan",
    "pacgan2",
    "pacgan4",
    "wgan",
    "wgan_gp",
    "rpgan",
    "gdpp",
    "topk",
    "dragan",
)
"""Variants with a published 2-D ring or grid result (VEEGAN and PacGAN Table 1, Unrolled
GAN's ring, WGAN-GP's 8 and 25 Gaussians, GDPP's ring and grid; ALI is `bigan`) or a
published mode-collapse claim to set beside a toy measurement (BiGAN-PGP, RpGAN, Top-k,
DRAGAN), compared in
results/validation.md: their ring8 runs are `default`'s, their grid25 runs the
`validation` suite (the same configs as `default`'s grid25 row, stored in both)."""
VALIDATION_LONG = MappingProxyType(
    {
        "grid25": ("gan", "nsgan", "bigan", "veegan", "pacgan2", "pacgan4"),
        "ring8": ("bigan", "veegan", "pacgan4"),
    }
)
"""Groups the validation suite also runs 4x longer (20,000 steps): the cheap variants of
VEEGAN's and PacGAN's tables on grid25, where 5,000 steps leave every generator blurred,
and on ring8 those that disagree with the papers at 5,000 steps. The check of whether a
disagreement is protocol length."""
QUICK_SEEDS = 3
QUICK_STEPS = 300
"""The quick suite's protocol: every variant on the four sets of DESIGN's default
comparison (``comparison_sets``), 3 seeds, 300 steps, so that the whole look fits 15 minutes
of a 2-core CPU: measured 9 min 18 s with the report (12 min 54 s before MBD's compiled
kernels, when its four groups took 4.2 min of it; 16 min 20 s at 400 steps). No
generator has learnt a ring by then: a check that every variant runs and a first look at
where each heads, not numbers to cite."""
FAST_ADAM = MappingProxyType({"lr": 1e-3, "beta1": 0.9})
"""The fast Adam of the optim suite (the spiral article's), also a validation check."""
VALIDATION_CHECKS = (
    ("veegan", "ring8", MappingProxyType({"lr": 1e-3})),
    ("veegan", "ring8", MappingProxyType({"z_dim": 256})),
    ("gan", "ring8", FAST_ADAM),
    ("nsgan", "ring8", FAST_ADAM),
    ("unrolled", "ring8", FAST_ADAM),
)
"""Single-setting checks of results/validation.md, 5 seeds, 5,000 steps each: VEEGAN with
the faster learning rate and the wide latent of the Unrolled-GAN demo notebook (a common
toy setup of the time; whether VEEGAN's own toy code used them is not confirmed), and
Unrolled GAN against the GAN baselines under the fast Adam of the optim suite, the regime
where those baselines drop ring modes."""


def conv_variants() -> tuple[str, ...]:
    """Variants that train on stacked_digits' conv networks: all but those whose
    discriminator has a shape of its own (``make_d``)."""
    return tuple(k for k, v in VARIANTS.items() if v.make_d is None)


OPTIM_SETTINGS = (FAST_ADAM, MappingProxyType({"lr": 2e-4, "beta1": 0.5}))
"""The optimiser study (the spiral article): fast Adam against the DCGAN setting."""


def optim_configs() -> tuple[RunConfig, ...]:
    """NS-GAN on the spiral and ring8 under each of OPTIM_SETTINGS, 10 seeds, snapshots
    every 100 steps so the dynamics metrics (mode hopping) see the path, not its ends."""
    common = dict(seeds=tuple(range(10)), steps=5_000, eval_every=100)
    trained = tuple(
        cfg
        for opt in OPTIM_SETTINGS
        for cfg in grid_configs(
            variants=("nsgan",), datasets=("spiral", "ring8"), references=False, **common, **opt
        )
    )
    refs = grid_configs(variants=(), datasets=("spiral", "ring8"), **common)
    return trained + refs


_SUITES: dict[str, Callable[[], tuple[RunConfig, ...]]] = {
    "smoke": lambda: grid_configs(
        variants=("gan", "nsgan"), datasets=("ring8",), seeds=(0, 1), steps=20,
        eval_every=10, n_eval=500, n_eval_large=1000, batch_size=64, hidden=32,
    ),
    "quick": lambda: grid_configs(
        variants=tuple(VARIANTS), datasets=comparison_sets(), seeds=tuple(range(QUICK_SEEDS)),
        steps=QUICK_STEPS, eval_every=QUICK_STEPS // 4,
    ),
    # DESIGN §9: every variant on the mixtures and the imbalanced sets (``comparison_sets``),
    # at the 5,000 steps where NS-GAN learns ring8 (median HQ 0.71; 0.42 at 2,000 and 0.57
    # at 3,000). 2 h 24 min on a 2-core CPU, measured end to end (3 h 41 min before MBD's
    # compiled kernels; README, Suites).
    "default": lambda: grid_configs(
        variants=tuple(VARIANTS), datasets=comparison_sets(), seeds=tuple(range(5)), steps=5_000,
    ),
    "validation": lambda: grid_configs(
        variants=VALIDATION_VARIANTS, datasets=("grid25",), seeds=tuple(range(5)), steps=5_000,
    ) + tuple(
        cfg
        for dataset, variants in VALIDATION_LONG.items()
        for cfg in grid_configs(
            variants=variants, datasets=(dataset,), seeds=tuple(range(5)), steps=20_000,
            references=False,
        )
    ) + tuple(
        cfg
        for variant, dataset, setting in VALIDATION_CHECKS
        for cfg in grid_configs(
            variants=(variant,), datasets=(dataset,), seeds=tuple(range(5)), steps=5_000,
            references=False, **setting,
        )
    ),
    "paper": lambda: tuple(
        cfg
        for dataset in BUNDLED
        for cfg in grid_configs(
            variants=accepted_variants(dataset), datasets=(dataset,), seeds=tuple(range(10)),
            steps=25_000,
        )
    ),
    "optim": lambda: optim_configs(),
}  # fmt: skip

SUITES: Mapping[str, Callable[[], tuple[RunConfig, ...]]] = MappingProxyType(_SUITES)
"""Suite name -> a function building its configs (built lazily: suites are cheap data)."""


METRIC_SUITE = "metrics"
"""The metric benchmark's suite (``modecov.metricbench``): corruptions of the true samplers,
no training, so not a tuple of RunConfigs."""


def suite(name: str) -> tuple[RunConfig, ...]:
    """The configs of suite ``name``."""
    if name not in SUITES:
        raise unknown("suite", name, [*SUITES, METRIC_SUITE])
    return SUITES[name]()


def with_overrides(cfg: RunConfig, **changes) -> RunConfig:
    """``dataclasses.replace`` that keeps the validation errors as ConfigError."""
    try:
        return replace(cfg, **changes)
    except TypeError as exc:
        raise ConfigError(str(exc)) from None
