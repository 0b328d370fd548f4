"""An OS pipe that wakes a thread sleeping in a zmq poll from any other thread.

A ZeroMQ socket belongs to one thread; another thread that has something for
it (a request to send, a reply to pass on) queues it and writes one byte
here, and the owner, which polls the read end beside its sockets, wakes at
once instead of at its next timeout.
"""

from __future__ import annotations

import contextlib
import os
import threading


class WakePipe:
    """`wake()` from any thread; the owner polls `fileno()` and calls `clear()`."""

    def __init__(self) -> None:
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)
        self._lock = threading.Lock()

    def fileno(self) -> int:
        """The read end, to register with a zmq.Poller."""
        return self._read

    def wake(self) -> None:
        """Wake the owner; a full pipe wakes it just as well, a closed one is ignored."""
        with self._lock:  # never a write to a descriptor close() just gave back
            if self._write >= 0:
                with contextlib.suppress(BlockingIOError, OSError):
                    os.write(self._write, b"\0")

    def clear(self) -> None:
        """Take the waiting wake-ups (the owner, after its poll said readable)."""
        with contextlib.suppress(BlockingIOError, OSError):
            os.read(self._read, 4096)

    def close(self) -> None:
        with self._lock:
            for fd in (self._read, self._write):
                if fd >= 0:
                    os.close(fd)
            self._read = self._write = -1
