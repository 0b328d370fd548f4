"""The line-API tick table on its own: order, filter, flash, staleness, partial repaint.

A tiny app hosts the widget and an injected clock drives time, so these are
exact and fast; the end-to-end paths are in test_app.py.
"""

from __future__ import annotations

from typing import Any

from msgspec.structs import replace
from textual.app import App, ComposeResult
from textual.screen import Screen

from console.model import SymbolRow
from console.ui.clustered_compositor import use_clustered_compositor
from console.ui.filtering import parse_filter
from console.ui.widgets.table_paint import AGE_BEAT_NS
from console.ui.widgets.tick_table import FLASH_NS, TickTable, fit_columns
from tests.ui.test_app import pilot_test
from tests.ui.test_output_diff import capture_frames
from tests.ui.vt_screen import VtScreen
from themes import THEME_VARIABLE_DEFAULTS

S = 1_000_000_000


def row(vt: str, last: float, *, ns: int = 0, direction: int = 0, envelope: bool = True,
        ticks: int = 1) -> SymbolRow:
    return SymbolRow(
        vt_symbol=vt, exchange=vt.rpartition(".")[2], last=last, change=0.0, bid=last - 0.01,
        ask=last + 0.01, spread=0.02, bid_size=1.0, ask_size=2.0, volume=10.0, ticks=ticks,
        updated_ns=ns, latency_us=120.0 if envelope else None, direction=direction,
        has_envelope=envelope, gaps=0, feed="tcp://x:1",
    )


class Clock:
    def __init__(self) -> None:
        self.now = 100 * S

    def __call__(self) -> int:
        return self.now


class TableApp(App[None]):
    def __init__(self, clock: Clock, **kwargs: Any) -> None:
        super().__init__()
        self.clock = clock
        self.kwargs = kwargs

    def get_theme_variable_defaults(self) -> dict[str, str]:
        return dict(THEME_VARIABLE_DEFAULTS)  # the tc-* colours the widgets use

    def get_default_screen(self) -> Screen[Any]:
        return use_clustered_compositor(super().get_default_screen())  # as the console does

    def compose(self) -> ComposeResult:
        yield TickTable(clock_ns=self.clock, **self.kwargs)


ROWS = {vt: row(vt, price, ns=100 * S) for vt, price in [
    ("BTCUSD.KRAKEN", 65000.0), ("ETHUSD.KRAKEN", 3400.0), ("AAPL.NASDAQ", 210.0),
    ("IF2506.CFFEX", 3900.0), ("rb2510.SHFE", 3200.0),
]}


@pilot_test
async def test_order_filter_and_exchange() -> None:
    app = TableApp(Clock())
    async with app.run_test(size=(100, 20)) as pilot:
        table = app.query_one(TickTable)
        table.apply(ROWS)
        assert table.visible_symbols() == sorted(ROWS)
        table.set_filter(parse_filter("usd"))
        assert table.visible_symbols() == ["BTCUSD.KRAKEN", "ETHUSD.KRAKEN"]
        table.set_exchange("NASDAQ")
        assert table.visible_symbols() == []
        table.set_filter(parse_filter(""))
        assert table.visible_symbols() == ["AAPL.NASDAQ"]
        table.set_exchange(None)
        table.sort_by("last", reverse=True)
        assert table.visible_symbols()[0] == "BTCUSD.KRAKEN"
        await pilot.pause()


@pilot_test
async def test_value_sorts_follow_changes_within_a_few_frames() -> None:
    app = TableApp(Clock(), resort_every=3)
    async with app.run_test(size=(100, 20)) as pilot:
        table = app.query_one(TickTable)
        table.apply(ROWS)
        table.sort_by("last")
        assert table.visible_symbols()[0] == "AAPL.NASDAQ"
        table.apply({"rb2510.SHFE": row("rb2510.SHFE", 1.0, ns=100 * S)})
        for _ in range(3):
            table.advance_frame()
        assert table.visible_symbols()[0] == "rb2510.SHFE"
        await pilot.pause()


@pilot_test
async def test_evicted_symbols_leave_at_once() -> None:
    app = TableApp(Clock())
    async with app.run_test(size=(100, 20)) as pilot:
        table = app.query_one(TickTable)
        table.apply(ROWS)
        table.apply({}, removed=["ETHUSD.KRAKEN"])
        assert "ETHUSD.KRAKEN" not in table.visible_symbols()
        assert table.total_rows == len(ROWS) - 1
        await pilot.pause()  # renders without the evicted row


