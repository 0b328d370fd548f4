"""What the data layer hands the UI: plain, immutable-by-convention records.

The ingest thread and the gateway client thread own all mutable state. Once
per frame the UI calls `TickSource.drain()` and gets a `FrameUpdate` holding
only what changed since the previous call, already derived for display, so
the UI thread does no per-tick work.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any, Protocol

import msgspec

# Feed connection states (from the ZMQ socket monitor).
CONN_CONNECTING = "connecting"
CONN_CONNECTED = "connected"
CONN_RETRYING = "retrying"
CONN_DISCONNECTED = "disconnected"
# A connection libzmq closed because its peer went silent past the heartbeat
# timeout (a path that died without RST or FIN); kept until a handshake succeeds.
CONN_HEARTBEAT_TIMEOUT = "disconnected (heartbeat timeout)"

# Feed freshness.
FEED_OK = "OK"
FEED_STALE = "STALE"
FEED_DOWN = "DOWN"

# Gateway link states.
GW_UP = "UP"
GW_LATE = "LATE"
GW_DOWN = "DOWN"
GW_UNKNOWN = "UNKNOWN"


class SymbolRow(msgspec.Struct, array_like=True, gc=False):
    """One tick-table row, derived from the latest tick of a symbol.

    A msgspec Struct rather than a dataclass: rows are built for every changed
    symbol every frame and cross from the ingest process to the UI process,
    where a Struct is about twice as cheap to build and five times to encode
    (as an array). It holds only scalars, so the cycle collector can skip it.
    """

    vt_symbol: str
    exchange: str
    last: float | None
    change: float | None          # last - pre_close (or - first seen last) ; None unknown
    bid: float | None
    ask: float | None
    spread: float | None
    bid_size: float | None
    ask_size: float | None
    volume: float | None
    ticks: int                    # ticks received for this symbol
    updated_ns: int               # console clock (time.monotonic_ns) at the latest tick
    latency_us: float | None      # now - ts_ns at receive; None when no envelope
    direction: int                # +1 up, -1 down, 0 unchanged since the previous tick
    has_envelope: bool            # False: third-party publisher, latency/gaps unknown
    gaps: int                     # tseq gaps for this symbol (0 when unknown)
    feed: str                     # endpoint it came from


@dataclass(slots=True)
class SymbolDetail:
    """The detail pane: the latest full tick plus a short history."""

    row: SymbolRow
    tick: dict[str, Any]                                   # latest payload as received
    recent: list[tuple[int, float]] = field(default_factory=list)  # (recv ns, last price)
    problem: str | None = None                              # tick_field_problem() of the tick


@dataclass(slots=True)
class FeedRow:
    """One row of the feeds panel (one SUB socket / endpoint)."""

    endpoint: str
    connection: str               # CONN_*
    state: str                    # FEED_*
    received: int                 # exact total of frames received on this socket
    rejected: int
    gaps: int                     # messages missing by seq (per publisher, restarts excluded)
    restarts: int                 # epoch changes seen
    msgs_per_s: float
    last_seen_ns: int | None      # console clock of the last frame, None = never
    latency_p50_us: float | None
    latency_p99_us: float | None
    backlog: int                  # frames received by ingest not yet shown (coalesced)
    publishers: dict[str, dict[str, Any]] = field(default_factory=dict)
    # node -> latest telemetry.metrics payload (queue_depth, queue_capacity, dropped_total ...)
    health: dict[str, str] = field(default_factory=dict)   # node -> OK|DEGRADED|DOWN
    duplicates: int = 0           # seq going backwards within an epoch (duplicate or reorder)
    last_problem: str | None = None  # why the latest rejected frame was rejected
    late: int = 0                 # ticks older than the stale threshold when they arrived


@dataclass(slots=True)
class TelemetryRecord:
    """A health or log message from a node, for the telemetry pane."""

    node: str
    kind: str                     # "health" | "logs" | "metrics"
    level: str                    # log level, or health status
    message: str
    ts_ns: int


@dataclass(slots=True)
class History:
    """Per-second samples for the sparklines, oldest first, bounded to history_s."""

    rate_total: list[float] = field(default_factory=list)
    rate_by_feed: dict[str, list[float]] = field(default_factory=dict)
    latency_p50_us: list[float] = field(default_factory=list)
    latency_p99_us: list[float] = field(default_factory=list)
    late_per_s: list[int] = field(default_factory=list)     # late ticks per second (all feeds)


@dataclass(slots=True)
class FrameUpdate:
    """Everything that changed since the previous drain()."""

    rows: dict[str, SymbolRow]            # changed symbols only
    removed: list[str]                    # symbols evicted (max_symbols)
    feeds: list[FeedRow]                  # all feeds, every frame (cheap: few rows)
    telemetry: list[TelemetryRecord]      # new health/log records
    events: list[tuple[str, dict[str, Any]]]  # new event.* (topic, payload)
    history: History | None               # set once per second when a sample was added
    received_total: int                   # all frames, all feeds
    pending: int                          # ticks coalesced since the previous drain


class TickSource(Protocol):
    """The console's view of ingest; the real one is a thread over SUB sockets."""

    def start(self) -> None: ...
    def stop(self) -> None: ...
    def drain(self) -> FrameUpdate: ...
    # The symbols on screen: a source may send other rows less often (None: all).
    def show(self, on_screen: Collection[str] | None) -> None: ...
    def detail(self, vt_symbol: str) -> SymbolDetail | None: ...
    def all_rows(self) -> dict[str, SymbolRow]: ...


@dataclass(slots=True)
class Reply:
    """Outcome of one gateway request, delivered to the caller's callback."""

    action: str
    req_id: str
    delivered: bool               # False: no reply after every retry (gateway down)
    status: str | None            # SUCCESS / REJECTED / ERROR, None when not delivered
    data: Any = None
    error: dict[str, Any] | None = None
    rtt_ms: float | None = None

    @property
    def ok(self) -> bool:
        return self.delivered and self.status == "SUCCESS"


@dataclass(slots=True)
class GatewayStatus:
    """Link health for the status bar, read by the UI every frame."""

    endpoint: str
    state: str                    # GW_*
    rtt_ms: float | None          # last heartbeat round trip
    trading_state: str | None     # ACTIVE / HALTED, None until known
    incident_id: str | None
    last_ok_ns: int | None        # console clock of the last good reply
    rtt_history_ms: list[float] = field(default_factory=list)
    detail: str = ""
    node: str | None = None       # the node that answered the last heartbeat


ReplyCallback = Callable[[Reply], None]


class GatewayLink(Protocol):
    """The console's gateway client; requests never block the caller."""

    def start(self) -> None: ...
    def stop(self) -> None: ...
    def status(self) -> GatewayStatus: ...
    def request(
        self,
        action: str,
        payload: dict[str, Any] | None = None,
        *,
        req_id: str | None = None,
        on_reply: ReplyCallback | None = None,
        urgent: bool = False,
    ) -> str: ...
