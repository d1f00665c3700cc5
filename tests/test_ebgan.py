"""Tests for EBGAN and EBGAN-PT: the autoencoder energy against a plain torch.nn rebuild,
the margin losses on hand-built energies, the pulling-away term against a numpy loop, and
what the margin does to the discriminator's update."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from modecov import losses
from modecov.config import RunConfig
from modecov.data import DATASETS
from modecov.train import TrainState
from modecov.variants import VARIANTS
from modecov.variants.ebgan import (
    MARGIN,
    PT_WEIGHT,
    AutoEncoder,
    autoencoder,
    pulling_away,
    pulling_away_regularizer,
)


def state(variant: str = "ebgan", **overrides) -> TrainState:
    """A fresh float64 training state of a tiny group."""
    base = dict(
        dataset="ring8", variant=variant, seeds=(0, 5), batch_size=16, hidden=8, depth=3,
        n_eval=100, n_eval_large=100, dtype="float64", device="cpu",
    )  # fmt: skip
    cfg = RunConfig(**{**base, **overrides})
    return TrainState(cfg, DATASETS[cfg.dataset], cfg.spec, torch.device("cpu"))


def torch_autoencoder(net: AutoEncoder, s: int) -> tuple[nn.Sequential, nn.Sequential]:
    """Seed ``s``'s encoder and decoder rebuilt as nn.Sequential from its weights."""

    def sequential(layers, last_linear: bool) -> nn.Sequential:
        mods: list[nn.Module] = []
        for j, (w, b) in enumerate(layers):
            lin = nn.Linear(w.shape[2], w.shape[1], dtype=torch.float64)
            with torch.no_grad():
                lin.weight.copy_(w[s])
                lin.bias.copy_(b[s, 0])
            mods.append(lin)
            if not (last_linear and j == len(layers) - 1):
                mods.append(nn.LeakyReLU(0.2))
        return nn.Sequential(*mods)

    layers = net._views(net.params)
    k = net.code_layer + 1
    return sequential(layers[:k], last_linear=True), sequential(layers[k:], last_linear=True)


@pytest.mark.parametrize("depth,sizes", [(3, [2, 8, 8, 8, 2]), (2, [2, 8, 8, 2]), (1, [2, 8, 2])])
def test_autoencoder_has_the_shared_depth_with_a_linear_code(depth, sizes):
    st = state(depth=depth)
    assert isinstance(st.D, AutoEncoder)
    assert list(st.D.sizes) == sizes
    x = st.real()
    energy = st.D(x)
    assert energy.shape == (2, 16, 1)
    for s in range(2):
        enc, dec = torch_autoencoder(st.D, s)
        code = enc(x[s])
        torch.testing.assert_close(st.D.encode(x)[s], code, rtol=0, atol=1e-12)
        rec = dec(code)
        torch.testing.assert_close(st.D.reconstruct(x)[s], rec, rtol=0, atol=1e-12)
        # The energy is the squared reconstruction error, averaged over the D coordinates.
        expected = ((rec - x[s]) ** 2).sum(-1, keepdim=True) / x.shape[-1]
        torch.testing.assert_close(energy[s], expected, rtol=0, atol=1e-12)
    # The code is not passed through the LeakyReLU: some entries are negative.
    assert (st.D.encode(x) < -1e-3).any()


def test_margin_losses_on_hand_built_energies():
    real = torch.tensor([[0.1, 0.3], [0.0, 2.0]], dtype=torch.float64)[..., None]
    fake = torch.tensor([[0.5, 3.0], [1.0, 0.0]], dtype=torch.float64)[..., None]
    d = losses.energy_margin_d(real=real, fake=fake, margin=1.0)
    # Seed 0: mean(.1, .3) + mean(relu(1 - .5), relu(1 - 3)) = .2 + .25; seed 1: 1 + .5.
    torch.testing.assert_close(d, torch.tensor([0.45, 1.5], dtype=torch.float64))
    g = losses.energy_g(fake=fake)
    torch.testing.assert_close(g, torch.tensor([1.75, 0.5], dtype=torch.float64))


def test_registered_with_the_papers_losses_and_pt_weight():
    ebgan, pt = VARIANTS["ebgan"], VARIANTS["ebgan_pt"]
    for v in (ebgan, pt):
        assert v.reference == "zhao2017energy" and v.make_d is autoencoder
        assert v.d_loss.func is losses.energy_margin_d and v.d_loss.keywords == {"margin": MARGIN}
        assert v.g_loss is losses.energy_g and v.step is None and v.penalty is None
    assert ebgan.g_regularizer is None
    assert pt.g_regularizer is pulling_away_regularizer and pt.g_regularizer_weight == 0.1
    assert PT_WEIGHT == 0.1


