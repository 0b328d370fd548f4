"""How the console's threads share the CPU with the fabric they watch (and services keep theirs).

Painting a frame and decoding a burst of ticks are bulk work: a few
milliseconds of CPU at a time. On a busy 2-core box a gateway reply, a
publisher or the console's own heartbeat that wakes up behind such a burst
waits for it to end (Linux only preempts on the tick unless the sleeper has
a shorter time slice), and the heartbeat's p99 round trip grew 3-4x.

Two remedies, neither of which lowers the console's share of the CPU:

- `prefer_long_slice()`: a bulk thread asks for a long time slice
  (sched_setattr, Linux 6.12+). The kernel then lets any thread with the
  normal, shorter slice preempt it at once when that thread wakes up. A
  no-op where unsupported.
- `Yielder`: a bulk loop calls it often; every `every_s` of work it gives
  the CPU to whatever is waiting (sched_yield costs a microsecond when
  nothing is).

Both cost the polite thread its own latency when a CPU hog shares its core
(a flat-out publisher on the same box): it then waits behind the hog, and a
key press took 100-500 ms instead of 50 to show. `Manners` therefore keeps
the UI thread polite only while it gets the CPU when it wants it, and drops
both while it has to wait (its run delay, from /proc/thread-self/schedstat).

Threads and processes inherit a slice: a latency-critical thread started by
a bulk one calls `use_default_slice()` first.
"""

from __future__ import annotations

import ctypes
import logging
import os
import platform
import struct
import sys
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

# Slice asked for by bulk work: long enough that a normal thread (the kernel's
# default is about 0.75-3 ms) always counts as the shorter one.
BULK_SLICE_MS = 100.0
# Bulk work gives the CPU away this often.
YIELD_EVERY_S = 0.0005

_SYSCALLS = {"x86_64": (314, 315), "aarch64": (274, 275)}  # sched_setattr, sched_getattr
# struct sched_attr up to sched_period (SCHED_ATTR_SIZE_VER0).
_ATTR = struct.Struct("IIQiIQQQ")
_FAIR_POLICIES = (0, 3)  # SCHED_OTHER, SCHED_BATCH


def _syscalls() -> tuple[int, int] | None:
    if not sys.platform.startswith("linux"):
        return None
    return _SYSCALLS.get(platform.machine())


def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:  # pragma: no cover - no C library to call
        return None


def _set_slice(slice_ns: int) -> bool:
    """Set the calling thread's slice (0: the kernel's default); False if not possible."""
    numbers = _syscalls()
    libc = _libc() if numbers is not None else None
    if numbers is None or libc is None:
        return False
    set_nr, get_nr = numbers
    buf = ctypes.create_string_buffer(_ATTR.size)
    if libc.syscall(get_nr, 0, buf, _ATTR.size, 0) != 0:
        return False
    _size, policy, flags, nice, priority, _runtime, deadline, period = _ATTR.unpack(buf.raw)
    if policy not in _FAIR_POLICIES:
        return False
    # Same policy and nice, only the slice changes (an unprivileged thread may do that).
    packed = _ATTR.pack(_ATTR.size, policy, flags, nice, priority, slice_ns, deadline, period)
    buf = ctypes.create_string_buffer(packed, _ATTR.size)
    if libc.syscall(set_nr, 0, buf, 0) != 0:
        log.debug("sched_setattr refused a %d ns slice: %s", slice_ns,
                  os.strerror(ctypes.get_errno()))
        return False
    return True


def prefer_long_slice(slice_ms: float = BULK_SLICE_MS) -> bool:
    """This thread does bulk work: let threads with a normal slice preempt it."""
    return _set_slice(int(slice_ms * 1_000_000))


def use_default_slice() -> bool:
    """This thread is latency-critical: back to the kernel's default slice."""
    return _set_slice(0)


def current_slice_ns(tid: int = 0) -> int | None:
    """A thread's slice in ns (0: the calling thread; None where it cannot be read).

    A process id names its main thread.
    """
    numbers = _syscalls()
    libc = _libc() if numbers is not None else None
    if numbers is None or libc is None:
        return None
    buf = ctypes.create_string_buffer(_ATTR.size)
    if libc.syscall(numbers[1], tid, buf, _ATTR.size, 0) != 0:
        return None
    return int(_ATTR.unpack(buf.raw)[5])


