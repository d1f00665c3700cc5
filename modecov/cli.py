"""The ``modecov`` command: list, run, report, score, animate."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import math
import os
import sys
import warnings
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

from modecov.errors import ConfigError, ModecovError, unknown

log = logging.getLogger("modecov")


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line and exit code 2."""

    def error(self, message: str):  # noqa: D102
        self.exit(2, f"modecov: error: {message} (see `{self.prog} --help`)\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="modecov", description="Benchmark suite for mode collapse in GANs.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    sub.add_parser("list", help="datasets, variants, metrics and suites")

    r = sub.add_parser("run", help="train and score a suite or a selection")
    r.add_argument("--suite", help="a named suite (see `modecov list`)")
    r.add_argument("--variants", help="comma-separated variant keys")
    r.add_argument("--datasets", help="comma-separated dataset keys")
    r.add_argument("--seeds", help="seeds, e.g. 0-9 or 0,3,5")
    r.add_argument("--steps", help="generator updates")
    r.add_argument("--batch-size", dest="batch_size", help="batch size B")
    r.add_argument("--device", help="auto|cpu|cuda (default auto)")
    r.add_argument("--workers", default="auto", help="worker processes (default: one per core)")
    r.add_argument("--out", help="results directory (default results/<suite>)")
    r.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="set any RunConfig field, e.g. --set lr=1e-3 (repeatable)")  # fmt: skip
    r.add_argument("--backend", default="local", choices=("local", "ray"),
                   help="local processes or a Ray cluster (default local)")  # fmt: skip
    r.add_argument("--address", help="address of a running Ray cluster (default: start a "
                   "local Ray with --workers CPUs)")  # fmt: skip
    r.add_argument("--rerun-stale", dest="rerun_stale", action="store_true",
                   help="re-run and replace stored rows computed by another version of their "
                   "variant or of a metric (default: refuse them)")  # fmt: skip
    r.add_argument("--quiet", action="store_true",
                   help="no progress (default: bars on a tty, else a line a group)")  # fmt: skip
    r.add_argument("--mnist", metavar="DIR", help="directory of the MNIST IDX files, for "
                   "--datasets stacked_mnist (default $MODECOV_MNIST)")  # fmt: skip

    rep = sub.add_parser("report", help="summary, tables, figures and README from a results dir")
    rep.add_argument("dir", help="results directory holding runs.csv")
    rep.add_argument(
        "--stat",
        default="mean",
        choices=("mean", "median", "iqm"),
        help="point estimate over seeds (default mean)",
    )
    rep.add_argument(
        "--interval",
        default="ci95",
        choices=("ci95", "std", "sem"),
        help="95%% bootstrap interval, ± std or ± sem (default ci95)",
    )
    rep.add_argument("--baseline", help="variant for the probability-of-improvement tables "
                     "(default nsgan)")  # fmt: skip

    a = sub.add_parser("animate", help="training movie (GIF): losses and D's accuracy, samples, "
                       "D over the latent square and the sample space (Z = 2)")  # fmt: skip
    a.add_argument("--variant", required=True, help="a trained variant key")
    a.add_argument("--dataset", required=True, help="a 2-D dataset key")
    a.add_argument("--seed", default="0", help="training seed (default 0)")
    a.add_argument("--steps", default="2000", help="generator updates (default 2000)")
    a.add_argument("--frames", default="60", help="frames of the movie (default 60)")
    a.add_argument("--out", help="GIF path (default <variant>_<dataset>.gif)")
    a.add_argument("--latent-grid", metavar="PATH", help="also write where a grid of latent "
                   "points lands under the final G (.png or .pdf)")  # fmt: skip

    s = sub.add_parser("score", help="score samples from any generator")
    s.add_argument("file", help=".npy, .npz or .csv holding (N, D) or (S, N, D) samples")
    s.add_argument("--dataset", help="dataset key whose modes define the mode scores")
    s.add_argument("--real", help="real samples (same formats; an (S, N, D) file is pooled) for "
                   "the distribution metrics: precision, recall, density, coverage, mmd2, w2, "
                   "sliced_w2; and the reference of the Fréchet distance, KID, Vendi, RKE and "
                   "NDB, which it adds with or without --dataset")  # fmt: skip
    s.add_argument("--metrics", help="comma-separated metric names (default: all that apply)")
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.add_argument("--mnist", metavar="DIR", help="directory of the MNIST IDX files, for "
                   "--dataset stacked_mnist (default $MODECOV_MNIST)")  # fmt: skip
    return p


