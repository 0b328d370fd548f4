"""Telemetry payloads (metrics, health, logs) and the small meters behind them."""

from __future__ import annotations

import logging
import time
from collections import deque
from typing import Any

from services.protocol import HEALTH_OK


class RateMeter:
    """Messages and bytes per second over the last telemetry interval."""

    def __init__(self) -> None:
        self._t0 = time.monotonic()
        self._n0 = 0
        self._b0 = 0
        self.msgs_per_s = 0.0
        self.bytes_per_s = 0.0

    def update(self, total_msgs: int, total_bytes: int) -> None:
        now = time.monotonic()
        dt = now - self._t0
        if dt <= 0:
            return
        self.msgs_per_s = (total_msgs - self._n0) / dt
        self.bytes_per_s = (total_bytes - self._b0) / dt
        self._t0, self._n0, self._b0 = now, total_msgs, total_bytes


class Percentiles:
    """p50/p99 over a bounded window of recent samples (memory stays fixed)."""

    def __init__(self, window: int = 4096) -> None:
        self._samples: deque[float] = deque(maxlen=window)

    def add(self, value: float) -> None:
        self._samples.append(value)

    def p(self, q: float) -> float:
        if not self._samples:
            return 0.0
        ordered = sorted(self._samples)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def metrics_payload(
    node: str,
    *,
    started: float,
    sent_total: int,
    rate: RateMeter,
    ser: Percentiles,
    queue_depth: int,
    queue_capacity: int,
    dropped_total: int,
    **extra: Any,
) -> dict[str, Any]:
    payload = {
        "node": node,
        "ts_ns": time.time_ns(),
        "uptime_s": time.monotonic() - started,
        "sent_total": sent_total,
        "msgs_per_s": rate.msgs_per_s,
        "bytes_per_s": rate.bytes_per_s,
        "ser_us_p50": ser.p(0.50),
        "ser_us_p99": ser.p(0.99),
        "queue_depth": queue_depth,
        "queue_capacity": queue_capacity,
        "dropped_total": dropped_total,
    }
    payload.update(extra)
    return payload


def health_payload(node: str, status: str = HEALTH_OK, detail: str = "") -> dict[str, Any]:
    return {"node": node, "ts_ns": time.time_ns(), "status": status, "detail": detail}


def log_payload(node: str, level: str, message: str) -> dict[str, Any]:
    return {"node": node, "ts_ns": time.time_ns(), "level": level, "message": message}


class TelemetryLogHandler(logging.Handler):
    """Keeps recent log records so the service can publish them on telemetry.logs.

    The sending thread drains it; a bounded deque means a log storm cannot
    grow memory (the oldest records are dropped and counted).
    """

    def __init__(self, node: str, level: int = logging.INFO, capacity: int = 1000) -> None:
        super().__init__(level)
        self.node = node
        self.pending: deque[dict[str, Any]] = deque(maxlen=capacity)
        self.dropped = 0

    def emit(self, record: logging.LogRecord) -> None:
        if len(self.pending) == self.pending.maxlen:
            self.dropped += 1
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not break logging
            message = str(record.msg)
        self.pending.append(log_payload(self.node, record.levelname, message[:2000]))

    def drain(self) -> list[dict[str, Any]]:
        out = []
        while self.pending:
            out.append(self.pending.popleft())
        return out
