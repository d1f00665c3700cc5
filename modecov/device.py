"""The one place that decides which torch device modecov runs on, and where each seed's
random stream lives on it."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from modecov.errors import ConfigError

DEVICES = ("auto", "cpu", "cuda")


def resolve(device: str) -> torch.device:
    """Map ``auto|cpu|cuda`` to a torch device; ``auto`` picks CUDA when present."""
    if device not in DEVICES:
        raise ConfigError(f"unknown device {device!r}; choose one of {', '.join(DEVICES)}")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda was asked for but torch sees no CUDA device")
    return torch.device(device)


def device_name(device: torch.device) -> str:
    """A human-readable name of the device for provenance."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    import platform

    return f"cpu ({platform.processor() or platform.machine()})"


def random_streams(
    seeds: Sequence[int], device: torch.device, generators: Sequence[torch.Generator]
) -> list[torch.Generator]:
    """One random stream per seed on ``device``, for every draw inside a training step.

    Args:
        seeds: the group's seeds.
        device: where training runs.
        generators: the per-seed CPU generators of the initial weights, each seeded with its
            seed alone and already drawn from.

    Returns:
        On CPU, ``generators`` themselves: a seed's batches continue its weights' stream, as
        every stored CPU result did. Elsewhere, :func:`fresh_streams`: a step then draws on
        the device and never waits for a CPU draw and its copy.
    """
    if all(g.device == device for g in generators):
        return list(generators)
    return fresh_streams(seeds, device)


def fresh_streams(seeds: Sequence[int], device: torch.device) -> list[torch.Generator]:
    """A new generator on ``device`` per seed, seeded with that seed alone, so a seed's
    stream does not depend on which other seeds share its group."""
    return [torch.Generator(device=device).manual_seed(s) for s in seeds]
