"""The console app driven by Pilot against a real publisher process over ZeroMQ.

Every wait is a condition with a deadline; assertions read the table's public
API (`visible_symbols`, `row_text`, ...) or what the screen shows.
"""

from __future__ import annotations

import asyncio
import csv
import functools
import io
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from console.cli.run import make_tick_source
from console.ui.app import TradeConsole
from console.ui.commands import COMMANDS, action_name, normalize_key, split_keys
from console.ui.fixtures import FrozenGateway, FrozenSource, build_frozen_book
from console.ui.screens.detail import DetailScreen
from console.ui.screens.help import HelpScreen
from console.ui.screens.kill import KillSwitchScreen
from console.ui.widgets.feeds_panel import FeedsPanel
from console.ui.widgets.status_bar import StatusBar
from console.ui.widgets.tick_table import TickTable
from services.runtime.config import load_config

SYMBOLS = 12


def pilot_test(test: Callable[..., Awaitable[None]]) -> Callable[..., None]:
    """Run an async Pilot test on a fresh event loop (no async pytest plugin needed)."""
    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> None:
        asyncio.run(test(*args, **kwargs))
    return run


async def until(pilot: Any, predicate: Callable[[], Any], timeout: float = 15.0,
                what: str = "condition") -> Any:
    """Let the app run until `predicate()` is truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await pilot.pause(0.05)


def make_app(feeds: list[str], tmp_path: Path, *, readonly: bool = False,
             gateway: Any = None, quiet: bool = False, **overrides: Any) -> TradeConsole:
    # A low frame rate leaves the CPU idle between frames: Pilot waits for an
    # idle CPU after every key press, so this keeps the tests quick.
    values = {"console.readonly": readonly, "console.fps": 5, **overrides}
    config = load_config(use_user_file=False, env={}, overrides=values)
    return TradeConsole(config, source=make_tick_source(feeds, config), gateway=gateway,
                        data_dir=tmp_path / "data", freeze_gc=False, quiet=quiet)


def status_text(app: TradeConsole) -> str:
    return " ".join(str(label.content) for label in app.query_one(StatusBar).query("Label")
                    if label.display and not label.has_class("-hidden"))


@pytest.fixture
def feed(services: Any) -> str:
    proc = services.publisher("--symbols", str(SYMBOLS), "--rate", "150", "--seed", "7",
                              "--node", "pub-ui")
    return str(proc.endpoints["pub"])


@pilot_test
async def test_ticks_appear_with_exchange_tabs(feed: str, tmp_path: Path) -> None:
    app = make_app([feed], tmp_path)
    async with app.run_test(size=(160, 45)) as pilot:
        table = app.query_one(TickTable)
        await until(pilot, lambda: table.row_count == SYMBOLS, what="every symbol")
        assert "BTCUSD.KRAKEN" in table.visible_symbols()
        row = table.row_text("BTCUSD.KRAKEN")
        assert row.startswith("BTCUSD.KRAKEN")
        assert "µs" in row or "ms" in row  # latency is known: the publisher adds envelopes
        tabs = [str(tab.label) for tab in app.query("#exchanges Tab")]
        assert tabs[0] == "All"
        assert {"KRAKEN", "CFFEX", "SHFE", "NASDAQ", "CME", "NYSE"} <= set(tabs)
        await until(pilot, lambda: "feeds 1/1 OK" in status_text(app), what="feed OK")
        feeds_text = str(app.query_one(FeedsPanel).content)
        assert feed in feeds_text and "connected" in feeds_text

        await pilot.press("2")  # the first exchange tab after All
        exchange = tabs[1]
        await until(pilot, lambda: table.exchange == exchange, what="tab switch")
        shown = table.visible_symbols()
        assert shown and all(s.endswith("." + exchange) for s in shown)
        await pilot.press("1")
        await until(pilot, lambda: table.row_count == SYMBOLS, what="All tab")


@pilot_test
async def test_filter_narrows_and_a_bad_regex_leaves_the_table(feed: str, tmp_path: Path) -> None:
    app = make_app([feed], tmp_path)
    async with app.run_test(size=(160, 45)) as pilot:
        table = app.query_one(TickTable)
        await until(pilot, lambda: table.row_count == SYMBOLS, what="every symbol")
        await pilot.press("slash", *"kraken")
        await until(pilot, lambda: table.row_count < SYMBOLS, what="filter applied")
        assert table.visible_symbols() == sorted(
            s for s in table.visible_symbols() if s.endswith(".KRAKEN"))
        assert all(s.endswith(".KRAKEN") for s in table.visible_symbols())
        narrowed = table.visible_symbols()

        # "re:kraken" is still valid; the trailing "(" makes it an invalid regex.
        await pilot.press("home", *"re:", "end", "left_parenthesis")
        await until(pilot, lambda: app.filter_bar.error is not None, what="regex error")
        assert "invalid regex" in str(app.filter_bar.query_one("#filter-status").content)
        assert table.visible_symbols() == narrowed  # unchanged

        await pilot.press("escape")
        await until(pilot, lambda: table.row_count == SYMBOLS, what="filter cleared")
        assert app.focused is table


@pilot_test
async def test_sort_keys_and_header_clicks(feed: str, tmp_path: Path) -> None:
    app = make_app([feed], tmp_path)
    async with app.run_test(size=(160, 45)) as pilot:
        table = app.query_one(TickTable)
        await until(pilot, lambda: table.row_count == SYMBOLS, what="every symbol")
        assert table.sort_column == "symbol"
        await pilot.press("s")
        assert (table.sort_column, table.sort_reverse) == ("last", False)  # next column
        await pilot.press("p")  # freeze the rows so the order can be checked
        # Clicking the "Ask" header sorts by ask; clicking it again reverses.
        start = table.column_offset("ask")
        assert start is not None
        await pilot.click(TickTable, offset=(start + 2, 0))
        assert (table.sort_column, table.sort_reverse) == ("ask", False)
        asks = [table.row(s).ask for s in table.visible_symbols()]
        assert asks == sorted(asks)
        await pilot.click(TickTable, offset=(start + 2, 0))
        assert (table.sort_column, table.sort_reverse) == ("ask", True)
        asks = [table.row(s).ask for s in table.visible_symbols()]
        assert asks == sorted(asks, reverse=True)
        assert "Ask▼" in table.column_titles_rendered()


@pilot_test
async def test_pause_freezes_the_table_and_counts_pending(feed: str, tmp_path: Path) -> None:
    app = make_app([feed], tmp_path)
    async with app.run_test(size=(160, 45)) as pilot:
        table = app.query_one(TickTable)
        await until(pilot, lambda: table.row_count == SYMBOLS, what="every symbol")
        await pilot.press("p")
        assert app.paused
        frozen = {s: table.row(s).ticks for s in table.visible_symbols()}
        await until(pilot, lambda: app.pending > 50, what="pending updates")
        assert {s: table.row(s).ticks for s in table.visible_symbols()} == frozen
        await until(pilot, lambda: "PAUSED" in status_text(app), what="PAUSED in status")
        await pilot.press("p")
        assert not app.paused and app.pending == 0
        assert sum(table.row(s).ticks for s in frozen) > sum(frozen.values())


@pilot_test
async def test_export_writes_the_filtered_sorted_rows(feed: str, tmp_path: Path) -> None:
    app = make_app([feed], tmp_path)
    async with app.run_test(size=(160, 45)) as pilot:
        table = app.query_one(TickTable)
        await until(pilot, lambda: table.row_count == SYMBOLS, what="every symbol")
        await pilot.press("slash", *"*.KRAKEN", "enter", "p")  # pause: a stable table
        expected = table.visible_symbols()
        await pilot.press("e")
        exports = await until(pilot, lambda: list((tmp_path / "data" / "exports").glob("*.csv")),
                              what="export file")
        with exports[0].open() as fh:
            rows = list(csv.DictReader(fh))
        assert [r["symbol"] for r in rows] == expected
        assert all(r["exchange"] == "KRAKEN" for r in rows)
        assert any(str(exports[0]) in notice for notice in app.notices)


@pilot_test
async def test_readonly_blocks_the_kill_switch(feed: str, tmp_path: Path) -> None:
    app = make_app([feed], tmp_path, readonly=True)
    async with app.run_test(size=(160, 45)) as pilot:
        await until(pilot, lambda: "READ-ONLY" in status_text(app), what="READ-ONLY")
        await pilot.press("k")
        await pilot.pause()
        assert not isinstance(app.screen, KillSwitchScreen)
        assert any("read-only" in notice for notice in app.notices)
        await pilot.press("R")
        await pilot.pause()
        assert app.screen is app.screen_stack[0]


@pilot_test
async def test_help_lists_every_command_and_the_legend(feed: str, tmp_path: Path) -> None:
    from console.ui.commands import COMMANDS

    app = make_app([feed], tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen), what="help")
        console = Console(width=200, record=True, file=io.StringIO())
        console.print(app.screen.query_one("#help-commands").content)
        console.print(app.screen.query_one("#help-legend").content)
        text = console.export_text()
        for command in COMMANDS:
            assert f" {command.name}" in text, command.name
        assert "kill_switch *" in text  # state-changing marker
        assert "no envelope" in text and "STALE" in text
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


@pilot_test
async def test_small_terminal_collapses_panels_into_views(feed: str, tmp_path: Path) -> None:
    app = make_app([feed], tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        table = app.query_one(TickTable)
        await until(pilot, lambda: table.row_count == SYMBOLS, what="every symbol")
        assert not app.query_one("#side").display
        assert app.query_one("#views").display
        assert "Last" in table.column_titles() and "Age" in table.column_titles()
        assert table.size.width >= 70
        await pilot.press("v")  # Feeds
        assert app.query_one(FeedsPanel).display
        assert not app.query_one("#ticks-pane").display
        assert feed in str(app.query_one(FeedsPanel).content)
        await pilot.press("slash")  # the filter brings the ticks back
        assert app.query_one("#ticks-pane").display


@pilot_test
async def test_enter_opens_the_detail_pane(feed: str, tmp_path: Path) -> None:
    app = make_app([feed], tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        table = app.query_one(TickTable)
        await until(pilot, lambda: table.row_count == SYMBOLS, what="every symbol")
        assert table.select("BTCUSD.KRAKEN")
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, DetailScreen), what="detail pane")
        summary = app.screen.query_one("#detail-summary")
        await until(pilot, lambda: "last" in str(summary.content), what="detail data")
        assert "Bitcoin" in str(summary.content)
        depth = app.screen.query_one("#detail-depth").content
        assert [c.header for c in depth.columns] == ["BidSz", "Bid", "Ask", "AskSz"]
        assert depth.row_count == 5
        await until(pilot, lambda: "last ticks\n-" in str(
            app.screen.query_one("#detail-recent").content), what="recent ticks")
        await pilot.press("escape")
        assert not isinstance(app.screen, DetailScreen)


@pilot_test
async def test_r_records_the_feed_to_the_data_dir(feed: str, tmp_path: Path) -> None:
    from services.recording import RecordingReader

    app = make_app([feed], tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        table = app.query_one(TickTable)
        await until(pilot, lambda: table.row_count == SYMBOLS, what="every symbol")
        await pilot.press("r")
        files = await until(pilot, lambda: list((tmp_path / "data" / "recordings").iterdir()),
                            what="recording file")
        await until(pilot, lambda: "● REC" in status_text(app), what="REC in status")
        start = app.received_total
        await until(pilot, lambda: app.received_total > start + 200, what="frames recorded")
        await pilot.press("r")
        await until(pilot, lambda: "● REC" not in status_text(app), what="REC cleared")
    assert any("Recording stopped" in notice for notice in app.notices)
    records = list(RecordingReader(files[0]))
    assert len(records) > 100


def frozen_console(config_file: Path | None = None, **console: Any) -> TradeConsole:
    """The app on the frozen deterministic feed and a canned gateway: no sockets."""
    book, clock = build_frozen_book(symbols=8, ticks=80)
    config = load_config(config_file, use_user_file=False, env={},
                         overrides={f"console.{k}": v for k, v in console.items()})
    return TradeConsole(config, source=FrozenSource(book),
                        gateway=FrozenGateway(clock_ns=clock.mono_ns), clock_ns=clock.mono_ns,
                        wall_ns=clock.wall_ns, freeze_gc=False)


@pytest.mark.parametrize("readonly", [False, True])
@pilot_test
async def test_readonly_refuses_every_state_changing_command(readonly: bool) -> None:
    """Read-only follows the registry: any command flagged state_changing is refused.

    Each action is replaced by a recorder, so what is checked is that the key
    (or the palette's `run_command`) never reaches it under read-only, and
    that it does otherwise: a new flagged command is covered without edits here.
    """
    flagged = [c for c in COMMANDS if c.state_changing]
    assert flagged
    app = frozen_console(readonly=readonly)
    ran: list[str] = []
    for command in flagged:
        name = action_name(command.action)
        setattr(app, f"action_{name}", functools.partial(ran.append, command.name))
    async with app.run_test(size=(100, 30)) as pilot:
        for command in flagged:
            before = len(app.notices)
            await pilot.press(normalize_key(split_keys(command.keys)[0]))
            await app.run_command(command.name)
            await pilot.pause()
            assert app.screen is app.screen_stack[0], command.name
            refusals = [n for n in list(app.notices)[before:] if "read-only" in n]
            assert len(refusals) == (2 if readonly else 0), (command.name, refusals)
    expected = [] if readonly else [name for c in flagged for name in (c.name, c.name)]
    assert ran == expected


@pilot_test
async def test_keys_section_rebinds_through_the_keymap(tmp_path: Path) -> None:
    config = tmp_path / "console.toml"
    config.write_text('[keys]\nhelp = "f1"\nheartbeat = "h,ctrl+h"\n')
    app = frozen_console(config)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("question_mark")  # no longer bound
        await pilot.pause()
        assert not isinstance(app.screen, HelpScreen)
        await pilot.press("f1")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen), what="help on f1")
        await pilot.press("escape")
        await pilot.press("ctrl+h")
        await until(pilot, lambda: app.last_heartbeat is not None, what="heartbeat on ctrl+h")
