"""The gateway link process: the console's Lazy Pirate client, off the UI's GIL.

Started by console.link.process as `python -m console.link.child`.
Inside the UI process the link thread shared one GIL with painting: a
heartbeat reply that arrived mid-frame waited for the GIL, and the measured
round trip (what the status bar shows, and what LATE is judged on) was the
UI's stall as much as the gateway's. Here the link runs
console.link.client.GatewayClient unchanged, with the normal time slice
(services.runtime.scheduling), in a process that does nothing else.

The main thread owns the pipe: it hands requests to the client and sends
back replies (the client's thread queues them and wakes it through an OS
pipe) and the link state every gateway_wire.STATUS_EVERY_S. The process
ignores SIGINT and SIGHUP and dies with its parent.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import sys
import time
from typing import Any

import zmq

from console.link import wire as wire
from console.link.client import GatewayClient
from console.model import Reply
from services.protocol import Limits
from services.runtime import child_process as helper
from services.runtime.errors import UsageError
from services.runtime.scheduling import use_default_slice

log = logging.getLogger(__name__)


class Relay:
    """Between the pipe (main thread) and the client (its own thread)."""

    def __init__(self, client: GatewayClient, control: zmq.Socket) -> None:
        self.client = client
        self.control = control
        self.replies: queue.SimpleQueue[Reply] = queue.SimpleQueue()
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        self.parent = os.getppid()
        self.next_status = 0.0

    def close(self) -> None:
        os.close(self.wake_r)
        os.close(self.wake_w)

    def on_reply(self, reply: Reply) -> None:
        """Runs on the client's thread: queue the reply and wake the main thread."""
        self.replies.put(reply)
        with contextlib.suppress(BlockingIOError):  # a full pipe wakes it just as well
            os.write(self.wake_w, b"\0")

    def send(self, kind: bytes, body: Any) -> None:
        self.control.send_multipart([kind, helper.encode(body)])

    def serve(self) -> None:
        poller = zmq.Poller()
        poller.register(self.control, zmq.POLLIN)
        poller.register(self.wake_r, zmq.POLLIN)
        next_parent_check = time.monotonic() + helper.PARENT_CHECK_S
        while True:
            wait_ms = max(0.0, (self.next_status - time.monotonic()) * 1000)
            ready = dict(poller.poll(wait_ms))
            if self.wake_r in ready:
                with contextlib.suppress(BlockingIOError):
                    os.read(self.wake_r, 4096)
            self.send_replies()
            if self.control in ready and not self.on_control():
                return
            now = time.monotonic()
            if now >= self.next_status:
                self.send_status()
            if now >= next_parent_check:
                next_parent_check = now + helper.PARENT_CHECK_S
                if os.getppid() != self.parent:
                    log.warning("gateway link process: the console is gone; exiting")
                    return

    def send_replies(self) -> None:
        while True:
            try:
                reply = self.replies.get_nowait()
            except queue.Empty:
                return
            self.send_status()  # the state this reply left behind comes first
            self.send(wire.REPLY, reply)

    def send_status(self) -> None:
        self.send(wire.STATUS, self.client.status())
        self.next_status = time.monotonic() + wire.STATUS_EVERY_S

    def on_control(self) -> bool:
        """Hand every waiting request to the client; False on STOP."""
        while True:
            try:
                kind, body = self.control.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return True
            except ValueError:  # not two frames: not the UI
                continue
            if kind == wire.STOP:
                return False
            if kind != wire.REQUEST:
                log.warning("gateway link process: unknown request %r ignored", kind[:32])
                continue
            try:
                request = helper.decode_any(body)
                self.client.request(str(request["action"]), request.get("payload"),
                                    req_id=str(request["req_id"]), on_reply=self.on_reply,
                                    urgent=bool(request.get("urgent")))
            except Exception:  # a bad message must not end the link
                log.exception("gateway link process: request %r not understood", body[:64])


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
    )


def main(argv: list[str] | None = None) -> int:
    use_default_slice()  # the console's UI thread, our parent, does bulk work
    end = helper.begin_helper("console.link.child", __doc__, argv,
                              "console-gateway-link")
    client = build_client(end.settings)
    relay = Relay(client, end.control)
    try:
        try:
            client.start()
        except UsageError as exc:
            relay.send(helper.FAILED, {"kind": helper.FAILURE_USAGE, "message": str(exc)})
            return 2
        relay.send(helper.STARTED, {"pid": os.getpid()})
        relay.serve()
        return 0
    except Exception as exc:  # logged and reported; the console restarts us
        log.exception("gateway link process failed")
        with contextlib.suppress(zmq.ZMQError):
            relay.send(helper.FAILED, {"kind": helper.FAILURE_INTERNAL, "message": repr(exc)})
        return 1
    finally:
        client.stop()
        relay.close()
        end.close()


if __name__ == "__main__":
    sys.exit(main())
