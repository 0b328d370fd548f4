"""The console's gateway link: a Lazy Pirate REQ client in its own thread.

The ZeroMQ Guide's Lazy Pirate pattern: send on a REQ socket, poll for the
reply up to a timeout; on timeout the socket is closed (LINGER 0, so nothing
stale is delivered later), reopened, and **the same request with the same
req_id** is sent again, up to `retries` attempts. The gateway answers a
repeated (client_id, req_id) from its reply cache without acting twice, so a
retry is always safe, even for KILL_SWITCH.

Requests never block the caller: they go into a priority queue (KILL_SWITCH
and RESUME_TRADING first, then first come first served) that the client
thread works through; it sends a HEARTBEAT whenever it has been idle for an
interval. Callbacks (`on_reply`) run **on the client thread**: a Textual app
must wrap them, e.g. `on_reply=lambda r: app.call_from_thread(handle, r)`.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import zmq

from console.model import GW_DOWN, GW_LATE, GW_UNKNOWN, GW_UP, GatewayStatus, Reply, ReplyCallback
from services.protocol import (
    ACTIVE,
    DEFAULT_LIMITS,
    GET_STATUS,
    HALTED,
    HEARTBEAT,
    KILL_SWITCH,
    RESUME_TRADING,
    SUCCESS,
    TRADING_HALTED,
    DecodeError,
    Limits,
    decode_reply,
    encode_request,
    make_request,
    new_req_id,
)
from services.runtime.scheduling import use_default_slice
from services.runtime.sockets import apply_limits, connect

log = logging.getLogger(__name__)

URGENT_ACTIONS = frozenset({KILL_SWITCH, RESUME_TRADING})
# Client-side error code in Reply.error when no reply came (not a gateway code).
NO_REPLY = "NO_REPLY"
QUEUE_FULL = "QUEUE_FULL"
RTT_HISTORY = 120
MAX_QUEUE = 1000
# Longest single wait, so stop() is noticed quickly even mid-request.
SLICE_MS = 50

_PRIORITY_URGENT = 0
_PRIORITY_NORMAL = 1


class _Pending:
    """A queued request (its wire form is built once, so retries resend it unchanged)."""

    __slots__ = ("action", "on_reply", "payload", "req_id", "urgent")

    def __init__(self, action: str, payload: dict[str, Any] | None, req_id: str,
                 on_reply: ReplyCallback | None, urgent: bool) -> None:
        self.action = action
        self.payload = payload
        self.req_id = req_id
        self.on_reply = on_reply
        self.urgent = urgent


class LazyPirate:
    """One REQ socket with Lazy Pirate retries; used by one thread at a time."""

    def __init__(
        self,
        context: zmq.Context,
        endpoint: str,
        *,
        timeout_ms: int,
        limits: Limits = DEFAULT_LIMITS,
        keys: Any = None,
    ) -> None:
        self.context = context
        self.endpoint = endpoint
        self.timeout_ms = timeout_ms
        self.limits = limits
        self.keys = keys
        self._sock: zmq.Socket | None = None

    def open(self) -> None:
        """(Re)open the REQ socket; a bad endpoint raises UsageError."""
        self.close()
        sock = self.context.socket(zmq.REQ)
        try:
            sock.setsockopt(zmq.LINGER, 0)
            apply_limits(sock, self.limits)
            if self.keys is not None:
                from services import security

                security.secure_client(sock, self.keys)
            connect(sock, self.endpoint, what="gateway")
        except BaseException:
            sock.close(linger=0)
            raise
        self._sock = sock

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close(linger=0)
            self._sock = None

    def exchange(
        self,
        request: dict[str, Any],
        attempts: int,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> tuple[dict[str, Any] | None, float | None, int]:
        """Send `request` until a matching reply comes; (reply, rtt_ms, attempts used).

        reply is None when every attempt timed out (or `should_stop` said so).
        A reply for another req_id, or one that does not decode, is discarded
        and counts as a failed attempt (REQ cannot wait for a second reply).
        """
        frame = encode_request(request)
        req_id = request["req_id"]
        used = 0
        for _ in range(max(1, attempts)):
            if should_stop():
                break
            used += 1
            if self._sock is None:
                self.open()
            sock = self._sock
            assert sock is not None
            started = time.perf_counter_ns()
            deadline = started + self.timeout_ms * 1_000_000
            try:
                sock.send(frame, zmq.NOBLOCK)
            except zmq.Again:
                self.close()
                continue
            while not should_stop():
                remaining_ms = (deadline - time.perf_counter_ns()) / 1e6
                if remaining_ms <= 0:
                    break
                if not sock.poll(max(1, int(min(remaining_ms, SLICE_MS))), zmq.POLLIN):
                    continue
                data = sock.recv()
                rtt_ms = (time.perf_counter_ns() - started) / 1e6
                try:
                    reply = decode_reply(data, self.limits)
                except DecodeError as exc:
                    log.warning("gateway %s: undecodable reply discarded (%s)",
                                self.endpoint, exc.reason)
                    break
                if reply.get("req_id") != req_id:
                    log.warning("gateway %s: reply for req_id %r discarded (waiting for %s)",
                                self.endpoint, reply.get("req_id"), req_id)
                    break
                return reply, rtt_ms, used
            # No usable reply: drop the socket so a late reply can never be read.
            self.close()
        return None, None, used


def _to_reply(action: str, req_id: str, reply: dict[str, Any], rtt_ms: float | None) -> Reply:
    error = reply.get("error")
    return Reply(
        action=action,
        req_id=req_id,
        delivered=True,
        status=reply.get("status"),
        data=reply.get("data"),
        error=error if isinstance(error, dict) else None,
        rtt_ms=rtt_ms,
    )


def _undelivered(action: str, req_id: str, code: str, message: str) -> Reply:
    return Reply(action=action, req_id=req_id, delivered=False, status=None,
                 error={"code": code, "message": message})


def _load_keys(keys_dir: str | Path | None) -> Any:
    if keys_dir is None:
        return None
    from services import security  # optional: only with --keys

    return security.load_keys(keys_dir)


class GatewayClient:
    """The console's gateway link (model.GatewayLink), backed by one thread.

    Link state: UNKNOWN until the first outcome; UP after any reply; LATE
    while UP but the current request has been outstanding longer than
    `late_ms` or the last heartbeat RTT exceeded it; DOWN after a request got
    no reply in `retries` attempts, until a later reply (heartbeats keep
    trying), and already while a request waits when no reply at all came for
    `timeout_ms * retries` (so a dead gateway shows DOWN within that time).
    While DOWN, requests other than KILL_SWITCH / RESUME_TRADING get a single
    attempt, so a poller cannot pile work up behind a dead gateway.
    `clock_ns` stamps `last_ok_ns` and times LATE; RTTs use perf_counter.
    """

    def __init__(
        self,
        endpoint: str,
        *,
        client_id: str,
        heartbeat_interval_s: float = 1.0,
        late_ms: float = 500,
        timeout_ms: int = 1000,
        retries: int = 3,
        keys_dir: str | Path | None = None,
        clock_ns: Callable[[], int] = time.monotonic_ns,
        limits: Limits = DEFAULT_LIMITS,
        context: zmq.Context | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.client_id = client_id
        self.heartbeat_interval_s = heartbeat_interval_s
        self.late_ms = late_ms
        self.timeout_ms = int(timeout_ms)
        self.retries = max(1, int(retries))
        self._keys_dir = keys_dir
        self._clock_ns = clock_ns
        self._limits = limits
        self._own_context = context is None
        self._context = context
        self._cond = threading.Condition()
        self._queue: list[tuple[int, int, _Pending]] = []
        self._overflow: deque[_Pending] = deque()
        self._order = itertools.count()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._pirate: LazyPirate | None = None
        # Link state, guarded by _cond's lock.
        self._link = GW_UNKNOWN
        self._detail = ""
        self._rtt_ms: float | None = None
        self._rtt_history: deque[float] = deque(maxlen=RTT_HISTORY)
        self._trading_state: str | None = None
        self._incident_id: str | None = None
        self._last_ok_ns: int | None = None
        self._inflight_since_ns: int | None = None

    # --- lifecycle ------------------------------------------------------------------

    def start(self) -> None:
        """Open the socket (a bad endpoint raises UsageError here) and start the thread."""
        if self._thread is not None:
            return
        if self._context is None:
            self._context = zmq.Context()
        pirate = LazyPirate(self._context, self.endpoint, timeout_ms=self.timeout_ms,
                            limits=self._limits, keys=_load_keys(self._keys_dir))
        try:
            pirate.open()
        except BaseException:
            if self._own_context:
                self._context.term()
                self._context = None
            raise
        self._pirate = pirate
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="gateway-client", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop within about a second; queued requests are dropped without callbacks."""
        self._stopping.set()
        with self._cond:
            self._cond.notify_all()
        thread = self._thread
        if thread is not None:
            thread.join(timeout=1.0)
            if thread.is_alive():
                log.warning("gateway client thread did not stop within 1 s")
        self._thread = None

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # --- model.GatewayLink -------------------------------------------------------------

    def request(
        self,
        action: str,
        payload: dict[str, Any] | None = None,
        *,
        req_id: str | None = None,
        on_reply: ReplyCallback | None = None,
        urgent: bool = False,
    ) -> str:
        """Queue a request and return its req_id at once; `on_reply` gets the outcome.

        KILL_SWITCH and RESUME_TRADING are always urgent. Pass the req_id of an
        earlier request to retry it (the gateway then replies without acting twice).
        """
        rid = req_id or new_req_id()
        urgent = urgent or action in URGENT_ACTIONS
        pending = _Pending(action, payload, rid, on_reply, urgent)
        with self._cond:
            if len(self._queue) >= MAX_QUEUE and not urgent:
                self._overflow.append(pending)
            else:
                priority = _PRIORITY_URGENT if urgent else _PRIORITY_NORMAL
                heapq.heappush(self._queue, (priority, next(self._order), pending))
            self._cond.notify()
        return rid

    def status(self) -> GatewayStatus:
        with self._cond:
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
            )

    # --- the thread ------------------------------------------------------------------------

    def _run(self) -> None:
        use_default_slice()  # latency-critical, even when started by a bulk thread
        next_heartbeat = time.monotonic()  # the first heartbeat goes out at once
        try:
            while not self._stopping.is_set():
                try:
                    pending, overflowed = self._next(next_heartbeat)
                    if self._stopping.is_set():
                        break
                    if overflowed:
                        self._deliver(pending, _undelivered(
                            pending.action, pending.req_id, QUEUE_FULL,
                            f"more than {MAX_QUEUE} requests waiting for the gateway",
                        ))
                    elif pending is not None:
                        self._execute(pending)
                    else:
                        self._execute(_Pending(HEARTBEAT, None, new_req_id(), None, False))
                        next_heartbeat = time.monotonic() + self.heartbeat_interval_s
                except Exception:  # the link must outlive any bug
                    log.exception("gateway client: unexpected error")
                    self._stopping.wait(0.1)
        finally:
            if self._pirate is not None:
                self._pirate.close()
            if self._own_context and self._context is not None:
                self._context.term()
                self._context = None

    def _next(self, next_heartbeat: float) -> tuple[Any, bool]:
        """(request, overflowed): the next queued request, or (None, False) for a heartbeat."""
        with self._cond:
            while not self._stopping.is_set():
                if self._overflow:
                    return self._overflow.popleft(), True
                if self._queue:
                    return heapq.heappop(self._queue)[2], False
                wait = next_heartbeat - time.monotonic()
                if wait <= 0:
                    break
                self._cond.wait(wait)
        return None, False

    def _execute(self, pending: _Pending) -> None:
        """One request through Lazy Pirate; update the link state; deliver the outcome."""
        assert self._pirate is not None
        with self._cond:
            down = self._link == GW_DOWN
            self._inflight_since_ns = self._clock_ns()
        attempts = 1 if down and not pending.urgent else self.retries
        request = make_request(pending.action, pending.payload, client_id=self.client_id,
                               req_id=pending.req_id)
        try:
            reply, rtt_ms, used = self._pirate.exchange(
                request, attempts, self._stopping.is_set
            )
        finally:
            with self._cond:
                self._inflight_since_ns = None
        if reply is None:
            if self._stopping.is_set():
                return
            message = f"no reply to {pending.action} after {used} attempt(s)"
            with self._cond:
                if self._link != GW_DOWN:
                    log.warning("gateway %s DOWN: %s", self.endpoint, message)
                self._link = GW_DOWN
                self._detail = message
            self._deliver(pending, _undelivered(pending.action, pending.req_id, NO_REPLY, message))
            return
        with self._cond:
            if self._link == GW_DOWN:
                log.info("gateway %s is back UP", self.endpoint)
            self._link = GW_UP
            self._detail = ""
            self._last_ok_ns = self._clock_ns()
            if pending.action == HEARTBEAT:
                self._rtt_ms = rtt_ms
                if rtt_ms is not None:
                    self._rtt_history.append(rtt_ms)
            self._learn_trading_state(pending.action, reply)
        self._deliver(pending, _to_reply(pending.action, pending.req_id, reply, rtt_ms))

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

    @staticmethod
    def _deliver(pending: _Pending, reply: Reply) -> None:
        if pending.on_reply is None:
            return
        try:
            pending.on_reply(reply)
        except Exception:  # a bad callback must not take the link down
            log.exception("gateway client: on_reply callback for %s failed", pending.action)


def request_once(
    endpoint: str,
    action: str,
    payload: dict[str, Any] | None = None,
    *,
    client_id: str,
    timeout_ms: int = 1000,
    retries: int = 3,
    keys_dir: str | Path | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> Reply:
    """Send one request synchronously with Lazy Pirate retries (for scripts).

    Returns the Reply; `delivered` is False when no attempt got an answer.
    A bad endpoint raises services.runtime.errors.UsageError.
    """
    context = zmq.Context()
    pirate = LazyPirate(context, endpoint, timeout_ms=timeout_ms, limits=limits,
                        keys=_load_keys(keys_dir))
    try:
        request = make_request(action, payload, client_id=client_id)
        reply, rtt_ms, used = pirate.exchange(request, retries)
    finally:
        pirate.close()
        context.term()
    if reply is None:
        return _undelivered(action, request["req_id"], NO_REPLY,
                            f"no reply from {endpoint} after {used} attempt(s)")
    return _to_reply(action, request["req_id"], reply, rtt_ms)
