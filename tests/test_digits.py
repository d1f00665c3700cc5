"""Tests for stacked_digits: the dataset's split, modes and scores with the shipped digit
classifier (tested itself in test_classifier.py), and the seed-batched conv networks (against
torch.nn, and S seeds together against separate runs in float64)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import torch
from torch import nn

import modecov.data.digits as digits
from modecov.classifiers.digits import load_digits_split
from modecov.config import RunConfig, conv_variants, grid_configs, suite
from modecov.convnets import G_INIT_GAIN, StackedConvD, StackedConvG
from modecov.data import DATASETS
from modecov.errors import ConfigError
from modecov.evaluate import train
from modecov.metrics import score_samples
from modecov.metrics.frechet import frechet
from modecov.train import TrainState
from modecov.variants import VARIANTS

DATA = DATASETS["stacked_digits"]


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def one_digit_sampler(n: int, generator: torch.Generator) -> torch.Tensor:
    """(N, 192) samples whose three channels are digits of one class (modes (d, d, d))."""
    d = torch.randint(10, (n,), generator=generator)
    pools = DATA._by_class
    rows = []
    for digit in d.tolist():
        pool = pools[digit]
        pick = pool[torch.randint(len(pool), (3,), generator=generator)]
        rows.append(DATA.images[pick].reshape(-1))
    return torch.stack(rows)


# The dataset


def test_held_out_digits_are_never_sampled():
    train_images, _, held, _ = load_digits_split()
    assert len(train_images) + len(held) == 1797
    pool = {tuple(x.flatten().tolist()) for x in train_images}
    held_only = {tuple(x.flatten().tolist()) for x in held} - pool
    assert len(held_only) > 300
    sampled = {tuple(row.tolist()) for row in DATA.sample(3000, gen(0)).reshape(-1, 64)}
    assert sampled <= pool and not sampled & held_only


def test_layout_weights_and_range():
    assert DATA.dim == 192 and DATA.n_modes == 1000
    f = torch.bincount(DATA.labels, minlength=10).double() / len(DATA.labels)
    k = 100 * 3 + 10 * 7 + 1
    assert float(DATA.weights[k]) == pytest.approx(float(f[3] * f[7] * f[1]), rel=1e-12)
    x = DATA.sample(500, gen(1), dtype=torch.float64)
    assert float(x.min()) >= -1.0 and float(x.max()) <= 1.0
    assert DATA.bounds() == (-1.0, 1.0)
    # Each channel of a sample is one real digit, channel-first.
    images = DATA.images.reshape(len(DATA.labels), -1)
    channel = x.reshape(500, 3, 64)[:, 1].float()
    assert bool((torch.cdist(channel, images).min(-1).values == 0).all())


def test_sample_mode_gives_the_triple():
    a, b, c = 4, 0, 9
    x = DATA.sample_mode(100 * a + 10 * b + c, 64, gen(2))
    labels = {tuple(x.flatten().tolist()): int(y) for x, y in zip(DATA.images, DATA.labels)}
    for row in x.reshape(64, 3, 8, 8):
        assert [labels[tuple(img.flatten().tolist())] for img in row] == [a, b, c]
    idx, hq = DATA.assign(x)
    # 63 of these 64 (measured): the shipped classifier misreads 1 of the 1,437 training
    # digits (99.93%), and this draw picks it once.
    assert float((idx == 409).double().mean()) >= 0.95 and bool(hq.all())
    with pytest.raises(ValueError, match="mode"):
        DATA.sample_mode(1000, 1, gen(0))


NAMES = ("modes", "inception", "frechet")


def test_true_sampler_covers_the_modes_and_one_digit_covers_ten():
    true = DATA.sample(25_000, gen(3))
    out = score_samples(fake=true[None], real=true[:2000], data=DATA, names=NAMES)
    assert out["modes_covered"] >= 990
    assert out["hq_fraction"] >= 0.99
    assert out["hq_fraction"].item() == pytest.approx(DATA.expected_hq, abs=0.002)
    assert out["kl_gen_true"] < 0.05
    # IS over 1000 modes from 25,000 samples: the plug-in marginal's entropy is biased low by
    # about (K - 1) / 2N = 0.02 nats, and the shipped classifier's posteriors are not one-hot
    # (E_x H(p(k | x)) = 0.03 nats), so 0.949 (measured) rather than 1.
    assert out["inception_score_norm"].item() == pytest.approx(0.95, abs=0.01)

    one_digit = one_digit_sampler(5_000, gen(4))
    bad = score_samples(fake=one_digit[None], real=true[:2000], data=DATA, names=NAMES)
    # 13 (measured): the ten (d, d, d) plus 144, 414 and 441, from the one training "4" that
    # the shipped classifier reads as a 1, drawn into each of the three channels.
    assert bad["modes_covered"] <= 13 and bad["hq_fraction"] > 0.99
    assert bad["inception_score_norm"] < 0.02
    assert bad["frechet_distance"] > 10 * out["frechet_distance"]


def test_assign_posterior_and_features_agree_and_do_not_depend_on_chunks(monkeypatch):
    x = torch.stack([DATA.sample(300, gen(5)), 2 * torch.rand(300, 192, generator=gen(6)) - 1])
    idx, hq = DATA.assign(x)
    post = DATA.posterior(x)
    feats = DATA.features(x)
    assert idx.shape == hq.shape == (2, 300)
    assert post.shape == (2, 300, 1000) and post.dtype == torch.float64
    assert feats.shape == (2, 300, 192) and feats.dtype == torch.float64
    torch.testing.assert_close(post.sum(-1), torch.ones(2, 300, dtype=torch.float64))
    assert torch.equal(post.argmax(-1), idx)
    # HQ: every channel's top probability >= 0.5, so the joint top probability >= 1/8.
    assert bool((post.max(-1).values[hq] >= 0.125).all())
    assert hq[0].double().mean() > 0.99 and hq[1].double().mean() < 0.05  # noise is not HQ
    blank = torch.full((1, 192), -1.0)
    assert not DATA.assign(blank)[1].item() and not DATA.assign(blank + 2)[1].item()

    monkeypatch.setattr(digits, "CHUNK", 7)
    idx7, hq7 = DATA.assign(x)
    assert torch.equal(idx7, idx) and torch.equal(hq7, hq)
    torch.testing.assert_close(DATA.posterior(x), post, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(DATA.features(x), feats, rtol=1e-5, atol=1e-5)


@pytest.mark.filterwarnings("ignore::scipy.linalg.LinAlgWarning")  # dead ReLU features
def test_frechet_uses_classifier_features_against_scipy():
    real = DATA.sample(1500, gen(7))
    fake = DATA.sample_mode(int(DATA.weights.argmax()), 1500, gen(8))
    got = frechet(fake=fake[None], real=real, data=DATA)["frechet_distance"].item()
    a, b = DATA.features(real).numpy(), DATA.features(fake).numpy()
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(ca @ cb).real
    expected = ((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(ca + cb - 2 * covmean)
    assert got == pytest.approx(expected, rel=1e-6)
    nan_seed = torch.stack([fake, fake.clone()])
    nan_seed[1, 3, 5] = math.inf
    both = frechet(fake=nan_seed, real=real, data=DATA)["frechet_distance"]
    assert both[0].item() == pytest.approx(got, rel=1e-9) and math.isnan(both[1].item())


# Configs


def test_configs_use_a_larger_latent_unless_told_otherwise():
    cfg, *_ = grid_configs(variants=("nsgan",), datasets=("stacked_digits", "ring8"))
    assert cfg.z_dim == 100
    ring = grid_configs(variants=("nsgan",), datasets=("ring8",))[0]
    assert ring.z_dim == 2
    mine = grid_configs(variants=("nsgan",), datasets=("stacked_digits",), z_dim=16)[0]
    assert mine.z_dim == 16


def test_paper_suite_has_stacked_digits_for_the_conv_variants():
    digit_groups = [c for c in suite("paper") if c.dataset == "stacked_digits"]
    trained = {c.variant for c in digit_groups if not c.is_reference}
    assert trained == set(conv_variants()) and "nsgan" in trained
    assert all(c.z_dim == 100 for c in digit_groups)


def test_variants_with_their_own_discriminator_are_refused():
    own = [k for k, v in VARIANTS.items() if v.make_d is not None]
    if not own:
        pytest.skip("no variant brings its own discriminator")
    with pytest.raises(ConfigError, match="discriminator of its own shape"):
        RunConfig(dataset="stacked_digits", variant=own[0])
    with pytest.raises(ConfigError, match="discriminator of its own shape"):
        DATA.check_variant(VARIANTS[own[0]])


# The conv networks


def reference_g(net: StackedConvG, s: int) -> nn.Module:
    """Seed s of ``net`` as plain torch.nn layers."""
    w = {k: v[s].detach() for k, v in net._views(net.params).items()}
    fc = nn.Linear(net.z_dim, net.c1 * 4).double()
    up1 = nn.ConvTranspose2d(net.c1, net.c2, 4, stride=2, padding=1).double()
    up2 = nn.ConvTranspose2d(net.c2, 3, 4, stride=2, padding=1).double()
    with torch.no_grad():
        fc.weight.copy_(w["fc.w"]), fc.bias.copy_(w["fc.b"][0])
        up1.weight.copy_(w["up1.w"]), up1.bias.copy_(w["up1.b"])
        up2.weight.copy_(w["up2.w"]), up2.bias.copy_(w["up2.b"])
    return nn.Sequential(
        fc, nn.ReLU(), nn.Unflatten(1, (net.c1, 2, 2)), up1, nn.ReLU(), up2, nn.Tanh(),
        nn.Flatten(),
    )  # fmt: skip


def reference_d(net: StackedConvD, s: int) -> nn.Module:
    w = {k: v[s].detach() for k, v in net._views(net.params).items()}
    down1 = nn.Conv2d(net.cin, net.c2, 4, stride=2, padding=1).double()
    down2 = nn.Conv2d(net.c2, net.c1, 4, stride=2, padding=1).double()
    fc = nn.Linear(net.c1 * 4, 1).double()
    with torch.no_grad():
        down1.weight.copy_(w["down1.w"]), down1.bias.copy_(w["down1.b"])
        down2.weight.copy_(w["down2.w"]), down2.bias.copy_(w["down2.b"])
        fc.weight.copy_(w["fc.w"]), fc.bias.copy_(w["fc.b"][0])
    return nn.Sequential(
        nn.Unflatten(1, (net.cin, 8, 8)), down1, nn.LeakyReLU(0.2), down2, nn.LeakyReLU(0.2),
        nn.Flatten(), fc,
    )  # fmt: skip


@pytest.mark.parametrize("pack", [1, 2])
def test_conv_nets_match_torch_nn_per_seed(pack):
    seeds = (5, 0, 2)
    kw = {"dtype": torch.float64}
    G = StackedConvG(7, 12, [gen(s) for s in seeds], **kw)
    D = StackedConvD(12, [gen(s) for s in seeds], pack=pack, **kw)
    z = torch.randn(3, 10, 7, generator=gen(9), dtype=torch.float64)
    x = G(z)
    assert x.shape == (3, 10, 192) and bool(x.abs().le(1).all())
    logits = D(x.reshape(3, 10 // pack, pack * 192))
    assert logits.shape == (3, 10 // pack, 1) and bool(torch.isfinite(logits).all())
    for i in range(3):
        torch.testing.assert_close(x[i], reference_g(G, i)(z[i]), rtol=0, atol=1e-12)
        want = reference_d(D, i)(x[i].reshape(10 // pack, pack * 192))
        torch.testing.assert_close(logits[i], want, rtol=0, atol=1e-12)
    # functional use: params= overrides the stored weights
    shifted = D.params + 0.01
    assert not torch.allclose(D(x.reshape(3, -1, pack * 192), shifted), logits)


def test_conv_init_is_per_seed_and_pytorch_default_times_the_g_gain():
    G3 = StackedConvG(5, 8, [gen(s) for s in (1, 2, 3)])
    G1 = StackedConvG(5, 8, [gen(2)])
    assert torch.equal(G3.params[1], G1.params[0])
    assert not torch.equal(G3.params[0], G3.params[1])
    D = StackedConvD(8, [gen(0)], pack=2)
    for net in (G3, D):
        for name, view in net._views(net.params).items():
            layer = name.split(".")[0]
            weight = net._views(net.params)[f"{layer}.w"][0]
            fan_in, _ = nn.init._calculate_fan_in_and_fan_out(weight)
            gain = G_INIT_GAIN if net is G3 and name.endswith(".w") else 1.0
            bound = gain / math.sqrt(fan_in)
            assert float(view.abs().max()) <= bound, name
            if view.numel() >= 50:  # draws fill the range
                assert float(view.abs().max()) > 0.8 * bound, name


def test_generator_chunks_without_autograd(monkeypatch):
    G = StackedConvG(4, 8, [gen(0), gen(1)])
    z = torch.randn(2, 50, 4, generator=gen(3))
    full = G(z).detach()
    monkeypatch.setattr("modecov.convnets.CHUNK", 16)
    with torch.no_grad():
        chunked = G(z)
    torch.testing.assert_close(chunked, full, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("key", list(conv_variants()))
def test_seeds_together_equal_separate_runs_float64(key):
    seeds = (3, 0, 7)
    common = dict(
        dataset="stacked_digits", variant=key, steps=10, eval_every=5, batch_size=16, hidden=8,
        z_dim=6, n_eval=40, n_eval_large=40, dtype="float64", device="cpu",
    )  # fmt: skip
    together = train(RunConfig(seeds=seeds, **common))
    for i, s in enumerate(seeds):
        alone = train(RunConfig(seeds=(s,), **common))
        torch.testing.assert_close(together.samples[i], alone.samples[0], rtol=0, atol=1e-10)
    assert not torch.equal(together.samples[0], together.samples[1])


def test_short_training_gives_finite_metrics():
    cfg = grid_configs(
        variants=("nsgan",), datasets=("stacked_digits",), references=False, seeds=(0, 1),
        steps=6, eval_every=3, batch_size=32, hidden=16, n_eval=300, n_eval_large=300,
    )[0]  # fmt: skip
    state = TrainState(cfg, DATA, cfg.spec, torch.device("cpu"))
    assert isinstance(state.G, StackedConvG) and isinstance(state.D, StackedConvD)
    out = train(cfg)
    assert out.samples.shape == (2, 300, 192)
    assert out.counts.shape == (3, 2, 1000)
    for name in ("modes_covered", "hq_fraction", "kl_true_gen", "inception_score_norm"):
        assert bool(torch.isfinite(out.final[name]).all()), name
    assert bool(torch.isfinite(out.final["frechet_distance"]).all())
    assert out.status == ["ok", "ok"]
