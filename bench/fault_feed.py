"""A misbehaving third-party tick publisher, for fault tests and for trying the console.

It stands for somebody else's vnpy-style publisher, so it deliberately uses
nothing from this project: only pyzmq and msgpack, and the wire format as
written in the protocol document. It sends `[vt_symbol, msgpack tick]` on a
PUB socket and can:

- leave out the envelope (`--no-envelope`), as plain vnpy publishers do;
- skip sequence numbers (`--skip-every N`): every Nth message is stamped and
  then not sent, so a subscriber must count exactly one gap for each;
- mix in hostile messages (`--hostile-every N`): after every N good ticks one
  message of the next hostile kind, cycling through `--hostile-kinds`.
  Hostile messages never carry a valid envelope, so they never use up a
  sequence number.

It reports on stdout, one JSON object per line: `ready` (the endpoint really
bound, so `tcp://127.0.0.1:*` works), `stats` every `--report-every` seconds,
`done` when `--count` good ticks were sent (it then stays connected, sending
nothing, until SIGINT/SIGTERM), and `exit`. Counts in every line are exact:
`sent` good ticks, `skipped` sequence numbers, `hostile` per kind.

    python bench/fault_feed.py --bind tcp://127.0.0.1:5556 --hostile-every 20
    tradeconsole --feed tcp://127.0.0.1:5556
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import signal
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from types import FrameType
from typing import Any

import msgpack
import zmq

EXCHANGES = ("KRAKEN", "CFFEX", "SHFE", "SMART", "BINANCE", "DCE")
BASES = ("BTCUSD", "IF2506", "rb2510", "AAPL", "ETHUSDT", "m2509")
# Big enough to exceed any sane ZMQ_MAXMSGSIZE on the subscriber (default 256 KiB).
OVERSIZED_BYTES = 4 * 1024 * 1024
# Nesting deeper than any msgpack decoder's stack, still well under 256 KiB.
NESTING_DEPTH = 100_000
# Longest nap of the send loop, so signals and reports are handled promptly.
MAX_NAP_S = 0.05

Frames = list[bytes]


def pack(obj: Any) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


# --- the market ----------------------------------------------------------------------


class Ticks:
    """A seeded random walk over a few vnpy-style symbols."""

    def __init__(self, symbols: int, seed: int) -> None:
        self.random = random.Random(seed)
        self.vt_symbols = [self._name(i) for i in range(symbols)]
        self.prices = [self.random.uniform(10.0, 5000.0) for _ in range(symbols)]
        self.pre_close = list(self.prices)
        self.volume = [0.0] * symbols
        self.index = -1

    @staticmethod
    def _name(i: int) -> str:
        base = BASES[i % len(BASES)]
        suffix = "" if i < len(BASES) else str(i // len(BASES))
        return f"{base}{suffix}.{EXCHANGES[i % len(EXCHANGES)]}"

    def next(self) -> tuple[str, dict[str, Any]]:
        """The next symbol in turn and a fresh tick for it (TickData field names)."""
        self.index = (self.index + 1) % len(self.vt_symbols)
        i = self.index
        vt = self.vt_symbols[i]
        symbol, _, exchange = vt.rpartition(".")
        price = max(0.01, self.prices[i] * (1.0 + self.random.gauss(0.0, 0.0005)))
        self.prices[i] = price
        step = price * 0.0002
        last_volume = float(self.random.randint(1, 50))
        self.volume[i] += last_volume
        tick: dict[str, Any] = {
            "symbol": symbol,
            "exchange": exchange,
            "vt_symbol": vt,
            "gateway_name": "FAULTFEED",
            "name": symbol,
            "datetime": datetime.now(UTC).isoformat(),
            "volume": self.volume[i],
            "turnover": self.volume[i] * price,
            "open_interest": 0.0,
            "last_price": price,
            "last_volume": last_volume,
            "pre_close": self.pre_close[i],
        }
        for level in range(1, 6):
            tick[f"bid_price_{level}"] = price - step * level
            tick[f"ask_price_{level}"] = price + step * level
            tick[f"bid_volume_{level}"] = float(self.random.randint(1, 100))
            tick[f"ask_volume_{level}"] = float(self.random.randint(1, 100))
        return vt, tick


class Stamp:
    """The protocol's envelope: pub, epoch, seq (all topics), tseq (per topic), ts_ns."""

    def __init__(self, node: str) -> None:
        self.node = node
        self.epoch = time.time_ns()
        self.seq = 0
        self.tseq: dict[str, int] = {}

    def apply(self, topic: str, tick: dict[str, Any]) -> None:
        self.seq += 1
        self.tseq[topic] = self.tseq.get(topic, 0) + 1
        tick.update(pub=self.node, epoch=self.epoch, seq=self.seq, tseq=self.tseq[topic],
                    ts_ns=time.time_ns())


# --- hostile messages -----------------------------------------------------------------


def _tick_like(vt: str, **fields: Any) -> dict[str, Any]:
    return {"vt_symbol": vt, "symbol": vt.rpartition(".")[0], "last_price": 1.0, **fields}


