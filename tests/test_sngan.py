"""Tests for SN-GAN: per-seed power iteration converges to each weight's top singular value,
one training forward equals ``torch.nn.utils.spectral_norm`` given the same u (outputs,
updated u and v, gradients), and evaluation passes leave the estimates alone."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import spectral_norm

from modecov import losses
from modecov.config import RunConfig
from modecov.data import DATASETS
from modecov.train import TrainState, standard_step
from modecov.variants import VARIANTS
from modecov.variants.sngan import INIT_ITERATIONS, SpectralNormMLP, spectral_norm_critic


def state(**overrides) -> TrainState:
    """A fresh float64 training state of a tiny SN-GAN group."""
    base = dict(
        dataset="ring8", variant="sngan", seeds=(0, 5, 9), batch_size=16, hidden=12, depth=2,
        n_eval=100, n_eval_large=100, dtype="float64", device="cpu",
    )  # fmt: skip
    cfg = RunConfig(**{**base, **overrides})
    return TrainState(cfg, DATASETS[cfg.dataset], cfg.spec, torch.device("cpu"))


def test_registered_as_nsgan_with_a_spectrally_normalised_d():
    v = VARIANTS["sngan"]
    assert (v.d_loss, v.g_loss) == (losses.bce_d, losses.nonsaturating_g)
    assert v.make_d is spectral_norm_critic and v.reference == "miyato2018spectral"
    st = state()
    assert isinstance(st.D, SpectralNormMLP)
    assert st.D.sizes == state(variant="nsgan").D.sizes  # the shared shape


def test_normalised_weights_have_unit_spectral_norm_per_seed():
    st = state()
    x = st.real()
    # Scale each seed's weights differently: σ must follow every seed's own weights.
    with torch.no_grad():
        st.D.params.mul_(torch.tensor([0.3, 1.0, 7.0], dtype=torch.float64)[:, None])
    for _ in range(30):
        st.D(x)  # gradients enabled: one power iteration per layer per call
    with torch.no_grad():
        layers = st.D.normalized()
    for (w, _), (raw, _) in zip(layers, st.D._views(st.D.params)):
        top = torch.linalg.matrix_norm(w, ord=2)
        torch.testing.assert_close(top, torch.ones(3, dtype=torch.float64), rtol=1e-6, atol=0)
        # ...and σ itself is each seed's top singular value of the raw weights.
        assert not torch.allclose(torch.linalg.matrix_norm(raw, ord=2), torch.ones(3).double())


def torch_sn_net(net: SpectralNormMLP, s: int) -> tuple[nn.Sequential, list[nn.Linear]]:
    """Seed ``s`` of ``net`` rebuilt as nn.Linear layers under torch.nn.utils.spectral_norm,
    with u (and v) set to the seed's current estimates; also the Linear layers."""
    mods: list[nn.Module] = []
    lin = []
    views = net._views(net.params)
    for j, (w, b) in enumerate(views):
        layer = spectral_norm(nn.Linear(w.shape[2], w.shape[1], dtype=torch.float64))
        with torch.no_grad():
            layer.weight_orig.copy_(w[s])
            layer.bias.copy_(b[s, 0])
            layer.weight_u.copy_(net.u[j][s])
            layer.weight_v.copy_(net.v[j][s])
        mods.append(layer)
        lin.append(layer)
        if j < len(views) - 1:
            mods.append(nn.LeakyReLU(0.2))
    return nn.Sequential(*mods), lin


def test_a_training_forward_equals_torch_spectral_norm_given_the_same_u():
    st = state()
    for _ in range(3):
        standard_step(st)  # weights and u, v away from their start
    s = 1
    ref, lin = torch_sn_net(st.D, s)
    ref.train()
    x = st.real()
    ours = st.D(x)
    theirs = ref(x[s])
    torch.testing.assert_close(ours[s], theirs, rtol=0, atol=1e-12)
    # Both updated u and v the same way (one power iteration per forward).
    for j, layer in enumerate(lin):
        torch.testing.assert_close(st.D.u[j][s], layer.weight_u, rtol=0, atol=1e-12)
        torch.testing.assert_close(st.D.v[j][s], layer.weight_v, rtol=0, atol=1e-12)
    # Same gradients w.r.t. the raw weights: none flows through u and v.
    ours_grad = torch.autograd.grad(ours[s].sum(), st.D.leaves)
    theirs_grad = torch.autograd.grad(
        theirs.sum(), [p for layer in lin for p in (layer.weight_orig, layer.bias)]
    )
    for a, b in zip(ours_grad, theirs_grad):
        torch.testing.assert_close(a[s].reshape(-1), b.reshape(-1), rtol=1e-10, atol=1e-12)
    # In eval mode torch uses the stored u and v; so does a pass without gradients.
    ref.eval()
    with torch.no_grad():
        torch.testing.assert_close(st.D(x)[s], ref(x[s]), rtol=0, atol=1e-12)


def test_initial_estimates_match_torch_after_its_registration_iterations():
    # torch's spectral_norm parametrisation runs 15 power iterations when it is registered;
    # so do we, from each seed's own draws of u and v, so σ starts at the top singular value.
    assert INIT_ITERATIONS == 15
    g = torch.Generator().manual_seed(4)
    net = SpectralNormMLP([2, 6, 1], [g], dtype=torch.float64)
    g2 = torch.Generator().manual_seed(4)
    twin = SpectralNormMLP([2, 6, 1], [g2], dtype=torch.float64)
    for a, b in zip(net.u + net.v, twin.u + twin.v):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    w = net._views(net.params)[0][0][0]
    top = torch.linalg.matrix_norm(w, ord=2)
    with torch.no_grad():
        torch.testing.assert_close(net.sigma(0, w[None]), top[None], rtol=1e-6, atol=0)


def test_evaluation_passes_leave_the_estimates_alone():
    st = state()
    x = st.real()
    u0 = [u.clone() for u in st.D.u]
    with torch.no_grad():
        st.D(x)
        st.D(x)
    assert all(torch.equal(a, b) for a, b in zip(u0, st.D.u))
    st.D(x)
    assert any(not torch.equal(a, b) for a, b in zip(u0, st.D.u))


def test_each_seed_iterates_on_its_own_weights():
    st, other = state(), state()
    x = st.real()
    noise = torch.randn(st.D.params.shape[1], generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        st.D.params[2].add_(noise.double())  # changes seed 2's weights only
    st.D(x)
    other.D(x)
    for a, b in zip(st.D.u, other.D.u):
        torch.testing.assert_close(a[:2], b[:2], rtol=0, atol=0)
    assert any(not torch.allclose(a[2], b[2]) for a, b in zip(st.D.u, other.D.u))


def test_two_passes_before_one_backward():
    # A penalty that calls D again before the loss is differentiated must still work.
    st = state()
    x = st.real()
    a, b = st.D(x), st.D(x + 0.1)
    grads = torch.autograd.grad((a.sum() + b.sum()), st.D.leaves)
    assert all(torch.isfinite(g).all() for g in grads)
