"""Every variant's step is GPU-ready (DESIGN §9): it never waits on the device, its random
streams live on the training device, and a seed's stream is its own.

On CPU only Python-level synchronisation can be caught: a step runs with every
``torch.Tensor`` method that reads a value back to the host made to raise. The ``gpu``
test runs the same steps on CUDA under ``torch.cuda.set_sync_debug_mode("error")``, which
also catches synchronising kernels and host-device copies.
"""

from __future__ import annotations

import pytest
import torch

import modecov.train
from modecov.config import RunConfig
from modecov.data import DATASETS
from modecov.device import fresh_streams
from modecov.errors import ConfigError
from modecov.evaluate import train
from modecov.steps import standard_step
from modecov.train import TrainState
from modecov.variants import VARIANTS, mbd

WARM_UP = 2
"""Steps before the check (first calls may cache)."""

CHECKED = 2
"""Steps run with host reads made to raise."""

READS = ("item", "tolist", "numpy", "cpu", "__bool__", "__float__", "__int__", "__index__")
"""``torch.Tensor`` methods that copy a value to the host and so wait for the device."""

DATA_DEPENDENT = ("nonzero", "masked_select", "unique")
"""Operations whose output shape depends on values: on a GPU the host must wait for them."""


READS_PENDING: dict[str, str] = {}
"""Variants whose step still reads the device, with where (issue 12); remove an entry when
its fix lands (the strict xfail then fails)."""

DRAWS_PENDING: dict[str, str] = {}
"""Variants whose step still draws from the CPU weight generators (then copies to the device)
instead of ``st.streams``."""

CUDA_PENDING: dict[str, str] = {}
"""Datasets whose sampler cannot yet draw with a device generator."""


def pending(reasons: dict[str, str], key: str) -> list:
    """A strict xfail mark when ``key`` is in ``reasons``."""
    if key not in reasons:
        return []
    return [pytest.mark.xfail(reason=reasons[key], strict=True)]


class HostSync(AssertionError):
    """A step read a tensor's value back to the host."""


def _raiser(name: str):
    def read(*args, **kwargs):
        raise HostSync(f"Tensor.{name} inside a step waits on the device")

    return read


def _has_bool_tensor(key) -> bool:
    keys = key if isinstance(key, tuple) else (key,)
    return any(isinstance(k, torch.Tensor) and k.dtype == torch.bool for k in keys)


@pytest.fixture
def no_host_sync(monkeypatch):
    """Within the test's ``with no_host_sync():`` blocks, host reads and data-dependent
    shapes (``nonzero``, boolean-mask indexing) raise ``HostSync``."""
    from contextlib import contextmanager

    get, put = torch.Tensor.__getitem__, torch.Tensor.__setitem__

    def getitem(self, key):
        if _has_bool_tensor(key):
            raise HostSync("boolean-mask indexing inside a step waits on the device")
        return get(self, key)

    def setitem(self, key, value):
        if _has_bool_tensor(key):
            raise HostSync("boolean-mask assignment inside a step waits on the device")
        return put(self, key, value)

    @contextmanager
    def guard():
        with monkeypatch.context() as m:
            for name in READS:
                m.setattr(torch.Tensor, name, _raiser(name))
            for name in DATA_DEPENDENT:
                m.setattr(torch.Tensor, name, _raiser(name))
                m.setattr(torch, name, _raiser(name))
            m.setattr(torch.Tensor, "__getitem__", getitem)
            m.setattr(torch.Tensor, "__setitem__", setitem)
            yield

    return guard


def tiny(dataset: str, variant: str, seeds=(0, 1, 2), **overrides) -> RunConfig:
    """A config whose steps take milliseconds."""
    base = dict(
        dataset=dataset, variant=variant, seeds=seeds, batch_size=32, hidden=16, depth=2,
        n_eval=100, n_eval_large=100, device="cpu",
    )  # fmt: skip
    if dataset == "stacked_digits":
        base.update(batch_size=8, hidden=4)
    return RunConfig(**{**base, **overrides})


def state(cfg: RunConfig) -> TrainState:
    return TrainState(cfg, DATASETS[cfg.dataset], cfg.spec, torch.device(cfg.device))


def run_steps(st: TrainState, n: int) -> dict[str, torch.Tensor]:
    step_fn = st.variant.step or standard_step
    out = {}
    for _ in range(n):
        st.step += 1
        out = step_fn(st)
    return out


def _digit_variants() -> list[str]:
    accepted = []
    for key, v in VARIANTS.items():
        try:
            DATASETS["stacked_digits"].check_variant(v)
        except ConfigError:
            continue
        accepted.append(key)
    return accepted


CASES = [
    *(("ring8", key) for key in VARIANTS),
    # Conv networks (vmapped over seeds) and an image sampler; a few variants cover them.
    *(
        ("stacked_digits", key)
        for key in ("nsgan", "pacgan2", "wgan_gp", "dragan", "topk")
        if key in _digit_variants()
    ),
]


@pytest.mark.parametrize(
    ("dataset", "variant"),
    [pytest.param(d, v, id=f"{d}-{v}", marks=pending(READS_PENDING, v)) for d, v in CASES],
)
def test_step_never_reads_the_device(dataset, variant, no_host_sync, monkeypatch):
    # MBD's compiled kernels run on CPU tensors only (they read host memory, which waits
    # on no device); the torch path is what a GPU runs, so that is the one checked.
    monkeypatch.setattr(mbd, "_on_host", lambda x: False)
    st = state(tiny(dataset, variant))
    run_steps(st, WARM_UP)
    with no_host_sync():
        out = run_steps(st, CHECKED)
    assert out and all(v.shape == (3,) for v in out.values())
    assert st.alive.all()


