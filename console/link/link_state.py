"""What the console believes about the gateway: UP, LATE or DOWN, and its trading state.

The client thread reports each request's outcome here; the UI thread reads a
`GatewayStatus` snapshot whenever it paints. Both sides go through one lock.

Link state: UNKNOWN until the first outcome; UP after any reply; LATE while
UP but the current request has been outstanding longer than `late_ms` or the
last heartbeat RTT exceeded it; DOWN after a request got no reply in
`retries` attempts, until a later reply (heartbeats keep trying), and already
while a request waits when no reply at all came for `timeout_ms * retries`
(so a dead gateway shows DOWN within that time). `clock_ns` stamps
`last_ok_ns` and times LATE; RTTs are measured by the caller.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from console.model import GW_DOWN, GW_LATE, GW_UNKNOWN, GW_UP, GatewayStatus
from services.protocol import (
    ACTIVE,
    GET_STATUS,
    HALTED,
    HEARTBEAT,
    KILL_SWITCH,
    SUCCESS,
    TRADING_HALTED,
)

# The gateway link logs under one name, whichever of its modules speaks.
log = logging.getLogger("console.link.client")

RTT_HISTORY = 120


class LinkState:
    """The link's state and its judgement, shared by the client thread and its readers."""

    def __init__(self, endpoint: str, *, heartbeat_interval_s: float, late_ms: float,
                 timeout_ms: int, retries: int, clock_ns: Callable[[], int]) -> None:
        self.endpoint = endpoint
        self.heartbeat_interval_s = heartbeat_interval_s
        self.late_ms = late_ms
        self.timeout_ms = timeout_ms
        self.retries = retries
        self._clock_ns = clock_ns
        self._lock = threading.Lock()
        self._link = GW_UNKNOWN
        self._detail = ""
        self._rtt_ms: float | None = None
        self._rtt_history: deque[float] = deque(maxlen=RTT_HISTORY)
        self._trading_state: str | None = None
        self._incident_id: str | None = None
        self._last_ok_ns: int | None = None
        self._inflight_since_ns: int | None = None
        self._node: str | None = None

    # --- the client thread's side ---------------------------------------------------

    def sending(self) -> bool:
        """A request goes out now; True when the link is DOWN (it then gets fewer attempts)."""
        with self._lock:
            self._inflight_since_ns = self._clock_ns()
            return self._link == GW_DOWN

    def settled(self) -> None:
        """The request in flight has an outcome (or was abandoned)."""
        with self._lock:
            self._inflight_since_ns = None

    def no_reply(self, message: str) -> None:
        """Every attempt timed out: DOWN until a later reply."""
        with self._lock:
            if self._link != GW_DOWN:
                log.warning("gateway %s DOWN: %s", self.endpoint, message)
            self._link = GW_DOWN
            self._detail = message

    def replied(self, action: str, reply: dict[str, Any], rtt_ms: float | None) -> None:
        """A reply came: UP, and whatever it says about RTT and trading state."""
        with self._lock:
            if self._link == GW_DOWN:
                log.info("gateway %s is back UP", self.endpoint)
            self._link = GW_UP
            self._detail = ""
            self._last_ok_ns = self._clock_ns()
            if action == HEARTBEAT:
                self._rtt_ms = rtt_ms
                if rtt_ms is not None:
                    self._rtt_history.append(rtt_ms)
                self._learn_node(reply.get("data"))
            self._learn_trading_state(action, reply)

    def _learn_node(self, data: Any) -> None:
        """The node behind the endpoint; a change (a different gateway there now) is logged."""
        node = data.get("node") if isinstance(data, dict) else None
        if not isinstance(node, str) or not node or node == self._node:
            return
        if self._node is not None:
            log.warning("gateway %s: node changed from %s to %s", self.endpoint, self._node, node)
        self._node = node

    def _learn_trading_state(self, action: str, reply: dict[str, Any]) -> None:
        """Track ACTIVE/HALTED from any reply that says it (caller holds the lock)."""
        data = reply.get("data")
        if reply.get("status") == SUCCESS and isinstance(data, dict):
            state = data.get("trading_state")
            if state in (ACTIVE, HALTED):
                self._trading_state = state
                incident = data.get("incident_id")
                if state == ACTIVE:
                    self._incident_id = None
                elif isinstance(incident, str) and action in (GET_STATUS, KILL_SWITCH):
                    self._incident_id = incident
        error = reply.get("error")
        if isinstance(error, dict) and error.get("code") == TRADING_HALTED:
            self._trading_state = HALTED

    # --- the readers' side -------------------------------------------------------------

    def status(self) -> GatewayStatus:
        with self._lock:
            state = self._link
            detail = self._detail
            if state == GW_UP:
                now = self._clock_ns()
                since = self._inflight_since_ns
                outstanding_ms = (now - since) / 1e6 if since is not None else 0.0
                # Silence counts from the last reply, but an idle pause before this
                # request counts for at most one heartbeat interval, and always leaves
                # the request its first attempt: after a long quiet spell a request is
                # not DOWN the moment it is sent.
                pause_ms = min(self.heartbeat_interval_s * 1000,
                               self.timeout_ms * (self.retries - 1))
                pause_ns = int(pause_ms * 1e6)
                base = since - pause_ns if since is not None else None
                if base is not None and self._last_ok_ns is not None:
                    base = max(base, self._last_ok_ns)
                silent_ms = (now - base) / 1e6 if base is not None else 0.0
                if since is not None and silent_ms >= self.timeout_ms * self.retries:
                    # Waiting, and no reply at all for a whole retry budget: gone, even
                    # if this request has attempts left (DOWN within that budget of a death).
                    state = GW_DOWN
                    detail = f"no reply for {silent_ms / 1000:.1f} s"
                elif outstanding_ms > self.late_ms or (
                    self._rtt_ms is not None and self._rtt_ms > self.late_ms
                ):
                    state = GW_LATE
            return GatewayStatus(
                endpoint=self.endpoint,
                state=state,
                rtt_ms=self._rtt_ms,
                trading_state=self._trading_state,
                incident_id=self._incident_id,
                last_ok_ns=self._last_ok_ns,
                rtt_history_ms=list(self._rtt_history),
                detail=detail,
                node=self._node,
            )
