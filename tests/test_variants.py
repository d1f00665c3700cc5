"""Tests for the GAN variants beyond gan/nsgan: what makes each one that variant.

Losses on hand-built logits, penalties on hand-built linear critics, the mode-seeking term
against its published formula, and the trainer-level properties (WGAN's clipping,
optimiser and critic steps; PacGAN's packed input). Smoke runs and the float64
seed-batching invariance for every variant live in test_train.py.
"""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace

import pytest
import torch
from helpers import RecordingNet

from modecov import losses, penalties
from modecov.config import RunConfig
from modecov.data import DATASETS
from modecov.optim import Adam, RMSprop
from modecov.train import TrainState, standard_step
from modecov.variants import VARIANTS


def state_for(variant: str, seeds=(0, 1), **overrides) -> TrainState:
    """A tiny float64 TrainState of ``variant`` on ring8."""
    base = dict(
        dataset="ring8", variant=variant, seeds=seeds, batch_size=16, hidden=8, depth=1,
        n_eval=100, n_eval_large=100, dtype="float64", device="cpu",
    )  # fmt: skip
    cfg = RunConfig(**{**base, **overrides})
    return TrainState(cfg, DATASETS[cfg.dataset], cfg.spec, torch.device("cpu"))


def linear_critic(a: torch.Tensor, pack: int = 1, streams=None) -> SimpleNamespace:
    """A stand-in TrainState whose critic is D(x) = a_s · (packed x), one (pack·D,) a per seed."""

    def critic(x: torch.Tensor) -> torch.Tensor:
        S, B, D = x.shape
        return (x.reshape(S, B // pack, pack * D) * a[:, None, :]).sum(-1, keepdim=True)

    if streams is None:
        streams = [torch.Generator().manual_seed(s) for s in range(a.shape[0])]
    return SimpleNamespace(critic=critic, streams=streams, variant=SimpleNamespace(pack=pack))


def d_grad(st: TrainState, loss: torch.Tensor) -> torch.Tensor:
    """(S, P) gradient of ``loss.sum()`` w.r.t. D (zero for the output bias, which no input
    gradient depends on)."""
    grads = torch.autograd.grad(loss.sum(), st.D.leaves, materialize_grads=True)
    return st.D.flat_grad(grads)


# Two seeds of hand-built logits, (S, B, 1).
REAL = torch.tensor([[2.0, 0.5, -1.0], [1.0, 1.0, 1.0]], dtype=torch.float64)[..., None]
FAKE = torch.tensor([[-2.0, 0.0, 0.5], [0.0, 0.0, 0.0]], dtype=torch.float64)[..., None]


def test_least_squares_losses_on_hand_built_logits():
    # Seed 0: ½ mean([1, .25, 4]) + ½ mean([4, 0, .25]); seed 1: a perfect D, loss 0.
    d = losses.least_squares_d(real=REAL, fake=FAKE)
    torch.testing.assert_close(d, torch.tensor([0.5 * 5.25 / 3 + 0.5 * 4.25 / 3, 0.0]).double())
    # ½ mean([9, 1, .25]) and ½ mean([1, 1, 1]).
    g = losses.least_squares_g(fake=FAKE)
    torch.testing.assert_close(g, torch.tensor([0.5 * 10.25 / 3, 0.5]).double())
    v = VARIANTS["lsgan"]
    assert (v.d_loss, v.g_loss) == (losses.least_squares_d, losses.least_squares_g)
    assert v.reference == "mao2017least"


def test_hinge_losses_on_hand_built_logits():
    # Seed 0: mean(relu(1 - [2, .5, -1])) + mean(relu(1 + [-2, 0, .5])) = 2.5/3 + 2.5/3.
    d = losses.hinge_d(real=REAL, fake=FAKE)
    torch.testing.assert_close(d, torch.tensor([5.0 / 3, 1.0]).double())
    g = losses.hinge_g(fake=FAKE)
    torch.testing.assert_close(g, torch.tensor([0.5, 0.0]).double())
    v = VARIANTS["hinge"]
    assert (v.d_loss, v.g_loss) == (losses.hinge_d, losses.hinge_g)
    assert v.penalty is None and v.clip is None and v.n_critic == 1


def test_wasserstein_losses_on_hand_built_logits():
    d = losses.wasserstein_d(real=REAL, fake=FAKE)
    torch.testing.assert_close(d, torch.tensor([-0.5 - 0.5, -1.0]).double())
    g = losses.wasserstein_g(fake=FAKE)
    torch.testing.assert_close(g, torch.tensor([0.5, 0.0]).double())


def test_wgan_clips_uses_rmsprop_and_takes_five_critic_steps(monkeypatch):
    st = state_for("wgan")
    assert st.D.params.abs().max() > 0.01  # the initialisation is wider than the clip
    assert all(o.spec == RMSprop(lr=5e-5) for o in st.optims.values())
    assert all(type(o.spec) is RMSprop for o in st.optims.values())
    updates = Counter()
    update = st.update

    def counting(name, loss):
        updates[name] += 1
        update(name, loss)

    monkeypatch.setattr(st, "update", counting)
    for _ in range(3):
        standard_step(st)
        assert st.D.params.abs().max() <= 0.01
    assert updates == Counter(D=15, G=3)
    v = VARIANTS["wgan"]
    assert (v.d_loss, v.g_loss) == (losses.wasserstein_d, losses.wasserstein_g)
    assert v.clip == 0.01 and v.n_critic == 5 and v.penalty is None


def test_wgan_gp_definition():
    v = VARIANTS["wgan_gp"]
    assert (v.d_loss, v.g_loss) == (losses.wasserstein_d, losses.wasserstein_g)
    assert v.penalty is penalties.gradient_penalty and v.penalty_weight == 10.0
    assert v.n_critic == 5 and v.clip is None
    assert v.optimizer == Adam(lr=1e-4, betas=(0.5, 0.9))


@pytest.mark.parametrize("pack", [1, 2])
def test_gradient_penalty_of_a_linear_critic_is_norm_minus_one_squared(pack):
    S, B, D = 3, 8, 2
    g = torch.Generator().manual_seed(0)
    a = torch.randn(S, pack * D, generator=g, dtype=torch.float64, requires_grad=True)
    real, fake = torch.randn(2, S, B, D, generator=g, dtype=torch.float64)
    gp = penalties.gradient_penalty(linear_critic(a, pack), real=real, fake=fake)
    expected = (a.detach().norm(dim=1) - 1.0).square()
    assert gp.shape == (S,)
    torch.testing.assert_close(gp, expected, rtol=0, atol=1e-12)
    # Differentiable w.r.t. the critic's parameters, seed by seed: d/da (‖a‖-1)².
    (grad,) = torch.autograd.grad(gp.sum(), a)
    norm = a.detach().norm(dim=1, keepdim=True)
    torch.testing.assert_close(grad, 2 * (norm - 1) * a.detach() / norm, rtol=0, atol=1e-12)


def test_gradient_penalty_per_seed_is_independent_of_the_other_seeds():
    # A real (nonlinear) critic, so the interpolation ε matters: seeds trained together
    # draw the same ε and get the same penalty and the same D-gradient as alone.
    seeds = (3, 0, 7)
    together = state_for("wgan_gp", seeds=seeds)
    real, fake = together.real(), together.G(together.noise()).detach()
    gp = penalties.gradient_penalty(together, real=real, fake=fake)
    assert gp.shape == (3,) and (gp > 0).all()
    grads = d_grad(together, gp)
    assert (grads != 0).any(dim=1).all()
    next_z = together.noise()
    for i, s in enumerate(seeds):
        alone = state_for("wgan_gp", seeds=(s,))
        r, f = alone.real(), alone.G(alone.noise()).detach()
        torch.testing.assert_close(r[0], real[i], rtol=0, atol=0)
        gp_alone = penalties.gradient_penalty(alone, real=r, fake=f)
        torch.testing.assert_close(gp_alone[0], gp[i], rtol=0, atol=1e-12)
        torch.testing.assert_close(d_grad(alone, gp_alone)[0], grads[i], rtol=0, atol=1e-12)
        # The next draw of each stream also agrees: the penalty consumed the same ε.
        torch.testing.assert_close(alone.noise()[0], next_z[i], rtol=0, atol=0)


def test_r1_of_a_linear_critic_is_squared_norm():
    S, B, D = 2, 8, 2
    g = torch.Generator().manual_seed(1)
    a = torch.randn(S, D, generator=g, dtype=torch.float64, requires_grad=True)
    real, fake = torch.randn(2, S, B, D, generator=g, dtype=torch.float64)
    r1 = penalties.r1_penalty(linear_critic(a), real=real, fake=fake)
    torch.testing.assert_close(r1, a.detach().square().sum(1), rtol=0, atol=1e-12)
    (grad,) = torch.autograd.grad(r1.sum(), a)
    torch.testing.assert_close(grad, 2 * a.detach(), rtol=0, atol=1e-12)
    # gamma = 1 with the paper's (gamma / 2) factor carried by the weight.
    v = VARIANTS["r1"]
    assert v.penalty is penalties.r1_penalty and v.penalty_weight == 0.5
    assert (v.d_loss, v.g_loss) == (losses.bce_d, losses.nonsaturating_g)


def test_r1_looks_at_real_data_only():
    st = state_for("r1")
    real = st.real()
    a = penalties.r1_penalty(st, real=real, fake=st.G(st.noise()).detach())
    b = penalties.r1_penalty(st, real=real, fake=torch.zeros_like(real))
    torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("key,pack", [("pacgan2", 2), ("pacgan4", 4)])
def test_pacgan_discriminator_sees_consecutive_packs(key, pack):
    v = VARIANTS[key]
    assert v.pack == pack
    assert (v.d_loss, v.g_loss) == (losses.bce_d, losses.nonsaturating_g)
    st = state_for(key)
    D = st.data.dim
    assert st.D.sizes[0] == pack * D
    assert state_for("nsgan").D.sizes[1:] == st.D.sizes[1:]  # only the first layer changes
    x = st.real()
    S, B, _ = x.shape
    logits = st.critic(x)
    assert logits.shape == (S, B // pack, 1)
    for j in range(B // pack):
        group = torch.cat([x[:, pack * j + k] for k in range(pack)], dim=-1)
        torch.testing.assert_close(logits[:, j], st.D(group[:, None])[:, 0], rtol=0, atol=1e-12)
    # The trainer's joint real+fake pass never packs a real with a fake sample.
    fake = st.G(st.noise()).detach()
    d_real, d_fake = st.critic(torch.cat((x, fake), dim=1)).chunk(2, dim=1)
    torch.testing.assert_close(d_real, logits, rtol=0, atol=1e-12)
    torch.testing.assert_close(d_fake, st.critic(fake), rtol=0, atol=1e-12)


@pytest.mark.parametrize("key,pack", [("nsgan", 1), ("pacgan2", 2), ("pacgan4", 4)])
def test_a_batch_is_batch_size_packs(key, pack):
    # As in the PacGAN paper: D judges B real and B fake packs per update and G's loss B
    # packs, so each step draws B·m real and B·m fake samples; B need not divide by m.
    B = 15
    st = state_for(key, batch_size=B)
    st.D = RecordingNet(st.D)
    S, D = len(st.cfg.seeds), st.data.dim
    assert st.real().shape == (S, B * pack, D)
    assert st.noise().shape == (S, B * pack, st.cfg.z_dim)
    standard_step(st)
    shapes = [tuple(x.shape) for x, _ in st.D.calls]
    assert shapes == [(S, 2 * B, pack * D), (S, B, pack * D)]  # D step (real + fake), G step


@pytest.mark.parametrize("key", [k for k, v in VARIANTS.items() if v.pack == 1])
def test_unpacked_variants_draw_one_sample_per_batch_row(key):
    # Without packing a batch is B samples, drawn as before: data first, then latents,
    # from each seed's own generator.
    st = state_for(key, seeds=(0, 5), batch_size=16)
    want_real, want_z = [], []
    for mine in st.generators:  # each stream where weight initialisation left it
        g = torch.Generator()
        g.set_state(mine.get_state())
        want_real.append(st.data.sample(16, g, dtype=torch.float64))
        want_z.append(torch.randn(16, st.cfg.z_dim, generator=g, dtype=torch.float64))
    torch.testing.assert_close(st.real(), torch.stack(want_real), rtol=0, atol=0)
    torch.testing.assert_close(st.noise(), torch.stack(want_z), rtol=0, atol=0)


def test_mode_seeking_term_matches_the_published_formula():
    S, B, Z, D = 2, 6, 3, 2
    g = torch.Generator().manual_seed(2)
    z = torch.randn(S, B, Z, generator=g, dtype=torch.float64)
    fake = torch.randn(S, B, D, generator=g, dtype=torch.float64, requires_grad=True)
    term = penalties.mode_seeking(None, z=z, fake=fake)
    assert term.shape == (S,)
    for s in range(S):
        z1, z2 = z[s, :3], z[s, 3:]
        fake1, fake2 = fake[s, :3].detach(), fake[s, 3:].detach()
        lz = torch.mean(torch.abs(fake2 - fake1)) / torch.mean(torch.abs(z2 - z1))
        torch.testing.assert_close(term[s], 1 / (lz + 1e-5), rtol=0, atol=1e-12)
    # Seed 1's term moves with seed 1's samples alone.
    (grad,) = torch.autograd.grad(term[1], fake)
    assert (grad[0] == 0).all() and (grad[1] != 0).any()


def test_mode_seeking_known_answer_and_odd_batch():
    # G(z) = 2z on 1-d z: the distance ratio is 2, the term 1 / (2 + 1e-5); an odd last
    # draw is left out of the pairs.
    z = torch.tensor([[[0.0], [1.0], [4.0], [-3.0], [100.0]]], dtype=torch.float64)
    term = penalties.mode_seeking(None, z=z, fake=2 * z)
    torch.testing.assert_close(term, torch.tensor([1 / (2 + 1e-5)]).double())
    with pytest.raises(ValueError):
        penalties.mode_seeking(None, z=z[:, :1], fake=z[:, :1])


def test_msgan_adds_the_mode_seeking_term_to_the_generator_loss():
    v = VARIANTS["msgan"]
    assert v.g_regularizer is penalties.mode_seeking and v.g_regularizer_weight == 1.0
    assert (v.d_loss, v.g_loss) == (losses.bce_d, losses.nonsaturating_g)
    assert v.penalty is None and v.pack == 1


@pytest.mark.parametrize("key", ["wgan_gp", "r1", "dragan", "rpgan", "bigan_pgp"])
def test_penalty_steps_match_autograds_double_backward_float64(key):
    # The penalties take D's input gradient from StackedMLP.input_gradient, which leaves out
    # autograd's graph through D's forward pass. The reference: the same training with that
    # method removed, so the input gradient is autograd's create_graph one (the straightforward
    # double backward). Weights and losses agree to rounding after several steps.
    fast, reference = state_for(key, seeds=(0, 3)), state_for(key, seeds=(0, 3))
    reference.D.input_gradient = None
    step = fast.variant.step or standard_step
    for fast.step in range(1, 5):
        reference.step = fast.step
        got, want = step(fast), step(reference)
        for name in want:
            torch.testing.assert_close(got[name], want[name], rtol=1e-12, atol=1e-12)
    for name, net in reference.nets.items():
        torch.testing.assert_close(fast.nets[name].params, net.params, rtol=1e-12, atol=1e-12)
    assert not torch.equal(fast.D.params, state_for(key, seeds=(0, 3)).D.params)
