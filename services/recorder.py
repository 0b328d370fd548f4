"""`tradeconsole record`: write the raw frames of one or more feeds to a recording.

One SUB socket per feed; every `[topic, payload]` message is written exactly
as received with its receive time (see services/recording.py). Nothing is
decoded, so even frames the console would reject are kept for later study.
Messages that are not two frames, or that cannot be written, are counted.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import threading
import time
from pathlib import Path

import zmq

from services.protocol import Limits
from services.recording import RecordingWriter
from services.runtime.config import load_for_args
from services.runtime.errors import UsageError
from services.runtime.lifecycle import stop_event_on_signals
from services.runtime.logsetup import setup_logging
from services.runtime.network import apply_network
from services.runtime.sockets import announce_ready, apply_limits, connect

log = logging.getLogger("tradeconsole.record")

POLL_MS = 100
DRAIN_BATCH = 10_000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--feed", action="append", metavar="EP",
                        help="endpoint to record (repeatable; default [endpoints] feeds)")
    parser.add_argument("--out", required=True, type=Path, metavar="FILE",
                        help="recording file (appended to if it already is a recording)")
    parser.add_argument("--seconds", type=float, metavar="S",
                        help="stop after S seconds (default: until Ctrl-C / SIGTERM)")
    parser.add_argument("--topic", action="append", metavar="PREFIX",
                        help="record only topics starting with PREFIX (repeatable)")
    parser.add_argument("--keys", metavar="DIR",
                        help="CURVE key directory (connect as a client, like the console)")


class Recorder:
    """Drains SUB sockets into a RecordingWriter; counts what it could not record."""

    def __init__(self, writer: RecordingWriter, sockets: list[zmq.Socket]) -> None:
        self.writer = writer
        self.sockets = sockets
        self.frames = 0
        self.unrecorded = 0
        self._poller = zmq.Poller()
        for sock in sockets:
            self._poller.register(sock, zmq.POLLIN)

    def _write(self, parts: list[bytes]) -> None:
        if len(parts) != 2:
            self.unrecorded += 1
            if self.unrecorded == 1:
                log.warning("skipping a message of %d frames (expected topic and payload)",
                            len(parts))
            return
        try:
            self.writer.write(time.time_ns(), parts[0], parts[1])
        except OSError as exc:
            self.unrecorded += 1
            if self.unrecorded == 1 or self.unrecorded % 10_000 == 0:
                log.error("cannot write to %s (%d frames lost so far): %s",
                          self.writer.path, self.unrecorded, exc)
            return
        self.frames += 1

    def poll_once(self, timeout_ms: int) -> None:
        """Wait up to `timeout_ms` for frames and write everything that is ready."""
        for sock, _ in self._poller.poll(timeout_ms):
            for _ in range(DRAIN_BATCH):
                try:
                    parts = sock.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                self._write(parts)
        try:
            self.writer.flush_if_due()
        except OSError as exc:
            log.error("cannot flush %s: %s", self.writer.path, exc)

    def run(self, stop: threading.Event, deadline: float | None) -> None:
        while not stop.is_set():
            timeout = POLL_MS
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                timeout = max(1, min(POLL_MS, int(remaining * 1000)))
            self.poll_once(timeout)


def _close_quietly(writer: RecordingWriter) -> None:
    """A failing final flush (disk full) is logged; the frames before it are on disk."""
    try:
        writer.close()
    except OSError as exc:
        log.error("closing %s failed: %s", writer.path, exc)


def run(args: argparse.Namespace) -> int:
    config = load_for_args(args)
    feeds: list[str] = args.feed or list(config.settings.endpoints.feeds)
    if not feeds:
        raise UsageError("--feed: give at least one endpoint (or set [endpoints] feeds)")
    if args.seconds is not None and not (math.isfinite(args.seconds) and args.seconds > 0):
        raise UsageError(f"--seconds must be a number > 0, got {args.seconds}")
    topics = [t.encode("utf-8") for t in (args.topic or [""])]
    limits = Limits.from_settings(config.settings.limits)
    setup_logging("record", config.settings.logging.level, config.settings.logging.dir)

    stop = stop_event_on_signals()

    ctx = zmq.Context()
    sockets: list[zmq.Socket] = []
    writer: RecordingWriter | None = None
    keys = None
    if args.keys:
        from services import security

        keys = security.load_keys(args.keys)
    try:
        for feed in feeds:
            sock = ctx.socket(zmq.SUB)
            sockets.append(sock)
            sock.setsockopt(zmq.RCVHWM, config.settings.console.rcvhwm)
            sock.setsockopt(zmq.LINGER, 0)
            apply_limits(sock, limits)
            apply_network(sock, config.network)
            for topic in topics:
                sock.setsockopt(zmq.SUBSCRIBE, topic)
            if keys is not None:
                security.secure_client(sock, keys)
            connect(sock, feed, what="record --feed")
        writer = RecordingWriter(args.out)  # after the endpoints are known to be valid
        if writer.cut_bytes:
            log.warning("%s: cut off a partial record of %d bytes before appending",
                        args.out, writer.cut_bytes)
        recorder = Recorder(writer, sockets)
        announce_ready(service="record", out=str(args.out), feeds=feeds)
        log.info("recording %s to %s", ", ".join(feeds), args.out)
        started = time.monotonic()
        deadline = started + args.seconds if args.seconds is not None else None
        recorder.run(stop, deadline)
        elapsed = time.monotonic() - started
    finally:
        for sock in sockets:
            sock.close(0)
        ctx.term()
        if writer is not None:
            _close_quietly(writer)
    skipped = f", {recorder.unrecorded} not recorded" if recorder.unrecorded else ""
    summary = (f"recorded {recorder.frames} frames{skipped} from {len(feeds)} feed(s) "
               f"in {elapsed:.1f} s to {args.out}")
    log.info(summary)
    sys.stdout.write(summary + "\n")
    sys.stdout.flush()
    return 0
