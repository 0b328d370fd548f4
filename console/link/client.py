"""The console's gateway link: a Lazy Pirate REQ client in its own thread.

Requests never block the caller: they go into a priority queue (KILL_SWITCH
and RESUME_TRADING first, then first come first served; request_queue.py)
that the client thread works through, one Lazy Pirate exchange at a time
(pirate.py: a retry resends the same req_id, so it is always safe). The
thread sends a HEARTBEAT whenever it has been idle for an interval, and every
outcome updates the link's UP/LATE/DOWN judgement (link_state.py).
Callbacks (`on_reply`) run **on the client thread**: a Textual app must wrap
them, e.g. `on_reply=lambda r: app.call_from_thread(handle, r)`.

By default (`[console] gateway_link = "process"`) this client runs inside the
link child process (console/link/child.py, driven by process.GatewayProcess);
`gateway_link = "thread"` runs it in the console's own process.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import zmq

from console.link.link_state import LinkState
from console.link.pirate import LazyPirate, load_keys, request_once
from console.link.replies import NO_REPLY, QUEUE_FULL, to_reply, undelivered
from console.link.request_queue import MAX_QUEUE, Pending, RequestQueue
from console.model import GatewayStatus, Reply, ReplyCallback
from services.protocol import (
    DEFAULT_LIMITS,
    HEARTBEAT,
    PRIORITY_ACTIONS,
    Limits,
    make_request,
    new_req_id,
)
from services.runtime.network import DEFAULT_NETWORK, NetworkOptions
from services.runtime.scheduling import use_default_slice

__all__ = ["NO_REPLY", "QUEUE_FULL", "GatewayClient", "request_once"]

log = logging.getLogger(__name__)


class GatewayClient:
    """The console's gateway link (model.GatewayLink), backed by one thread.

    The link state and when it counts as LATE or DOWN are described in
    link_state.py. While DOWN, requests other than KILL_SWITCH /
    RESUME_TRADING get a single attempt, so a poller cannot pile work up
    behind a dead gateway. `clock_ns` stamps `last_ok_ns` and times LATE;
    RTTs use perf_counter.
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
        network: NetworkOptions = DEFAULT_NETWORK,
        context: zmq.Context | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.client_id = client_id
        self.heartbeat_interval_s = heartbeat_interval_s
        self.late_ms = late_ms
        self.timeout_ms = int(timeout_ms)
        self.retries = max(1, int(retries))
        self._keys_dir = keys_dir
        self._limits = limits
        self._network = network
        self._own_context = context is None
        self._context = context
        self._stopping = threading.Event()
        self._queue = RequestQueue(self._stopping)
        self._thread: threading.Thread | None = None
        self._pirate: LazyPirate | None = None
        self._state = LinkState(endpoint, heartbeat_interval_s=heartbeat_interval_s,
                                late_ms=late_ms, timeout_ms=self.timeout_ms,
                                retries=self.retries, clock_ns=clock_ns)

    # --- lifecycle ------------------------------------------------------------------

    def start(self) -> None:
        """Open the socket (a bad endpoint raises UsageError here) and start the thread."""
        if self._thread is not None:
            return
        if self._context is None:
            self._context = zmq.Context()
        pirate = LazyPirate(self._context, self.endpoint, timeout_ms=self.timeout_ms,
                            limits=self._limits, keys=load_keys(self._keys_dir),
                            network=self._network)
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
        self._queue.wake()
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
        urgent = urgent or action in PRIORITY_ACTIONS
        self._queue.put(Pending(action, payload, rid, on_reply, urgent))
        return rid

    def status(self) -> GatewayStatus:
        return self._state.status()

    # --- the thread ------------------------------------------------------------------------

    def _run(self) -> None:
        use_default_slice()  # latency-critical, even when started by a bulk thread
        next_heartbeat = time.monotonic()  # the first heartbeat goes out at once
        try:
            while not self._stopping.is_set():
                try:
                    pending, overflowed = self._queue.take(next_heartbeat)
                    if self._stopping.is_set():
                        break
                    if overflowed and pending is not None:
                        self._deliver(pending, undelivered(
                            pending.action, pending.req_id, QUEUE_FULL,
                            f"more than {MAX_QUEUE} requests waiting for the gateway",
                        ))
                    elif pending is not None:
                        self._execute(pending)
                    else:
                        self._execute(Pending(HEARTBEAT, None, new_req_id(), None, False))
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

    def _execute(self, pending: Pending) -> None:
        """One request through Lazy Pirate; update the link state; deliver the outcome."""
        assert self._pirate is not None
        down = self._state.sending()
        attempts = 1 if down and not pending.urgent else self.retries
        request = make_request(pending.action, pending.payload, client_id=self.client_id,
                               req_id=pending.req_id)
        try:
            reply, rtt_ms, used = self._pirate.exchange(
                request, attempts, self._stopping.is_set
            )
        finally:
            self._state.settled()
        if reply is None:
            if self._stopping.is_set():
                return
            message = f"no reply to {pending.action} after {used} attempt(s)"
            self._state.no_reply(message)
            self._deliver(pending, undelivered(pending.action, pending.req_id, NO_REPLY, message))
            return
        self._state.replied(pending.action, reply, rtt_ms)
        self._deliver(pending, to_reply(pending.action, pending.req_id, reply, rtt_ms))

    @staticmethod
    def _deliver(pending: Pending, reply: Reply) -> None:
        if pending.on_reply is None:
            return
        try:
            pending.on_reply(reply)
        except Exception:  # a bad callback must not take the link down
            log.exception("gateway client: on_reply callback for %s failed", pending.action)
