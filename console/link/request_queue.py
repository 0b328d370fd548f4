"""The gateway link's waiting requests: urgent first, then first come first served.

Callers never block on the gateway: `GatewayClient.request` only queues, and
the client thread takes requests one at a time. An urgent request (KILL_SWITCH,
RESUME_TRADING, or one the caller marked) jumps every normal one. A full queue
does not grow without bound behind a slow gateway: further normal requests are
set aside as overflow and answered QUEUE_FULL, ahead of everything else.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections import deque
from typing import Any

from console.model import ReplyCallback

MAX_QUEUE = 1000

_PRIORITY_URGENT = 0
_PRIORITY_NORMAL = 1


class Pending:
    """A queued request (its wire form is built once, so retries resend it unchanged)."""

    __slots__ = ("action", "on_reply", "payload", "req_id", "urgent")

    def __init__(self, action: str, payload: dict[str, Any] | None, req_id: str,
                 on_reply: ReplyCallback | None, urgent: bool) -> None:
        self.action = action
        self.payload = payload
        self.req_id = req_id
        self.on_reply = on_reply
        self.urgent = urgent


class RequestQueue:
    """Thread-safe priority queue; `take` waits until a request comes or it is time to beat."""

    def __init__(self, stopping: threading.Event) -> None:
        self._stopping = stopping
        self._cond = threading.Condition()
        self._heap: list[tuple[int, int, Pending]] = []
        self._overflow: deque[Pending] = deque()
        self._order = itertools.count()

    def put(self, pending: Pending) -> None:
        with self._cond:
            if len(self._heap) >= MAX_QUEUE and not pending.urgent:
                self._overflow.append(pending)
            else:
                priority = _PRIORITY_URGENT if pending.urgent else _PRIORITY_NORMAL
                heapq.heappush(self._heap, (priority, next(self._order), pending))
            self._cond.notify()

    def take(self, heartbeat_at: float) -> tuple[Pending | None, bool]:
        """(request, overflowed): the next request, or (None, False) once `heartbeat_at`
        (time.monotonic) has come or the link is stopping."""
        with self._cond:
            while not self._stopping.is_set():
                if self._overflow:
                    return self._overflow.popleft(), True
                if self._heap:
                    return heapq.heappop(self._heap)[2], False
                wait = heartbeat_at - time.monotonic()
                if wait <= 0:
                    break
                self._cond.wait(wait)
        return None, False

    def wake(self) -> None:
        """Wake a waiting `take` (after `stopping` was set)."""
        with self._cond:
            self._cond.notify_all()
