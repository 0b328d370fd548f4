"""A one-line sparkline that repaints only when one of its bars moves.

Textual's Sparkline repaints whenever its data is set, and colours every bar
with its own blend between two colours, so each bar is a segment with its own
SGR: a two-minute chart that shifts once a second rewrote its whole line in
escape codes. `SparkBars` computes the bars the same way (the same buckets
and eight heights), shades them in four steps between the same two colours
(neighbours of a similar height share one style), keeps the painted line,
and refreshes only when the bars themselves change; a flat idle line costs
nothing once painted.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from textual.color import Color
from textual.strip import Strip
from textual.widget import Widget

from console.ui.direct_lines import WritesDirectly

BARS = "▁▂▃▄▅▆▇█"
SHADES = 4


def bar_heights(data: Sequence[float], width: int) -> tuple[int, ...]:
    """One bar height (0..7) per column, as Textual's Sparkline draws them (max per bucket)."""
    if width <= 0:
        return ()
    if not data:
        return (0,) * width
    if len(data) == 1:
        return (len(BARS) - 1,) * width
    minimum, maximum = min(data), max(data)
    extent = (maximum - minimum) or 1
    # Textual's buckets (Sparkline._buckets) in integers: int(Fraction(n, width) * k)
    # is n * k // width, without building two Fractions per column every second.
    n = len(data)
    peaks = [max(data[n * k // width:n * (k + 1) // width])
             for k in range(width) if n * k // width < n * (k + 1) // width]
    step = len(peaks) / width
    top = len(BARS) - 1
    return tuple(int((peaks[int(column * step)] - minimum) / extent * top)
                 for column in range(width))


class SparkBars(WritesDirectly, Widget):
    """A sparkline of `data`, one line high; see the module docstring."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {"sparkline--max-color", "sparkline--min-color"}
    DEFAULT_CSS = """
    SparkBars { height: 1; }
    SparkBars > .sparkline--max-color { color: $primary; }
    SparkBars > .sparkline--min-color { color: $primary 30%; }
    """

    def __init__(self, data: Sequence[float] = (), *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._data: tuple[float, ...] = tuple(data)
        self._heights: tuple[int, ...] = ()
        self._strip: Strip | None = None

    @property
    def data(self) -> tuple[float, ...]:
        return self._data

    @property
    def heights(self) -> tuple[int, ...]:
        """The bars as drawn now (0..7 each), for tests."""
        return self._heights

    def set_data(self, data: Sequence[float]) -> None:
        self._data = tuple(data)
        self._update_heights()

    def on_resize(self) -> None:
        self._update_heights()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._strip = None

    def _update_heights(self) -> None:
        heights = bar_heights(self._data, self.size.width)
        if heights != self._heights:
            self._heights = heights
            self._strip = None
            self.refresh()

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        if y != 0 or width <= 0:
            return Strip.blank(width, self.rich_style)
        if self._strip is None or self._strip.cell_length != width:
            self._strip = self._paint(width)
        return self._strip

    def _paint(self, width: int) -> Strip:
        heights = self._heights if len(self._heights) == width else bar_heights(self._data, width)
        base = self.rich_style
        low = self.get_component_styles("sparkline--min-color").color
        high = self.get_component_styles("sparkline--max-color").color
        background = self.background_colors[1]
        shades = [_shade(low, high, step / (SHADES - 1), background) for step in range(SHADES)]
        segments: list[Segment] = []
        top = len(BARS) - 1
        run, run_shade = "", -1
        for height in heights:
            shade = round(height / top * (SHADES - 1)) if top else 0
            if shade != run_shade and run:
                segments.append(Segment(run, base + shades[run_shade]))
                run = ""
            run_shade = shade
            run += BARS[height]
        if run:
            segments.append(Segment(run, base + shades[run_shade]))
        return Strip(segments, width).crop_extend(0, width, base)


def _shade(low: Color, high: Color, ratio: float, background: Color) -> Style:
    color = background + low.blend(high, ratio)  # a translucent colour is seen over the panel
    return Style(color=color.rich_color)
