"""The reference loops: what plain pyzmq + msgpack achieve on this machine, this run.

Every console figure is reported as a ratio against one of these, measured
in the same run, because absolute numbers on a shared 2-core machine are
noise. Run as `python -m bench.raw MODE ...`; each mode prints one
BENCH-RESULT line of JSON:

- `sub`: SUB socket, `recv()` + `recv()` + `msgpack.unpackb` per message,
  `seq` checked for gaps; throughput, or with `--latency` the end-to-end
  latency from the envelope's `ts_ns` (per-second percentiles).
- `req`: a plain REQ socket sending HEARTBEAT to the gateway for a while,
  every round trip timed and stamped with the wall clock.
- `drain`: SUB that only receives (no decode), counting what a sender delivers
  over a window: the judge for the publisher comparison.
- `pub`: a plain send loop packing pre-built tick dicts (envelope included)
  until stopped: the reference for the project's publisher.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import msgpack
import zmq

from bench.frames import FrameFactory
from bench.procs import emit_result, stop_event_on_eof_or_term
from bench.stats import per_second_percentiles, percentile
from services.protocol import HEARTBEAT, make_request
from services.runtime.sockets import announce_ready

BIG_HWM = 10_000_000
IDLE_END_MS = 2000  # a stream that goes quiet this long is over
# Pause between two heartbeats (not timed), the same for the console's client.
HEARTBEAT_GAP_S = 0.005


def _sub(ctx: zmq.Context, endpoint: str) -> zmq.Socket:
    sock = ctx.socket(zmq.SUB)
    sock.setsockopt(zmq.RCVHWM, BIG_HWM)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SUBSCRIBE, b"")
    sock.connect(endpoint)
    return sock


def sub_throughput(endpoint: str, count: int) -> dict[str, Any]:
    """Receive `count` frames as fast as they come; rate from first to last frame.

    `gaps` is what never arrived (count - received); the loop also reads
    `seq` from every frame, as any gap-aware subscriber must.
    """
    ctx = zmq.Context()
    sock = _sub(ctx, endpoint)
    sock.setsockopt(zmq.RCVTIMEO, 30_000)  # the first frame may take a while
    recv = sock.recv
    unpackb = msgpack.unpackb
    received = 0
    out_of_order = 0
    first = last = time.perf_counter()
    try:
        recv()
        expected = unpackb(recv())["seq"] + 1
        first = last = time.perf_counter()
        received = 1
        sock.setsockopt(zmq.RCVTIMEO, IDLE_END_MS)
        while received < count:
            recv()
            seq = unpackb(recv())["seq"]
            received += 1
            if seq != expected:
                out_of_order += 1
            expected = seq + 1
        last = time.perf_counter()
    except zmq.Again:
        last = time.perf_counter() - IDLE_END_MS / 1000.0
    finally:
        sock.close(0)
        ctx.term()
    seconds = max(last - first, 1e-9)
    return {"received": received, "gaps": count - received, "seq_jumps": out_of_order,
            "seconds": seconds, "msgs_per_s": (received - 1) / seconds}


def sub_latency(endpoint: str, count: int) -> dict[str, Any]:
    """Receive `count` paced frames; per-second p50/p99 of now - ts_ns (µs)."""
    ctx = zmq.Context()
    sock = _sub(ctx, endpoint)
    sock.setsockopt(zmq.RCVTIMEO, 30_000)
    recv = sock.recv
    unpackb = msgpack.unpackb
    now_ns = time.time_ns
    samples: list[tuple[int, int]] = []  # (receive ns, latency ns)
    try:
        while len(samples) < count:
            recv()
            tick = unpackb(recv())
            now = now_ns()
            samples.append((now, now - tick["ts_ns"]))
            if len(samples) == 1:
                sock.setsockopt(zmq.RCVTIMEO, IDLE_END_MS)
    except zmq.Again:
        pass
    finally:
        sock.close(0)
        ctx.term()
    p50, p99 = per_second_percentiles(samples)
    return {"received": len(samples), "p50_us": p50, "p99_us": p99,
            "first_wall_ns": samples[0][0] if samples else None,
            "last_wall_ns": samples[-1][0] if samples else None}


def req_heartbeat(endpoint: str, seconds: float, warmup: int = 20) -> dict[str, Any]:
    """HEARTBEAT round trips over a plain REQ socket until stdin closes (or `seconds`).

    Returns every sample as [wall ns, µs], so the caller can keep those taken
    while a feed was flowing.
    """
    stop = stop_event_on_eof_or_term()
    ctx = zmq.Context()
    sock = ctx.socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, 5000)
    sock.connect(endpoint)
    samples: list[list[float]] = []
    try:
        n = 0
        end = time.monotonic() + seconds
        while time.monotonic() < end and not stop.is_set():
            frame = msgpack.packb(make_request(HEARTBEAT, client_id="bench-raw"))
            t0 = time.perf_counter_ns()
            sock.send(frame)
            sock.recv()
            rtt_us = (time.perf_counter_ns() - t0) / 1000.0
            if n >= warmup:
                samples.append([time.time_ns(), rtt_us])
            n += 1
            time.sleep(HEARTBEAT_GAP_S)
    finally:
        sock.close(0)
        ctx.term()
    return {"samples": samples}


def rtt_percentiles(samples: list[list[float]], first_ns: int | None,
                    last_ns: int | None) -> dict[str, Any]:
    """p50/p99 of the heartbeat samples taken between first_ns and last_ns."""
    kept = [rtt for at, rtt in samples
            if first_ns is None or last_ns is None or first_ns <= at <= last_ns]
    kept.sort()
    return {"samples": len(kept), "p50_us": percentile(kept, 0.50),
            "p99_us": percentile(kept, 0.99)}


def drain(endpoint: str, warmup_s: float, window_s: float) -> dict[str, Any]:
    """Count messages delivered over `window_s` after `warmup_s` of flow (no decoding)."""
    ctx = zmq.Context()
    sock = _sub(ctx, endpoint)
    sock.setsockopt(zmq.RCVTIMEO, 30_000)
    recv = sock.recv
    clock = time.perf_counter
    try:
        recv()  # the stream has started
        recv()
        sock.setsockopt(zmq.RCVTIMEO, IDLE_END_MS)
        start = clock()
        while clock() - start < warmup_s:
            for _ in range(100):
                recv()
                recv()
        messages = 0
        start = now = clock()
        end = start + window_s
        while now < end:
            for _ in range(100):
                recv()
                recv()
            messages += 100
            now = clock()
    finally:
        sock.close(0)
        ctx.term()
    seconds = now - start
    return {"messages": messages, "seconds": seconds, "msgs_per_s": messages / seconds}


def pub_loop(symbols: int) -> None:
    """Pack and send pre-built tick dicts until stopped (the publisher reference)."""
    factory = FrameFactory(symbols, node="bench-raw-pub")
    ctx = zmq.Context()
    sock = ctx.socket(zmq.XPUB)
    sock.setsockopt(zmq.SNDHWM, 100_000)
    sock.bind("tcp://127.0.0.1:*")
    announce_ready(service="raw-pub", pub=sock.getsockopt_string(zmq.LAST_ENDPOINT))
    stop = stop_event_on_eof_or_term()
    while not sock.poll(100, zmq.POLLIN):  # a subscriber is there
        if stop.is_set():
            return
    sock.recv()
    send = sock.send
    more = zmq.SNDMORE
    packb = msgpack.packb
    now_ns = time.time_ns
    topics = {vt: vt.encode() for vt in (t[0]["vt_symbol"] for t in factory.ticks)}
    tseq: dict[str, int] = {}
    epoch = now_ns()
    for seq, (vt, tick) in enumerate(factory.tick_dicts(), start=1):
        if stop.is_set():
            break
        n = tseq.get(vt, 0) + 1
        tseq[vt] = n
        tick["pub"] = "bench-raw-pub"
        tick["epoch"] = epoch
        tick["seq"] = seq
        tick["tseq"] = n
        tick["ts_ns"] = now_ns()
        send(topics[vt], more)
        send(packb(tick, use_bin_type=True))
    sock.close(0)
    ctx.term()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.raw", description=__doc__)
    sub = parser.add_subparsers(dest="mode", required=True)
    p = sub.add_parser("sub")
    p.add_argument("--feed", required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--latency", action="store_true")
    p = sub.add_parser("req")
    p.add_argument("--gateway", required=True)
    p.add_argument("--seconds", type=float, default=120.0, help="longest run")
    p = sub.add_parser("drain")
    p.add_argument("--feed", required=True)
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--seconds", type=float, default=3.0)
    p = sub.add_parser("pub")
    p.add_argument("--symbols", type=int, default=100)
    args = parser.parse_args(argv)
    if args.mode == "sub":
        emit_result(sub_latency(args.feed, args.count) if args.latency
                    else sub_throughput(args.feed, args.count))
    elif args.mode == "req":
        emit_result(req_heartbeat(args.gateway, args.seconds))
    elif args.mode == "drain":
        emit_result(drain(args.feed, args.warmup, args.seconds))
    else:
        pub_loop(args.symbols)
    return 0


if __name__ == "__main__":
    sys.exit(main())
