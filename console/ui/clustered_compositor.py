"""A compositor that renders scattered updates as a few small crops, not one big one.

Textual renders a partial update inside one rectangle around every dirty
region: each widget overlapping it renders all of its lines. When a changed
row in the tick table and a counter in the status bar are painted in the same
frame, that rectangle is the whole screen and every panel renders although
nothing in it changed (measured headless at 200x50: 1.0 ms for ten table rows,
2.6 ms once the status bar's counter changed too).

`ClusteredCompositor` groups the dirty regions by the column band they span
(one widget's lines share it) and renders each group in its own crop, then
writes them as one update. Only the cropping changes: what is written for
each dirty line is exactly what Textual would write.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import pairwise
from types import MappingProxyType
from typing import Any, cast

from rich.console import Console
from rich.control import Control
from textual._compositor import ChopsUpdate, Compositor
from textual.geometry import Region
from textual.screen import Screen
from textual.strip import Strip

# More groups than this: one crop again (each group costs a pass over its widgets).
MAX_GROUPS = 6
# A widget renders the dirty lines in at most this many bands (each call has a cost),
# split only where at least BAND_GAP clean lines lie between two dirty ones.
MAX_BANDS = 4
BAND_GAP = 6


# The chops of a line with nothing to update (shared, read-only).
NO_CHOPS: Mapping[int, Strip | None] = MappingProxyType({})


def group_regions(regions: Iterable[Region]) -> list[list[Region]]:
    """Dirty regions grouped by their column band (x, width)."""
    groups: dict[tuple[int, int], list[Region]] = {}
    for region in regions:
        groups.setdefault((region.x, region.width), []).append(region)
    return list(groups.values())


class SpanUpdate(ChopsUpdate):
    """Textual's ChopsUpdate, but a chop that starts left of a dirty span is written
    from the span's start, not its own: a changed age at the end of a table row
    sends that cell, not the row up to it."""

    def render_segments(self, console: Console) -> str:
        sequences: list[str] = []
        append = sequences.append
        move_to = Control.move_to
        chops, chop_ends = self.chops, self.chop_ends
        last_y = self.spans[-1][0]
        for y, x1, x2 in self.spans:
            for end, (x, strip) in zip(chop_ends[y], chops[y].items(), strict=False):
                if strip is None or x >= x2 or end <= x1:
                    continue
                if x1 <= x and end <= x2:
                    append(move_to(x, y).segment.text)
                    append(strip.render(console))
                    continue
                start = max(x, x1)
                append(move_to(start, y).segment.text)
                append(strip.crop(start - x, min(end, x2) - x).render(console))
            if y != last_y:
                append("\n")
        return "".join(sequences)


class ClusteredCompositor(Compositor):
    """Textual's compositor with partial updates rendered per group of regions."""

    def render_partial_update(self) -> ChopsUpdate | None:
        if not self._dirty_regions:
            return None
        groups = group_regions(self._dirty_regions)
        if len(groups) > MAX_GROUPS:
            return super().render_partial_update()
        update_regions = self._dirty_regions.copy()
        self._dirty_regions.clear()
        screen_region = self.size.region
        cuts = self.cuts
        # Only the dirty lines get chops: ChopsUpdate reads no other line.
        merged: list[Mapping[int, Strip | None]] = [NO_CHOPS] * len(cuts)
        for group in groups:
            crop = Region.from_union(group).intersection(screen_region)
            if not crop:
                continue
            lines = {y for region in group
                     for y in range(max(region.y, 0), min(region.bottom, len(cuts)))}
            chops = self._render_chops(crop, lines.__contains__)
            if len(groups) == 1:
                merged = list(chops)
                break
            # Take from this crop only the cuts that reach into it: beyond it a widget
            # may have rendered where another, outside the crop, is in front.
            left, right = crop.column_span
            for y in lines:
                target = merged[y]
                if target is NO_CHOPS:
                    target = merged[y] = dict.fromkeys(cuts[y][:-1])
                assert isinstance(target, dict)
                for cut, end in pairwise(cuts[y]):
                    if cut < right and end > left and target[cut] is None:
                        target[cut] = chops[y].get(cut)
        spans = list(self._regions_to_spans(update_regions))
        chop_ends = [cut_set[1:] for cut_set in cuts]
        return SpanUpdate(merged, spans, chop_ends)  # type: ignore[arg-type]

    def _render_chops(self, crop: Region, is_rendered_line: Callable[[int], bool]
                      ) -> Sequence[Mapping[int, Strip]]:
        """Textual's `_render_chops`, front to back as there, but a widget renders
        only the lines being updated, and not at all where it lies outside the
        crop or the widgets in front of it already cover those lines (the
        containers behind the table)."""
        lines = getattr(is_rendered_line, "__self__", None)
        if not isinstance(lines, set):
            return super()._render_chops(crop, is_rendered_line)
        cuts = self.cuts
        dirty = sorted(y for y in lines if 0 <= y < len(cuts))
        chops: list[Mapping[int, Strip | None]] = [NO_CHOPS] * len(cuts)
        for y in dirty:
            chops[y] = dict.fromkeys(cuts[y][:-1])
        # Per line, the cuts whose cells reach into the crop: only those are written,
        # so a widget is hidden once the ones in its span are painted.
        left, right = crop.column_span
        in_crop = {y: [cut for cut, end in pairwise(cuts[y]) if cut < right and end > left]
                   for y in dirty}
        crop_overlaps = crop.overlaps
        for widget, (region, clip) in self.visible_widgets.items():
            if not crop_overlaps(clip):
                continue
            visible = region.intersection(clip)
            if not visible or not crop_overlaps(visible):
                continue  # its clip reaches the crop, the widget itself does not
            first_cut, last_cut = visible.column_span
            for top, bottom in line_bands(dirty, visible.y, visible.bottom):
                if all(chops[y].get(cut) is not None
                       for y in range(top, bottom) if y in in_crop
                       for cut in in_crop[y] if first_cut <= cut < last_cut):
                    continue  # hidden behind what is already painted
                band = Region(visible.x, top, visible.width, bottom - top)
                strips = widget.render_lines(
                    Region(band.x - region.x, band.y - region.y, band.width, band.height))
                for y, strip in zip(band.line_range, strips, strict=False):
                    if y not in in_crop:
                        continue
                    chops_line = chops[y]
                    assert isinstance(chops_line, dict)
                    final_cuts = [cut for cut in cuts[y] if last_cut >= cut >= first_cut]
                    cut_strips = strip.divide([cut - first_cut for cut in final_cuts[1:]])
                    for cut, cut_strip in zip(final_cuts, cut_strips, strict=False):
                        if chops_line.get(cut) is None:
                            chops_line[cut] = cut_strip
        return cast("Sequence[Mapping[int, Strip]]", chops)


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


def use_clustered_compositor(screen: Screen[Any]) -> Screen[Any]:
    """Give `screen` the clustered compositor (it keeps no state of its own)."""
    screen._compositor.__class__ = ClusteredCompositor
    return screen
