"""Tests for the variants after 2019: RpGAN + R1 + R2, GDPP, Top-k and DRAGAN.

What makes each that method: the relativistic pairing loss and its R1/R2 penalties on hand
computed cases, GDPP's kernel eigen-decomposition and loss against numpy.linalg.eigh, the
top-k selection and its schedule, DRAGAN's perturbation and penalty. Smoke runs and the
float64 seed-batching invariance live in test_train.py (registry-driven).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from helpers import RecordingNet
from test_variants import linear_critic, state_for

from modecov import losses, penalties
from modecov.config import RunConfig
from modecov.convnets import StackedConvD
from modecov.data import DATASETS
from modecov.evaluate import train
from modecov.nets import StackedMLP
from modecov.optim import Adam
from modecov.variants import VARIANTS, gdpp, topk
from modecov.variants.sngan import SpectralNormMLP

NEW = ("rpgan", "gdpp", "topk", "dragan")


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def test_definitions():
    rp, gd, tk, dr = (VARIANTS[k] for k in NEW)
    assert (rp.d_loss, rp.g_loss) == (losses.relativistic_d, losses.relativistic_g)
    assert rp.penalty is penalties.r1_r2_penalty and rp.penalty_weight == 0.5  # γ / 2, γ = 1
    for v in (gd, tk, dr):
        assert (v.d_loss, v.g_loss) == (losses.bce_d, losses.nonsaturating_g)
    assert dr.penalty is penalties.dragan_penalty and dr.penalty_weight == 10.0
    for v in (rp, gd, tk, dr):
        assert v.optimizer == Adam() and v.n_critic == 1 and v.pack == 1
        assert v.make_d is None and v.landscape
    assert list(VARIANTS)[-4:] == list(NEW)  # appended: the earlier registry order stands


# RpGAN + R1 + R2


def test_relativistic_losses_on_hand_computed_logits():
    real = torch.tensor([[2.0, 0.0, -1.0], [1.0, 1.0, 1.0]], dtype=torch.float64)[..., None]
    fake = torch.tensor([[0.0, 0.0, 1.0], [3.0, 1.0, -1.0]], dtype=torch.float64)[..., None]
    # D: softplus(D(G(z)) − D(x)) per pair: seed 0 gaps −2, 0, 2; seed 1 gaps 2, 0, −2.
    want = (softplus(-2) + softplus(0) + softplus(2)) / 3
    d = losses.relativistic_d(real=real, fake=fake)
    torch.testing.assert_close(d, torch.tensor([want, want], dtype=torch.float64))
    # G: softplus(D(x) − D(G(z))): seed 0 gaps 2, 0, −2 (the same set); a shifted pair differs.
    g = losses.relativistic_g(real=real, fake=fake)
    torch.testing.assert_close(g, torch.tensor([want, want], dtype=torch.float64))
    g2 = losses.relativistic_g(real=real[:, :1], fake=fake[:, :1])
    torch.testing.assert_close(g2, torch.tensor([softplus(2), softplus(-2)]).double())
    # Pairing, not all pairs: permuting the fakes changes the loss.
    assert not torch.allclose(losses.relativistic_d(real=real, fake=fake.flip(1)), d)


def test_r1_r2_of_a_linear_critic_is_gamma_over_two_times_the_squared_norms():
    S, B, D = 3, 8, 2
    g = gen(4)
    a = torch.randn(S, D, generator=g, dtype=torch.float64, requires_grad=True)
    real, fake = torch.randn(2, S, B, D, generator=g, dtype=torch.float64)
    pen = penalties.r1_r2_penalty(linear_critic(a), real=real, fake=fake)
    # ∇ₓ(a·x) = a at every real and every fake point: R1 = R2 = ‖a‖².
    r1 = r2 = a.detach().square().sum(1)
    torch.testing.assert_close(pen, r1 + r2, rtol=0, atol=1e-12)
    gamma = 1.0
    weighted = VARIANTS["rpgan"].penalty_weight * pen
    torch.testing.assert_close(weighted, gamma / 2 * (r1 + r2), rtol=0, atol=1e-12)
    (grad,) = torch.autograd.grad(pen.sum(), a)
    torch.testing.assert_close(grad, 4 * a.detach(), rtol=0, atol=1e-12)


def test_r1_r2_is_r1_on_real_plus_r1_on_fake_for_a_real_critic():
    st = state_for("rpgan")
    real, fake = st.real(), st.G(st.noise()).detach()
    both = penalties.r1_r2_penalty(st, real=real, fake=fake)
    apart = penalties.r1_penalty(st, real=real, fake=fake) + penalties.r1_penalty(
        st, real=fake, fake=real
    )
    torch.testing.assert_close(both, apart, rtol=0, atol=1e-12)


def test_rpgan_generator_loss_pairs_the_discriminator_batches():
    st = state_for("rpgan")
    st.D = RecordingNet(st.D)
    out = VARIANTS["rpgan"].step(st)
    # D update (real + fake), then G's step: real, fake (the R1 + R2 penalty takes D's input
    # gradient through ``StackedMLP.input_gradient``, not a call).
    (both, _), (real, d_real), (fake, d_fake) = st.D.calls
    B = real.shape[1]
    torch.testing.assert_close(real, both[:, :B], rtol=0, atol=0)
    torch.testing.assert_close(fake, both[:, B:], rtol=0, atol=0)
    want = torch.nn.functional.softplus(d_real - d_fake).mean(dim=(1, 2))
    torch.testing.assert_close(out["loss_g"], want, rtol=0, atol=1e-12)
    # The updated D judged them: its current output on the same batches.
    with torch.no_grad():
        torch.testing.assert_close(st.D.net(real), d_real, rtol=0, atol=0)


# GDPP


def numpy_kernel(phi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The authors' decomposition in numpy: L = φ̂φ̂ᵀ, eigh, each eigenvector signed so that
    its largest-magnitude entry is positive."""
    phi = phi / np.linalg.norm(phi, axis=1, keepdims=True)
    lam, vec = np.linalg.eigh(phi @ phi.T)
    peak = vec[np.abs(vec).argmax(axis=0), np.arange(vec.shape[1])]
    return lam, vec * np.sign(peak)


