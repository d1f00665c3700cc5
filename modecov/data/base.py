"""The Dataset interface: sampling with an explicit generator and one definition of modes."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from types import MappingProxyType

import torch
from scipy.stats import chi2
from torch import Tensor

HQ_MASS = float(chi2.cdf(9.0, 2))
"""Share of true samples inside the high-quality radius: P(chi2_2 <= 9) = 1 - exp(-4.5)."""

CHUNK = 2048
"""Rows of samples scored at once; results do not depend on it."""

FAR_D2 = 1e10
"""Squared Mahalanobis distance to the nearest centre beyond which ``GaussianMixture.posterior``
uses the linear form of the log-odds: there the rounding of the quadratic form (~eps * d2)
would swamp the differences between modes (at 1e30 every mode looks equally far, at 1e300
d2 overflows), while the linear form stays exact. No sample of a dataset, nor uniform noise
over its box, comes near it (at most ~1e9, on ``gauss1200``)."""

FAR_RADIUS = 1e6
"""Coordinate size beyond which ``Spiral`` finds a sample's nearest point of the curve in
coordinates divided by that size, where |x - c|^2 neither loses the curve to rounding nor
overflows."""


def hq_radius2(dim: int) -> float:
    """Squared Mahalanobis radius holding ``HQ_MASS`` of a D-dim standard Gaussian."""
    return float(chi2.ppf(HQ_MASS, dim))


class Dataset(ABC):
    """A distribution with known modes.

    Attributes:
        name: registry key (a CSV value; never changes).
        label: display name for tables.
        reference: where the setting comes from.
        dim: D, the data dimension.
        centers: (K, D) float64 mode centres.
        weights: (K,) float64 true mode weights, summing to 1.
        expected_hq: share of the dataset's own samples that are high quality.
        kernel_scale: the RBF bandwidth h of the kernel metrics (``vendi``, ``rke``), between
            the spread of a mode and the distance between neighbouring modes, so that a
            kernel sees each mode as one block (``mixture_kernel_scale``); None where no such
            scale exists (modes whose high-quality regions touch, a connected band, modes
            defined by a classifier), and the kernel metrics then take the median heuristic.
    """

    name: str
    label: str
    reference: str
    dim: int
    centers: Tensor
    weights: Tensor
    expected_hq: float = HQ_MASS
    kernel_scale: float | None = None
    comparison: bool = False
    """True for the sets of the mission's comparison, which the ``default`` and ``quick``
    suites train every variant on (DESIGN §9: the mixtures and the imbalanced sets)."""

    @property
    def n_modes(self) -> int:
        """K, the number of modes."""
        return int(self.weights.shape[0])

    @abstractmethod
    def sample(self, n: int, generator: torch.Generator, dtype=torch.float32) -> Tensor:
        """Draw (N, D) samples from the true distribution with ``generator``, on its device
        (a training stream lives on the training device)."""

    @abstractmethod
    def sample_mode(
        self, k: int, n: int, generator: torch.Generator, dtype=torch.float32
    ) -> Tensor:
        """Draw (N, D) samples from mode ``k`` alone."""

    @abstractmethod
    def assign(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Nearest mode and high-quality flag.

        Args:
            x: (..., N, D) samples.

        Returns:
            (..., N) long mode indices and (..., N) bool high-quality flags.
        """

    @abstractmethod
    def posterior(self, x: Tensor) -> Tensor:
        """p(k | x), the exact (or defined) mode posterior, (..., N, K) float64."""

    config_defaults: Mapping[str, object] = MappingProxyType({})
    """RunConfig fields this dataset sets unless the user does (stacked_digits' Z = 100)."""

    def accepts(self, variant) -> bool:
        """Whether ``variant`` can train on this dataset's networks; every variant can here.
        The suites train each dataset with the variants it accepts."""
        del variant
        return True

    def check_variant(self, variant) -> None:
        """Raise ConfigError when ``variant`` cannot train on this dataset (``accepts``)."""
        if not self.accepts(variant):
            from modecov.errors import ConfigError

            raise ConfigError(f"variant {variant.name!r} cannot train on {self.name}")

    def features(self, x: Tensor) -> Tensor:
        """(..., N, F) features for the Fréchet distance: the raw coordinates here; an image
        dataset returns its classifier's features."""
        return x

    def make_nets(self, state) -> tuple | None:
        """``(G, D)`` of this dataset's own architecture for ``state`` (a StepState), or None
        for the shared MLPs. Image datasets override it; the nets follow StackedMLP's
        interface (``params``, ``leaves``, ``flat_grad``, ``n_seeds``, ``__call__``)."""
        return None

    def _on(self, device: torch.device, *names: str) -> tuple[Tensor, ...]:
        """The named tensor attributes on ``device``, copied there once: a copy per draw would
        make every training step wait for it."""
        cache = self.__dict__.setdefault("_device_copies", {})
        for name in names:
            if (name, device) not in cache:
                cache[name, device] = getattr(self, name).to(device)
        return tuple(cache[name, device] for name in names)

    def bounds(self) -> tuple[float, float]:
        """A square box that holds the data with a margin, for plots and uniform noise."""
        extent = float(self.centers.abs().max()) * 1.25 + 0.5
        return -extent, extent


