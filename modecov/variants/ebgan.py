"""EBGAN (Zhao et al. 2017): an autoencoder discriminator whose reconstruction error is an
energy, trained with a margin loss; ``ebgan_pt`` adds the pulling-away term on the codes.

The autoencoder's output *is* the energy, so the standard update runs it unchanged: the
discriminator "logits" it passes to the losses are energies (S, B, 1). The energy is the
squared reconstruction error averaged over the D coordinates, ``‖Dec(Enc(x)) − x‖² / D``:
the paper writes the norm, DESIGN and common ports (an MSE loss) square it, and the mean
over coordinates keeps one margin meaningful from 2-D to 1200-D data.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING

import torch
from torch import Tensor
from torch.nn import functional as F

from modecov import losses
from modecov.nets import StackedMLP
from modecov.variants.base import Variant

if TYPE_CHECKING:
    from modecov.state import StepState

MARGIN = 1.0
"""m, in the units of the energy (mean squared reconstruction error per coordinate).

The paper tunes m per image set (values of 10 to 80 for its image energies); on the toy
sets the coordinates are O(1) (ring radius 2, grid spacing 2). m = 1 asks the autoencoder
to miss a generated 2-D point by √2 ≈ 1.4, about the gap between neighbouring modes (1.5
on ``ring8``, 2 on ``grid25``): a fake between modes can be pushed to the margin, and the
energies, and so the generator's gradients, stay O(1). On ``ring8`` (3 seeds, 2,000 steps)
none of m = 0.1, 1, 4 was clearly better (HQ fractions 0.04-0.27, 3-8 modes), so the scale
argument decides.
"""

PT_WEIGHT = 0.1
"""λ_PT of the pulling-away term, the paper's value."""


class AutoEncoder(StackedMLP):
    """A seed-batched autoencoder ``Dec(Enc(x))`` whose output is the energy of each sample.

    One flat parameter buffer holds the encoder's layers then the decoder's (StackedMLP's
    layout on the widths ``[D, *encoder, code, *decoder, D]``); LeakyReLU follows every
    hidden layer except the code, which is linear.

    Args:
        dim: D, the data dimension.
        encoder: widths of the encoder's hidden layers.
        code: width of the code.
        decoder: widths of the decoder's hidden layers.
        generators: one ``torch.Generator`` per seed (initial weights, as StackedMLP).
        dtype, device, slope: as StackedMLP.
    """

    def __init__(
        self,
        dim: int,
        encoder: Sequence[int],
        code: int,
        decoder: Sequence[int],
        generators: Sequence[torch.Generator],
        *,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
        slope: float = 0.2,
    ) -> None:
        super().__init__(
            [dim, *encoder, code, *decoder, dim],
            generators,
            dtype=dtype,
            device=device,
            slope=slope,
        )
        self.code_layer = len(encoder)
        """Index of the layer whose output is the code."""

    input_gradient = None
    """Not StackedMLP's: the energy is not the MLP's output (penalties use autograd)."""

    def _run(self, x: Tensor, layers) -> Tensor:
        """Apply ``layers`` (weight, bias) pairs of this net, starting at layer 0."""
        last = len(self._leaf_layers) - 1
        for j, (w, b) in enumerate(layers):
            x = torch.baddbmm(b, x, w.transpose(1, 2))
            if j not in (self.code_layer, last):
                x = F.leaky_relu_(x, self.slope)  # x is this layer's fresh product
        return x

    def encode(self, x: Tensor, params: Tensor | None = None) -> Tensor:
        """(S, B, code) codes ``Enc(x)`` of (S, B, D) samples."""
        return self._run(x, self._layers(params)[: self.code_layer + 1])

    def reconstruct(self, x: Tensor, params: Tensor | None = None) -> Tensor:
        """(S, B, D) reconstructions ``Dec(Enc(x))``."""
        return self._run(x, self._layers(params))

    def __call__(self, x: Tensor, params: Tensor | None = None) -> Tensor:
        """(S, B, 1) energies ``‖Dec(Enc(x)) − x‖² / D`` of (S, B, D) samples."""
        return (self.reconstruct(x, params) - x).square().mean(dim=-1, keepdim=True)


def autoencoder(st: StepState) -> AutoEncoder:
    """The energy network of the shared budget: as many hidden layers as the shared D (the
    code is the middle one, of the shared width), the rest split between encoder and
    decoder, so ``[D, 128, 128, 128, 1]`` becomes ``[D, 128, (128), 128, D]``."""
    others = max(st.cfg.depth - 1, 0)
    h = st.cfg.hidden
    return AutoEncoder(
        st.data.dim * st.variant.pack,
        [h] * ((others + 1) // 2),
        h,
        [h] * (others // 2),
        st.generators,
        dtype=st.dtype,
        device=st.device,
    )


def pulling_away(codes: Tensor) -> Tensor:
    """Pulling-away term per seed: mean over ordered pairs i ≠ j of cos²(s_i, s_j).

    ``PT = 1 / (N(N − 1)) Σ_{i≠j} (s_iᵀ s_j / (‖s_i‖ ‖s_j‖))²`` (Zhao et al. 2017):
    0 when the codes are mutually orthogonal, 1 when they are all parallel.

    Args:
        codes: (S, N, C) codes of one batch per seed, N >= 2.

    Returns:
        (S,) term per seed, differentiable w.r.t. ``codes``.

    Raises:
        ValueError: when N < 2 (no pair).
    """
    S, N, _ = codes.shape
    if N < 2:
        raise ValueError("the pulling-away term needs a batch of at least 2 samples")
    unit = F.normalize(codes, dim=-1)
    cos2 = torch.bmm(unit, unit.transpose(1, 2)).square()
    off = cos2.sum((1, 2)) - torch.diagonal(cos2, dim1=1, dim2=2).sum(1)
    return off / (N * (N - 1))


def pulling_away_regularizer(st: StepState, *, z: Tensor, fake: Tensor) -> Tensor:
    """Generator regulariser: the pulling-away term on the encoder codes of the fake batch
    (the paper applies it to the generator loss only)."""
    del z
    return pulling_away(st.D.encode(fake))


ebgan_d = partial(losses.energy_margin_d, margin=MARGIN)
"""The margin loss at the toy margin ``MARGIN``."""

EBGAN = Variant(
    name="ebgan",
    label="EBGAN",
    version=2,  # v2: groups of v1 (29b536b, 73bae40) do not re-run bitwise
    reference="zhao2017energy",
    d_loss=ebgan_d,
    g_loss=losses.energy_g,
    make_d=autoencoder,
    relative_cost=1.0,
    d_energy=True,  # D is an autoencoder: its reconstruction energy is low on real data
)
"""Keeps the shared Adam: the paper gives no toy settings."""

EBGAN_PT = Variant(
    name="ebgan_pt",
    label="EBGAN-PT",
    version=2,  # v2: groups of v1 (29b536b, 73bae40) do not re-run bitwise
    reference="zhao2017energy",
    d_loss=ebgan_d,
    g_loss=losses.energy_g,
    make_d=autoencoder,
    g_regularizer=pulling_away_regularizer,
    g_regularizer_weight=PT_WEIGHT,
    relative_cost=1.3,
    d_energy=True,  # D is an autoencoder: its reconstruction energy is low on real data
)
