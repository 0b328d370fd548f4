"""Heartbeat round trips with one gateway link, then three with one gateway SIGKILLed.

    .venv/bin/python -m bench.gateway_links [--heartbeats N] [--json OUT]

The console links to each gateway through its own link process
(console.link.process.GatewayProcess). This measures what that design buys:
heartbeats to gateway A through one link, then through three links (A, B, C
at once, each heartbeating on its own every 50 ms) while gateway C is killed
with SIGKILL a third of the way through, so C's link spends the rest of the
phase retrying a dead peer. A heartbeat is timed from `request()` to its
reply callback in this process, as the console sees it; a plain pyzmq REQ
loop to A in the same run is the reference. The figure that matters is the
ratio of A's p99 with three links (one dead) to its p99 with one.
"""

from __future__ import annotations

import argparse
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import zmq

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.stats import percentile, write_result
from console.cli.run import make_gateway_client
from console.model import GW_DOWN, GW_UP, Reply
from services.protocol import HEARTBEAT, decode_reply, encode_request, make_request
from services.runtime.config import load_config
from services.runtime.launcher import ServiceProcess, spawn

NAMES = ("A", "B", "C")
LINK_HEARTBEAT_S = 0.05   # every link heartbeats on its own this often
PACE_S = 0.002            # between the measured heartbeats
REPLY_TIMEOUT_S = 10.0


def start_gateways(workdir: Path) -> dict[str, ServiceProcess]:
    gateways: dict[str, ServiceProcess] = {}
    workdir.mkdir(parents=True, exist_ok=True)
    for name in NAMES:
        gateways[name] = spawn("gateway", [
            "gateway", "--bind", "tcp://127.0.0.1:*", "--pub-bind", "tcp://127.0.0.1:*",
            "--state-dir", str(workdir / f"state-{name}"), "--node", f"bench-gw-{name}",
        ], log_path=workdir / f"gateway-{name}.stderr", timeout=60.0)
    return gateways


def make_link(endpoint: str, name: str) -> Any:
    config = load_config(use_user_file=False, env={}, overrides={
        "console.heartbeat_interval_s": LINK_HEARTBEAT_S,
        "console.request_timeout_ms": 300, "console.request_retries": 2})
    return make_gateway_client(endpoint, config, client_id=f"bench-links-{name}")


def wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.01)


def heartbeats(link: Any, count: int, on_sent: Any = None) -> list[float]:
    """`count` heartbeats one after another; each round trip in µs (request to callback)."""
    rtts: list[float] = []
    for index in range(count):
        done = threading.Event()
        got: list[Reply] = []

        def on_reply(reply: Reply, got: list[Reply] = got, done: threading.Event = done) -> None:
            got.append(reply)
            done.set()

        started = time.perf_counter()
        link.request(HEARTBEAT, on_reply=on_reply, urgent=True)
        if not done.wait(REPLY_TIMEOUT_S) or not got[0].ok:
            raise RuntimeError(f"heartbeat {index} not answered")
        rtts.append((time.perf_counter() - started) * 1e6)
        if on_sent is not None:
            on_sent(index)
        time.sleep(PACE_S)
    return rtts


def raw_heartbeats(endpoint: str, count: int) -> list[float]:
    """The reference: a plain REQ socket in this process, same pacing."""
    ctx = zmq.Context()
    sock = ctx.socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoint)
    rtts: list[float] = []
    try:
        for _ in range(count):
            request = encode_request(make_request(HEARTBEAT, None, client_id="bench-raw"))
            started = time.perf_counter()
            sock.send(request)
            if not sock.poll(int(REPLY_TIMEOUT_S * 1000)):
                raise RuntimeError("raw heartbeat not answered")
            decode_reply(sock.recv())
            rtts.append((time.perf_counter() - started) * 1e6)
            time.sleep(PACE_S)
    finally:
        ctx.destroy(linger=0)
    return rtts


def summary(rtts: list[float]) -> dict[str, Any]:
    ordered = sorted(rtts)
    return {"count": len(ordered), "p50_us": percentile(ordered, 0.50),
            "p99_us": percentile(ordered, 0.99), "max_us": ordered[-1] if ordered else None,
            "mean_us": statistics.mean(ordered) if ordered else None}