@pilot_test
async def test_flash_then_stale_by_the_clock() -> None:
    clock = Clock()
    app = TableApp(clock, stale_after_s=10.0)
    async with app.run_test(size=(100, 20)) as pilot:
        table = app.query_one(TickTable)
        table.apply({"AAPL.NASDAQ": row("AAPL.NASDAQ", 210.0, ns=clock.now, direction=1)})
        await pilot.pause()
        after = table.column_offset("change")
        assert after is not None
        last = after - 2  # the price's last digit (prices are right-aligned)

        def last_cell_style() -> Any:
            strip = table.render_line(1)
            x = 0
            for segment in strip:  # equal styles may be merged into one segment
                x += len(segment.text)
                if x > last:
                    return segment.style
            raise AssertionError("no last cell")

        flashing = last_cell_style()
        clock.now += FLASH_NS + 1
        table.advance_frame()
        assert last_cell_style() != flashing  # the flash is over
        assert "STALE" not in table.row_text("AAPL.NASDAQ")
        clock.now += 11 * S
        table.advance_frame()
        assert "STALE 11s" in table.row_text("AAPL.NASDAQ")


def four_moments_of_a_beat() -> tuple[Clock, TableApp, int, dict[str, int]]:
    """A table on a test clock, the clock's start, and four symbols each with a
    moment of the first beat after it (20, 160, 310 and 440 ms in)."""
    clock = Clock()
    start = clock.now
    moments = {f"S{i}.SIM": start + ms * 1_000_000 for i, ms in enumerate((20, 160, 310, 440))}
    return clock, TableApp(clock, stale_after_s=30.0), start, moments


