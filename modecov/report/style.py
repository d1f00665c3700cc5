"""One colour, line style and marker per variant, fixed by its place in the registry, so a
variant looks the same in every figure of every store (curves, samples, histograms, movies)."""

from __future__ import annotations

import zlib

from modecov.variants import REFERENCES, VARIANTS

COLORS = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#bcbd22",
    "#17becf",
)
"""tab10 without its grey, which the reference samplers and the real-data backdrop use."""
LINESTYLES = ("-", "--", ":", "-.")
"""Variant i has colour i mod 9 and line style i div 9: 36 variants before a pair repeats."""
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "*", "h")
"""Eleven markers against nine colours, so two variants of one colour differ in marker too."""
SETTING_DASHES = ((0, (5, 1, 1, 1, 1, 1)), (0, (8, 2, 2, 2)), (0, (1, 3)), (0, (6, 1, 6, 4)))
"""Dash patterns no variant uses, for the second and later configs of one variant in a figure
(the optim suite's NS-GAN under two optimisers): the variant's colour, its own dashes."""
REFERENCE_STYLES = {
    "true_sampler": {"color": "black", "linestyle": "-", "marker": "."},
    "one_mode": {"color": "0.55", "linestyle": "--", "marker": "x"},
}
"""Reference samplers in black and grey: calibration, not contestants."""


def _index(variant: str) -> int:
    """Registry position; a key outside the registry (a store of an older version) gets a
    stable position past it from its name, so it too keeps one style everywhere."""
    order = list(VARIANTS)
    if variant in VARIANTS:
        return order.index(variant)
    return len(order) + zlib.crc32(variant.encode()) % (len(COLORS) * len(LINESTYLES) - len(order))


def style(variant: str, setting_index: int = 0) -> dict[str, object]:
    """Matplotlib keyword arguments that draw ``variant`` in every figure.

    Args:
        variant: a VARIANTS or REFERENCES key (another key gets a stable style of its own).
        setting_index: which config of this variant in one figure (0 for the first or only
            one); later ones keep the colour and marker but take a dash pattern of their own.

    Returns:
        ``color``, ``linestyle`` and ``marker``.

    Example:
        ``style("gan")`` is blue and solid; ``style("bigan")`` (position 12) is green and
        dashed; no two of the first 36 registered variants share colour and line style.
    """
    if variant in REFERENCES:
        out = dict(REFERENCE_STYLES.get(variant, {"color": "0.3", "linestyle": ":", "marker": "+"}))
    else:
        i = _index(variant)
        out = {
            "color": COLORS[i % len(COLORS)],
            "linestyle": LINESTYLES[(i // len(COLORS)) % len(LINESTYLES)],
            "marker": MARKERS[i % len(MARKERS)],
        }
    if setting_index > 0:
        out["linestyle"] = SETTING_DASHES[(setting_index - 1) % len(SETTING_DASHES)]
    return out
