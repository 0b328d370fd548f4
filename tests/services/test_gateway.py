"""The gateway as a real process: every action, the paper broker, dedup, audit, CLI errors.

Prices come from a PUB socket the test owns (exact bids and asks); the real
publisher is used where only "some live feed" matters. The helpers here are
shared with test_kill_switch.py and test_gateway_malformed.py.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import msgpack
import pytest
import zmq

from services import protocol as p
from services.broker import PaperBroker
from services.envelope import Envelope
from services.gateway import CommandDispatcher, GatewaySettings
from services.store import read_audit
from tests.conftest import ANY_PORT, ServiceFactory, wait_until

REPLY_TIMEOUT_MS = 10_000


# --- helpers shared by the gateway tests -------------------------------------------------


def write_config(tmp_path: Path, name: str = "gw.toml", **gateway: Any) -> Path:
    """A config file isolating the test: logs in tmp, fast telemetry, extra [gateway] keys."""
    values = {"telemetry_interval_s": 0.2, **gateway}
    lines = ["[gateway]", *(f"{k} = {json.dumps(v)}" for k, v in values.items()),
             "[logging]", f"dir = {json.dumps(str(tmp_path / 'logs'))}"]
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def start_gateway(services: ServiceFactory, tmp_path: Path, feed: str | None = None, *,
                  state_dir: Path | None = None, config: Path | None = None) -> Any:
    config = config or write_config(tmp_path)
    args = ["--config", str(config), "--feed", feed or "tcp://127.0.0.1:1"]
    return services.gateway(*args, state_dir=state_dir)


class CommandClient:
    """A plain REQ socket with deadlines; reopens itself after a lost reply."""

    def __init__(self, ctx: zmq.Context, endpoint: str, client_id: str = "test-client") -> None:
        self.ctx = ctx
        self.endpoint = endpoint
        self.client_id = client_id
        self.sock = self._open()

    def _open(self) -> zmq.Socket:
        sock = self.ctx.socket(zmq.REQ)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(self.endpoint)
        return sock

    def reopen(self) -> None:
        self.sock.close(0)
        self.sock = self._open()

    def raw(self, *frames: bytes, timeout_ms: int = REPLY_TIMEOUT_MS) -> dict[str, Any] | None:
        """Send frames as they are; the decoded reply, or None (socket reopened) if none came."""
        self.sock.send_multipart(list(frames))
        if not self.sock.poll(timeout_ms):
            self.reopen()
            return None
        return msgpack.unpackb(self.sock.recv(), raw=False)

    def call(self, action: str, payload: dict[str, Any] | None = None, *,
             req_id: str | None = None, client_id: str | None = None) -> dict[str, Any]:
        request = p.make_request(action, payload, client_id=client_id or self.client_id,
                                 req_id=req_id)
        reply = self.raw(p.encode_request(request))
        assert reply is not None, f"no reply to {action} within {REPLY_TIMEOUT_MS} ms"
        assert reply["req_id"] == request["req_id"]
        assert reply["action"] == action
        return reply

    def ok(self, action: str, payload: dict[str, Any] | None = None, **kw: Any) -> Any:
        reply = self.call(action, payload, **kw)
        assert reply["status"] == p.SUCCESS, reply
        assert reply["error"] is None
        return reply["data"]

    def refused(self, action: str, payload: dict[str, Any] | None, status: str,
                code: str) -> dict[str, Any]:
        reply = self.call(action, payload)
        assert (reply["status"], (reply["error"] or {}).get("code")) == (status, code), reply
        assert reply["data"] is None
        return reply

    def close(self) -> None:
        self.sock.close(0)


class PriceFeed:
    """A PUB socket owned by the test, so every bid and ask is known exactly."""

    def __init__(self, ctx: zmq.Context) -> None:
        self.sock = ctx.socket(zmq.PUB)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.bind(ANY_PORT)
        self.endpoint = self.sock.getsockopt_string(zmq.LAST_ENDPOINT)
        self.envelope = Envelope("test-feed")

    def tick(self, vt_symbol: str, bid: float, ask: float, last: float | None = None) -> None:
        tick = {"vt_symbol": vt_symbol, "symbol": vt_symbol.rpartition(".")[0],
                "exchange": p.exchange_of(vt_symbol), "bid_price_1": bid, "ask_price_1": ask,
                "last_price": (bid + ask) / 2 if last is None else last}
        self.sock.send_multipart([vt_symbol.encode(),
                                  p.packb(self.envelope.stamp(vt_symbol, tick))])

    def quote(self, client: CommandClient, vt_symbol: str, bid: float, ask: float) -> None:
        """Publish until the gateway's snapshot shows exactly this quote (slow joiner)."""

        def seen() -> bool:
            self.tick(vt_symbol, bid, ask)
            tick = client.ok(p.GET_SNAPSHOT, {"symbols": [vt_symbol]})["ticks"].get(vt_symbol)
            return tick is not None and (tick["bid_price_1"], tick["ask_price_1"]) == (bid, ask)

        wait_until(seen, timeout=15, interval=0.02, message=f"gateway to see {vt_symbol}")


