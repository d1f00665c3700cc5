"""The VARIANTS registry (GAN variants) and REFERENCES (calibration samplers)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from modecov import losses
from modecov.variants.base import Variant
from modecov.variants.reference import ONE_MODE, TRUE_SAMPLER

GAN = Variant(
    name="gan",
    label="GAN",
    reference="goodfellow2014generative",
    d_loss=losses.bce_d,
    g_loss=losses.minimax_g,
)

NSGAN = Variant(
    name="nsgan",
    label="NS-GAN",
    reference="goodfellow2014generative",
    d_loss=losses.bce_d,
    g_loss=losses.nonsaturating_g,
)

VARIANTS: Mapping[str, Variant] = MappingProxyType({v.name: v for v in (GAN, NSGAN)})
REFERENCES: Mapping[str, Variant] = MappingProxyType({v.name: v for v in (TRUE_SAMPLER, ONE_MODE)})
"""Samplers scored by the same code as the variants, so every table calibrates itself."""

__all__ = ["REFERENCES", "VARIANTS", "Variant"]
