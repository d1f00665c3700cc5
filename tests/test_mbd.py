"""Tests for minibatch discrimination: the features and the discriminator against
hand-written loops on tiny cases, their gradient, and that seeds, real and fake batches
each form their own minibatch."""

from __future__ import annotations

import math

import pytest
import torch

from modecov import losses
from modecov.config import RunConfig
from modecov.data import DATASETS
from modecov.train import TrainState, train
from modecov.variants import VARIANTS
from modecov.variants.mbd import (
    KERNEL_DIM,
    KERNELS,
    MinibatchDiscriminator,
    minibatch_critic,
    minibatch_features,
)


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
    # Changing seed 1's batch leaves seed 0's logits alone.
    other = real.clone()
    other[1] = fake[1]
    torch.testing.assert_close(st.critic(other)[0], d_real[0], rtol=0, atol=0)


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