class EventWatcher:
    """A SUB on the gateway's PUB, connected (first message seen) before it is used."""

    def __init__(self, ctx: zmq.Context, endpoint: str) -> None:
        self.sock = ctx.socket(zmq.SUB)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.SUBSCRIBE, b"")
        self.sock.connect(endpoint)
        self.seen: list[tuple[str, dict[str, Any]]] = []
        self.wait_for(lambda topic, _: topic.startswith("telemetry."), "first telemetry")

    def _pump(self) -> None:
        while self.sock.poll(20):
            topic, payload = self.sock.recv_multipart()
            self.seen.append((topic.decode(), msgpack.unpackb(payload, raw=False)))

    def wait_for(self, match: Any, message: str, timeout: float = 15) -> dict[str, Any]:
        def found() -> dict[str, Any] | None:
            self._pump()
            return next((pl for topic, pl in self.seen if match(topic, pl)), None)

        return wait_until(found, timeout=timeout, message=message)

    def close(self) -> None:
        self.sock.close(0)


def market(vt_symbol: str, side: str, qty: float) -> dict[str, Any]:
    return {"vt_symbol": vt_symbol, "side": side, "qty": qty, "type": p.MARKET}


def limit(vt_symbol: str, side: str, qty: float, price: float) -> dict[str, Any]:
    return {"vt_symbol": vt_symbol, "side": side, "qty": qty, "type": p.LIMIT, "price": price}


def positions_by_symbol(client: CommandClient) -> dict[str, dict[str, Any]]:
    return {row["vt_symbol"]: row for row in client.ok(p.GET_POSITIONS)}


@pytest.fixture
def feed(zctx: zmq.Context) -> PriceFeed:
    return PriceFeed(zctx)


@pytest.fixture
def gateway(services: ServiceFactory, tmp_path: Path, feed: PriceFeed) -> Any:
    return start_gateway(services, tmp_path, feed.endpoint)


@pytest.fixture
def client(zctx: zmq.Context, gateway: Any) -> CommandClient:
    return CommandClient(zctx, gateway.endpoints["cmd"])


# --- tests ------------------------------------------------------------------------------


def test_ready_line_and_read_actions(gateway: Any, client: CommandClient,
                                     tmp_path: Path) -> None:
    assert gateway.endpoints["service"] == "gateway"
    assert gateway.endpoints["state_dir"] == str(tmp_path / "gw-state")
    beat = client.ok(p.HEARTBEAT)
    assert beat["node"] == "gw-1" and beat["trading_state"] == p.ACTIVE
    assert beat["uptime_s"] >= 0 and type(beat["ts_ns"]) is int
    status = client.ok(p.GET_STATUS)
    assert status["trading_state"] == p.ACTIVE and status["incident_id"] is None
    assert (status["positions"], status["working_orders"]) == (0, 0)
    account = client.ok(p.GET_ACCOUNT_INFO)
    assert account == {"account_id": "PAPER-1", "currency": "USD", "balance": 1_000_000.0,
                       "equity": 1_000_000.0, "unrealized_pnl": 0.0, "realized_pnl": 0.0,
                       "margin_used": 0.0}
    assert client.ok(p.GET_POSITIONS) == []
    assert client.ok(p.GET_ORDERS) == []
    assert client.ok(p.GET_SNAPSHOT)["ticks"] == {}


