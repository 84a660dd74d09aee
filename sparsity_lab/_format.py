"""Human-readable formatting shared by the CLI and the figures."""

from __future__ import annotations


def human_bytes(n: float) -> str:
    """``1536`` → ``"1.5 KiB"``: binary units up to GiB, whole bytes below 1 KiB."""
    for unit in ("B", "KiB", "MiB"):
        if n < 1024:
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n:,.1f} GiB"


def points_gap(value: float, reference: float, what: str = "", *, digits: int = 1) -> str:
    """How far ``value`` lies from ``reference`` in percentage points, in words: ``"2.7 pt below dense"``,
    ``"0.4 pt above dense"``, ``"level with dense"`` (never a sign before "below"); ``what`` names the reference,
    ``digits`` the decimals kept."""
    gap = round(value - reference, digits)
    tail = f" {what}" if what else ""
    if gap == 0:
        return f"level with{tail}" if what else "level"
    return f"{abs(gap):.{digits}f} pt {'below' if gap < 0 else 'above'}{tail}"
