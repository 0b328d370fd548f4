"""What the terminal is sent: only changed cells, and always the same screen.

`OutputDiff` is checked by what a terminal would show: every stream goes
through `VtScreen` raw and diffed, and the two screens must match cell for
cell (character and style) after every write. The real frames come from the
console itself, rendered by Textual from a frozen feed while rows change.
"""

from __future__ import annotations

import random
from typing import Any

import msgspec
from rich.console import Console
from rich.segment import Segment
from rich.style import Style
from textual.driver import Driver
from textual.strip import Strip

from console.model import History, TelemetryRecord
from console.ui.app import TradeConsole
from console.ui.clustered_compositor import SpanUpdate
from console.ui.diff_driver import diffing
from console.ui.fixtures import FrozenSource, build_frozen_book
from console.ui.output_diff import SYNC_END, SYNC_START, OutputDiff, pen_change
from services.runtime.config import load_config
from tests.ui.test_app import pilot_test
from tests.ui.vt_screen import VtScreen

BASE = "38;2;230;237;243;48;2;22;27;34"
FLASH = "1;38;2;255;255;255;48;2;26;127;55"


def frame(*cells: tuple[int, int, str, str]) -> str:
    """A write the way Textual makes one: a move, then styled segments."""
    out = []
    for y, x, text, pen in cells:
        out.append(f"\x1b[{y + 1};{x + 1}H")
        out.append(f"\x1b[{pen}m{text}\x1b[0m" if pen else text)
    return "".join(out)


def both(writes: list[str], width: int = 40, height: int = 6) -> tuple[VtScreen, VtScreen, str]:
    """Screens after the raw and the diffed writes, and everything the diff sent."""
    raw, diffed, diff = VtScreen(width, height), VtScreen(width, height), OutputDiff()
    sent = []
    for write in writes:
        out = diff.feed(write)
        raw.feed(write)
        diffed.feed(out)
        sent.append(out)
        assert diffed.cells == raw.cells, f"screens differ after {write!r}"
    return raw, diffed, "".join(sent)


def test_an_unchanged_frame_sends_nothing_not_even_its_sync_markers() -> None:
    first = frame((0, 0, "ESZ6.CME   5,501.00", BASE))
    diff = OutputDiff()
    assert diff.feed(first)
    assert [diff.feed(SYNC_START), diff.feed(first), diff.feed(SYNC_END)] == ["", "", ""]


def test_one_changed_digit_sends_that_digit_and_little_else() -> None:
    before = frame((1, 0, "ESZ6.CME   5,501.00   ▲0.75", BASE))
    after = frame((1, 0, "ESZ6.CME   5,501.25   ▲0.75", BASE))
    _, _, sent = both([before, after])
    tail = sent[len(OutputDiff().feed(before)):]
    assert "2" in tail and "ESZ6" not in tail
    assert len(tail) <= 16, repr(tail)


def test_a_style_change_alone_is_written() -> None:
    plain = frame((2, 5, "101.25", BASE))
    flashed = frame((2, 5, "101.25", FLASH))
    _, _, sent = both([plain, flashed, plain])
    assert sent.count("101.25") == 3


def test_cells_far_apart_and_out_of_order_land_where_they_belong() -> None:
    writes = [frame((0, 0, "a" * 40, BASE), (3, 0, "b" * 40, "")),
              frame((3, 30, "XY", ""), (0, 2, "Q", BASE), (3, 1, "Z", FLASH)),
              frame((0, 39, "!", FLASH), (5, 0, "end", "")) + "\x1b[1;1H"]
    both(writes)


def test_what_it_does_not_follow_passes_through_whole_and_is_forgotten() -> None:
    diff = OutputDiff()
    first = frame((0, 0, "hello", BASE))
    diff.feed(first)
    for foreign in (frame((0, 0, "漢字", BASE)), "\x1b[2J" + first,
                    "\x1b]8;id=1;https://example.com\x1b\\link\x1b]8;;\x1b\\", "\x1b[?1049h"):
        assert diff.feed(foreign).endswith(foreign)
        # The model is gone: the same cells are written again, then not any more.
        assert diff.feed(first)
        assert diff.feed(first) == ""


def test_every_pen_change_gives_the_pen_a_reset_would() -> None:
    pens = ["", BASE, FLASH, "38;2;63;185;80;48;2;22;27;34", "7;38;2;23;52;98;48;2;22;27;34",
            "2;38;2;120;120;120", "1;2;4", "38;5;208", "31;42", "3;9;53", "4", "21"]
    for old in pens:
        for new in pens:
            change = pen_change(old, new)
            after_change, after_reset = VtScreen(4, 1), VtScreen(4, 1)
            after_change.feed(f"\x1b[0;{old}m" if old else "\x1b[0m")
            after_change.feed(change + "x")
            after_reset.feed((f"\x1b[0;{new}m" if new else "\x1b[0m") + "x")
            assert after_change.cells == after_reset.cells, (old, new, change)
            assert len(change) <= len(f"\x1b[0;{new}m"), (old, new, change)


