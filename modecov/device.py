"""The one place that decides which torch device modecov runs on."""

from __future__ import annotations

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
