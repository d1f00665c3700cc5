"""BiGAN, BiGAN-PGP and VEEGAN: the pair discriminator, the inverse network, the pairwise
gradient penalty on a hand-built critic, the joint generator/encoder update, and the losses
and pairs of the authors' code (logan's ``lol1``; VEEGAN's z̃ ~ N(F(x), I) and Gaussian NLL).

Smoke runs and the float64 seed-batching invariance for these variants live in
test_train.py (registry-driven)."""

from __future__ import annotations

from types import SimpleNamespace

import torch
from helpers import RecordingNet

from modecov.config import RunConfig
from modecov.data import DATASETS
from modecov.train import TrainState
from modecov.variants.bigan import pairwise_gradient_penalty


def state_for(variant: str, seeds=(0, 1), **overrides) -> TrainState:
    base = dict(
        dataset="ring8", variant=variant, seeds=seeds, batch_size=32, hidden=16, depth=2,
        n_eval=100, n_eval_large=100, dtype="float64", device="cpu",
    )  # fmt: skip
    cfg = RunConfig(**{**base, **overrides})
    return TrainState(cfg, DATASETS[cfg.dataset], cfg.spec, torch.device("cpu"))


def test_pair_discriminator_and_encoder_shapes():
    for key in ("bigan", "bigan_pgp", "veegan"):
        st = state_for(key, z_dim=3)
        assert st.D.sizes[0] == 2 + 3 and st.D.sizes[-1] == 1
        assert st.nets["E"].sizes[0] == 2 and st.nets["E"].sizes[-1] == 3
        assert set(st.optims) == {"G", "D", "E"}


def test_bigan_step_trains_discriminator_generator_and_encoder():
    st = state_for("bigan")
    before = {k: net.params.clone() for k, net in st.nets.items()}
    out = st.variant.step(st)
    assert set(out) == {"loss_d", "loss_g"}
    for k, net in st.nets.items():
        moved = (net.params - before[k]).abs().amax(dim=1)
        assert bool((moved > 0).all()), f"{k} did not move for every seed"


def test_pairwise_gradient_penalty_on_a_linear_pair_critic():
    # D(x, z) = a_s · x + b_s · z has ∇ₓD = a_s everywhere, so the penalty is the batch mean of
    # ‖a_s − u‖₂ (the norm, not squared, as logan's gp_loss_x) with u the unit vector from
    # G(E(x)) to x; G here shifts by a constant.
    S, B = 2, 5
    a = torch.tensor([[0.3, -0.4], [1.0, 2.0]], dtype=torch.float64)
    b = torch.tensor([[0.5], [-1.0]], dtype=torch.float64)
    shift = torch.tensor([[1.0, 0.0], [0.0, -2.0]], dtype=torch.float64)

    def D(xz):
        return (xz[..., :2] * a[:, None]).sum(-1, keepdim=True) + xz[..., 2:] * b[:, None]

    def G(code):
        return code.expand(-1, -1, 2) * 0.0 + shift[:, None]

    gens = [torch.Generator().manual_seed(s) for s in range(S)]
    st = SimpleNamespace(D=D, G=G, streams=gens)
    real = torch.randn(S, B, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(9))
    code = torch.randn(S, B, 1, dtype=torch.float64)
    got = pairwise_gradient_penalty(st, real=real, code=code)

    gap = real - shift[:, None]
    u = gap / gap.norm(dim=-1, keepdim=True)
    want = (a[:, None] - u).square().sum(-1).sqrt().mean(dim=1)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_pairwise_gradient_penalty_known_answer():
    # ∇ₓD = (3, 4) and every x sits at +x̂ from its reconstruction, so u = (1, 0) and the
    # penalty is ‖(2, 4)‖ = √20 (its square, 20, is the old form).
    a = torch.tensor([[3.0, 4.0]], dtype=torch.float64)

    def D(xz):
        return (xz[..., :2] * a[:, None]).sum(-1, keepdim=True)

    def G(code):
        return torch.zeros(*code.shape[:2], 2, dtype=torch.float64)

    st = SimpleNamespace(D=D, G=G, streams=[torch.Generator().manual_seed(0)])
    real = torch.tensor([[[1.0, 0.0], [0.5, 0.0], [7.0, 0.0]]], dtype=torch.float64)
    got = pairwise_gradient_penalty(st, real=real, code=torch.zeros(1, 3, 1).double())
    torch.testing.assert_close(got, torch.tensor([20.0]).double().sqrt(), rtol=1e-12, atol=0)