def capture_frames(app: TradeConsole, writes: list[str], updates: list[Any] | None = None
                   ) -> None:
    """Keep what Textual would write for each update (headless apps write nothing),
    and the updates themselves if asked."""
    def display(screen: Any, update: Any) -> None:
        if update is not None:
            writes.append(update.render_segments(app.console))
            if updates is not None:
                updates.append(update)
    app._display = display  # type: ignore[method-assign]


def recorded_console(seed: int) -> tuple[TradeConsole, list[str], Any]:
    """The console over a frozen book of 40 symbols, the list its writes go to, and
    its clock."""
    book, clock = build_frozen_book(symbols=40, ticks=400, seed=seed)
    config = load_config(use_user_file=False, env={}, overrides={})
    app = TradeConsole(config, source=FrozenSource(book), clock_ns=clock.mono_ns,
                       wall_ns=clock.wall_ns, freeze_gc=False)
    writes: list[str] = []
    capture_frames(app, writes)
    return app, writes, clock


async def churn(app: TradeConsole, pilot: Any, clock: Any, steps: int, seed: int) -> None:
    """Rows, charts and the log changing in the same frames, a pause, the cursor moving."""
    rng = random.Random(seed)
    keys = app.table.visible_symbols()
    for step in range(steps):
        rows = {}
        for key in rng.sample(keys, 6):
            row = app.table.row(key)
            assert row is not None and row.last is not None
            rows[key] = msgspec.structs.replace(
                row, last=row.last + rng.choice((-0.25, 0.25)), ticks=row.ticks + 1)
        app.table.apply(rows, [])
        # The panels beside the table change in the same frames, on the same lines.
        rates = [rng.uniform(0, 500) for _ in range(step + 2)]
        app.charts.show_history(History(rate_total=rates, rate_by_feed={"tcp://x:1": rates},
                                        latency_p50_us=rates[::-1], latency_p99_us=rates))
        if step % 3 == 0:
            app.telemetry.add([TelemetryRecord("pub-1", "logs", "WARNING",
                                               f"slow consumer {step}", clock.wall_ns())])
            app.telemetry.refresh_view()
        if step % 10 == 3:
            app.toggle_pause()
        if step % 7 == 0:
            await pilot.press("down")
        await pilot.pause()


@pilot_test
async def test_the_consoles_own_frames_diffed_show_the_same_screen() -> None:
    app, writes, clock = recorded_console(seed=3)
    async with app.run_test(size=(160, 45)) as pilot:
        await pilot.pause()
        app.screen.refresh()  # the first write is the whole screen
        await pilot.pause()
        await churn(app, pilot, clock, steps=40, seed=5)
        updates = len(writes)
        app.screen.refresh()  # now the whole screen, as one update
        await pilot.pause()
    raw, _, sent = both(writes[:updates], 160, 45)
    assert raw.text()[0].strip(), "the frames drew nothing"
    assert len(sent) < sum(map(len, writes[:updates])) / 3, "the diff saved less than two thirds"
    # The partial updates (several crops per frame, see console.ui.clustered_compositor)
    # left the screen exactly as one full repaint draws it.
    repainted = VtScreen(160, 45)
    repainted.feed("".join(writes[updates:]))
    assert repainted.cells == raw.cells


def test_the_cursor_is_placed_only_while_it_is_shown() -> None:
    diff = OutputDiff()
    diff.feed(frame((0, 0, "abc", BASE)))
    ends_at_home = frame((0, 1, "X", BASE)) + "\x1b[1;1H"
    assert diff.feed(ends_at_home).endswith("\x1b[1;1H")
    assert diff.feed("\x1b[?25l") == "\x1b[?25l"
    assert not diff.feed(frame((0, 1, "Y", BASE)) + "\x1b[1;1H").endswith("\x1b[1;1H")


def test_writes_cut_anywhere_show_the_same_screen() -> None:
    """Textual writes in 8 KiB chunks on Windows: a cut may fall inside text or an
    escape sequence, and the next write goes on from where the cut left off."""
    frames = [frame((0, 0, "ESZ6.CME   5,501.00", BASE), (2, 4, "▲0.75", FLASH)),
              frame((0, 11, "5,501.25", BASE), (2, 4, "▼0.50", BASE), (4, 0, "end", ""))]
    for size in (1, 3, 7, 11):
        chunks = [text[i:i + size] for text in frames for i in range(0, len(text), size)]
        both(chunks)


