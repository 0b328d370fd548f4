"""The gateway link process: the console's Lazy Pirate client, off the UI's GIL.

Started by console.link.process as `python -m console.link.child`.
Inside the UI process the link thread shared one GIL with painting: a
heartbeat reply that arrived mid-frame waited for the GIL, and the measured
round trip (what the status bar shows, and what LATE is judged on) was the
UI's stall as much as the gateway's. Here the link runs
console.link.client.GatewayClient unchanged, with the normal time slice
(services.runtime.scheduling), in a process that does nothing else.

The main thread owns the pipe: it hands requests to the client and sends
back replies (the client's thread queues them and wakes it) and the link
state every wire.STATUS_EVERY_S. Starting, signals, the parent check and
stopping are those of every child process (services.runtime.child).
"""

from __future__ import annotations

import logging
import queue
import sys
import time
from typing import Any

import zmq

from console.link import wire as wire
from console.link.client import GatewayClient
from console.model import Reply
from services.protocol import Limits
from services.runtime.child import ChildEnd, ChildEntry, run
from services.runtime.network import NetworkOptions
from services.runtime.scheduling import use_default_slice
from services.runtime.wake import WakePipe

log = logging.getLogger(__name__)


class LinkRelay:
    """Between the pipe (main thread) and the client (its own thread)."""

    def __init__(self, end: ChildEnd) -> None:
        self.end = end
        self.client = build_client(end.settings)
        self.replies: queue.SimpleQueue[Reply] = queue.SimpleQueue()
        self.wake = WakePipe()
        self.next_status = 0.0

    def open(self) -> None:
        self.client.start()  # UsageError: the endpoint or a key

    def close(self) -> None:
        self.client.stop()
        self.wake.close()

    def on_reply(self, reply: Reply) -> None:
        """Runs on the client's thread: queue the reply and wake the main thread."""
        self.replies.put(reply)
        self.wake.wake()

    def serve(self) -> None:
        poller = zmq.Poller()
        poller.register(self.end.control, zmq.POLLIN)
        poller.register(self.wake.fileno(), zmq.POLLIN)
        while True:
            wait_ms = max(0.0, (self.next_status - time.monotonic()) * 1000)
            ready = dict(poller.poll(wait_ms))
            if self.wake.fileno() in ready:
                self.wake.clear()
            self.send_replies()
            if not self.end.handle_requests(self.handle):
                return
            if time.monotonic() >= self.next_status:
                self.send_status()

    def send_replies(self) -> None:
        while True:
            try:
                reply = self.replies.get_nowait()
            except queue.Empty:
                return
            self.send_status()  # the state this reply left behind comes first
            self.end.reply(wire.REPLY, reply)

    def send_status(self) -> None:
        self.end.reply(wire.STATUS, self.client.status())
        self.next_status = time.monotonic() + wire.STATUS_EVERY_S

    def handle(self, kind: bytes, request: Any) -> None:
        """Hand a request to the client; its reply comes back through on_reply."""
        if kind != wire.REQUEST:
            log.warning("gateway link process: unknown request %r ignored", kind[:32])
            return
        self.client.request(str(request["action"]), request.get("payload"),
                            req_id=str(request["req_id"]), on_reply=self.on_reply,
                            urgent=bool(request.get("urgent")))


def build_client(settings: dict[str, Any]) -> GatewayClient:
    return GatewayClient(
        settings["endpoint"],
        client_id=settings["client_id"],
        heartbeat_interval_s=settings["heartbeat_interval_s"],
        late_ms=settings["late_ms"],
        timeout_ms=settings["timeout_ms"],
        retries=settings["retries"],
        keys_dir=settings.get("keys_dir"),
        limits=Limits(**settings["limits"]),
        network=NetworkOptions(**settings["network"]),
    )


def _prepare(settings: dict[str, Any]) -> None:
    use_default_slice()  # the console's UI thread, our parent, does bulk work


ENTRY = ChildEntry(prog="console.link.child", description=__doc__,
                   log_name="console-gateway-link", build=LinkRelay, prepare=_prepare)


def main(argv: list[str] | None = None) -> int:
    return run(ENTRY, argv)


if __name__ == "__main__":
    sys.exit(main())