def test_bigan_pgp_generator_and_encoder_minimise_the_logit_gap():
    # logan's lol1: G and E minimise mean D(x, E(x)) − mean D(G(z), z) on raw logits, on the
    # batch D was just trained on; plain BiGAN keeps the flipped-label cross-entropy.
    for key in ("bigan_pgp", "bigan"):
        st, twin = state_for(key), state_for(key)
        real, z = twin.real(), twin.noise()  # the step draws real, then noise
        with torch.no_grad():
            want_in = torch.cat(
                (torch.cat((real, twin.nets["E"](real)), -1), torch.cat((twin.G(z), z), -1)), 1
            )
        st.D = RecordingNet(st.D)
        out = st.variant.step(st)
        got_in, logits = st.D.calls[-1]  # the G/E pass: (x, E(x)) pairs, then (G(z), z)
        torch.testing.assert_close(got_in, want_in, rtol=1e-12, atol=1e-12)
        d_real, d_fake = logits.chunk(2, dim=1)
        gap = d_real.mean(dim=(1, 2)) - d_fake.mean(dim=(1, 2))
        bce = torch.nn.functional.softplus(d_real).mean((1, 2)) + torch.nn.functional.softplus(
            -d_fake
        ).mean((1, 2))
        want = gap if key == "bigan_pgp" else bce
        torch.testing.assert_close(out["loss_g"], want, rtol=1e-12, atol=1e-12)


def test_pgp_changes_the_discriminator_update():
    plain, pgp = state_for("bigan"), state_for("bigan_pgp")
    torch.testing.assert_close(plain.D.params, pgp.D.params)
    plain.variant.step(plain)
    pgp.variant.step(pgp)
    assert not torch.allclose(plain.D.params, pgp.D.params)


def reconstruction(st: TrainState, z: torch.Tensor) -> torch.Tensor:
    """Batch mean of the Gaussian NLL ½‖z − F(G(z))‖² (less its constant), per seed."""
    with torch.no_grad():
        return 0.5 * (z - st.nets["E"](st.G(z))).square().sum(-1).mean(dim=1)


def test_veegan_reconstructor_learns_to_invert_the_generator():
    st = state_for("veegan", lr=1e-3)
    z = torch.randn(2, 256, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    start = reconstruction(st, z)
    for st.step in range(1, 301):
        out = st.variant.step(st)
    assert set(out) == {"loss_d", "loss_g", "recon"}
    end = reconstruction(st, z)
    assert bool((end < 0.25 * start).all()), (start, end)


def test_veegan_generator_loss_is_pair_logit_plus_reconstruction():
    # Replay the step's noise: the reported recon term must be ½‖z − F(G(z))‖² on that batch
    # (the authors' −log N(z; F(G(z)), I) less its constant), and G and F's loss the mean
    # logit of D (just updated) on the generator pairs plus it.
    st = state_for("veegan")
    twin = state_for("veegan")
    twin.real()  # the step draws real first, then noise, from each seed's stream
    z = twin.noise()
    want = reconstruction(st, z)
    st.D = RecordingNet(st.D)
    out = st.variant.step(st)
    torch.testing.assert_close(out["recon"], want, rtol=1e-12, atol=1e-12)
    gen_in, logits = st.D.calls[-1]
    torch.testing.assert_close(gen_in[..., 2:], z, rtol=0, atol=0)
    pair_term = logits.mean(dim=(1, 2))
    torch.testing.assert_close(out["loss_g"], pair_term + want, rtol=1e-12, atol=1e-12)


def test_veegan_data_pair_code_is_a_draw_from_n_of_f_x_and_identity():
    # D's data pairs are (z̃, x) with z̃ = F(x) + ε, ε ~ N(0, I) the next standard normal
    # draw of each seed's own stream (after the batch's data and latents).
    st, twin = state_for("veegan", seeds=(0, 7)), state_for("veegan", seeds=(0, 7))
    real, z = twin.real(), twin.noise()
    eps = twin.noise()
    with torch.no_grad():
        want = twin.nets["E"](real) + eps
    st.D = RecordingNet(st.D)
    st.variant.step(st)
    both, _ = st.D.calls[0]  # D's update: generator pairs, then data pairs
    B = st.cfg.batch_size
    torch.testing.assert_close(both[:, :B, 2:], z, rtol=0, atol=0)
    torch.testing.assert_close(both[:, B:, :2], real, rtol=0, atol=0)
    torch.testing.assert_close(both[:, B:, 2:], want, rtol=1e-12, atol=1e-12)


def test_veegan_data_pair_noise_has_unit_variance():
    # z̃ − F(x) over a large batch: mean 0 and variance 1 in every latent coordinate, per seed
    # (the old deterministic pair had z̃ − F(x) = 0).
    B = 4096
    st, twin = (state_for("veegan", batch_size=B, z_dim=3) for _ in range(2))
    with torch.no_grad():
        mean_code = twin.nets["E"](twin.real())  # F before the step, on the step's data
    st.D = RecordingNet(st.D)
    st.variant.step(st)
    both, _ = st.D.calls[0]
    noise = both[:, B:, 2:] - mean_code
    assert float(noise.mean(dim=1).abs().max()) < 0.06  # 4 standard errors at B = 4096
    torch.testing.assert_close(noise.var(dim=1), torch.ones(2, 3).double(), rtol=0, atol=0.09)
    assert not torch.allclose(noise[0], noise[1])  # each seed its own stream
