"""The SUB sockets of ingest: set-up, the connection monitor, and revival of dead links.

One SUB socket per endpoint keeps per-feed counts exact, and a socket monitor
per SUB reports connected / retrying / disconnected. libzmq does not
reconnect after some drops (a frame over MAXMSGSIZE, a refused CURVE key);
those connections are re-opened here. After `open()` the sockets belong to
the ingest thread alone.

Every SUB has ZMTP heartbeats (services.runtime.network), so a path that dies
silently closes within the heartbeat timeout and libzmq reconnects as soon as
the path is back. libzmq reports that close as a plain disconnect; one that
follows at least `heartbeat_timeout_ms` without a frame is shown as
`disconnected (heartbeat timeout)` until a handshake succeeds again.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import zmq
from zmq.utils.monitor import recv_monitor_message

from console.model import (
    CONN_CONNECTED,
    CONN_CONNECTING,
    CONN_DISCONNECTED,
    CONN_HEARTBEAT_TIMEOUT,
    CONN_RETRYING,
)
from services.protocol import Limits
from services.runtime.network import DEFAULT_NETWORK, NetworkOptions, apply_network
from services.runtime.sockets import apply_limits, connect

# Part of ingest: its log lines keep the ingest logger name.
log = logging.getLogger("console.feed.ingest")

# A dropped connection that libzmq has not started retrying within this long
# is re-opened by ingest.
REVIVE_AFTER_S = 1.0
# A connection dropped for an oversized frame is re-opened at once: the feed is
# fine, one frame was not. Drops that follow each other within
# OVERSIZED_BURST_S back off (doubling from OVERSIZED_FIRST_BACKOFF_S up to
# REVIVE_AFTER_S), so a publisher sending nothing but huge frames is not
# reconnected in a tight loop.
OVERSIZED_BURST_S = 0.5
OVERSIZED_FIRST_BACKOFF_S = 0.05
OVERSIZED_DROP = "connection dropped by libzmq: a frame over max_msg_size (or a broken stream)"

_HANDSHAKE_FAILURES = {
    zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL: "handshake failed",
    zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL: "handshake failed (protocol)",
    zmq.EVENT_HANDSHAKE_FAILED_AUTH: "handshake failed (authentication refused)",
}


class FeedSockets:
    """One SUB and its monitor per endpoint; connection changes go to the callbacks.

    `set_state(index, state)` records a model.CONN_* state, `state_of(index)`
    reads it back, `on_dropped(index, reason)` counts a frame libzmq refused,
    `silent_ns(index)` says how long the feed has sent nothing (None: never
    heard from). Each takes whatever lock guards the book.
    """

    def __init__(
        self,
        endpoints: Sequence[str],
        *,
        rcvhwm: int,
        limits: Limits,
        keys_dir: str | Path | None,
        context: zmq.Context | None,
        set_state: Callable[[int, str], None],
        state_of: Callable[[int], str],
        on_dropped: Callable[[int, str], None],
        silent_ns: Callable[[int], int | None] = lambda index: None,
        network: NetworkOptions = DEFAULT_NETWORK,
    ) -> None:
        self.endpoints = list(endpoints)
        self._rcvhwm = rcvhwm
        self._limits = limits
        self._keys_dir = keys_dir
        self._own_context = context is None
        self._context = context
        self._set_state = set_state
        self._state_of = state_of
        self._on_dropped = on_dropped
        self._silent_ns = silent_ns
        self._network = network
        self.subs: list[zmq.Socket] = []
        self.monitors: list[zmq.Socket] = []
        # Feeds whose handshake completed, feeds whose last connection died
        # of a heartbeat timeout (until a handshake succeeds), and dropped
        # connections libzmq may not retry (index -> (revive at, why)).
        self._handshaked: set[int] = set()
        self._timed_out: set[int] = set()
        self._dropped: dict[int, tuple[float, str]] = {}
        self._oversized: dict[int, tuple[float, float]] = {}   # index -> (last drop, delay)

    def open(self) -> None:
        """Open and connect every SUB socket (UsageError for a bad endpoint or key)."""
        context = self._context or zmq.Context()
        self._context = context
        keys = None
        if self._keys_dir is not None:
            from services import security  # optional: only with --keys

            keys = security.load_keys(self._keys_dir)
        try:
            for endpoint in self.endpoints:
                sub = context.socket(zmq.SUB)
                self.subs.append(sub)
                sub.setsockopt(zmq.LINGER, 0)
                sub.setsockopt(zmq.RCVHWM, self._rcvhwm)
                apply_limits(sub, self._limits)
                apply_network(sub, self._network)
                sub.setsockopt(zmq.SUBSCRIBE, b"")
                if keys is not None:
                    security.secure_client(sub, keys)
                # The monitor exists before connect so no event is missed.
                self.monitors.append(sub.get_monitor_socket())
                connect(sub, endpoint, what="feed")
        except BaseException:
            self.close()
            raise

    def apply_monitor(self, index: int, monitor: zmq.Socket, poller: zmq.Poller) -> None:
        """Apply every pending event of one feed's monitor."""
        endpoint = self.endpoints[index]
        while True:
            try:
                event = recv_monitor_message(monitor, zmq.NOBLOCK)
            except zmq.Again:
                return
            code = event["event"]
            state: str | None = None
            if code in (zmq.EVENT_CONNECTED, zmq.EVENT_CONNECT_RETRIED,
                        zmq.EVENT_CONNECT_DELAYED):
                self._dropped.pop(index, None)  # libzmq is (re)connecting by itself
            timed_out = index in self._timed_out
            if code == zmq.EVENT_CONNECTED:
                # After a heartbeat timeout, TCP alone proves nothing (a relay
                # or a half-dead path accepts and then moves no bytes).
                state = None if timed_out else CONN_CONNECTED
            elif code == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                self._handshaked.add(index)
                if timed_out:
                    self._timed_out.discard(index)
                    state = CONN_CONNECTED
                    log.info("feed %s: reconnected after a heartbeat timeout", endpoint)
            elif code == zmq.EVENT_CONNECT_RETRIED:
                state = None if timed_out else CONN_RETRYING
            elif code == zmq.EVENT_CONNECT_DELAYED:
                keep = timed_out or self._state_of(index) == CONN_CONNECTING
                state = None if keep else CONN_RETRYING
            elif code == zmq.EVENT_DISCONNECTED:
                state, why = self._disconnect_cause(index)
                now = time.monotonic()
                delay = self._oversized_delay(index, now) if why == "oversized" \
                    else REVIVE_AFTER_S
                self._dropped[index] = (now + delay, why)
                self._handshaked.discard(index)
                log.info("feed %s: %s", endpoint, state)
            elif code in _HANDSHAKE_FAILURES:
                log.warning("feed %s: %s", endpoint, _HANDSHAKE_FAILURES[code])
            elif code == zmq.EVENT_MONITOR_STOPPED:
                poller.unregister(monitor)
                return
            if state is not None:
                self._set_state(index, state)

    def _oversized_delay(self, index: int, now: float) -> float:
        """0 for a lone oversized drop; a doubling backoff for drops in a burst."""
        last_drop, last_delay = self._oversized.get(index, (float("-inf"), 0.0))
        delay = 0.0
        if now - last_drop - last_delay < OVERSIZED_BURST_S:
            delay = min(max(last_delay * 2, OVERSIZED_FIRST_BACKOFF_S), REVIVE_AFTER_S)
        self._oversized[index] = (now, delay)
        return delay

    def _disconnect_cause(self, index: int) -> tuple[str, str]:
        """(state to show, why for revive_dropped) of a connection libzmq closed."""
        if index in self._timed_out:
            return CONN_HEARTBEAT_TIMEOUT, "timeout"
        if index not in self._handshaked:
            return CONN_DISCONNECTED, "refused"
        timeout_ms = self._network.heartbeat_timeout_ms
        silent = self._silent_ns(index)
        if self._network.heartbeat_interval_ms and silent is not None \
                and silent >= timeout_ms * 1_000_000:
            self._timed_out.add(index)
            return CONN_HEARTBEAT_TIMEOUT, "timeout"
        return CONN_DISCONNECTED, "oversized"

    def poll_ms(self, longest: int) -> int:
        """How long ingest may wait in poll(): not past the next connection due to revive."""
        if not self._dropped:
            return longest
        due = min(due for due, _ in self._dropped.values())
        return max(0, min(longest, int((due - time.monotonic()) * 1000) + 1))

    def revive_dropped(self) -> None:
        """Re-open connections libzmq dropped and is not retrying (see REVIVE_AFTER_S).

        A drop after a completed handshake that libzmq does not retry is an
        oversized frame (or a broken stream): it never reached us, so it is
        counted as one rejected frame here, with the reason.
        """
        if not self._dropped:
            return
        now = time.monotonic()
        for index, (due, why) in list(self._dropped.items()):
            if now < due:
                continue
            del self._dropped[index]
            endpoint = self.endpoints[index]
            sub = self.subs[index]
            with contextlib.suppress(zmq.ZMQError):
                sub.disconnect(endpoint)
            sub.connect(endpoint)
            if why == "oversized":
                self._on_dropped(index, OVERSIZED_DROP)
                log.warning("feed %s: %s; reconnecting", endpoint, OVERSIZED_DROP)
            elif why == "timeout":
                log.warning("feed %s: heartbeat timeout and not retried by libzmq; "
                            "reconnecting", endpoint)
            else:
                log.warning("feed %s: handshake refused and not retried by libzmq; "
                            "reconnecting", endpoint)

    def close(self) -> None:
        """Close every socket (and the context, when it was made here)."""
        for sub in self.subs:
            with contextlib.suppress(zmq.ZMQError):
                sub.disable_monitor()
        for sock in self.monitors + self.subs:
            sock.close(linger=0)
        self.subs = []
        self.monitors = []
        if self._own_context and self._context is not None:
            self._context.term()
            self._context = None
