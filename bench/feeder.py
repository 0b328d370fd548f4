"""The benchmark's publisher: a fixed count of ticks, as fast as it can or at a rate.

Run as `python -m bench.feeder --count N [--rate R] [--symbols S]`. It binds
an XPUB socket (a PUB that also hears subscriptions), prints the project's
READY line with the endpoint, waits until `--subscribers` peers have
subscribed (no slow-joiner losses), sends exactly `--count` frames from
`bench.frames` (body pre-packed, envelope stamped at send time), prints a
DONE line and then keeps the socket open until stdin closes or SIGTERM, so
frames still queued for a slow subscriber are not thrown away.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import zmq

from bench.frames import DEFAULT_NODE, FrameFactory
from bench.procs import stop_event_on_eof_or_term
from services.runtime.sockets import announce_ready

DONE_PREFIX = "FEEDER-DONE "
# Paced mode: how long the sender naps between checking how many frames are due.
PACE_NAP_S = 0.0005
SUBSCRIBE_TIMEOUT_S = 60.0


def _wait_for_subscribers(sock: zmq.Socket, wanted: int, timeout: float) -> int:
    """Count subscribe messages (XPUB_VERBOSE: every one) until `wanted` or timeout."""
    seen = 0
    deadline = time.monotonic() + timeout
    while seen < wanted:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        if sock.poll(int(remaining * 1000) + 1, zmq.POLLIN):
            message = sock.recv()
            if message[:1] == b"\x01":
                seen += 1
    return seen


def send_all(sock: zmq.Socket, factory: FrameFactory, count: int, rate: float) -> float:
    """Send frames 1..count; returns the seconds it took."""
    send = sock.send
    more = zmq.SNDMORE
    topics = factory.topics
    symbols = factory.symbols
    payload = factory.payload
    now_ns = time.time_ns
    started = time.perf_counter()
    if rate <= 0:
        for n in range(1, count + 1):
            send(topics[(n - 1) % symbols], more)
            send(payload(n, now_ns()))
        return time.perf_counter() - started
    n = 0
    while n < count:
        due = min(count, int((time.perf_counter() - started) * rate) + 1)
        while n < due:
            n += 1
            send(topics[(n - 1) % symbols], more)
            send(payload(n, now_ns()))
        if n < count:
            time.sleep(PACE_NAP_S)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.feeder", description=__doc__)
    parser.add_argument("--bind", default="tcp://127.0.0.1:*")
    parser.add_argument("--count", type=int, required=True, help="frames to send")
    parser.add_argument("--rate", type=float, default=0.0, help="frames/s; 0 = flat out")
    parser.add_argument("--symbols", type=int, default=100)
    parser.add_argument("--subscribers", type=int, default=1,
                        help="subscriptions to wait for before sending")
    parser.add_argument("--node", default=DEFAULT_NODE)
    parser.add_argument("--sndhwm", type=int, default=0, help="0 = unbounded (no drops)")
    parser.add_argument("--delay", type=float, default=0.0,
                        help="seconds to wait after the subscriptions (let an app settle)")
    args = parser.parse_args(argv)

    stop = stop_event_on_eof_or_term()
    factory = FrameFactory(args.symbols, node=args.node)
    ctx = zmq.Context()
    sock = ctx.socket(zmq.XPUB)
    sock.setsockopt(zmq.XPUB_VERBOSE, 1)
    sock.setsockopt(zmq.SNDHWM, args.sndhwm)
    sock.bind(args.bind)
    endpoint = sock.getsockopt_string(zmq.LAST_ENDPOINT)
    announce_ready(service="feeder", pub=endpoint, epoch=factory.epoch, node=args.node)
    seen = _wait_for_subscribers(sock, args.subscribers, SUBSCRIBE_TIMEOUT_S)
    if seen < args.subscribers:
        print(f"feeder: only {seen} of {args.subscribers} subscribers came", file=sys.stderr)
        return 1
    if stop.wait(args.delay):
        return 0
    start_ns = time.time_ns()
    seconds = send_all(sock, factory, args.count, args.rate)
    sys.stdout.write(DONE_PREFIX + json.dumps(
        {"sent": args.count, "seconds": seconds, "start_ns": start_ns}) + "\n")
    sys.stdout.flush()
    stop.wait()
    sock.close(linger=0)
    ctx.term()
    return 0


if __name__ == "__main__":
    sys.exit(main())
