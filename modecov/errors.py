"""Errors a user can cause; the CLI turns each into one line and exit code 2."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class ModecovError(Exception):
    """An error caused by user input (names, numbers, files, stores)."""


class ConfigError(ModecovError):
    """An invalid configuration value."""


class StoreError(ModecovError):
    """A results store that cannot be used as asked."""


def unknown(kind: str, name: str, valid: Iterable[str]) -> ConfigError:
    """An error for an unknown name that lists the valid ones and the closest match."""
    valid = list(valid)
    close = difflib.get_close_matches(name, valid, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return ConfigError(f"unknown {kind} {name!r}{hint}; choose one of {', '.join(valid)}")
