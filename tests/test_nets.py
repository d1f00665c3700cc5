"""Tests for modecov.nets (StackedMLP: flat (S, P) parameters, leaf views, per-seed
initialisation) and modecov.optim (masked Adam / RMSprop over those flat parameters)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from modecov.nets import StackedMLP
from modecov.optim import Adam, RMSprop

SIZES = (2, 16, 16, 16, 3)


def gens(*seeds: int) -> list[torch.Generator]:
    return [torch.Generator().manual_seed(s) for s in seeds]


def sequential_of(net: StackedMLP, s: int) -> nn.Sequential:
    """An nn.Sequential of Linear / LeakyReLU(0.2) holding seed ``s``'s weights."""
    layers: list[nn.Module] = []
    leaves = net.leaves
    for j, (w, b) in enumerate(zip(leaves[::2], leaves[1::2], strict=True)):
        linear = nn.Linear(w.shape[2], w.shape[1], dtype=torch.float64)
        with torch.no_grad():
            linear.weight.copy_(w[s])
            linear.bias.copy_(b[s, 0])
        layers.append(linear)
        if j < len(leaves) // 2 - 1:
            layers.append(nn.LeakyReLU(0.2))
    return nn.Sequential(*layers)


def test_layout():
    net = StackedMLP(SIZES, gens(0, 1), dtype=torch.float64)
    expected = sum(i * o + o for i, o in zip(SIZES[:-1], SIZES[1:], strict=True))
    assert net.n_params == expected
    assert net.params.shape == (2, expected) and net.n_seeds == 2
    assert net.params.dtype == torch.float64
    assert [tuple(t.shape) for t in net.leaves[:2]] == [(2, 16, 2), (2, 1, 16)]
    assert len(net.leaves) == 2 * (len(SIZES) - 1)
    assert all(t.requires_grad and t.is_leaf for t in net.leaves)


def test_init_bounds_are_those_of_nn_linear():
    net = StackedMLP(SIZES, gens(0, 1, 2), dtype=torch.float64)
    for w, b in zip(net.leaves[::2], net.leaves[1::2], strict=True):
        w, b = w.detach(), b.detach()
        bound = 1.0 / math.sqrt(w.shape[2])
        assert float(w.abs().max()) <= bound and float(b.abs().max()) <= bound
        assert float(w.abs().max()) > 0.5 * bound  # uses the range, not a tiny slice of it


def test_seed_init_depends_only_on_its_generator():
    together = StackedMLP(SIZES, gens(0, 1, 2))
    alone = StackedMLP(SIZES, gens(2))
    assert torch.equal(together.params[2], alone.params[0])
    first = StackedMLP(SIZES, gens(2, 0))
    assert torch.equal(together.params[0], first.params[1])
    assert not torch.equal(together.params[0], together.params[1])


def test_init_ignores_the_global_rng():
    torch.manual_seed(0)
    a = StackedMLP(SIZES, gens(3)).params
    torch.manual_seed(1)
    assert torch.equal(a, StackedMLP(SIZES, gens(3)).params)


