"""Minibatch discrimination (Salimans et al. 2016): NS-GAN whose discriminator also sees,
for each sample, how close it is to the other samples of its minibatch.

The layer costs O(B² · kernels · kernel_dim) per pass, elementwise work that no matrix
product does: at the shared batch of 256 a step costs 100-130 NS-GAN steps on a CPU.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch import Tensor
from torch.nn import functional as F

from modecov import losses
from modecov.variants.base import Variant

if TYPE_CHECKING:
    from modecov.train import TrainState

KERNELS = 100
"""Minibatch kernels (the paper's B = 100; B is the batch size elsewhere in modecov)."""

KERNEL_DIM = 5
"""Dimension of each kernel's projection (the paper's C = 5)."""

T_INIT_STD = 0.05
"""Standard deviation of T's initial entries, as in the authors' code (improved-gan)."""


def minibatch_features(m: Tensor, group: int) -> Tensor:
    """``o(x_i)_b = Σ_j exp(−‖M_{i,b} − M_{j,b}‖₁)``, j over x_i's minibatch.

    The minibatch of row i is its block of ``group`` consecutive rows (the last block may
    be shorter), within its own seed; j runs over the whole block, i included, as in the
    paper's sum over j = 1..n (the self term adds exactly 1).

    Args:
        m: (S, N, kernels, kernel_dim) projections ``M_i = f(x_i) T``.
        group: rows per minibatch.

    Returns:
        (S, N, kernels) minibatch features.
    """
    S, _, kernels, width = m.shape
    parts = []
    for block in m.split(group, dim=1):
        n = block.shape[1]
        # One (n, kernel_dim) point set per seed and kernel: cdist gives their L1 distances.
        per_kernel = block.permute(0, 2, 1, 3).reshape(S * kernels, n, width)
        dist = torch.cdist(per_kernel, per_kernel, p=1)
        parts.append(torch.exp(-dist).sum(-1).view(S, kernels, n).transpose(1, 2))
    return torch.cat(parts, dim=1)


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
            x = F.leaky_relu(torch.baddbmm(b, x, w.transpose(1, 2)), self.slope)
        S, N, _ = x.shape
        m = torch.bmm(x, t).view(S, N, self.kernels, self.kernel_dim)
        return torch.cat((x, minibatch_features(m, self.group)), dim=-1)

    def __call__(self, x: Tensor, params: Tensor | None = None) -> Tensor:
        """Map (S, N, in) to (S, N, 1) logits; minibatches are blocks of ``group`` rows."""
        views = self._views(params) if params is not None else self.leaves
        w, b = views[-2:]
        return torch.baddbmm(b, self.features(x, params), w.transpose(1, 2))


def minibatch_critic(st: TrainState) -> MinibatchDiscriminator:
    """The shared discriminator trunk with a minibatch discrimination layer before the logit;
    one minibatch per seed and per real or fake batch."""
    sizes = [st.data.dim * st.variant.pack, *[st.cfg.hidden] * st.cfg.depth]
    return MinibatchDiscriminator(
        sizes,
        st.cfg.batch_size // st.variant.pack,
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
    relative_cost=115.0,
)
"""Keeps the shared Adam: the paper gives no toy settings."""