class Yielder:
    """Call it in a bulk loop; it yields the CPU once per `every_s` of work.

    One per thread: it remembers when that thread last yielded.
    """

    __slots__ = ("_every_s", "_last", "_yield")

    def __init__(self, every_s: float = YIELD_EVERY_S) -> None:
        self._every_s = every_s
        self._last = time.perf_counter()
        self._yield = getattr(os, "sched_yield", None)

    def __call__(self) -> None:
        now = time.perf_counter()
        if now - self._last >= self._every_s:
            if self._yield is not None:
                self._yield()
            self._last = time.perf_counter()


# Manners: a thread that waited for the CPU longer than it ran (STARVED) in
# STARVED_WINDOWS review windows in a row turns plain; it tries politeness
# again after a hold, and only in a window below CONTENT. The hold doubles
# each time politeness had to be dropped again: a hog that stays is met with
# rarer tries.
STARVED = 1.0
STARVED_WINDOWS = 2
CONTENT = 0.4
REVIEW_WINDOW_S = 0.25
FIRST_HOLD_S = 60.0
LONGEST_HOLD_S = 600.0


def thread_schedstat() -> tuple[int, int] | None:
    """(CPU ns, ns spent runnable but waiting) of the calling thread; None if unknown."""
    try:
        with open("/proc/thread-self/schedstat", "rb") as stat:
            fields = stat.read().split()
        return int(fields[0]), int(fields[1])
    except (OSError, ValueError, IndexError):
        return None


class Manners:
    """A bulk thread that is polite (long slice, yields) only while the CPU is there for it.

    `start()` and `review()` (about once a frame) run on that thread; calling
    the instance is the yield point. Where the thread's run delay cannot be
    read, it is never polite: the console's own responsiveness comes first.
    """

    def __init__(
        self,
        *,
        every_s: float = YIELD_EVERY_S,
        slice_ms: float = BULK_SLICE_MS,
        read_stat: Callable[[], tuple[int, int] | None] = thread_schedstat,
        set_slice: Callable[[int], bool] = _set_slice,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._yielder = Yielder(every_s)
        self._slice_ns = int(slice_ms * 1_000_000)
        self._read_stat = read_stat
        self._set_slice = set_slice
        self._clock = clock
        self.polite = False
        self._hold_s = FIRST_HOLD_S
        self._hold_until = 0.0
        self._polite_since = 0.0
        self._mark: tuple[float, int, int] | None = None
        self._starved_windows = 0

    def __call__(self) -> None:
        if self.polite:
            self._yielder()

    def start(self) -> None:
        """Begin polite, if this thread's run delay can be watched."""
        stat = self._read_stat()
        if stat is None:
            return
        self._mark = (self._clock(), *stat)
        self._become(polite=True)

    def review(self) -> None:
        """Compare waiting with running over the last window; change manners if due."""
        if self._mark is None:
            return
        now = self._clock()
        since, cpu0, delay0 = self._mark
        if now - since < REVIEW_WINDOW_S:
            return
        stat = self._read_stat()
        if stat is None:
            return
        cpu, delay = stat
        self._mark = (now, cpu, delay)
        waited = (delay - delay0) / max(cpu - cpu0, 1_000_000)
        self._starved_windows = self._starved_windows + 1 if waited > STARVED else 0
        if self.polite and self._starved_windows >= STARVED_WINDOWS:
            self._become(polite=False)
            self._hold_until = now + self._hold_s
            self._hold_s = min(self._hold_s * 2, LONGEST_HOLD_S)
        elif not self.polite and now >= self._hold_until and waited < CONTENT:
            self._become(polite=True)
        elif self.polite and now - self._polite_since > LONGEST_HOLD_S:
            self._hold_s = FIRST_HOLD_S  # polite for a long while: forgive the past

    def _become(self, *, polite: bool) -> None:
        self.polite = polite
        self._starved_windows = 0
        self._polite_since = self._clock()
        self._set_slice(self._slice_ns if polite else 0)
        log.debug("%s manners: %s", threading.current_thread().name,
                  "polite" if polite else "plain (waiting for the CPU)")
