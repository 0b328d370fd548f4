"""How every service learns it should stop: SIGINT or SIGTERM sets one Event."""

from __future__ import annotations

import signal
import threading


def stop_event_on_signals() -> threading.Event:
    """An Event set by SIGINT/SIGTERM; service loops poll it with short timeouts,
    which is what lets them stop within a second."""
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    return stop
