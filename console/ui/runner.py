"""The process around the console app: its terminal going away, the heap, the GIL.

The app draws; this module holds what belongs to the process running it.
When an ssh session drops, the terminal vanishes: SIGHUP/SIGTERM, or a hang-up
seen on stdin, ask the app to exit and arm a watchdog that ends the process if
the shutdown stalls (Textual's output thread dies on a vanished tty and then
blocks it). Stdin is watched with `poll()` for hang-up only, so no input is
taken from Textual's own reader, which at end of input would spin a core.
"""

from __future__ import annotations

import array
import asyncio
import fcntl
import gc
import logging
import os
import select
import signal
import stat
import sys
import termios
import threading
from typing import Any

from textual.app import App

log = logging.getLogger(__name__)

# After a hangup, how long a clean shutdown may take before the process ends hard.
HANGUP_GRACE_S = 1.2
HANGUP_EXIT_CODE = 129
HANGUP_SIGNALS = (signal.SIGHUP, signal.SIGTERM)
STDIN_CHECK_S = 0.25
# The UI and the gateway client thread (and ingest, when `[console] ingest` is
# "thread") share one GIL. A thread woken by its socket (a heartbeat reply, a
# tick) waits for the GIL at most this long while the UI draws, instead of
# CPython's default 5 ms.
GIL_SWITCH_INTERVAL_S = 0.001


def share_the_gil() -> None:
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)


# The youngest generation is collected after this many new container objects
# (CPython's default is 700). A frame makes and drops a few thousand (strips,
# segments, messages), nearly all freed by reference counting, so the default
# ran a pass every few frames and an old-generation pass every few seconds.
GC_YOUNG_THRESHOLD = 10_000


def freeze_heap() -> None:
    """Collect start-up garbage once; later GC passes then skip it, and run rarer.

    Pauses of 25-160 ms were seen under widget churn otherwise.
    """
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)


def _end_process_now() -> None:
    log.warning("terminal gone and the UI did not stop within %.1f s: exiting now",
                HANGUP_GRACE_S)
    logging.shutdown()
    os._exit(HANGUP_EXIT_CODE)


class Hangup:
    """The terminal is gone (or we were told to stop): exit within ~2 s, whatever happens.

    Calling it is safe from any thread. A clean shutdown is tried first; after
    HANGUP_GRACE_S the process ends hard (the recording format and the
    gateway's idempotent requests are built to survive that).
    """

    def __init__(self, app: App[Any]) -> None:
        self.app = app
        self.happened = False
        self._watchdog: threading.Timer | None = None
        self._stopped = threading.Event()

    def __call__(self) -> None:
        if self._stopped.is_set():
            return
        self.happened = True
        if self._watchdog is None:
            watchdog = threading.Timer(HANGUP_GRACE_S, _end_process_now)
            watchdog.daemon = True
            self._watchdog = watchdog
            watchdog.start()
        self.app.exit()  # posts ExitApp: safe from another thread

    def close(self) -> None:
        """The UI did stop in time: let the caller finish its own clean-up."""
        self.stop_watching()
        if self._watchdog is not None:
            self._watchdog.cancel()

    def stop_watching(self) -> None:
        """The app has ended: a hang-up from now on is no longer its business."""
        self._stopped.set()

    def install_signals(self, loop: asyncio.AbstractEventLoop) -> None:
        for sig in HANGUP_SIGNALS:
            loop.add_signal_handler(sig, self)

    def watch_stdin(self, fd: int) -> None:
        """Call this hang-up when stdin's terminal goes away or its input ends."""
        thread = threading.Thread(target=self._watch, args=(fd,), name="stdin-hangup",
                                  daemon=True)
        thread.start()

    def _watch(self, fd: int) -> None:
        mode = os.fstat(fd).st_mode
        pollable = os.isatty(fd) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)
        poller = select.poll()
        poller.register(fd, 0)  # hang-up and errors are always reported; input never is
        while not self._stopped.is_set():
            if pollable:
                gone = bool(poller.poll(STDIN_CHECK_S * 1000)) and _unread(fd) == 0
            else:
                gone = _at_end(fd, mode)
            if gone:
                self()
                return
            if not pollable:
                self._stopped.wait(STDIN_CHECK_S)


def _unread(fd: int) -> int:
    """Bytes still waiting on a pipe or tty (0 once it hung up): let Textual read them first."""
    count = array.array("i", [0])
    try:
        fcntl.ioctl(fd, termios.FIONREAD, count)
    except OSError:
        return 0
    return count[0]


def _at_end(fd: int, mode: int) -> bool:
    """A file or a device such as /dev/null: at its end once Textual has read it all."""
    if not stat.S_ISREG(mode):
        return True  # /dev/null and the like: reading gives end of input at once
    try:
        return os.lseek(fd, 0, os.SEEK_CUR) >= os.fstat(fd).st_size
    except OSError:
        return True


def run_app(app: App[Any], *, watch_stdin: bool) -> tuple[Any, bool]:
    """Run `app` to its end with hang-up handling; returns (its result, whether it hung up).

    The same as `app.run()` (`asyncio.run` of `run_async`), except that the
    loop's signal handlers are installed first.
    """
    hangup = Hangup(app)
    with asyncio.Runner() as runner:
        hangup.install_signals(runner.get_loop())
        if watch_stdin and sys.__stdin__ is not None:
            hangup.watch_stdin(sys.__stdin__.fileno())
        try:
            result = runner.run(app.run_async())
            hangup.close()
        finally:
            hangup.stop_watching()
    return result, hangup.happened