def numpy_pt(s: np.ndarray) -> float:
    """The pulling-away term as the paper writes it, with explicit loops over i != j."""
    n = len(s)
    total = 0.0
    for i in range(n):
        for j in range(n):
            if i != j:
                cos = s[i] @ s[j] / (np.linalg.norm(s[i]) * np.linalg.norm(s[j]))
                total += cos**2
    return total / (n * (n - 1))


@pytest.mark.parametrize("n,c", [(2, 3), (5, 4), (9, 2)])
def test_pulling_away_matches_a_hand_loop(n, c):
    rng = np.random.default_rng(n * 10 + c)
    codes = rng.normal(size=(3, n, c))
    got = pulling_away(torch.from_numpy(codes))
    assert got.shape == (3,)
    np.testing.assert_allclose(got.numpy(), [numpy_pt(codes[s]) for s in range(3)], rtol=1e-12)


def test_pulling_away_known_answers_and_seed_independence():
    eye = torch.eye(4, dtype=torch.float64)[None]
    parallel = torch.tensor([[1.0, 2.0], [2.0, 4.0], [-0.5, -1.0]], dtype=torch.float64)[None]
    # Mutually orthogonal codes: 0; parallel (or anti-parallel) codes: 1, whatever the norms.
    torch.testing.assert_close(pulling_away(eye), torch.zeros(1, dtype=torch.float64))
    torch.testing.assert_close(pulling_away(parallel), torch.ones(1, dtype=torch.float64))
    # Hand case: s = (1, 0), (1, 1), (0, 1): cos² = ½, 0, ½ per unordered pair -> 2·1 / 6.
    s = torch.tensor([[[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]], dtype=torch.float64)
    torch.testing.assert_close(pulling_away(s), torch.tensor([1 / 3], dtype=torch.float64))
    codes = torch.randn(2, 6, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    codes.requires_grad_(True)
    (grad,) = torch.autograd.grad(pulling_away(codes)[1], codes)
    assert (grad[0] == 0).all() and (grad[1] != 0).any()
    with pytest.raises(ValueError):
        pulling_away(codes[:, :1])


def test_pt_is_taken_on_the_encoder_codes_of_the_fake_batch():
    st = state("ebgan_pt")
    z = st.noise()
    fake = st.G(z)
    reg = pulling_away_regularizer(st, z=z, fake=fake)
    torch.testing.assert_close(reg, pulling_away(st.D.encode(fake)), rtol=0, atol=0)
    # It reaches the generator: its gradient w.r.t. G's parameters is non-zero.
    grads = st.G.flat_grad(torch.autograd.grad(reg.sum(), st.G.leaves))
    assert (grads.abs().sum(1) > 0).all()


def test_fakes_beyond_the_margin_give_the_discriminator_no_push():
    st = state()
    real = st.real()
    fake = real + 3.0  # far from the data: energies well above the margin (checked below)
    e_real, e_fake = st.D(real), st.D(fake)
    assert (e_fake > MARGIN).all()
    loss = VARIANTS["ebgan"].d_loss(real=e_real, fake=e_fake)
    torch.testing.assert_close(loss, e_real.mean((1, 2)), rtol=0, atol=0)
    # Below the margin the fakes push D's energies up: the loss falls as their energy rises.
    low = VARIANTS["ebgan"].d_loss(real=e_real, fake=torch.full_like(e_fake, MARGIN / 2))
    torch.testing.assert_close(low, e_real.mean((1, 2)) + MARGIN / 2, rtol=0, atol=1e-15)


def test_discriminator_steps_learn_the_energy_landscape():
    # With G fixed, D's updates pull the energy of real data down and of fakes up.
    st = state(hidden=32, batch_size=64, lr=1e-3)
    fake = st.G(st.noise()).detach()
    real = st.real()
    before_real, before_fake = st.D(real).mean((1, 2)), st.D(fake).mean((1, 2))
    for _ in range(200):
        e_real, e_fake = st.critic(torch.cat((st.real(), fake), dim=1)).chunk(2, dim=1)
        st.update("D", VARIANTS["ebgan"].d_loss(real=e_real, fake=e_fake))
    after_real, after_fake = st.D(real).mean((1, 2)), st.D(fake).mean((1, 2))
    assert (after_real < 0.2 * before_real).all(), (before_real, after_real)
    assert (after_fake > before_fake).all() and (after_fake > 0.5 * MARGIN).all(), after_fake