@pytest.mark.parametrize(
    "sizes",
    [
        pytest.param(SIZES, id="three_hidden"),
        pytest.param((4, 7, 1), id="one_hidden"),
        pytest.param((5, 2), id="linear"),
    ],
)
def test_forward_equals_nn_sequential(sizes):
    S, B = 3, 11
    net = StackedMLP(sizes, gens(0, 1, 2), dtype=torch.float64)
    x = torch.randn(S, B, sizes[0], generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    y = net(x)
    assert y.shape == (S, B, sizes[-1])
    for s in range(S):
        ref = sequential_of(net, s)(x[s])
        torch.testing.assert_close(y[s], ref, rtol=0, atol=1e-12)


def test_leaves_are_views_of_params():
    net = StackedMLP(SIZES, gens(0, 1), dtype=torch.float64)
    x = torch.randn(2, 5, SIZES[0], generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    before = net(x).detach()
    with torch.no_grad():
        net.params[1].zero_()
    after = net(x)
    assert torch.equal(after[0], before[0])
    assert torch.equal(after[1], torch.zeros_like(after[1]))
    with torch.no_grad():
        net.params[0].mul_(2.0)
    for leaf in net.leaves:
        assert leaf.untyped_storage().data_ptr() == net.params.untyped_storage().data_ptr()
    torch.testing.assert_close(net(x)[0], sequential_of(net, 0)(x[0]), rtol=0, atol=1e-12)


def test_flat_grad_is_laid_out_as_params():
    net = StackedMLP(SIZES, gens(0, 1), dtype=torch.float64)
    x = torch.randn(2, 7, SIZES[0], generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    loss = net(x).square().mean(dim=(1, 2)).sum()
    flat = net.flat_grad(torch.autograd.grad(loss, net.leaves))
    p = net.params.detach().clone().requires_grad_(True)
    (ref,) = torch.autograd.grad(net(x, p).square().mean(dim=(1, 2)).sum(), p)
    assert flat.shape == net.params.shape
    torch.testing.assert_close(flat, ref, rtol=0, atol=1e-14)


def test_seeds_do_not_mix_in_backward():
    net = StackedMLP(SIZES, gens(0, 1, 2), dtype=torch.float64)
    x = torch.randn(3, 7, SIZES[0], generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    loss = net(x).square().mean(dim=(1, 2))
    full = net.flat_grad(torch.autograd.grad(loss.sum(), net.leaves, retain_graph=True))
    only_1 = net.flat_grad(torch.autograd.grad(loss[1], net.leaves))
    assert torch.equal(full[1], only_1[1])
    assert not only_1[0].any() and not only_1[2].any()


S, P, STEPS = 3, 40, 20


def _grads(seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(S, P, generator=g, dtype=torch.float64) for _ in range(STEPS)]


OPTIMS = [
    pytest.param(Adam(lr=1e-2, betas=(0.5, 0.999), eps=1e-8), id="adam"),
    pytest.param(Adam(lr=3e-3, betas=(0.9, 0.99), eps=1e-6), id="adam_b09"),
    pytest.param(RMSprop(lr=1e-2, alpha=0.99, eps=1e-8), id="rmsprop"),
    pytest.param(RMSprop(lr=5e-5, alpha=0.9, eps=1e-6), id="rmsprop_a09"),
]


def _torch_reference(spec, p0: torch.Tensor, grads: list[torch.Tensor]) -> torch.Tensor:
    """Run torch.optim per seed on the same gradients; returns the (S, P) parameters."""
    rows = []
    for s in range(p0.shape[0]):
        p = p0[s].clone().requires_grad_(True)
        if isinstance(spec, Adam):
            opt = torch.optim.Adam([p], lr=spec.lr, betas=spec.betas, eps=spec.eps)
        else:
            opt = torch.optim.RMSprop([p], lr=spec.lr, alpha=spec.alpha, eps=spec.eps)
        for g in grads:
            p.grad = g[s].clone()
            opt.step()
        rows.append(p.detach())
    return torch.stack(rows)


@pytest.mark.parametrize("spec", OPTIMS)
def test_optimizer_matches_torch_per_seed(spec):
    p0 = torch.randn(S, P, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    params = p0.clone()
    state = spec.build(params)
    alive = torch.ones(S, dtype=torch.bool)
    grads = _grads()
    for g in grads:
        state.step(g, alive)
    assert state.params is params  # updated in place: the network's buffer is the one trained
    assert (params - p0).abs().min() > 0
    torch.testing.assert_close(params, _torch_reference(spec, p0, grads), rtol=0, atol=1e-12)


@pytest.mark.parametrize("spec", OPTIMS)
def test_dead_seed_keeps_its_params_bitwise(spec):
    """Seed 1 dies half-way (its moments are non-zero by then) and must not move again."""
    p0 = torch.randn(S, P, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    params = p0.clone()
    state = spec.build(params)
    grads = _grads()
    for t, g in enumerate(grads):
        alive = torch.tensor([True, t < STEPS // 2, True])
        if t == STEPS // 2:
            at_death = params[1].clone()
            g = g.clone()
            g[1] = math.nan  # a frozen seed's gradients may be anything, NaN included
        state.step(g, alive)
    assert torch.equal(params[1], at_death)
    ref = _torch_reference(spec, p0, grads)
    torch.testing.assert_close(params[[0, 2]], ref[[0, 2]], rtol=0, atol=1e-12)
    ref_at_death = _torch_reference(spec, p0, grads[: STEPS // 2])
    torch.testing.assert_close(at_death, ref_at_death[1], rtol=0, atol=1e-12)
    assert torch.isfinite(params).all()


def test_specs_are_frozen_data():
    spec = Adam()
    assert (spec.lr, spec.betas, spec.eps) == (1e-4, (0.5, 0.999), 1e-8)
    with pytest.raises(AttributeError):
        spec.lr = 1.0  # type: ignore[misc]


def _autograd_input_gradient(net: StackedMLP, x: torch.Tensor) -> torch.Tensor:
    """The straightforward input gradient: autograd's double-backward-ready gradient."""
    x = x.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(net(x).sum(), x, create_graph=True)
    return grad


@pytest.mark.parametrize(
    "sizes",
    [
        pytest.param((2, 16, 16, 16, 1), id="three_hidden"),
        pytest.param((6, 9, 1), id="one_hidden"),
        pytest.param((4, 1), id="linear"),
    ],
)
def test_input_gradient_matches_autograd(sizes):
    # The same values as autograd's create_graph gradient, and the same gradient of a penalty
    # on it w.r.t. every weight (autograd also differentiates the slope masks, to zero).
    S, B = 3, 13
    net = StackedMLP(sizes, gens(0, 1, 2), dtype=torch.float64)
    x = torch.randn(S, B, sizes[0], generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    got, want = net.input_gradient(x), _autograd_input_gradient(net, x)
    assert got.shape == (S, B, sizes[0])
    torch.testing.assert_close(got, want, rtol=0, atol=1e-15)

    def penalty_grad(grad: torch.Tensor) -> torch.Tensor:
        penalty = (grad.norm(dim=-1) - 1.0).square().mean(dim=1).sum()
        return net.flat_grad(torch.autograd.grad(penalty, net.leaves, materialize_grads=True))

    torch.testing.assert_close(penalty_grad(got), penalty_grad(want), rtol=1e-12, atol=1e-14)


def test_input_gradient_float32_values_are_autograds_bit_for_bit():
    net = StackedMLP(SIZES[:-1] + (1,), gens(0, 1))
    x = torch.randn(2, 64, SIZES[0], generator=torch.Generator().manual_seed(5))
    assert torch.equal(net.input_gradient(x), _autograd_input_gradient(net, x))


def test_input_gradient_needs_one_output():
    with pytest.raises(ValueError, match="one output"):
        StackedMLP(SIZES, gens(0)).input_gradient(torch.zeros(1, 2, SIZES[0]))


def test_functional_pass_second_derivative_matches_autograd():
    # A functional pass (params given: the unrolled critic) carries LeakyReLU's mask as a
    # constant in its double backward; the values at every order are autograd's.
    from torch.nn import functional as F

    net = StackedMLP(SIZES, gens(0, 1), dtype=torch.float64)
    x = torch.randn(2, 9, SIZES[0], generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    x.requires_grad_(True)

    def reference(p: torch.Tensor) -> torch.Tensor:
        h = x
        for w, b in net._views(p)[:-1]:
            h = F.leaky_relu(torch.baddbmm(b, h, w.transpose(1, 2)), net.slope)
        w, b = net._views(p)[-1]
        return torch.baddbmm(b, h, w.transpose(1, 2))

    results = []
    for forward in (lambda p: net(x, p), reference):
        p = net.params.detach().clone().requires_grad_(True)
        out = forward(p)
        (g,) = torch.autograd.grad(out.square().sum(), p, create_graph=True)
        # A function of the gradient, differentiated w.r.t. the parameters and the input.
        second = torch.autograd.grad((g * g.detach().sign()).sum(), (p, x))
        results.append((out, g, *second))
    assert torch.equal(results[0][0], results[1][0])
    for got, want in zip(results[0][1:], results[1][1:], strict=True):
        torch.testing.assert_close(got, want, rtol=1e-13, atol=1e-15)


def test_flat_grad_copies_each_gradient_into_its_slot():
    net = StackedMLP(SIZES, gens(0, 1), dtype=torch.float64)
    grads = [torch.randn(t.shape, dtype=torch.float64) for t in net.leaves]
    want = torch.cat([g.reshape(2, -1) for g in grads], dim=1)
    # Gradients as baddbmm's backward gives them for weights: transposed views.
    transposed = [g.transpose(1, 2).contiguous().transpose(1, 2) for g in grads]
    assert torch.equal(net.flat_grad(grads), want)
    assert torch.equal(net.flat_grad(transposed), want)
