"""The console's gateway link in a child process: the GatewayLink the app uses by default.

`GatewayProcess` has the interface of console.link.client.GatewayClient,
but the REQ socket and its Lazy Pirate loop live in
`python -m console.link.child`. A heartbeat or a kill switch then never
waits for the UI's GIL or a frame being painted, and the round trip the
status bar shows is the gateway's.

A thread of ours owns the pipe: `request()` (any thread) queues the request
and wakes it; it sends, reads replies and calls `on_reply` (on that thread,
as GatewayClient does), and keeps the latest link status for `status()`.
The link stays truthful when its process fails: requests it held are
answered "not delivered", `status()` says DOWN, and the process is started
again (same client id, so a retried request is still answered only once).
Starting, watching and restarting it is services.runtime.supervisor's job;
this module says what the link's timeouts are and what a loss means.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import threading
from pathlib import Path
from typing import Any

import zmq

from console.link import wire as wire
from console.link.client import NO_REPLY
from console.model import GW_DOWN, GW_UNKNOWN, GatewayStatus, Reply, ReplyCallback
from services.protocol import DEFAULT_LIMITS, PRIORITY_ACTIONS, Limits, new_req_id
from services.runtime.child_pipe import FAILED, ChildError, decode_any
from services.runtime.network import DEFAULT_NETWORK, NetworkOptions
from services.runtime.scheduling import use_default_slice
from services.runtime.supervisor import ChildSpec, Supervisor
from services.runtime.wake import WakePipe

log = logging.getLogger(__name__)

START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 2.0
# No status for this long: the link is shown DOWN (the process is not answering).
SILENT_S = 1.0
# No status for this long: the process is killed and started again.
HUNG_S = 5.0
# A process that died this soon after its start is restarted only after this pause.
RESTART_BACKOFF_S = 2.0
POLL_MS = 100
NOT_ANSWERING = "the console's gateway link process is not answering"
LINK_LOST = "the console's gateway link process exited before the reply"
RESTARTING = "the console's gateway link process is restarting"

LINK_CHILD = ChildSpec(
    module="console.link.child", name="gateway link process", pipe_name="gateway",
    silent_s=SILENT_S, hung_s=HUNG_S, backoff_s=RESTART_BACKOFF_S,
    start_timeout_s=START_TIMEOUT_S, stop_timeout_s=STOP_TIMEOUT_S,
)


class GatewayProcess:
    """Talks to the gateway from a child process; implements model.GatewayLink."""

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
        limits: Limits = DEFAULT_LIMITS,
        network: NetworkOptions = DEFAULT_NETWORK,
        log_level: str | None = None,
        log_dir: str = "",
    ) -> None:
        self.endpoint = endpoint
        self.client_id = client_id
        settings: dict[str, Any] = {
            "endpoint": endpoint,
            "client_id": client_id,
            "heartbeat_interval_s": float(heartbeat_interval_s),
            "late_ms": float(late_ms),
            "timeout_ms": int(timeout_ms),
            "retries": int(retries),
            "keys_dir": str(keys_dir) if keys_dir is not None else None,
            "limits": dataclasses.asdict(limits),
            "network": dataclasses.asdict(network),
            "log_level": log_level,
            "log_dir": log_dir,
        }
        self._child = Supervisor(LINK_CHILD, settings, on_started=self._on_started,
                                 on_lost=self._fail_waiting)
        self._lock = threading.Lock()
        self._outbox: collections.deque[dict[str, Any]] = collections.deque()
        # Callbacks of requests handed to the current process, by req_id (a
        # retried req_id may be in flight twice: one callback per send, in order).
        self._waiting: dict[str, collections.deque[tuple[str, ReplyCallback | None]]] = {}
        self._status: GatewayStatus | None = None  # as the current process reported it
        self._wake: WakePipe | None = None
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    # --- lifecycle --------------------------------------------------------------------

    def start(self) -> None:
        """Start the process; a bad endpoint or key raises UsageError here.

        A process that fails otherwise raises services.runtime.child_pipe.ChildError.
        """
        if self._thread is not None:
            return
        self._stopping.clear()
        self._child.start()
        self._wake = WakePipe()
        self._thread = threading.Thread(target=self._run, name="gateway-link", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the process and the thread; requests still queued get no callback."""
        self._stopping.set()
        self._wake_thread()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(STOP_TIMEOUT_S + 1.0)
        else:
            self._child.stop()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def pid(self) -> int | None:
        """The link process's pid (it changes after a restart)."""
        return self._child.pid

    @property
    def restarts(self) -> int:
        """Times the process was started again."""
        return self._child.restarts

    def _on_started(self) -> None:
        with self._lock:
            self._status = None

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
        """Queue a request and return its req_id at once (see GatewayClient.request)."""
        rid = req_id or new_req_id()
        urgent = urgent or action in PRIORITY_ACTIONS
        with self._lock:
            self._outbox.append({"action": action, "payload": payload, "req_id": rid,
                                 "urgent": urgent, "on_reply": on_reply})
        self._wake_thread()
        return rid

    def status(self) -> GatewayStatus:
        """The link status the process last reported; DOWN while it is silent."""
        with self._lock:
            status = self._status
        silent = self._child.silent
        if status is None and not silent:
            return GatewayStatus(endpoint=self.endpoint, state=GW_UNKNOWN, rtt_ms=None,
                                 trading_state=None, incident_id=None, last_ok_ns=None)
        if silent:
            base = status or GatewayStatus(endpoint=self.endpoint, state=GW_DOWN, rtt_ms=None,
                                           trading_state=None, incident_id=None,
                                           last_ok_ns=None)
            return dataclasses.replace(base, state=GW_DOWN, detail=NOT_ANSWERING)
        assert status is not None
        return status

    # --- the thread ------------------------------------------------------------------------

    def _wake_thread(self) -> None:
        wake = self._wake
        if wake is not None:
            wake.wake()

    def _run(self) -> None:
        use_default_slice()  # latency-critical, though started by the UI thread
        wake, sock = self._wake, self._child.socket
        assert wake is not None and sock is not None
        poller = zmq.Poller()
        poller.register(sock, zmq.POLLIN)
        poller.register(wake.fileno(), zmq.POLLIN)
        try:
            while not self._stopping.is_set():
                try:
                    ready = dict(poller.poll(POLL_MS))
                    if wake.fileno() in ready:
                        wake.clear()
                    if sock in ready:
                        self._read()
                    self._send_outbox()
                    self._child.supervise()
                except Exception:  # the link must outlive any bug
                    log.exception("gateway link: unexpected error")
                    self._stopping.wait(0.1)
        finally:
            self._child.stop()
            self._wake = None
            wake.close()

    def _send_outbox(self) -> None:
        while True:
            with self._lock:
                if not self._outbox:
                    return
                item = self._outbox.popleft()
            on_reply = item.pop("on_reply")
            if not self._child.running:  # between a death and the restart: fail at once
                self._deliver(on_reply, _lost(item, RESTARTING))
                continue
            with self._lock:
                self._waiting.setdefault(item["req_id"], collections.deque()).append(
                    (item["action"], on_reply))
            try:
                self._child.send(wire.REQUEST, item)
            except (zmq.Again, ChildError) as exc:  # a full pipe, a process that just died
                self._take_waiting(item["req_id"])
                gone = isinstance(exc, ChildError)
                self._deliver(on_reply, _lost(item, LINK_LOST if gone else NOT_ANSWERING))

    def _read(self) -> None:
        for kind, body in self._child.receive():
            if kind == wire.STATUS:
                status = wire.decode_status(body)
                with self._lock:
                    self._status = status
                self._child.heard()
            elif kind == wire.REPLY:
                reply = wire.decode_reply(body)
                self._deliver(self._take_waiting(reply.req_id), reply)
            elif kind == FAILED:
                log.error("gateway link process: %s", decode_any(body).get("message"))

    def _take_waiting(self, req_id: str) -> ReplyCallback | None:
        with self._lock:
            callbacks = self._waiting.get(req_id)
            if not callbacks:
                return None
            _action, callback = callbacks.popleft()
            if not callbacks:
                del self._waiting[req_id]
            return callback

    @staticmethod
    def _deliver(on_reply: ReplyCallback | None, reply: Reply) -> None:
        if on_reply is None:
            return
        try:
            on_reply(reply)
        except Exception:
            log.exception("gateway link: on_reply for %s failed", reply.action)

    def _fail_waiting(self) -> None:
        """The process is gone: what it held is answered not delivered."""
        with self._lock:
            waiting, self._waiting = self._waiting, {}
        for req_id, callbacks in waiting.items():
            for action, on_reply in callbacks:
                self._deliver(on_reply, _lost({"action": action, "req_id": req_id}, LINK_LOST))


def _lost(item: dict[str, Any], message: str) -> Reply:
    return Reply(action=item["action"], req_id=item["req_id"], delivered=False, status=None,
                 error={"code": NO_REPLY, "message": message})
