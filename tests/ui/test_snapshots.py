"""Snapshot tests of the console at 80x24 and 160x45, from a frozen deterministic feed.

The feed is a FeedBook filled from `Market(symbols, seed=42)` under a stepping
clock that is then frozen, and the gateway is a canned one: no sockets, and
nothing that changes between frames, so the SVGs are the same on every run.
Regenerate with `pytest tests/ui/test_snapshots.py --snapshot-update` and look
at the SVGs before committing them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from textual.widgets import Input

from console.link.fleet import LinkedGateway
from console.link.gateways import GatewaySpec
from console.ui.app import TradeConsole
from console.ui.fixtures import FrozenGateway, FrozenSource, build_frozen_book
from services.runtime.config import load_config

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((160, 45), id="160x45")]


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Log timestamps are local time: pin the zone so the screens do not depend on it."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def frozen_app(**console: Any) -> TradeConsole:
    book, clock = build_frozen_book(symbols=24, ticks=600, seed=42)
    overrides = {f"console.{key}": value for key, value in console.items()}
    config = load_config(use_user_file=False, env={}, overrides=overrides)
    return TradeConsole(
        config, source=FrozenSource(book), gateway=FrozenGateway(clock_ns=clock.mono_ns),
        clock_ns=clock.mono_ns, wall_ns=clock.wall_ns, freeze_gc=False,
    )


async def steady_cursor(pilot: Any) -> None:
    """A blinking cursor would make the picture depend on timing."""
    for field in pilot.app.screen.query(Input):
        field.cursor_blink = False
    await pilot.pause()


@pytest.mark.parametrize("size", SIZES)
def test_main_view(snap_compare: Any, size: tuple[int, int]) -> None:
    assert snap_compare(frozen_app(), terminal_size=size)


@pytest.mark.parametrize("size", SIZES)
def test_filter_active(snap_compare: Any, size: tuple[int, int]) -> None:
    async def type_filter(pilot: Any) -> None:
        await pilot.press("slash", *"*.kraken")
        await steady_cursor(pilot)

    assert snap_compare(frozen_app(), terminal_size=size, run_before=type_filter)


@pytest.mark.parametrize("size", SIZES)
def test_kill_modal(snap_compare: Any, size: tuple[int, int]) -> None:
    async def open_kill(pilot: Any) -> None:
        await pilot.press("k", *"KIL")  # partly typed: Fire must still look disabled
        await steady_cursor(pilot)

    assert snap_compare(frozen_app(), terminal_size=size, run_before=open_kill)


@pytest.mark.parametrize("size", SIZES)
def test_help(snap_compare: Any, size: tuple[int, int]) -> None:
    assert snap_compare(frozen_app(), terminal_size=size, press=["question_mark"])


def test_halted_readonly_status(snap_compare: Any) -> None:
    """HALTED banner and READ-ONLY marker, at the smallest supported size."""
    app = frozen_app(readonly=True)
    assert isinstance(app.gateway, FrozenGateway)
    app.gateway.trading_state, app.gateway.incident_id = "HALTED", "INC-0001"
    app.gateway.reason = "fat finger"
    assert snap_compare(app, terminal_size=(80, 24))


# Rules that hold on the frozen feed and the canned account: one per kind of subject.
SNAPSHOT_RULES = [
    {"name": "feed-slow", "metric": "feed.msgs_per_s", "op": "<", "threshold": 1000.0,
     "for": 0, "message": "feed {feed} slow: {value:.0f} msg/s (< {threshold:g})"},
    {"name": "position-size", "for": 0, "threshold": 0.0, "severity": "critical"},
]


@pytest.mark.parametrize("size", SIZES)
def test_alerts_view(snap_compare: Any, size: tuple[int, int]) -> None:
    """Firing alerts on feeds and positions, the first acknowledged, in the Alerts view."""
    book, clock = build_frozen_book(symbols=24, ticks=600, seed=42)
    config = load_config(use_user_file=False, env={},
                         overrides={"alerts.rules": SNAPSHOT_RULES, "alerts.toast": False})
    app = TradeConsole(
        config, source=FrozenSource(book), gateway=FrozenGateway(clock_ns=clock.mono_ns),
        clock_ns=clock.mono_ns, wall_ns=clock.wall_ns, freeze_gc=False,
    )

    async def fire_and_ack(pilot: Any) -> None:
        await pilot.pause()
        evaluations = app.alert_watch.engine.evaluations
        clock.advance(2 * 1_000_000_000)  # the next evaluation sees the polled positions
        deadline = time.monotonic() + 10.0
        while app.alert_watch.engine.evaluations == evaluations:
            assert time.monotonic() < deadline, "no evaluation after the clock moved"
            await pilot.pause(0.02)
        await pilot.press("a", "x", "down")
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=fire_and_ack)


def test_kill_modal_no_color(snap_compare: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Under NO_COLOR the selected kill mode is spelled out, not shown by colour alone."""
    monkeypatch.setenv("NO_COLOR", "1")
    app = frozen_app()

    async def choose_halt(pilot: Any) -> None:
        await pilot.press("k")
        await pilot.click("#mode-halt")
        await steady_cursor(pilot)
        labels = [str(button.label) for button in pilot.app.screen.query("RadioButton")]
        assert labels[0].startswith("( ) FLATTEN") and labels[1].startswith("(●) HALT")

    assert snap_compare(app, terminal_size=(80, 24), run_before=choose_halt)


# --- several gateways -----------------------------------------------------------------------


def fleet_app(count: int = 3) -> TradeConsole:
    """Three gateways (paper-a UP and ACTIVE, paper-b HALTED, paper-c DOWN), or `count`."""
    book, clock = build_frozen_book(symbols=24, ticks=600, seed=42)
    config = load_config(use_user_file=False, env={})
    gateways = []
    for index in range(count):
        name = f"paper-{chr(ord('a') + index)}"
        link = FrozenGateway(endpoint=f"tcp://127.0.0.1:{5555 + 10 * index}",
                             clock_ns=clock.mono_ns, node=f"gw-{name}",
                             account_id=f"PAPER-{index + 1}")
        if index == 1:
            link.trading_state, link.incident_id = "HALTED", "INC-0042"
            link.reason = "runaway strategy"
        if index == 2:
            link.down = True
        gateways.append(LinkedGateway(GatewaySpec(name, link.endpoint), link))
    return TradeConsole(config, source=FrozenSource(book), gateways=gateways,
                        clock_ns=clock.mono_ns, wall_ns=clock.wall_ns, freeze_gc=False)


@pytest.mark.parametrize("size", SIZES)
def test_three_gateways(snap_compare: Any, size: tuple[int, int]) -> None:
    """A badge per gateway (UP, HALTED, DOWN), the HALTED banner naming paper-b, and (wide)
    the accounts of all three with their totals and a gateway column."""
    async def settle(pilot: Any) -> None:
        await pilot.pause()
        if size[0] < 100:
            await pilot.press("v", "v")  # the gateway panel, one view at a time
        await pilot.pause()

    assert snap_compare(fleet_app(), terminal_size=size, run_before=settle)


def test_kill_all_modal(snap_compare: Any) -> None:
    """`k` with several gateways asks for the scope; ALL lists what each gateway will touch
    and wants KILL ALL."""
    async def choose_all(pilot: Any) -> None:
        await pilot.press("k")
        await pilot.pause()
        await pilot.press("enter")  # ALL is highlighted while every gateway is shown
        await pilot.press(*"KILL AL")
        await steady_cursor(pilot)

    assert snap_compare(fleet_app(), terminal_size=(160, 45), run_before=choose_all)
