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
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import logging
import os
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import zmq

from console.link import wire as wire
from console.link.client import NO_REPLY, URGENT_ACTIONS
from console.model import GW_DOWN, GW_UNKNOWN, GatewayStatus, Reply, ReplyCallback
from services.protocol import DEFAULT_LIMITS, Limits, new_req_id
from services.runtime import child_process as helper
from services.runtime.errors import UsageError
from services.runtime.scheduling import use_default_slice

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
        log_level: str | None = None,
        log_dir: str = "",
    ) -> None:
        self.endpoint = endpoint
        self.client_id = client_id
        self._settings: dict[str, Any] = {
            "endpoint": endpoint,
            "client_id": client_id,
            "heartbeat_interval_s": float(heartbeat_interval_s),
            "late_ms": float(late_ms),
            "timeout_ms": int(timeout_ms),
            "retries": int(retries),
            "keys_dir": str(keys_dir) if keys_dir is not None else None,
            "limits": dataclasses.asdict(limits),
            "log_level": log_level,
            "log_dir": log_dir,
        }
        self._lock = threading.Lock()
        self._outbox: collections.deque[dict[str, Any]] = collections.deque()
        # Callbacks of requests handed to the current process, by req_id (a
        # retried req_id may be in flight twice: one callback per send, in order).
        self._waiting: dict[str, collections.deque[tuple[str, ReplyCallback | None]]] = {}
        self._status: GatewayStatus | None = None  # as the current process reported it
        self._heard_at = 0.0
        self._ready = False  # a process has said STARTED and not died since
        self._context: zmq.Context | None = None
        self._pipe: helper.Pipe | None = None
        self._popen: subprocess.Popen[bytes] | None = None
        self._pid: int | None = None
        self._started_at = 0.0
        self._restart_due: float | None = None
        self._wake_r = self._wake_w = -1
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.restarts = 0

    # --- lifecycle --------------------------------------------------------------------

    def start(self) -> None:
        """Start the process; a bad endpoint or key raises UsageError here."""
        if self._thread is not None:
            return
        self._stopping.clear()
        self._context = zmq.Context()
        try:
            self._pipe = helper.open_pipe(self._context, "gateway")
            self._spawn()
        except BaseException:
            self._close()
            raise
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._thread = threading.Thread(target=self._run, name="gateway-link", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the process and the thread; requests still queued get no callback."""
        self._stopping.set()
        self._wake()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(STOP_TIMEOUT_S + 1.0)
        else:
            self._close()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def pid(self) -> int | None:
        """The link process's pid (it changes after a restart)."""
        return self._pid

    def _spawn(self) -> None:
        """Start a process and wait for STARTED; raise what it reported otherwise."""
        assert self._pipe is not None
        self._popen = helper.spawn("console.link.child", self._pipe.endpoint,
                                   self._settings)
        self._started_at = time.monotonic()
        try:
            body = self._await_started()
        except BaseException:
            popen, self._popen = self._popen, None
            helper.reap(popen, 0.5)
            raise
        self._pid = int(body["pid"])
        with self._lock:
            self._status = None
            self._heard_at = time.monotonic()
            self._ready = True

    def _await_started(self) -> dict[str, Any]:
        assert self._pipe is not None and self._popen is not None
        sock = self._pipe.socket
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RuntimeError("the gateway link process did not start within "
                                   f"{START_TIMEOUT_S:.0f} s")
            if not sock.poll(min(remaining, 0.1) * 1000):
                code = self._popen.poll()
                if code is not None:
                    raise RuntimeError(f"the gateway link process exited with code {code}")
                continue
            kind, body = sock.recv_multipart()
            if kind == helper.STARTED:
                return dict(helper.decode_any(body))
            if kind == helper.FAILED:
                failure = helper.decode_any(body)
                if failure.get("kind") == helper.FAILURE_USAGE:
                    raise UsageError(str(failure.get("message")))
                raise RuntimeError(f"the gateway link process failed: {failure.get('message')}")
            # STATUS before STARTED cannot happen; anything else is dropped.

    def _close(self) -> None:
        if self._pipe is not None:
            self._pipe.close()
            self._pipe = None
        if self._context is not None:
            self._context.term()
            self._context = None
        with self._lock:
            for fd in (self._wake_r, self._wake_w):
                if fd >= 0:
                    os.close(fd)
            self._wake_r = self._wake_w = -1

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
        urgent = urgent or action in URGENT_ACTIONS
        with self._lock:
            self._outbox.append({"action": action, "payload": payload, "req_id": rid,
                                 "urgent": urgent, "on_reply": on_reply})
        self._wake()
        return rid

    def status(self) -> GatewayStatus:
        """The link status the process last reported; DOWN while it is silent."""
        with self._lock:
            status, heard_at, ready = self._status, self._heard_at, self._ready
        silent = not ready or time.monotonic() - heard_at > SILENT_S
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

    def _wake(self) -> None:
        with self._lock:  # never a write to a descriptor _close() just gave back
            if self._wake_w >= 0:
                with contextlib.suppress(BlockingIOError, OSError):
                    os.write(self._wake_w, b"\0")

    def _run(self) -> None:
        use_default_slice()  # latency-critical, though started by the UI thread
        assert self._pipe is not None
        sock = self._pipe.socket
        poller = zmq.Poller()
        poller.register(sock, zmq.POLLIN)
        poller.register(self._wake_r, zmq.POLLIN)
        try:
            while not self._stopping.is_set():
                try:
                    ready = dict(poller.poll(POLL_MS))
                    if self._wake_r in ready:
                        with contextlib.suppress(BlockingIOError):
                            os.read(self._wake_r, 4096)
                    if sock in ready:
                        self._read(sock)
                    self._send_outbox(sock)
                    self._supervise()
                except Exception:  # the link must outlive any bug
                    log.exception("gateway link: unexpected error")
                    self._stopping.wait(0.1)
        finally:
            if self._popen is not None:
                with contextlib.suppress(zmq.ZMQError):
                    sock.send_multipart([wire.STOP, helper.encode(None)], zmq.NOBLOCK)
            popen, self._popen = self._popen, None
            helper.reap(popen, STOP_TIMEOUT_S)
            self._close()

    def _send_outbox(self, sock: zmq.Socket) -> None:
        while True:
            with self._lock:
                if not self._outbox:
                    return
                item = self._outbox.popleft()
            on_reply = item.pop("on_reply")
            if self._popen is None:  # between a death and the restart: fail at once
                self._deliver(on_reply, _lost(item, "the console's gateway link process "
                                                    "is restarting"))
                continue
            with self._lock:
                self._waiting.setdefault(item["req_id"], collections.deque()).append(
                    (item["action"], on_reply))
            try:
                sock.send_multipart([wire.REQUEST, helper.encode(item)], zmq.NOBLOCK)
            except zmq.Again:
                self._take_waiting(item["req_id"])
                self._deliver(on_reply, _lost(item, NOT_ANSWERING))

    def _read(self, sock: zmq.Socket) -> None:
        while True:
            try:
                kind, body = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            except ValueError:
                continue
            if kind == wire.STATUS:
                status = wire.decode_status(body)
                with self._lock:
                    self._status = status
                    self._heard_at = time.monotonic()
            elif kind == wire.REPLY:
                reply = wire.decode_reply(body)
                self._deliver(self._take_waiting(reply.req_id), reply)
            elif kind == helper.FAILED:
                log.error("gateway link process: %s", helper.decode_any(body).get("message"))

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

    # --- supervision ------------------------------------------------------------------

    def _supervise(self) -> None:
        """Restart a process that exited or hung; answer what it held as not delivered."""
        now = time.monotonic()
        popen = self._popen
        if popen is not None:
            code = popen.poll()
            with self._lock:
                heard_at = self._heard_at
            if code is None and now - heard_at <= HUNG_S:
                return
            if code is None:
                log.error("gateway link process %s stopped answering; restarting it", self._pid)
                popen.kill()
            else:
                log.error("gateway link process %s exited with code %s; restarting it",
                          self._pid, code)
            self._popen = None
            with self._lock:
                self._ready = False
            helper.reap(popen, 1.0)
            self._fail_waiting()
            quick = now - self._started_at < RESTART_BACKOFF_S
            self._restart_due = now + RESTART_BACKOFF_S if quick else now
        if self._restart_due is None or now < self._restart_due:
            return
        self._restart_due = None
        try:
            self._spawn()
        except (UsageError, OSError, RuntimeError) as exc:
            log.error("gateway link process failed to start again: %s", exc)
            self._restart_due = time.monotonic() + RESTART_BACKOFF_S
            return
        self.restarts += 1

    def _fail_waiting(self) -> None:
        with self._lock:
            waiting, self._waiting = self._waiting, {}
        for req_id, callbacks in waiting.items():
            for action, on_reply in callbacks:
                self._deliver(on_reply, _lost({"action": action, "req_id": req_id}, LINK_LOST))


def _lost(item: dict[str, Any], message: str) -> Reply:
    return Reply(action=item["action"], req_id=item["req_id"], delivered=False, status=None,
                 error={"code": NO_REPLY, "message": message})

