"""What one frame over `max_msg_size` costs a feed: the reconnect, and the ticks lost in it.

libzmq drops a connection that carries a frame over ZMQ_MAXMSGSIZE and does
not reconnect it; the console's ingest (as shipped: its child process)
re-opens it (console.feed.feed_sockets). The ingest runs as a thread here
(the same sockets and loop as its child process, whose answers come a frame
late and would blur a millisecond timing). Two runs against an XPUB in this
process that stamps envelopes like a publisher:

- `reconnect`: one oversized frame, then a tick every millisecond until one
  arrives: from the oversized send to the first tick after it (drops 1 s
  apart, and pairs 0.3 s apart, which back off).
- `mixed`: 200 msg/s with one oversized frame in every 360 messages (the
  case in the issue): received, gaps, and the share lost.

    .venv/bin/python -m bench.oversized [--drops 20] [--seconds 20]
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import zmq

from bench.stats import percentile
from console.cli.run import make_tick_source
from services.envelope import Envelope
from services.protocol import packb
from services.runtime.config import load_config

DEADLINE_S = 10.0


class Xpub:
    def __init__(self, ctx: zmq.Context) -> None:
        self.sock = ctx.socket(zmq.XPUB)
        self.sock.setsockopt(zmq.SNDHWM, 0)
        self.sock.bind("tcp://127.0.0.1:*")
        self.endpoint = self.sock.getsockopt_string(zmq.LAST_ENDPOINT)
        self.env = Envelope("bench-oversized", epoch=1)
        self.n = 0

    def wait_subscribed(self) -> None:
        deadline = time.monotonic() + DEADLINE_S
        while time.monotonic() < deadline:
            if self.sock.poll(100) and self.sock.recv()[:1] == b"\x01":
                return
        raise RuntimeError("ingest never subscribed")

    def tick(self) -> None:
        self.n += 1
        vt = f"S{self.n % 50}.X"
        body = self.env.stamp(vt, {"vt_symbol": vt, "last_price": float(self.n)})
        self.sock.send_multipart([vt.encode(), packb(body)])

    def oversized(self, limit: int) -> None:
        self.sock.send_multipart([b"S0.X", b"\x00" * (limit + 16)])


def feed_of(source: object) -> object:
    """The feed's row from the next drain that carries one (a process may have none yet)."""
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        feeds = source.drain().feeds  # type: ignore[attr-defined]
        if feeds:
            return feeds[0]
        time.sleep(0.001)
    raise RuntimeError("no feed row from ingest")


def reconnects(xpub: Xpub, source: object, limit: int, drops: int) -> list[float]:
    waits = []
    for n in range(drops):
        for _ in range(20):
            xpub.tick()
            time.sleep(0.005)
        before = feed_of(source).received  # type: ignore[attr-defined]
        xpub.oversized(limit)
        sent = time.monotonic()
        while time.monotonic() - sent < DEADLINE_S:
            xpub.tick()
            if feed_of(source).received > before:  # type: ignore[attr-defined]
                waits.append((time.monotonic() - sent) * 1000)
                break
            time.sleep(0.001)
        time.sleep(0.3 if n % 2 == 0 else 1.0)
    return waits


def mixed(xpub: Xpub, source: object, limit: int, seconds: float) -> dict[str, float]:
    start = time.monotonic()
    sent = 0
    while time.monotonic() - start < seconds:
        sent += 1
        if sent % 360 == 0:
            xpub.oversized(limit)
        else:
            xpub.tick()
        if sent % 10 == 0:
            source.drain()  # type: ignore[attr-defined]  # as the UI would, every frame
        time.sleep(max(0.0, start + sent / 200 - time.monotonic()))
    deadline = time.monotonic() + DEADLINE_S
    feed: Any = feed_of(source)
    while time.monotonic() < deadline:
        time.sleep(0.2)
        latest: Any = feed_of(source)
        if latest.received == feed.received:
            break
        feed = latest
    ticks = sent - sent // 360
    return {"ticks_sent": ticks, "received": feed.received,   # the oversized never arrive
            "gaps": feed.gaps, "rejected": feed.rejected,
            "lost_pct": 100 * feed.gaps / ticks}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.oversized", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--drops", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args(argv)
    config = load_config(use_user_file=False, env={}, overrides={"console.ingest": "thread"})
    limit = config.settings.limits.max_msg_size
    ctx = zmq.Context()
    for run in ("reconnect", "mixed"):
        xpub = Xpub(ctx)
        source = make_tick_source([xpub.endpoint], config)
        source.start()
        try:
            xpub.wait_subscribed()
            if run == "reconnect":
                waits = reconnects(xpub, source, limit, args.drops)
                for name, part in (("lone (1 s apart)", waits[0::2]),
                                   ("in a burst (0.3 s apart)", waits[1::2])):
                    part = sorted(part)
                    print(f"reconnect after an oversized frame, {name}, ms ({len(part)}): "
                          f"p50 {percentile(part, 0.5):.1f}, max {part[-1]:.1f}")
            else:
                result = mixed(xpub, source, limit, args.seconds)
                print(f"200 msg/s, one oversized frame in 360, {args.seconds:g} s: "
                      f"{result['ticks_sent']} ticks sent, {result['received']} received, "
                      f"{result['gaps']} gaps ({result['lost_pct']:.1f}% lost), "
                      f"{result['rejected']} rejected")
        finally:
            source.stop()
            xpub.sock.close(0)
    ctx.term()
    return 0


if __name__ == "__main__":
    sys.exit(main())
