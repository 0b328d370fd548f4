"""Several gateways in one console, against real gateway processes.

Three gateways (paper-a, paper-b, paper-c) priced by one publisher, each
with a working order; the console links to all three, one link process each.
What a gateway did is asked from the gateway itself (tests.ui.test_gateway's
plain REQ probe), never taken from the console's view.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Button, Input, Label, OptionList

from console.cli.run import make_gateway_client
from console.feed.ingest import Ingest
from console.link.fleet import LinkedGateway
from console.link.gateways import GatewaySpec
from console.ui.app import TradeConsole
from console.ui.fixtures import FrozenGateway, FrozenSource, build_frozen_book
from console.ui.screens.guarded import DONE, UNDELIVERED
from console.ui.screens.kill import KillSwitchScreen
from console.ui.screens.kill_scope import ALL, KillScopeScreen
from console.ui.widgets.gateway_panel import GatewayPanel
from console.ui.widgets.status_bar import StatusBar
from services.runtime.config import load_config
from tests.ui.test_app import pilot_test, status_text, until
from tests.ui.test_gateway import ask_gateway

NAMES = ("paper-a", "paper-b", "paper-c")


@pytest.fixture
def fleet(services: Any, tmp_path: Path) -> dict[str, Any]:
    """A publisher and three gateways fed by it, each with one working order."""
    pub = services.publisher("--symbols", "6", "--rate", "20", "--seed", "3")
    gateways = {name: services.gateway("--feed", pub.endpoints["pub"], "--node", f"gw-{name}",
                                       state_dir=tmp_path / f"state-{name}")
                for name in NAMES}
    for gateway in gateways.values():
        ask_gateway(gateway.endpoints["cmd"], "OPEN_ORDER", {
            "vt_symbol": "BTCUSD.KRAKEN", "side": "BUY", "qty": 1.0, "type": "LIMIT",
            "price": 1.0})
    return {"pub": pub.endpoints["pub"], "gateways": gateways}


def fleet_app(fleet: dict[str, Any], tmp_path: Path) -> TradeConsole:
    overrides = {"console.poll_interval_s": 0.5, "console.fps": 5,
                 "console.request_timeout_ms": 300, "console.request_retries": 2}
    config = load_config(use_user_file=False, env={}, overrides=overrides)
    linked = [
        LinkedGateway(GatewaySpec(name, gw.endpoints["cmd"]),
                      make_gateway_client(gw.endpoints["cmd"], config,
                                          client_id=f"ui-test-{name}"))
        for name, gw in fleet["gateways"].items()
    ]
    feeds = [fleet["pub"], *(gw.endpoints["pub"] for gw in fleet["gateways"].values())]
    return TradeConsole(config, source=Ingest(feeds, config=config), gateways=linked,
                        data_dir=tmp_path / "data", freeze_gc=False)


def trading_state(fleet: dict[str, Any], name: str) -> str:
    return ask_gateway(fleet["gateways"][name].endpoints["cmd"], "GET_STATUS")["trading_state"]


def panel_text(app: TradeConsole) -> str:
    return str(app.query_one(GatewayPanel).content)


async def all_up(pilot: Any, app: TradeConsole) -> None:
    for name in NAMES:
        await until(pilot, lambda n=name: f"{n} UP" in status_text(app), what=f"{name} UP")


async def open_kill(pilot: Any, app: TradeConsole, scope: str) -> KillSwitchScreen:
    """`k`, then the scope (a gateway's name or ALL) from the scope list."""
    await pilot.press("k")
    await until(pilot, lambda: isinstance(app.screen, KillScopeScreen), what="scope list")
    options = app.screen.query_one(OptionList)
    ids = [options.get_option_at_index(i).id for i in range(options.option_count)]
    options.highlighted = ids.index(scope)
    await pilot.press("enter")
    await until(pilot, lambda: isinstance(app.screen, KillSwitchScreen), what="kill modal")
    assert isinstance(app.screen, KillSwitchScreen)
    return app.screen


async def arm_and_fire(pilot: Any, modal: KillSwitchScreen, phrase: str) -> None:
    confirm = modal.query_one("#confirm", Input)
    confirm.focus()
    await pilot.press(*phrase)
    assert not modal.query_one("#fire", Button).disabled
    await pilot.click("#fire")


@pilot_test
async def test_badges_totals_and_selection(fleet: dict[str, Any], tmp_path: Path) -> None:
    app = fleet_app(fleet, tmp_path)
    async with app.run_test(size=(160, 45)) as pilot:
        await all_up(pilot, app)
        await until(pilot, lambda: "Working orders (3)" in panel_text(app), what="all orders")
        text = panel_text(app)
        assert "TOTAL" in text and all(name in text for name in NAMES)
        total_line = next(line for line in text.splitlines() if "TOTAL" in line)
        assert total_line.split()[-2:] == ["0", "3"]  # positions, working orders
        await pilot.press("g")  # all -> paper-a
        await until(pilot, lambda: "Working orders (1)" in panel_text(app), what="one gateway")
        assert panel_text(app).startswith("paper-a") and "TOTAL" not in panel_text(app)
        await pilot.press("g", "g", "g")  # -> paper-b -> paper-c -> all
        await until(pilot, lambda: "TOTAL" in panel_text(app), what="all gateways again")


@pilot_test
async def test_kill_one_gateway_leaves_the_others_active(
    fleet: dict[str, Any], tmp_path: Path
) -> None:
    app = fleet_app(fleet, tmp_path)
    async with app.run_test(size=(160, 45)) as pilot:
        await until(pilot, lambda: "Working orders (3)" in panel_text(app), what="scope")
        modal = await open_kill(pilot, app, "paper-b")
        assert modal.phrase == "KILL" and "paper-b" in modal.title_text
        await arm_and_fire(pilot, modal, "KILL")
        await until(pilot, lambda: modal.state == DONE, what="kill reply")
        assert [trading_state(fleet, n) for n in NAMES] == ["ACTIVE", "HALTED", "ACTIVE"]
        await pilot.press("escape")
        await until(pilot, lambda: "paper-b UP" in status_text(app)
                    and "1/3 HALTED" in status_text(app), what="one of three HALTED")


@pilot_test
async def test_kill_all_halts_the_live_ones_and_reports_the_dead_one(
    fleet: dict[str, Any], tmp_path: Path
) -> None:
    app = fleet_app(fleet, tmp_path)
    async with app.run_test(size=(160, 45)) as pilot:
        await all_up(pilot, app)
        fleet["gateways"]["paper-c"].signal(signal.SIGKILL)
        await until(pilot, lambda: "paper-c DOWN" in status_text(app), what="paper-c DOWN")
        await until(pilot, lambda: "paper-a UP" in status_text(app)
                    and "paper-b UP" in status_text(app), what="the others still UP")
        modal = await open_kill(pilot, app, ALL)
        assert modal.phrase == "KILL ALL"
        scope = str(modal.query_one("#scope").content)
        assert all(name in scope for name in NAMES)
        await arm_and_fire(pilot, modal, "KILL ALL")
        await until(pilot, lambda: modal.state == UNDELIVERED, 20.0, what="every outcome")
        assert [trading_state(fleet, n) for n in NAMES[:2]] == ["HALTED", "HALTED"]
        lines = modal.status_text.splitlines()
        assert next(line for line in lines if line.startswith("paper-c:")) \
            .startswith("paper-c: NOT DELIVERED")
        for name in NAMES[:2]:
            assert next(line for line in lines if line.startswith(f"{name}:")) \
                .startswith(f"{name}: HALTED · incident ")
        retry = modal.query_one("#retry", Button)
        assert retry.display
        dead = next(t for t in modal.targets if t.name == "paper-c")
        req_id = dead.req_id
        await pilot.click("#retry")  # paper-c is still dead: not delivered again, same req_id
        await until(pilot, lambda: modal.state == UNDELIVERED and dead.reply is not None
                    and dead.reply.req_id == req_id, 20.0, what="retry outcome")
        assert dead.req_id == req_id


@pilot_test
async def test_four_gateways_fold_to_fit_80_columns() -> None:
    """At 80x24 four badges do not fit beside the rest of the bar: they fold into counts,
    and the bar never runs past the screen; at 160 columns each gets its badge."""
    book, clock = build_frozen_book(symbols=12, ticks=200, seed=7)
    config = load_config(use_user_file=False, env={})
    gateways = []
    for index in range(4):
        link = FrozenGateway(endpoint=f"tcp://127.0.0.1:{6000 + index}", clock_ns=clock.mono_ns)
        if index == 1:
            link.trading_state, link.incident_id = "HALTED", "INC-7"
        link.down = index == 3
        gateways.append(LinkedGateway(GatewaySpec(f"desk-{index}", link.endpoint), link))
    app = TradeConsole(config, source=FrozenSource(book), gateways=gateways,
                       clock_ns=clock.mono_ns, wall_ns=clock.wall_ns, freeze_gc=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: "GW 3/4 UP · 1 HALTED" in status_text(app), what="folded")
        assert "desk-0" not in status_text(app)
        await pilot.pause()  # the layout that follows the new text
        labels = [label for label in app.query_one(StatusBar).query(Label) if label.display]
        assert max(label.region.right for label in labels) <= 80
        await pilot.resize_terminal(160, 45)
        await until(pilot, lambda: "desk-3 DOWN" in status_text(app), what="four badges")
        assert all(f"desk-{i} UP" in status_text(app) for i in range(3))
        assert "HALTED" in status_text(app).split("desk-1", 1)[1].split("desk-2", 1)[0]


@pilot_test
async def test_a_node_change_under_one_endpoint_is_shown() -> None:
    book, clock = build_frozen_book(symbols=6, ticks=60, seed=7)
    config = load_config(use_user_file=False, env={})
    links = [FrozenGateway(endpoint=f"tcp://127.0.0.1:{6100 + i}", clock_ns=clock.mono_ns,
                           node=f"gw-{i}") for i in range(2)]
    gateways = [LinkedGateway(GatewaySpec(f"desk-{i}", link.endpoint), link)
                for i, link in enumerate(links)]
    app = TradeConsole(config, source=FrozenSource(book), gateways=gateways,
                       clock_ns=clock.mono_ns, wall_ns=clock.wall_ns, freeze_gc=False)
    async with app.run_test(size=(160, 45)) as pilot:
        await until(pilot, lambda: "desk-1 UP" in status_text(app), what="badges")
        links[1].node = "gw-standby"
        clock.advance(1_000_000_000)  # a frame after the quiet pace's next wake-up
        await until(pilot, lambda: any("desk-1" in n and "node changed from gw-1 to gw-standby"
                                       in n for n in app.notices), what="node change notice")
        assert not any("desk-0" in n and "node changed" in n for n in app.notices)


def one_gateway_app(readonly: bool) -> tuple[TradeConsole, FrozenGateway]:
    book, clock = build_frozen_book(symbols=6, ticks=60, seed=7)
    link = FrozenGateway(clock_ns=clock.mono_ns)
    spec = GatewaySpec("prod", link.endpoint, readonly=readonly)
    app = TradeConsole(load_config(use_user_file=False, env={}), source=FrozenSource(book),
                       gateways=[LinkedGateway(spec, link)], clock_ns=clock.mono_ns,
                       wall_ns=clock.wall_ns, freeze_gc=False)
    return app, link


@pilot_test
async def test_one_read_only_gateway_refuses_kill_and_resume() -> None:
    app, link = one_gateway_app(readonly=True)
    async with app.run_test(size=(160, 45)) as pilot:
        await pilot.press("k")
        await until(pilot, lambda: any("read-only" in n for n in app.notices), what="refusal")
        await pilot.press("R")
        await pilot.pause()
        assert not isinstance(app.screen, KillSwitchScreen)
        assert not any(action in ("KILL_SWITCH", "RESUME_TRADING") for action, *_ in link.requests)


@pilot_test
async def test_one_gateway_kill_reaches_its_trading_state() -> None:
    app, _link = one_gateway_app(readonly=False)
    async with app.run_test(size=(160, 45)) as pilot:
        await pilot.press("k")
        await until(pilot, lambda: isinstance(app.screen, KillSwitchScreen), what="kill modal")
        modal = app.screen
        assert isinstance(modal, KillSwitchScreen)
        await arm_and_fire(pilot, modal, "KILL")
        await until(pilot, lambda: any("Trading HALTED, incident INC-0001" in n
                                       for n in app.notices), what="the halt noticed")
        assert app.trading.halted and app.trading.incident_id == "INC-0001"
