"""The tick table: a Line-API widget that repaints only the rows that changed.

The stock DataTable redraws every visible cell on any change (~50 ms a frame
at 200x50 on a small machine). Here each row renders to a cached `Strip`
keyed by everything that can change its look (row version, layout, cursor,
focus, flash, staleness, age text, theme), and per frame only rows whose key
changed are refreshed. The visible order is a list of symbols, rebuilt at
most once per frame, and only when membership or a sort value changed (value
sorts are further throttled to every `resort_every` frames).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from console.model import SymbolRow
from console.ui import format as fmt
from console.ui.filtering import MATCH_ALL, SymbolFilter
from console.ui.widgets import paint_yield

FLASH_NS = 500_000_000
STALE_TEXT = "STALE"


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


def _row_cells(row: SymbolRow) -> dict[str, str]:
    """Display text of the columns that depend only on the row (not on time)."""
    env = row.has_envelope
    return {
        "symbol": row.vt_symbol,
        "exchange": row.exchange,
        "last": fmt.price(row.last),
        "change": fmt.change(row.change),
        "bid": fmt.price(row.bid),
        "ask": fmt.price(row.ask),
        "spread": fmt.price(row.spread),
        "bid_size": fmt.quantity(row.bid_size),
        "ask_size": fmt.quantity(row.ask_size),
        "volume": fmt.quantity(row.volume),
        "ticks": fmt.count(row.ticks),
        "latency": fmt.latency_us(row.latency_us if env else None),
        "gaps": fmt.count(row.gaps) if env else fmt.UNKNOWN,
    }


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
BIG_TABLE = 5000  # rows from which a re-sort is costly enough to throttle
PAIRED_COLUMNS = (frozenset({"bid_size", "ask_size"}),)
GUTTER = 1        # a left column holding the cursor marker
CURSOR_MARK = "▸"  # the selection stays visible in 16 colours and with NO_COLOR


@dataclass(frozen=True, slots=True)
class Layout:
    """Which columns fit in a width, and where each starts."""

    width: int
    columns: tuple[Column, ...]
    widths: tuple[int, ...]
    starts: tuple[int, ...]

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


def _fit(text: str, width: int, right: bool) -> str:
    if len(text) > width:
        return text[: max(0, width - 1)] + "…"
    return text.rjust(width) if right else text.ljust(width)


class TickTable(ScrollView, can_focus=True):
    """Live symbols, one row each, sorted and filtered; see the module docstring."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "cursor_up", "Up", show=False),
        Binding("down", "cursor_down", "Down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("home", "cursor_home", "First", show=False),
        Binding("end", "cursor_end", "Last", show=False),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "tick-table--header",
        "tick-table--cursor",
        "tick-table--cursor-blurred",
        "tick-table--up",
        "tick-table--down",
        "tick-table--flash-up",
        "tick-table--flash-down",
        "tick-table--stale",
        "tick-table--stale-marker",
        "tick-table--unknown",
    }

    DEFAULT_CSS = """
    TickTable {
        height: 1fr;
        background: $surface;
        color: $foreground;
        overflow-x: hidden;
        overflow-y: auto;
        scrollbar-size-vertical: 1;
    }
    TickTable > .tick-table--header { background: $panel; color: $foreground; text-style: bold; }
    TickTable > .tick-table--cursor { background: $primary 45%; color: $foreground; }
    TickTable > .tick-table--cursor-blurred { background: $primary 20%; }
    TickTable > .tick-table--up { color: $tc-up; }
    TickTable > .tick-table--down { color: $tc-down; }
    TickTable > .tick-table--flash-up {
        background: $tc-flash-up-bg; color: $tc-flash-up-fg; text-style: bold;
    }
    TickTable > .tick-table--flash-down {
        background: $tc-flash-down-bg; color: $tc-flash-down-fg; text-style: bold;
    }
    TickTable > .tick-table--stale { color: $tc-stale; text-style: dim; }
    TickTable > .tick-table--stale-marker { color: $warning; text-style: bold; }
    TickTable > .tick-table--unknown { color: $tc-stale; }
    """

    class DetailRequested(Message):
        """The user asked for the detail pane of a symbol (double click)."""

        def __init__(self, vt_symbol: str) -> None:
            super().__init__()
            self.vt_symbol = vt_symbol

    class SortChanged(Message):
        """The sort column or direction changed (header click, `s`)."""

        def __init__(self, column: str, reverse: bool) -> None:
            super().__init__()
            self.column = column
            self.reverse = reverse

    def __init__(
        self,
        *,
        stale_after_s: float = 10.0,
        clock_ns: Callable[[], int],
        resort_every: int = 5,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._clock_ns = clock_ns
        self._stale_ns = int(stale_after_s * 1e9)
        self._resort_every = max(1, resort_every)
        self._rows: dict[str, SymbolRow] = {}
        self._versions: dict[str, int] = {}
        self._cells: dict[str, tuple[int, dict[str, str]]] = {}
        self._flash: dict[str, tuple[int, int]] = {}      # key -> (until_ns, direction)
        self._match: dict[str, bool] = {}
        self._filter: SymbolFilter = MATCH_ALL
        self._exchange: str | None = None
        self._order: list[str] = []
        self._index: dict[str, int] = {}
        self._order_dirty = False
        self._membership_dirty = False
        self._evicted = False
        self._frames_since_sort = 0
        self._sort_key = "symbol"
        self._reverse = False
        self._cursor_key: str | None = None
        self._layout: Layout | None = None
        self._style_gen = 0
        self._style_cache: dict[tuple[Any, ...], tuple[Style, ...]] = {}
        self._strips: dict[str, tuple[tuple[Any, ...], Strip]] = {}
        self._header: tuple[tuple[Any, ...], Strip] | None = None
        self._now = clock_ns()

    # --- public API -----------------------------------------------------------

    @property
    def sort_column(self) -> str:
        return self._sort_key

    @property
    def sort_reverse(self) -> bool:
        return self._reverse

    @property
    def exchange(self) -> str | None:
        return self._exchange

    @property
    def symbol_filter(self) -> SymbolFilter:
        return self._filter

    @property
    def selected_symbol(self) -> str | None:
        return self._cursor_key if self._cursor_key in self._index else None

    @property
    def cursor_row(self) -> int | None:
        return self._index.get(self._cursor_key) if self._cursor_key else None

    @property
    def row_count(self) -> int:
        """Rows shown (after tab and filter)."""
        return len(self._order)

    @property
    def total_rows(self) -> int:
        """All symbols known, whatever the tab and filter."""
        return len(self._rows)

    def visible_symbols(self) -> list[str]:
        """The shown symbols in display order (filtered, sorted)."""
        return list(self._order)

    def on_screen_symbols(self) -> list[str]:
        """The symbols in the rows on screen now (scrolled window, filter applied)."""
        first, last = self._visible_range()
        return self._order[first:last]

    def visible_rows(self) -> list[SymbolRow]:
        return [self._rows[k] for k in self._order]

    def row(self, vt_symbol: str) -> SymbolRow | None:
        return self._rows.get(vt_symbol)

    def apply(self, rows: Mapping[str, SymbolRow], removed: Iterable[str] = ()) -> None:
        """Take one frame's changed rows; refresh only what is on screen and changed."""
        now = self._clock_ns()
        self._now = now
        sort_col = COLUMNS_BY_KEY[self._sort_key]
        for key in removed:
            if self._rows.pop(key, None) is not None:
                self._versions.pop(key, None)
                self._cells.pop(key, None)
                self._strips.pop(key, None)
                self._flash.pop(key, None)
                self._match.pop(key, None)
                self._evicted = True  # its key may be on screen: rebuild this frame
        refresh: list[str] = []
        for key, row in rows.items():
            old = self._rows.get(key)
            self._rows[key] = row
            self._versions[key] = self._versions.get(key, 0) + 1
            if row.direction:
                self._flash[key] = (now + FLASH_NS, row.direction)
            if old is None:
                if self._is_visible(key, row):
                    self._membership_dirty = True
            elif key in self._index:
                refresh.append(key)
                if not sort_col.static_sort and sort_col.sort_value(old) != \
                        sort_col.sort_value(row):
                    self._order_dirty = True
        self._end_frame(refresh)

    def tick(self) -> None:
        """Once per frame with no new rows: expire flashes, age and staleness."""
        self._now = self._clock_ns()
        self._end_frame(())

    def set_filter(self, symbol_filter: SymbolFilter) -> None:
        self._filter = symbol_filter
        self._match.clear()
        self._rebuild_order()

    def set_exchange(self, exchange: str | None) -> None:
        if exchange != self._exchange:
            self._exchange = exchange
            self._rebuild_order()

    def sort_by(self, column: str, reverse: bool | None = None) -> None:
        """Sort by a column; the same column again reverses the order."""
        if column not in COLUMNS_BY_KEY:
            raise ValueError(f"unknown column {column!r}")
        if reverse is None:
            reverse = not self._reverse if column == self._sort_key else False
        self._sort_key, self._reverse = column, reverse
        self._rebuild_order()
        self.post_message(self.SortChanged(column, reverse))

    def cycle_sort(self) -> str:
        """Sort by the next shown column (`s`); returns its key."""
        keys = [c.key for c in self._current_layout().columns]
        position = keys.index(self._sort_key) if self._sort_key in keys else -1
        column = keys[(position + 1) % len(keys)]
        self.sort_by(column, reverse=False)
        return column

    def reverse_sort(self) -> None:
        self.sort_by(self._sort_key, reverse=not self._reverse)

    def select(self, vt_symbol: str) -> bool:
        if vt_symbol not in self._index:
            return False
        self._move_cursor_to(self._index[vt_symbol])
        return True

    def column_titles(self) -> list[str]:
        """Titles of the columns that fit the current width."""
        return [c.title for c in self._current_layout().columns]

    def column_titles_rendered(self) -> str:
        """The header line as shown, sort marker included."""
        return self._render_header(self._current_layout()).text

    def column_offset(self, column: str) -> int | None:
        """Where a shown column starts (cells from the left), None if it does not fit."""
        layout = self._current_layout()
        for shown, start in zip(layout.columns, layout.starts, strict=True):
            if shown.key == column:
                return start
        return None

    def row_text(self, vt_symbol: str) -> str:
        """The row as rendered now (plain text), for tests and exports."""
        if vt_symbol not in self._rows:
            return ""
        return self._render_row(vt_symbol, self._current_layout(), False)[1]

    # --- order and visibility ---------------------------------------------------

    def _is_visible(self, key: str, row: SymbolRow) -> bool:
        if self._exchange is not None and row.exchange != self._exchange:
            return False
        match = self._match.get(key)
        if match is None:
            match = self._match[key] = self._filter.matches(key)
        return match

    def _end_frame(self, refresh: Iterable[str]) -> None:
        """Re-sort at most once per frame: new symbols at once while the table is
        small, value changes (and new symbols in a big table) every few frames."""
        self._frames_since_sort += 1
        due = self._frames_since_sort >= self._resort_every
        new_rows = self._membership_dirty and (due or len(self._rows) < BIG_TABLE)
        if self._evicted or new_rows or (self._order_dirty and due):
            self._rebuild_order()
            return
        self._refresh_changed(refresh)

    def _rebuild_order(self) -> None:
        column = COLUMNS_BY_KEY[self._sort_key]
        value = column.sort_value
        keys = sorted(k for k, r in self._rows.items() if self._is_visible(k, r))
        present = [k for k in keys if value(self._rows[k]) is not None]
        missing = [k for k in keys if value(self._rows[k]) is None]
        if column.key != "symbol":
            present.sort(key=lambda k: value(self._rows[k]), reverse=self._reverse)
        elif self._reverse:
            present.reverse()
        self._order = present + missing
        self._index = {k: i for i, k in enumerate(self._order)}
        self._order_dirty = self._membership_dirty = self._evicted = False
        self._frames_since_sort = 0
        if self._cursor_key not in self._index:
            self._cursor_key = self._order[0] if self._order else None
        self.virtual_size = Size(0, len(self._order) + 1)
        self.refresh()

    # --- cursor -------------------------------------------------------------------

    def _data_height(self) -> int:
        return max(1, self.scrollable_content_region.height - 1)

    def _move_cursor_to(self, index: int) -> None:
        if not self._order:
            return
        index = max(0, min(len(self._order) - 1, index))
        old = self.cursor_row
        self._cursor_key = self._order[index]
        if old is not None:
            self._refresh_row_index(old)
        self._refresh_row_index(index)
        top = self.scroll_offset.y
        height = self._data_height()
        if index < top:
            self.scroll_to(y=index, animate=False, immediate=True)
        elif index >= top + height:
            self.scroll_to(y=index - height + 1, animate=False, immediate=True)

    def action_cursor_up(self) -> None:
        self._move_cursor_to((self.cursor_row or 0) - 1)

    def action_cursor_down(self) -> None:
        row = self.cursor_row
        self._move_cursor_to(0 if row is None else row + 1)

    def action_page_up(self) -> None:
        self._move_cursor_to((self.cursor_row or 0) - self._data_height())

    def action_page_down(self) -> None:
        self._move_cursor_to((self.cursor_row or 0) + self._data_height())

    def action_cursor_home(self) -> None:
        self._move_cursor_to(0)

    def action_cursor_end(self) -> None:
        self._move_cursor_to(len(self._order) - 1)

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        if offset.y == 0:
            column = self._current_layout().column_at(offset.x)
            if column is not None:
                self.sort_by(column.key)
            return
        index = self.scroll_offset.y + offset.y - 1
        if 0 <= index < len(self._order):
            self._move_cursor_to(index)
            if event.chain >= 2:
                self.post_message(self.DetailRequested(self._order[index]))

    def on_focus(self) -> None:
        self._refresh_cursor()

    def on_blur(self) -> None:
        self._refresh_cursor()

    def _refresh_cursor(self) -> None:
        row = self.cursor_row
        if row is not None:
            self._refresh_row_index(row)

    # --- rendering -------------------------------------------------------------------

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._style_gen = getattr(self, "_style_gen", 0) + 1
        self._header = None
        if hasattr(self, "_style_cache"):
            self._style_cache.clear()

    def on_resize(self) -> None:
        self._layout = None
        self.virtual_size = Size(0, len(self._order) + 1)
        self.refresh()

    def _current_layout(self) -> Layout:
        width = self.scrollable_content_region.width or self.size.width or 80
        if self._layout is None or self._layout.width != width:
            self._layout = fit_columns(width)
        return self._layout

    def _visible_range(self) -> tuple[int, int]:
        """Row indexes [first, last) on screen (read once per frame: geometry is costly)."""
        top = self.scroll_offset.y
        return top, min(len(self._order), top + self._data_height())

    def _refresh_row_index(self, index: int) -> None:
        first, last = self._visible_range()
        if first <= index < last:
            self.refresh_line(index + 1)

    def _refresh_changed(self, changed: Iterable[str]) -> None:
        """Refresh on-screen rows whose render key moved (data, flash, age, staleness)."""
        first, last = self._visible_range()
        if first >= last:
            return
        layout = self._current_layout()
        index_of = self._index
        dirty: set[int] = set()
        for key in changed:
            index = index_of.get(key)
            if index is not None and first <= index < last:
                dirty.add(index)
        for index in range(first, last):
            if index in dirty:
                continue
            key = self._order[index]
            cached = self._strips.get(key)
            if cached is None or cached[0] != self._render_key(key, layout):
                dirty.add(index)
        if len(dirty) * 2 > last - first:
            # Most rows changed: one region for all data lines is cheaper than a line
            # each, and unlike refresh() it keeps the header and the widget's caches.
            self.refresh_lines(first + 1, last - first)
            return
        for index in dirty:
            self.refresh_line(index + 1)

    def _render_key(self, key: str, layout: Layout) -> tuple[Any, ...]:
        row = self._rows[key]
        flash = self._flash.get(key)
        flash_dir = 0
        if flash is not None:
            if flash[0] > self._now:
                flash_dir = flash[1]
            else:
                del self._flash[key]
        age_ns = self._now - row.updated_ns
        return (self._versions.get(key, 0), layout.width, key == self._cursor_key, self.has_focus,
                flash_dir, age_ns > self._stale_ns, fmt.age(age_ns, coarse=True), self._style_gen)

    def render_line(self, y: int) -> Strip:
        paint_yield()
        layout = self._current_layout()
        if y == 0:
            return self._render_header(layout)
        index = self.scroll_offset.y + y - 1
        if index >= len(self._order):
            return Strip.blank(layout.width, self.rich_style)
        key = self._order[index]
        render_key = self._render_key(key, layout)
        cached = self._strips.get(key)
        if cached is not None and cached[0] == render_key:
            return cached[1]
        strip = self._render_row(key, layout, render_key[2])[0]
        self._strips[key] = (render_key, strip)
        return strip

    def _render_header(self, layout: Layout) -> Strip:
        key = (layout.width, self._sort_key, self._reverse, self._style_gen)
        if self._header is not None and self._header[0] == key:
            return self._header[1]
        style = self.get_component_rich_style("tick-table--header")
        segments: list[Segment] = [Segment(" " * GUTTER, style)]
        for column, width in zip(layout.columns, layout.widths, strict=True):
            title = column.title
            if column.key == self._sort_key:
                title = f"{title}{fmt.DOWN_MARK if self._reverse else fmt.UP_MARK}"
            segments.append(Segment(_fit(title, width, column.right) + " ", style))
        strip = Strip(segments).crop_extend(0, layout.width, style)
        self._header = (key, strip)
        return strip

    def _cells_for(self, key: str) -> dict[str, str]:
        version = self._versions.get(key, 0)
        cached = self._cells.get(key)
        if cached is not None and cached[0] == version:
            return cached[1]
        cells = _row_cells(self._rows[key])
        self._cells[key] = (version, cells)
        return cells

    def _row_styles(self, is_cursor: bool, stale: bool) -> tuple[Style, ...]:
        """(base, stale marker, up, down, flash up, flash down, unknown) for a row.

        Resolving a component style walks the DOM and merging makes new Style
        objects; with every visible row changing every frame that was most of
        the row cost, so the merged styles are kept until the styles change.
        """
        key = (self._style_gen, self.has_focus, is_cursor, stale)
        styles = self._style_cache.get(key)
        if styles is not None:
            return styles
        style_of = self.get_component_rich_style
        if is_cursor:
            base = style_of("tick-table--cursor" if self.has_focus else
                            "tick-table--cursor-blurred")
        else:
            base = self.rich_style
        if stale:
            base = base + style_of("tick-table--stale", partial=True)
        styles = (base, *(base + style_of(name, partial=True) for name in (
            "tick-table--stale-marker", "tick-table--up", "tick-table--down",
            "tick-table--flash-up", "tick-table--flash-down", "tick-table--unknown")))
        if len(self._style_cache) > 64:
            self._style_cache.clear()
        self._style_cache[key] = styles
        return styles

    def _render_row(self, key: str, layout: Layout, is_cursor: bool) -> tuple[Strip, str]:
        row = self._rows[key]
        cells = self._cells_for(key)
        now = self._now
        age_ns = now - row.updated_ns
        stale = age_ns > self._stale_ns
        base, stale_marker, up, down, flash_up, flash_down, unknown = \
            self._row_styles(is_cursor, stale)
        flash = self._flash.get(key)
        flash_dir = flash[1] if flash is not None and flash[0] > now else 0
        # Cells in the base style are joined into one segment with their separators:
        # fewer segments make every later strip operation cheaper.
        segments: list[Segment] = []
        plain: list[str] = []
        run = CURSOR_MARK if is_cursor else " "
        for column, width in zip(layout.columns, layout.widths, strict=True):
            ck = column.key
            style: Style = base
            if ck == "age":
                text = fmt.age(age_ns, coarse=True)
                if stale:
                    text = f"{STALE_TEXT} {text}"
                    style = stale_marker
            else:
                text = cells[ck]
                if ck == "change" and row.change:
                    style = up if row.change > 0 else down
                elif ck == "last" and flash_dir:
                    style = flash_up if flash_dir > 0 else flash_down
                elif text == fmt.UNKNOWN:
                    style = unknown
            cell = _fit(text, width, column.right)
            plain.append(cell)
            if style is base:
                run += cell + " "
            else:
                segments.append(Segment(run, base))
                segments.append(Segment(cell, style))
                run = " "
        segments.append(Segment(run, base))
        strip = Strip(segments).crop_extend(0, layout.width, base)
        return strip, " ".join(plain).rstrip()