def numpy_gdpp(real: np.ndarray, fake: np.ndarray) -> float:
    """compute_diversity_loss of gdppgan_Synthetic.py, for one seed, in numpy."""
    lam_f, vec_f = numpy_kernel(fake)
    lam_r, vec_r = numpy_kernel(real)
    magnitude = 1e-4 * np.mean((lam_f - lam_r) ** 2)
    structure = -np.sum(vec_f * vec_r, axis=0)
    weights = (lam_r - lam_r.min()) / (lam_r.max() - lam_r.min())
    return float(magnitude + np.sum(weights * structure))


@pytest.mark.parametrize("B,H", [(6, 9), (12, 5)], ids=["primal", "dual"])
def test_kernel_eigen_matches_numpy_eigh(B, H):
    phi = torch.randn(3, B, H, generator=gen(B), dtype=torch.float64)
    lam, vec = gdpp.kernel_eigen(phi)
    r = min(B, H)
    assert lam.shape == (3, B) and vec.shape == (3, B, r)
    for s in range(3):
        want_lam, want_vec = numpy_kernel(phi[s].numpy())
        # Rank r: numpy's B − r smallest are zero to rounding; the dual returns exact zeros.
        np.testing.assert_allclose(lam[s].numpy(), want_lam, rtol=0, atol=1e-12)
        np.testing.assert_allclose(vec[s].numpy(), want_vec[:, B - r :], rtol=0, atol=1e-10)