def _split(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _int_arg(name: str, text: str, low: int = 0) -> int:
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        raise ConfigError(f"--{name}: expected an integer, got {text!r}") from None
    if value < low:
        raise ConfigError(f"--{name}: must be >= {low}, got {value}")
    return value


def _check_dataset(name: str) -> None:
    """Refuse an unknown dataset key, and a user-file dataset whose files are not named or not
    valid (one line, before anything is written)."""
    from modecov.data import DATASETS, USER_DATASETS

    if name in USER_DATASETS and name not in DATASETS:
        raise ConfigError(f"dataset {name!r} needs {USER_DATASETS[name].needs}")
    if name not in DATASETS:
        raise unknown("dataset", name, dict.fromkeys([*DATASETS, *USER_DATASETS]))
    if name in USER_DATASETS:
        DATASETS[name].check()


@contextlib.contextmanager
def _mnist_dir(path: str | None):
    """Name the MNIST directory (``--mnist``, over ``$MODECOV_MNIST``) for this command and
    the worker processes it starts, and check its files."""
    from modecov.data.mnist import ENV, StackedMnist

    if path is None:
        yield
        return
    old = os.environ.get(ENV)
    os.environ[ENV] = str(Path(path).expanduser().resolve())
    try:
        StackedMnist.from_env().check()
        yield
    finally:
        if old is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = old


def cmd_list(_: argparse.Namespace) -> int:
    from modecov.config import SUITES, suite
    from modecov.data import DATASETS, USER_DATASETS
    from modecov.metrics import METRICS
    from modecov.variants import REFERENCES, VARIANTS

    print("datasets:")
    for d in DATASETS.values():
        print(f"  {d.name:<20} {d.label} (D={d.dim}, K={d.n_modes})")
    for key, cls in USER_DATASETS.items():
        if key not in DATASETS:
            print(f"  {key:<20} {cls.label} (D={cls.dim}, K={cls.K}; needs {cls.needs})")
    print("variants:")
    for v in VARIANTS.values():
        print(f"  {v.name:<20} {v.label} [{v.reference}]")
    print("references:")
    for v in REFERENCES.values():
        print(f"  {v.name:<20} {v.label}")
    print("metrics:")
    for m in METRICS.values():
        outs = ", ".join(f"{k} {'↑' if up else '↓'}" for k, up in m.outputs.items())
        print(f"  {m.name:<20} {outs}")
    print("suites:")
    for name in SUITES:
        cfgs = suite(name)
        seeds = max(len(c.seeds) for c in cfgs)
        lo, hi = min(c.steps for c in cfgs), max(c.steps for c in cfgs)
        steps = f"{lo}" if lo == hi else f"{lo}-{hi}"
        print(f"  {name:<20} {len(cfgs)} groups, {seeds} seeds, {steps} steps")
    from modecov.metricbench import NAME, MetricSuite

    grid = MetricSuite()  # built now: the registry may have grown since import

    print(f"  {NAME:<20} {len(grid.cells())} cells, {len(grid.seeds)} seeds, no training")
    return 0


def _configs(args: argparse.Namespace):
    from modecov.config import grid_configs, parse_seeds, parse_value, suite
    from modecov.variants import REFERENCES, VARIANTS

    overrides: dict = {}
    for item in args.set:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE")
        key, value = item.split("=", 1)
        if key.strip() in ("dataset", "variant"):
            raise ConfigError(f"--set {key.strip()}: use --{key.strip()}s to choose it")
        overrides[key.strip()] = parse_value(key.strip(), value.strip())
    if args.seeds is not None:
        overrides["seeds"] = parse_seeds(args.seeds)
    if args.steps is not None:
        overrides["steps"] = _int_arg("steps", args.steps)
    if args.batch_size is not None:
        overrides["batch_size"] = _int_arg("batch-size", args.batch_size, 1)
    if args.device is not None:
        overrides["device"] = args.device
    variants = _split(args.variants) if args.variants else None
    datasets = _split(args.datasets) if args.datasets else None
    for v in variants or ():
        if v not in VARIANTS and v not in REFERENCES:
            raise unknown("variant", v, [*VARIANTS, *REFERENCES])
    for d in datasets or ():
        _check_dataset(d)
    if args.suite:
        configs = suite(args.suite)
        for kind, names in (("variant", variants), ("dataset", datasets)):
            have = list(dict.fromkeys(getattr(c, kind) for c in configs))
            for n in names or ():
                if n not in have:  # the filter below would silently drop it
                    raise ConfigError(f"{kind} {n!r} is not in suite {args.suite!r}; "
                                      f"it has {', '.join(have)}")  # fmt: skip
        if variants:
            configs = tuple(c for c in configs if c.variant in variants or c.is_reference)
        if datasets:
            configs = tuple(c for c in configs if c.dataset in datasets)
        configs = tuple(dataclasses.replace(c, **overrides) for c in configs)
        name = args.suite
    else:
        if not variants or not datasets:
            raise ConfigError("give --suite NAME, or both --variants and --datasets")
        configs = grid_configs(variants=variants, datasets=datasets, **overrides)
        name = "custom"
    if not configs:
        raise ConfigError("the selection is empty: no group matches --variants/--datasets")
    return name, configs


def cmd_run(args: argparse.Namespace) -> int:
    if args.suite == "metrics":  # the metric benchmark: no RunConfigs, no training
        from modecov.metricbench import run_from_args

        return run_from_args(args)
    with _mnist_dir(args.mnist):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    from modecov.backends import require_ray, run_local, run_ray
    from modecov.config import RunConfig
    from modecov.data import DATASETS, USER_DATASETS
    from modecov.device import device_name, resolve
    from modecov.progress import Progress, choose_mode
    from modecov.store import Store, machine

    name, configs = _configs(args)
    if args.workers == "auto":
        workers = os.cpu_count() or 1
    else:
        workers = _int_arg("workers", args.workers, 1)
    out_dir = Path(args.out or f"results/{name}")
    # Refuse an unavailable device, a missing Ray or a bad address before touching the store.
    if args.address is not None and args.backend != "ray":
        raise ConfigError("--address needs --backend ray")
    if args.backend == "ray":
        require_ray(args.address)
        where = f"ray ({args.address or 'local'})"  # each task resolves its own device
    else:
        where = device_name(resolve(configs[0].device))
    with Store(out_dir) as store:
        stale = store.check(*configs, rerun_stale=args.rerun_stale)
        done = store.done() - stale
        todo: list[RunConfig] = []
        for cfg in configs:
            missing = tuple(s for s in cfg.seeds if (cfg.config_id, s) not in done)
            if missing:
                todo.append(dataclasses.replace(cfg, seeds=missing))
        skipped = len(configs) - len(todo)
        files: dict[str, str] = {}  # user-file datasets: train a classifier once, not per worker
        for d in dict.fromkeys(c.dataset for c in todo if c.dataset in USER_DATASETS):
            files.update(DATASETS[d].prepare())
        provenance = machine()
        started = datetime.now(timezone.utc).isoformat(timespec="seconds")
        store.write_manifest(
            suite=name,
            started_at=started,
            device_name=where,
            sample_counts={"n_eval": sorted({c.n_eval for c in configs}),
                           "n_eval_large": sorted({c.n_eval_large for c in configs})},
            **provenance, **files,
        )  # fmt: skip
        mode = choose_mode(quiet=args.quiet)
        if mode != "quiet":
            pool = f"Ray at {args.address}" if args.address else f"{workers} workers"
            again = f" ({len(stale)} stale rows re-run)" if stale else ""
            print(f"modecov: {len(todo)} groups to run{again}, {skipped} already stored, "
                  f"{pool} -> {out_dir}", file=sys.stderr)  # fmt: skip
        commit = provenance["git_commit"]
        todo.sort(key=lambda c: -c.cost)  # longest first balances the workers
        devices: set[str] = set()
        with Progress(todo, mode=mode) as progress:
            if args.backend == "ray":
                finished = run_ray(todo, workers=workers, address=args.address)
            else:
                on_step = progress.step if mode == "bars" else None
                finished = run_local(todo, workers=workers, on_step=on_step)
            for i, out in finished:
                store.commit(out, commit=commit)
                devices.add(out.device)
                progress.done(i, out)
        if args.backend == "ray" and devices:
            store.write_manifest(device_name=", ".join(sorted(devices)))
        store.write_manifest(finished_at=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from modecov import report

    for path in report.build(
        args.dir, stat=args.stat, interval=args.interval, baseline=args.baseline
    ):
        print(path)
    return 0


def cmd_animate(args: argparse.Namespace) -> int:
    from modecov.animate import animate

    for path in animate(
        args.variant,
        args.dataset,
        seed=_int_arg("seed", args.seed),
        steps=_int_arg("steps", args.steps, 1),
        frames=_int_arg("frames", args.frames, 1),
        out=args.out,
        latent_grid_out=args.latent_grid,
    ):
        print(path)
    return 0


def load_samples(path: str, dim: int | None = None, *, what: str = "samples"):
    """Read (N, D) or (S, N, D) samples from .npy, .npz or .csv, checking what users get wrong."""
    import numpy as np

    p = Path(path)
    if not p.exists():
        raise ModecovError(f"{what} file {path} does not exist")
    try:
        if p.suffix == ".npy":
            arr = np.load(p, allow_pickle=False)
        elif p.suffix == ".npz":
            with np.load(p, allow_pickle=False) as z:
                if not z.files:
                    raise ModecovError(f"{path} holds no array")
                arr = z[z.files[0]]
        elif p.suffix == ".csv":
            with warnings.catch_warnings():  # an empty file warns; it is refused below
                warnings.simplefilter("ignore")
                arr = np.loadtxt(p, delimiter=",", ndmin=2, dtype=np.float64)
        else:
            raise ModecovError(
                f"{path}: unsupported format {p.suffix or '(none)'}; use .npy, .npz or .csv"
            )
    except ModecovError:
        raise
    except (ValueError, OSError, EOFError) as exc:
        raise ModecovError(
            f"{path} is not a readable array file ({str(exc).splitlines()[0]})"
        ) from None
    if not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise ModecovError(f"{path} holds {arr.dtype} values, not real numbers")
    if arr.ndim not in (2, 3):
        raise ModecovError(f"{path} has shape {arr.shape}; expected (N, D) or (S, N, D)")
    if arr.shape[-2] == 0 or arr.shape[0] == 0:
        raise ModecovError(f"{path} has no samples (shape {arr.shape})")
    if dim is not None and arr.shape[-1] != dim:
        raise ModecovError(f"{path} has dimension {arr.shape[-1]} but the dataset has D={dim}")
    if not np.isfinite(arr).all():
        bad = int((~np.isfinite(arr)).sum())
        raise ModecovError(f"{path} holds {bad} NaN or infinite values")
    return arr.astype(np.float64) if arr.ndim == 3 else arr[None].astype(np.float64)


def _score_names(metrics, text: str | None, *, dataset: bool, real: bool) -> dict[str, list[str]]:
    """Kind -> metric names chosen by ``--metrics`` (default: every metric that applies with
    the ``--dataset`` and ``--real`` given); an output key (modes_covered) selects the metric
    that computes it."""

    def applies(spec) -> bool:
        if spec.kind == "samples":  # the Fréchet distance needs only a real set
            return dataset or (real and not spec.needs_dataset)
        return spec.kind == "distribution" and real

    if text is None:
        every: dict[str, list[str]] = {}
        for spec in metrics.METRICS.values():
            if applies(spec):
                every.setdefault(spec.kind, []).append(spec.name)
        return every
    names = _split(text)
    if not names:
        raise ConfigError("--metrics: name at least one metric (see `modecov list`)")
    owner = {k: m.name for m in metrics.METRICS.values() for k in m.outputs}
    chosen: dict[str, list[str]] = {}
    for n in names:
        if n not in metrics.METRICS and n not in metrics.DIRECTIONS:
            raise unknown("metric", n, [*metrics.METRICS, *metrics.DIRECTIONS])
        spec = metrics.METRICS[owner.get(n, n)]
        kind = spec.kind
        if kind == "distribution" and not applies(spec):
            raise ConfigError(f"--metrics {n}: compares two sample sets; give --real FILE")
        if kind == "samples" and not applies(spec):
            raise ConfigError(f"--metrics {n}: needs the modes of a dataset; give --dataset NAME")
        if not applies(spec):
            raise ConfigError(f"--metrics {n}: scores a training trajectory, not samples")
        chosen.setdefault(kind, [])
        if owner.get(n, n) not in chosen[kind]:
            chosen[kind].append(owner.get(n, n))
    return chosen


def cmd_score(args: argparse.Namespace) -> int:
    with _mnist_dir(args.mnist):
        return _score(args)


def _score(args: argparse.Namespace) -> int:
    import torch

    from modecov import metrics
    from modecov.data import DATASETS
    from modecov.metrics.distribution import K_NEIGHBOURS, MIN_SAMPLES

    if args.dataset is None and args.real is None:
        raise ConfigError("give --dataset NAME (mode metrics), --real FILE (distribution "
                          "metrics), or both")  # fmt: skip
    data = None
    if args.dataset is not None:
        _check_dataset(args.dataset)
        data = DATASETS[args.dataset]
    chosen = _score_names(
        metrics, args.metrics, dataset=data is not None, real=args.real is not None
    )
    dim = None if data is None else data.dim
    fake = torch.from_numpy(load_samples(args.file, dim))
    if fake.shape[1] < 2:
        raise ModecovError(f"{args.file} has {fake.shape[1]} sample; give at least 2")
    if args.real is not None:
        real = torch.from_numpy(load_samples(args.real, dim, what="real"))
        real = real.reshape(-1, real.shape[-1])
        if fake.shape[-1] != real.shape[-1]:
            raise ModecovError(f"{args.file} has dimension {fake.shape[-1]} but {args.real} has "
                               f"dimension {real.shape[-1]}")  # fmt: skip
        need = f"the k = {K_NEIGHBOURS} nearest-neighbour metrics need at least {MIN_SAMPLES}"
        if fake.shape[1] < MIN_SAMPLES:
            raise ModecovError(f"{args.file} has {fake.shape[1]} samples per set; {need}")
        if real.shape[0] < MIN_SAMPLES:
            raise ModecovError(f"{args.real} has {real.shape[0]} samples; {need}")
        if bool((real == real[0]).all()):
            raise ModecovError(f"{args.real}: every sample is the same point; the kernel "
                               f"metrics' bandwidth (the median distance) needs 2 distinct "
                               f"samples")  # fmt: skip
    else:
        real = data.sample(
            max(fake.shape[1], 2_500), torch.Generator().manual_seed(2_026), dtype=torch.float64
        )
    scores: dict = {}
    run = {"samples": metrics.score_samples, "distribution": metrics.score_distribution}
    for kind, names in chosen.items():
        scores.update(run[kind](fake=fake, real=real, data=data, names=names))
    if args.metrics is not None:
        wanted = {
            o for n in _split(args.metrics)
            for o in (metrics.METRICS[n].outputs if n in metrics.METRICS else [n])
        }  # fmt: skip
        scores = {k: v for k, v in scores.items() if k in wanted}
    result = {k: [float(x) for x in v] for k, v in scores.items()}
    if args.json:
        # Strict JSON has no NaN: an undefined score (no HQ sample) is null.
        strict = {k: [x if math.isfinite(x) else None for x in v] for k, v in result.items()}
        print(json.dumps(strict))
    else:
        for k, vals in result.items():
            arrow = "↑" if metrics.DIRECTIONS.get(k, True) else "↓"
            print(f"{k:<22}{arrow} " + "  ".join(f"{v:.6g}" for v in vals))
    return 0


COMMANDS = {
    "list": cmd_list,
    "run": cmd_run,
    "report": cmd_report,
    "score": cmd_score,
    "animate": cmd_animate,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``modecov`` console script."""
    logging.basicConfig(level=logging.WARNING, format="modecov: %(message)s")
    args = _parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except ModecovError as exc:
        print(f"modecov: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("modecov: interrupted; finished groups are stored", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
