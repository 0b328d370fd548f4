"""A quiet feed puts the frame loop to sleep; the next tick wakes it.

The console runs against its real ingest process and a test-owned XPUB, so
the test decides when the feed goes quiet and when the next tick comes.
"""

from __future__ import annotations

from pathlib import Path

from console.ui.fixtures import FrozenSource, build_frozen_book
from tests.conftest import Feed
from tests.ui.test_app import make_app, pilot_test, until


@pilot_test
async def test_a_quiet_feed_idles_and_the_next_tick_wakes_the_frames(
    feed: Feed, tmp_path: Path
) -> None:
    app = make_app([feed.endpoint], tmp_path, **{"console.fps": 20})
    async with app.run_test(size=(120, 30)) as pilot:
        feed.wait_subscribed()
        feed.tick("A.X", 1.0)
        await until(pilot, lambda: app.table.row("A.X") is not None, what="first tick")
        assert not app.idle
        await until(pilot, lambda: app.idle, what="idle after a quiet second")
        answers = app.source.answers
        pace = app.frame_pace
        assert pace is not None
        woken = pace.woken
        feed.tick("B.X", 2.0)
        await until(pilot, lambda: app.table.row("B.X") is not None, what="the tick after idle")
        assert not app.idle, "a frame with news is back at fps"
        assert app.source.answers > answers
        # The answer woke the loop itself, not the slow idle timer.
        assert pace.woken > woken
        await until(pilot, lambda: app.idle, what="idle again")
        feed.tick("A.X", 1.5)
        await until(pilot, lambda: (row := app.table.row("A.X")) is not None and row.last == 1.5,
                    what="an update of a known row after idle")


@pilot_test
async def test_a_source_without_a_wake_socket_still_idles_and_paints(tmp_path: Path) -> None:
    """The frozen source (like the in-process ingest) has no pipe to watch: idle
    frames come from the slow timer alone, and the screen still shows its rows."""
    from console.ui.app import TradeConsole
    from services.runtime.config import load_config

    book, _ = build_frozen_book(symbols=6, ticks=60, seed=1)
    config = load_config(use_user_file=False, env={}, overrides={"console.fps": 20})
    app = TradeConsole(config, source=FrozenSource(book), freeze_gc=False)
    async with app.run_test(size=(120, 30)) as pilot:
        await until(pilot, lambda: app.table.row_count > 0, what="rows")
        await until(pilot, lambda: app.idle, what="idle")
        app.toggle_pause()  # a key still acts at once while idle
        assert app.paused


@pilot_test
async def test_between_slow_ticks_the_fps_timer_runs_no_frame_and_drains_nothing(
    feed: Feed, tmp_path: Path
) -> None:
    """A tick or two a second must not cost `fps` frames: the timer's ticks with
    nothing new, nothing due and the last frame recent do nothing at all, and the
    ingest process is not asked again until it has news."""
    app = make_app([feed.endpoint], tmp_path, **{"console.fps": 20})
    async with app.run_test(size=(120, 30)) as pilot:
        feed.wait_subscribed()
        feed.tick("A.X", 1.0)
        await until(pilot, lambda: app.table.row("A.X") is not None, what="first tick")
        pace = app.frame_pace
        assert pace is not None
        skipped, answers = pace.skipped, app.source.answers
        await until(pilot, lambda: pace.skipped >= skipped + 3 or app.idle,
                    what="fps ticks with nothing to do")
        assert pace.skipped >= skipped + 3, "the loop went idle before skipping a tick"
        # At most the answer the first tick's frame had asked for, and one for a
        # history second; before, every frame was answered (20 a second).
        assert app.source.answers <= answers + 2
        feed.tick("A.X", 1.5)
        await until(pilot, lambda: (row := app.table.row("A.X")) is not None and row.last == 1.5,
                    what="the next tick, shown although the ticks before it skipped")


@pilot_test
async def test_a_tick_off_screen_waits_for_its_turn_without_waking_every_frame(
    feed: Feed, tmp_path: Path
) -> None:
    """A row below the visible ones goes to the UI on the ingest's off-screen turn;
    until then it is not news, so the held drain is not answered empty at every
    fps tick (which would run every frame of the half second before that turn)."""
    app = make_app([feed.endpoint], tmp_path, **{"console.fps": 20})
    async with app.run_test(size=(120, 20)) as pilot:
        feed.wait_subscribed()
        symbols = [f"S{i:02d}.X" for i in range(40)]
        for i, vt in enumerate(symbols):
            feed.tick(vt, 100.0 + i)
        await until(pilot, lambda: app.table.total_rows == len(symbols), what="every row")
        on_screen = set(app.table.on_screen_symbols())
        off_screen = [vt for vt in symbols if vt not in on_screen]
        assert on_screen and off_screen, "the table must show some rows, not all"
        pace = app.frame_pace
        assert pace is not None
        await until(pilot, lambda: pace.skipped > 0, what="a quiet tick")
        skipped, answers = pace.skipped, app.source.answers
        feed.tick(off_screen[-1], 7.0)
        await until(pilot, lambda: pace.skipped >= skipped + 6 or app.idle,
                    what="fps ticks with nothing to do")
        assert pace.skipped >= skipped + 6, "the loop went idle before skipping ticks"
        # The row's turn, a history second and at most one more.
        assert app.source.answers <= answers + 3
        await until(pilot, lambda: (row := app.table.row(off_screen[-1])) is not None
                    and row.last == 7.0, what="the off-screen row on its turn")

