"""The console's ingest in a child process: the TickSource the app uses by default.

`IngestProcess` has the interface of console.feed.ingest.Ingest, but the sockets,
decoding and FeedBook live in `python -m console.feed.child`, so ticks
never compete with painting, key handling or gateway replies for the UI's
GIL. Once per screen frame `drain()` takes the update the process prepared
since the last frame (without waiting) and asks for the next one; the
process coalesces everything in between, so however fast the feed, the UI
gets one message per frame.

The console stays truthful when its ingest process fails: a process that
stops answering shows every feed DOWN; one that exits is restarted, and
the telemetry pane says so. Starting, watching and restarting it is
services.runtime.supervisor's job; this module says what the ingest's
timeouts are and what its messages mean.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import zmq

from console.feed import wire as wire
from console.feed.book import LATENCY_RING
from console.feed.ingest_settings import IngestSettings
from console.model import (
    CONN_DISCONNECTED,
    FEED_DOWN,
    FeedRow,
    FrameUpdate,
    SymbolDetail,
    SymbolRow,
    TelemetryRecord,
)
from services.protocol import Limits
from services.runtime.child_pipe import ChildError
from services.runtime.errors import UsageError
from services.runtime.network import NetworkOptions
from services.runtime.sockets import message_waiting
from services.runtime.supervisor import ChildSpec, Supervisor

if TYPE_CHECKING:
    from services.runtime.config import Config

log = logging.getLogger(__name__)

START_TIMEOUT_S = 15.0
# A request (detail, all rows, recording) not answered by then gives up.
ANSWER_TIMEOUT_S = 2.0
# No update for this long: every feed is shown DOWN (the truth is unknown).
SILENT_S = 3.0
# No update for this long: the process is killed and started again.
HUNG_S = 10.0
# A process that died this soon after its start is restarted only after this pause.
RESTART_BACKOFF_S = 5.0
STOP_TIMEOUT_S = 2.0
NOT_ANSWERING = "the console's ingest process is not answering"
UNSENT = object()

INGEST_CHILD = ChildSpec(
    module="console.feed.child", name="ingest process", pipe_name="ingest",
    silent_s=SILENT_S, hung_s=HUNG_S, backoff_s=RESTART_BACKOFF_S,
    start_timeout_s=START_TIMEOUT_S, stop_timeout_s=STOP_TIMEOUT_S,
    exit_detail="feed counters start again from zero",
)


class IngestProcess:
    """Receives every feed in a child process; implements model.TickSource.

    Settings are those of console.feed.ingest.Ingest. All methods are for the
    thread that called `start()` (the UI thread), except `received_total`,
    `alive` and `pid`, which any thread may read.
    """

    def __init__(
        self,
        endpoints: Sequence[str],
        *,
        config: Config | None = None,
        rcvhwm: int | None = None,
        limits: Limits | None = None,
        max_symbols: int | None = None,
        stale_after_s: float | None = None,
        history_s: int | None = None,
        network: NetworkOptions | None = None,
        latency_ring: int = LATENCY_RING,
        keys_dir: str | Path | None = None,
        record_path: str | Path | None = None,
    ) -> None:
        if not endpoints:
            raise ValueError("IngestProcess needs at least one endpoint")
        self.endpoints = list(endpoints)
        tuned = IngestSettings.of(config, rcvhwm=rcvhwm, limits=limits,
                                  max_symbols=max_symbols, stale_after_s=stale_after_s,
                                  history_s=history_s, network=network)
        logs = config.settings.logging if config is not None else None
        settings: dict[str, Any] = {
            "endpoints": self.endpoints,
            "rcvhwm": tuned.rcvhwm,
            "limits": dataclasses.asdict(tuned.limits),
            "max_symbols": tuned.max_symbols,
            "stale_after_s": tuned.stale_after_s,
            "history_s": tuned.history_s,
            "network": dataclasses.asdict(tuned.network),
            "latency_ring": int(latency_ring),
            "nice": tuned.nice,
            "keys_dir": str(keys_dir) if keys_dir is not None else None,
            "record_path": str(record_path) if record_path is not None else None,
            "log_level": logs.level if logs is not None else None,
            "log_dir": logs.dir if logs is not None else "",
        }
        self._child = Supervisor(INGEST_CHILD, settings, on_started=self._on_started,
                                 on_lost=self._on_lost, on_note=self._note)
        self._recording: Path | None = Path(record_path) if record_path is not None else None
        self._asked = False             # a DRAIN is outstanding
        self._stash: list[tuple[bytes, bytes]] = []  # UPDATEs read while awaiting an answer
        self._feeds: list[FeedRow] = []
        self._received_total = 0
        self._notes: list[TelemetryRecord] = []
        self._watch: str | None = None
        self._on_screen: list[str] | None = None
        # What the process was last told is on screen (UNSENT: nothing yet, or restarted).
        self._sent_on_screen: list[str] | object | None = UNSENT
        self._watch_asked = 0.0
        self._detail: SymbolDetail | None = None
        self._hold_ms: int | None = None
        self._answers = 0

    # --- lifecycle --------------------------------------------------------------------

    def start(self) -> None:
        """Start the process and wait until its sockets are connected.

        A bad endpoint or key raises UsageError (an unwritable recording
        OSError) here, with the process's own message; a process that fails
        otherwise raises services.runtime.child_pipe.ChildError.
        """
        self._child.start()

    def stop(self) -> None:
        """Ask the process to exit, then make sure it did; close the pipe."""
        self._child.stop()
        self._recording = None

    @property
    def alive(self) -> bool:
        return self._child.alive

    @property
    def pid(self) -> int | None:
        """The ingest process's pid (it changes after a restart)."""
        return self._child.pid

    @property
    def restarts(self) -> int:
        """Times the process was started again."""
        return self._child.restarts

    def _on_started(self) -> None:
        self._asked = False
        self._sent_on_screen = UNSENT
        self._stash.clear()
        self._ask()

    def _on_lost(self) -> None:
        if self._recording is not None:
            self._note(f"recording to {self._recording} stopped")
            self._recording = None
            self._child.settings["record_path"] = None

    def _note(self, message: str) -> None:
        log.error("%s", message)
        self._notes.append(TelemetryRecord("console", "logs", "ERROR", message, time.time_ns()))

    # --- the frame loop ----------------------------------------------------------------

    def drain(self) -> FrameUpdate:
        """The update prepared since the last frame; never waits for the process."""
        self._child.supervise()
        update = self._take_update()
        if update is None:
            self._ask()  # a request that could not be sent is sent now
            return self._no_update()
        return update

    def _take_update(self) -> FrameUpdate | None:
        messages = self._stash + self._child.receive()
        self._stash = []
        update: FrameUpdate | None = None
        for kind, body in messages:
            if kind != wire.UPDATE:
                log.warning("ingest process: unexpected %r dropped", kind[:32])
                continue
            update, detail = wire.decode_update(body)
            self._answers += 1
            self._asked = False
            if detail is not None:
                self._detail = detail
        if update is None:
            return None
        self._child.heard()
        self._feeds = update.feeds
        self._received_total = update.received_total
        if self._notes:
            update.telemetry = self._notes + update.telemetry
            self._notes = []
        self._ask()
        return update

    def _ask(self) -> None:
        """Ask for the next update (one outstanding at a time)."""
        if self._asked or not self._child.running:
            return
        if self._watch is not None and time.monotonic() - self._watch_asked > 2 * SILENT_S:
            self._watch = None  # the detail pane was closed
        body: dict[str, Any] = {"watch": self._watch, "hold_ms": self._hold_ms}
        if self._on_screen != self._sent_on_screen:
            # Only when it changed: the process keeps the last list it was sent.
            body["on_screen"] = self._on_screen
        try:
            self._child.send(wire.DRAIN, body)
        except (zmq.Again, ChildError):
            return
        self._sent_on_screen = self._on_screen
        self._asked = True

    def _no_update(self) -> FrameUpdate:
        """Nothing new this frame: the last feed rows, or DOWN when the process is silent."""
        feeds = self._feeds
        if self._child.silent:
            feeds = [dataclasses.replace(feed, state=FEED_DOWN, connection=CONN_DISCONNECTED,
                                         last_problem=NOT_ANSWERING) for feed in feeds]
        telemetry, self._notes = self._notes, []
        return FrameUpdate(rows={}, removed=[], feeds=feeds, telemetry=telemetry, events=[],
                           history=None, received_total=self._received_total, pending=0)

    # --- requests ------------------------------------------------------------------------

    def _keep(self, kind: bytes, body: bytes) -> None:
        """An UPDATE that arrived while a request waited: drain() takes it."""
        if kind == wire.UPDATE:
            self._stash.append((kind, body))

    def _request(self, kind: bytes, body: Any) -> bytes:
        try:
            self._child.send(kind, body)
        except zmq.Again:
            raise ChildError("the ingest process is not connected") from None
        return self._child.await_reply({wire.ANSWER}, ANSWER_TIMEOUT_S, self._keep)[1]

    def hold(self, hold_ms: int | None) -> None:
        """An idle UI: the process answers the next drains only when something is new,
        or after `hold_ms` (None: at once again). See console.ui.frame_pace."""
        self._hold_ms = hold_ms

    @property
    def answers(self) -> int:
        """Updates the process has sent so far (one per answered drain)."""
        return self._answers

    def answer_waiting(self) -> bool:
        """Whether the next drain() has something to take (an update waiting on the
        pipe or kept aside), or no request is out; cheap enough for every fps tick."""
        if self._stash or not self._asked:
            return True
        sock = self._child.socket
        if sock is None:
            return True
        try:
            return message_waiting(sock)
        except zmq.ZMQError:  # closed: the process is being restarted
            return True

    def wake_socket(self) -> zmq.Socket[Any] | None:
        """The pipe an answer arrives on, for the UI's event loop to watch."""
        return self._child.socket

    def show(self, on_screen: Collection[str] | None) -> None:
        """The symbols the UI shows (see Ingest.show); sent with the next request."""
        self._on_screen = None if on_screen is None else list(on_screen)

    def detail(self, vt_symbol: str) -> SymbolDetail | None:
        """The detail pane; a watched symbol's detail arrives with each update."""
        self._watch_asked = time.monotonic()
        detail = self._detail
        self._detail = None
        if self._watch == vt_symbol and detail is not None \
                and detail.row.vt_symbol == vt_symbol:
            return detail
        self._watch = vt_symbol
        try:
            return wire.decode_detail(self._request(wire.DETAIL, vt_symbol))
        except ChildError as exc:
            log.warning("detail of %s: %s", vt_symbol, exc)
            return None

    def all_rows(self) -> dict[str, SymbolRow]:
        try:
            return wire.decode_rows(self._request(wire.ALL_ROWS, None))
        except ChildError as exc:
            log.warning("all rows: %s", exc)
            return {}

    @property
    def received_total(self) -> int:
        """All frames received, as of the latest update (a frame behind at most)."""
        return self._received_total

    # --- recording ---------------------------------------------------------------------

    def start_recording(self, path: str | Path) -> None:
        """Record every well-formed frame from now on; OSError if the file cannot be opened."""
        try:
            self._request(wire.RECORD, str(path))
        except (ChildError, UsageError) as exc:
            raise OSError(str(exc)) from None
        self._recording = Path(path)

    def stop_recording(self) -> None:
        self._recording = None
        if not self.alive:
            return
        try:
            self._request(wire.RECORD, None)
        except (ChildError, OSError) as exc:
            log.warning("stopping the recording: %s", exc)

    @property
    def recording(self) -> Path | None:
        """The file being recorded to, or None."""
        return self._recording
