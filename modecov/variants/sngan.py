"""SN-GAN (Miyato et al. 2018): NS-GAN whose discriminator divides every weight matrix by
its largest singular value, estimated per seed by power iteration."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch import Tensor
from torch.nn import functional as F

from modecov import losses
from modecov.nets import StackedMLP
from modecov.variants.base import Variant

if TYPE_CHECKING:
    from modecov.state import StepState

INIT_ITERATIONS = 15
"""Power iterations run on the initial weights, as ``torch.nn.utils.parametrizations.
spectral_norm`` does when it is registered, so σ is accurate from the first step."""

EPS = 1e-12
"""Floor of the norms in the power iteration (torch's default)."""


class SpectralNormMLP(StackedMLP):
    """A StackedMLP whose weights are used as ``W / σ(W)``, one σ per seed and layer.

    σ is estimated as ``torch.nn.utils.spectral_norm`` and Miyato et al.'s code do, with one
    power iteration: each layer keeps unit vectors u (S, out) and v (S, in) per seed; a
    forward pass run with gradients enabled (a training step) first updates them in place,
    ``v ← Wᵀu / ‖Wᵀu‖``, then ``u ← Wv / ‖Wv‖``, and uses ``σ = uᵀWv`` with u and v held
    constant, so gradients flow through W only. A pass under ``torch.no_grad()``
    (evaluation, plots) uses the stored u and v and changes nothing, so watching training
    does not change it. Biases are not normalised.

    Args:
        sizes, generators, dtype, device, slope: as StackedMLP. After its weights, each
            seed draws its initial u then v of every layer, N(0, I) normalised, from its
            own generator, so a seed's start does not depend on the other seeds.
    """

    def __init__(
        self,
        sizes: Sequence[int],
        generators: Sequence[torch.Generator],
        *,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
        slope: float = 0.2,
    ) -> None:
        super().__init__(sizes, generators, dtype=dtype, device=device, slope=slope)
        self.u: list[Tensor] = []
        """Per layer, (S, out) left singular vector estimates."""
        self.v: list[Tensor] = []
        """Per layer, (S, in) right singular vector estimates."""
        for _, _, fan_out, fan_in in self.layout:
            u, v = [], []
            for g in generators:
                u.append(torch.randn(fan_out, generator=g, dtype=torch.float64))
                v.append(torch.randn(fan_in, generator=g, dtype=torch.float64))
            self.u.append(F.normalize(torch.stack(u), dim=1, eps=EPS).to(device, dtype))
            self.v.append(F.normalize(torch.stack(v), dim=1, eps=EPS).to(device, dtype))
        with torch.no_grad():
            for _ in range(INIT_ITERATIONS):
                for j, (w, _) in enumerate(self._leaf_layers):
                    self._power_iteration(j, w)

    def _power_iteration(self, j: int, w: Tensor) -> None:
        """One in-place update of layer ``j``'s u and v on its (S, out, in) weights."""
        v = F.normalize(torch.bmm(self.u[j][:, None, :], w)[:, 0], dim=1, eps=EPS)
        u = F.normalize(torch.bmm(w, v[:, :, None])[..., 0], dim=1, eps=EPS)
        self.v[j].copy_(v)
        self.u[j].copy_(u)

    def sigma(self, j: int, w: Tensor) -> Tensor:
        """(S,) ``uᵀWv`` of layer ``j`` with the stored u, v; differentiable w.r.t. ``w``."""
        # Copies, as torch does: a later pass updates u and v in place, and autograd may
        # still need these values (a second pass before the backward, e.g. a penalty).
        return torch.einsum("so,soi,si->s", self.u[j].clone(), w, self.v[j].clone())

    def normalized(self, params: Tensor | None = None) -> list[tuple[Tensor, Tensor]]:
        """Per layer, the (S, out, in) weight ``W / σ`` and (S, 1, out) bias in use, after
        the power iteration when gradients are enabled."""
        layers = super()._layers(params)
        out = []
        for j, (w, b) in enumerate(layers):
            if torch.is_grad_enabled():
                with torch.no_grad():
                    self._power_iteration(j, w)
            out.append((w / self.sigma(j, w)[:, None, None], b))
        return out

    def features(self, x: Tensor, params: Tensor | None = None) -> Tensor:
        """Not available: StackedMLP's would skip the normalisation, and a split pass would
        run the power iteration twice."""
        raise TypeError("SpectralNormMLP has no separate features/head pass")

    head = features

    def _layers(self, params: Tensor | None) -> list[tuple[Tensor, Tensor]]:
        """Every pass (``self(x)``) runs on the spectrally normalised weights."""
        return self.normalized(params)


def spectral_norm_critic(st: StepState) -> SpectralNormMLP:
    """The shared discriminator shape with spectral normalisation of every weight."""
    hidden = [st.cfg.hidden] * st.cfg.depth
    sizes = [st.data.dim * st.variant.pack, *hidden, 1]
    return SpectralNormMLP(sizes, st.generators, dtype=st.dtype, device=st.device)


SNGAN = Variant(
    name="sngan",
    label="SN-GAN",
    version=2,  # v2: groups of v1 (29b536b, 73bae40) do not re-run bitwise
    reference="miyato2018spectral",
    d_loss=losses.bce_d,
    g_loss=losses.nonsaturating_g,
    make_d=spectral_norm_critic,
    relative_cost=1.15,
)
"""Keeps the shared Adam: the paper gives no toy settings."""
