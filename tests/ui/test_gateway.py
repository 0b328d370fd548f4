"""The console's gateway features against a real gateway process (and a real feed).

The gateway's own state is checked with a plain REQ socket (GET_STATUS), so a
test never trusts the console's view of what it just did.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import zmq
from textual.widgets import Button, Input

from console.cli.run import make_gateway_client
from console.feed.ingest import Ingest
from console.ui.app import TradeConsole
from console.ui.fixtures import FrozenGateway, FrozenSource, build_frozen_book
from console.ui.screens.guarded import DONE, UNDELIVERED
from console.ui.screens.kill import KillSwitchScreen
from console.ui.screens.resume import ResumeScreen
from console.ui.widgets.gateway_panel import GatewayPanel
from console.ui.widgets.status_bar import HaltedBanner
from services.protocol import decode_reply, encode_request, make_request
from services.runtime.config import load_config
from tests.conftest import wait_until
from tests.ui.test_app import pilot_test, status_text, until

SYMBOL = "BTCUSD.KRAKEN"


def request(endpoint: str, action: str, payload: dict[str, Any] | None = None) -> Any:
    """One request on a fresh REQ socket: the gateway's answer, not the console's belief."""
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        sock.connect(endpoint)
        sock.send(encode_request(make_request(action, payload, client_id="ui-test-probe")))
        assert sock.poll(10_000), f"gateway did not answer {action}"
        return decode_reply(sock.recv())
    finally:
        sock.close()


def ask_gateway(endpoint: str, action: str, payload: dict[str, Any] | None = None) -> Any:
    reply = request(endpoint, action, payload)
    assert reply["status"] == "SUCCESS", reply
    return reply["data"]


@pytest.fixture
def fabric(services: Any, tmp_path: Path) -> dict[str, str]:
    """A publisher, and a gateway priced by it, with one position and one working order."""
    pub = services.publisher("--symbols", "6", "--rate", "20", "--seed", "3")
    gw = services.gateway("--feed", pub.endpoints["pub"])
    cmd = gw.endpoints["cmd"]

    def bought() -> bool:  # refused (NOT_FOUND) until the gateway has seen a price
        return request(cmd, "OPEN_ORDER", {"vt_symbol": SYMBOL, "side": "BUY", "qty": 0.5,
                                           "type": "MARKET"})["status"] == "SUCCESS"

    wait_until(bought, timeout=15, interval=0.1, message="a filled market order")
    ask_gateway(cmd, "OPEN_ORDER", {"vt_symbol": SYMBOL, "side": "BUY", "qty": 1.0,
                                    "type": "LIMIT", "price": 1.0})
    return {"pub": pub.endpoints["pub"], "cmd": cmd, "events": gw.endpoints["pub"]}


def make_app(fabric: dict[str, str], tmp_path: Path, **console: Any) -> TradeConsole:
    # A low frame rate keeps the process idle between frames, so Pilot's key
    # presses (which wait for an idle CPU) stay quick on a loaded machine.
    overrides = {"console.poll_interval_s": 0.5, "console.fps": 5,
                 **{f"console.{k}": v for k, v in console.items()}}
    config = load_config(use_user_file=False, env={}, overrides=overrides)
    client = make_gateway_client(fabric["cmd"], config, client_id="ui-test-console")
    source = Ingest([fabric["pub"], fabric["events"]], config=config)
    return TradeConsole(config, source=source, gateway=client, data_dir=tmp_path / "data",
                        freeze_gc=False)


@pilot_test
async def test_heartbeat_key_shows_the_round_trip(fabric: dict[str, str], tmp_path: Path) -> None:
    app = make_app(fabric, tmp_path)
    async with app.run_test(size=(160, 45)) as pilot:
        await until(pilot, lambda: "GW UP" in status_text(app), what="gateway UP")
        await pilot.press("h")
        await until(pilot, lambda: any("Heartbeat RTT" in n for n in app.notices),
                    what="heartbeat notice")
        assert app.last_heartbeat is not None and app.last_heartbeat.ok
        assert app.last_heartbeat.rtt_ms is not None and app.last_heartbeat.rtt_ms > 0
        panel = app.query_one(GatewayPanel)
        await until(pilot, lambda: "Positions (1)" in str(panel.content), what="positions")
        text = str(panel.content)
        assert SYMBOL in text and "Working orders (1)" in text and "ago)" in text


@pilot_test
async def test_kill_switch_is_guarded_then_halts(fabric: dict[str, str], tmp_path: Path) -> None:
    app = make_app(fabric, tmp_path)
    async with app.run_test(size=(160, 45)) as pilot:
        panel = app.query_one(GatewayPanel)
        await until(pilot, lambda: "Working orders (1)" in str(panel.content), what="scope")
        await pilot.press("k")
        await until(pilot, lambda: isinstance(app.screen, KillSwitchScreen), what="kill modal")
        modal = app.screen
        assert isinstance(modal, KillSwitchScreen)
        scope = str(modal.query_one("#scope").content)
        assert "1 working order(s)" in scope and SYMBOL in scope
        fire = modal.query_one("#fire", Button)

        for partial in ("KIL", "kill", "KILL!"):
            confirm = modal.query_one("#confirm", Input)
            confirm.value = ""
            confirm.focus()
            await pilot.press(*partial)
            assert fire.disabled, partial
            await pilot.press("enter")
            await pilot.pause()
            assert modal.state != DONE and modal.is_current
            assert ask_gateway(fabric["cmd"], "GET_STATUS")["trading_state"] == "ACTIVE"

        modal.query_one("#confirm", Input).value = ""
        modal.query_one("#confirm", Input).focus()
        await pilot.press(*"KILL")
        assert not fire.disabled
        await pilot.click("#fire")
        status = await until(
            pilot, lambda: (s := ask_gateway(fabric["cmd"], "GET_STATUS"))["trading_state"]
            == "HALTED" and s, what="gateway HALTED")
        await until(pilot, lambda: modal.state == DONE, what="kill reply")
        assert status["incident_id"] in modal.status_text
        assert "cancelled 1 order(s)" in modal.status_text
        assert f"closed 1 position(s): {SYMBOL}" in modal.status_text
        await pilot.press("escape")
        await until(pilot, lambda: "HALTED" in status_text(app), what="HALTED in status bar")
        banner = app.query_one(HaltedBanner)
        await until(pilot, lambda: status["incident_id"] in str(banner.content),
                    what="banner names the incident")
        assert banner.display

        # Resume: incident prefilled, armed only by RESUME.
        await pilot.press("R")
        await until(pilot, lambda: isinstance(app.screen, ResumeScreen), what="resume modal")
        resume = app.screen
        assert resume.query_one("#incident", Input).value == status["incident_id"]
        resume.query_one("#confirm", Input).focus()
        await pilot.press(*"RESUM")
        assert resume.query_one("#fire", Button).disabled
        await pilot.press("E", "enter")
        await until(pilot, lambda: ask_gateway(fabric["cmd"], "GET_STATUS")["trading_state"]
                    == "ACTIVE", what="gateway ACTIVE again")
        await pilot.press("escape")
        await until(pilot, lambda: not app.query_one(HaltedBanner).display, what="no banner")


@pilot_test
async def test_readonly_never_reaches_the_gateway(fabric: dict[str, str],
                                                  tmp_path: Path) -> None:
    app = make_app(fabric, tmp_path, readonly=True)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: "GW UP" in status_text(app), what="gateway UP")
        await pilot.press("k")
        await pilot.pause()
        assert not isinstance(app.screen, KillSwitchScreen)
        assert any("read-only" in n for n in app.notices)
        assert ask_gateway(fabric["cmd"], "GET_STATUS")["trading_state"] == "ACTIVE"


@pilot_test
async def test_undelivered_kill_offers_retry_with_the_same_request(tmp_path: Path) -> None:
    """Gateway down: the modal says so; Retry re-sends the very same req_id."""
    book, clock = build_frozen_book(symbols=6, ticks=50)
    gateway = FrozenGateway(clock_ns=clock.mono_ns, down=True)
    config = load_config(use_user_file=False, env={})
    app = TradeConsole(config, source=FrozenSource(book), gateway=gateway,
                       clock_ns=clock.mono_ns, wall_ns=clock.wall_ns, freeze_gc=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("k", *"KILL", "enter")
        modal = app.screen
        assert isinstance(modal, KillSwitchScreen)
        await until(pilot, lambda: modal.state == UNDELIVERED, what="undelivered")
        assert "NOT DELIVERED" in modal.status_text
        assert modal.query_one("#retry", Button).display
        gateway.down = False
        await pilot.click("#retry")
        await until(pilot, lambda: modal.state == DONE, what="retry delivered")
        kills = [req for req in gateway.requests if req[0] == "KILL_SWITCH"]
        assert len(kills) == 2 and kills[0][2] == kills[1][2] == modal.req_id
        assert kills[0][1] == kills[1][1] == {"reason": "kill switch fired from the console",
                                              "mode": "FLATTEN"}
