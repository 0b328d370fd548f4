"""The kill switch end to end: latch, scope, persistence across a restart, resume, priority."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import msgpack
import zmq

from services import protocol as p
from services.store import read_audit
from tests.conftest import ServiceFactory
from tests.services.test_gateway import (
    CommandClient,
    EventWatcher,
    PriceFeed,
    limit,
    market,
    positions_by_symbol,
    start_gateway,
    write_config,
)

VT = "IF2506.CFFEX"


def test_kill_switch_life_cycle_survives_a_restart(
        services: ServiceFactory, zctx: zmq.Context, tmp_path: Path) -> None:
    feed = PriceFeed(zctx)
    gw = start_gateway(services, tmp_path, feed.endpoint)
    client = CommandClient(zctx, gw.endpoints["cmd"])
    events = EventWatcher(zctx, gw.endpoints["pub"])
    feed.quote(client, VT, 3999.0, 4001.0)
    client.ok(p.OPEN_ORDER, market(VT, p.BUY, 2))
    working = client.ok(p.OPEN_ORDER, limit(VT, p.BUY, 1, 3000.0))

    kill = client.ok(p.KILL_SWITCH, {"reason": "runaway strategy", "mode": p.FLATTEN})
    incident = kill["incident_id"]
    assert kill["trading_state"] == p.HALTED and incident
    assert kill["cancelled_orders"] == [working["order_id"]]
    [closed] = kill["closed_positions"]
    assert (closed["vt_symbol"], closed["closed_qty"], closed["fill_price"]) == (VT, 2.0, 3999.0)
    assert client.ok(p.GET_POSITIONS) == [] and client.ok(p.GET_ORDERS) == []
    published = events.wait_for(lambda t, _: t == "event.kill", "event.kill")
    assert published["incident_id"] == incident and published["reason"] == "runaway strategy"

    repeat = client.ok(p.KILL_SWITCH, {"reason": "again", "mode": p.FLATTEN})
    assert repeat["incident_id"] == incident
    assert (repeat["cancelled_orders"], repeat["closed_positions"]) == ([], [])
    client.refused(p.OPEN_ORDER, market(VT, p.BUY, 1), p.REJECTED, p.TRADING_HALTED)
    client.refused(p.OPEN_ORDER, limit(VT, p.SELL, 1, 9000.0), p.REJECTED, p.TRADING_HALTED)
    status = client.ok(p.GET_STATUS)
    assert (status["trading_state"], status["incident_id"], status["reason"]) == \
        (p.HALTED, incident, "runaway strategy")

    gw.stop()
    gw = start_gateway(services, tmp_path, feed.endpoint)
    client = CommandClient(zctx, gw.endpoints["cmd"])
    assert client.ok(p.HEARTBEAT)["trading_state"] == p.HALTED
    assert client.ok(p.GET_STATUS)["incident_id"] == incident
    assert client.ok(p.KILL_SWITCH, {"reason": "after restart", "mode": p.HALT})[
        "incident_id"] == incident
    feed.quote(client, VT, 3999.0, 4001.0)
    client.refused(p.OPEN_ORDER, market(VT, p.BUY, 1), p.REJECTED, p.TRADING_HALTED)
    client.refused(p.RESUME_TRADING, {"incident_id": "INC-wrong", "reason": "oops"},
                   p.REJECTED, p.NOT_FOUND)
    assert client.ok(p.GET_STATUS)["trading_state"] == p.HALTED
    events = EventWatcher(zctx, gw.endpoints["pub"])
    resumed = client.ok(p.RESUME_TRADING, {"incident_id": incident, "reason": "fixed"})
    assert resumed["trading_state"] == p.ACTIVE
    events.wait_for(lambda t, pl: t == "event.resume" and pl["incident_id"] == incident,
                    "event.resume")
    assert client.ok(p.OPEN_ORDER, market(VT, p.BUY, 1))["status"] == "FILLED"
    client.refused(p.RESUME_TRADING, {"incident_id": incident, "reason": "twice"},
                   p.REJECTED, p.NOT_FOUND)

    audit = [(r["action"], r["status"]) for r in read_audit(tmp_path / "gw-state" /
                                                               "audit.jsonl")]
    assert audit.count((p.KILL_SWITCH, p.SUCCESS)) == 3
    assert (p.RESUME_TRADING, p.REJECTED) in audit and (p.RESUME_TRADING, p.SUCCESS) in audit
    assert audit.count((p.OPEN_ORDER, p.REJECTED)) == 3
    events.close()


def test_halt_mode_keeps_positions_cancels_orders_and_closes_still_work(
        services: ServiceFactory, zctx: zmq.Context, tmp_path: Path) -> None:
    feed = PriceFeed(zctx)
    gw = start_gateway(services, tmp_path, feed.endpoint)
    client = CommandClient(zctx, gw.endpoints["cmd"])
    feed.quote(client, VT, 3999.0, 4001.0)
    client.ok(p.OPEN_ORDER, market(VT, p.BUY, 1))
    take_profit = client.ok(p.OPEN_ORDER, limit(VT, p.SELL, 1, 4100.0))
    kill = client.ok(p.KILL_SWITCH, {"reason": "pause", "mode": p.HALT})
    assert kill["cancelled_orders"] == [take_profit["order_id"]]
    assert kill["closed_positions"] == []
    feed.quote(client, VT, 4200.0, 4201.0)  # would have crossed the cancelled order
    assert positions_by_symbol(client)[VT]["qty"] == 1.0
    assert client.ok(p.GET_ORDERS) == []
    client.refused(p.CANCEL_ORDER, {"order_id": take_profit["order_id"]}, p.REJECTED,
                   p.NOT_FOUND)
    closed = client.ok(p.CLOSE_POSITION, {"vt_symbol": VT})
    assert (closed["closed_qty"], closed["fill_price"]) == (1.0, 4200.0)
    assert client.ok(p.GET_STATUS)["trading_state"] == p.HALTED


def _send_flood_then_kill(dealer: zmq.Socket, orders: int) -> None:
    """`orders` OPEN_ORDERs, then a KILL_SWITCH, all on one DEALER (REQ-style delimiter)."""
    for i in range(orders):
        request = p.make_request(p.OPEN_ORDER, limit(VT, p.BUY, 1, 1000.0 + i),
                                 client_id="flooder")
        dealer.send_multipart([b"", p.encode_request(request)])
    kill = p.make_request(p.KILL_SWITCH, {"reason": "flood", "mode": p.HALT},
                          client_id="flooder")
    dealer.send_multipart([b"", p.encode_request(kill)])


def _replies(dealer: zmq.Socket, count: int) -> list[dict[str, Any]]:
    """The next `count` replies, in the order the gateway handled the requests."""
    replies = []
    while len(replies) < count:
        assert dealer.poll(15_000), f"only {len(replies)} of {count} replies came"
        delimiter, data = dealer.recv_multipart()
        assert delimiter == b""
        replies.append(msgpack.unpackb(data, raw=False))
    return replies


def test_kill_switch_overtakes_a_flood_of_orders(
        services: ServiceFactory, zctx: zmq.Context, tmp_path: Path) -> None:
    """Orders already waiting when the kill arrives are handled after it, and refused.

    Handled first-in-first-out, the kill would always be the last reply. The
    gateway is paused (SIGSTOP) while the flood is sent so that the whole
    flood is waiting at once; should the kill still come last (it arrived
    alone after every order had been drained), the round proves nothing and
    is tried again after a resume.
    """
    config = write_config(tmp_path, rate_limit_per_s=0)
    gw = start_gateway(services, tmp_path, config=config)
    dealer = zctx.socket(zmq.DEALER)
    dealer.setsockopt(zmq.LINGER, 0)
    dealer.connect(gw.endpoints["cmd"])
    checker = CommandClient(zctx, gw.endpoints["cmd"])
    orders = 200
    overtaken = False
    for _ in range(3):
        dealer.send_multipart([b"", p.encode_request(
            p.make_request(p.HEARTBEAT, client_id="flooder"))])
        assert _replies(dealer, 1)[0]["status"] == p.SUCCESS  # connected before the pause
        gw.signal(signal.SIGSTOP)
        try:
            _send_flood_then_kill(dealer, orders)
        finally:
            gw.signal(signal.SIGCONT)
        replies = _replies(dealer, orders + 1)
        actions = [r["action"] for r in replies]
        assert actions.count(p.KILL_SWITCH) == 1 and actions.count(p.OPEN_ORDER) == orders
        position = actions.index(p.KILL_SWITCH)
        kill = replies[position]
        assert kill["status"] == p.SUCCESS
        before, after = replies[:position], replies[position + 1:]
        assert all(r["status"] == p.SUCCESS for r in before)
        assert all(r["error"]["code"] == p.TRADING_HALTED for r in after)
        assert sorted(kill["data"]["cancelled_orders"]) == \
            sorted(r["data"]["order_id"] for r in before)
        assert checker.ok(p.GET_ORDERS) == []
        checker.ok(p.RESUME_TRADING, {"incident_id": kill["data"]["incident_id"],
                                      "reason": "next round"})
        if after:
            overtaken = True
            break
    assert overtaken, "the kill switch was handled after every order sent before it"
    dealer.close(0)


def test_kill_over_thousands_of_orders_lists_a_bounded_sample_with_exact_counts() -> None:
    """A kill reply must stay decodable by every receiver, whatever it cancelled."""
    from services.broker import KILL_LISTED, PaperBroker
    from services.protocol import DEFAULT_LIMITS, decode_reply, make_reply, packb

    broker = PaperBroker(account_id="A", currency="USD", starting_balance=1e6)
    broker.on_tick("X.EX", {"bid_price_1": 100.0, "ask_price_1": 100.5, "last_price": 100.2},
                   now_ns=1)
    total = KILL_LISTED * 5
    for _ in range(total):
        broker.open_order(vt_symbol="X.EX", side="BUY", qty=1.0, order_type="LIMIT",
                          price=50.0, client_id="c", now_ns=1)
    data = broker.kill(reason="test", mode="HALT", client_id="c", now_ns=2)
    assert data["cancelled_count"] == total
    assert len(data["cancelled_orders"]) == KILL_LISTED
    assert data["truncated"] is True
    frame = packb(make_reply("r", "KILL_SWITCH", "SUCCESS", data))
    assert decode_reply(frame, DEFAULT_LIMITS)["data"]["cancelled_count"] == total