def test_market_orders_fill_at_the_quote_and_pnl_is_marked(
        feed: PriceFeed, client: CommandClient) -> None:
    vt = "BTCUSD.KRAKEN"
    client.refused(p.OPEN_ORDER, market(vt, p.BUY, 1), p.REJECTED, p.NOT_FOUND)
    feed.quote(client, vt, 99.0, 101.0)
    bought = client.ok(p.OPEN_ORDER, market(vt, p.BUY, 2))
    assert (bought["status"], bought["fill_price"]) == ("FILLED", 101.0)
    feed.quote(client, vt, 104.0, 106.0)
    [row] = client.ok(p.GET_POSITIONS)
    assert (row["qty"], row["avg_price"], row["unrealized_pnl"]) == (2.0, 101.0, 6.0)
    account = client.ok(p.GET_ACCOUNT_INFO)
    assert (account["equity"], account["unrealized_pnl"]) == (1_000_006.0, 6.0)
    assert account["margin_used"] == 208.0
    sold = client.ok(p.OPEN_ORDER, market(vt, p.SELL, 1))
    assert sold["fill_price"] == 104.0
    assert positions_by_symbol(client)[vt]["qty"] == 1.0
    closed = client.ok(p.CLOSE_POSITION, {"vt_symbol": vt})
    assert (closed["closed_qty"], closed["fill_price"], closed["realized_pnl"]) == \
        (1.0, 104.0, 3.0)
    assert client.ok(p.GET_POSITIONS) == []
    client.refused(p.CLOSE_POSITION, {"vt_symbol": vt}, p.REJECTED, p.NOT_FOUND)
    account = client.ok(p.GET_ACCOUNT_INFO)
    assert (account["realized_pnl"], account["balance"]) == (6.0, 1_000_006.0)
    # A short is marked at the ask and closed by buying there.
    client.ok(p.OPEN_ORDER, market(vt, p.SELL, 3))
    assert positions_by_symbol(client)[vt]["qty"] == -3.0
    feed.quote(client, vt, 100.0, 102.0)
    assert positions_by_symbol(client)[vt]["unrealized_pnl"] == 6.0  # (104 - 102) * 3


def test_limit_orders_rest_then_fill_when_crossed_and_cancel(
        zctx: zmq.Context, gateway: Any, feed: PriceFeed, client: CommandClient) -> None:
    vt = "ETHUSD.KRAKEN"
    events = EventWatcher(zctx, gateway.endpoints["pub"])
    resting = client.ok(p.OPEN_ORDER, limit(vt, p.BUY, 1, 95.0))  # no price yet: rests
    assert resting["status"] == "WORKING"
    feed.quote(client, vt, 99.0, 101.0)
    other = client.ok(p.OPEN_ORDER, limit(vt, p.SELL, 1, 120.0))
    assert [o["order_id"] for o in client.ok(p.GET_ORDERS)] == \
        [resting["order_id"], other["order_id"]]
    client.refused(p.CANCEL_ORDER, {"order_id": "ORD-nope"}, p.REJECTED, p.NOT_FOUND)
    assert client.ok(p.CANCEL_ORDER, {"order_id": other["order_id"]}) == \
        {"order_id": other["order_id"], "status": "CANCELLED"}
    client.refused(p.CANCEL_ORDER, {"order_id": other["order_id"]}, p.REJECTED, p.NOT_FOUND)
    feed.quote(client, vt, 93.0, 94.0)  # the ask crosses 95: fills at the limit price
    assert client.ok(p.GET_ORDERS) == []
    [row] = client.ok(p.GET_POSITIONS)
    assert (row["qty"], row["avg_price"]) == (1.0, 95.0)
    trade = events.wait_for(lambda t, pl: t == "event.trade"
                            and pl["order_id"] == resting["order_id"], "event.trade")
    assert (trade["price"], trade["qty"], trade["side"]) == (95.0, 1.0, p.BUY)
    assert type(trade["seq"]) is int and trade["pub"] == "gw-1"
    events.wait_for(lambda t, pl: t == "event.order" and pl["status"] == "CANCELLED"
                    and pl["order_id"] == other["order_id"], "event.order CANCELLED")
    # A limit order that is marketable on arrival fills at once, at the quote.
    taken = client.ok(p.OPEN_ORDER, limit(vt, p.SELL, 1, 90.0))
    assert (taken["status"], taken["fill_price"]) == ("FILLED", 93.0)
    events.close()


