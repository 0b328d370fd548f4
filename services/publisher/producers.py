"""Producers: the simulated market and a recording's replay, each feeding the queue.

A producer never waits on the network: when the queue is full while pacing a
rate, the tick is dropped and counted. Unpaced (rate 0, replay speed 0) it
waits for room instead and keeps the queue short, since there is no rate to
keep and a long queue would only add latency.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from services.market import Market
from services.protocol import KIND_TELEMETRY, DecodeError, topic_kind, unpack_map
from services.publisher.settings import PublisherSettings
from services.publisher.tick_queue import MAX_NAP_S, SEND_BATCH, Item, TickQueue
from services.recording import RecordingReader

log = logging.getLogger("tradeconsole.publisher")

# Seconds of rate the token bucket may save up (how far it catches up after a stall).
BUCKET_S = 0.05
# Unpaced producers keep at most this many messages queued: enough to keep the
# sender busy, few enough that a tick does not wait long between making and sending.
UNPACED_DEPTH = 4 * SEND_BATCH


@dataclass
class ProducerStatus:
    """What the producer tells telemetry: a one-line description and replay counters."""

    detail: str
    finished: bool = False
    skipped: int = 0


def _put_waiting(queue: TickQueue, items: list[Item], stop: threading.Event) -> None:
    """Unpaced mode: there is no rate to keep, so wait for room instead of dropping."""
    depth = min(queue.capacity, UNPACED_DEPTH)
    while items and not stop.is_set():
        room = depth - len(queue)
        if room <= 0:
            stop.wait(0.001)
            continue
        queue.put_many(items[:room])
        items = items[room:]


def simulate(market: Market, settings: PublisherSettings, queue: TickQueue,
             stop: threading.Event) -> None:
    """Feed the queue from the market at `rate` (token bucket), plus optional bursts."""
    rate = settings.rate
    next_tick = market.next_tick
    now = time.monotonic()
    last = now
    tokens = 0.0
    bucket = max(1.0, rate * BUCKET_S)
    bursts = settings.burst_every_s > 0 and settings.burst_size > 0
    next_burst = now + settings.burst_every_s
    while not stop.is_set():
        now = time.monotonic()
        if bursts and now >= next_burst:
            for start in range(0, settings.burst_size, SEND_BATCH):
                count = min(SEND_BATCH, settings.burst_size - start)
                queue.put_many([next_tick() for _ in range(count)])  # sendable at once
            next_burst += settings.burst_every_s
            finished = time.monotonic()
            if next_burst <= finished:  # a burst longer than the interval: no chaining
                next_burst = finished + settings.burst_every_s
        if rate == 0:
            _put_waiting(queue, [next_tick() for _ in range(256)], stop)
            continue
        tokens = min(bucket, tokens + (now - last) * rate)
        last = now
        count = min(int(tokens), SEND_BATCH)
        if count:
            tokens -= count
            queue.put_many([next_tick() for _ in range(count)])
            continue
        nap = (1.0 - tokens) / rate
        if bursts:
            nap = min(nap, next_burst - now)
        stop.wait(min(max(nap, 0.0005), MAX_NAP_S))


def _wait_until(due: float, stop: threading.Event) -> None:
    while not stop.is_set():
        remaining = due - time.monotonic()
        if remaining <= 0.0005:
            return
        stop.wait(min(remaining, MAX_NAP_S))


def replay(settings: PublisherSettings, queue: TickQueue, status: ProducerStatus,
           stop: threading.Event) -> None:
    """Play a recording's frames with their spacing divided by `speed` (0 = no waiting).

    Recorded telemetry is skipped: this publisher reports its own. Each
    session of an appended recording starts without waiting out the pause
    before it.
    """
    assert settings.replay is not None
    speed = settings.speed
    passes = 0
    while not stop.is_set():
        played = 0
        with RecordingReader(settings.replay) as reader:
            session = -1
            base_rec = 0
            base_wall = 0.0
            for record in reader:
                if stop.is_set():
                    return
                try:
                    topic = record.topic.decode("utf-8")
                    if topic_kind(topic) == KIND_TELEMETRY:
                        continue
                    payload = unpack_map(record.payload, settings.limits)
                except (UnicodeDecodeError, DecodeError):
                    status.skipped += 1
                    continue
                if speed == 0:
                    _put_waiting(queue, [(topic, payload)], stop)
                else:
                    if record.session != session:
                        session, base_rec, base_wall = record.session, record.recv_ts_ns, \
                            time.monotonic()
                    offset_s = max(0, record.recv_ts_ns - base_rec) / 1e9 / speed
                    _wait_until(base_wall + offset_s, stop)
                    queue.put_many([(topic, payload)])
                played += 1
            if reader.truncated_bytes:
                log.warning("replay %s: skipped a damaged tail of %d bytes",
                            settings.replay, reader.truncated_bytes)
        passes += 1
        if status.skipped:
            log.warning("replay %s: %d frames could not be decoded and were skipped",
                        settings.replay, status.skipped)
        if not settings.loop or played == 0:
            break
        status.detail = f"replaying {settings.replay.name} x{speed:g}, pass {passes + 1}"
    status.finished = True
    status.detail = f"replay of {settings.replay.name} finished after {passes} pass(es)"
    log.info("replay finished after %d pass(es)", passes, extra={"telemetry": True})

