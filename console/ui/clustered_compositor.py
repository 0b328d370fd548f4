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

from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import pairwise
from typing import Any, cast

from textual._compositor import ChopsUpdate, Compositor
from textual.geometry import Region
from textual.screen import Screen
from textual.strip import Strip

# More groups than this: one crop again (each group costs a pass over its widgets).
MAX_GROUPS = 6
# A widget renders the dirty lines in at most this many bands (each call has a cost).
MAX_BANDS = 1


def group_regions(regions: Iterable[Region]) -> list[list[Region]]:
    """Dirty regions grouped by their column band (x, width)."""
    groups: dict[tuple[int, int], list[Region]] = {}
    for region in regions:
        groups.setdefault((region.x, region.width), []).append(region)
    return list(groups.values())


class ClusteredCompositor(Compositor):
    """Textual's compositor with partial updates rendered per group of regions."""

    def render_partial_update(self) -> ChopsUpdate | None:
        groups = group_regions(self._dirty_regions)
        if len(groups) <= 1 or len(groups) > MAX_GROUPS:
            return super().render_partial_update()
        update_regions = self._dirty_regions.copy()
        self._dirty_regions.clear()
        screen_region = self.size.region
        merged: list[dict[int, Strip | None]] = [dict.fromkeys(cut_set[:-1])
                                                 for cut_set in self.cuts]
        cut_ends = [dict(pairwise(cut_set)) for cut_set in self.cuts]
        for group in groups:
            crop = Region.from_union(group).intersection(screen_region)
            if not crop:
                continue
            ranges: dict[int, list[tuple[int, int]]] = {}
            for region in group:
                for y in range(region.y, region.bottom):
                    ranges.setdefault(y, []).append((region.x, region.right))
            chops = self._render_chops(crop, set(ranges).__contains__)
            # Take from this crop only the cuts inside its own regions: elsewhere on
            # the line it rendered only the widgets it overlaps, not what is in front.
            for y, line_ranges in ranges.items():
                if y >= len(chops):
                    continue
                target, ends = merged[y], cut_ends[y]
                for cut, strip in chops[y].items():
                    if strip is None or target.get(cut) is not None:
                        continue
                    end = ends.get(cut, cut + strip.cell_length)
                    if any(cut < right and end > left for left, right in line_ranges):
                        target[cut] = strip
        spans = list(self._regions_to_spans(update_regions))
        chop_ends = [cut_set[1:] for cut_set in self.cuts]
        return ChopsUpdate(merged, spans, chop_ends)  # type: ignore[arg-type]

    def _render_chops(self, crop: Region, is_rendered_line: Callable[[int], bool]
                      ) -> Sequence[Mapping[int, Strip]]:
        """Textual's `_render_chops`, front to back as there, but a widget renders
        only the lines being updated, and not at all where the widgets in front
        of it already cover those lines (the containers behind the table)."""
        lines = getattr(is_rendered_line, "__self__", None)
        if not isinstance(lines, set):
            return super()._render_chops(crop, is_rendered_line)
        cuts = self.cuts
        chops: list[dict[int, Strip | None]] = [dict.fromkeys(cut_set[:-1]) for cut_set in cuts]
        crop_overlaps = crop.overlaps
        for widget, (region, clip) in self.visible_widgets.items():
            if not crop_overlaps(clip):
                continue
            visible = region.intersection(clip)
            if not visible:
                continue
            first_cut, last_cut = visible.column_span
            for top, bottom in line_bands(lines, visible.y, visible.bottom):
                if all(chops[y].get(cut) is not None
                       for y in range(top, bottom) if y in lines
                       for cut in cuts[y] if first_cut <= cut < last_cut):
                    continue  # hidden behind what is already painted
                band = Region(visible.x, top, visible.width, bottom - top)
                strips = widget.render_lines(
                    Region(band.x - region.x, band.y - region.y, band.width, band.height))
                for y, strip in zip(band.line_range, strips, strict=False):
                    if y not in lines:
                        continue
                    chops_line = chops[y]
                    final_cuts = [cut for cut in cuts[y] if last_cut >= cut >= first_cut]
                    cut_strips = strip.divide([cut - first_cut for cut in final_cuts[1:]])
                    for cut, cut_strip in zip(final_cuts, cut_strips, strict=False):
                        if chops_line.get(cut) is None:
                            chops_line[cut] = cut_strip
        return cast("Sequence[Mapping[int, Strip]]", chops)


def line_bands(lines: Iterable[int], top: int, bottom: int,
               most: int = MAX_BANDS) -> list[tuple[int, int]]:
    """The lines in [top, bottom) as at most `most` [start, end) bands, split at the widest gaps."""
    inside = sorted(y for y in lines if top <= y < bottom)
    if not inside:
        return []
    gaps = sorted(((inside[i + 1] - inside[i], i) for i in range(len(inside) - 1)
                   if inside[i + 1] - inside[i] > 1), reverse=True)[:most - 1]
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
