"""How often the frame loop runs: only when something changed, at most `fps` times a second.

A quiet feed must cost almost nothing, but the first tick after a quiet spell
must still show within a frame. The source is asked to hold its answer until
something is new (the ingest process answers then, or after at most
`HOLD_MS`). While things change, the fps timer ticks, and a tick runs the
frame only when it has something to do: the source's answer is waiting, a
line of the table is due to change by time alone (an age, a flash ending, a
row turning stale: `due_ns`), or `IDLE_FRAME_S` passed since the last frame
(alerts, the gateways' heartbeats and the process's health are read then;
a gateway's reply repaints what it changed itself, console.ui.gateway_view).
A feed of a few ticks a second thus costs a few frames a second, not `fps`.

After `IDLE_AFTER_S` of frames that brought nothing new, the fps timer
pauses too and the pipe's socket wakes the loop the moment an answer
arrives; a slow timer (`IDLE_FRAME_S`) still runs the frame for what time
alone changes. The first frame that brings something new resumes `fps`.

Sources without a wake socket (the in-process ingest, the frozen test
source) are not held: every tick runs the frame, and while idle, news shows
within `IDLE_FRAME_S`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import zmq

from services.runtime.sockets import message_waiting

log = logging.getLogger(__name__)

IDLE_AFTER_S = 1.0
IDLE_FRAME_S = 0.5
IDLE_FRAME_NS = int(IDLE_FRAME_S * 1e9)
HOLD_MS = 1000


class FramePace:
    """Runs `frame` when it has something to do, at most `fps` times a second, or
    idle, as the module docstring says."""

    def __init__(self, owner: Any, frame: Callable[[], None], fps: int, source: Any,
                 clock_ns: Callable[[], int],
                 due_ns: Callable[[], int] | None = None) -> None:
        self._owner = owner             # the App: set_interval and its event loop
        self._run = frame
        self._source = source
        self._clock_ns = clock_ns
        self._due_ns = due_ns
        # Held answers and ticks that skip: only for a source that says when one waits.
        self._answer_waiting: Callable[[], bool] | None = getattr(
            source, "answer_waiting", None)
        if self._answer_waiting is not None:
            self._hold(HOLD_MS)
        self._fast = owner.set_interval(1.0 / fps, self._tick, name="frame")
        self._slow: Any = None
        self._idle = False
        self._last_news_ns = self._last_frame_ns = clock_ns()
        self._reader_fd: int | None = None
        self._reader_socket: zmq.Socket[Any] | None = None
        self._woken = 0
        self._skipped = 0

    @property
    def idle(self) -> bool:
        return self._idle

    @property
    def skipped(self) -> int:
        """Ticks of the fps timer that had nothing to do and ran no frame."""
        return self._skipped

    @property
    def woken(self) -> int:
        """Frames run because the source's socket signalled an answer while idle."""
        return self._woken

    def after_frame(self, news: bool) -> None:
        """Called at the end of every frame: did it bring anything new?"""
        now = self._clock_ns()
        if self._idle and self._reader_socket is not self._wake_socket():
            self._remove_reader()  # the ingest process was restarted: a new pipe
            self._add_reader()
        if news:
            self._last_news_ns = now
            if self._idle:
                self._wake()
        elif not self._idle and now - self._last_news_ns >= IDLE_AFTER_S * 1e9:
            self._sleep()

    def stop(self) -> None:
        self._remove_reader()

    # --- ticks ----------------------------------------------------------------------------

    def _frame(self) -> None:
        self._last_frame_ns = self._clock_ns()
        self._run()

    def _tick(self) -> None:
        """The fps timer: run the frame if it has something to do."""
        if self._answer_waiting is None or self._has_work():
            self._frame()
        else:
            self._skipped += 1

    def _has_work(self) -> bool:
        now = self._clock_ns()
        if now - self._last_frame_ns >= IDLE_FRAME_NS:
            return True
        if self._due_ns is not None and self._due_ns() <= now:
            return True
        assert self._answer_waiting is not None
        return self._answer_waiting()

    def _hold(self, hold_ms: int | None) -> None:
        hold = getattr(self._source, "hold", None)
        if hold is not None:
            hold(hold_ms)

    # --- idle ---------------------------------------------------------------------------

    def _sleep(self) -> None:
        self._idle = True
        self._fast.pause()
        self._slow = self._owner.set_interval(IDLE_FRAME_S, self._frame, name="idle-frame")
        self._hold(HOLD_MS)
        self._add_reader()

    def _wake(self) -> None:
        self._idle = False
        self._remove_reader()
        if self._answer_waiting is None:
            self._hold(None)  # a source that cannot say when an answer waits: at once again
        if self._slow is not None:
            self._slow.stop()
            self._slow = None
        self._fast.resume()

    def _wake_socket(self) -> zmq.Socket[Any] | None:
        wake_socket = getattr(self._source, "wake_socket", None)
        return wake_socket() if wake_socket is not None else None

    def _add_reader(self) -> None:
        sock = self._wake_socket()
        if sock is None:
            return
        try:
            fd = sock.getsockopt(zmq.FD)
            asyncio.get_running_loop().add_reader(fd, self._readable)
        except (zmq.ZMQError, RuntimeError, OSError, NotImplementedError) as exc:
            log.debug("no wake-up on the source's socket: %s", exc)
            return
        self._reader_fd, self._reader_socket = fd, sock
        self._readable()  # an answer may be there already: the descriptor only signals edges

    def _remove_reader(self) -> None:
        if self._reader_fd is None:
            return
        with contextlib.suppress(RuntimeError, OSError, ValueError):
            asyncio.get_running_loop().remove_reader(self._reader_fd)
        self._reader_fd = self._reader_socket = None

    def _readable(self) -> None:
        """The pipe's descriptor fired: run a frame if a message is really waiting."""
        sock = self._reader_socket
        if sock is None:
            return
        try:
            waiting = message_waiting(sock)
        except zmq.ZMQError:  # closed: the ingest process is being restarted
            self._remove_reader()
            return
        if waiting:
            self._woken += 1
            self._frame()