def mixture_kernel_scale(centers: Tensor, std: Tensor) -> float | None:
    """The ``kernel_scale`` of Gaussian modes: h = sqrt(spread * gap).

    The geometric mean of

    - spread = r * sqrt(mean_d std_d^2), the high-quality radius of a mode: r^2 =
      ``hq_radius2(D)`` (3 std in 2-D), the extent within which a sample counts for its mode
      (the root-mean-square semi-axis of that ellipsoid when the scales differ);
    - gap = the median over modes of the distance from a mode's centre to the nearest other
      centre (the mean of the two middle values for an even count).

    At h, two neighbouring centres have RBF exponent gap^2 / (2 h^2) = gap / (2 spread), large
    for separated modes (12.8 on ring8: kernel 3e-6), while a mode's own samples, ~std apart
    per coordinate, sit at std^2 / h^2 = std / (r gap) per coordinate (0.004 on ring8), so
    each mode is nearly one block of ones. The Vendi score of a perfect sampler still exceeds
    K by the entropy of that residual width (ring8: ~8.4; grid25, whose modes are twice as wide
    for their gap: ~27).

    Where neighbouring modes' high-quality regions touch (gap <= 2 spread) no bandwidth sees
    each mode as one block, and h would sit inside a mode (every sample its own block, VS ~ N):
    the scale is None, so the kernel metrics take the median heuristic. That is ``gauss1200``
    (gap 0.5 sqrt(1200) = 17.3, spread 27.7; at h = 21.9 its true sampler would score VS ~ 500
    of 1,000 samples and a one-mode sampler ~ 300, at the median bandwidth ~ 5.8 and ~ 1.9).

    Args:
        centers: (K, D) mode centres.
        std: (D,) per-coordinate standard deviation shared by every mode.

    Returns:
        h, or None for a single mode (no neighbour) or modes whose HQ regions touch.

    Example:
        ring8 (radius 2, std 0.02): spread 3 * 0.02 = 0.06, gap 2 * 2 sin(pi / 8) = 1.531,
        h = 0.303.
    """
    if centers.shape[0] < 2:
        return None
    dim = centers.shape[1]
    spread = math.sqrt(hq_radius2(dim) * float(std.to(torch.float64).square().mean()))
    d = torch.cdist(centers, centers, compute_mode="donot_use_mm_for_euclid_dist")
    gap = float(d.fill_diagonal_(math.inf).amin(-1).quantile(0.5))
    return math.sqrt(spread * gap) if gap > 2.0 * spread else None


