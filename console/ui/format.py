"""Number, age and latency formatting for the console's tables and panels.

Kept pure and tiny so the tick table can call it for every changed row each
frame. Counts are always exact (every digit, thousands separators), never
abbreviated: an operator reconciling totals must be able to trust them.
"""

from __future__ import annotations

import math

MISSING = "—"          # value absent from the tick
UNKNOWN = "?"          # value unknowable (no envelope: latency, gaps)
UP_MARK = "▲"
DOWN_MARK = "▼"
FLAT_MARK = " "


def price(value: float | None) -> str:
    """A price with as many decimals as its magnitude needs (2..5)."""
    if value is None or not math.isfinite(value):
        return MISSING
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.2f}"
    if magnitude >= 1:
        text = f"{value:.4f}".rstrip("0")
        whole, _, frac = text.partition(".")
        return f"{whole}.{frac.ljust(2, '0')}"
    if magnitude == 0:
        return "0.00"
    text = f"{value:.5f}".rstrip("0")
    whole, _, frac = text.partition(".")
    return f"{whole}.{frac.ljust(2, '0')}"


def change(value: float | None) -> str:
    """A signed price change with a ▲/▼ marker so meaning survives 16 colours."""
    if value is None or not math.isfinite(value):
        return MISSING
    if value > 0:
        return f"{UP_MARK}{price(value)}"
    if value < 0:
        return f"{DOWN_MARK}{price(-value)}"
    return f"{FLAT_MARK}{price(0.0)}"


def quantity(value: float | None) -> str:
    """Sizes and volumes: exact integers with separators, fractions kept."""
    if value is None or not math.isfinite(value):
        return MISSING
    if value == int(value) and abs(value) < 1e15:
        return f"{int(value):,}"
    return f"{value:,.4f}".rstrip("0").rstrip(".")


def count(value: int | None) -> str:
    """An exact count: every digit, with thousands separators."""
    if value is None:
        return MISSING
    return f"{value:,}"


def rate(value: float | None) -> str:
    """Messages per second, one decimal below 100/s."""
    if value is None or not math.isfinite(value):
        return MISSING
    if value < 100:
        return f"{value:.1f}/s"
    return f"{round(value):,}/s"


# From this age on (seconds), ages are shown in this unit (with this suffix).
_AGE_UNITS = ((172800, 86400, "d"), (7200, 3600, "h"), (120, 60, "m"), (0, 1, "s"))


def age(ns: int | None, *, coarse: bool = False) -> str:
    """How long ago, from a duration in ns: 0.4s, 12s, 5m, 3h, 2d.

    `coarse` drops the tenths ('<1s', '4s'), so a table cell changes at most
    once a second instead of ten times.
    """
    if ns is None:
        return MISSING
    seconds = max(0.0, ns / 1e9)
    if coarse and seconds < 1:
        return "<1s"
    if seconds < 10 and not coarse:
        return f"{seconds:.1f}s"
    _, unit, suffix = next(step for step in _AGE_UNITS if seconds >= step[0])
    return f"{int(seconds // unit)}{suffix}"


def age_changes_in(ns: int) -> int:
    """ns until `age(ns, coarse=True)` shows another text (the next unit boundary).

    The tick table repaints a row's age only then, not every frame.
    """
    ns = max(0, ns)
    seconds = ns / 1e9
    if seconds < 1:
        return max(1, 1_000_000_000 - ns)
    _, unit, _ = next(step for step in _AGE_UNITS if seconds >= step[0])
    next_s = (int(seconds // unit) + 1) * unit
    return max(1, next_s * 1_000_000_000 - ns)


def latency_us(value: float | None) -> str:
    """A latency in µs, scaled to µs/ms/s; '?' when it cannot be known."""
    if value is None or not math.isfinite(value):
        return UNKNOWN
    if value < 0:
        value = 0.0
    if value < 1000:
        return f"{value:.0f}µs"
    if value < 1_000_000:
        return f"{value / 1000:.1f}ms"
    return f"{value / 1_000_000:.2f}s"


def milliseconds(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return MISSING
    if value < 10:
        return f"{value:.2f}ms"
    return f"{value:.0f}ms"


def money(value: float | None) -> str:
    if value is None or not isinstance(value, int | float) or not math.isfinite(value):
        return MISSING
    return f"{value:,.2f}"
