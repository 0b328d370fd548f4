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
import time

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
