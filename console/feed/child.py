"""The ingest process: the console's SUB sockets, decoding and FeedBook, off the UI's GIL.

Started by console.feed.process as `python -m console.feed.child`. In a
thread of the UI process, receive and decode competed with painting for one
GIL: a key press or a gateway reply could wait a whole frame behind a batch
of ticks, and the switching itself cost CPU. Here the receive loop runs in
this process's only thread, with the pipe to the UI in the same poll, so an
answer waits at most one batch (see console.feed.ingest.Ingest.serve).

The process ignores SIGINT and SIGHUP (the UI decides when to stop) and dies
with its parent (PR_SET_PDEATHSIG, and a parent check when the pipe is idle).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import zmq

from console.feed import wire as wire
from console.feed.ingest import Ingest
from services.protocol import Limits
from services.runtime import child_process as helper
from services.runtime.errors import UsageError
from services.runtime.scheduling import prefer_long_slice

log = logging.getLogger(__name__)


class Worker:
    """Answers the UI's requests from inside the receive loop."""

    def __init__(self, ingest: Ingest, control: zmq.Socket) -> None:
        self.ingest = ingest
        self.control = control
        self.parent = os.getppid()
        self.next_parent_check = time.monotonic() + helper.PARENT_CHECK_S

    def reply(self, kind: bytes, body: Any) -> None:
        self.control.send_multipart([kind, wire.encode(body)])

    def on_control(self) -> bool:
        """Handle every waiting request; False to stop the loop."""
        while True:
            try:
                kind, body = self.control.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return self.parent_alive()
            except ValueError:  # not two frames: not the UI, ignore it
                continue
            try:
                if not self.handle(kind, wire.decode_any(body)):
                    return False
            except Exception as exc:  # answer it: the UI is waiting for this request
                log.exception("ingest process: %r failed", kind[:32])
                self.reply(wire.FAILED, {"kind": wire.FAILURE_INTERNAL, "message": repr(exc)})

    def handle(self, kind: bytes, body: Any) -> bool:
        ingest = self.ingest
        if kind == wire.DRAIN:
            body = body if isinstance(body, dict) else {}
            watch = body.get("watch")
            on_screen = body.get("on_screen")
            ingest.show(on_screen if isinstance(on_screen, list) else None)
            update = ingest.drain()
            detail = ingest.detail(watch) if watch and watch in update.rows else None
            self.reply(wire.UPDATE, (update, detail))
        elif kind == wire.DETAIL:
            self.reply(wire.ANSWER, ingest.detail(str(body)))
        elif kind == wire.ALL_ROWS:
            self.reply(wire.ANSWER, ingest.all_rows())
        elif kind == wire.RECORD:
            try:
                if body is None:
                    ingest.stop_recording()
                else:
                    ingest.start_recording(Path(body))
            except UsageError as exc:
                self.reply(wire.FAILED, {"kind": wire.FAILURE_USAGE, "message": str(exc)})
            except OSError as exc:
                self.reply(wire.FAILED, {"kind": wire.FAILURE_OS, "message": str(exc)})
            else:
                self.reply(wire.ANSWER, None)
        elif kind == wire.STOP:
            return False
        else:
            log.warning("ingest process: unknown request %r ignored", kind[:32])
        return True

    def parent_alive(self) -> bool:
        now = time.monotonic()
        if now < self.next_parent_check:
            return True
        self.next_parent_check = now + helper.PARENT_CHECK_S
        if os.getppid() != self.parent:
            log.warning("ingest process: the console is gone; exiting")
            return False
        return True


def build_ingest(settings: dict[str, Any]) -> Ingest:
    return Ingest(
        settings["endpoints"],
        rcvhwm=settings["rcvhwm"],
        limits=Limits(**settings["limits"]),
        max_symbols=settings["max_symbols"],
        stale_after_s=settings["stale_after_s"],
        history_s=settings["history_s"],
        latency_ring=settings["latency_ring"],
        keys_dir=settings.get("keys_dir"),
        record_path=settings.get("record_path"),
    )


def _lower_priority(nice: int) -> None:
    """Under a flat-out feed this process is CPU-bound; the screen and keys should win."""
    if nice <= 0 or not hasattr(os, "nice"):
        return
    try:
        os.nice(nice)
    except OSError as exc:
        log.warning("ingest process: cannot lower its priority: %s", exc)


def main(argv: list[str] | None = None) -> int:
    end = helper.begin_helper("console.feed.child", __doc__, argv, "console-ingest")
    _lower_priority(int(end.settings.get("nice", 0)))
    prefer_long_slice()  # bulk work: anything latency-critical may preempt it at once
    worker = Worker(build_ingest(end.settings), end.control)
    try:
        try:
            worker.ingest.open()
        except UsageError as exc:
            worker.reply(wire.FAILED, {"kind": wire.FAILURE_USAGE, "message": str(exc)})
            return 2
        except OSError as exc:  # the recording file
            worker.reply(wire.FAILED, {"kind": wire.FAILURE_OS, "message": str(exc)})
            return 1
        worker.reply(wire.STARTED, {"pid": os.getpid()})
        worker.ingest.serve(end.control, worker.on_control)
        return 0
    except Exception as exc:  # logged and reported; the console restarts us
        log.exception("ingest process failed")
        with contextlib.suppress(zmq.ZMQError):
            worker.reply(wire.FAILED, {"kind": wire.FAILURE_INTERNAL, "message": repr(exc)})
        return 1
    finally:
        worker.ingest.stop()
        end.close()


if __name__ == "__main__":
    sys.exit(main())
