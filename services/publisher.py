"""`tradeconsole publisher`: simulated or replayed ticks on a ZeroMQ PUB socket.

Two threads share a bounded queue. The producer (simulated market or a
recording) never waits on the network: when the queue is full while pacing
a rate, the tick is dropped and counted. Unpaced (rate 0, replay speed 0) it
waits for room instead and keeps the queue short, since there is no rate to
keep and a long queue would only add latency. The sender owns the socket and the
`Envelope`, stamps each message at send time (so `seq` is contiguous over
what really went out, telemetry included), packs it and sends `[topic,
payload]`. Telemetry (metrics, health, logs) goes out every interval even
when no tick flows, so silence always means a dead node.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import msgspec
import zmq

from services.envelope import Envelope
from services.market import Market
from services.protocol import (
    HEALTH_DEGRADED,
    HEALTH_DOWN,
    HEALTH_OK,
    KIND_TELEMETRY,
    DecodeError,
    Limits,
    health_topic,
    logs_topic,
    metrics_topic,
    packb,
    topic_kind,
    unpack_map,
)
from services.recording import RecordingReader
from services.runtime.config import load_for_args
from services.runtime.errors import UsageError
from services.runtime.logsetup import setup_logging
from services.runtime.sockets import announce_ready, apply_limits, bind, connect
from services.telemetry import (
    Percentiles,
    RateMeter,
    TelemetryLogHandler,
    health_payload,
    metrics_payload,
)

log = logging.getLogger("tradeconsole.publisher")

# Most messages the sender takes from the queue before looking at the clock again.
SEND_BATCH = 1024
# Longest the producer sleeps in one go, so it notices stop and bursts quickly.
MAX_NAP_S = 0.1
# Seconds of rate the token bucket may save up (how far it catches up after a stall).
BUCKET_S = 0.05
# Linger on close: enough to push out the final health message, short enough to exit fast.
CLOSE_LINGER_MS = 200
# Queue fill ratio above which health says DEGRADED even before anything is dropped.
QUEUE_WARN_RATIO = 0.8
# Unpaced producers keep at most this many messages queued: enough to keep the
# sender busy, few enough that a tick does not wait long between making and sending.
UNPACED_DEPTH = 4 * SEND_BATCH

Item = tuple[str, dict[str, Any]]

# Packing is the sender's largest cost: msgspec writes the same bytes as
# protocol.packb for these payloads (str keys; str, int, float, bool, None
# values) about three times faster; anything else goes through packb.
_encode = msgspec.msgpack.Encoder().encode


def add_arguments(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--bind", metavar="EP",
                       help="endpoint the PUB socket binds (default [endpoints] publisher)")
    where.add_argument("--connect", metavar="EP",
                       help="connect the PUB socket to a proxy's XSUB instead of binding")
    parser.add_argument("--symbols", type=int, metavar="N", help="number of simulated symbols")
    parser.add_argument("--rate", type=float, metavar="MSG_PER_S",
                        help="total ticks per second; 0 = as fast as it can")
    parser.add_argument("--node", metavar="NAME", help="node id in the envelope and telemetry")
    parser.add_argument("--seed", type=int, metavar="N",
                        help="random seed of the simulated market; 0 = a new one each start")
    parser.add_argument("--burst-every", type=float, metavar="S",
                        help="every S seconds send --burst-size extra ticks at once")
    parser.add_argument("--burst-size", type=int, metavar="N", help="ticks in one burst")
    parser.add_argument("--replay", metavar="FILE", type=Path,
                        help="play a recording instead of the simulated market")
    parser.add_argument("--speed", type=float, metavar="X",
                        help="replay speed factor (default 1; 0 = as fast as possible)")
    parser.add_argument("--loop", action="store_true", help="start the replay over at the end")
    parser.add_argument("--keys", metavar="DIR", help="CURVE key directory (encrypt the feed)")


# --- settings -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PublisherSettings:
    """Everything the publisher needs, merged from config and flags and checked."""

    node: str
    symbols: int
    rate: float
    seed: int
    burst_every_s: float
    burst_size: int
    queue_capacity: int
    sndhwm: int
    telemetry_interval_s: float
    bind: str | None
    connect: str | None
    replay: Path | None
    speed: float
    loop: bool
    keys: str | None
    limits: Limits
    log_level: str
    log_dir: str


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise UsageError(message)


def settings_from_args(args: argparse.Namespace) -> PublisherSettings:
    """Merge config and flags, then refuse out-of-range values with one line each."""
    config = load_for_args(args, {
        "publisher.node": args.node,
        "publisher.symbols": args.symbols,
        "publisher.rate": args.rate,
        "publisher.seed": args.seed,
        "publisher.burst_every_s": args.burst_every,
        "publisher.burst_size": args.burst_size,
        "endpoints.publisher": args.bind,
    })
    pub = config.section("publisher")
    node = pub["node"]
    _require(0 < len(node) <= 64 and node.isprintable() and not any(c.isspace() for c in node),
             f"--node (publisher.node) must be 1..64 printable characters without spaces, "
             f"got {node!r}")
    rate = pub["rate"]
    _require(math.isfinite(rate) and rate >= 0,
             f"--rate (publisher.rate) must be a number >= 0 (0 = as fast as it can), got {rate}")
    _require(pub["symbols"] >= 1,
             f"--symbols (publisher.symbols) must be at least 1, got {pub['symbols']}")
    burst_every = pub["burst_every_s"]
    _require(math.isfinite(burst_every) and burst_every >= 0,
             f"--burst-every (publisher.burst_every_s) must be >= 0 seconds (0 = no bursts), "
             f"got {burst_every}")
    _require(pub["burst_size"] >= 0,
             f"--burst-size (publisher.burst_size) must be >= 0, got {pub['burst_size']}")
    _require(pub["queue_capacity"] >= 1,
             f"publisher.queue_capacity must be at least 1, got {pub['queue_capacity']}")
    _require(pub["sndhwm"] >= 0, f"publisher.sndhwm must be >= 0, got {pub['sndhwm']}")
    interval = pub["telemetry_interval_s"]
    _require(math.isfinite(interval) and 0 < interval <= 60,
             f"publisher.telemetry_interval_s must be > 0 and <= 60 seconds, got {interval}")
    if args.replay is None:
        _require(args.speed is None and not args.loop, "--speed and --loop need --replay FILE")
    speed = 1.0 if args.speed is None else args.speed
    _require(math.isfinite(speed) and speed >= 0,
             f"--speed must be a number > 0 (or 0 = as fast as possible), got {speed}")
    if args.replay is not None:
        try:
            RecordingReader(args.replay).close()  # refuse a bad file now, not after READY
        except UsageError as exc:
            raise UsageError(f"--replay: {exc}") from exc
    return PublisherSettings(
        node=node, symbols=pub["symbols"], rate=rate, seed=pub["seed"],
        burst_every_s=burst_every, burst_size=pub["burst_size"],
        queue_capacity=pub["queue_capacity"], sndhwm=pub["sndhwm"],
        telemetry_interval_s=interval,
        bind=None if args.connect else config.get("endpoints", "publisher"),
        connect=args.connect, replay=args.replay, speed=speed, loop=args.loop, keys=args.keys,
        limits=Limits.from_config(config.section("limits")),
        log_level=config.get("logging", "level"), log_dir=config.get("logging", "dir"),
    )


# --- the queue between producer and sender ------------------------------------------


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


# --- producers ----------------------------------------------------------------------


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


# --- the sender ------------------------------------------------------------------


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


# --- wiring ---------------------------------------------------------------------------


def _telemetry_filter(record: logging.LogRecord) -> bool:
    """Warnings and worse, plus INFO records marked `extra={"telemetry": True}`."""
    return record.levelno >= logging.WARNING or bool(getattr(record, "telemetry", False))


def _secure(ctx: zmq.Context, sock: zmq.Socket, keys_dir: str, *, client: bool) -> None:
    """CURVE hook (services.security): a bound PUB is a CURVE server with the ZAP
    handler; a PUB that connects into a proxy is a client holding the publisher key."""
    from services import security

    if client:
        security.secure_client(sock, security.load_keys(keys_dir, client="publisher"))
        return
    keys = security.load_keys(keys_dir)
    security.start_auth(ctx, keys)
    security.secure_server(sock, keys)


def _stop_security(ctx: zmq.Context, keys_dir: str | None) -> None:
    if keys_dir:
        from services import security

        security.stop_auth(ctx)


def _new_seed(seed: int) -> int:
    return seed if seed != 0 else int.from_bytes(os.urandom(4), "little") or 1


def _install_stop_handlers(stop: threading.Event) -> None:
    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def _start_thread(name: str, target: Callable[[], None], stop: threading.Event,
                  failed: list[str]) -> threading.Thread:
    """A daemon thread whose unexpected death stops the whole publisher."""
    def guarded() -> None:
        try:
            target()
        except Exception:
            log.exception("%s thread failed", name)
            failed.append(name)
            stop.set()

    thread = threading.Thread(target=guarded, name=name, daemon=True)
    thread.start()
    return thread


def run(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    setup_logging("publisher", settings.log_level, settings.log_dir)
    logs = TelemetryLogHandler(settings.node, level=logging.INFO)
    logs.addFilter(_telemetry_filter)
    logging.getLogger().addHandler(logs)

    stop = threading.Event()
    _install_stop_handlers(stop)
    ctx = zmq.Context()
    sock = ctx.socket(zmq.PUB)
    try:
        sock.setsockopt(zmq.SNDHWM, settings.sndhwm)
        sock.setsockopt(zmq.LINGER, CLOSE_LINGER_MS)
        apply_limits(sock, settings.limits)
        if settings.keys:
            _secure(ctx, sock, settings.keys, client=settings.connect is not None)
        if settings.connect:
            connect(sock, settings.connect, what="publisher --connect")
            bound = None
        else:
            assert settings.bind is not None
            bound = bind(sock, settings.bind, what="publisher")
    except BaseException:
        sock.close(0)
        _stop_security(ctx, settings.keys)
        ctx.term()
        raise

    envelope = Envelope(settings.node)
    queue = TickQueue(settings.queue_capacity)
    failed: list[str] = []
    if settings.replay is not None:
        status = ProducerStatus(f"replaying {settings.replay.name} x{settings.speed:g}")
        threads = [_start_thread("replay", lambda: replay(settings, queue, status, stop),
                                 stop, failed)]
        what = f"replay of {settings.replay} at x{settings.speed:g}" + \
            (" in a loop" if settings.loop else "")
    else:
        seed = _new_seed(settings.seed)
        market = Market(settings.symbols, seed)
        rate = "as fast as it can" if settings.rate == 0 else f"{settings.rate:g}/s"
        status = ProducerStatus(f"{settings.symbols} simulated symbols at {rate}")
        threads = [_start_thread("market", lambda: simulate(market, settings, queue, stop),
                                 stop, failed)]
        what = f"{settings.symbols} simulated symbols at {rate}, seed {seed}"
    sender = Sender(sock, envelope, queue, settings, status, logs)
    where = bound or f"connected to {settings.connect}"
    log.info("publisher %s started (epoch %d) on %s: %s", settings.node, envelope.epoch,
             where, what, extra={"telemetry": True})
    halt_sender = threading.Event()  # set after the stop log line, so it is sent too
    threads.append(_start_thread("sender", lambda: sender.run(halt_sender), stop, failed))
    announce_ready(service="publisher", node=settings.node, pub=bound,
                   connect=settings.connect, epoch=envelope.epoch)

    while not stop.wait(0.2):
        pass
    log.info("publisher %s stopping: %d messages sent, %d dropped", settings.node,
             sender.sent_total, queue.dropped, extra={"telemetry": True})
    halt_sender.set()
    for thread in threads:
        thread.join(timeout=1.0)
    if not threads[-1].is_alive():
        sock.close(CLOSE_LINGER_MS)
    _stop_security(ctx, settings.keys)
    if not any(t.is_alive() for t in threads):
        ctx.term()
    return 1 if failed else 0
