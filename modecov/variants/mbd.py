"""Minibatch discrimination (Salimans et al. 2016): NS-GAN whose discriminator also sees,
for each sample, how close it is to the other samples of its minibatch.

The layer costs O(B² · kernels · kernel_dim) per pass, elementwise work that no matrix
product does. ``minibatch_features`` computes it exactly with a hand-written backward:
each unordered pair of tiles of the symmetric pair grid once, no exp over the grid (a
product of per-point factors), all kernel dimensions at once in chunks that stay in a core's
L2 cache. At the shared batch of 256 (5 seeds, ring8, one thread) a step costs 0.6 s, 38
NS-GAN steps beside other jobs (``benchmarks/step_costs.md``, which gives its floor), where
the implementation with 2 MB chunks took 0.8 s (53) and cdist with autograd several times
that.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

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


TILE = 64
"""Rows per tile of a minibatch's pair grid: each unordered pair of tiles is computed once
(the grid is symmetric), (1 + 1/tiles)/2 of the grid; 64 measured faster than 16, 32 or
128 at batch 256."""

CHUNK_ELEMENTS = 1 << 14
"""Pair-grid entries per chunk of (seed, kernel) sets, at least one set: every dimension's
differences or minima of a chunk are one (C, chunk) temporary, which then stays in a core's
L2 cache. At batch 256 (tile 64) a chunk is one set, 41K entries: measured 25% faster per
step than sets of 2^19 entries, whose temporaries spilled out of L2, and than 3 sets."""

FAST_SPREAD = 0.6
"""A point set takes ``_pair_weights``' exp-free path when its spread (the sum over the
kernel's dimensions of each one's range) is at most this share of log(dtype max): 53 in
float32, 425 in float64. Its factors then stay within e^{±0.9 log(max)}, clear of overflow
and of subnormals."""


def _tile(n: int) -> int:
    """Rows per tile for a minibatch of n rows: the largest divisor of n up to TILE, or n
    itself (one tile, the full grid) when that divisor would be too small to pay off."""
    if n <= TILE:
        return n
    size = max(d for d in range(1, TILE + 1) if n % d == 0)
    return size if size >= TILE // 4 else n


def _tile_pairs(tiles: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """(Q,) tile indices a <= b of every unordered tile pair, by offset b − a: the diagonal
    pairs first."""
    a = torch.cat([torch.arange(tiles - k, device=device) for k in range(tiles)])
    b = torch.cat([torch.arange(k, tiles, device=device) for k in range(tiles)])
    return a, b


def _pair_tiles(x: Tensor, tile: int) -> tuple[Tensor, Tensor]:
    """(C, P, Q, tile, 1) and (C, P, Q, 1, tile): tiles a and b (``_tile_pairs``) of
    (C, P, n) x, which broadcast to the Q tile pairs' blocks."""
    C, P, n = x.shape
    tiles = n // tile
    xt = x.view(C, P, tiles, tile)
    xa = torch.cat([xt[:, :, : tiles - k] for k in range(tiles)], dim=2)
    xb = torch.cat([xt[:, :, k:] for k in range(tiles)], dim=2)
    return xa[..., None], xb[..., None, :]


def _split_sets(tiled: Sequence[Tensor], rows: int) -> list[tuple[Tensor, ...]]:
    """Each of the tiles of x, w (C, P, ...) and s (P, ...) cut into chunks of ``rows`` sets."""
    return [t.split(rows, dim=t.dim() - 4) for t in tiled]


