"""What `tradeconsole exporter` costs beside a feed, against a plain pyzmq subscriber.

For each rate: a real publisher, the exporter (with its ingest child
process) and, in the same window, a reference subscriber in its own process
(`recv()` + `recv()` + `msgpack.unpackb` per message). CPU is read from
/proc for the exporter and every process under it; the figure is the ratio
of the two in the same run. Then `/metrics` is scraped 20 times: how long a
scrape takes and how many bytes it is.

    .venv/bin/python -m bench.exporter [--seconds 10] [--rates 200,1000,10000]

Not part of `run.py`; numbers in docs/alerts.md come from it.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import msgpack
import zmq

from bench.procs import Child, emit_result, stop_event_on_eof_or_term
from bench.stats import percentile, tree_cpu_s
from services.runtime.launcher import ServiceProcess, spawn

SYMBOLS = 200


def reference(endpoint: str, seconds: float) -> dict[str, Any]:
    """The plain subscriber: receive and decode everything for `seconds`, report own CPU."""
    ctx = zmq.Context()
    sock = ctx.socket(zmq.SUB)
    sock.setsockopt(zmq.SUBSCRIBE, b"")
    sock.setsockopt(zmq.RCVTIMEO, 200)
    sock.connect(endpoint)
    stop = stop_event_on_eof_or_term()
    unpackb = msgpack.unpackb
    start_cpu = resource.getrusage(resource.RUSAGE_SELF)
    end = time.monotonic() + seconds
    received = 0
    while time.monotonic() < end and not stop.is_set():
        try:
            sock.recv()
            unpackb(sock.recv())
            received += 1
        except zmq.Again:
            continue
    usage = resource.getrusage(resource.RUSAGE_SELF)
    sock.close(0)
    ctx.term()
    cpu = (usage.ru_utime - start_cpu.ru_utime) + (usage.ru_stime - start_cpu.ru_stime)
    return {"cpu_s": cpu, "received": received, "seconds": seconds}


def scrape_stats(url: str, count: int = 20) -> dict[str, float]:
    times, size = [], 0
    for _ in range(count):
        started = time.perf_counter()
        with urllib.request.urlopen(url, timeout=10) as response:
            size = len(response.read())
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return {"scrape_ms_p50": percentile(times, 0.5), "scrape_ms_p99": percentile(times, 0.99),
            "scrape_bytes": size}


def wait_flowing(url: str, timeout: float = 30.0) -> None:
    """Until the exporter has counted frames (imports done, sockets connected)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with urllib.request.urlopen(url, timeout=10) as response:
            for line in response.read().decode().splitlines():
                if line.startswith("tradeconsole_feed_received_total") and \
                        float(line.rsplit(" ", 1)[1]) > 0:
                    return
        time.sleep(0.1)
    raise RuntimeError("the exporter counted no frame")


def measure(rate: float, seconds: float, workdir: Path) -> dict[str, Any]:
    started: list[ServiceProcess] = []
    try:
        publisher = spawn("publisher", ["publisher", "--bind", "tcp://127.0.0.1:*",
                                        "--rate", str(rate), "--symbols", str(SYMBOLS)],
                          log_path=workdir / "publisher.log")
        started.append(publisher)
        feed = publisher.endpoints["pub"]
        exporter = spawn("exporter", ["exporter", "--listen", "127.0.0.1:0", "--feed", feed,
                                      "--gateway", "none"], log_path=workdir / "exporter.log")
        started.append(exporter)
        wait_flowing(exporter.endpoints["metrics"])
        ref = Child("bench.exporter", ["reference", "--feed", feed, "--seconds", str(seconds)])
        before = tree_cpu_s(exporter.pid)
        wall = time.monotonic()
        raw = ref.result(timeout=seconds + 30)
        ref.stop()
        exporter_cpu = tree_cpu_s(exporter.pid) - before
        elapsed = time.monotonic() - wall
        scrape = scrape_stats(exporter.endpoints["metrics"])
    finally:
        for proc in reversed(started):
            proc.stop()
    exporter_pct = 100 * exporter_cpu / elapsed
    raw_pct = 100 * raw["cpu_s"] / raw["seconds"]
    return {"rate": rate, "exporter_cpu_pct": exporter_pct, "raw_sub_cpu_pct": raw_pct,
            "ratio": exporter_pct / raw_pct if raw_pct else None, **scrape}


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| feed | exporter CPU, % of a core | raw pyzmq SUB, % | ratio | scrape p50 / p99 "
             "| scrape size |", "|---|---:|---:|---:|---:|---:|"]
    for row in rows:
        ratio = "-" if row["ratio"] is None else f"{row['ratio']:.1f}x"
        lines.append(f"| {row['rate']:,.0f} msg/s over {SYMBOLS} symbols | "
                     f"{row['exporter_cpu_pct']:.1f} | {row['raw_sub_cpu_pct']:.1f} | {ratio} | "
                     f"{row['scrape_ms_p50']:.1f} / {row['scrape_ms_p99']:.1f} ms | "
                     f"{row['scrape_bytes'] / 1024:.1f} KiB |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.exporter", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="mode")
    ref = sub.add_parser("reference")
    ref.add_argument("--feed", required=True)
    ref.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rates", default="200,1000,10000")
    args = parser.parse_args(argv)
    if args.mode == "reference":
        emit_result(reference(args.feed, args.seconds))
        return 0
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-exporter-") as tmp:
        for rate in (float(r) for r in args.rates.split(",")):
            rows.append(measure(rate, args.seconds, Path(tmp)))
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
