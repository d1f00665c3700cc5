"""BiGAN, BiGAN-PGP and VEEGAN: the pair discriminator, the inverse network, the pairwise
gradient penalty on a hand-built critic, and the joint generator/encoder update.

Smoke runs and the float64 seed-batching invariance for these variants live in
test_train.py (registry-driven)."""

from __future__ import annotations

from types import SimpleNamespace

import torch

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
    # ‖a_s − u‖² with u the unit vector from G(E(x)) to x; G here shifts by a constant.
    S, B = 2, 5
    a = torch.tensor([[0.3, -0.4], [1.0, 2.0]], dtype=torch.float64)
    b = torch.tensor([[0.5], [-1.0]], dtype=torch.float64)
    shift = torch.tensor([[1.0, 0.0], [0.0, -2.0]], dtype=torch.float64)

    def D(xz):
        return (xz[..., :2] * a[:, None]).sum(-1, keepdim=True) + xz[..., 2:] * b[:, None]

    def G(code):
        return code.expand(-1, -1, 2) * 0.0 + shift[:, None]

    gens = [torch.Generator().manual_seed(s) for s in range(S)]
    st = SimpleNamespace(D=D, G=G, generators=gens)
    real = torch.randn(S, B, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(9))
    code = torch.randn(S, B, 1, dtype=torch.float64)
    got = pairwise_gradient_penalty(st, real=real, code=code)

    gap = real - shift[:, None]
    u = gap / gap.norm(dim=-1, keepdim=True)
    want = (a[:, None] - u).square().sum(-1).mean(dim=1)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_pgp_changes_the_discriminator_update():
    plain, pgp = state_for("bigan"), state_for("bigan_pgp")
    torch.testing.assert_close(plain.D.params, pgp.D.params)
    plain.variant.step(plain)
    pgp.variant.step(pgp)
    assert not torch.allclose(plain.D.params, pgp.D.params)


def reconstruction(st: TrainState, z: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return (z - st.nets["E"](st.G(z))).square().sum(-1).mean(dim=1)


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
    # Replay the step's noise: the reported recon term must be ‖z − F(G(z))‖² on that batch.
    st = state_for("veegan")
    twin = state_for("veegan")
    twin.real()  # the step draws real first, then noise, from each seed's stream
    z = twin.noise()
    want = reconstruction(st, z)
    out = st.variant.step(st)
    torch.testing.assert_close(out["recon"], want, rtol=1e-12, atol=1e-12)
