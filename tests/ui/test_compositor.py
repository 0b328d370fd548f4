"""The console's compositor writes, for any dirty region, what a full repaint shows.

It renders a partial update from the dirty spans of each line and asks each
widget, front to back, only for the chops nobody in front of it painted; a
mistake there writes a container's background or a hidden widget's cells
where the screen shows something else. Random regions of the real console's
screen (spanning panels, borders and the table at once) are refreshed one by
one: each update must write every cell of its regions, as a full repaint
shows it.
"""

from __future__ import annotations

import random

from textual.geometry import Region

from tests.ui.test_app import pilot_test
from tests.ui.test_output_diff import recorded_console
from tests.ui.vt_screen import VtScreen

WIDTH, HEIGHT = 150, 42


@pilot_test
async def test_partial_updates_of_any_region_write_what_a_full_repaint_shows() -> None:
    app, writes, _ = recorded_console(seed=4)
    rng = random.Random(11)
    async with app.run_test(size=(WIDTH, HEIGHT)) as pilot:
        await pilot.pause()
        app.screen.refresh()
        await pilot.pause()
        first = len(writes)
        assert first, "the console drew nothing"
        regions = []
        for _ in range(60):
            x, y = rng.randrange(WIDTH), rng.randrange(HEIGHT)
            regions.append(Region(x, y, rng.randint(1, WIDTH - x), rng.randint(1, 4)))
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
    assert partial - first >= 10, "the regions were not written as partial updates"
    repainted = VtScreen(WIDTH, HEIGHT)
    repainted.feed("".join(writes[partial:]))
    for batch, start, end in updates:
        # Stale cells where the update must write: every one of them must come back.
        painted = VtScreen(WIDTH, HEIGHT)
        painted.feed("".join(writes[partial:]))
        for region in batch:
            for y in range(region.y, min(region.bottom, HEIGHT)):
                for x in range(region.x, min(region.right, WIDTH)):
                    painted.cells[y][x] = ("#", "")
        painted.feed("".join(writes[start:end]))
        assert painted.cells == repainted.cells, batch