def measure(workdir: Path, count: int) -> dict[str, Any]:
    """The three phases: raw REQ, one link, three links with C killed part-way."""
    gateways = start_gateways(workdir)
    endpoints = {name: str(gw.endpoints["cmd"]) for name, gw in gateways.items()}
    result: dict[str, Any] = {}
    try:
        result["raw"] = summary(raw_heartbeats(endpoints["A"], count))
        one = make_link(endpoints["A"], "A")
        one.start()
        try:
            wait_for(lambda: one.status().state == GW_UP, 20.0, "link A UP")
            result["one_link"] = summary(heartbeats(one, count))
        finally:
            one.stop()
        links = {name: make_link(endpoints[name], name) for name in NAMES}
        for link in links.values():
            link.start()
        try:
            wait_for(lambda: all(lk.status().state == GW_UP for lk in links.values()), 20.0,
                     "three links UP")
            killed: dict[str, float] = {}

            def kill_c(index: int) -> None:
                if index == count // 3 and not killed:
                    gateways["C"].signal(signal.SIGKILL)
                    killed["at"] = time.monotonic()

            b_rtts: list[float] = []
            b_thread = threading.Thread(
                target=lambda: b_rtts.extend(heartbeats(links["B"], count)), daemon=True)
            b_thread.start()
            a_rtts = heartbeats(links["A"], count, kill_c)
            b_thread.join(REPLY_TIMEOUT_S * 2)
            wait_for(lambda: links["C"].status().state == GW_DOWN, 20.0, "link C DOWN")
            result["down_after_kill_s"] = time.monotonic() - killed["at"]
            cut = count // 3 + 1
            result["three_links_a"] = summary(a_rtts)
            result["three_links_a_before_kill"] = summary(a_rtts[:cut])
            result["three_links_a_after_kill"] = summary(a_rtts[cut:])
            result["three_links_b"] = summary(b_rtts)
        finally:
            for link in links.values():
                link.stop()
    finally:
        for gateway in gateways.values():
            gateway.stop()
    one_p99 = result["one_link"]["p99_us"]
    three_p99 = result["three_links_a"]["p99_us"]
    result["p99_ratio_three_to_one"] = three_p99 / one_p99 if one_p99 and three_p99 else None
    before = result["three_links_a_before_kill"]["p99_us"]
    after = result["three_links_a_after_kill"]["p99_us"]
    result["p99_ratio_after_to_before_kill"] = after / before if before and after else None
    raw_p99 = result["raw"]["p99_us"]
    result["p99_ratio_one_to_raw"] = one_p99 / raw_p99 if one_p99 and raw_p99 else None
    return result


def table(r: dict[str, Any]) -> str:
    def row(label: str, s: dict[str, Any]) -> str:
        return f"| {label} | {s['p50_us']:.0f} | {s['p99_us']:.0f} | {s['max_us']:.0f} |"

    ratio = r["p99_ratio_three_to_one"]
    return "\n".join([
        "| heartbeats to gateway A | p50 µs | p99 µs | max µs |", "|---|---:|---:|---:|",
        row("raw pyzmq REQ", r["raw"]),
        row("one link", r["one_link"]),
        row("three links, gateway C SIGKILLed during the run", r["three_links_a"]),
        row("… before C's SIGKILL", r["three_links_a_before_kill"]),
        row("… after it (C's link retrying a dead peer)", r["three_links_a_after_kill"]),
        row("gateway B's, meanwhile", r["three_links_b"]),
        "",
        f"p99 three links / one link: {ratio:.2f}; after / before C's SIGKILL: "
        f"{r['p99_ratio_after_to_before_kill']:.2f}; gateway C shown DOWN "
        f"{r['down_after_kill_s']:.2f} s after its SIGKILL",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.gateway_links", description=__doc__.split(
        "\n")[0])
    parser.add_argument("--heartbeats", type=int, default=600)
    parser.add_argument("--json", metavar="OUT", type=Path)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="tc-links-") as tmp:
        result = measure(Path(tmp), args.heartbeats)
    print(table(result))
    write_result(result, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
