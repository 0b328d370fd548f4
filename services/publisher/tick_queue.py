"""The bounded hand-off between the producer thread and the sender thread."""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

# Most messages the sender takes from the queue (and a producer makes) at once.
SEND_BATCH = 1024
# Longest either thread sleeps in one go, so it notices stop and bursts quickly.
MAX_NAP_S = 0.1

Item = tuple[str, dict[str, Any]]


class TickQueue:
    """Bounded hand-off from one producer thread to one sender thread.

    A deque plus one Event instead of `queue.Queue`: no lock per message, and
    the producer hands over whole batches. When full, new items are dropped
    and counted, so a slow consumer never blocks the producer.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.dropped = 0
        self._items: deque[Item] = deque()
        self._ready = threading.Event()

    def __len__(self) -> int:
        return len(self._items)

    def put_many(self, items: list[Item]) -> int:
        """Queue what fits, drop and count the rest; returns how many were queued."""
        room = self.capacity - len(self._items)
        if room < len(items):
            room = max(room, 0)
            self.dropped += len(items) - room
            items = items[:room]
        if items:
            self._items.extend(items)
            self._ready.set()
        return len(items)

    def take(self, limit: int) -> list[Item]:
        """Up to `limit` items, oldest first (single consumer only)."""
        pop = self._items.popleft
        return [pop() for _ in range(min(limit, len(self._items)))]

    def wait(self, timeout: float) -> None:
        """Block the consumer until something is queued or `timeout` passes."""
        self._ready.clear()
        if not self._items:
            self._ready.wait(timeout)