def _chunked(x: Tensor, fn) -> list:
    """Apply ``fn`` to row chunks of a flattened (M, D) tensor."""
    return [fn(x[i : i + CHUNK]) for i in range(0, x.shape[0], CHUNK)]


class GaussianMixture(Dataset):
    """Gaussians sharing one diagonal scale ``std`` (D,), with centres and weights."""

    def __init__(
        self,
        *,
        name: str,
        label: str,
        reference: str,
        centers: Tensor,
        weights: Tensor,
        std: Tensor,
        comparison: bool = False,
    ) -> None:
        self.name, self.label, self.reference = name, label, reference
        self.comparison = comparison
        self.centers = centers.to(torch.float64)
        self.weights = (weights / weights.sum()).to(torch.float64)
        self.std = std.to(torch.float64).expand(self.centers.shape[1]).clone()
        self.dim = int(self.centers.shape[1])
        self.radius2 = hq_radius2(self.dim)
        self._scaled_centers = self.centers / self.std
        self.kernel_scale = mixture_kernel_scale(self.centers, self.std)

    def sample(self, n: int, generator: torch.Generator, dtype=torch.float32) -> Tensor:
        at = generator.device
        centers, weights, std = self._on(at, "centers", "weights", "std")
        idx = torch.multinomial(weights, n, replacement=True, generator=generator)
        noise = torch.randn(n, self.dim, generator=generator, dtype=torch.float64, device=at)
        return (centers[idx] + noise * std).to(dtype)

    def sample_mode(
        self, k: int, n: int, generator: torch.Generator, dtype=torch.float32
    ) -> Tensor:
        at = generator.device
        centers, std = self._on(at, "centers", "std")
        noise = torch.randn(n, self.dim, generator=generator, dtype=torch.float64, device=at)
        return (centers[k] + noise * std).to(dtype)

    def _dist2(self, x: Tensor) -> Tensor:
        """(..., N, K) squared Mahalanobis distances to every centre, in float64."""
        flat = x.reshape(-1, self.dim).to(torch.float64)
        centers = self._scaled_centers.to(flat.device)
        std = self.std.to(flat.device)

        def block(rows: Tensor) -> Tensor:
            diff = rows[:, None, :] / std - centers[None]
            return diff.square().sum(-1)

        d2 = torch.cat(_chunked(flat, block)) if flat.shape[0] else flat.new_zeros(0, len(centers))
        return d2.reshape(*x.shape[:-1], self.n_modes)

    def assign(self, x: Tensor) -> tuple[Tensor, Tensor]:
        d2, idx = self._dist2(x).min(-1)
        return idx, d2 <= self.radius2

    def posterior(self, x: Tensor) -> Tensor:
        logw = self.weights.to(x.device).log()
        d2 = self._dist2(x)
        post = torch.softmax(logw - 0.5 * d2, dim=-1)
        far = ~(d2.amin(-1) <= FAR_D2)  # NaN and inf distances included
        if bool(far.any()):
            post[far] = self._far_posterior(x[far].to(torch.float64), logw)
        return post

    def _far_posterior(self, x: Tensor, logw: Tensor) -> Tensor:
        """(M, K) p(k | x) of (M, D) samples far from every centre (s the scales ``std``).

        The log-odds are log w_k + (x / s) . (c_k / s) - |c_k / s|^2 / 2 (the quadratic form
        without the common |x / s|^2 / 2), computed as z_k = log-odds / m with
        m = max(1, max_d |x_d|) so nothing overflows; p = softmax(m (z - max_k z)), where a
        mode whose log-odds trail by more than ~745 gets exactly 0.
        """
        centers = self._scaled_centers.to(x.device)
        std = self.std.to(x.device)
        m = x.abs().amax(-1, keepdim=True).clamp_min(1.0)
        z = (x / m / std) @ centers.mT + (logw - 0.5 * centers.square().sum(-1)) / m
        return torch.softmax(m * (z - z.amax(-1, keepdim=True)), dim=-1)