def _nested(depth: int) -> bytes:
    # {"x": [[[[ ... nil ... ]]]]}: one fixarray header per level.
    return b"\x81\xa1x" + b"\x91" * depth + b"\xc0"


HOSTILE: dict[str, Callable[[bytes, str], Frames]] = {
    # Payloads a decoder must refuse.
    "not_msgpack": lambda t, vt: [t, b"\xc1\xc1 this is not msgpack"],
    "not_a_map": lambda t, vt: [t, pack([vt, 1.0, 2.0])],
    "non_string_keys": lambda t, vt: [t, pack({1: vt, 2: 3.5})],
    "wrong_types": lambda t, vt: [t, pack(_tick_like(vt, last_price="12.5",
                                                      bid_price_1=[1, 2]))],
    "nan_price": lambda t, vt: [t, pack(_tick_like(vt, last_price=math.nan))],
    "inf_price": lambda t, vt: [t, pack(_tick_like(vt, ask_price_1=math.inf,
                                                    bid_price_1=-math.inf))],
    "deep_nesting": lambda t, vt: [t, _nested(NESTING_DEPTH)],
    "huge_map_header": lambda t, vt: [t, b"\xdf\xff\xff\xff\xff" + b"\xa1k\x01"],
    "huge_str_header": lambda t, vt: [t, b"\x81\xa4name\xdb\x7f\xff\xff\xff" + b"x" * 16],
    "ext_type": lambda t, vt: [t, pack(_tick_like(vt, last_price=msgpack.ExtType(42, b"abcd")))],
    "trailing_bytes": lambda t, vt: [t, pack(_tick_like(vt)) + b"\x00\x01"],
    "bad_envelope": lambda t, vt: [t, pack(_tick_like(vt, pub="x", epoch=1.5, seq="7",
                                                       tseq=None, ts_ns="now"))],
    "topic_mismatch": lambda t, vt: [t, pack(_tick_like("OTHER.NOWHERE"))],
    "bad_topic": lambda t, vt: [b"\xff\xfe\xfd", pack(_tick_like(vt))],
    # Messages of the wrong shape.
    "one_frame": lambda t, vt: [t],
    "three_frames": lambda t, vt: [t, b"\xc1", b"\xc1"],
    # Bigger than the subscriber's ZMQ_MAXMSGSIZE: libzmq drops the connection.
    "oversized": lambda t, vt: [t, b"\x00" * OVERSIZED_BYTES],
}
# One rejected frame each at the subscriber, exactly.
PAYLOAD_KINDS = tuple(k for k in HOSTILE if k not in ("one_frame", "three_frames", "oversized"))


# --- the publisher ------------------------------------------------------------------


