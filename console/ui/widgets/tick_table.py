"""The tick table: a Line-API widget that repaints only the rows that changed.

The stock DataTable redraws every visible cell on any change (~50 ms a frame
at 200x50 on a small machine). Here each row renders to a cached `Strip`
keyed by everything that can change its look (row version, layout, cursor,
focus, flash, staleness, age text, theme), and per frame only rows whose key
changed are refreshed. The widget owns the cursor, scrolling and when to
repaint; the rows and their order are in table_data, the columns and width
fitting in table_columns, the cached lines in table_paint and how a line
looks in table_render.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import ClassVar

from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.color import Color
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from console.model import SymbolRow
from console.ui.direct_lines import LineWriter
from console.ui.filtering import SymbolFilter
from console.ui.widgets import paint_yield
from console.ui.widgets.table_columns import COLUMNS, COLUMNS_BY_KEY, Layout, fit_columns
from console.ui.widgets.table_data import FLASH_NS, TableData
from console.ui.widgets.table_paint import LinePainter

__all__ = ["COLUMNS", "FLASH_NS", "TickTable", "fit_columns"]

# The cell that time alone changes, per part (see LinePainter.time_changed).
PART_COLUMNS = {"age": "age", "flash": "last"}


def _row_region(run: tuple[int, int, tuple[int, int]], top: int) -> Region:
    """The region of rows run[0]..run[1] (data indexes) between the span's x and x2."""
    first, last, (x, x2) = run
    return Region(x, first + 1 - top, x2 - x, last - first + 1)


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
        self._data = TableData(resort_every)
        self._painter = LinePainter(self, self._data, int(stale_after_s * 1e9))
        self._cursor_key: str | None = None
        self._layout: Layout | None = None
        self._content: tuple[tuple[Size, bool, bool], Size] | None = None
        self._plain: tuple[bool, Color] | None = None   # see _lines_plain
        # Writes changed rows to the terminal in the frame itself (console.ui.direct_lines);
        # None: every change goes through refresh().
        self.line_writer: LineWriter | None = None
        self._now = clock_ns()

    # --- public API -----------------------------------------------------------

    @property
    def sort_column(self) -> str:
        return self._data.sort_key

    @property
    def sort_reverse(self) -> bool:
        return self._data.reverse

    @property
    def exchange(self) -> str | None:
        return self._data.exchange

    @property
    def symbol_filter(self) -> SymbolFilter:
        return self._data.symbol_filter

    @property
    def selected_symbol(self) -> str | None:
        return self._cursor_key if self._cursor_key in self._data.index else None

    @property
    def cursor_row(self) -> int | None:
        return self._data.index.get(self._cursor_key) if self._cursor_key else None

    @property
    def row_count(self) -> int:
        """Rows shown (after tab and filter)."""
        return len(self._data.order)

    @property
    def total_rows(self) -> int:
        """All symbols known, whatever the tab and filter."""
        return len(self._data.rows)

    def visible_symbols(self) -> list[str]:
        """The shown symbols in display order (filtered, sorted)."""
        return list(self._data.order)

    def on_screen_symbols(self) -> list[str]:
        """The symbols in the rows on screen now (scrolled window, filter applied)."""
        first, last = self._visible_range()
        return self._data.order[first:last]

    def visible_rows(self) -> list[SymbolRow]:
        rows = self._data.rows
        return [rows[k] for k in self._data.order]

    def row(self, vt_symbol: str) -> SymbolRow | None:
        return self._data.rows.get(vt_symbol)

    def apply(self, rows: Mapping[str, SymbolRow], removed: Iterable[str] = ()) -> None:
        """Take one frame's changed rows; refresh only what is on screen and changed."""
        self._now = self._clock_ns()
        for key in self._data.remove(removed):
            self._painter.forget(key)
        self._end_frame(self._data.update(rows, self._now))

    def advance_frame(self) -> None:
        """Once per frame with no new rows: expire flashes, age and staleness."""
        self._now = self._clock_ns()
        self._end_frame(())

    def set_filter(self, symbol_filter: SymbolFilter) -> None:
        self._data.set_filter(symbol_filter)
        self._rebuild_order()

    def set_exchange(self, exchange: str | None) -> None:
        if exchange != self._data.exchange:
            self._data.exchange = exchange
            self._rebuild_order()

    def sort_by(self, column: str, reverse: bool | None = None) -> None:
        """Sort by a column; the same column again reverses the order."""
        if column not in COLUMNS_BY_KEY:
            raise ValueError(f"unknown column {column!r}")
        data = self._data
        if reverse is None:
            reverse = not data.reverse if column == data.sort_key else False
        data.sort_key, data.reverse = column, reverse
        self._rebuild_order()
        self.post_message(self.SortChanged(column, reverse))

    def cycle_sort(self) -> str:
        """Sort by the next shown column (`s`); returns its key."""
        keys = [c.key for c in self._current_layout().columns]
        sort_key = self._data.sort_key
        position = keys.index(sort_key) if sort_key in keys else -1
        column = keys[(position + 1) % len(keys)]
        self.sort_by(column, reverse=False)
        return column

    def reverse_sort(self) -> None:
        self.sort_by(self._data.sort_key, reverse=not self._data.reverse)

    def select(self, vt_symbol: str) -> bool:
        if vt_symbol not in self._data.index:
            return False
        self._move_cursor_to(self._data.index[vt_symbol])
        return True

    def column_titles(self) -> list[str]:
        """Titles of the columns that fit the current width."""
        return [c.title for c in self._current_layout().columns]

    def column_titles_rendered(self) -> str:
        """The header line as shown, sort marker included."""
        return self._painter.header(self._current_layout()).text

    def column_offset(self, column: str) -> int | None:
        """Where a shown column starts (cells from the left), None if it does not fit."""
        span = self._current_layout().cell_span(column)
        return span[0] if span is not None else None

    def row_text(self, vt_symbol: str) -> str:
        """The row as rendered now (plain text), for tests and exports."""
        if vt_symbol not in self._data.rows:
            return ""
        return self._painter.row_text(vt_symbol, self._current_layout(), self._now)

    # --- frames and order ---------------------------------------------------------

    def next_change_ns(self) -> int:
        """When time alone next changes a line on screen (an age on its beat, a flash
        ending, a row turning stale), on the app's clock; NEVER_NS when nothing will.

        Known once the frame's lines were checked and the changed ones painted."""
        return self._painter.soonest_ns

    def _end_frame(self, refresh: Iterable[str]) -> None:
        """Rebuild the order when the data says so, else repaint what changed."""
        self._painter.reset_soonest()
        if self._data.end_frame():
            self._rebuild_order()
            return
        self._refresh_changed(refresh)

    def _rebuild_order(self) -> None:
        data = self._data
        data.rebuild_order()
        if self._cursor_key not in data.index:
            self._cursor_key = data.order[0] if data.order else None
        self.virtual_size = Size(0, len(data.order) + 1)
        self.refresh()

    # --- cursor -------------------------------------------------------------------

    def _data_height(self) -> int:
        return max(1, self._content_size().height - 1)

    def _move_cursor_to(self, index: int) -> None:
        order = self._data.order
        if not order:
            return
        index = max(0, min(len(order) - 1, index))
        old = self.cursor_row
        self._cursor_key = order[index]
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
        self._move_cursor_to(len(self._data.order) - 1)

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
        order = self._data.order
        if 0 <= index < len(order):
            self._move_cursor_to(index)
            if event.chain >= 2:
                self.post_message(self.DetailRequested(order[index]))

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
        self._content = None  # scrollbar size or gutter may have changed
        self._plain = None
        painter = getattr(self, "_painter", None)  # also called from Widget.__init__
        if painter is not None:
            painter.styles_changed()

    def on_resize(self) -> None:
        self._layout = None
        self.virtual_size = Size(0, len(self._data.order) + 1)
        self.refresh()

    def _content_size(self) -> Size:
        """The size of the rows' area (without the scrollbar), kept while the widget's
        size and scrollbars stay: Textual works it out anew on every read."""
        key = (self.outer_size, self.show_vertical_scrollbar, self.show_horizontal_scrollbar)
        if self._content is None or self._content[0] != key:
            size = self.scrollable_content_region.size
            if not size:
                return size  # hidden (no region yet): not kept, asked again next time
            self._content = (key, size)
        return self._content[1]

    def _current_layout(self) -> Layout:
        width = self._content_size().width or self.size.width or 80
        if self._layout is None or self._layout.width != width:
            self._layout = fit_columns(width)
        return self._layout

    def _visible_range(self) -> tuple[int, int]:
        """Row indexes [first, last) on screen (read once per frame: geometry is costly)."""
        top = self.scroll_offset.y
        return top, min(len(self._data.order), top + self._data_height())

    def _refresh_row_index(self, index: int) -> None:
        first, last = self._visible_range()
        if first <= index < last:
            self._refresh_rows({index: (0, self._content_size().width)})

    def _refresh_changed(self, changed: Iterable[str]) -> None:
        """Refresh on-screen rows whose render key moved (data, flash, age, staleness),
        each only as wide as what changed: new data from the first column that can
        change, an age or the end of a flash just that cell."""
        first, last = self._visible_range()
        if first >= last:
            return
        layout = self._current_layout()
        order, index_of = self._data.order, self._data.index
        painter, now, cursor_key = self._painter, self._now, self._cursor_key
        focused = self.has_focus
        width = self._content_size().width
        whole = (0, width)
        data = (layout.data_start, width)
        dirty: dict[int, tuple[int, int]] = {}
        for key in changed:
            index = index_of.get(key)
            if index is not None and first <= index < last:
                data_only = painter.data_changed_only(key, layout, now, cursor_key, focused)
                dirty[index] = data if data_only else whole
        for index in range(first, last):
            key = order[index]
            if index in dirty or painter.is_current(key, layout, now, cursor_key, focused):
                continue
            part = painter.time_changed(key, layout, now, cursor_key, focused)
            if part == "":
                continue
            span = layout.cell_span(PART_COLUMNS[part]) if part is not None else None
            dirty[index] = span or whole
        if len(dirty) * 2 > last - first:
            # Most rows changed: one region for all data lines is cheaper than a line
            # each, and unlike refresh() it keeps the header and the widget's caches.
            self._refresh_rows(dict.fromkeys(range(first, last), whole))
            return
        self._refresh_rows(dirty)

    def _refresh_rows(self, spans: Mapping[int, tuple[int, int]]) -> None:
        """Mark rows dirty in one call: each row from x to x2 of its span, runs of
        adjacent rows with the same span as one region.

        The regions span the rows' cells only, not the scrollbar beside them:
        a region that touches the scrollbar makes it render every line too.
        """
        top = self.scroll_offset.y
        regions: list[Region] = []
        run: tuple[int, int, tuple[int, int]] | None = None   # first, last, span
        for index in sorted(spans):
            span = spans[index]
            if run is not None and index == run[1] + 1 and span == run[2]:
                run = (run[0], index, span)
                continue
            if run is not None:
                regions.append(_row_region(run, top))
            run = (index, index, span)
        if run is not None:
            regions.append(_row_region(run, top))
        if not regions:
            return
        writer = self.line_writer
        if writer is not None and self._writes_plain() and writer.write(self, regions):
            return  # on the terminal already: no refresh, no screen update
        self.refresh(*regions)

    def _writes_plain(self) -> bool:
        """Whether render_lines paints straight from the painter (see render_lines):
        only then can its lines be written without Textual's line caches knowing."""
        return self._lines_plain()[0] and self.opacity == 1.0

    def render_lines(self, crop: Region) -> list[Strip]:
        """The lines in `crop`, straight from the painter's cache.

        Textual's per-line style pass (borders, padding, tint, opacity, hatch)
        changes nothing on this widget as styled here, yet costs as much as
        painting a row; it is skipped while the styles leave it nothing to do.
        The app's line filters (NO_COLOR, ANSI colours) are still applied.
        """
        plain, background = self._lines_plain()
        if not plain or self.opacity != 1.0:
            return super().render_lines(crop)
        filters = self.get_line_filters()
        x1, x2 = crop.column_span
        layout, top, focused = self._current_layout(), self.scroll_offset.y, self.has_focus
        strips: list[Strip] = []
        pad: Style | None = None
        for y in crop.line_range:
            strip = self._line(y, layout, top, focused)
            if strip.cell_length < x2:  # the scrollbar's column, drawn over it
                if pad is None:
                    pad = self.rich_style  # worked out anew after every refresh()
                strip = strip.extend_cell_length(x2, pad)
            if x1 or strip.cell_length != x2:  # cut first: the filters see fewer cells
                strip = strip.crop(x1, x2)
            for line_filter in filters:
                strip = strip.apply_filter(line_filter, background)
            strips.append(strip)
        return strips

    def _lines_plain(self) -> tuple[bool, Color]:
        """Whether Textual's per-line style pass would leave every line as it is, and
        the background the line filters blend with; kept until the styles change."""
        if self._plain is None:
            styles = self.styles
            plain = (not any(edge for edge, _ in styles.border)
                     and not any(edge for edge, _ in styles.outline)
                     and not any(styles.padding)
                     and not styles.tint.a
                     and styles.text_opacity == 1.0
                     and not (styles.has_rule("hatch") and styles.hatch != "none")
                     and self._border_title is None and self._border_subtitle is None)
            self._plain = (plain, self.background_colors[1])
        return self._plain

    def render_line(self, y: int) -> Strip:
        return self._line(y, self._current_layout(), self.scroll_offset.y, self.has_focus)

    def _line(self, y: int, layout: Layout, top: int, focused: bool) -> Strip:
        paint_yield()
        if y == 0:
            return self._painter.header(layout)
        index = top + y - 1
        order = self._data.order
        if index >= len(order):
            return Strip.blank(layout.width, self.rich_style)
        return self._painter.line(order[index], layout, self._now, self._cursor_key, focused)