@pytest.mark.parametrize("B,H", [(6, 9), (12, 5), (40, 16)], ids=["primal", "dual", "wide"])
def test_gdpp_loss_matches_the_authors_formula_in_numpy(B, H):
    g = gen(100 + B)
    real = torch.randn(2, B, H, generator=g, dtype=torch.float64)
    fake = torch.randn(2, B, H, generator=g, dtype=torch.float64) + 0.3
    loss = gdpp.gdpp_loss(real=real, fake=fake)
    assert loss.shape == (2,)
    want = [numpy_gdpp(real[s].numpy(), fake[s].numpy()) for s in range(2)]
    np.testing.assert_allclose(loss.numpy(), want, rtol=0, atol=1e-10)
    # Identical batches: equal spectra and eigenvectors, so the loss is −Σ λ̂ (its minimum).
    same = gdpp.gdpp_loss(real=real, fake=real.clone())
    lam = gdpp.kernel_eigen(real)[0]
    weights = (lam - lam.amin(1, keepdim=True)) / (lam.amax(1, True) - lam.amin(1, True))
    torch.testing.assert_close(same, -weights.sum(1), rtol=0, atol=1e-10)


def test_gdpp_loss_gradient_matches_finite_differences_and_seeds_do_not_mix():
    B, H = 10, 4  # dual form
    g = gen(7)
    real = torch.randn(2, B, H, generator=g, dtype=torch.float64)
    fake = torch.randn(2, B, H, generator=g, dtype=torch.float64).requires_grad_(True)
    loss = gdpp.gdpp_loss(real=real, fake=fake)
    (grad,) = torch.autograd.grad(loss[1], fake)
    assert (grad[0] == 0).all() and (grad[1] != 0).any()
    direction = torch.randn(B, H, generator=g, dtype=torch.float64)
    h = 1e-6

    def at(t: float) -> float:
        moved = fake.detach().clone()
        moved[1] += t * direction
        return float(gdpp.gdpp_loss(real=real, fake=moved)[1])

    numeric = (at(h) - at(-h)) / (2 * h)
    assert math.isclose(float((grad[1] * direction).sum()), numeric, rel_tol=1e-5, abs_tol=1e-8)


def test_symmetric_eig_backward_is_autograds_away_from_ties_and_finite_at_ties():
    g = gen(3)
    x = torch.randn(2, 5, 5, generator=g, dtype=torch.float64)
    a = (x + x.mT).requires_grad_(True)
    w = torch.randn(2, 5, 5, generator=g, dtype=torch.float64)

    def objective(eig):
        lam, vec = eig(a)
        return (lam * torch.arange(5.0, dtype=lam.dtype)).sum() + (vec.abs() * w).sum()

    mine = torch.autograd.grad(objective(gdpp._SymmetricEig.apply), a)[0]
    torch_grad = torch.autograd.grad(objective(torch.linalg.eigh), a)[0]
    torch.testing.assert_close(mine, torch_grad, rtol=1e-10, atol=1e-10)
    # A repeated eigenvalue: autograd's eigh divides by a zero gap, this one does not.
    tied = torch.diag(torch.tensor([1.0, 1.0, 2.0, 3.0], dtype=torch.float64))
    tied = tied[None].requires_grad_(True)
    lam, vec = gdpp._SymmetricEig.apply(tied)
    (grad,) = torch.autograd.grad(lam.sum() + vec.sum(), tied)
    assert torch.isfinite(grad).all()


@pytest.mark.parametrize("B,H", [(16, 32), (32, 16)], ids=["primal", "dual"])
def test_gdpp_loss_is_finite_for_a_collapsed_fake_batch(B, H):
    g = gen(11)
    real = torch.randn(2, B, H, generator=g, dtype=torch.float32)
    one = torch.randn(2, 1, H, generator=g, dtype=torch.float32)
    fake = one.expand(2, B, H).clone().requires_grad_(True)  # every fake sample the same
    loss = gdpp.gdpp_loss(real=real, fake=fake)
    (grad,) = torch.autograd.grad(loss.sum(), fake)
    assert torch.isfinite(loss).all() and torch.isfinite(grad).all()


