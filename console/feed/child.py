"""The ingest process: the console's SUB sockets, decoding and FeedBook, off the UI's GIL.

Started by console.feed.process as `python -m console.feed.child`. In a
thread of the UI process, receive and decode competed with painting for one
GIL: a key press or a gateway reply could wait a whole frame behind a batch
of ticks, and the switching itself cost CPU. Here the receive loop runs in
this process's only thread, with the pipe to the UI in the same poll, so an
answer waits at most one batch (see console.feed.ingest.Ingest.serve).

Starting, signals, the parent check and stopping are those of every child
process (services.runtime.child); this module says what the ingest serves.
"""

from __future__ import annotations

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
from services.runtime.child import ChildEnd, ChildEntry, run
from services.runtime.network import NetworkOptions
from services.runtime.scheduling import prefer_long_slice

log = logging.getLogger(__name__)

# The longest an idle UI's drain is held (the parent shows feeds DOWN after
# console.feed.process.SILENT_S without an answer).
MAX_HOLD_MS = 1000
# The longest the receive loop sleeps with nothing arriving: how late a feed
# turning STALE or a history second is noticed for a held drain. Every wake-up
# of an idle process costs CPU; requests and ticks wake it at once anyway.
IDLE_WAIT_MS = 250


class IngestServer:
    """The ingest's receive loop, answering the UI's requests between batches."""

    def __init__(self, end: ChildEnd) -> None:
        self.end = end
        # One context for the pipe and the feeds: one I/O thread fewer to wake.
        self.ingest = build_ingest(end.settings, end.context)
        # A drain held while nothing is new: (answer by, watched symbol).
        self._held: tuple[float, str | None] | None = None

    def open(self) -> None:
        self.ingest.open()  # UsageError: an endpoint or key; OSError: the recording

    def serve(self) -> None:
        self.ingest.serve(self.end.control, self._turn, self._wait_ms)

    def _wait_ms(self) -> int:
        """How long the loop may sleep: until a held drain is due, or rows waiting off
        screen are, at most IDLE_WAIT_MS."""
        held = self._held
        if held is None:
            return IDLE_WAIT_MS
        wait_ms = min(IDLE_WAIT_MS, int((held[0] - time.monotonic()) * 1000) + 1)
        rows_due_ns = self.ingest.rows_due_in_ns()
        if rows_due_ns is not None:
            wait_ms = min(wait_ms, rows_due_ns // 1_000_000 + 1)
        return max(1, wait_ms)

    def _turn(self, requests: bool) -> bool:
        """Once per receive-loop turn: serve requests (when the pipe is readable), check
        the parent, answer a held drain when due."""
        if not (self.end.handle_requests(self.handle) if requests else self.end.parent_alive()):
            return False
        held = self._held
        if held is not None and (time.monotonic() >= held[0] or self.ingest.has_news()):
            self._held = None
            self._answer_drain(held[1])
        return True

    def close(self) -> None:
        self.ingest.stop()

    def handle(self, kind: bytes, body: Any) -> None:
        ingest = self.ingest
        if kind == wire.DRAIN:
            body = body if isinstance(body, dict) else {}
            watch = body.get("watch")
            if "on_screen" in body:  # sent only when it changed: else the last one holds
                on_screen = body["on_screen"]
                ingest.show(on_screen if isinstance(on_screen, list) else None)
            hold_ms = body.get("hold_ms")
            watch = watch if isinstance(watch, str) else None
            if isinstance(hold_ms, int) and hold_ms > 0 and not ingest.has_news():
                # An idle UI: answer when something is new, or at the latest then.
                self._held = (time.monotonic() + min(hold_ms, MAX_HOLD_MS) / 1000, watch)
                return
            self._held = None
            self._answer_drain(watch)
        elif kind == wire.DETAIL:
            self.end.reply(wire.ANSWER, ingest.detail(str(body)))
        elif kind == wire.ALL_ROWS:
            self.end.reply(wire.ANSWER, ingest.all_rows())
        elif kind == wire.RECORD:
            if body is None:
                ingest.stop_recording()
            else:
                ingest.start_recording(Path(body))  # OSError: answered FAILED
            self.end.reply(wire.ANSWER, None)
        else:
            log.warning("ingest process: unknown request %r ignored", kind[:32])

    def _answer_drain(self, watch: str | None) -> None:
        ingest = self.ingest
        update = ingest.drain()
        detail = ingest.detail(watch) if watch and watch in update.rows else None
        self.end.reply(wire.UPDATE, (update, detail))


def build_ingest(settings: dict[str, Any], context: zmq.Context | None = None) -> Ingest:
    return Ingest(
        settings["endpoints"],
        rcvhwm=settings["rcvhwm"],
        limits=Limits(**settings["limits"]),
        max_symbols=settings["max_symbols"],
        stale_after_s=settings["stale_after_s"],
        history_s=settings["history_s"],
        network=NetworkOptions(**settings["network"]),
        latency_ring=settings["latency_ring"],
        keys_dir=settings.get("keys_dir"),
        record_path=settings.get("record_path"),
        context=context,
    )


def _prepare(settings: dict[str, Any]) -> None:
    """Bulk work: the screen, keys and anything latency-critical should win the CPU."""
    nice = int(settings.get("nice", 0))
    if nice > 0 and hasattr(os, "nice"):
        try:
            os.nice(nice)
        except OSError as exc:
            log.warning("ingest process: cannot lower its priority: %s", exc)
    prefer_long_slice()  # anything latency-critical may preempt it at once


ENTRY = ChildEntry(prog="console.feed.child", description=__doc__,
                   log_name="console-ingest", build=IngestServer, prepare=_prepare)


def main(argv: list[str] | None = None) -> int:
    return run(ENTRY, argv)


if __name__ == "__main__":
    sys.exit(main())
