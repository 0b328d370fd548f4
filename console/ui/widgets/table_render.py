"""How one tick-table line looks: cell text, the style set of a row, the strips.

Pure functions of a row, a layout and resolved styles, so the widget only
decides *when* a line is painted and caches what these return.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip

from console.model import SymbolRow
from console.ui import format as fmt
from console.ui.widgets.table_columns import GUTTER, Layout, fit_cell

STALE_TEXT = "STALE"
CURSOR_MARK = "▸"  # the selection stays visible in 16 colours and with NO_COLOR


class RowStyles(NamedTuple):
    """The styles one row paints with, all merged onto the row's base style."""

    base: Style
    stale_marker: Style
    up: Style
    down: Style
    flash_up: Style
    flash_down: Style
    unknown: Style


# Component classes merged onto the base, in RowStyles order after `base`.
_ACCENTS = ("tick-table--stale-marker", "tick-table--up", "tick-table--down",
            "tick-table--flash-up", "tick-table--flash-down", "tick-table--unknown")


def row_styles(base: Style, stale: bool, style_of: Callable[..., Style]) -> RowStyles:
    """Merge the row accents onto `base` (dimmed first when stale).

    `style_of` is the widget's `get_component_rich_style`.
    """
    if stale:
        base = base + style_of("tick-table--stale", partial=True)
    return RowStyles(base, *(base + style_of(name, partial=True) for name in _ACCENTS))


def row_cells(row: SymbolRow) -> dict[str, str]:
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


def render_header(layout: Layout, sort_key: str, reverse: bool, style: Style) -> Strip:
    """The column titles, the sort column marked with its direction."""
    segments: list[Segment] = [Segment(" " * GUTTER, style)]
    for column, width in zip(layout.columns, layout.widths, strict=True):
        title = column.title
        if column.key == sort_key:
            title = f"{title}{fmt.DOWN_MARK if reverse else fmt.UP_MARK}"
        segments.append(Segment(fit_cell(title, width, column.right) + " ", style))
    return Strip(segments).crop_extend(0, layout.width, style)


def render_row(
    row: SymbolRow,
    cells: dict[str, str],
    layout: Layout,
    styles: RowStyles,
    *,
    is_cursor: bool,
    age_ns: int,
    stale: bool,
    flash_dir: int,
) -> tuple[Strip, str]:
    """One data line as a strip, and as plain text (for tests and exports)."""
    base, stale_marker, up, down, flash_up, flash_down, unknown = styles
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
        cell = fit_cell(text, width, column.right)
        plain.append(cell)
        if style is base:
            run += cell + " "
        else:
            # Only the text takes the accent, not the padding: a flash or a sign
            # change then repaints the digits, not the whole column.
            text = cell.strip(" ")
            start = cell.find(text) if text else len(cell)
            segments.append(Segment(run + cell[:start], base))
            segments.append(Segment(text, style))
            run = cell[start + len(text):] + " "
    # Fitting the line to the width by hand (padding, or dropping the trailing
    # separator): Strip.crop_extend was a third of the row's cost.
    width = layout.width
    excess = cell_len("".join(segment.text for segment in segments)) + cell_len(run) - width
    if excess <= 0:
        segments.append(Segment(run + " " * -excess, base))
        strip = Strip(segments, width)
    elif run.endswith(" " * excess):
        segments.append(Segment(run[:-excess], base))
        strip = Strip(segments, width)
    else:
        segments.append(Segment(run, base))
        strip = Strip(segments).crop_extend(0, width, base)
    return strip, " ".join(plain).rstrip()
