"""The publisher's settings: [publisher] values and flags merged, then checked."""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from pathlib import Path

from services.protocol import Limits
from services.recording import RecordingReader
from services.runtime.config import load_for_args
from services.runtime.errors import UsageError
from services.runtime.network import DEFAULT_NETWORK, NetworkOptions


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
    network: NetworkOptions = DEFAULT_NETWORK


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
    pub = config.settings.publisher
    node = pub.node
    _require(0 < len(node) <= 64 and node.isprintable() and not any(c.isspace() for c in node),
             f"--node (publisher.node) must be 1..64 printable characters without spaces, "
             f"got {node!r}")
    rate = pub.rate
    _require(math.isfinite(rate) and rate >= 0,
             f"--rate (publisher.rate) must be a number >= 0 (0 = as fast as it can), got {rate}")
    _require(pub.symbols >= 1,
             f"--symbols (publisher.symbols) must be at least 1, got {pub.symbols}")
    burst_every = pub.burst_every_s
    _require(math.isfinite(burst_every) and burst_every >= 0,
             f"--burst-every (publisher.burst_every_s) must be >= 0 seconds (0 = no bursts), "
             f"got {burst_every}")
    _require(pub.burst_size >= 0,
             f"--burst-size (publisher.burst_size) must be >= 0, got {pub.burst_size}")
    _require(pub.queue_capacity >= 1,
             f"publisher.queue_capacity must be at least 1, got {pub.queue_capacity}")
    _require(pub.sndhwm >= 0, f"publisher.sndhwm must be >= 0, got {pub.sndhwm}")
    interval = pub.telemetry_interval_s
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
        node=node, symbols=pub.symbols, rate=rate, seed=pub.seed,
        burst_every_s=burst_every, burst_size=pub.burst_size,
        queue_capacity=pub.queue_capacity, sndhwm=pub.sndhwm,
        telemetry_interval_s=interval,
        bind=None if args.connect else config.settings.endpoints.publisher,
        connect=args.connect, replay=args.replay, speed=speed, loop=args.loop, keys=args.keys,
        limits=Limits.from_settings(config.settings.limits),
        log_level=config.settings.logging.level, log_dir=config.settings.logging.dir,
        network=config.network,
    )