def test_duplicate_req_id_gets_the_first_reply_and_acts_once(
        zctx: zmq.Context, feed: PriceFeed, client: CommandClient, gateway: Any) -> None:
    vt = "AAPL.NASDAQ"
    feed.quote(client, vt, 199.0, 201.0)
    req_id = p.new_req_id()
    first = client.call(p.OPEN_ORDER, market(vt, p.BUY, 5), req_id=req_id)
    again = client.call(p.OPEN_ORDER, market(vt, p.BUY, 5), req_id=req_id)
    assert first["status"] == p.SUCCESS and again == first
    # A Lazy Pirate retry comes on a fresh socket: still the same reply.
    retry = CommandClient(zctx, gateway.endpoints["cmd"])
    assert retry.call(p.OPEN_ORDER, market(vt, p.BUY, 5), req_id=req_id) == first
    assert positions_by_symbol(client)[vt]["qty"] == 5.0
    # The same req_id from another client is another request.
    client.ok(p.OPEN_ORDER, market(vt, p.BUY, 5), req_id=req_id, client_id="other-client")
    assert positions_by_symbol(client)[vt]["qty"] == 10.0
    retry.close()


def test_audit_log_has_one_parseable_line_per_state_changing_command(
        feed: PriceFeed, client: CommandClient, tmp_path: Path) -> None:
    vt = "ESZ6.CME"
    feed.quote(client, vt, 5000.0, 5000.25)
    order = client.ok(p.OPEN_ORDER, market(vt, p.BUY, 1))
    client.refused(p.CANCEL_ORDER, {"order_id": "missing"}, p.REJECTED, p.NOT_FOUND)
    client.ok(p.GET_POSITIONS)
    client.ok(p.CLOSE_POSITION, {"vt_symbol": vt})
    records = list(read_audit(tmp_path / "gw-state" / "audit.jsonl"))
    assert [(r["action"], r["status"]) for r in records] == [
        (p.OPEN_ORDER, p.SUCCESS), (p.CANCEL_ORDER, p.REJECTED), (p.CLOSE_POSITION, p.SUCCESS)]
    first = records[0]
    assert first["client_id"] == "test-client" and first["result"]["order_id"] == \
        order["order_id"]
    assert first["payload"]["vt_symbol"] == vt and first["ts"].endswith("+00:00")
    assert [r["seq"] for r in records] == [1, 2, 3]
    assert records[1]["error"]["code"] == p.NOT_FOUND


def test_state_orders_and_replies_survive_a_restart(
        services: ServiceFactory, zctx: zmq.Context, feed: PriceFeed, tmp_path: Path) -> None:
    gw = start_gateway(services, tmp_path, feed.endpoint)
    client = CommandClient(zctx, gw.endpoints["cmd"])
    vt = "rb2510.SHFE"
    feed.quote(client, vt, 3500.0, 3501.0)
    req_id = p.new_req_id()
    first = client.call(p.OPEN_ORDER, market(vt, p.BUY, 2), req_id=req_id)
    working = client.ok(p.OPEN_ORDER, limit(vt, p.BUY, 1, 3000.0))
    gw.stop()
    gw = start_gateway(services, tmp_path, feed.endpoint)
    client = CommandClient(zctx, gw.endpoints["cmd"])
    assert positions_by_symbol(client)[vt]["qty"] == 2.0
    assert [o["order_id"] for o in client.ok(p.GET_ORDERS)] == [working["order_id"]]
    assert client.call(p.OPEN_ORDER, market(vt, p.BUY, 2), req_id=req_id) == first
    assert positions_by_symbol(client)[vt]["qty"] == 2.0
    feed.quote(client, vt, 3500.0, 3501.0)
    new = client.ok(p.OPEN_ORDER, market(vt, p.BUY, 1))
    assert new["order_id"] not in (first["data"]["order_id"], working["order_id"])


def test_torn_audit_tail_is_ignored_and_appends_continue(
        services: ServiceFactory, zctx: zmq.Context, tmp_path: Path) -> None:
    state = tmp_path / "gw-state"
    gw = start_gateway(services, tmp_path)
    client = CommandClient(zctx, gw.endpoints["cmd"])
    client.ok(p.OPEN_ORDER, limit("X.Y", p.BUY, 1, 10.0))
    gw.stop()
    with (state / "audit.jsonl").open("ab") as fh:
        fh.write(b'{"seq": 99, "action": "OPEN_ORD')  # what a kill -9 mid-write leaves
    gw = start_gateway(services, tmp_path)
    client = CommandClient(zctx, gw.endpoints["cmd"])
    client.ok(p.OPEN_ORDER, limit("X.Y", p.BUY, 1, 11.0))
    records = list(read_audit(state / "audit.jsonl"))
    assert [r["payload"]["price"] for r in records] == [10.0, 11.0]
    assert len(client.ok(p.GET_ORDERS)) == 2


