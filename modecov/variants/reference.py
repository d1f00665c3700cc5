"""Reference samplers: the dataset's own sampler and a sampler stuck on the heaviest mode."""

from __future__ import annotations

import torch

from modecov.variants.base import Variant


def _true(data, n: int, generator: torch.Generator) -> torch.Tensor:
    return data.sample(n, generator)


def _one_mode(data, n: int, generator: torch.Generator) -> torch.Tensor:
    return data.sample_mode(int(torch.argmax(data.weights)), n, generator)


TRUE_SAMPLER = Variant(
    name="true_sampler", label="True sampler", reference="modecov", sampler=_true
)
ONE_MODE = Variant(name="one_mode", label="One mode", reference="modecov", sampler=_one_mode)
