"""Changed table rows go to the terminal in their own frame, and never over what covers them.

The table's rows skip Textual's refresh and are written at once
(console.ui.direct_lines). Each check compares what a terminal shows after
the console's partial writes with one full repaint of the same screen: a row
written at the wrong place, or over a toast in front of the table, leaves the
two different.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from console.model import FEED_OK, History
from console.ui.app import TradeConsole
from console.ui.direct_lines import LineWriter
from console.ui.fixtures import FEED_ENDPOINTS
from console.ui.widgets.status_bar import StatusView
from tests.ui.test_app import pilot_test
from tests.ui.test_output_diff import churn, recorded_console
from tests.ui.vt_screen import VtScreen
from tests.watch.test_engine import feed_row


def move_prices(app: TradeConsole, count: int, step: float) -> None:
    """One frame's worth of new prices for the first `count` shown symbols."""
    rows = {}
    for key in app.table.visible_symbols()[:count]:
        row = app.table.row(key)
        assert row is not None and row.last is not None
        rows[key] = msgspec.structs.replace(row, last=row.last + step, ticks=row.ticks + 1)
    app.table.apply(rows, [])


async def full_repaint(app: TradeConsole, pilot: Any, writes: list[str]
                       ) -> tuple[list[str], str]:
    """Every write before one full repaint of the screen, and that repaint.

    The app's own frames go on meanwhile: a line written directly just before
    or after the repaint belongs on the side of it where it was written.
    """
    before = len(writes)
    app.screen.refresh()
    await pilot.pause()
    at = max(range(before, len(writes)), key=lambda index: len(writes[index]))
    return writes[:at], writes[at]


async def painted(app: TradeConsole, pilot: Any, writes: list[str]) -> LineWriter:
    """The table's line writer, once the whole screen was written."""
    await pilot.pause()
    await full_repaint(app, pilot, writes)
    writer = app.table.line_writer
    assert writer is not None
    return writer


def screen_after(writes: list[str], width: int, height: int) -> VtScreen:
    screen = VtScreen(width, height)
    screen.feed("".join(writes))
    return screen


async def under_a_toast(app: TradeConsole, pilot: Any, writes: list[str], writer: LineWriter,
                        message: str, size: tuple[int, int],
                        change: Callable[[int], None]) -> None:
    """Six frames of `change` under a toast: the covered writes are refused and the
    screen still shows the toast, exactly as one full repaint draws it."""
    app.notify(message, timeout=30)
    await pilot.pause()
    refused = writer.refused
    for step in range(6):
        change(step)
        await pilot.pause()
    assert writer.refused > refused, "lines under the toast were written directly"
    partial, repainted = await full_repaint(app, pilot, writes)
    shown = screen_after(partial, *size)
    assert message.split()[0] in "\n".join(shown.text())
    assert shown.cells == screen_after([repainted], *size).cells


@pilot_test
async def test_changed_rows_are_written_in_their_frame_where_a_full_repaint_puts_them() -> None:
    app, writes, clock = recorded_console(seed=7)
    async with app.run_test(size=(160, 45)) as pilot:
        writer = await painted(app, pilot, writes)
        before, written = len(writes), writer.lines_written
        move_prices(app, 8, 0.25)
        # Written by apply() itself, before the screen's own update runs.
        assert len(writes) > before and writer.lines_written >= 8 > written
        await churn(app, pilot, clock, steps=25, seed=8)  # cursor moves and pauses too
        partial, repainted = await full_repaint(app, pilot, writes)
    assert screen_after(partial, 160, 45).cells == screen_after([repainted], 160, 45).cells


@pilot_test
async def test_rows_under_a_toast_wait_for_the_compositor() -> None:
    app, writes, _ = recorded_console(seed=9)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        writer = await painted(app, pilot, writes)
        await under_a_toast(app, pilot, writes, writer, "over the table " * 6, (80, 24),
                            # every row, those under the toast too
                            lambda step: move_prices(app, 40, 0.25 * (step + 1)))


@pilot_test
async def test_rows_behind_a_modal_screen_are_not_written_over_it() -> None:
    app, writes, _ = recorded_console(seed=10)
    async with app.run_test(size=(120, 36)) as pilot:
        writer = await painted(app, pilot, writes)
        await pilot.press("question_mark")   # the help screen over the console
        await pilot.pause()
        written = writer.lines_written
        move_prices(app, 20, 0.5)
        await pilot.pause()
        assert writer.lines_written == written
        partial, repainted = await full_repaint(app, pilot, writes)
    assert screen_after(partial, 120, 36).cells == screen_after([repainted], 120, 36).cells


def status(received: int) -> StatusView:
    return StatusView(gateway_state=None, rtt_ms=None, trading_state=None, feeds_ok=1,
                      feeds_total=1, received_total=received, readonly=False, paused=False,
                      pending=0, recording=False)


def change_panels(app: TradeConsole, step: int) -> None:
    """A new rx count, a feeds panel counter and moved sparkline bars: one frame's news
    beside the table."""
    app.status_bar.show(status(1_000 + step))   # same width: no layout
    rows = []
    for endpoint in FEED_ENDPOINTS:  # as many lines as the console's own: no new layout
        row = feed_row(FEED_OK, telemetry={"queue_depth": step, "queue_capacity": 100})
        row.endpoint, row.received = endpoint, 100 + step
        rows.append(row)
    app.feeds_panel.show_feeds(rows)
    rates = [float((step * 37 + i * 11) % 97) for i in range(30)]
    app.charts.show_history(History(rate_total=rates, rate_by_feed={"tcp://x:1": rates},
                                    latency_p50_us=rates[::-1], latency_p99_us=rates))


@pilot_test
async def test_panel_lines_and_counters_are_written_in_their_frame() -> None:
    """The status bar's counter, a feeds panel line and sparklines skip the screen's
    update, land where a full repaint puts them, and wait for it under a toast."""
    app, writes, _ = recorded_console(seed=11)
    async with app.run_test(size=(160, 45), notifications=True) as pilot:
        writer = await painted(app, pilot, writes)
        change_panels(app, 0)
        await pilot.pause()
        for step in range(1, 6):
            written = writer.lines_written
            change_panels(app, step)
            # Written by the calls themselves, before the screen's own update runs.
            assert writer.lines_written >= written + 3, step
            assert f"rx {100 + step}" in "\n".join(screen_after(writes, 160, 45).text()), \
                "the feeds panel's new counter is not on the terminal"
            await pilot.pause()
        partial, repainted = await full_repaint(app, pilot, writes)
        assert screen_after(partial, 160, 45).cells == screen_after([repainted], 160, 45).cells
        # Toasts sit bottom right: one tall enough to reach the panels' changing lines.
        await under_a_toast(app, pilot, writes, writer, "over the panels " * 100, (160, 45),
                            lambda step: change_panels(app, 6 + step))