class FaultFeed:
    """Owns the socket and the counters; `run()` sends until stopped."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.ticks = Ticks(args.symbols, args.seed)
        self.stamp = Stamp(args.node) if not args.no_envelope else None
        self.kinds: list[str] = args.hostile_kinds
        self.sent = 0
        self.skipped = 0
        self.hostile: dict[str, int] = dict.fromkeys(self.kinds, 0)
        self.since_hostile = 0
        self.next_kind = 0
        self.stopping = False
        self.quiet = False
        self.started = time.monotonic()
        self.ctx = zmq.Context()
        # XPUB is a PUB on the wire; it also tells us when a subscriber is there.
        self.sock = self.ctx.socket(zmq.XPUB)
        self.sock.setsockopt(zmq.LINGER, 500)
        self.sock.setsockopt(zmq.SNDHWM, args.sndhwm)
        self.endpoint = self._attach()

    def _attach(self) -> str:
        try:
            if self.args.connect:
                self.sock.connect(self.args.connect)
                return str(self.args.connect)
            self.sock.bind(self.args.bind)
        except zmq.ZMQError as exc:
            where = self.args.connect or self.args.bind
            raise SystemExit(f"fault_feed: cannot use endpoint {where}: {exc.strerror}") from exc
        return self.sock.getsockopt_string(zmq.LAST_ENDPOINT)

    # --- reporting

    def counts(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "skipped": self.skipped,
            "seq": self.stamp.seq if self.stamp else None,
            "hostile": sum(self.hostile.values()),
            "hostile_by_kind": dict(self.hostile),
            "elapsed_s": round(time.monotonic() - self.started, 3),
        }

    def report(self, event: str, **extra: Any) -> None:
        if self.quiet:
            return
        try:
            sys.stdout.write(json.dumps({"event": event, **extra, **self.counts()}) + "\n")
            sys.stdout.flush()
        except BrokenPipeError:
            # Nobody reads the reports any more: keep publishing, and let the final
            # flush at exit go to /dev/null instead of failing again.
            self.quiet = True
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())

    # --- sending

    def _subscriptions(self, timeout_ms: int) -> int:
        """Read pending (un)subscription messages; returns how many arrived."""
        seen = 0
        while self.sock.poll(timeout_ms if seen == 0 else 0, zmq.POLLIN):
            self.sock.recv()
            seen += 1
        return seen

    def wait_for_subscriber(self) -> None:
        while not self.stopping and not self._subscriptions(100):
            pass

    def send_good(self) -> None:
        topic, tick = self.ticks.next()
        if self.stamp is not None:
            self.stamp.apply(topic, tick)
            if self.args.skip_every and self.stamp.seq % self.args.skip_every == 0:
                self.skipped += 1  # stamped, never sent: exactly one gap downstream
                topic, tick = self.ticks.next()
                self.stamp.apply(topic, tick)
        self.sock.send_multipart([topic.encode(), pack(tick)])
        self.sent += 1
        self.since_hostile += 1
        if self.args.hostile_every and self.kinds and \
                self.since_hostile >= self.args.hostile_every:
            self.since_hostile = 0
            self.send_hostile(topic)

    def send_hostile(self, topic: str) -> None:
        kind = self.kinds[self.next_kind % len(self.kinds)]
        self.next_kind += 1
        self.sock.send_multipart(HOSTILE[kind](topic.encode(), topic))
        self.hostile[kind] += 1

    def run(self) -> None:
        args = self.args
        self.report("ready", endpoint=self.endpoint, node=args.node,
                    envelope=self.stamp is not None,
                    epoch=self.stamp.epoch if self.stamp else None)
        if args.wait_subscriber:
            self.wait_for_subscriber()
        interval = 1.0 / args.rate if args.rate > 0 else 0.0
        next_send = time.monotonic()
        next_report = next_send + args.report_every if args.report_every > 0 else math.inf
        while not self.stopping and (args.count == 0 or self.sent < args.count):
            now = time.monotonic()
            while now >= next_send and (args.count == 0 or self.sent < args.count):
                self.send_good()
                next_send = next_send + interval if interval else now
                if interval == 0:
                    break
            if now >= next_report:
                self.report("stats")
                next_report = now + args.report_every
            self._subscriptions(0)
            if interval:
                time.sleep(min(max(next_send - time.monotonic(), 0.0), MAX_NAP_S))
        if not self.stopping:
            self.report("done")
            while not self.stopping:  # stay connected so everything sent gets delivered
                self._subscriptions(100)
        self.report("exit")

    def close(self) -> None:
        self.sock.close()
        self.ctx.term()


# --- command line ----------------------------------------------------------------------


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _kinds(text: str) -> list[str]:
    kinds = [k.strip() for k in text.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in HOSTILE and k not in ("all", "payload")]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown kind(s) {', '.join(unknown)}; allowed: all, payload, {', '.join(HOSTILE)}")
    out: list[str] = []
    for kind in kinds:
        out.extend(HOSTILE if kind == "all" else PAYLOAD_KINDS if kind == "payload" else [kind])
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="fault_feed.py",
        description="A third-party style tick publisher that misbehaves on purpose.")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--bind", metavar="EP", default="tcp://127.0.0.1:5556",
                       help="endpoint to bind (default %(default)s; tcp://127.0.0.1:* = any port)")
    where.add_argument("--connect", metavar="EP", help="connect to a proxy's XSUB instead")
    parser.add_argument("--rate", type=float, default=100.0, metavar="MSG_PER_S",
                        help="good ticks per second; 0 = as fast as possible (default 100)")
    parser.add_argument("--symbols", type=_positive_int, default=6, metavar="N")
    parser.add_argument("--count", type=_positive_int, default=0, metavar="N",
                        help="stop sending after N good ticks, stay connected (0 = never stop)")
    parser.add_argument("--node", default="fault-feed", help="pub field of the envelope")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-envelope", action="store_true",
                        help="send bare vnpy ticks: no pub/epoch/seq/tseq/ts_ns")
    parser.add_argument("--skip-every", type=_positive_int, default=0, metavar="N",
                        help="stamp every Nth sequence number but do not send it")
    parser.add_argument("--hostile-every", type=_positive_int, default=0, metavar="N",
                        help="after every N good ticks send one hostile message")
    parser.add_argument("--hostile-kinds", type=_kinds, default=list(HOSTILE), metavar="K,K",
                        help="hostile kinds to cycle through: all (default), payload (the "
                             "ones counted exactly once each), or names: "
                             + ", ".join(HOSTILE))
    parser.add_argument("--wait-subscriber", action="store_true",
                        help="send nothing until a subscriber has subscribed")
    parser.add_argument("--report-every", type=float, default=1.0, metavar="S",
                        help="seconds between stats lines on stdout (0 = only ready/done/exit)")
    parser.add_argument("--sndhwm", type=_positive_int, default=100_000, metavar="N")
    args = parser.parse_args(argv)
    if not math.isfinite(args.rate) or args.rate < 0:
        parser.error(f"--rate must be a number >= 0, got {args.rate}")
    if args.symbols < 1:
        parser.error("--symbols must be at least 1")
    if args.skip_every == 1:
        parser.error("--skip-every must be at least 2 (1 would skip everything)")
    if args.skip_every and args.no_envelope:
        parser.error("--skip-every needs the envelope: drop --no-envelope")
    if not math.isfinite(args.report_every) or args.report_every < 0:
        parser.error(f"--report-every must be >= 0 seconds, got {args.report_every}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    feed = FaultFeed(args)

    def stop(signum: int, frame: FrameType | None) -> None:
        feed.stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        feed.run()
    finally:
        feed.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