def test_snapshot_from_the_real_publisher(services: ServiceFactory, zctx: zmq.Context,
                                          tmp_path: Path) -> None:
    publisher = services.publisher("--symbols", "5", "--rate", "200", "--seed", "7")
    gw = start_gateway(services, tmp_path, publisher.endpoints["pub"])
    client = CommandClient(zctx, gw.endpoints["cmd"])
    ticks = wait_until(lambda: client.ok(p.GET_SNAPSHOT)["ticks"], timeout=15,
                       message="ticks in the snapshot")
    vt, tick = next(iter(ticks.items()))
    assert tick["vt_symbol"] == vt and type(tick["seq"]) is int and type(tick["tseq"]) is int
    only = client.ok(p.GET_SNAPSHOT, {"symbols": [vt, "NOPE.X"]})
    assert list(only["ticks"]) == [vt] and only["truncated"] is False
    filled = client.ok(p.OPEN_ORDER, market(vt, p.BUY, 1))
    assert filled["status"] == "FILLED" and filled["fill_price"] > 0


def test_rate_limit_rejects_the_excess_but_never_heartbeats(
        services: ServiceFactory, zctx: zmq.Context, tmp_path: Path) -> None:
    config = write_config(tmp_path, rate_limit_per_s=5)
    gw = start_gateway(services, tmp_path, config=config)
    client = CommandClient(zctx, gw.endpoints["cmd"])
    replies = [client.call(p.GET_ORDERS) for _ in range(30)]
    limited = [r for r in replies if r["status"] == p.REJECTED]
    assert limited, "30 requests at once should exceed 5 requests/s"
    assert limited[0]["error"] == {"code": p.FORBIDDEN,
                                   "message": "rate limit exceeded (5 requests/s)"}
    assert all(client.call(p.HEARTBEAT)["status"] == p.SUCCESS for _ in range(20))
    assert client.call(p.GET_ORDERS, client_id="another-client")["status"] == p.SUCCESS


def test_time_budget_refuses_late_requests_but_never_the_kill_switch() -> None:
    now = [0]
    broker = PaperBroker(account_id="A", currency="USD", starting_balance=100.0)
    dispatcher = CommandDispatcher(broker, GatewaySettings(request_budget_ms=50),
                                   clock_ns=lambda: now[0])

    def request(action: str, payload: dict[str, Any] | None = None) -> p.Request:
        return p.decode_request(p.encode_request(p.make_request(action, payload,
                                                                client_id="c")))

    late = request(p.OPEN_ORDER, limit("A.B", p.BUY, 1, 1.0))
    now[0] = 51_000_000  # arrived at 0, handled 51 ms later
    outcome = dispatcher.handle(late, arrived_ns=0)
    assert (outcome.reply["status"], outcome.reply["error"]["code"]) == (p.ERROR, p.INTERNAL)
    assert "deadline exceeded" in outcome.reply["error"]["message"]
    assert broker.order_rows() == [] and outcome.audit is not None
    on_time = dispatcher.handle(request(p.OPEN_ORDER, limit("A.B", p.BUY, 1, 1.0)),
                                arrived_ns=now[0] - 50_000_000)
    assert on_time.reply["status"] == p.SUCCESS
    kill = dispatcher.handle(request(p.KILL_SWITCH, {"reason": "late", "mode": p.HALT}),
                             arrived_ns=0)
    assert kill.reply["status"] == p.SUCCESS and broker.trading_state == p.HALTED
    # A late request was not acted on, so its retry (same req_id) may act.
    retried = dispatcher.handle(late, arrived_ns=now[0])
    assert retried.reply["error"]["code"] == p.TRADING_HALTED


