"""Independent acceptance client for the tradeconsole wire protocol (v1).

Written from the protocol document alone and importing nothing from the
project (only pyzmq and msgpack), so it checks the contract rather than the
implementation's own idea of it. It subscribes to a publisher (envelope
ticks with contiguous seq/tseq, telemetry fields) and drives a gateway
through the kill-switch scenario:

    heartbeat, order, duplicate request, positions, kill, repeat kill,
    rejected order, garbage frame, [restart: still HALTED], resume

As a script (no restart step, since that needs control of the process):

    python tests/acceptance/protocol_client.py --gateway tcp://127.0.0.1:5555 \\
        --feed tcp://127.0.0.1:5556 [--events tcp://127.0.0.1:5558]

Exit code 0 when every check passed, 1 otherwise. The gateway must start
ACTIVE (a fresh state directory).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgpack
import zmq

VERSION = 1
STATUSES = {"SUCCESS", "REJECTED", "ERROR"}
ERROR_CODES = {"BAD_REQUEST", "UNKNOWN_ACTION", "FORBIDDEN", "TRADING_HALTED", "NOT_FOUND",
               "INTERNAL"}
ENVELOPE = ("pub", "epoch", "seq", "tseq", "ts_ns")
METRICS = ("node", "ts_ns", "uptime_s", "sent_total", "msgs_per_s", "bytes_per_s",
           "ser_us_p50", "ser_us_p99", "queue_depth", "queue_capacity", "dropped_total")
HEALTH = ("node", "ts_ns", "status", "detail")
HEALTH_STATES = {"OK", "DEGRADED", "DOWN"}
TICK_STRINGS = ("symbol", "exchange", "vt_symbol", "gateway_name", "name")
HEARTBEAT_DATA = ("node", "uptime_s", "trading_state", "ts_ns")
STATUS_DATA = ("trading_state", "incident_id", "halted_at_ns", "reason", "positions",
               "working_orders")
KILL_DATA = ("incident_id", "trading_state", "cancelled_orders", "closed_positions")


class CheckFailed(AssertionError):
    """One protocol expectation that the service did not meet."""


def check(condition: Any, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


@dataclass
class Report:
    """Every check that passed, in order; the first failure ends the scenario."""

    passed: list[str] = field(default_factory=list)
    failed: str | None = None

    @property
    def ok(self) -> bool:
        return self.failed is None

    def step(self, name: str) -> None:
        self.passed.append(name)

    def text(self) -> str:
        lines = [f"PASS {name}" for name in self.passed]
        if self.failed:
            lines.append(f"FAIL {self.failed}")
        return "\n".join(lines)


# --- the feed ---------------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return type(value) in (int, float) and math.isfinite(value)


@dataclass
class FeedSummary:
    ticks: int = 0
    metrics: int = 0
    health: int = 0
    gaps: int = 0
    quotes: dict[str, dict[str, Any]] = field(default_factory=dict)


class FeedWatcher:
    """SUB to a publisher; checks every message it reads against the protocol."""

    def __init__(self, ctx: zmq.Context, endpoint: str) -> None:
        self.sock = ctx.socket(zmq.SUB)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.RCVHWM, 1_000_000)
        self.sock.setsockopt(zmq.SUBSCRIBE, b"")
        self.sock.connect(endpoint)
        self.summary = FeedSummary()
        self._seq: dict[tuple[str, int], int] = {}
        self._tseq: dict[tuple[str, int, str], int] = {}

    def read(self, until: Callable[[FeedSummary], bool], timeout_s: float) -> FeedSummary:
        deadline = time.monotonic() + timeout_s
        while not until(self.summary):
            remaining = deadline - time.monotonic()
            check(remaining > 0, f"feed: not enough traffic within {timeout_s:.0f}s "
                                 f"(ticks {self.summary.ticks}, metrics {self.summary.metrics},"
                                 f" health {self.summary.health})")
            if self.sock.poll(int(min(remaining, 0.2) * 1000)):
                self._check(self.sock.recv_multipart())
        return self.summary

    def _check(self, frames: list[bytes]) -> None:
        check(len(frames) == 2, f"feed: message of {len(frames)} frames, expected [topic, "
                                f"payload]")
        topic = frames[0].decode("utf-8")
        payload = msgpack.unpackb(frames[1], raw=False)
        check(isinstance(payload, dict), f"feed: {topic} payload is not a map")
        for key in ENVELOPE:
            expected = str if key == "pub" else int
            check(type(payload.get(key)) is expected,
                  f"feed: {topic} envelope field {key} is {payload.get(key)!r}")
        self._sequence(topic, payload)
        if topic.startswith("telemetry.metrics."):
            missing = [k for k in METRICS if k not in payload]
            check(not missing, f"feed: {topic} lacks {missing}")
            self.summary.metrics += 1
        elif topic.startswith("telemetry.health."):
            missing = [k for k in HEALTH if k not in payload]
            check(not missing, f"feed: {topic} lacks {missing}")
            check(payload["status"] in HEALTH_STATES, f"feed: health status {payload['status']}")
            self.summary.health += 1
        elif not topic.startswith(("telemetry.", "event.")):
            self._tick(topic, payload)

    def _sequence(self, topic: str, payload: dict[str, Any]) -> None:
        """seq +1 per message of a publisher (all topics), tseq +1 per topic."""
        pub, epoch = payload["pub"], payload["epoch"]
        previous = self._seq.get((pub, epoch))
        if previous is not None and payload["seq"] != previous + 1:
            self.summary.gaps += 1
        self._seq[(pub, epoch)] = payload["seq"]
        key = (pub, epoch, topic)
        previous = self._tseq.get(key)
        if previous is not None and payload["tseq"] != previous + 1:
            self.summary.gaps += 1
        self._tseq[key] = payload["tseq"]

    def _tick(self, topic: str, tick: dict[str, Any]) -> None:
        check(tick.get("vt_symbol", topic) == topic, f"feed: tick vt_symbol "
                                                     f"{tick.get('vt_symbol')!r} != {topic!r}")
        if "exchange" in tick and "." in topic:
            check(tick["exchange"] == topic.rpartition(".")[2],
                  f"feed: {topic} exchange {tick['exchange']!r} is not the part after the dot")
        for key, value in tick.items():
            if key in TICK_STRINGS:
                check(isinstance(value, str), f"feed: {topic} {key} is not a string")
            elif key.endswith(("_price", "_volume")) or "_price_" in key or "_volume_" in key:
                check(_is_number(value), f"feed: {topic} {key} = {value!r} is not a number")
        self.summary.ticks += 1
        if _is_number(tick.get("bid_price_1")) and _is_number(tick.get("ask_price_1")):
            self.summary.quotes[topic] = tick

    def close(self) -> None:
        self.sock.close(0)


class EventWatcher:
    """SUB to the gateway's PUB for event.* topics."""

    def __init__(self, ctx: zmq.Context, endpoint: str) -> None:
        self.sock = ctx.socket(zmq.SUB)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.SUBSCRIBE, b"")
        self.sock.connect(endpoint)
        self.events: list[tuple[str, dict[str, Any]]] = []

    def wait(self, topic: str, timeout_s: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            for seen, payload in self.events:
                if seen == topic:
                    return payload
            remaining = deadline - time.monotonic()
            check(remaining > 0, f"events: no {topic} within {timeout_s:.0f}s")
            if self.sock.poll(int(min(remaining, 0.2) * 1000)):
                raw_topic, raw = self.sock.recv_multipart()
                self.events.append((raw_topic.decode(), msgpack.unpackb(raw, raw=False)))

    def close(self) -> None:
        self.sock.close(0)


# --- the gateway ------------------------------------------------------------------------


class Client:
    """REQ client, Lazy Pirate style: on timeout reopen and resend the same request."""

    def __init__(self, ctx: zmq.Context, endpoint: str, client_id: str,
                 timeout_ms: int = 3000, retries: int = 3) -> None:
        self.ctx = ctx
        self.endpoint = endpoint
        self.client_id = client_id
        self.timeout_ms = timeout_ms
        self.retries = retries
        self.sock = self._open()

    def _open(self) -> zmq.Socket:
        sock = self.ctx.socket(zmq.REQ)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(self.endpoint)
        return sock

    def connect(self, endpoint: str) -> None:
        self.sock.close(0)
        self.endpoint = endpoint
        self.sock = self._open()

    def build(self, action: str, payload: dict[str, Any] | None = None) -> bytes:
        return msgpack.packb({"v": VERSION, "action": action, "req_id": uuid.uuid4().hex,
                              "client_id": self.client_id, "ts_ns": time.time_ns(),
                              "payload": payload or {}}, use_bin_type=True)

    def send_raw(self, frame: bytes) -> dict[str, Any]:
        for _ in range(self.retries):
            self.sock.send(frame)
            if self.sock.poll(self.timeout_ms):
                reply = msgpack.unpackb(self.sock.recv(), raw=False)
                check_reply_shape(reply)
                return reply
            self.sock.close(0)
            self.sock = self._open()
        raise CheckFailed(f"gateway {self.endpoint}: no reply after {self.retries} attempts")

    def request(self, action: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        frame = self.build(action, payload)
        reply = self.send_raw(frame)
        sent = msgpack.unpackb(frame, raw=False)
        check(reply["req_id"] == sent["req_id"], f"{action}: reply req_id "
                                                 f"{reply['req_id']!r} != {sent['req_id']!r}")
        check(reply["action"] == action, f"{action}: reply action is {reply['action']!r}")
        return reply

    def success(self, action: str, payload: dict[str, Any] | None = None) -> Any:
        reply = self.request(action, payload)
        check(reply["status"] == "SUCCESS" and reply["error"] is None,
              f"{action}: expected SUCCESS, got {reply['status']} {reply['error']}")
        return reply["data"]

    def close(self) -> None:
        self.sock.close(0)


def check_reply_shape(reply: Any) -> None:
    check(isinstance(reply, dict), "reply is not a map")
    for key in ("v", "req_id", "action", "status", "data", "error", "ts_ns"):
        check(key in reply, f"reply lacks {key}: {reply}")
    check(reply["v"] == VERSION, f"reply v is {reply['v']!r}")
    check(reply["status"] in STATUSES, f"reply status {reply['status']!r}")
    check(type(reply["ts_ns"]) is int, "reply ts_ns is not an integer")
    error = reply["error"]
    if error is not None:
        check(isinstance(error, dict) and error.get("code") in ERROR_CODES
              and isinstance(error.get("message"), str), f"reply error malformed: {error}")
    check((reply["status"] == "SUCCESS") == (error is None),
          f"reply {reply['status']} with error {error}")


def _code(reply: dict[str, Any]) -> str | None:
    return (reply.get("error") or {}).get("code")


def _qty(positions: Any, vt_symbol: str) -> float:
    check(isinstance(positions, list), "GET_POSITIONS data is not a list")
    for row in positions:
        for key in ("vt_symbol", "qty", "avg_price", "last_price", "unrealized_pnl"):
            check(key in row, f"position lacks {key}: {row}")
    return sum(row["qty"] for row in positions if row["vt_symbol"] == vt_symbol)


# --- the scenario -------------------------------------------------------------------------


def run_scenario(gateway: str, feed: str, *, events: str | None = None,
                 restart: Callable[[], str] | None = None, client_id: str = "acceptance",
                 timeout_s: float = 15.0) -> Report:
    """Run every step; `restart` stops and starts the gateway and returns its endpoint."""
    report = Report()
    ctx = zmq.Context()
    try:
        _scenario(ctx, report, gateway, feed, events, restart, client_id, timeout_s)
    except CheckFailed as exc:
        report.failed = str(exc)
    finally:
        ctx.destroy(linger=0)
    return report


def _scenario(ctx: zmq.Context, report: Report, gateway: str, feed_ep: str,
              events_ep: str | None, restart: Callable[[], str] | None, client_id: str,
              timeout_s: float) -> None:
    feed = FeedWatcher(ctx, feed_ep)
    summary = feed.read(lambda s: s.ticks >= 50 and s.metrics and s.health and s.quotes,
                        timeout_s)
    check(summary.gaps == 0, f"feed: {summary.gaps} seq/tseq gaps in a local feed")
    report.step(f"feed: {summary.ticks} envelope ticks, contiguous seq/tseq, telemetry fields")
    vt_symbol = next(iter(summary.quotes))
    feed.close()

    watcher = EventWatcher(ctx, events_ep) if events_ep else None
    client = Client(ctx, gateway, client_id)
    beat = client.success("HEARTBEAT")
    check(all(k in beat for k in HEARTBEAT_DATA), f"HEARTBEAT data lacks fields: {beat}")
    check(beat["trading_state"] == "ACTIVE", f"gateway starts {beat['trading_state']}, "
                                             f"needs a fresh state dir")
    report.step("heartbeat")

    before = _qty(client.success("GET_POSITIONS"), vt_symbol)
    order_payload = {"vt_symbol": vt_symbol, "side": "BUY", "qty": 1.0, "type": "MARKET"}
    deadline = time.monotonic() + timeout_s
    while True:  # the gateway may not have seen a price for this symbol yet
        frame = client.build("OPEN_ORDER", order_payload)
        first = client.send_raw(frame)
        if not (first["status"] == "REJECTED" and _code(first) == "NOT_FOUND"):
            break
        check(time.monotonic() < deadline, f"OPEN_ORDER {vt_symbol}: no price after "
                                           f"{timeout_s:.0f}s")
        time.sleep(0.1)
    check(first["status"] == "SUCCESS", f"OPEN_ORDER: {first['status']} {first['error']}")
    data = first["data"]
    check(isinstance(data.get("order_id"), str) and data.get("status") == "FILLED"
          and _is_number(data.get("fill_price")), f"OPEN_ORDER MARKET data: {data}")
    report.step(f"market order {vt_symbol} filled at {data['fill_price']}")

    again = client.send_raw(frame)
    check(again == first, f"duplicate req_id: reply differs\n{again}\n!=\n{first}")
    report.step("duplicate request: same reply")

    after = _qty(client.success("GET_POSITIONS"), vt_symbol)
    check(after == before + 1.0, f"positions: {vt_symbol} qty {after}, expected "
                                 f"{before + 1.0} (duplicate must not act twice)")
    report.step("positions: acted once")

    kill = client.success("KILL_SWITCH", {"reason": "acceptance", "mode": "FLATTEN"})
    check(all(k in kill for k in KILL_DATA), f"KILL_SWITCH data lacks fields: {kill}")
    check(kill["trading_state"] == "HALTED" and kill["incident_id"], f"KILL_SWITCH: {kill}")
    incident = kill["incident_id"]
    check(_qty(client.success("GET_POSITIONS"), vt_symbol) == 0.0, "FLATTEN left a position")
    if watcher is not None:
        watcher.wait("event.kill", timeout_s)
    report.step(f"kill switch: HALTED, incident {incident}")

    repeat = client.success("KILL_SWITCH", {"reason": "acceptance again", "mode": "FLATTEN"})
    check(repeat["incident_id"] == incident, f"repeat kill: incident {repeat['incident_id']} "
                                             f"!= {incident}")
    report.step("repeat kill: same incident")

    refused = client.request("OPEN_ORDER", order_payload)
    check(refused["status"] == "REJECTED" and _code(refused) == "TRADING_HALTED",
          f"order while halted: {refused['status']} {refused['error']}")
    report.step("order while halted: REJECTED TRADING_HALTED")

    garbage = client.send_raw(b"\xc1 this is not msgpack \xff")
    check(garbage["status"] == "ERROR" and garbage["req_id"] is None
          and _code(garbage) == "BAD_REQUEST", f"garbage frame: {garbage}")
    client.success("HEARTBEAT")
    report.step("garbage frame: ERROR BAD_REQUEST, gateway still answers")

    if restart is not None:
        client.connect(restart())
        status = client.success("GET_STATUS")
        check(all(k in status for k in STATUS_DATA), f"GET_STATUS data lacks fields: {status}")
        check(status["trading_state"] == "HALTED" and status["incident_id"] == incident,
              f"after restart: {status['trading_state']} {status['incident_id']}")
        report.step("restart: still HALTED, same incident")

    wrong = client.request("RESUME_TRADING", {"incident_id": incident + "-wrong",
                                              "reason": "acceptance"})
    check(wrong["status"] != "SUCCESS", "RESUME_TRADING with a wrong incident id succeeded")
    check(client.success("GET_STATUS")["trading_state"] == "HALTED", "wrong id released it")
    resumed = client.success("RESUME_TRADING", {"incident_id": incident, "reason": "acceptance"})
    check(resumed["trading_state"] == "ACTIVE", f"RESUME_TRADING: {resumed}")
    check(client.success("HEARTBEAT")["trading_state"] == "ACTIVE", "not ACTIVE after resume")
    report.step("resume: only the incident id releases it")
    client.close()
    if watcher is not None:
        watcher.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gateway", required=True, help="gateway command endpoint")
    parser.add_argument("--feed", required=True, help="publisher endpoint")
    parser.add_argument("--events", help="gateway event endpoint (checks event.kill)")
    parser.add_argument("--timeout", type=float, default=15.0, help="seconds per wait")
    args = parser.parse_args(argv)
    report = run_scenario(args.gateway, args.feed, events=args.events, timeout_s=args.timeout)
    print(report.text())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
