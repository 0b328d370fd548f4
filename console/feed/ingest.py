"""The ingest thread: SUB sockets in, a FeedBook updated in batches, the UI drains it.

Receiving runs in a plain thread, not asyncio: on a 2-core machine asyncio
falls behind above ~10k msg/s, while a tight `recv()` loop keeps up with
hundreds of thousands. One SUB socket per endpoint keeps per-feed counts
exact, and a socket monitor per SUB reports connected / retrying /
disconnected. The lock is taken once per batch of frames, never per frame;
the UI thread takes it once per screen frame to `drain()`.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import threading
import time
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any

import zmq
from zmq.utils.monitor import recv_monitor_message

from console.feed.book import LATENCY_RING, FeedBook
from console.model import (
    CONN_CONNECTED,
    CONN_CONNECTING,
    CONN_DISCONNECTED,
    CONN_RETRYING,
    FrameUpdate,
    SymbolDetail,
    SymbolRow,
)
from services.protocol import DEFAULT_LIMITS, Limits
from services.runtime.scheduling import Yielder
from services.runtime.sockets import apply_limits, connect

log = logging.getLogger(__name__)

DEFAULT_RCVHWM = 1_000_000
DEFAULT_MAX_SYMBOLS = 50_000
DEFAULT_STALE_AFTER_S = 3.0
DEFAULT_HISTORY_S = 120
# Frames merged per lock hold: long enough to amortise the lock and the pause
# below, short enough that the UI's drain() and the other sockets never wait long.
BATCH = 1024
# Pause after a full batch. Under a flat-out feed recv() drops and retakes the
# GIL for every frame, and CPython then never hands the GIL to a thread waiting
# for it (the UI stalled for up to a second mid-frame); this short sleep lets it
# in, for a few percent of peak throughput.
YIELD_S = 0.0002
# On a busy machine that sleep can be too short for the OS to run the waiting
# thread. When the UI, which drains once a frame, has not drained for
# UI_STARVED_S (but did within UI_GONE_S: it is starved, not gone), ingest steps
# aside until it has, for at most UI_RESCUE_S; the frames wait in the socket.
UI_STARVED_S = 0.06
UI_GONE_S = 1.0
UI_RESCUE_S = 0.03
# Poll timeout: how quickly stop() is noticed when nothing arrives.
POLL_MS = 100
# libzmq does not reconnect after some drops: a frame bigger than MAXMSGSIZE
# (a protocol error) or a refused CURVE key. A dropped connection that libzmq
# has not started retrying within this long is re-opened by ingest.
REVIVE_AFTER_S = 1.0
# libzmq allocates every queued message in its I/O thread; after a backlog is
# drained glibc keeps the freed heap (about 1 GB after a burst of 1M frames).
# When the sockets run dry and the process grew by this much since the last
# look, the free heap is handed back to the OS (malloc_trim; glibc only).
TRIM_GROWTH_BYTES = 64 * 1024 * 1024
TRIM_CHECK_S = 1.0
OVERSIZED_DROP = "connection dropped by libzmq: a frame over max_msg_size (or a broken stream)"

_HANDSHAKE_FAILURES = {
    zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL: "handshake failed",
    zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL: "handshake failed (protocol)",
    zmq.EVENT_HANDSHAKE_FAILED_AUTH: "handshake failed (authentication refused)",
}


def _malloc_trim() -> Any:
    """glibc's malloc_trim, or None elsewhere."""
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


def _rss_bytes() -> int | None:
    try:
        with open("/proc/self/statm", "rb") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def setting(explicit: Any, config: Any, key: str, default: Any) -> Any:
    """Explicit keyword first, then `[console] key` from the config, then the default."""
    if explicit is not None:
        return explicit
    if config is not None:
        return config.get("console", key)
    return default


