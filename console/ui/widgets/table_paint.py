"""The tick table's painted lines, each kept until something it shows changes.

A row's strip is cached under a render key: everything that can change its
look (row version, width, cursor, focus, flash, staleness, age text, theme).
The widget asks whether a line is still current to decide what to refresh.
What time alone changes (the age text, the end of a flash, turning stale) is
kept as the time the line is next due, so asking costs a comparison, not a
new key per row per frame. The soonest of those times tells the frame loop
when a quiet table next needs a frame at all.

Ages move on a shared beat (AGE_BEAT_NS): a row's age text is repainted at
the first beat after it changed, so the ages of fifty rows ticking at
fifty different moments of a second cost two frames a second, not twenty.
The text is always the exact age when it is painted; it is at most one beat
late. A price flash ends on the beat as well (it lasts half a second to a
second, see table_data); turning stale keeps its own moment.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from rich.style import Style
from textual.strip import Strip
from textual.widget import Widget

from console.ui import format as fmt
from console.ui.widgets.table_columns import Layout
from console.ui.widgets.table_data import BEAT_NS, TableData, on_the_beat
from console.ui.widgets.table_render import (
    RowStyles,
    render_header,
    render_row,
    row_cells,
    row_styles,
)

# Age texts move on this beat of the app's clock (see the module docstring); flashes
# end on it too (table_data).
AGE_BEAT_NS = BEAT_NS
# "Nothing is due": later than any clock reading.
NEVER_NS = 1 << 62


class RenderKey(NamedTuple):
    """Everything a data line's look depends on."""

    version: int
    width: int
    cursor: bool
    focused: bool
    flash: int
    stale: bool
    age: str
    style_gen: int