class _KernelSums(torch.autograd.Function):
    """``o_pi = Σ_j exp(−Σ_c |x_cpi − x_cpj|)`` for (C, P, n) points x: P point sets (one per
    seed, minibatch and kernel) of n points in C dimensions, one (P, n) plane per dimension
    so that every difference below runs over contiguous rows.

    The (n, n) grid of each set is cut into tiles of t rows; the t×t block of tiles (a, b),
    a <= b, is computed once, its row sums go to tile a and, off the diagonal, its column
    sums to tile b. E_ij = exp(−‖x_i − x_j‖₁) comes from ``_pair_weights``. Backward uses
    ∂o_i/∂x_ic = −Σ_j E_ij sign(x_ic − x_jc) and its mirror term, so with g = ∂L/∂o:
    ∂L/∂x_ic = −Σ_j (g_i + g_j) E_ij sign(x_ic − x_jc), sign(0) = 0 as for cdist (the self
    term has no gradient). Backward recomputes E chunk by chunk rather than keeping half of
    the (P, n, n) grid: writing it to memory and reading it back cost more than the
    recomputation, and memory stays at a few chunks of CHUNK_ELEMENTS entries. Each chunk's
    work runs over all C dimensions at once, a handful of operations per chunk whatever C.
    """

    @staticmethod
    def forward(ctx, x: Tensor, tile: int) -> Tensor:
        C, P, n = x.shape
        tiles = n // tile
        a, b = _tile_pairs(tiles, x.device)
        Q = a.numel()
        w, s, fast = _exp_factors(x)
        sa, sb = _pair_tiles(s, tile)
        tiled = (*_pair_tiles(x, tile), *_pair_tiles(w, tile), sa[0], sb[0])
        rows = min(P, max(1, CHUNK_ELEMENTS // (Q * tile * tile)))
        e = x.new_empty(rows, Q, tile, tile)
        scratch = x.new_empty(C, rows, Q, tile, tile)
        row_sums = x.new_empty(P, Q, tile)
        col_sums = x.new_empty(P, Q - tiles, tile)
        chunks = zip(
            *_split_sets(tiled, rows),
            row_sums.split(rows),
            col_sums.split(rows),
            range(0, P, rows),
        )
        for *tk, rk, ck, start in chunks:
            ek = _pair_weights(tk, fast[start : start + rows], e, scratch)
            torch.sum(ek, -1, out=rk)
            torch.sum(ek[:, tiles:], -2, out=ck)
        out = x.new_zeros(P, tiles, tile)
        out.index_add_(1, a, row_sums).index_add_(1, b[tiles:], col_sums)
        ctx.save_for_backward(*tiled)
        ctx.tile, ctx.n, ctx.fast = tile, n, fast
        return out.view(P, n)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:
        tiled = ctx.saved_tensors
        tile, n, fast = ctx.tile, ctx.n, ctx.fast
        C, P, Q = tiled[0].shape[:3]
        tiles = n // tile
        a, b = _tile_pairs(tiles, grad.device)
        (ga,), (gb,) = _pair_tiles(grad.reshape(1, P, n), tile)
        rows = min(P, max(1, CHUNK_ELEMENTS // (Q * tile * tile)))
        e = grad.new_empty(rows, Q, tile, tile)
        g = torch.empty_like(e)
        scratch = grad.new_empty(C, rows, Q, tile, tile)
        # (P, C, ...) so that each chunk's sums land in one contiguous block.
        row_sums = grad.new_empty(P, C, Q, tile)
        col_sums = grad.new_empty(P, C, Q - tiles, tile)
        chunks = zip(
            *_split_sets(tiled, rows),
            ga.split(rows),
            gb.split(rows),
            row_sums.split(rows),
            col_sums.split(rows),
            range(0, P, rows),
        )
        for *tk, gak, gbk, rk, ck, start in chunks:
            wk = _pair_weights(tk, fast[start : start + rows], e, scratch)
            p = wk.shape[0]
            gk, m = (g, scratch) if p == rows else (g[:p], scratch[:, :p])
            wk.mul_(torch.add(gak, gbk, out=gk))
            torch.sub(tk[0], tk[1], out=m).sign_().mul_(wk)
            torch.sum(m, -1, out=rk.transpose(0, 1))
            torch.sum(m[:, :, tiles:], -2, out=ck.transpose(0, 1))
        gx = grad.new_zeros(P, C, tiles, tile)
        gx.index_add_(2, b[tiles:], col_sums).index_add_(2, a, row_sums.neg_())
        return gx.transpose(0, 1).reshape(C, P, n), None


def _exp_factors(x: Tensor) -> tuple[Tensor, Tensor, list[bool]]:
    """w = exp(−2x') (C, P, n) and s = exp(Σ_c x') (1, P, n) of (C, P, n) x centred per set
    and dimension (x' = x − midrange), and per set whether its spread Σ_c range_c is small
    enough for them not to overflow (never for a set with a NaN or an infinity)."""
    lo, hi = x.amin(-1, keepdim=True), x.amax(-1, keepdim=True)
    centred = x - (lo + hi) / 2
    spread = (hi - lo).sum(0).flatten()
    fast = spread <= FAST_SPREAD * math.log(torch.finfo(x.dtype).max)
    return (-2 * centred).exp(), centred.sum(0, keepdim=True).exp(), fast.tolist()


def _pair_weights(
    tiled: Sequence[Tensor], fast: Sequence[bool], out: Tensor, scratch: Tensor
) -> Tensor:
    """``E = exp(−Σ_c |x_a,c − x_b,c|)`` over p sets' tile pairs, into the first p rows of
    ``out`` (``scratch`` holds C planes of its shape).

    ``tiled`` holds the tiles a and b of x and w, (C, p, Q, t, ·), and of s, (p, Q, t, ·)
    (``_exp_factors``). Per dimension
    exp(−|x_i − x_j|) = e^{x'_i} e^{x'_j} min(e^{−2x'_i}, e^{−2x'_j}) (x' = x − m for any m),
    so E = s_i s_j Π_c min(w_ic, w_jc): a minimum and a product per dimension, no exp
    over the grid. Its factors stay within e^{±1.5 · spread}; sets too spread for the
    dtype use exp(−‖x_i − x_j‖₁) directly (the whole chunk when none of its sets is fast).
    The minima (or distances) of all C dimensions are one operation, their product (sum)
    one reduction over them, in dimension order.
    """
    xa, xb, wa, wb, sa, sb = tiled
    p = xa.shape[1]
    # A comparison costs less than a slice, and most chunks fill the buffers.
    e, m = (out, scratch) if p == out.shape[0] else (out[:p], scratch[:, :p])
    if not any(fast):
        torch.sub(xa, xb, out=m).abs_()
        return torch.sum(m, 0, out=e).neg_().exp_()
    torch.prod(torch.minimum(wa, wb, out=m), 0, out=e)
    e.mul_(sa).mul_(sb)
    slow = [i for i, ok in enumerate(fast) if not ok]
    if slow:
        at = torch.tensor(slow, device=e.device)
        e[at] = (xa[:, at] - xb[:, at]).abs_().sum(0).neg_().exp_()
    return e


def _block_features(block: Tensor) -> Tensor:
    """(S, G, n, kernels) features of (S, G, n, kernels, kernel_dim) projections, G
    minibatches of n rows each."""
    S, G, n, kernels, width = block.shape
    x = block.permute(4, 0, 1, 3, 2).reshape(width, S * G * kernels, n)
    o = _KernelSums.apply(x, _tile(n))
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
    relative_cost=38.0,
    # v2: the minibatch layer's rewrites since the v1 groups were run (tiled, chunked pair
    # grid) sum in another order, which moves the float32 rounding and, over 5,000 steps,
    # the samples: a 2026-11-30 re-run of the committed ring8 group differs by up to 1.3 in
    # a coordinate (KL 0.41 -> 0.42 over seeds), while a re-run of unrolled is bitwise equal.
    version=2,
    landscape=False,  # minibatch features: a grid batch makes bands, not one sample's score
)
"""Keeps the shared Adam: the paper gives no toy settings."""
