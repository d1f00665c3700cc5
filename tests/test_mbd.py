"""Tests for minibatch discrimination: the features and the discriminator against
hand-written loops on tiny cases and against the straightforward cdist implementation on
random ones, their gradient (the hand-written backward), and that seeds, real and fake
batches each form their own minibatch."""

from __future__ import annotations

import math

import pytest
import torch

from modecov import losses
from modecov.config import RunConfig
from modecov.data import DATASETS
from modecov.evaluate import train
from modecov.train import TrainState
from modecov.variants import VARIANTS, mbd
from modecov.variants.mbd import (
    KERNEL_DIM,
    KERNELS,
    MinibatchDiscriminator,
    _KernelSums,
    minibatch_critic,
    minibatch_features,
)


@pytest.fixture(params=["compiled", "torch"])
def path(request, monkeypatch):
    """Run the test with the compiled CPU kernels, then with the torch path other devices
    take (forced on CPU)."""
    if request.param == "torch":
        monkeypatch.setattr(mbd, "_on_host", lambda x: False)
    return request.param


def state(trained_head: bool = True, **overrides) -> TrainState:
    """A fresh float64 training state of a tiny MBD group; with ``trained_head`` the logit's
    weights on the minibatch features are made non-zero, as after some training."""
    base = dict(
        dataset="ring8", variant="mbd", seeds=(0, 5), batch_size=6, hidden=4, depth=2,
        n_eval=100, n_eval_large=100, dtype="float64", device="cpu",
    )  # fmt: skip
    cfg = RunConfig(**{**base, **overrides})
    st = TrainState(cfg, DATASETS[cfg.dataset], cfg.spec, torch.device("cpu"))
    if trained_head:
        g = torch.Generator().manual_seed(11)
        with torch.no_grad():
            head = st.D.leaves[-2]
            head.copy_(torch.rand(head.shape, generator=g, dtype=head.dtype) * 0.2 - 0.1)
    return st


