"""The rows behind the tick table: what is known, what is shown, in what order.

No Textual here: the widget hands each frame's changes in and asks whether
the order must be rebuilt. The order is rebuilt at most once per frame, and
only when membership or a sort value changed; value sorts (and new symbols
in a big table) wait for every `resort_every` frames.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from console.model import SymbolRow
from console.ui.filtering import MATCH_ALL, SymbolFilter
from console.ui.widgets.table_columns import COLUMNS_BY_KEY

# A price flash lasts at least FLASH_NS and ends on the table's beat (BEAT_NS of the
# app's clock), with the ages: the flashes of rows that ticked at different moments
# end in one frame instead of a frame each (on a quiet feed, every other frame).
FLASH_NS = 500_000_000
BEAT_NS = 500_000_000
BIG_TABLE = 5000  # rows from which a re-sort is costly enough to throttle


def on_the_beat(ns: int) -> int:
    """The first beat at or after `ns`."""
    return -(-ns // BEAT_NS) * BEAT_NS


class TableData:
    """Every known row, its version and price flash, and the shown order."""

    def __init__(self, resort_every: int) -> None:
        self.rows: dict[str, SymbolRow] = {}
        self.versions: dict[str, int] = {}
        self.order: list[str] = []          # shown symbols (tab and filter), sorted
        self.index: dict[str, int] = {}     # symbol -> position in `order`
        self.sort_key = "symbol"
        self.reverse = False
        self.exchange: str | None = None
        self.symbol_filter: SymbolFilter = MATCH_ALL
        self._resort_every = max(1, resort_every)
        self._flash: dict[str, tuple[int, int]] = {}      # key -> (until_ns, direction)
        self._match: dict[str, bool] = {}
        self._order_dirty = False
        self._membership_dirty = False
        self._evicted = False
        self._frames_since_sort = 0

    def remove(self, keys: Iterable[str]) -> list[str]:
        """Forget evicted symbols; returns those that were known."""
        gone: list[str] = []
        for key in keys:
            if self.rows.pop(key, None) is not None:
                self.versions.pop(key, None)
                self._flash.pop(key, None)
                self._match.pop(key, None)
                self._evicted = True  # its key may be on screen: rebuild this frame
                gone.append(key)
        return gone

    def update(self, rows: Mapping[str, SymbolRow], now_ns: int) -> list[str]:
        """Take changed rows; returns the shown ones whose line must be repainted."""
        sort_col = COLUMNS_BY_KEY[self.sort_key]
        refresh: list[str] = []
        for key, row in rows.items():
            old = self.rows.get(key)
            self.rows[key] = row
            self.versions[key] = self.versions.get(key, 0) + 1
            if row.direction:
                self._flash[key] = (on_the_beat(now_ns + FLASH_NS), row.direction)
            if old is None:
                if self.is_visible(key, row):
                    self._membership_dirty = True
            elif key in self.index:
                refresh.append(key)
                if not sort_col.static_sort and sort_col.sort_value(old) != \
                        sort_col.sort_value(row):
                    self._order_dirty = True
        return refresh

    def end_frame(self) -> bool:
        """Count a frame; True when the order must be rebuilt now: new symbols at
        once while the table is small, value changes (and new symbols in a big
        table) every few frames, evictions always."""
        self._frames_since_sort += 1
        due = self._frames_since_sort >= self._resort_every
        new_rows = self._membership_dirty and (due or len(self.rows) < BIG_TABLE)
        return self._evicted or new_rows or (self._order_dirty and due)

    def flash_until(self, key: str) -> int | None:
        """When the symbol's price flash ends (ns), None if it has none."""
        flash = self._flash.get(key)
        return flash[0] if flash is not None else None

    def flash_direction(self, key: str, now_ns: int) -> int:
        """+1/-1 while the symbol's price flash lasts, else 0 (an ended flash is dropped)."""
        flash = self._flash.get(key)
        if flash is None:
            return 0
        if flash[0] > now_ns:
            return flash[1]
        del self._flash[key]
        return 0

    def is_visible(self, key: str, row: SymbolRow) -> bool:
        if self.exchange is not None and row.exchange != self.exchange:
            return False
        match = self._match.get(key)
        if match is None:
            match = self._match[key] = self.symbol_filter.matches(key)
        return match

    def set_filter(self, symbol_filter: SymbolFilter) -> None:
        """Filter by symbol; call rebuild_order() after."""
        self.symbol_filter = symbol_filter
        self._match.clear()

    def rebuild_order(self) -> None:
        """Sort the shown symbols; rows without a sort value go last, by symbol."""
        column = COLUMNS_BY_KEY[self.sort_key]
        value = column.sort_value
        rows = self.rows
        keys = sorted(k for k, r in rows.items() if self.is_visible(k, r))
        present = [k for k in keys if value(rows[k]) is not None]
        missing = [k for k in keys if value(rows[k]) is None]
        if column.key != "symbol":
            present.sort(key=lambda k: value(rows[k]), reverse=self.reverse)
        elif self.reverse:
            present.reverse()
        self.order = present + missing
        self.index = {k: i for i, k in enumerate(self.order)}
        self._order_dirty = self._membership_dirty = self._evicted = False
        self._frames_since_sort = 0
