"""Minibatch discrimination (Salimans et al. 2016): NS-GAN whose discriminator also sees,
for each sample, how close it is to the other samples of its minibatch.

The layer costs O(B² · kernels · kernel_dim) per pass, elementwise work that no matrix
product does. ``minibatch_features`` computes it exactly with a hand-written backward. On
CPU two kernels compiled by numba walk each point set's pair grid row by row, with every
pair's dimensions in registers, the rows' points in vector lanes and no exp over the grid
(a product of per-point factors): at the shared batch of 256 (5 seeds, ring8, one thread)
a step costs 0.14 s, 9 to 10 NS-GAN steps (``benchmarks/step_costs.md``, which gives its
floor), where the best eager-PyTorch version (a tiled symmetric grid in L2-sized chunks)
took 0.66 s (38 to 43) and cdist with autograd several times that. Other devices run the
same sums in torch.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numba
import torch
from torch import Tensor
from torch.autograd.function import once_differentiable
from torch.nn import functional as F

from modecov import losses
from modecov.variants.base import Variant

if TYPE_CHECKING:
    from modecov.state import StepState

KERNELS = 100
"""Minibatch kernels (the paper's B = 100; B is the batch size elsewhere in modecov)."""

KERNEL_DIM = 5
"""Dimension of each kernel's projection (the paper's C = 5)."""

T_INIT_STD = 0.05
"""Standard deviation of T's initial entries, as in the authors' code (improved-gan)."""


FAST_SPREAD = 0.6
"""A point set takes the exp-free pair weights (``_kernels``) when its spread (the sum
over the kernel's dimensions of each one's range) is at most this share of log(dtype max):
53 in float32, 425 in float64. Its factors then stay within e^{±0.9 log(max)}, clear of
overflow and of subnormals."""

TORCH_CHUNK = 1 << 24
"""Entries of the (sets, C, n, n) differences the torch path holds at once (64 MB in
float32): a chunk of at least one set."""


def _on_host(x: Tensor) -> bool:
    """Whether ``_KernelSums`` runs the compiled CPU kernels on x (a CPU tensor); tensors on
    other devices take the torch path. test_gpu_ready forces the torch path to check it."""
    return x.device.type == "cpu"


@functools.cache
def _kernels(C: int):
    """The compiled forward and backward of ``_KernelSums`` for points of C dimensions. C is
    a constant of the compiled code, so the loop over a pair's dimensions unrolls and the
    loop over i, innermost, runs in vector registers.

    Each set p's grid is walked row j by row j, E_ij computed for every i:
    a fast set (``_exp_factors``) uses, per dimension,
    exp(−|x_i − x_j|) = e^{x'_i} e^{x'_j} min(e^{−2x'_i}, e^{−2x'_j}) (x' = x − m for any m),
    so E_ij = s_i s_j Π_c min(w_ic, w_jc), products in that order, no exp over the grid; a
    set too spread for that (or with a NaN or an infinity) takes the exp of the summed
    distances. Each i sums over j in order, whatever the vector width."""

    @numba.njit(nogil=True, cache=False, inline="always")
    def fast_weight(w, s, i, j):  # pragma: no cover - compiled
        v = s[i] * s[j]
        for c in range(C):
            a, b = w[c, i], w[c, j]
            v *= a if a < b else b
        return v

    @numba.njit(nogil=True, cache=False, inline="always")
    def exact_weight(x, i, j):  # pragma: no cover - compiled
        d = abs(x[0, i] - x[0, j])
        for c in range(1, C):
            d += abs(x[c, i] - x[c, j])
        return math.exp(-d)

    @numba.njit(nogil=True, cache=False, inline="always")
    def spread_grad(x, gx, t, i, j):  # pragma: no cover - compiled
        # gx_ci −= t sign(x_ci − x_cj); sign(0) = 0 as for cdist, NaN for a NaN difference.
        for c in range(C):
            a, y = x[c, i], x[c, j]
            gx[c, i] -= t if a > y else (-t if a < y else (a - y) * t)

    @numba.njit(nogil=True, cache=False)
    def forward(x, w, s, fast, out):  # pragma: no cover - compiled
        P, _, n = x.shape
        for p in range(P):
            xp, wp, sp, o = x[p], w[p], s[p], out[p]
            for i in range(n):
                o[i] = 0.0
            for j in range(n):
                if fast[p]:
                    for i in range(n):
                        o[i] += fast_weight(wp, sp, i, j)
                else:
                    for i in range(n):
                        o[i] += exact_weight(xp, i, j)

    @numba.njit(nogil=True, cache=False)
    def backward(x, w, s, fast, grad, gx):  # pragma: no cover - compiled
        P, _, n = x.shape
        for p in range(P):
            xp, wp, sp, gp, gxp = x[p], w[p], s[p], grad[p], gx[p]
            for c in range(C):
                for i in range(n):
                    gxp[c, i] = 0.0
            for j in range(n):
                gj = gp[j]
                if fast[p]:
                    for i in range(n):
                        spread_grad(xp, gxp, fast_weight(wp, sp, i, j) * (gp[i] + gj), i, j)
                else:
                    for i in range(n):
                        spread_grad(xp, gxp, exact_weight(xp, i, j) * (gp[i] + gj), i, j)

    return forward, backward


def _torch_weights(x: Tensor) -> Tensor:
    """(p, n, n) E_ij = exp(−‖x_i − x_j‖₁) of (p, C, n) x, by broadcasting."""
    return (x[..., :, None] - x[..., None, :]).abs_().sum(1).neg_().exp_()


def _torch_chunks(x: Tensor) -> list[slice]:
    """Slices of x's (P, C, n) sets whose pair differences fit in TORCH_CHUNK entries."""
    P, C, n = x.shape
    rows = max(1, TORCH_CHUNK // (C * n * n))
    return [slice(start, start + rows) for start in range(0, P, rows)]


class _KernelSums(torch.autograd.Function):
    """``o_pi = Σ_j exp(−Σ_c |x_pci − x_pcj|)`` for (P, C, n) points x: P point sets (one per
    seed, minibatch and kernel) of n points in C dimensions, one row per dimension.

    On CPU it runs the two compiled kernels of ``_kernels``: each set's grid row by row,
    every pair's C dimensions in registers, nothing of the (P, n, n) grid in memory.
    Backward recomputes E and uses ∂o_i/∂x_ic = −Σ_j E_ij sign(x_ic − x_jc) and its mirror
    term, so with g = ∂L/∂o: ∂L/∂x_ic = −Σ_j (g_i + g_j) E_ij sign(x_ic − x_jc), sign(0) = 0
    as for cdist (the self term has no gradient). On other devices it runs the same sums in
    torch, chunk by chunk of sets, with no host read.
    """

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        P, C, n = x.shape
        ctx.save_for_backward(x)
        out = x.new_empty(P, n)
        if _on_host(x):
            x = x.detach().contiguous()
            w, s, fast = _exp_factors(x)
            _kernels(C)[0](x.numpy(), w.numpy(), s.numpy(), fast.numpy(), out.numpy())
            ctx.factors = (w, s, fast)
            return out
        for k in _torch_chunks(x):
            torch.sum(_torch_weights(x[k]), -1, out=out[k])
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor) -> tuple[Tensor]:
        (x,) = ctx.saved_tensors
        P, C, n = x.shape
        grad = grad.contiguous()
        gx = x.new_empty(P, C, n)
        if _on_host(x):
            arrays = (x.detach().contiguous(), *ctx.factors, grad, gx)
            _kernels(C)[1](*(t.numpy() for t in arrays))
            return (gx,)
        for k in _torch_chunks(x):
            xk, gk = x[k], grad[k]
            m = _torch_weights(xk).mul_(gk[:, :, None] + gk[:, None, :])
            m = (xk[..., :, None] - xk[..., None, :]).sign_().mul_(m[:, None])
            torch.sum(m, -1, out=gx[k]).neg_()
        return (gx,)


def _exp_factors(x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """w = exp(−2x') (P, C, n) and s = exp(Σ_c x') (P, n) of (P, C, n) x centred per set
    and dimension (x' = x − midrange), and (P,) whether each set's spread Σ_c range_c is
    small enough for them not to overflow (never for a set with a NaN or an infinity)."""
    lo, hi = x.amin(-1, keepdim=True), x.amax(-1, keepdim=True)
    centred = x - (lo + hi) / 2
    spread = (hi - lo).sum(1).flatten()
    fast = spread <= FAST_SPREAD * math.log(torch.finfo(x.dtype).max)
    return (-2 * centred).exp(), centred.sum(1).exp(), fast


def _block_features(block: Tensor) -> Tensor:
    """(S, G, n, kernels) features of (S, G, n, kernels, kernel_dim) projections, G
    minibatches of n rows each."""
    S, G, n, kernels, width = block.shape
    x = block.permute(0, 1, 3, 4, 2).reshape(S * G * kernels, width, n)
    o = _KernelSums.apply(x)
    return o.view(S, G, kernels, n).transpose(2, 3)


def minibatch_features(m: Tensor, group: int) -> Tensor:
    """``o(x_i)_b = Σ_j exp(−‖M_{i,b} − M_{j,b}‖₁)``, j over x_i's minibatch.

    The minibatch of row i is its block of ``group`` consecutive rows (the last block may
    be shorter), within its own seed; j runs over the whole block, i included, as in the
    paper's sum over j = 1..n (the self term adds 1). The gradient is ``_KernelSums``'
    hand-written one (equal to cdist's under autograd); there is no second derivative.

    Args:
        m: (S, N, kernels, kernel_dim) projections ``M_i = f(x_i) T``.
        group: rows per minibatch.

    Returns:
        (S, N, kernels) minibatch features.
    """
    S, N, kernels, width = m.shape
    full = N - N % group
    parts = []
    if full:
        blocks = m[:, :full].reshape(S, full // group, group, kernels, width)
        parts.append(_block_features(blocks).reshape(S, full, kernels))
    if full < N:
        parts.append(_block_features(m[:, full:, None].transpose(1, 2))[:, 0])
    return torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]


class MinibatchDiscriminator:
    """A seed-batched MLP discriminator with a minibatch discrimination layer.

    The trunk (LeakyReLU after every layer) maps x to features f (S, N, A); ``M = f T``
    with T (A, kernels · kernel_dim) per seed; the minibatch features o (S, N, kernels)
    are concatenated to f and a last linear layer gives the logit. All parameters live in
    one flat (S, P) buffer with StackedMLP's interface (``params``, ``leaves``,
    ``flat_grad``, ``n_seeds``).

    Rows are split into minibatches of ``group`` consecutive samples: the trainer's joint
    pass over ``cat(real, fake)`` (2·batch rows) thus keeps real and fake apart, and a
    generator pass over one fake batch is one minibatch.

    The logit layer's weights on the minibatch features start at zero, so D starts as the
    shared MLP and learns how much to use them: the features are sums over the minibatch,
    up to its size (the batch, 256), and a standard initialisation of those weights starts D with
    logits in the hundreds. On ``ring8`` (batch 64, 3 seeds, 2,000 steps) that start left
    two of three seeds with 2 and 4 modes; the zero start gave 8 modes on all three (the
    paper leaves the initialisation open; the authors' code rescales T from data instead).

    Args:
        sizes: trunk widths, input first, features last (e.g. ``[D, 128, 128, 128]``).
        group: rows per minibatch.
        generators: one ``torch.Generator`` per seed; seed s's initial weights come from
            ``generators[s]`` alone: linear layers as ``nn.Linear`` (with the zeros above),
            T ~ N(0, 0.05²).
        kernels, kernel_dim: the paper's B and C.
        dtype, device, slope: as StackedMLP.
    """

    def __init__(
        self,
        sizes: Sequence[int],
        group: int,
        generators: Sequence[torch.Generator],
        *,
        kernels: int = KERNELS,
        kernel_dim: int = KERNEL_DIM,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
        slope: float = 0.2,
    ) -> None:
        self.sizes = tuple(int(s) for s in sizes)
        self.group, self.kernels, self.kernel_dim, self.slope = group, kernels, kernel_dim, slope
        features = self.sizes[-1]
        # (shape, kind) of each block: the trunk's layers, T, then the output layer.
        self.shapes: list[tuple[tuple[int, ...], str]] = []
        for fan_in, fan_out in zip(self.sizes[:-1], self.sizes[1:]):
            self.shapes += [((fan_out, fan_in), "weight"), ((1, fan_out), "bias")]
        self.shapes.append(((features, kernels * kernel_dim), "T"))
        self.shapes += [((1, features + kernels), "head"), ((1, 1), "bias")]
        self.n_params = sum(math.prod(shape) for shape, _ in self.shapes)
        rows = [self._init_row(g) for g in generators]
        self.params = torch.stack(rows).to(device=device, dtype=dtype)
        """(S, P) flat parameters; optimisers update it in place."""
        self.leaves = [t.requires_grad_(True) for t in self._views(self.params)]
        """Views of ``params`` that autograd differentiates, in ``params`` order."""

    def _init_row(self, generator: torch.Generator) -> Tensor:
        """(P,) initial parameters of one seed."""
        parts, fan_in = [], 1
        for shape, kind in self.shapes:
            if kind == "T":
                t = torch.randn(shape, generator=generator, dtype=torch.float64) * T_INIT_STD
            else:
                fan_in = shape[1] if kind in ("weight", "head") else fan_in
                bound = 1.0 / math.sqrt(fan_in)
                t = torch.rand(shape, generator=generator, dtype=torch.float64)
                t = (t * 2 - 1).mul_(bound)
                if kind == "head":
                    t[:, shape[1] - self.kernels :] = 0.0
            parts.append(t.reshape(-1))
        return torch.cat(parts)

    @property
    def n_seeds(self) -> int:
        """S, the number of seeds."""
        return int(self.params.shape[0])

    def _views(self, p: Tensor) -> list[Tensor]:
        """Per entry of ``shapes``, its (S, *shape) view of flat ``p``."""
        S, views, offset = p.shape[0], [], 0
        for shape, _ in self.shapes:
            size = math.prod(shape)
            views.append(p[:, offset : offset + size].view(S, *shape))
            offset += size
        return views

    def flat_grad(self, grads: Sequence[Tensor]) -> Tensor:
        """Concatenate per-leaf gradients into one (S, P) tensor laid out as ``params``."""
        S = self.params.shape[0]
        return torch.cat([g.reshape(S, -1) for g in grads], dim=1)

    def features(self, x: Tensor, params: Tensor | None = None) -> Tensor:
        """(S, N, A + kernels): the trunk's features of (S, N, in) samples, then their
        minibatch features."""
        views = self._views(params) if params is not None else self.leaves
        *trunk, t, _, _ = views
        for w, b in zip(trunk[0::2], trunk[1::2]):
            x = F.leaky_relu_(torch.baddbmm(b, x, w.transpose(1, 2)), self.slope)
        S, N, _ = x.shape
        m = torch.bmm(x, t).view(S, N, self.kernels, self.kernel_dim)
        return torch.cat((x, minibatch_features(m, self.group)), dim=-1)

    def __call__(self, x: Tensor, params: Tensor | None = None) -> Tensor:
        """Map (S, N, in) to (S, N, 1) logits; minibatches are blocks of ``group`` rows."""
        views = self._views(params) if params is not None else self.leaves
        w, b = views[-2:]
        return torch.baddbmm(b, self.features(x, params), w.transpose(1, 2))


def minibatch_critic(st: StepState) -> MinibatchDiscriminator:
    """The shared discriminator trunk with a minibatch discrimination layer before the logit;
    one minibatch per seed and per real or fake batch."""
    sizes = [st.data.dim * st.variant.pack, *[st.cfg.hidden] * st.cfg.depth]
    return MinibatchDiscriminator(
        sizes,
        st.cfg.batch_size,
        st.generators,
        dtype=st.dtype,
        device=st.device,
    )


MBD = Variant(
    name="mbd",
    label="MBD",
    reference="salimans2016improved",
    d_loss=losses.bce_d,
    g_loss=losses.nonsaturating_g,
    make_d=minibatch_critic,
    relative_cost=9.5,
    # v3: the compiled CPU kernels sum each point's row in order, where the v2 torch code
    # summed tiles of the symmetric grid: the float32 rounding, and so the samples, moved.
    # v2: the minibatch layer's rewrites since the v1 groups were run (tiled, chunked pair
    # grid) sum in another order, which moves the float32 rounding and, over 5,000 steps,
    # the samples: a 2026-11-30 re-run of the committed ring8 group differs by up to 1.3 in
    # a coordinate (KL 0.41 -> 0.42 over seeds), while a re-run of unrolled is bitwise equal.
    version=3,
    landscape=False,  # minibatch features: a grid batch makes bands, not one sample's score
)
"""Keeps the shared Adam: the paper gives no toy settings."""
