"""The tick table's columns and how many of them fit a width.

Kept apart from the widget: the column set is also the CSV export's header
(console.ui.data_files), and fitting is pure arithmetic the tests check on its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from console.model import SymbolRow


@dataclass(frozen=True, slots=True)
class Column:
    """One table column: how to show it, sort it, and when to drop it when narrow."""

    key: str
    title: str
    width: int
    right: bool                              # right-aligned (numbers)
    priority: int                            # lower survives longer on narrow screens
    sort_value: Callable[[SymbolRow], Any]
    static_sort: bool = False                # value never changes for a symbol


COLUMNS: tuple[Column, ...] = (
    Column("symbol", "Symbol", 15, False, 0, lambda r: r.vt_symbol, static_sort=True),
    # The exchange is also the symbol's suffix and the tab: first to go when narrow.
    Column("exchange", "Exch", 7, False, 7, lambda r: r.exchange, static_sort=True),
    Column("last", "Last", 10, True, 0, lambda r: r.last),
    Column("change", "Chg", 9, True, 1, lambda r: r.change),
    Column("bid", "Bid", 10, True, 2, lambda r: r.bid),
    Column("ask", "Ask", 10, True, 2, lambda r: r.ask),
    Column("spread", "Spread", 7, True, 5, lambda r: r.spread),
    Column("bid_size", "BidSz", 7, True, 6, lambda r: r.bid_size),
    Column("ask_size", "AskSz", 7, True, 6, lambda r: r.ask_size),
    Column("volume", "Volume", 11, True, 4, lambda r: r.volume),
    Column("ticks", "Ticks", 8, True, 4, lambda r: r.ticks),
    Column("age", "Age", 9, True, 1, lambda r: -r.updated_ns),
    Column("latency", "Latency", 8, True, 3, lambda r: r.latency_us if r.has_envelope else None),
    Column("gaps", "Gaps", 5, True, 8, lambda r: r.gaps if r.has_envelope else None),
)
COLUMNS_BY_KEY: dict[str, Column] = {c.key: c for c in COLUMNS}
SYMBOL_EXTRA = 8  # spare width the symbol column may take
PAIRED_COLUMNS = (frozenset({"bid_size", "ask_size"}),)
GUTTER = 1        # a left column holding the cursor marker


@dataclass(frozen=True, slots=True)
class Layout:
    """Which columns fit in a width, and where each starts."""

    width: int
    columns: tuple[Column, ...]
    widths: tuple[int, ...]
    starts: tuple[int, ...]

    @property
    def data_start(self) -> int:
        """Where the first column whose text can change starts (after the symbol's)."""
        for column, start in zip(self.columns, self.starts, strict=True):
            if not column.static_sort:
                return start
        return 0

    def cell_span(self, key: str) -> tuple[int, int] | None:
        """The cells [x, x2) of a shown column, None when it does not fit."""
        for column, start, width in zip(self.columns, self.starts, self.widths, strict=True):
            if column.key == key:
                return start, start + width
        return None

    def column_at(self, x: int) -> Column | None:
        for column, start, width in zip(self.columns, self.starts, self.widths, strict=True):
            if start <= x < start + width + 1:
                return column
        return None


def fit_columns(width: int) -> Layout:
    """Keep columns in priority order while they fit; spare width widens the symbol."""
    chosen: set[str] = set()
    used = GUTTER - 1
    for column in sorted(COLUMNS, key=lambda c: c.priority):
        need = column.width + 1
        if used + need > width and chosen:
            break  # strict priority: never a minor column in place of a major one
        chosen.add(column.key)
        used += need
    for pair in PAIRED_COLUMNS:  # half a pair reads as a mistake: both or neither
        if len(chosen & pair) == 1:
            lone = next(iter(chosen & pair))
            chosen.discard(lone)
            used -= COLUMNS_BY_KEY[lone].width + 1
    columns = tuple(c for c in COLUMNS if c.key in chosen)
    spare = max(0, width - used)
    widths = tuple(
        c.width + min(spare, SYMBOL_EXTRA) if c.key == "symbol" else c.width for c in columns
    )
    starts: list[int] = []
    x = GUTTER
    for w in widths:
        starts.append(x)
        x += w + 1
    return Layout(width, columns, widths, tuple(starts))


def fit_cell(text: str, width: int, right: bool) -> str:
    """Pad a cell to its column's width, or cut it short with an ellipsis."""
    if len(text) > width:
        return text[: max(0, width - 1)] + "…"
    return text.rjust(width) if right else text.ljust(width)