def test_features_and_head_recompose_the_discriminator():
    g = [gen(0), gen(1)]
    mlp = StackedMLP([2, 7, 5, 1], g, dtype=torch.float64)
    x = torch.randn(2, 9, 2, generator=gen(2), dtype=torch.float64)
    assert mlp.features(x).shape == (2, 9, 5)
    torch.testing.assert_close(mlp.head(mlp.features(x)), mlp(x), rtol=0, atol=0)
    shifted = mlp.params + 0.1
    torch.testing.assert_close(
        mlp.head(mlp.features(x, shifted), shifted), mlp(x, shifted), rtol=0, atol=0
    )
    conv = StackedConvD(8, g, dtype=torch.float64)
    images = torch.rand(2, 4, 192, generator=gen(3), dtype=torch.float64)
    assert conv.features(images).shape == (2, 4, 8 * 2 * 2)
    torch.testing.assert_close(conv.head(conv.features(images)), conv(images), rtol=0, atol=0)
    sn = SpectralNormMLP([2, 4, 1], g, dtype=torch.float64)
    with pytest.raises(TypeError):
        sn.features(x)


def test_gdpp_step_adds_the_gdpp_loss_of_d_features_on_the_d_step_batches(monkeypatch):
    st = state_for("gdpp", batch_size=24, hidden=8)
    seen = {}
    update = gdpp.discriminator_updates

    def recording(state):
        seen["batch"] = update(state)
        return seen["batch"]

    monkeypatch.setattr(gdpp, "discriminator_updates", recording)
    out = VARIANTS["gdpp"].step(st)
    real, _, fake, _ = seen["batch"]
    with torch.no_grad():  # D did not move in G's update
        fake = fake.detach()
        diversity = gdpp.gdpp_loss(real=st.D.features(real), fake=st.D.features(fake))
        want = losses.nonsaturating_g(fake=st.D(fake)) + diversity
    torch.testing.assert_close(out["gdpp"], diversity, rtol=0, atol=1e-12)
    torch.testing.assert_close(out["loss_g"], want, rtol=0, atol=1e-12)


# Top-k


def test_top_k_schedule():
    k = topk.top_k
    assert [k(s, 256) for s in (0, 1, 100)] == [256, 256, 256]
    assert k(101, 256) == int(256 * 0.99) == 253
    assert k(201, 256) == int(256 * 0.99**2) == 250
    assert k(5000, 256) == int(256 * 0.99**49) == 156  # the default protocol's last step
    assert k(6900, 256) == 129 and k(6901, 256) == 128 and k(10**6, 256) == 128
    assert k(10**6, 15) == 7 and k(10**6, 1) == 1
    steps = range(1, 20_000, 37)
    assert all(k(a, 64) >= k(b, 64) for a, b in zip(steps, steps[1:]))


@pytest.mark.parametrize("step", [1, 150, 10**6])
def test_topk_generator_loss_is_the_loss_over_the_k_highest_scored_fakes(step):
    B = 16
    st = state_for("topk", batch_size=B)
    st.step = step
    st.D = RecordingNet(st.D)
    out = VARIANTS["topk"].step(st)
    (both, _), (fake, logits) = st.D.calls
    torch.testing.assert_close(fake, both[:, B:], rtol=0, atol=0)  # D step's fakes
    k = {1: 16, 150: 15, 10**6: 8}[step]
    assert topk.top_k(step, B) == k
    for s in range(2):
        scores = logits[s, :, 0].numpy()
        best = np.sort(scores)[::-1][:k]
        want = np.mean(np.log1p(np.exp(-best)))  # −log σ(D(G(z))) of the kept
        assert math.isclose(float(out["loss_g"][s]), want, rel_tol=0, abs_tol=1e-12)