def loop_features(m: torch.Tensor, group: int) -> torch.Tensor:
    """o(x_i)_b = Σ_j exp(−Σ_c |M_ibc − M_jbc|) with explicit loops, j over i's block."""
    S, N, K, C = m.shape
    out = torch.zeros(S, N, K, dtype=m.dtype)
    for s in range(S):
        for i in range(N):
            start = (i // group) * group
            for b in range(K):
                for j in range(start, min(start + group, N)):
                    l1 = sum(abs(float(m[s, i, b, c] - m[s, j, b, c])) for c in range(C))
                    out[s, i, b] += math.exp(-l1)
    return out


def reference_features(m: torch.Tensor, group: int) -> torch.Tensor:
    """The straightforward implementation: cdist(p=1) per block,
    differentiated by autograd."""
    S, _, kernels, width = m.shape
    parts = []
    for block in m.split(group, dim=1):
        n = block.shape[1]
        per_kernel = block.permute(0, 2, 1, 3).reshape(S * kernels, n, width)
        dist = torch.cdist(per_kernel, per_kernel, p=1)
        parts.append(torch.exp(-dist).sum(-1).view(S, kernels, n).transpose(1, 2))
    return torch.cat(parts, dim=1)


def features_and_grad(fn, m: torch.Tensor, group: int, weights: torch.Tensor):
    """fn's features of m and the gradient of Σ weights · features with respect to m."""
    m = m.detach().requires_grad_(True)
    out = fn(m, group)
    (grad,) = torch.autograd.grad((out * weights).sum(), m)
    return out, grad


@pytest.mark.parametrize(
    "shape,group",
    [
        pytest.param((2, 256, 3, 5), 256, id="batch256"),
        pytest.param((2, 2 * 128 + 37, 4, 5), 128, id="2x128+remainder37"),
        pytest.param((3, 240, 2, 3), 120, id="2x120-3dims"),
        pytest.param((1, 67, 2, 5), 67, id="prime67"),
        pytest.param((2, 12, 3, 2), 5, id="small-blocks"),
    ],
)
def test_matches_the_straightforward_implementation(shape, group, path):
    g = torch.Generator().manual_seed(sum(shape) + group)
    m = torch.randn(shape, generator=g, dtype=torch.float64) * 0.7
    weights = torch.randn(*shape[:3], generator=g, dtype=torch.float64)
    got, got_grad = features_and_grad(minibatch_features, m, group, weights)
    want, want_grad = features_and_grad(reference_features, m, group, weights)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(got_grad, want_grad, rtol=1e-12, atol=1e-12)


def test_ties_have_the_reference_subgradient(path):
    # Repeated points and shared coordinates: |0| has gradient 0, as in cdist's backward.
    g = torch.Generator().manual_seed(3)
    m = torch.randn(2, 128, 2, 5, generator=g, dtype=torch.float64)
    m[:, 64:80] = m[:, :16]  # whole points repeated
    m[:, 5:9, :, 2] = m[:, 4:5, :, 2]  # one coordinate shared
    weights = torch.randn(2, 128, 2, generator=g, dtype=torch.float64)
    got, got_grad = features_and_grad(minibatch_features, m, 128, weights)
    want, want_grad = features_and_grad(reference_features, m, 128, weights)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(got_grad, want_grad, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype,shift", [(torch.float64, 100.0), (torch.float32, 20.0)])
def test_widely_spread_sets_take_the_direct_path(dtype, shift):
    # A kernel whose points spread too far for the exp-free factors in this dtype is
    # computed as exp(−‖·‖₁) directly; the other kernels of the same chunk are not.
    g = torch.Generator().manual_seed(6)
    m = torch.randn(2, 128, 3, 5, generator=g, dtype=torch.float64) * 0.7
    # Seed 1, kernel 2: two far clusters, a spread of hundreds (float64) or of over a
    # hundred (float32), with close pairs inside each cluster.
    m[1, :64, 2] += shift
    m[:, :, 1, 0] += 1e3  # an offset changes nothing: the factors are centred per set
    x = m.permute(0, 2, 3, 1).reshape(6, 5, 128).to(dtype)
    assert mbd._exp_factors(x)[2].tolist() == [True, True, True, True, True, False]
    weights = torch.randn(2, 128, 3, generator=g, dtype=torch.float64)
    got, got_grad = features_and_grad(minibatch_features, m.to(dtype), 128, weights.to(dtype))
    m = m.to(dtype).double()  # the reference sees the same rounded inputs
    want, want_grad = features_and_grad(reference_features, m, 128, weights)
    tol = 1e-12 if dtype == torch.float64 else 1e-4
    torch.testing.assert_close(got.double(), want, rtol=tol, atol=tol)
    torch.testing.assert_close(got_grad.double(), want_grad, rtol=tol, atol=tol)


def test_all_sets_spread_take_the_direct_path():
    g = torch.Generator().manual_seed(8)
    m = torch.randn(2, 128, 3, 5, generator=g, dtype=torch.float64)
    m[:, 1::2] += 100.0  # two far clusters per set, close pairs inside each
    x = m.permute(0, 2, 3, 1).reshape(6, 5, 128)
    assert not mbd._exp_factors(x)[2].any()
    weights = torch.randn(2, 128, 3, generator=g, dtype=torch.float64)
    got, got_grad = features_and_grad(minibatch_features, m, 128, weights)
    want, want_grad = features_and_grad(reference_features, m, 128, weights)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(got_grad, want_grad, rtol=1e-12, atol=1e-12)


def test_non_finite_values_stay_in_their_set(path):
    # A diverged seed's NaN or infinity spoils its own kernels' features, as in cdist,
    # and nothing else.
    g = torch.Generator().manual_seed(7)
    m = torch.randn(3, 128, 2, 5, generator=g, dtype=torch.float64)
    m[1, 3, 0, 2] = float("nan")
    m[2, 7, 1, 0] = float("inf")
    got, want = minibatch_features(m, 128), reference_features(m, 128)
    assert torch.equal(got.isnan(), want.isnan()) and got[0].isfinite().all()
    finite = want.isfinite()
    torch.testing.assert_close(got[finite], want[finite], rtol=1e-12, atol=1e-12)


def test_float32_matches_the_reference(path):
    g = torch.Generator().manual_seed(4)
    m = torch.randn(2, 256, 4, 5, generator=g)
    weights = torch.randn(2, 256, 4, generator=g)
    got, got_grad = features_and_grad(minibatch_features, m, 256, weights)
    want, want_grad = features_and_grad(reference_features, m.double(), 256, weights.double())
    torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got_grad.double(), want_grad, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("n,spread", [(6, 1.0), (9, 1.0), (6, 300.0)])
def test_kernel_sums_gradcheck(n, spread, path):
    # The hand-written backward; spread 300 sends set 1 down the exp path (float64).
    g = torch.Generator().manual_seed(n)
    x = torch.randn(2, 3, n, generator=g, dtype=torch.float64)
    x[1, :, ::2] += spread
    x.requires_grad_(True)
    assert torch.autograd.gradcheck(_KernelSums.apply, (x,))


def test_torch_path_chunks_do_not_change_results(monkeypatch):
    # 2 seeds x 3 kernels = 6 sets of 128 points, in chunks of one, of four (the last
    # short) and all six sets.
    g = torch.Generator().manual_seed(5)
    m = torch.randn(2, 128, 3, 5, generator=g, dtype=torch.float64)
    weights = torch.randn(2, 128, 3, generator=g, dtype=torch.float64)
    monkeypatch.setattr(mbd, "_on_host", lambda x: False)
    results = []
    for sets in (1, 4, 6):
        monkeypatch.setattr(mbd, "TORCH_CHUNK", sets * 5 * 128 * 128)
        assert len(mbd._torch_chunks(torch.empty(6, 5, 128))) == -(-6 // sets)
        results.append(features_and_grad(minibatch_features, m, 128, weights))
    for got, got_grad in results[1:]:
        torch.testing.assert_close(got, results[0][0], rtol=0, atol=0)
        torch.testing.assert_close(got_grad, results[0][1], rtol=0, atol=0)
    ref, ref_grad = features_and_grad(reference_features, m, 128, weights)
    torch.testing.assert_close(results[0][0], ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(results[0][1], ref_grad, rtol=1e-12, atol=1e-12)


def test_compiled_kernels_agree_with_the_torch_path_in_float32(monkeypatch):
    # The two paths round differently but compute the same sums.
    g = torch.Generator().manual_seed(9)
    m = torch.randn(2, 256, 6, 5, generator=g) * 0.5
    weights = torch.randn(2, 256, 6, generator=g)
    got, got_grad = features_and_grad(minibatch_features, m, 256, weights)
    monkeypatch.setattr(mbd, "_on_host", lambda x: False)
    want, want_grad = features_and_grad(minibatch_features, m, 256, weights)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(got_grad, want_grad, rtol=1e-4, atol=1e-3)


def test_no_second_derivative():
    # The backward is hand-written: a second derivative must fail, not come out wrong.
    m = torch.randn(1, 4, 2, 2, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(minibatch_features(m, 4).sum(), m, create_graph=True)
    with pytest.raises(RuntimeError):
        torch.autograd.grad(grad.sum(), m)


@pytest.mark.parametrize("n,group", [(5, 5), (6, 3), (7, 3)])
def test_minibatch_features_match_a_hand_loop(n, group):
    g = torch.Generator().manual_seed(n)
    m = torch.randn(2, n, 3, 2, generator=g, dtype=torch.float64)
    got = minibatch_features(m, group)
    assert got.shape == (2, n, 3)
    torch.testing.assert_close(got, loop_features(m, group), rtol=1e-12, atol=0)


def test_minibatch_features_known_answers():
    # Identical projections: every pair contributes 1, so o = minibatch size (self included).
    same = torch.ones(1, 4, 2, 3, dtype=torch.float64)
    torch.testing.assert_close(minibatch_features(same, 4), torch.full((1, 4, 2), 4.0).double())
    # Two points at L1 distance 1 + 2 = 3 in one kernel: o = 1 + e^{-3} for each.
    m = torch.tensor([[[[0.0, 0.0]], [[1.0, -2.0]]]], dtype=torch.float64)
    want = torch.full((1, 2, 1), 1 + math.exp(-3.0), dtype=torch.float64)
    torch.testing.assert_close(minibatch_features(m, 2), want)


def test_minibatch_features_gradient():
    g = torch.Generator().manual_seed(1)
    m = torch.randn(2, 4, 3, 2, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: minibatch_features(t, 4), (m,))
    assert torch.autograd.gradcheck(lambda t: minibatch_features(t, 3), (m,))


def test_discriminator_matches_a_hand_computation():
    st = state()
    net = st.D
    x = st.real()
    logits = net(x)
    assert logits.shape == (2, 6, 1)
    views = net._views(net.params)
    *trunk, t, wo, bo = views
    assert len(trunk) == 4  # depth 2: two (weight, bias) pairs
    for s in range(2):
        h = x[s]
        for w, b in zip(trunk[0::2], trunk[1::2]):
            h = torch.nn.functional.leaky_relu(h @ w[s].T + b[s, 0], 0.2)
        m = (h @ t[s]).reshape(6, KERNELS, KERNEL_DIM)
        o = loop_features(m[None], 6)[0]
        want = torch.cat((h, o), dim=-1) @ wo[s].T + bo[s, 0]
        torch.testing.assert_close(logits[s], want, rtol=1e-10, atol=1e-10)


def test_shape_and_registration():
    v = VARIANTS["mbd"]
    assert (v.d_loss, v.g_loss) == (losses.bce_d, losses.nonsaturating_g)
    assert v.make_d is minibatch_critic and v.reference == "salimans2016improved"
    assert (KERNELS, KERNEL_DIM) == (100, 5)
    st = state(trained_head=False, hidden=7, depth=3, batch_size=8)
    assert isinstance(st.D, MinibatchDiscriminator)
    assert st.D.group == 8 and st.D.sizes == (2, 7, 7, 7)
    shapes = [shape for shape, _ in st.D.shapes]
    assert shapes[-3:] == [(7, 500), (1, 107), (1, 1)]  # T, then the logit layer on f ++ o
    assert st.D.params.shape == (2, st.D.n_params) and len(st.D.leaves) == len(shapes)
    # D starts as the shared MLP: the logit's weights on the minibatch features are zero.
    head = st.D.leaves[-2]
    assert (head[:, :, 7:] == 0).all() and (head[:, :, :7] != 0).all()


def test_real_fake_and_seeds_are_separate_minibatches():
    st = state()
    real, fake = st.real(), st.G(st.noise()).detach()
    # The trainer's joint pass: real and fake each form their own minibatch.
    d_real, d_fake = st.critic(torch.cat((real, fake), dim=1)).chunk(2, dim=1)
    torch.testing.assert_close(d_real, st.critic(real), rtol=0, atol=1e-12)
    torch.testing.assert_close(d_fake, st.critic(fake), rtol=0, atol=1e-12)
    # Moving one fake sample changes every fake logit (they share a minibatch), no real one.
    moved = fake.clone()
    moved[:, 0] += 1.0
    d_real2, d_fake2 = st.critic(torch.cat((real, moved), dim=1)).chunk(2, dim=1)
    torch.testing.assert_close(d_real2, d_real, rtol=0, atol=0)
    assert ((d_fake2 - d_fake)[:, 1:].abs() > 0).all()
    # Changing seed 1's batch leaves seed 0's logits alone (bit for bit at the same layout:
    # vectorised exp rounds by position, so the joint pass may differ in the last bit).
    other = real.clone()
    other[1] = fake[1]
    torch.testing.assert_close(st.critic(other)[0], st.critic(real)[0], rtol=0, atol=0)
    torch.testing.assert_close(st.critic(other)[0], d_real[0], rtol=0, atol=1e-12)


def test_generator_gradient_sees_the_minibatch_features():
    # A collapsed fake batch: the minibatch features give G a gradient that spreads the
    # samples; it differs from the gradient with the features' dependence cut.
    st = state(batch_size=8)
    fake = torch.zeros(2, 8, 2, dtype=torch.float64, requires_grad=True)
    with torch.no_grad():
        fake += torch.randn(2, 8, 2, generator=torch.Generator().manual_seed(0)) * 1e-3
    loss = losses.nonsaturating_g(fake=st.critic(fake))
    (grad,) = torch.autograd.grad(loss.sum(), fake)
    assert torch.isfinite(grad).all() and (grad.abs().sum((1, 2)) > 0).all()


def test_seeds_together_equal_separate_runs_float64_small():
    # The registry-wide check in test_train.py at a size MBD's O(B²) layer runs in seconds.
    seeds = (3, 0, 7)
    common = dict(
        dataset="ring8", variant="mbd", steps=10, eval_every=5, batch_size=8, hidden=8,
        n_eval=100, n_eval_large=100, dtype="float64", device="cpu",
    )  # fmt: skip
    together = train(RunConfig(seeds=seeds, **common))
    for i, s in enumerate(seeds):
        alone = train(RunConfig(seeds=(s,), **common))
        torch.testing.assert_close(together.samples[i], alone.samples[0], rtol=0, atol=1e-10)
    assert not torch.equal(together.samples[0], together.samples[1])


def test_steps_match_the_straightforward_layer_float64(monkeypatch):
    # A few training steps with the layer against the same steps with the cdist
    # implementation (autograd's gradient), at a batch of 128.
    from modecov.steps import standard_step

    fast = state(trained_head=False, batch_size=128, hidden=16, depth=2)
    slow = state(trained_head=False, batch_size=128, hidden=16, depth=2)
    for _ in range(3):
        got = standard_step(fast)
        with monkeypatch.context() as patch:
            patch.setattr(mbd, "minibatch_features", reference_features)
            want = standard_step(slow)
        for name in want:
            torch.testing.assert_close(got[name], want[name], rtol=1e-12, atol=1e-12)
    for name, net in slow.nets.items():
        torch.testing.assert_close(fast.nets[name].params, net.params, rtol=1e-12, atol=1e-12)