def test_the_host_reads_are_caught(no_host_sync):
    """The guard itself: each read it claims to catch raises inside it, and not after."""
    x = torch.ones(3)
    reads = [lambda: x.sum().item(), lambda: x.tolist(), lambda: x.numpy(), lambda: x.cpu(),
             lambda: bool(x[0]), lambda: float(x[0]), lambda: int(x[0]),
             lambda: [0, 1][x.long()[0]], lambda: x.nonzero(), lambda: torch.nonzero(x),
             lambda: x[x > 0], lambda: x.__setitem__(x > 0, 0.0)]  # fmt: skip
    with no_host_sync():
        for read in reads:
            with pytest.raises(HostSync):
                read()
    assert x.sum().item() == 3.0 and bool(x[0]) and x[x > 0].shape == (3,)


@pytest.mark.parametrize("variant", ["nsgan", "wgan_gp", "unrolled", "bigan"])
def test_divergence_is_recorded_without_reading_the_device(variant, no_host_sync):
    st = state(tiny("ring8", variant))
    run_steps(st, WARM_UP)
    with torch.no_grad():
        st.D.params[1, 0] = float("nan")
    frozen = st.G.params[1].clone()
    with no_host_sync():
        run_steps(st, CHECKED)
    assert st.alive.tolist() == [True, False, True]
    assert st.diverged_step == [None, WARM_UP + 1, None]
    assert torch.equal(st.G.params[1], frozen)


def test_divergence_reaches_the_output_and_the_log(caplog):
    cfg = tiny("ring8", "nsgan", steps=6, eval_every=3)

    def inject(st, losses):
        if st.step == 4:
            with torch.no_grad():
                st.D.params[2, 0] = float("nan")

    with caplog.at_level("WARNING", logger="modecov.train"):
        out = train(cfg, callback=inject)
    assert out.status == ["ok", "ok", "diverged"]
    assert out.diverged_step == [None, None, 5]
    logged = [r.getMessage() for r in caplog.records if r.name == "modecov.train"]
    assert logged == ["seed 2 diverged at step 5; frozen"]


@pytest.mark.parametrize("dataset", ["ring8", "spiral", "stacked_digits"])
def test_streams_live_on_the_training_device(dataset):
    st = state(tiny(dataset, "nsgan"))
    assert len(st.streams) == 3
    assert all(g.device == st.device for g in st.streams)
    assert st.real().device == st.device and st.noise().device == st.device
    # Initial weights come from CPU generators seeded with the seed alone (DESIGN §5).
    assert all(g.device.type == "cpu" for g in st.generators)


@pytest.fixture
def device_streams(monkeypatch):
    """Train as on an accelerator: per-seed streams apart from the weights' generators
    (on CPU they continue the weights' generator, as every stored result did)."""

    def streams(seeds, device, generators):
        return fresh_streams(seeds, device)

    monkeypatch.setattr(modecov.train, "random_streams", streams)


@pytest.mark.parametrize(
    "variant", [pytest.param(v, marks=pending(DRAWS_PENDING, v)) for v in VARIANTS]
)
def test_a_step_draws_only_from_the_streams(variant, device_streams):
    st = state(tiny("ring8", variant))
    assert all(s is not g for s, g in zip(st.streams, st.generators))
    before = [g.get_state() for g in st.generators]
    run_steps(st, CHECKED)
    assert all(torch.equal(g.get_state(), b) for g, b in zip(st.generators, before))


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("streams", ["continued", "fresh"])
def test_a_seed_trains_the_same_whatever_its_group(variant, streams, request):
    """Seed 3 alone and seed 3 among 1 and 5, float64: the same batches, noise and weights."""
    if streams == "fresh":
        request.getfixturevalue("device_streams")
    alone = state(tiny("ring8", variant, seeds=(3,), dtype="float64"))
    group = state(tiny("ring8", variant, seeds=(1, 3, 5), dtype="float64"))
    run_steps(alone, 3)
    run_steps(group, 3)
    for name, net in alone.nets.items():
        torch.testing.assert_close(group.nets[name].params[1], net.params[0], rtol=0, atol=1e-12)
    torch.testing.assert_close(group.real()[1], alone.real()[0], rtol=0, atol=0)
    torch.testing.assert_close(group.noise()[1], alone.noise()[0], rtol=0, atol=0)
    assert not torch.equal(group.noise()[0], group.noise()[2])


def test_fresh_streams_are_seeded_by_the_seed_alone():
    a = fresh_streams((3,), torch.device("cpu"))
    b = fresh_streams((1, 3), torch.device("cpu"))
    assert torch.equal(torch.randn(5, generator=a[0]), torch.randn(5, generator=b[1]))


CUDA_SYNCS = {
    "gdpp": "torch.linalg.eigh reads its LAPACK info back (_linalg_check_errors: .item()); "
    "torch has no eigh_ex without the check",
}
"""Variants whose step synchronises on CUDA for a reason outside modecov."""


def _cuda_marks(dataset: str, variant: str) -> list:
    reasons = {**READS_PENDING, **DRAWS_PENDING, **CUDA_SYNCS}
    return pending(CUDA_PENDING, dataset) or pending(reasons, variant)


@pytest.mark.gpu
@pytest.mark.parametrize(
    ("dataset", "variant"),
    [pytest.param(d, v, id=f"{d}-{v}", marks=_cuda_marks(d, v)) for d, v in CASES],
)
def test_step_on_cuda_never_synchronises(dataset, variant):
    st = state(tiny(dataset, variant, device="cuda"))
    run_steps(st, WARM_UP)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        run_steps(st, CHECKED)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert all(g.device.type == "cuda" for g in st.streams)
    assert st.alive.all()