class Ingest:
    """Receives every feed in a background thread; implements model.TickSource.

    `config` is a services.runtime.config.Config; explicit keywords override it.
    All public methods are thread-safe; `drain()` is meant for the UI thread
    once per screen frame.
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
        context: zmq.Context | None = None,
    ) -> None:
        if not endpoints:
            raise ValueError("Ingest needs at least one endpoint")
        self.endpoints = list(endpoints)
        self._rcvhwm = int(setting(rcvhwm, config, "rcvhwm", DEFAULT_RCVHWM))
        if limits is None:
            limits = Limits.from_config(config.section("limits")) if config is not None \
                else DEFAULT_LIMITS
        self._limits = limits
        self._on_screen: frozenset[str] | None = None
        self._book = FeedBook(
            self.endpoints,
            limits=limits,
            max_symbols=int(setting(max_symbols, config, "max_symbols", DEFAULT_MAX_SYMBOLS)),
            stale_after_s=float(
                setting(stale_after_s, config, "stale_after_s", DEFAULT_STALE_AFTER_S)
            ),
            history_s=int(setting(history_s, config, "history_s", DEFAULT_HISTORY_S)),
            latency_ring=latency_ring,
        )
        self._keys_dir = keys_dir
        self._initial_record_path = record_path
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._drained = threading.Event()  # set by drain(); see UI_STARVED_S
        self._last_drain = 0.0
        self._thread: threading.Thread | None = None
        self._own_context = context is None
        self._context = context
        self._subs: list[zmq.Socket] = []
        self._monitors: list[zmq.Socket] = []
        self._recorder: Any = None
        self._record_path: Path | None = None
        # Thread-owned: feeds whose handshake completed, and dropped connections
        # libzmq may not retry (index -> (revive at, dropped after a handshake)).
        self._handshaked: set[int] = set()
        self._dropped: dict[int, tuple[float, bool]] = {}
        self.errors = 0  # unexpected exceptions caught in the thread (logged)

    # --- lifecycle --------------------------------------------------------------------

    def start(self) -> None:
        """Open and connect every SUB socket, then start the thread.

        A bad endpoint raises services.runtime.errors.UsageError here, on the caller's
        thread; after that the sockets belong to the ingest thread alone.
        """
        if self._thread is not None:
            return
        self.open()
        self._thread = threading.Thread(target=self._run, name="ingest", daemon=True)
        self._thread.start()

    def serve(self, control: zmq.Socket, on_control: Callable[[], bool]) -> None:
        """Run the receive loop in the calling thread until `on_control` returns False.

        For the ingest process (console.feed.child), which has no other
        thread to share a GIL with: `control` joins the loop's poll and
        `on_control` is called whenever it is readable (and when the loop is
        idle), between batches, so a request waits at most one batch.
        `open()` must have been called.
        """
        self._stopping.clear()
        self._run(control, on_control)

    def open(self) -> None:
        """Open and connect every SUB socket (UsageError for a bad endpoint or key)."""
        if self._subs:
            return
        context = self._context or zmq.Context()
        self._context = context
        keys = None
        if self._keys_dir is not None:
            from services import security  # optional: only with --keys

            keys = security.load_keys(self._keys_dir)
        try:
            for endpoint in self.endpoints:
                sub = context.socket(zmq.SUB)
                self._subs.append(sub)
                sub.setsockopt(zmq.LINGER, 0)
                sub.setsockopt(zmq.RCVHWM, self._rcvhwm)
                apply_limits(sub, self._limits)
                sub.setsockopt(zmq.SUBSCRIBE, b"")
                if keys is not None:
                    security.secure_client(sub, keys)
                # The monitor exists before connect so no event is missed.
                self._monitors.append(sub.get_monitor_socket())
                connect(sub, endpoint, what="feed")
            if self._initial_record_path is not None:
                self.start_recording(self._initial_record_path)
        except BaseException:
            self._close_sockets()
            raise
        self._stopping.clear()

    def stop(self) -> None:
        """Stop the thread (returns within about a second) and close any recording."""
        self._stopping.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout=1.0)
            if thread.is_alive():
                log.warning("ingest thread did not stop within 1 s")
        self._thread = None
        self.stop_recording()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # --- what the UI reads (model.TickSource) ---------------------------------------

    def drain(self) -> FrameUpdate:
        with self._lock:
            update = self._book.drain(self._on_screen)
        self._last_drain = time.monotonic()
        self._drained.set()
        return update

    def show(self, on_screen: Collection[str] | None) -> None:
        """The symbols the UI shows: their rows come every frame, the rest at
        FeedBook's off-screen pace (None: every row every frame)."""
        self._on_screen = None if on_screen is None else frozenset(on_screen)

    def detail(self, vt_symbol: str) -> SymbolDetail | None:
        with self._lock:
            return self._book.detail(vt_symbol)

    def all_rows(self) -> dict[str, SymbolRow]:
        with self._lock:
            return self._book.all_rows()

    @property
    def received_total(self) -> int:
        with self._lock:
            return self._book.received_total

    # --- recording ---------------------------------------------------------------------

    def start_recording(self, path: str | Path) -> None:
        """Record every well-formed frame from now on (replaces a running recording).

        Errors opening the file (OSError) reach the caller.
        """
        from services.recording import RecordingWriter  # written alongside; lazy

        writer = RecordingWriter(Path(path))
        with self._lock:
            previous, self._recorder = self._recorder, writer
            self._record_path = Path(path)
        if previous is not None:
            self._close_writer(previous)

    def stop_recording(self) -> None:
        with self._lock:
            writer, self._recorder = self._recorder, None
            self._record_path = None
        if writer is not None:
            self._close_writer(writer)

    @property
    def recording(self) -> Path | None:
        """The file being recorded to, or None."""
        return self._record_path

    @staticmethod
    def _close_writer(writer: Any) -> None:
        close = getattr(writer, "close", None)
        if close is not None:
            try:
                close()
            except OSError as exc:
                log.warning("closing the recording failed: %s", exc)

    # --- the thread ---------------------------------------------------------------------

    def _run(self, control: zmq.Socket | None = None,
             on_control: Callable[[], bool] | None = None) -> None:
        """Poll, drain each readable SUB in bounded batches, apply monitor events."""
        subs = list(enumerate(self._subs))
        monitors = list(enumerate(self._monitors))
        poller = zmq.Poller()
        for sock in self._subs + self._monitors:
            poller.register(sock, zmq.POLLIN)
        if control is not None:
            poller.register(control, zmq.POLLIN)
        last_error_log = 0.0
        trim = _malloc_trim()
        trimmed_rss = _rss_bytes() or 0
        next_trim_check = 0.0
        pause = Yielder()  # a flat-out feed must not hold the CPU for long
        try:
            while not self._stopping.is_set():
                try:
                    ready = dict(poller.poll(POLL_MS))
                    if not ready:
                        self._flush_recording()
                    busy = False
                    for index, sub in subs:
                        if sub in ready:
                            busy = self._receive_batch(index, sub) or busy
                    # on_control also runs when idle, for its housekeeping.
                    if on_control is not None and (control in ready or not ready) \
                            and not on_control():
                        break
                    if busy:
                        if control is None:  # threaded: the UI needs the GIL too
                            self._step_aside()
                        else:
                            pause()
                    elif trim is not None and time.monotonic() >= next_trim_check:
                        next_trim_check = time.monotonic() + TRIM_CHECK_S
                        trimmed_rss = self._trim_heap(trim, trimmed_rss)
                    for index, monitor in monitors:
                        if monitor in ready:
                            self._apply_monitor(index, monitor, poller)
                    if self._dropped:
                        self._revive_dropped()
                except Exception as exc:  # the thread must survive anything
                    self.errors += 1
                    now = time.monotonic()
                    if now - last_error_log >= 1.0:
                        last_error_log = now
                        log.exception("ingest: unexpected error (%d so far): %s",
                                      self.errors, exc)
                    self._stopping.wait(0.01)  # never spin on a persistent fault
        finally:
            self._close_sockets()

    @staticmethod
    def _trim_heap(trim: Any, trimmed_rss: int) -> int:
        """Give freed heap back to the OS if the process grew a lot; the new baseline."""
        rss = _rss_bytes()
        if rss is None or rss - trimmed_rss < TRIM_GROWTH_BYTES:
            return trimmed_rss
        trim(0)
        after = _rss_bytes() or rss
        log.debug("malloc_trim: RSS %d -> %d MiB", rss >> 20, after >> 20)
        return after

    def _step_aside(self) -> None:
        """After a full batch: let the UI (and any thread waiting for the GIL) run."""
        since = time.monotonic() - self._last_drain
        if UI_STARVED_S < since < UI_GONE_S:
            self._drained.clear()
            if time.monotonic() - self._last_drain > UI_STARVED_S:
                self._drained.wait(UI_RESCUE_S)
                return
        time.sleep(YIELD_S)

    def _receive_batch(self, index: int, sock: zmq.Socket) -> bool:
        """Merge up to BATCH messages from one socket under one lock hold.

        True when the batch was full (more may be waiting), False when the
        socket ran dry.

        Frames are read in pairs with plain `recv()`; asking RCVMORE costs more
        than the recv itself, so it is asked only after a pair was rejected
        (see `_resync`). A well-formed stream is therefore counted exactly; a
        peer sending messages of the wrong shape gets them counted as rejected
        without losing the good messages that follow.
        """
        recv = sock.recv
        on_frame = self._book.on_frame
        noblock = zmq.NOBLOCK
        with self._lock:
            recorder = self._recorder
            for _ in range(BATCH):
                try:
                    topic = recv(noblock)
                except zmq.Again:
                    return False
                try:
                    payload = recv(noblock)
                except zmq.Again:
                    # Multipart messages arrive whole: nothing after it, so it was alone.
                    self._book.on_malformed(index, "message has 1 frame, expected 2")
                    return False
                if recorder is not None:
                    recorder = self._record(recorder, topic, payload)
                if not on_frame(index, topic, payload):
                    self._resync(index, sock, payload)
        return True

    def _resync(self, index: int, sock: zmq.Socket, second: bytes) -> None:
        """After a rejected pair, make sure the next recv starts a new message.

        If the pair's second frame has more frames after it, either the first
        frame was a one-frame message (and `second` starts the next message) or
        the message has more than two frames. The former is tried as a message
        of its own, so a stray frame never costs the good message behind it.
        """
        if not sock.getsockopt(zmq.RCVMORE):
            return  # the pair was a whole message, just a bad one
        try:
            third = sock.recv(zmq.NOBLOCK)
        except zmq.Again:  # pragma: no cover - multipart messages arrive whole
            return
        if not sock.getsockopt(zmq.RCVMORE):
            if self._recorder is not None:
                self._record(self._recorder, second, third)
            self._book.on_frame(index, second, third)
            return
        while sock.getsockopt(zmq.RCVMORE):  # more than three frames: skip to the end
            sock.recv(zmq.NOBLOCK)

    def _record(self, recorder: Any, topic: bytes, payload: bytes) -> Any:
        """Write one frame to the recording; a write error stops recording, not ingest."""
        try:
            recorder.write(time.time_ns(), topic, payload)
        except (OSError, ValueError) as exc:
            log.error("recording to %s stopped: %s", self._record_path, exc)
            self._recorder = None
            self._record_path = None
            self._close_writer(recorder)
            return None
        return recorder

    def _flush_recording(self) -> None:
        """Idle moments push buffered recorded frames to the OS (within a second)."""
        with self._lock:
            recorder = self._recorder
            if recorder is None:
                return
            try:
                recorder.flush_if_due()
            except (OSError, ValueError) as exc:
                log.error("recording to %s stopped: %s", self._record_path, exc)
                self._recorder = None
                self._record_path = None

    def _apply_monitor(self, index: int, monitor: zmq.Socket, poller: zmq.Poller) -> None:
        endpoint = self.endpoints[index]
        while True:
            try:
                event = recv_monitor_message(monitor, zmq.NOBLOCK)
            except zmq.Again:
                return
            code = event["event"]
            state: str | None = None
            if code in (zmq.EVENT_CONNECTED, zmq.EVENT_CONNECT_RETRIED,
                        zmq.EVENT_CONNECT_DELAYED):
                self._dropped.pop(index, None)  # libzmq is (re)connecting by itself
            if code == zmq.EVENT_CONNECTED:
                state = CONN_CONNECTED
            elif code == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                self._handshaked.add(index)
            elif code == zmq.EVENT_CONNECT_RETRIED:
                state = CONN_RETRYING
            elif code == zmq.EVENT_CONNECT_DELAYED:
                state = CONN_RETRYING if self._connection(index) != CONN_CONNECTING else None
            elif code == zmq.EVENT_DISCONNECTED:
                state = CONN_DISCONNECTED
                self._dropped[index] = (time.monotonic() + REVIVE_AFTER_S,
                                        index in self._handshaked)
                self._handshaked.discard(index)
                log.info("feed %s: disconnected", endpoint)
            elif code in _HANDSHAKE_FAILURES:
                log.warning("feed %s: %s", endpoint, _HANDSHAKE_FAILURES[code])
            elif code == zmq.EVENT_MONITOR_STOPPED:
                poller.unregister(monitor)
                return
            if state is not None:
                with self._lock:
                    self._book.set_connection(index, state)

    def _revive_dropped(self) -> None:
        """Re-open connections libzmq dropped and is not retrying (see REVIVE_AFTER_S).

        A drop after a completed handshake that libzmq does not retry is an
        oversized frame (or a broken stream): it never reached us, so it is
        counted as one rejected frame here, with the reason.
        """
        now = time.monotonic()
        for index, (due, handshaked) in list(self._dropped.items()):
            if now < due:
                continue
            del self._dropped[index]
            endpoint = self.endpoints[index]
            sub = self._subs[index]
            with contextlib.suppress(zmq.ZMQError):
                sub.disconnect(endpoint)
            sub.connect(endpoint)
            if handshaked:
                with self._lock:
                    self._book.on_dropped(index, OVERSIZED_DROP)
                log.warning("feed %s: %s; reconnecting", endpoint, OVERSIZED_DROP)
            else:
                log.warning("feed %s: handshake refused and not retried by libzmq; "
                            "reconnecting", endpoint)

    def _connection(self, index: int) -> str:
        with self._lock:
            return self._book.connection(index)

    def _close_sockets(self) -> None:
        for sub in self._subs:
            with contextlib.suppress(zmq.ZMQError):
                sub.disable_monitor()
        for sock in self._monitors + self._subs:
            sock.close(linger=0)
        self._subs = []
        self._monitors = []
        if self._own_context and self._context is not None:
            self._context.term()
            self._context = None