@pilot_test
async def test_cells_put_without_their_ansi_send_what_the_ansi_would() -> None:
    """The console's partial updates as runs (SpanUpdate.runs into OutputDiff.put): the
    same bytes as diffing their ANSI, and the same screen as the raw ANSI."""
    app, writes, clock = recorded_console(seed=4)
    updates: list[Any] = []
    capture_frames(app, writes, updates)
    async with app.run_test(size=(160, 45)) as pilot:
        await pilot.pause()
        app.screen.refresh()
        await pilot.pause()
        await churn(app, pilot, clock, steps=30, seed=6)
    raw, fed, put = VtScreen(160, 45), OutputDiff(), OutputDiff()
    via_put = VtScreen(160, 45)
    puts = 0
    for write, update in zip(writes, updates, strict=True):
        raw.feed(write)
        expected = fed.feed(write)
        runs = update.runs(app.console) if isinstance(update, SpanUpdate) else None
        if runs is not None and put.put(runs):
            puts += 1
            sent = put.feed("")
        else:
            sent = put.feed(write)
        assert sent == expected
        via_put.feed(sent)
        assert via_put.cells == raw.cells
    assert puts > 20, f"only {puts} updates went as runs"


def test_runs_it_does_not_follow_are_refused_and_change_nothing() -> None:
    diff = OutputDiff()
    first = frame((0, 0, "hello", BASE))
    diff.feed(first)
    for text in ("漢字", "a\x07b", "tab\there", "\x1b[2J"):
        assert diff.put([(0, 0, "ok", BASE), (0, 2, text, None)]) is False
        assert diff.feed(first) == "", f"{text!r} left something in the model"
    assert diff.put([(0, 0, "HE", BASE)])
    screen = VtScreen(10, 1)
    screen.feed(first + diff.feed(""))
    assert screen.text()[0].startswith("HEllo")


def test_a_link_or_control_segment_goes_as_ansi() -> None:
    strip = Strip([Segment("click", Style(link="https://example.com"))])
    update = SpanUpdate([{0: strip}], [(0, 0, 5)], [[5]])
    assert update.runs(Console()) is None
    plain = SpanUpdate([{0: Strip([Segment("plain", Style(bold=True))])}], [(0, 0, 5)], [[5]])
    assert plain.runs(Console()) == [(0, 0, "plain", "1")]


class _Terminal(Driver):
    """A driver writing to a list: the diffing mixin's write path, without a tty."""

    def __init__(self) -> None:
        self.written: list[str] = []

    def write(self, data: str) -> None:
        self.written.append(data)

    def start_application_mode(self) -> None:
        pass

    def disable_input(self) -> None:
        pass

    def stop_application_mode(self) -> None:
        pass


def test_cells_put_before_the_screen_is_forgotten_are_still_written() -> None:
    driver: Any = diffing(_Terminal)()
    first = frame((0, 0, "hello", BASE))
    driver.write(first)
    assert driver.put([(0, 0, "J", BASE)])
    driver.forget_screen()          # a resize, from the input thread
    driver.write(first)             # the next frame: whole, after the put cell
    screen = VtScreen(10, 1)
    screen.feed("".join(driver.written))
    assert screen.text()[0].startswith("hello")
    assert "J" in driver.written[1]
    # The model was forgotten: the same frame is written in full once more, then not.
    before = len(driver.written)
    driver.write(first)
    assert len(driver.written) == before


def test_runs_carry_the_pen_from_segment_to_segment_as_the_ansi_does() -> None:
    """A styled segment is reset after it; unstyled ones, and styles with no codes,
    go on in the pen before them (here an underline a previous write left set)."""
    segments = [Segment("b"), Segment("A", Style(bold=True)), Segment("c"), Segment("d", Style()),
                Segment("", Style(italic=True)), Segment("e")]
    update = SpanUpdate([{0: Strip(segments)}], [(0, 0, 5)], [[5]])
    console = Console(color_system="truecolor")
    runs = update.runs(console)
    assert runs is not None
    left_set = "\x1b[1;1Hxxxxx\x1b[4m"
    fed, put = OutputDiff(), OutputDiff()
    raw, via_put = VtScreen(6, 1), VtScreen(6, 1)
    for diff, screen in ((fed, raw), (put, via_put)):
        screen.feed(diff.feed(left_set))
    raw.feed(fed.feed(update.render_segments(console)))
    assert put.put(runs)
    via_put.feed(put.feed(""))
    assert via_put.cells == raw.cells