def test_telemetry_metrics_health_and_logs(gateway: Any, zctx: zmq.Context,
                                           client: CommandClient) -> None:
    watcher = EventWatcher(zctx, gateway.endpoints["pub"])
    client.ok(p.HEARTBEAT)
    assert client.raw(b"\xc1")["error"]["code"] == p.BAD_REQUEST
    metrics = watcher.wait_for(lambda t, pl: t == "telemetry.metrics.gw-1"
                               and pl["dropped_total"] >= 1, "metrics counting the bad frame")
    assert set(p.METRICS_FIELDS) <= set(metrics)
    assert metrics["sent_total"] >= 2 and metrics["malformed_total"] >= 1
    health = watcher.wait_for(lambda t, _: t == "telemetry.health.gw-1", "health")
    assert health["status"] in p.HEALTH_STATES and "ACTIVE" in health["detail"]
    logged = watcher.wait_for(lambda t, _: t == "telemetry.logs.gw-1", "a WARNING log")
    assert logged["level"] == "WARNING" and "malformed" in logged["message"]
    watcher.close()


def test_sigterm_stops_cleanly(gateway: Any, client: CommandClient) -> None:
    client.ok(p.HEARTBEAT)
    gateway.signal(signal.SIGTERM)
    wait_until(lambda: not gateway.alive(), timeout=5, message="gateway to exit")
    assert gateway.popen.returncode == 0


def _run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "console", "gateway", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)


def test_bad_command_lines_exit_2_with_one_line(tmp_path: Path, gateway: Any) -> None:
    config = write_config(tmp_path, "cli.toml")
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    base = ["--config", str(config), "--pub-bind", ANY_PORT, "--feed", "tcp://127.0.0.1:1"]
    cases = {
        "not a writable directory": [*base, "--bind", ANY_PORT, "--state-dir",
                                     str(blocker / "sub")],
        "already in use": [*base, "--bind", gateway.endpoints["cmd"], "--state-dir",
                           str(tmp_path / "s1")],
        "unrecognized arguments": [*base, "--frobnicate"],
        "gateway.reply_cache_size": ["--config", str(write_config(
            tmp_path, "bad.toml", reply_cache_size=0)), "--state-dir", str(tmp_path / "s2")],
        "feed endpoint": [*base, "--bind", ANY_PORT, "--feed", "nonsense",
                          "--state-dir", str(tmp_path / "s3")],
    }
    for expected, args in cases.items():
        result = _run_cli(*args, cwd=tmp_path)
        assert result.returncode == 2, (expected, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and expected in lines[0], (expected, result.stderr)
        assert "Traceback" not in result.stderr


def test_kill_9_mid_flood_loses_nothing_that_was_answered(
        services: ServiceFactory, zctx: zmq.Context, tmp_path: Path) -> None:
    """A reply is only sent once its audit line and state are on disk."""
    config = write_config(tmp_path, rate_limit_per_s=0)
    gw = start_gateway(services, tmp_path, config=config)
    dealer = zctx.socket(zmq.DEALER)
    dealer.setsockopt(zmq.LINGER, 0)
    dealer.connect(gw.endpoints["cmd"])
    for i in range(600):
        request = p.make_request(p.OPEN_ORDER, limit("CRASH.X", p.BUY, 1, 1.0 + i),
                                 client_id="crash")
        dealer.send_multipart([b"", p.encode_request(request)])
    answered: set[str] = set()

    def collect(timeout_ms: int) -> bool:
        if not dealer.poll(timeout_ms):
            return False
        reply = msgpack.unpackb(dealer.recv_multipart()[-1], raw=False)
        assert reply["status"] == p.SUCCESS, reply
        answered.add(reply["data"]["order_id"])
        return True

    while len(answered) < 50:
        assert collect(15_000), "the flood got no replies"
    gw.signal(signal.SIGKILL)
    wait_until(lambda: not gw.alive(), timeout=10, message="the gateway to die")
    while collect(200):  # replies already on their way before the kill
        pass
    gw = start_gateway(services, tmp_path, config=config)  # state.json must still load
    client = CommandClient(zctx, gw.endpoints["cmd"])
    working = {order["order_id"] for order in client.ok(p.GET_ORDERS)}
    audited = {r["result"]["order_id"] for r in read_audit(tmp_path / "gw-state" /
                                                           "audit.jsonl")
               if r.get("action") == p.OPEN_ORDER}
    assert answered <= working, "an answered order was lost"
    assert working <= audited, "the state holds an order the audit log does not"
    assert client.ok(p.OPEN_ORDER, limit("CRASH.X", p.BUY, 1, 0.5))["status"] == "WORKING"
    dealer.close(0)
