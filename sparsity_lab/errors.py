"""The family of errors caused by what a user typed or set up.

Every bad input (a config value, a flag, a sweep file, an environment variable, a device, the data
root) raises a subclass of :class:`UserError` whose message is one line naming the value and what is
allowed. ``cli.main`` and ``report.main`` print that line and exit with status 2; the traceback is
shown only with ``--debug`` or ``SPARSITY_LAB_DEBUG=1`` (:func:`debug_enabled`).
"""

from __future__ import annotations

import math
import os
from typing import Any

DEBUG_ENV = "SPARSITY_LAB_DEBUG"


class UserError(Exception):
    """A bad input; the message names the value and what is allowed (one line, exit status 2)."""


class EnvVarError(UserError, ValueError):
    """An environment variable (``SPARSITY_LAB_*``) holds a value that is not allowed."""


def debug_enabled() -> bool:
    """Whether ``$SPARSITY_LAB_DEBUG`` asks for tracebacks (1, true, yes, on)."""
    return os.environ.get(DEBUG_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def one_line(err: BaseException) -> str:
    """The error's message on one line (later lines joined with ' | ')."""
    text = str(err).strip() or type(err).__name__
    return " | ".join(part.strip() for part in text.splitlines() if part.strip())


def env_int(name: str, default: int, *, low: int = 1, high: int | None = None) -> int:
    """``$name`` as an integer in [low, high] (``default`` when unset or empty); EnvVarError otherwise."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    allowed = f"an integer >= {low}" if high is None else f"an integer in [{low}, {high}]"
    try:
        value = int(raw)
    except ValueError:
        raise EnvVarError(f"environment variable {name}={raw!r} is not allowed: {allowed}") from None
    if value < low or (high is not None and value > high):
        raise EnvVarError(f"environment variable {name}={raw!r} is not allowed: {allowed}")
    return value


def is_finite_number(value: Any) -> bool:
    """A real int or float (never a bool) that is finite."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int too large for a float
        return False


class ConfigError(UserError, ValueError):
    """An invalid config value; the message names the field, the value and what is allowed."""