def test_topk_generator_gradient_ignores_the_dropped_fakes():
    st = state_for("topk", batch_size=16)
    st.step = 10**6  # k = 8
    fake = st.G(st.noise()).detach().requires_grad_(True)
    logits = st.critic(fake)
    kept = torch.topk(logits, topk.top_k(st.step, 16), dim=1).values
    (grad,) = torch.autograd.grad(losses.nonsaturating_g(fake=kept).sum(), fake)
    moved = grad.abs().sum(-1) > 0
    lowest = logits[..., 0].argsort(dim=1)[:, :8]
    assert moved.sum(1).tolist() == [8, 8]
    assert not moved.gather(1, lowest).any()


# DRAGAN


def test_dragan_points_lie_within_half_a_std_above_the_data_and_use_each_seeds_stream():
    S, B, D = 3, 50, 2
    x = torch.randn(S, B, D, generator=gen(5), dtype=torch.float64) * torch.tensor([1.0, 3.0])
    stand_in = linear_critic(
        torch.ones(S, D, dtype=torch.float64), streams=[gen(s) for s in (4, 0, 9)]
    )
    x_hat = penalties.dragan_points(stand_in, real=x)
    gap = x_hat - x
    for s, seed in enumerate((4, 0, 9)):
        std = float(np.std(x[s].numpy()))  # numpy's, over the whole batch, as the authors'
        assert (gap[s] >= 0).all() and (gap[s] <= 0.5 * std).all()
        mine = gen(seed)
        u = torch.rand(B, D, generator=mine, dtype=torch.float64)
        alpha = torch.rand(B, 1, generator=mine, dtype=torch.float64)
        torch.testing.assert_close(gap[s], alpha * 0.5 * std * u, rtol=0, atol=1e-12)
    # Seed s alone, with its own stream, gets the same points.
    alone = linear_critic(torch.ones(1, D, dtype=torch.float64), streams=[gen(0)])
    torch.testing.assert_close(penalties.dragan_points(alone, real=x[1:2])[0], x_hat[1])


def test_dragan_penalty_of_a_linear_critic():
    S, B, D = 2, 8, 3
    g = gen(8)
    a = torch.randn(S, D, generator=g, dtype=torch.float64, requires_grad=True)
    real, fake = torch.randn(2, S, B, D, generator=g, dtype=torch.float64)
    pen = penalties.dragan_penalty(linear_critic(a), real=real, fake=fake)
    norm = a.detach().norm(dim=1)
    torch.testing.assert_close(pen, (norm - 1).square(), rtol=0, atol=1e-12)
    (grad,) = torch.autograd.grad(pen.sum(), a)
    want = 2 * (norm - 1)[:, None] * a.detach() / norm[:, None]
    torch.testing.assert_close(grad, want, rtol=0, atol=1e-12)


def test_dragan_penalty_looks_at_real_data_only():
    st = state_for("dragan")
    real, fake = st.real(), st.G(st.noise()).detach()
    state = st.streams[0].get_state(), st.streams[1].get_state()
    a = penalties.dragan_penalty(st, real=real, fake=fake)
    for g, saved in zip(st.streams, state):
        g.set_state(saved)
    b = penalties.dragan_penalty(st, real=real, fake=torch.zeros_like(real))
    torch.testing.assert_close(a, b, rtol=0, atol=0)


# Every dataset family


@pytest.mark.parametrize("key", NEW)
def test_trains_on_stacked_digits(key):
    cfg = RunConfig(
        dataset="stacked_digits", variant=key, seeds=(0, 1), steps=2, eval_every=2,
        batch_size=16, hidden=8, z_dim=6, n_eval=40, n_eval_large=40, device="cpu",
    )  # fmt: skip
    out = train(cfg)
    assert out.status == ["ok", "ok"] and torch.isfinite(out.samples).all()
    assert all(torch.isfinite(v).all() for values in out.losses.values() for v in values)
    assert DATASETS["stacked_digits"].dim == out.samples.shape[-1]
