"""A deterministic, socket-free console: frozen feed and frozen gateway.

Used by the snapshot tests (and handy for UI work): a real `FeedBook` fed
from `Market(symbols, seed=42)` under an injected clock, then frozen, so every
run renders the same screen. Nothing here opens a socket or a thread.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any

from console.feed.book import FeedBook
from console.model import (
    CONN_CONNECTED,
    GW_DOWN,
    GW_UP,
    FrameUpdate,
    GatewayStatus,
    Reply,
    SymbolDetail,
    SymbolRow,
)
from services.market import Market
from services.protocol import (
    ACTIVE,
    GET_ACCOUNT_INFO,
    GET_ORDERS,
    GET_POSITIONS,
    GET_STATUS,
    HALTED,
    HEARTBEAT,
    KILL_SWITCH,
    RESUME_TRADING,
    SUCCESS,
    packb,
)

NS = 1_000_000_000
FROZEN_WALL_NS = 1_750_000_000 * NS      # 2025-06-15T15:06:40Z
FROZEN_MONO_START_NS = 1_000 * NS
FEED_ENDPOINTS = ("tcp://127.0.0.1:5556", "tcp://127.0.0.1:5558")
THIRD_PARTY_SYMBOLS = ("EURUSD.IDEALPRO", "GBPUSD.IDEALPRO")
STEP_NS = 25_000_000          # 25 ms between simulated ticks
LATENCY_NS = 850_000          # every enveloped tick "took" 850 µs


class SteppingClock:
    """A clock that only moves when told: monotonic and wall time together."""

    def __init__(self, mono_ns: int = FROZEN_MONO_START_NS, wall_ns: int = FROZEN_WALL_NS):
        self.mono = mono_ns
        self.wall = wall_ns

    def advance(self, ns: int) -> None:
        self.mono += ns
        self.wall += ns

    def mono_ns(self) -> int:
        return self.mono

    def wall_ns(self) -> int:
        return self.wall


def build_frozen_book(symbols: int = 24, ticks: int = 600, seed: int = 42,
                      clock: SteppingClock | None = None) -> tuple[FeedBook, SteppingClock]:
    """A FeedBook holding `ticks` Market ticks, telemetry and two envelope-less symbols."""
    clock = clock or SteppingClock()
    book = FeedBook(list(FEED_ENDPOINTS), clock_ns=clock.mono_ns, wall_ns=clock.wall_ns,
                    stale_after_s=3.0, history_s=120)
    for index in range(len(FEED_ENDPOINTS)):
        book.set_connection(index, CONN_CONNECTED)
    market = Market(symbols, seed, clock=lambda: clock.wall / NS, local_tz=UTC)
    seq = itertools.count(1)
    tseq: dict[str, int] = {}

    def envelope(topic: str, body: dict[str, Any]) -> dict[str, Any]:
        tseq[topic] = tseq.get(topic, 0) + 1
        body.update(pub="pub-1", epoch=1, seq=next(seq), tseq=tseq[topic],
                    ts_ns=clock.wall - LATENCY_NS)
        return body

    # Third-party ticks (no envelope) arrive first and then stop: they go STALE.
    for n, vt in enumerate(THIRD_PARTY_SYMBOLS):
        symbol, _, exchange = vt.partition(".")
        book.on_frame(0, vt.encode(), packb({
            "symbol": symbol, "exchange": exchange, "vt_symbol": vt, "last_price": 1.08 + n / 5,
            "bid_price_1": 1.0799 + n / 5, "ask_price_1": 1.0801 + n / 5,
            "bid_volume_1": 1_000_000.0, "ask_volume_1": 2_500_000.0, "volume": 0.0,
        }))
        clock.advance(STEP_NS)
    metrics = {"node": "pub-1", "uptime_s": 15.0, "sent_total": ticks, "msgs_per_s": 40.0,
               "bytes_per_s": 40_000.0, "ser_us_p50": 4.0, "ser_us_p99": 9.0,
               "queue_depth": 3, "queue_capacity": 100_000, "dropped_total": 0}
    book.on_frame(0, b"telemetry.logs.pub-1", packb(envelope("telemetry.logs.pub-1", {
        "node": "pub-1", "level": "INFO", "message": "publishing 24 symbols"})))
    for n in range(ticks):
        topic, tick = market.next_tick()
        book.on_frame(0, topic.encode(), packb(envelope(topic, tick)))
        clock.advance(STEP_NS)
        if n % 40 == 0:
            book.on_frame(0, b"telemetry.metrics.pub-1",
                          packb(envelope("telemetry.metrics.pub-1", dict(metrics))))
            book.on_frame(0, b"telemetry.health.pub-1", packb(envelope(
                "telemetry.health.pub-1", {"node": "pub-1", "status": "OK", "detail": ""})))
            book.on_frame(1, b"telemetry.health.gw-1", packb(
                {"node": "gw-1", "status": "OK", "detail": "", "ts_ns": clock.wall}))
    book.on_frame(1, b"telemetry.logs.gw-1", packb(
        {"node": "gw-1", "level": "WARNING", "message": "client console-1 slow to read",
         "ts_ns": clock.wall}))
    return book, clock


class FrozenSource:
    """TickSource over a pre-filled FeedBook: everything on the first drain, then stillness."""

    def __init__(self, book: FeedBook) -> None:
        self._book = book
        self._first: FrameUpdate | None = None

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def drain(self) -> FrameUpdate:
        if self._first is None:
            self._first = self._book.drain()
            return self._first
        first = self._first
        return FrameUpdate(rows={}, removed=[], feeds=first.feeds, telemetry=[], events=[],
                           history=None, received_total=first.received_total, pending=0)

    def show(self, on_screen: Collection[str] | None) -> None:
        pass  # everything arrives on the first drain

    def detail(self, vt_symbol: str) -> SymbolDetail | None:
        return self._book.detail(vt_symbol)

    def all_rows(self) -> dict[str, SymbolRow]:
        return self._book.all_rows()


@dataclass
class FrozenGateway:
    """GatewayLink answering synchronously from canned paper-account data."""

    endpoint: str = "tcp://127.0.0.1:5555"
    clock_ns: Callable[[], int] = lambda: FROZEN_MONO_START_NS
    trading_state: str = ACTIVE
    incident_id: str | None = None
    reason: str | None = None
    down: bool = False
    node: str = "gw-1"
    account_id: str = "PAPER-1"
    requests: list[tuple[str, dict[str, Any], str | None]] = field(default_factory=list)
    last_kill: dict[str, Any] = field(default_factory=dict)
    positions: list[dict[str, Any]] = field(default_factory=lambda: [
        {"vt_symbol": "BTCUSD.KRAKEN", "qty": 0.5, "avg_price": 64_980.0,
         "last_price": 65_010.0, "unrealized_pnl": 15.0},
        {"vt_symbol": "AAPL.NASDAQ", "qty": -200.0, "avg_price": 211.2,
         "last_price": 210.9, "unrealized_pnl": 60.0},
    ])
    orders: list[dict[str, Any]] = field(default_factory=lambda: [
        {"order_id": "O-7", "vt_symbol": "IBM.NYSE", "side": "BUY", "qty": 100.0,
         "type": "LIMIT", "price": 240.0, "status": "WORKING"},
    ])

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def status(self) -> GatewayStatus:
        if self.down:
            return GatewayStatus(
                endpoint=self.endpoint, state=GW_DOWN, rtt_ms=None,
                trading_state=self.trading_state, incident_id=self.incident_id,
                last_ok_ns=None, detail="no reply", node=self.node)
        return GatewayStatus(
            endpoint=self.endpoint, state=GW_UP, rtt_ms=0.42, trading_state=self.trading_state,
            incident_id=self.incident_id, last_ok_ns=self.clock_ns(),
            rtt_history_ms=[0.40, 0.45, 0.41, 0.52, 0.43, 0.39, 0.47, 0.42] * 4,
            node=self.node,
        )

    def _data(self, action: str, payload: dict[str, Any]) -> Any:
        if action == HEARTBEAT:
            return {"node": self.node, "uptime_s": 60.0, "trading_state": self.trading_state,
                    "ts_ns": FROZEN_WALL_NS}
        if action == GET_STATUS:
            return {"trading_state": self.trading_state, "incident_id": self.incident_id,
                    "halted_at_ns": None, "reason": self.reason,
                    "positions": len(self.positions), "working_orders": len(self.orders)}
        if action == GET_POSITIONS:
            return list(self.positions)
        if action == GET_ORDERS:
            return list(self.orders)
        if action == GET_ACCOUNT_INFO:
            return {"account_id": self.account_id, "currency": "USD", "balance": 1_000_000.0,
                    "equity": 1_000_075.0, "unrealized_pnl": 75.0, "realized_pnl": 0.0,
                    "margin_used": 54_732.0}
        if action == KILL_SWITCH:
            if self.trading_state != HALTED:
                self.trading_state, self.incident_id = HALTED, "INC-0001"
                self.reason = payload.get("reason")
                cancelled = [o["order_id"] for o in self.orders]
                closed = [p["vt_symbol"] for p in self.positions] \
                    if payload.get("mode") == "FLATTEN" else []
                self.orders = []
                if closed:
                    self.positions = []
                self.last_kill = {"cancelled_orders": cancelled, "closed_positions": closed}
            return {"incident_id": self.incident_id, "trading_state": HALTED,
                    **self.last_kill}
        if action == RESUME_TRADING:
            self.trading_state, self.incident_id, self.reason = ACTIVE, None, None
            return {"trading_state": ACTIVE}
        return None

    def request(self, action: str, payload: dict[str, Any] | None = None, *,
                req_id: str | None = None, on_reply: Callable[[Reply], None] | None = None,
                urgent: bool = False) -> str:
        req_id = req_id or f"req-{len(self.requests) + 1}"
        self.requests.append((action, dict(payload or {}), req_id))
        if self.down:
            reply = Reply(action, req_id, delivered=False, status=None)
        else:
            reply = Reply(action, req_id, delivered=True, status=SUCCESS,
                          data=self._data(action, payload or {}), rtt_ms=0.42)
        if on_reply is not None:
            on_reply(reply)
        return req_id