class Spiral(Dataset):
    """A band of half-width ``half_width`` around an Archimedean spiral.

    The latent u in [-1, 1] sets the position along the spiral (radius r0 -> r1 over
    ``turns`` turns), v in [-1, 1] the offset along the curve's normal. Modes are
    ``n_segments`` stretches of equal mass in u; a sample is high quality when its distance
    to the curve is at most ``half_width * (1 + tolerance)``.

    Its ``kernel_scale`` is None (the kernel metrics take the median heuristic): the band is
    one connected region whose segments touch, with no gap between neighbouring modes for a
    bandwidth to sit below.
    """

    def __init__(
        self,
        *,
        name: str,
        label: str,
        reference: str,
        turns: float = 2.0,
        r0: float = 0.25,
        r1: float = 2.0,
        half_width: float = 0.1,
        n_segments: int = 16,
        tolerance: float = 0.1,
        resolution: int = 4096,
    ) -> None:
        self.name, self.label, self.reference = name, label, reference
        self.turns, self.r0, self.r1 = turns, r0, r1
        self.half_width, self.n_segments = half_width, n_segments
        self.max_dist = half_width * (1.0 + tolerance)
        self.dim = 2
        self.expected_hq = 1.0
        self.weights = torch.full((n_segments,), 1.0 / n_segments, dtype=torch.float64)
        mids = -1.0 + (2.0 * torch.arange(n_segments, dtype=torch.float64) + 1.0) / n_segments
        self.centers = self.curve(mids)
        self._u = torch.linspace(-1.0, 1.0, resolution, dtype=torch.float64)
        self._curve = self.curve(self._u)

    def curve(self, u: Tensor) -> Tensor:
        """(N, 2) points on the spiral at positions u in [-1, 1]."""
        t = (u + 1.0) / 2.0
        theta = 2.0 * math.pi * self.turns * t
        r = self.r0 + (self.r1 - self.r0) * t
        return torch.stack((r * torch.cos(theta), r * torch.sin(theta)), -1)

    def normal(self, u: Tensor) -> Tensor:
        """(N, 2) unit normals of the spiral at positions u."""
        t = (u + 1.0) / 2.0
        theta = 2.0 * math.pi * self.turns * t
        r = self.r0 + (self.r1 - self.r0) * t
        dr, dtheta = self.r1 - self.r0, 2.0 * math.pi * self.turns
        tangent = torch.stack(
            (
                dr * torch.cos(theta) - r * dtheta * torch.sin(theta),
                dr * torch.sin(theta) + r * dtheta * torch.cos(theta),
            ),
            -1,
        )
        tangent = tangent / tangent.norm(dim=-1, keepdim=True)
        return torch.stack((-tangent[:, 1], tangent[:, 0]), -1)

    def _from_latent(self, u: Tensor, v: Tensor, dtype) -> Tensor:
        return (self.curve(u) + (v * self.half_width)[:, None] * self.normal(u)).to(dtype)

    def sample(self, n: int, generator: torch.Generator, dtype=torch.float32) -> Tensor:
        at = generator.device
        uv = torch.rand(n, 2, generator=generator, dtype=torch.float64, device=at) * 2.0 - 1.0
        return self._from_latent(uv[:, 0], uv[:, 1], dtype)

    def sample_mode(
        self, k: int, n: int, generator: torch.Generator, dtype=torch.float32
    ) -> Tensor:
        uv = torch.rand(n, 2, generator=generator, dtype=torch.float64, device=generator.device)
        u = -1.0 + (2.0 * (k + uv[:, 0])) / self.n_segments
        return self._from_latent(u, uv[:, 1] * 2.0 - 1.0, dtype)

    def _at(self, t: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Point c(t), c'(t) and c''(t) of the spiral at t = (u + 1) / 2 in [0, 1]."""
        theta = 2.0 * math.pi * self.turns * t
        dr, dtheta = self.r1 - self.r0, 2.0 * math.pi * self.turns
        r = self.r0 + dr * t
        radial = torch.stack((torch.cos(theta), torch.sin(theta)), -1)
        across = torch.stack((-torch.sin(theta), torch.cos(theta)), -1)
        c = r[:, None] * radial
        dc = dr * radial + (r * dtheta)[:, None] * across
        ddc = 2.0 * dr * dtheta * across - (r * dtheta**2)[:, None] * radial
        return c, dc, ddc

    def _nearest(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(..., N) position u of the nearest point of the spiral and the distance to it.

        The nearest vertex of a fine polyline along the curve starts Newton's method on
        (c(t) - x) . c'(t) = 0, so u is exact to rounding and segment edges are sharp.
        """
        flat = x.reshape(-1, 2).to(torch.float64)
        curve, grid = self._curve.to(flat.device), self._u.to(flat.device)

        def near(rows: Tensor) -> tuple[Tensor, Tensor]:
            d = torch.cdist(rows, curve, compute_mode="donot_use_mm_for_euclid_dist")
            t = (grid[d.argmin(-1)] + 1.0) / 2.0
            for _ in range(4):
                c, dc, ddc = self._at(t)
                diff = c - rows
                slope = (dc * dc).sum(-1) + (diff * ddc).sum(-1)
                t = (t - (diff * dc).sum(-1) / slope).clamp(0.0, 1.0)
            return 2.0 * t - 1.0, (self._at(t)[0] - rows).norm(dim=-1)

        def far(rows: Tensor) -> tuple[Tensor, Tensor]:
            # The same search on x / m, m = max_d |x_d|: the vertex minimising
            # (|x - c|^2 - |x|^2) / m = |c|^2 / m - 2 (x / m) . c, then Newton on
            # (c / m - x / m) . c' = 0, all of order 1.
            m = rows.abs().amax(-1, keepdim=True)
            u = rows / m
            score = curve.square().sum(-1) / m - 2.0 * u @ curve.mT
            t = (grid[score.argmin(-1)] + 1.0) / 2.0
            for _ in range(4):
                c, dc, ddc = self._at(t)
                diff = c / m - u
                slope = (dc * dc).sum(-1) / m[:, 0] + (diff * ddc).sum(-1)
                t = (t - (diff * dc).sum(-1) / slope).clamp(0.0, 1.0)
            # Beyond ~1e308 the distance is inf: still not within the band.
            return 2.0 * t - 1.0, m[:, 0] * (self._at(t)[0] / m - u).norm(dim=-1)

        def block(rows: Tensor) -> tuple[Tensor, Tensor]:
            is_far = rows.abs().amax(-1) > FAR_RADIUS
            if not bool(is_far.any()):
                return near(rows)
            u, dist = torch.empty_like(rows[:, 0]), torch.empty_like(rows[:, 0])
            for mask, fn in ((~is_far, near), (is_far, far)):
                if bool(mask.any()):
                    u[mask], dist[mask] = fn(rows[mask])
            return u, dist

        parts = _chunked(flat, block)
        if not parts:
            empty = flat.new_zeros(0)
            return empty.reshape(x.shape[:-1]), empty.reshape(x.shape[:-1])
        u = torch.cat([p[0] for p in parts]).reshape(x.shape[:-1])
        dist = torch.cat([p[1] for p in parts]).reshape(x.shape[:-1])
        return u, dist

    def assign(self, x: Tensor) -> tuple[Tensor, Tensor]:
        u, dist = self._nearest(x)
        seg = ((u + 1.0) / 2.0 * self.n_segments).floor().long().clamp(0, self.n_segments - 1)
        return seg, dist <= self.max_dist

    def posterior(self, x: Tensor) -> Tensor:
        # The band has no density-based posterior; a sample belongs to its segment.
        seg, _ = self.assign(x)
        return torch.nn.functional.one_hot(seg, self.n_segments).to(torch.float64)
