"""The ingest thread: SUB sockets in, a FeedBook updated in batches, the UI drains it.

Receiving runs in a plain thread, not asyncio: on a 2-core machine asyncio
falls behind above ~10k msg/s, while a tight `recv()` loop keeps up with
hundreds of thousands. The sockets and their monitors are in feed_sockets,
the optional recording in recording_tap, heap trimming in heap_trim. The
lock is taken once per batch of frames, never per frame; the UI thread takes
it once per screen frame to `drain()`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import zmq

from console.feed.book import LATENCY_RING, FeedBook
from console.feed.feed_sockets import OVERSIZED_DROP as OVERSIZED_DROP  # the reason, re-exported
from console.feed.feed_sockets import FeedSockets
from console.feed.heap_trim import HeapTrimmer
from console.feed.ingest_settings import IngestSettings
from console.feed.recording_tap import RecordingTap
from console.model import FrameUpdate, SymbolDetail, SymbolRow
from services.protocol import Limits
from services.runtime.network import NetworkOptions
from services.runtime.scheduling import Yielder
from services.runtime.sockets import EVENTS, POLLIN

if TYPE_CHECKING:
    from services.runtime.config import Config

log = logging.getLogger(__name__)

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
# Messages at the start of a batch for which _receive_batch asks before receiving.
ASK_FIRST = 4


class Ingest:
    """Receives every feed in a background thread; implements model.TickSource.

    Explicit keywords override `config` (see console.feed.ingest_settings).
    All public methods are thread-safe; `drain()` is meant for the UI thread
    once per screen frame.
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
        context: zmq.Context | None = None,
    ) -> None:
        if not endpoints:
            raise ValueError("Ingest needs at least one endpoint")
        self.endpoints = list(endpoints)
        tuned = IngestSettings.of(config, rcvhwm=rcvhwm, limits=limits,
                                  max_symbols=max_symbols, stale_after_s=stale_after_s,
                                  history_s=history_s, network=network)
        self._on_screen: frozenset[str] | None = None
        self._book = FeedBook(
            self.endpoints,
            limits=tuned.limits,
            max_symbols=tuned.max_symbols,
            stale_after_s=tuned.stale_after_s,
            history_s=tuned.history_s,
            latency_ring=latency_ring,
        )
        self._initial_record_path = record_path
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._drained = threading.Event()  # set by drain(); see UI_STARVED_S
        self._last_drain = 0.0
        self._thread: threading.Thread | None = None
        self._sockets = FeedSockets(
            self.endpoints,
            rcvhwm=tuned.rcvhwm,
            limits=tuned.limits,
            keys_dir=keys_dir,
            context=context,
            set_state=self._set_connection,
            state_of=self._connection,
            on_dropped=self._on_dropped,
            silent_ns=self._silent_ns,
            network=tuned.network,
        )
        self._recording = RecordingTap(self._lock)
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

    def serve(self, control: zmq.Socket, on_control: Callable[[bool], bool],
              wait_ms: Callable[[], int] | None = None) -> None:
        """Run the receive loop in the calling thread until `on_control` returns False.

        For the ingest process (console.feed.child), which has no other
        thread to share a GIL with: `control` joins the loop's poll and
        `on_control(readable)` is called on every turn, between batches, with
        whether the poll found `control` readable, so a request waits at most
        one batch.
        `wait_ms()` is the longest the loop may then sleep with nothing
        arriving (POLL_MS when not given). `open()` must have been called.
        """
        self._stopping.clear()
        self._run(control, on_control, wait_ms)

    def open(self) -> None:
        """Open and connect every SUB socket (UsageError for a bad endpoint or key)."""
        if self._sockets.subs:
            return
        self._sockets.open()
        try:
            if self._initial_record_path is not None:
                self.start_recording(self._initial_record_path)
        except BaseException:
            self._sockets.close()
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
        else:
            # Served in the caller's thread (or never run): the loop closes the sockets
            # when it ends; if it never ran they are closed here, before a shared
            # context is terminated (closing twice is harmless).
            self._sockets.close()
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

    def has_news(self) -> bool:
        """Whether `drain` would bring anything new (see FeedBook.has_news)."""
        with self._lock:
            return self._book.has_news(self._on_screen)

    def rows_due_in_ns(self) -> int | None:
        """How long until rows waiting off screen are due (see FeedBook.rows_due_in_ns)."""
        with self._lock:
            return self._book.rows_due_in_ns()

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
        self._recording.start(path)

    def stop_recording(self) -> None:
        self._recording.stop()

    @property
    def recording(self) -> Path | None:
        """The file being recorded to, or None."""
        return self._recording.path

    # --- the book, for the socket monitor (each under the lock) ------------------------

    def _set_connection(self, index: int, state: str) -> None:
        with self._lock:
            self._book.set_connection(index, state)

    def _connection(self, index: int) -> str:
        with self._lock:
            return self._book.connection(index)

    def _silent_ns(self, index: int) -> int | None:
        with self._lock:
            return self._book.silent_ns(index)

    def _on_dropped(self, index: int, reason: str) -> None:
        with self._lock:
            self._book.on_dropped(index, reason)

    # --- the thread ---------------------------------------------------------------------

    def _run(self, control: zmq.Socket | None = None,
             on_control: Callable[[bool], bool] | None = None,
             wait_ms: Callable[[], int] | None = None) -> None:
        """Poll, drain each readable SUB in bounded batches, apply monitor events."""
        sockets = self._sockets
        subs = list(enumerate(sockets.subs))
        monitors = list(enumerate(sockets.monitors))
        poller = zmq.Poller()
        for sock in sockets.subs + sockets.monitors:
            poller.register(sock, zmq.POLLIN)
        if control is not None:
            poller.register(control, zmq.POLLIN)
        last_error_log = 0.0
        heap = HeapTrimmer()
        pause = Yielder()  # a flat-out feed must not hold the CPU for long
        try:
            while not self._stopping.is_set():
                try:
                    longest = POLL_MS if wait_ms is None else wait_ms()
                    ready = dict(poller.poll(sockets.poll_ms(longest)))
                    if not ready:
                        self._recording.flush_if_due()
                    busy = False
                    for index, sub in subs:
                        if sub in ready:
                            busy = self._receive_batch(index, sub, polled=True) or busy
                    # on_control runs on every turn: for requests (when the poll saw
                    # one, or after a full batch, so a request waits at most one batch;
                    # one arriving during a short batch is seen by the next poll), for
                    # its housekeeping when idle, and after ticks, so a request held
                    # until news is answered at once.
                    if on_control is not None and not on_control(control in ready or busy):
                        break
                    if busy:
                        if control is None:  # threaded: the UI needs the GIL too
                            self._step_aside()
                        else:
                            pause()
                    else:
                        heap.when_idle()
                    for index, monitor in monitors:
                        if monitor in ready:
                            sockets.apply_monitor(index, monitor, poller)
                    sockets.revive_dropped()
                except Exception as exc:  # the thread must survive anything
                    self.errors += 1
                    now = time.monotonic()
                    if now - last_error_log >= 1.0:
                        last_error_log = now
                        log.exception("ingest: unexpected error (%d so far): %s",
                                      self.errors, exc)
                    self._stopping.wait(0.01)  # never spin on a persistent fault
        finally:
            sockets.close()

    def _step_aside(self) -> None:
        """After a full batch: let the UI (and any thread waiting for the GIL) run."""
        since = time.monotonic() - self._last_drain
        if UI_STARVED_S < since < UI_GONE_S:
            self._drained.clear()
            if time.monotonic() - self._last_drain > UI_STARVED_S:
                self._drained.wait(UI_RESCUE_S)
                return
        time.sleep(YIELD_S)

    def _receive_batch(self, index: int, sock: zmq.Socket, polled: bool = False) -> bool:
        """Merge up to BATCH messages from one socket under one lock hold.

        True when the batch was full (more may be waiting), False when the
        socket ran dry. `polled`: the poll has just found a message waiting, so
        the first one is received without asking.

        Frames are read in pairs with plain `recv()`; asking RCVMORE costs more
        than the recv itself, so it is asked only after a pair was rejected
        (see `_resync`). A well-formed stream is therefore counted exactly; a
        peer sending messages of the wrong shape gets them counted as rejected
        without losing the good messages that follow.
        """
        recv = sock.recv
        on_frame = self._book.on_frame
        noblock = zmq.NOBLOCK
        recording = self._recording
        events = sock.get
        ask_from = 1 if polled else 0
        with self._lock:
            writer = recording.writer
            for n in range(BATCH):
                # The first few messages of a batch ask whether one is waiting: on a
                # trickle that is the whole batch, and asking costs less than the
                # zmq.Again of an empty receive. A busy socket pays Again once per batch.
                if ask_from <= n < ASK_FIRST and not events(EVENTS) & POLLIN:
                    return False
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
                if writer is not None:
                    writer = recording.write(writer, topic, payload)
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
            writer = self._recording.writer
            if writer is not None:
                self._recording.write(writer, second, third)
            self._book.on_frame(index, second, third)
            return
        while sock.getsockopt(zmq.RCVMORE):  # more than three frames: skip to the end
            sock.recv(zmq.NOBLOCK)