class LinePainter:
    """Paints the header and data lines of `widget` from `data`, with caches."""

    def __init__(self, widget: Widget, data: TableData, stale_ns: int) -> None:
        self._widget = widget
        self._data = data
        self._stale_ns = stale_ns
        self._style_gen = 0
        self._style_cache: dict[tuple[Any, ...], RowStyles] = {}
        self._cells: dict[str, tuple[int, dict[str, str]]] = {}
        # key -> (render key, the time its look next changes by time alone, strip)
        self._strips: dict[str, tuple[RenderKey, int, Strip]] = {}
        self._header: tuple[tuple[Any, ...], Strip] | None = None
        # The soonest due time of the lines checked or painted since `reset_soonest`.
        self.soonest_ns = NEVER_NS

    def reset_soonest(self) -> None:
        """Start collecting the soonest due time anew (once per frame, before the scan)."""
        self.soonest_ns = NEVER_NS

    def forget(self, key: str) -> None:
        """Drop what was painted for an evicted symbol."""
        self._cells.pop(key, None)
        self._strips.pop(key, None)

    def styles_changed(self) -> None:
        """The theme or CSS changed: every cached line and style is out of date."""
        self._style_gen += 1
        self._header = None
        self._style_cache.clear()

    def render_key(self, key: str, layout: Layout, now: int, cursor_key: str | None,
                   focused: bool) -> RenderKey:
        age_ns = now - self._data.rows[key].updated_ns
        return RenderKey(self._data.versions.get(key, 0), layout.width, key == cursor_key,
                         focused, self._data.flash_direction(key, now),
                         age_ns > self._stale_ns, fmt.age(age_ns, coarse=True), self._style_gen)

    def is_current(self, key: str, layout: Layout, now: int, cursor_key: str | None,
                   focused: bool) -> bool:
        """Whether the cached line of `key` still shows what it would show now."""
        cached = self._strips.get(key)
        if cached is None or now >= cached[1]:
            return False
        painted = cached[0]
        current = (painted.version == self._data.versions.get(key, 0)
                   and painted.width == layout.width and painted.cursor == (key == cursor_key)
                   and painted.focused == focused and painted.style_gen == self._style_gen)
        if current and cached[1] < self.soonest_ns:
            self.soonest_ns = cached[1]
        return current

    def line(self, key: str, layout: Layout, now: int, cursor_key: str | None,
             focused: bool) -> Strip:
        """The data line of `key`, from the cache when still current."""
        cached = self._strips.get(key)
        if cached is not None and self.is_current(key, layout, now, cursor_key, focused):
            return cached[2]
        render_key = self.render_key(key, layout, now, cursor_key, focused)
        if cached is not None and cached[0] == render_key:
            strip = cached[2]  # due, but time changed nothing it shows
        else:
            strip = self._paint_row(key, layout, now, render_key.cursor)[0]
        self._store(key, render_key, now, strip)
        return strip

    def _store(self, key: str, render_key: RenderKey, now: int, strip: Strip) -> None:
        due = self._due(key, now)
        self._strips[key] = (render_key, due, strip)
        if due < self.soonest_ns:
            self.soonest_ns = due

    def data_changed_only(self, key: str, layout: Layout, now: int, cursor_key: str | None,
                          focused: bool) -> bool:
        """Whether a line with new data keeps its look otherwise (width, cursor, focus,
        staleness, theme): then the symbol's cells, which never change, stay as painted."""
        cached = self._strips.get(key)
        if cached is None:
            return False
        painted = cached[0]
        return (painted.width == layout.width and painted.cursor == (key == cursor_key)
                and painted.focused == focused and painted.style_gen == self._style_gen
                and not painted.stale
                and now - self._data.rows[key].updated_ns <= self._stale_ns)

    def time_changed(self, key: str, layout: Layout, now: int, cursor_key: str | None,
                     focused: bool) -> str | None:
        """What time alone changed on a line that is no longer current: "age" or
        "flash" when that is all (only that cell needs painting), "" when nothing
        shows it (the line is current again), None for anything else."""
        cached = self._strips.get(key)
        if cached is None:
            return None
        painted = cached[0]
        now_key = self.render_key(key, layout, now, cursor_key, focused)
        moved = [name for name, old, new in zip(RenderKey._fields, painted, now_key, strict=True)
                 if old != new]
        if not moved:
            self._store(key, painted, now, cached[2])
            return ""
        if moved == ["age"]:
            return "age"
        if moved == ["flash"]:
            return "flash"
        return None

    def _due(self, key: str, now: int) -> int:
        """When the line painted at `now` changes by time alone: the beat after its
        age text's next change, the end of its flash, or its turning stale."""
        age_ns = now - self._data.rows[key].updated_ns
        due = on_the_beat(now + fmt.age_changes_in(age_ns))
        flash_until = self._data.flash_until(key)
        if flash_until is not None and flash_until > now:
            due = min(due, flash_until)
        if age_ns <= self._stale_ns:
            due = min(due, now + self._stale_ns - age_ns + 1)
        return due

    def row_text(self, key: str, layout: Layout, now: int) -> str:
        """The data line of `key` as plain text, without the cursor."""
        return self._paint_row(key, layout, now, False)[1]

    def header(self, layout: Layout) -> Strip:
        data = self._data
        key = (layout.width, data.sort_key, data.reverse, self._style_gen)
        if self._header is not None and self._header[0] == key:
            return self._header[1]
        style = self._widget.get_component_rich_style("tick-table--header")
        strip = render_header(layout, data.sort_key, data.reverse, style)
        self._header = (key, strip)
        return strip

    def _cells_for(self, key: str) -> dict[str, str]:
        version = self._data.versions.get(key, 0)
        cached = self._cells.get(key)
        if cached is not None and cached[0] == version:
            return cached[1]
        cells = row_cells(self._data.rows[key])
        self._cells[key] = (version, cells)
        return cells

    def _row_styles(self, is_cursor: bool, stale: bool) -> RowStyles:
        """The styles of a row in this state.

        Resolving a component style walks the DOM and merging makes new Style
        objects; with every visible row changing every frame that was most of
        the row cost, so the merged styles are kept until the styles change.
        """
        widget = self._widget
        key = (self._style_gen, widget.has_focus, is_cursor, stale)
        styles = self._style_cache.get(key)
        if styles is not None:
            return styles
        base: Style
        if is_cursor:
            base = widget.get_component_rich_style(
                "tick-table--cursor" if widget.has_focus else "tick-table--cursor-blurred")
        else:
            base = widget.rich_style
        styles = row_styles(base, stale, widget.get_component_rich_style)
        if len(self._style_cache) > 64:
            self._style_cache.clear()
        self._style_cache[key] = styles
        return styles

    def _paint_row(self, key: str, layout: Layout, now: int, is_cursor: bool
                   ) -> tuple[Strip, str]:
        row = self._data.rows[key]
        age_ns = now - row.updated_ns
        stale = age_ns > self._stale_ns
        return render_row(
            row, self._cells_for(key), layout, self._row_styles(is_cursor, stale),
            is_cursor=is_cursor, age_ns=age_ns, stale=stale,
            flash_dir=self._data.flash_direction(key, now),
        )
