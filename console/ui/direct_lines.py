"""Changed lines of a widget straight to the terminal, in the frame that changed them.

A refresh() of a few table rows costs Textual far more than painting them:
the refresh marks the widget, an Update message reaches the screen, the
screen's update timer wakes (twice) and the compositor works out which
widgets cover the dirty spans before the lines are rendered. With ten rows
changing twenty times a second that machinery was about half of the UI's time
(measured at 200 msg/s over 50 symbols: 2.2 ms of a 3.9 ms frame in the
screen's update, the rows' own painting 0.5 ms of it).

`LineWriter.write` does what that update would end with, at once: it renders
the regions with the widget's own `render_lines` (line filters and all), and
hands them to `App._display` as the same `SpanUpdate` the compositor would
make, so the cells reach the terminal's output diff (or ANSI) exactly as
before. It does so only where nothing can cover those cells: the widget's
screen on top, no layout pending, no update batch open, and no widget in front
of it (a toast, a tooltip) overlapping them. Anywhere else it returns False
and the caller refreshes as usual.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from weakref import WeakKeyDictionary

from textual.geometry import Offset, Region
from textual.screen import Screen
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import Label

from console.ui.clustered_compositor import CellSink, SpanUpdate

# Content offset, the widget's origin on screen, the part of the screen it shows in,
# and the regions of the widgets in front of it.
Geometry = tuple[Offset, Offset, Region, list[Region]]


class LineWriter:
    """Writes a widget's dirty regions to the terminal now, where nothing can cover them."""

    def __init__(self, screen: Screen[Any], sink: CellSink | None = None) -> None:
        self._screen = screen
        self._sink = sink
        self.lines_written = 0   # lines written without a refresh (for tests and benches)
        self.refused = 0         # writes left to refresh() because something could cover them
        # Weak: a widget removed from the screen must not be kept alive here.
        self._geometries: WeakKeyDictionary[Widget, tuple[object, Geometry | None]] = \
            WeakKeyDictionary()

    def write(self, widget: Widget, regions: Sequence[Region]) -> bool:
        """Write `regions` (widget coordinates, as given to refresh()) now; False if they
        must go through refresh() instead (nothing was written then)."""
        placed = self._placed(widget, regions)
        if placed is None:
            self.refused += 1
            return False
        chops: dict[int, dict[int, Strip | None]] = {}
        chop_ends: dict[int, list[int]] = {}
        spans: list[tuple[int, int, int]] = []
        for local, on_screen in placed:
            x1, x2 = on_screen.column_span
            for y, strip in zip(range(on_screen.y, on_screen.bottom),
                                widget.render_lines(local), strict=False):
                if strip.cell_length != x2 - x1:
                    strip = strip.crop_extend(0, x2 - x1, None)
                chops[y] = {x1: strip}
                chop_ends[y] = [x2]
                spans.append((y, x1, x2))
        if not spans:
            return True
        self.lines_written += len(spans)
        self._screen.app._display(self._screen,
                                  SpanUpdate(chops, spans, chop_ends, self._sink))  # type: ignore[arg-type]
        return True

    def _placed(self, widget: Widget, regions: Sequence[Region]
                ) -> list[tuple[Region, Region]] | None:
        """Each region in the widget's and the screen's coordinates, or None when
        anything could cover or move them."""
        screen = self._screen
        app = screen.app
        if (app.screen is not screen or app._batch_count or not app._running
                or screen._layout_required or widget._layout_required):
            return None
        geometry = self._geometry(widget)
        if geometry is None:
            return None
        offset, origin, shown, front = geometry
        placed: list[tuple[Region, Region]] = []
        for dirty in regions:
            local = dirty.translate(offset)
            on_screen = local.translate(origin)
            if not shown.contains_region(on_screen):
                return None  # partly hidden: the compositor knows how to clip it
            placed.append((local, on_screen))
        if front:
            box = Region.from_union([on_screen for _, on_screen in placed])
            if any(box.overlaps(region) for region in front):
                return None
        return placed

    def _geometry(self, widget: Widget) -> Geometry | None:
        """Where the widget's content starts, where the widget is, what of the screen it
        shows in and the regions of everything in front of it; worked out once per
        arrangement of the screen (the compositor's map)."""
        visible = self._screen._compositor.visible_widgets
        cached = self._geometries.get(widget)
        if cached is not None and cached[0] is visible:
            return cached[1]
        geometry: Geometry | None = None
        placement = visible.get(widget)
        if placement is not None:
            region, clip = placement
            front: list[Region] = []
            for other, (other_region, other_clip) in visible.items():
                if other is widget:
                    break  # the map runs front to back: the rest lie behind it
                shown = other_region.intersection(other_clip)
                if shown.overlaps(region):
                    front.append(shown)
            geometry = (widget.content_offset, region.offset, region.intersection(clip), front)
        self._geometries[widget] = (visible, geometry)
        return geometry


class WritesDirectly:
    """Mixin for a widget whose repaints go straight to the terminal where they can.

    A panel's line, the status bar's `rx` counter or a sparkline changing on its
    own used to cost a whole screen update (the Update message, the screen's
    update timer, the compositor's pass) for one line. A plain repaint (no
    layout, no recompose) of a mixed-in widget marks it dirty as refresh()
    does and has the app's `line_writer` write the region at once; where that
    refuses (a modal on top, a toast over it, a layout pending) it refreshes
    as usual. Mix it in before the widget class.
    """

    def refresh(self, *regions: Region, repaint: bool = True, layout: bool = False,
                recompose: bool = False) -> Any:
        widget: Any = self
        writer: LineWriter | None = getattr(widget.app, "line_writer", None) \
            if widget.is_attached else None
        # Regions still waiting for the screen's update (a refused write) go with it.
        if writer is None or layout or recompose or not repaint or not widget._is_mounted \
                or widget._repaint_regions:
            return super().refresh(  # type: ignore[misc]
                *regions, repaint=repaint, layout=layout, recompose=recompose)
        # What refresh() does to repaint, without telling the screen (yet).
        widget._layout_cache.clear()
        widget._set_dirty(*regions)
        widget.clear_cached_dimensions()
        widget._rich_style_cache.clear()
        areas = regions
        if not areas:  # the whole widget, padding and border included
            offset, size = widget.content_offset, widget.outer_size
            areas = (Region(-offset.x, -offset.y, size.width, size.height),)
        if writer.write(widget, areas):
            widget._exchange_repaint_regions()  # painted: nothing left for the screen
            return self
        return super().refresh(*regions, repaint=repaint)  # type: ignore[misc]

    def notify_style_update(self) -> None:
        """New styles: repaint through the screen's update, after the widget's own caches
        are cleared (Textual's style setters refresh while the rules are half applied)."""
        super().notify_style_update()  # type: ignore[misc]
        Widget.refresh(self)  # type: ignore[arg-type]


class DirectLabel(WritesDirectly, Label):
    """A Label whose new text goes straight to the terminal (see WritesDirectly)."""