@pilot_test
async def test_ages_move_together_on_the_beat_at_most_one_beat_late() -> None:
    # Four rows updated at four moments of one beat: exact ages would turn from
    # "<1s" to "1s" in four different frames; on the beat they turn in one.
    clock, app, start, updated = four_moments_of_a_beat()
    clock.now = start + 450_000_000
    async with app.run_test(size=(120, 12)) as pilot:
        table = app.query_one(TickTable)
        table.apply({vt: row(vt, 100.0, ns=ns) for vt, ns in updated.items()})
        await pilot.pause()
        order = table.visible_symbols()
        turned: dict[str, int] = {}
        due_before: list[int] = []
        while len(turned) < len(updated) and clock.now < start + 3 * S:
            due_before.append(table.next_change_ns())
            clock.now += 50_000_000
            table.advance_frame()
            for vt in updated:
                # What the screen shows for the row: its painted line, not a fresh render.
                line = table.render_line(order.index(vt) + 1).text
                if vt not in turned and " 1s" in line:
                    turned[vt] = clock.now
        assert set(turned) == set(updated), "some ages never turned"
        beat = -(-(start + S + 20_000_000) // AGE_BEAT_NS) * AGE_BEAT_NS
        assert set(turned.values()) == {beat}, "the ages turned in different frames"
        for vt, ns in updated.items():
            assert 0 <= turned[vt] - (ns + S) < AGE_BEAT_NS, f"{vt} turned too late"
        assert beat in due_before, "the table did not say when its ages were due"


@pilot_test
async def test_flashes_end_together_on_the_beat_after_at_least_their_length() -> None:
    # Four prices moved at four moments of one beat: flashes of a fixed length would
    # end in four frames (on a quiet feed, a frame each); on the beat they end in one.
    clock, app, start, moved = four_moments_of_a_beat()
    async with app.run_test(size=(120, 12)) as pilot:
        table = app.query_one(TickTable)
        table.apply({vt: row(vt, 100.0, ns=start) for vt in moved})
        await pilot.pause()
        order = table.visible_symbols()

        def flashing(vt: str) -> bool:
            # What the screen shows for the row: its painted line (a flash is bold).
            strip = table.render_line(order.index(vt) + 1)
            return any(segment.style is not None and segment.style.bold for segment in strip)

        ended: dict[str, int] = {}
        due_before: list[int] = []
        while len(ended) < len(moved) and clock.now < start + 3 * S:
            clock.now += 10_000_000
            for vt, at in moved.items():
                if at == clock.now:
                    table.apply({vt: row(vt, 101.0, ns=at, direction=1, ticks=2)})
                    assert flashing(vt), f"{vt} did not flash"
            due_before.append(table.next_change_ns())
            table.advance_frame()
            for vt, at in moved.items():
                if at < clock.now and vt not in ended and not flashing(vt):
                    ended[vt] = clock.now
        assert set(ended) == set(moved), "some flashes never ended"
        beat = -(-(start + 440_000_000 + FLASH_NS) // AGE_BEAT_NS) * AGE_BEAT_NS
        assert set(ended.values()) == {beat}, "the flashes ended in different frames"
        for vt, at in moved.items():
            lasted = ended[vt] - at
            assert FLASH_NS <= lasted < FLASH_NS + AGE_BEAT_NS, f"{vt} flashed {lasted} ns"
        assert beat in due_before, "the table did not say when its flashes were due"


@pilot_test
async def test_only_changed_rows_are_repainted() -> None:
    app = TableApp(Clock())
    async with app.run_test(size=(100, 20)) as pilot:
        table = app.query_one(TickTable)
        table.apply(ROWS)
        await pilot.pause()
        painted: list[int] = []
        original = table.render_lines

        def spy(crop: Any) -> Any:
            painted.extend(crop.line_range)
            return original(crop)

        table.render_lines = spy  # type: ignore[method-assign]
        changed = replace(ROWS["IF2506.CFFEX"], last=3901.0, ticks=2)
        table.apply({"IF2506.CFFEX": changed})
        await pilot.pause()
        position = table.visible_symbols().index("IF2506.CFFEX")
        assert set(painted) == {position + 1}  # +1: the header is line 0


def test_columns_drop_by_priority_and_keep_pairs() -> None:
    narrow = [c.key for c in fit_columns(78).columns]
    assert narrow[:3] == ["symbol", "last", "change"] and "age" in narrow
    assert "volume" not in narrow
    for width in range(40, 200):
        keys = {c.key for c in fit_columns(width).columns}
        assert ("bid_size" in keys) == ("ask_size" in keys)
        layout = fit_columns(width)
        assert sum(layout.widths) + len(layout.widths) <= max(width, 16)


@pilot_test
async def test_rows_repainted_in_part_leave_the_screen_as_a_full_repaint_draws_it() -> None:
    # New prices (with flashes), ages ticking over, flashes ending and rows going
    # stale each repaint only part of a row; after every frame the screen must be
    # exactly what painting everything again draws.
    clock = Clock()
    app = TableApp(clock, stale_after_s=3.0)
    writes: list[str] = []
    capture_frames(app, writes)  # type: ignore[arg-type]
    size = (120, 16)
    # Ages a third of a second apart: each turns over on its own, not all at once.
    rows = {f"S{i:02d}.SIM": row(f"S{i:02d}.SIM", 100.0 + i, ns=clock.now - i * 330_000_000)
            for i in range(12)}
    partial_frames = 0
    async with app.run_test(size=size) as pilot:
        table = app.query_one(TickTable)
        table.apply(rows)
        await pilot.pause()
        shown = VtScreen(*size)
        shown.feed("".join(writes))
        keys = list(rows)
        for step in range(40):
            clock.now += 300_000_000
            if step % 3 == 0:
                key = keys[step * 5 % len(keys)]
                old = table.row(key)
                assert old is not None and old.last is not None
                table.apply({key: replace(old, last=old.last + (1 if step % 2 else -1),
                                          direction=1 if step % 2 else -1, ticks=old.ticks + 1,
                                          updated_ns=clock.now)})
            else:
                table.advance_frame()
            before = len(writes)
            await pilot.pause()
            shown.feed("".join(writes[before:]))
            partial_frames += len(writes) > before
            app.screen.refresh()
            before = len(writes)
            await pilot.pause()
            repainted = VtScreen(*size)
            repainted.feed("".join(writes[before:]))
            assert shown.cells == repainted.cells, f"the screen differs after step {step}"
            shown.feed("".join(writes[before:]))
    assert partial_frames > 20, "the steps painted too little to check"
    assert "STALE" in "\n".join(shown.text())
