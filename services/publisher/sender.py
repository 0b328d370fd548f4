"""The sender: owns the PUB socket, stamps each message at send time, packs and sends it.

Stamping at send time keeps `seq` contiguous over what really went out,
telemetry included. Telemetry (metrics, health, logs) goes out every
interval even when no tick flows, so silence always means a dead node.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import msgspec
import zmq

from services.envelope import Envelope
from services.protocol import (
    HEALTH_DEGRADED,
    HEALTH_DOWN,
    HEALTH_OK,
    health_topic,
    logs_topic,
    metrics_topic,
    packb,
)
from services.publisher.producers import ProducerStatus
from services.publisher.settings import PublisherSettings
from services.publisher.tick_queue import MAX_NAP_S, SEND_BATCH, TickQueue
from services.telemetry import (
    Percentiles,
    RateMeter,
    TelemetryLogHandler,
    health_payload,
    metrics_payload,
)

log = logging.getLogger("tradeconsole.publisher")

# Queue fill ratio above which health says DEGRADED even before anything is dropped.
QUEUE_WARN_RATIO = 0.8

# Packing is the sender's largest cost: msgspec writes the same bytes as
# protocol.packb for these payloads (str keys; str, int, float, bool, None
# values) about three times faster; anything else goes through packb.
_encode = msgspec.msgpack.Encoder().encode


class Sender:
    """Owns the PUB socket: stamps, packs and sends messages, and emits telemetry."""

    def __init__(self, sock: zmq.Socket, envelope: Envelope, queue: TickQueue,
                 settings: PublisherSettings, status: ProducerStatus,
                 logs: TelemetryLogHandler) -> None:
        self.sock = sock
        self.envelope = envelope
        self.queue = queue
        self.settings = settings
        self.status = status
        self.logs = logs
        self.started = time.monotonic()
        self.sent_total = 0
        self.sent_bytes = 0
        self.send_errors = 0
        self.rate = RateMeter()
        self.ser_us = Percentiles()
        self._reported_drops = 0
        self._reported_errors = 0
        self._topic_bytes: dict[str, bytes] = {}

    def send(self, topic: str, payload: dict[str, Any]) -> None:
        """Stamp at send time, pack (timed), send two frames; failures are counted."""
        topic_frame = self._topic_bytes.get(topic)
        if topic_frame is None:
            topic_frame = topic.encode("utf-8")
            if len(self._topic_bytes) < 100_000:
                self._topic_bytes[topic] = topic_frame
        self.envelope.stamp(topic, payload)
        t0 = time.perf_counter_ns()
        try:
            data = _encode(payload)
        except (TypeError, OverflowError):  # e.g. a replayed msgpack.Timestamp
            data = packb(payload)
        self.ser_us.add((time.perf_counter_ns() - t0) / 1000.0)
        try:
            self.sock.send(topic_frame, zmq.SNDMORE)
            self.sock.send(data)
        except zmq.ZMQError as exc:
            # The seq it was stamped with never arrives: subscribers see it as lost.
            self.send_errors += 1
            if self.send_errors == 1 or self.send_errors % 1000 == 0:
                log.error("send failed on %s (%d so far): %s", topic, self.send_errors, exc)
            return
        self.sent_total += 1
        self.sent_bytes += len(topic_frame) + len(data)

    def health(self) -> tuple[str, str]:
        dropped = self.queue.dropped - self._reported_drops
        errors = self.send_errors - self._reported_errors
        self._reported_drops = self.queue.dropped
        self._reported_errors = self.send_errors
        interval = self.settings.telemetry_interval_s
        if dropped:
            log.warning("queue full: dropped %d ticks in the last %.0f s", dropped, interval)
            return HEALTH_DEGRADED, f"queue full: dropped {dropped} ticks in the last " \
                f"{interval:g} s"
        if errors:
            return HEALTH_DEGRADED, f"{errors} sends failed in the last {interval:g} s"
        depth = len(self.queue)
        if depth >= QUEUE_WARN_RATIO * self.queue.capacity:
            return HEALTH_DEGRADED, f"queue {depth * 100 // self.queue.capacity}% full"
        return HEALTH_OK, self.status.detail

    def send_telemetry(self) -> None:
        node = self.settings.node
        status, detail = self.health()
        self.rate.update(self.sent_total, self.sent_bytes)
        self.send(metrics_topic(node), metrics_payload(
            node, started=self.started, sent_total=self.sent_total, rate=self.rate,
            ser=self.ser_us, queue_depth=len(self.queue), queue_capacity=self.queue.capacity,
            dropped_total=self.queue.dropped, send_errors=self.send_errors,
        ))
        self.send(health_topic(node), health_payload(node, status, detail))
        self.send_logs()

    def send_logs(self) -> None:
        topic = logs_topic(self.settings.node)
        for entry in self.logs.drain():
            self.send(topic, entry)

    def run(self, stop: threading.Event) -> None:
        """Send until stopped; telemetry on a fixed cadence whatever the tick flow."""
        interval = self.settings.telemetry_interval_s
        next_telemetry = time.monotonic()
        queue = self.queue
        send = self.send
        while not stop.is_set():
            now = time.monotonic()
            if now >= next_telemetry:
                self.send_telemetry()
                next_telemetry += interval
                if next_telemetry <= now:  # fell behind (e.g. suspended): do not burst
                    next_telemetry = now + interval
            batch = queue.take(SEND_BATCH)
            if batch:
                for topic, payload in batch:
                    send(topic, payload)
            else:
                queue.wait(min(max(next_telemetry - now, 0.0), MAX_NAP_S))
        self.send_logs()
        self.send(health_topic(self.settings.node),
                  health_payload(self.settings.node, HEALTH_DOWN, "stopping"))

