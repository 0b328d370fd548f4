"""The console's compositor writes, for any dirty region, what a full repaint shows.

It renders a partial update from the dirty spans of each line and asks each
widget, front to back, only for the chops nobody in front of it painted; a
mistake there writes a container's background or a hidden widget's cells
where the screen shows something else. Random regions are refreshed one
update at a time, over the real console's screen (panels, borders and the
table at once) and over a bordered container whose children end at different
columns on adjacent lines: each update must write every cell of its regions
as a full repaint shows it.
"""

from __future__ import annotations

import random
from typing import Any

from textual.app import App, ComposeResult
from textual.containers import Vertical
from textual.geometry import Region
from textual.screen import Screen
from textual.widgets import Static

from console.ui.clustered_compositor import use_clustered_compositor
from tests.ui.test_app import pilot_test
from tests.ui.test_output_diff import capture_frames, recorded_console
from tests.ui.vt_screen import VtScreen


async def refresh_random_regions(app: App[Any], pilot: Any, writes: list[str], width: int,
                                 height: int, seed: int, count: int = 60) -> None:
    """Refresh random regions three at a time; each update must bring back every cell
    of its regions, stale beforehand, exactly as the full repaint at the end shows it."""
    rng = random.Random(seed)
    await pilot.pause()
    app.screen.refresh()
    await pilot.pause()
    first = len(writes)
    assert first, "nothing was drawn"
    regions = []
    for _ in range(count):
        x, y = rng.randrange(width), rng.randrange(height)
        regions.append(Region(x, y, rng.randint(1, width - x), rng.randint(1, 4)))
    updates: list[tuple[list[Region], int, int]] = []
    for step in range(0, len(regions), 3):
        batch = regions[step:step + 3]
        before = len(writes)
        app.screen.refresh(*batch)  # several spans, one update
        await pilot.pause()
        updates.append((batch, before, len(writes)))
    partial = len(writes)
    app.screen.refresh()
    await pilot.pause()
    assert partial - first >= count // 6, "the regions were not written as partial updates"
    full = "".join(writes[partial:])
    repainted = VtScreen(width, height)
    repainted.feed(full)
    for batch, start, end in updates:
        painted = VtScreen(width, height)
        painted.feed(full)
        for region in batch:
            for y in range(region.y, min(region.bottom, height)):
                for x in range(region.x, min(region.right, width)):
                    painted.cells[y][x] = ("#", "")
        painted.feed("".join(writes[start:end]))
        assert painted.cells == repainted.cells, batch


@pilot_test
async def test_partial_updates_of_the_console_write_what_a_full_repaint_shows() -> None:
    app, writes, _ = recorded_console(seed=4)
    async with app.run_test(size=(150, 42)) as pilot:
        await refresh_random_regions(app, pilot, writes, 150, 42, seed=11)


class Ragged(App[None]):
    """A bordered container whose children end at different columns line by line."""

    CSS = """
    #box { border: heavy red; width: 40; height: 7; padding: 0 1; }
    #a { width: 10; height: 1; } #b { width: 20; height: 1; } #c { width: 5; height: 2; }
    """

    def get_default_screen(self) -> Screen[Any]:
        return use_clustered_compositor(super().get_default_screen())

    def compose(self) -> ComposeResult:
        with Vertical(id="box"):
            yield Static("a" * 10, id="a")
            yield Static("b" * 20, id="b")
            yield Static("c" * 5 + "\n" + "C" * 5, id="c")


@pilot_test
async def test_partial_updates_over_children_of_different_widths_are_placed_right() -> None:
    app = Ragged()
    writes: list[str] = []
    capture_frames(app, writes)  # type: ignore[arg-type]
    async with app.run_test(size=(50, 9)) as pilot:
        await refresh_random_regions(app, pilot, writes, 50, 9, seed=5, count=120)
