"""Hand the heap back to the OS after a backlog, so a burst does not pin memory for good.

libzmq allocates every queued message in its I/O thread; after a backlog is
drained glibc keeps the freed heap (about 1 GB after a burst of 1M frames).
When the sockets run dry and the process grew by TRIM_GROWTH_BYTES since the
last look, the free heap is returned (malloc_trim; glibc only, a no-op
elsewhere).
"""

from __future__ import annotations

import ctypes
import logging
import os
import time
from collections.abc import Callable

# Ingest's housekeeping: its log lines keep the ingest logger name.
log = logging.getLogger("console.feed.ingest")

TRIM_GROWTH_BYTES = 64 * 1024 * 1024
TRIM_CHECK_S = 1.0


def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's malloc_trim, or None elsewhere."""
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim  # type: ignore[no-any-return]
    except (OSError, AttributeError):
        return None


def _rss_bytes() -> int | None:
    """The process's resident set size (Linux), None when unknown."""
    try:
        with open("/proc/self/statm", "rb") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


class HeapTrimmer:
    """Called when the sockets are idle; trims at most once per TRIM_CHECK_S."""

    def __init__(self) -> None:
        self._trim = _malloc_trim()
        self._baseline = _rss_bytes() or 0
        self._next_check = 0.0

    def when_idle(self) -> None:
        if self._trim is None or time.monotonic() < self._next_check:
            return
        self._next_check = time.monotonic() + TRIM_CHECK_S
        rss = _rss_bytes()
        if rss is None or rss - self._baseline < TRIM_GROWTH_BYTES:
            return
        self._trim(0)
        after = _rss_bytes() or rss
        log.debug("malloc_trim: RSS %d -> %d MiB", rss >> 20, after >> 20)
        self._baseline = after
