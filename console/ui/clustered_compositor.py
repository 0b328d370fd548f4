"""A compositor that renders only the chops a partial update writes, in one pass.

Textual renders a partial update inside one rectangle around every dirty
region: each widget overlapping it renders all of its lines. When a changed
row in the tick table and a counter in the status bar are painted in the same
frame, that rectangle is the whole screen and every panel renders although
nothing in it changed (measured headless at 200x50: 1.0 ms for ten table rows,
2.6 ms once the status bar's counter changed too).

`ClusteredCompositor` works from the dirty spans of each line instead. A
line's chops (the cells between two widget edges) that no span touches are
never rendered; front to back, a widget renders only the columns and lines
where it is the first to cover a chop still needed, and the pass ends once
every needed chop is painted (the containers behind the table render nothing).
Only the cropping changes: what is written for each dirty cell is exactly what
Textual would write.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from rich.color import ColorSystem
from rich.console import Console
from rich.control import Control
from textual._compositor import ChopsUpdate, Compositor
from textual.geometry import Region
from textual.screen import Screen
from textual.strip import Strip

from console.ui.output_diff import Run

# A widget renders the dirty lines in at most this many bands (each call has a cost),
# split only where at least BAND_GAP clean lines lie between two dirty ones.
MAX_BANDS = 4
BAND_GAP = 6


# The chops of a line with nothing to update (shared, read-only).
NO_CHOPS: Mapping[int, Strip | None] = MappingProxyType({})

Span = tuple[int, int, int]   # y, x1, x2
# Takes an update's cells as runs; False if it cannot (they are then written as ANSI).
CellSink = Callable[[Sequence[Run]], bool]


class SpanUpdate(ChopsUpdate):
    """Textual's ChopsUpdate, but a chop that starts left of a dirty span is written
    from the span's start, not its own: a changed age at the end of a table row
    sends that cell, not the row up to it.

    With a `sink` (the terminal's output diff, console.ui.diff_driver) the cells
    go to it as text and SGR parameters: rendering them to ANSI only for the diff
    to parse them back was a fifth of a frame's cost. Should the sink refuse
    them, they are rendered to ANSI as before.
    """

    def __init__(self, chops: Sequence[Mapping[int, Strip | None]], spans: list[Span],
                 chop_ends: list[list[int]], sink: CellSink | None = None) -> None:
        super().__init__(chops, spans, chop_ends)
        self.sink = sink

    def _pieces(self) -> Iterator[tuple[int, int, Strip]]:
        """(y, x, strip) for each piece of a chop the spans write, in order."""
        chops, chop_ends = self.chops, self.chop_ends
        for y, x1, x2 in self.spans:
            for end, (x, strip) in zip(chop_ends[y], chops[y].items(), strict=False):
                if strip is None or x >= x2 or end <= x1:
                    continue
                if x1 <= x and end <= x2:
                    yield y, x, strip
                    continue
                start = max(x, x1)
                yield y, start, strip.crop(start - x, min(end, x2) - x)

    def render_segments(self, console: Console) -> str:
        if self.sink is not None:
            runs = self.runs(console)
            if runs is not None and self.sink(runs):
                return ""
        # Every piece starts with a move to its own place: no newlines between lines.
        move_to = Control.move_to
        return "".join([move_to(x, y).segment.text + strip.render(console)
                        for y, x, strip in self._pieces()])

    def runs(self, console: Console) -> list[Run] | None:
        """The pieces as runs of text and SGR parameters (as Strip.render would style
        them); None if a segment is a control or a link."""
        color_system = console._color_system or ColorSystem.TRUECOLOR  # as Strip.render
        render_ansi = Strip.render_ansi
        runs: list[Run] = []
        append = runs.append
        for y, x, strip in self._pieces():
            for text, style, control in strip:
                if control is not None:
                    return None
                if style is None:
                    append((y, x, text, None))
                else:
                    if style.link:
                        return None
                    ansi = style._ansi
                    append((y, x, text, ansi if ansi is not None
                            else render_ansi(style, color_system)))
                x += len(text)
        return runs


def needed_chops(cuts: Sequence[list[int]], spans: Sequence[Span]) -> dict[int, dict[int, int]]:
    """Per dirty line, the chops (start cut -> end) that some span on it touches."""
    need: dict[int, dict[int, int]] = {}
    for y, x1, x2 in spans:
        line_cuts = cuts[y]
        line = need.setdefault(y, {})
        index = max(0, bisect_right(line_cuts, x1) - 1)
        last = len(line_cuts) - 1
        while index < last and line_cuts[index] < x2:
            line[line_cuts[index]] = line_cuts[index + 1]
            index += 1
    return need


class ClusteredCompositor(Compositor):
    """Textual's compositor with partial updates rendered from the dirty spans."""

    def render_partial_update(self) -> ChopsUpdate | None:
        if not self._dirty_regions:
            return None
        update_regions = self._dirty_regions.copy()
        self._dirty_regions.clear()
        cuts = self.cuts
        width, height = len(cuts) and cuts[0][-1], len(cuts)
        spans = [(y, max(0, x1), min(width, x2))
                 for y, x1, x2 in self._regions_to_spans(update_regions)
                 if 0 <= y < height and x1 < width and x2 > 0 and x2 > x1]
        if not spans:
            return None
        chops = self._render_spans(spans)
        chop_ends = [cut_set[1:] for cut_set in cuts]
        sink: CellSink | None = getattr(self, "cell_sink", None)
        return SpanUpdate(chops, spans, chop_ends, sink)  # type: ignore[arg-type]

    def _render_spans(self, spans: Sequence[Span]) -> list[Mapping[int, Strip | None]]:
        """The chops `spans` write, each from the front-most widget covering it."""
        cuts = self.cuts
        need = needed_chops(cuts, spans)
        chops: list[Mapping[int, Strip | None]] = [NO_CHOPS] * len(cuts)
        for y in need:
            chops[y] = dict.fromkeys(cuts[y][:-1])
        dirty = sorted(need)
        remaining = sum(map(len, need.values()))
        box = Region.from_corners(min(x1 for _, x1, _ in spans), dirty[0],
                                  max(x2 for _, _, x2 in spans), dirty[-1] + 1)
        box_overlaps = box.overlaps
        for widget, (region, clip) in self.visible_widgets.items():
            if not box_overlaps(clip):
                continue
            visible = region.intersection(clip)
            if not visible or not box_overlaps(visible):
                continue
            left, right = visible.column_span
            for top, bottom in line_bands(dirty, visible.y, visible.bottom):
                x1, x2 = right, left   # the columns of the chops this widget paints first
                for y in dirty[bisect_left(dirty, top):bisect_left(dirty, bottom)]:
                    line_chops = chops[y]
                    for cut, end in need[y].items():
                        if left <= cut < right and line_chops[cut] is None:
                            x1, x2 = min(x1, cut), max(x2, end)
                if x1 >= x2:
                    continue  # hidden behind what is already painted
                strips = widget.render_lines(
                    Region(x1 - region.x, top - region.y, x2 - x1, bottom - top))
                for y, strip in zip(range(top, bottom), strips, strict=False):
                    line_need = need.get(y)
                    if not line_need:
                        continue
                    line_chops = chops[y]
                    assert isinstance(line_chops, dict)
                    line_cuts = cuts[y]
                    inside = line_cuts[bisect_left(line_cuts, x1):bisect_right(line_cuts, x2)]
                    # x1 and x2 come from all lines of the band and need not be cuts on
                    # this one: the cells before its first cut (and after its last)
                    # belong to chops this widget only partly rendered, never needed.
                    if inside and inside[0] == x1:  # the usual case: one chop, no copy
                        pieces = strip.divide([cut - x1 for cut in inside[1:]])
                    else:
                        pieces = strip.divide([cut - x1 for cut in inside])[1:]
                    for cut, piece in zip(inside, pieces, strict=False):
                        if cut in line_need and line_chops[cut] is None:
                            line_chops[cut] = piece
                            remaining -= 1
            if not remaining:
                break  # every chop the spans write is painted
        return chops


def line_bands(lines: Sequence[int], top: int, bottom: int,
               most: int = MAX_BANDS, gap: int = BAND_GAP) -> list[tuple[int, int]]:
    """The sorted `lines` in [top, bottom) as at most `most` [start, end) bands, split
    at the widest gaps of at least `gap` clean lines."""
    inside = lines[bisect_left(lines, top):bisect_left(lines, bottom)]
    if not inside:
        return []
    gaps = sorted(((inside[i + 1] - inside[i], i) for i in range(len(inside) - 1)
                   if inside[i + 1] - inside[i] > gap), reverse=True)[:most - 1]
    bands, start = [], 0
    for _, i in sorted(gaps, key=lambda gap: gap[1]):
        bands.append((inside[start], inside[i] + 1))
        start = i + 1
    bands.append((inside[start], inside[-1] + 1))
    return bands


def use_clustered_compositor(screen: Screen[Any], sink: CellSink | None = None
                             ) -> Screen[Any]:
    """Give `screen` the clustered compositor; its partial updates go to `sink`."""
    compositor = screen._compositor
    compositor.__class__ = ClusteredCompositor
    compositor.cell_sink = sink  # type: ignore[attr-defined]
    return screen
