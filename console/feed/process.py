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
the telemetry pane says so.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import subprocess
import time
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

import zmq

from console.feed import wire as wire
from console.feed.book import LATENCY_RING
from console.feed.ingest import (
    DEFAULT_HISTORY_S,
    DEFAULT_MAX_SYMBOLS,
    DEFAULT_RCVHWM,
    DEFAULT_STALE_AFTER_S,
    setting,
)
from console.model import (
    CONN_DISCONNECTED,
    FEED_DOWN,
    FeedRow,
    FrameUpdate,
    SymbolDetail,
    SymbolRow,
    TelemetryRecord,
)
from services.protocol import DEFAULT_LIMITS, Limits
from services.runtime import child_process as helper
from services.runtime.errors import UsageError

log = logging.getLogger(__name__)

START_TIMEOUT_S = 15.0
# The process's niceness: under a flat-out feed it is CPU-bound, and the
# kernel then gives the UI the CPU first (key to frame p50 fell from ~40 ms to
# ~3 ms in bench/run.py's load phase, with the same ingest rate).
DEFAULT_NICE = 10
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
        config: Any = None,
        rcvhwm: int | None = None,
        limits: Limits | None = None,
        max_symbols: int | None = None,
        stale_after_s: float | None = None,
        history_s: int | None = None,
        latency_ring: int = LATENCY_RING,
        keys_dir: str | Path | None = None,
        record_path: str | Path | None = None,
    ) -> None:
        if not endpoints:
            raise ValueError("IngestProcess needs at least one endpoint")
        self.endpoints = list(endpoints)
        if limits is None:
            limits = Limits.from_config(config.section("limits")) if config is not None \
                else DEFAULT_LIMITS
        logging_section = config.section("logging") if config is not None else {}
        self._settings: dict[str, Any] = {
            "endpoints": self.endpoints,
            "rcvhwm": int(setting(rcvhwm, config, "rcvhwm", DEFAULT_RCVHWM)),
            "limits": dataclasses.asdict(limits),
            "max_symbols": int(setting(max_symbols, config, "max_symbols",
                                       DEFAULT_MAX_SYMBOLS)),
            "stale_after_s": float(setting(stale_after_s, config, "stale_after_s",
                                           DEFAULT_STALE_AFTER_S)),
            "history_s": int(setting(history_s, config, "history_s", DEFAULT_HISTORY_S)),
            "latency_ring": int(latency_ring),
            "nice": int(setting(None, config, "ingest_nice", DEFAULT_NICE)),
            "keys_dir": str(keys_dir) if keys_dir is not None else None,
            "record_path": str(record_path) if record_path is not None else None,
            "log_level": logging_section.get("level"),
            "log_dir": str(logging_section.get("dir") or ""),
        }
        self._recording: Path | None = Path(record_path) if record_path is not None else None
        self._context: zmq.Context | None = None
        self._pipe: helper.Pipe | None = None
        self._control: zmq.Socket | None = None
        self._popen: subprocess.Popen[bytes] | None = None
        self._pid: int | None = None
        self._started_at = 0.0
        self._restart_due: float | None = None
        self._stopping = False
        self._asked = False             # a DRAIN is outstanding
        self._last_update_at = 0.0
        self._stash: list[tuple[bytes, bytes]] = []  # UPDATEs read while awaiting an answer
        self._feeds: list[FeedRow] = []
        self._received_total = 0
        self._notes: list[TelemetryRecord] = []
        self._watch: str | None = None
        self._on_screen: list[str] | None = None
        self._watch_asked = 0.0
        self._detail: SymbolDetail | None = None
        self.restarts = 0               # times the process was started again

    # --- lifecycle --------------------------------------------------------------------

    def start(self) -> None:
        """Start the process and wait until its sockets are connected.

        A bad endpoint or key raises UsageError (an unwritable recording
        OSError) here, with the process's own message.
        """
        if self._popen is not None:
            return
        self._stopping = False
        self._context = zmq.Context()
        try:
            self._open_pipe()
            self._spawn()
        except BaseException:
            self._close_pipe()
            raise

    def stop(self) -> None:
        """Ask the process to exit, then make sure it did; close the pipe."""
        self._stopping = True
        if self._control is not None and self._popen is not None:
            with contextlib.suppress(zmq.ZMQError):
                self._control.send_multipart([wire.STOP, wire.encode(None)], zmq.NOBLOCK)
        self._reap(STOP_TIMEOUT_S)
        self._close_pipe()
        self._recording = None

    def _close_pipe(self) -> None:
        if self._pipe is not None:
            self._pipe.close()
            self._pipe = None
            self._control = None
        if self._context is not None:
            self._context.term()
            self._context = None

    @property
    def alive(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    @property
    def pid(self) -> int | None:
        """The ingest process's pid (it changes after a restart)."""
        return self._pid

    def _open_pipe(self) -> None:
        assert self._context is not None
        self._pipe = helper.open_pipe(self._context, "ingest")
        self._control = self._pipe.socket

    def _spawn(self) -> None:
        """Start a process and wait for STARTED; raise what it reported otherwise."""
        self._asked = False
        self._stash.clear()
        assert self._pipe is not None
        self._popen = helper.spawn("console.feed.child", self._pipe.endpoint, self._settings)
        self._started_at = time.monotonic()
        try:
            _, body = self._await({wire.STARTED}, START_TIMEOUT_S)
        except BaseException:
            self._reap(0.5)
            raise
        self._pid = int(body["pid"])
        self._last_update_at = time.monotonic()
        self._ask()

    def _reap(self, timeout: float) -> None:
        popen, self._popen = self._popen, None
        helper.reap(popen, timeout)

    # --- the frame loop ----------------------------------------------------------------

    def drain(self) -> FrameUpdate:
        """The update prepared since the last frame; never waits for the process."""
        self._supervise()
        update = self._take_update()
        if update is None:
            return self._no_update()
        return update

    def _take_update(self) -> FrameUpdate | None:
        messages = self._stash
        self._stash = []
        control = self._control
        if control is not None and self._popen is not None:
            while True:
                try:
                    messages.append(tuple(control.recv_multipart(zmq.NOBLOCK)))  # type: ignore[arg-type]
                except zmq.Again:
                    break
        update: FrameUpdate | None = None
        for kind, body in messages:
            if kind != wire.UPDATE:
                log.warning("ingest process: unexpected %r dropped", kind[:32])
                continue
            update, detail = wire.decode_update(body)
            self._asked = False
            if detail is not None:
                self._detail = detail
        if update is None:
            return None
        self._last_update_at = time.monotonic()
        self._feeds = update.feeds
        self._received_total = update.received_total
        if self._notes:
            update.telemetry = self._notes + update.telemetry
            self._notes = []
        self._ask()
        return update

    def _ask(self) -> None:
        """Ask for the next update (one outstanding at a time)."""
        if self._asked or self._control is None or self._popen is None:
            return
        if self._watch is not None and time.monotonic() - self._watch_asked > 2 * SILENT_S:
            self._watch = None  # the detail pane was closed
        try:
            request = {"watch": self._watch, "on_screen": self._on_screen}
            self._control.send_multipart([wire.DRAIN, wire.encode(request)], zmq.NOBLOCK)
        except zmq.Again:
            return
        self._asked = True

    def _no_update(self) -> FrameUpdate:
        """Nothing new this frame: the last feed rows, or DOWN when the process is silent."""
        feeds = self._feeds
        if time.monotonic() - self._last_update_at > SILENT_S:
            feeds = [dataclasses.replace(feed, state=FEED_DOWN, connection=CONN_DISCONNECTED,
                                         last_problem=NOT_ANSWERING) for feed in feeds]
        telemetry, self._notes = self._notes, []
        return FrameUpdate(rows={}, removed=[], feeds=feeds, telemetry=telemetry, events=[],
                           history=None, received_total=self._received_total, pending=0)

    # --- supervision ------------------------------------------------------------------

    def _supervise(self) -> None:
        """Restart a process that exited or hung; at most once per RESTART_BACKOFF_S."""
        if self._stopping or self._context is None:
            return
        now = time.monotonic()
        popen = self._popen
        if popen is not None:
            code = popen.poll()
            if code is None and now - self._last_update_at <= HUNG_S:
                return
            if code is None:
                self._note(f"ingest process {self._pid} stopped answering; restarting it")
                popen.kill()
            else:
                self._note(f"ingest process {self._pid} exited with code {code}; "
                           "restarting it (feed counters start again from zero)")
            self._reap(1.0)
            quick = now - self._started_at < RESTART_BACKOFF_S
            self._restart_due = now + RESTART_BACKOFF_S if quick else now
            if self._recording is not None:
                self._note(f"recording to {self._recording} stopped")
                self._recording = None
                self._settings["record_path"] = None
        if self._restart_due is None or now < self._restart_due:
            return
        self._restart_due = None
        try:
            self._spawn()
        except (UsageError, OSError, RuntimeError) as exc:
            self._note(f"ingest process failed to start again: {exc}")
            self._restart_due = time.monotonic() + RESTART_BACKOFF_S
            return
        self.restarts += 1

    def _note(self, message: str) -> None:
        log.error("%s", message)
        self._notes.append(TelemetryRecord("console", "logs", "ERROR", message, time.time_ns()))

    # --- requests ------------------------------------------------------------------------

    def _await(self, kinds: set[bytes], timeout: float) -> tuple[bytes, Any]:
        """The next answer of one of `kinds`; UPDATEs met meanwhile are kept for drain()."""
        control = self._control
        if control is None or self._popen is None:
            raise RuntimeError("the ingest process is not running")
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RuntimeError(f"the ingest process did not answer within {timeout:.0f} s")
            if not control.poll(min(remaining, 0.1) * 1000):
                code = self._popen.poll() if self._popen is not None else None
                if code is not None:
                    raise RuntimeError(f"the ingest process exited with code {code}")
                continue
            kind, body = control.recv_multipart()
            if kind == wire.UPDATE:
                self._stash.append((kind, body))
            elif kind == wire.FAILED:
                failure = wire.decode_any(body)
                message = str(failure.get("message"))
                if failure.get("kind") == wire.FAILURE_USAGE:
                    raise UsageError(message)
                if failure.get("kind") == wire.FAILURE_OS:
                    raise OSError(message)
                raise RuntimeError(f"the ingest process failed: {message}")
            elif kind in kinds:
                return kind, wire.decode_any(body) if kind == wire.STARTED else body

    def _request(self, kind: bytes, body: Any) -> bytes:
        if self._control is None or not self.alive:
            raise RuntimeError("the ingest process is not running")
        try:
            self._control.send_multipart([kind, wire.encode(body)], zmq.NOBLOCK)
        except zmq.Again:
            raise RuntimeError("the ingest process is not connected") from None
        return self._await({wire.ANSWER}, ANSWER_TIMEOUT_S)[1]

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
        except RuntimeError as exc:
            log.warning("detail of %s: %s", vt_symbol, exc)
            return None

    def all_rows(self) -> dict[str, SymbolRow]:
        try:
            return wire.decode_rows(self._request(wire.ALL_ROWS, None))
        except RuntimeError as exc:
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
        except (RuntimeError, UsageError) as exc:
            raise OSError(str(exc)) from None
        self._recording = Path(path)

    def stop_recording(self) -> None:
        self._recording = None
        if self._control is None or not self.alive:
            return
        try:
            self._request(wire.RECORD, None)
        except (RuntimeError, OSError) as exc:
            log.warning("stopping the recording: %s", exc)

    @property
    def recording(self) -> Path | None:
        """The file being recorded to, or None."""
        return self._recording

