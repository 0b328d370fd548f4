"""The fleet of gateways (selection, totals), the status bar's badge forms, node changes."""

from __future__ import annotations

import logging

import pytest

from console.link.fleet import Fleet, LinkedGateway
from console.link.gateways import GatewaySpec
from console.link.link_state import LinkState
from console.model import GW_DOWN, GW_UP, Reply
from console.ui.fixtures import FrozenGateway
from console.ui.widgets.status_bar import GatewayBadge, badge_form, badges_plain
from services.protocol import GET_ACCOUNT_INFO, GET_ORDERS, GET_POSITIONS, HEARTBEAT


def linked(name: str, *, account: dict[str, object] | None = None, positions: int = 0,
           orders: int = 0, label: str = "") -> LinkedGateway:
    gateway = LinkedGateway(GatewaySpec(name, f"tcp://127.0.0.1:1/{name}", label=label),
                            FrozenGateway())
    trading = gateway.trading
    for action, data in ((GET_ACCOUNT_INFO, account), (GET_POSITIONS, [{}] * positions),
                         (GET_ORDERS, [{}] * orders)):
        if data is not None:
            trading.take_poll_reply(action, Reply(action, "r", True, "SUCCESS", data), 1)
    return gateway


def test_selection_cycles_all_then_each_then_all() -> None:
    fleet = Fleet([linked("a"), linked("b")])
    assert fleet.selected is None and [g.name for g in fleet.in_view()] == ["a", "b"]
    assert fleet.current is not None and fleet.current.name == "a"
    assert [fleet.cycle() for _ in range(3)] == ["a", "b", None]
    one = Fleet([linked("only")])
    assert one.selected == "only" and one.cycle() == "only"


def test_two_gateways_with_one_name_are_refused() -> None:
    with pytest.raises(ValueError, match="two gateways with one name"):
        Fleet([linked("a"), linked("a")])


def test_totals_sum_what_is_known_and_say_what_is_not() -> None:
    fleet = Fleet([
        linked("a", account={"equity": 100.0, "unrealized_pnl": 5.0, "realized_pnl": -1.0,
                             "currency": "USD"}, positions=2, orders=1),
        linked("b", account={"equity": 50.5, "unrealized_pnl": -2.0, "realized_pnl": 0.0,
                             "currency": "USD"}, positions=1),
        linked("c"),  # never answered
    ])
    totals = fleet.totals()
    assert (totals.equity, totals.unrealized_pnl, totals.realized_pnl) == (150.5, 3.0, -1.0)
    assert (totals.positions, totals.orders, totals.gateways_counted) == (3, 1, 2)
    assert totals.currencies == ("USD",)
    mixed = Fleet([linked("a", account={"equity": 1.0, "currency": "USD"}),
                   linked("b", account={"equity": 1.0, "currency": "CNY"})]).totals()
    assert mixed.currencies == ("USD", "CNY")


def test_a_bare_endpoint_is_shown_by_its_node_and_a_label_wins() -> None:
    bare = LinkedGateway(GatewaySpec("127.0.0.1:5555", "tcp://127.0.0.1:5555"),
                         FrozenGateway(endpoint="tcp://127.0.0.1:5555", node="gw-east"))
    assert bare.short == "127.0.0.1:5555"
    bare.refresh()
    assert bare.short == "gw-east"
    assert linked("paper-a", label="PA").short == "PA"


BADGES = (GatewayBadge("desk-0", GW_UP, 0.42, "ACTIVE"),
          GatewayBadge("desk-1", GW_UP, 0.40, "HALTED"),
          GatewayBadge("desk-2-long-name", GW_UP, 0.41, "ACTIVE"),
          GatewayBadge("desk-3", GW_DOWN, None, "ACTIVE"))


def test_badges_shrink_step_by_step_then_fold() -> None:
    full = badges_plain(BADGES, 0)
    assert "desk-0 UP 0.42ms ACTIVE" in full and "desk-1 UP 0.40ms HALTED" in full
    assert "desk-3 DOWN" in full and "desk-3 DOWN ACTIVE" not in full
    assert badge_form(BADGES, len(full)) == 0
    no_rtt = badges_plain(BADGES, 1)
    assert "ms" not in no_rtt and "desk-1 UP HALTED" in no_rtt
    assert badge_form(BADGES, len(full) - 1) == 1
    short = badges_plain(BADGES, 2)
    assert "desk-2-l UP" in short and "long-name" not in short
    assert badge_form(BADGES, len(no_rtt) - 1) == 2
    assert badge_form(BADGES, len(short) - 1) == 3
    assert badges_plain(BADGES, 3) == "GW 3/4 UP · 1 HALTED"


def test_a_new_node_under_the_same_endpoint_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    state = LinkState("tcp://127.0.0.1:5555", heartbeat_interval_s=1.0, late_ms=500,
                      timeout_ms=1000, retries=3, clock_ns=lambda: 0)
    beat = {"status": "SUCCESS", "data": {"node": "gw-a", "trading_state": "ACTIVE"}}
    state.replied(HEARTBEAT, beat, 0.3)
    assert state.status().node == "gw-a"
    with caplog.at_level(logging.WARNING, logger="console.link.client"):
        state.replied(HEARTBEAT, beat, 0.3)
        assert not caplog.records  # the same node again is not news
        state.replied(HEARTBEAT, {"status": "SUCCESS", "data": {"node": "gw-b"}}, 0.3)
    assert state.status().node == "gw-b"
    assert "node changed from gw-a to gw-b" in caplog.text
