"""tradeconsole benchmark: the console against raw pyzmq, same machine, same run.

    .venv/bin/python bench/run.py [--quick] [--json OUT]

Every phase starts fresh processes: a feeder (`bench.feeder`, pre-packed
ticks with a real envelope, a fixed count so losses are exact), the
reference loops (`bench.raw`), the real console app measured from the
inside (`bench.app_probe`), the real console under a pty
(`bench.first_frame`, `bench.cost`) and the project's own publisher and
gateway. Figures are reported as ratios against the raw loops measured in the
same run; absolute numbers on a shared 2-core machine are noise. `--quick`
finishes within about two minutes (half of it the cost table); the full run
takes several. `--cost-only` runs just the cost table (`bench.cost`).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import cost, first_frame, gateway_links
from bench.feeder import DONE_PREFIX
from bench.procs import Child
from bench.raw import rtt_percentiles
from bench.stats import process_cpu_seconds, write_result
from services.runtime.launcher import ServiceProcess, spawn

PHASE_TIMEOUT_S = 300.0
SHIPPED_FPS = 20
# The console's phases start the feed this long after it subscribed: start-up
# work (first layout, the one-off GC freeze after 1 s) is not what is measured.
APP_SETTLE_S = 2.0


@dataclass(frozen=True)
class Sizes:
    """How much each phase sends; --quick keeps the run short."""

    load_count: int
    load_symbols: int
    latency_rate: float
    latency_seconds: float
    heartbeats: int
    rss_count: int
    rss_symbols: int
    cpu_rate: float
    cpu_seconds: float
    cpu_symbols: int
    publisher_seconds: float
    first_frame_runs: int
    cost_seconds: float


FULL = Sizes(load_count=1_500_000, load_symbols=1000, latency_rate=10_000.0,
             latency_seconds=20.0, heartbeats=1000, rss_count=1_000_000, rss_symbols=10_000,
             cpu_rate=30_000.0, cpu_seconds=10.0, cpu_symbols=2000, publisher_seconds=5.0,
             first_frame_runs=3, cost_seconds=cost.FULL_SECONDS)
QUICK = Sizes(load_count=300_000, load_symbols=1000, latency_rate=10_000.0,
              latency_seconds=3.0, heartbeats=150, rss_count=200_000, rss_symbols=10_000,
              cpu_rate=30_000.0, cpu_seconds=4.0, cpu_symbols=2000, publisher_seconds=1.0,
              first_frame_runs=1, cost_seconds=cost.QUICK_SECONDS)


class Bench:
    """Runs the phases and collects their results."""

    def __init__(self, sizes: Sizes, workdir: Path, fps: int, say: Callable[[str], None]):
        self.sizes = sizes
        self.workdir = workdir
        self.fps = fps
        self.say = say
        self.details: dict[str, Any] = {}

    def _log(self, name: str) -> Path:
        return self.workdir / f"{name}.log"

    def _feeder(self, count: int, symbols: int, rate: float = 0.0,
                delay: float = 0.0) -> tuple[Child, str]:
        """A feeder; `delay` lets a console finish starting before the first tick."""
        feeder = Child("bench.feeder", ["--count", str(count), "--symbols", str(symbols),
                                        "--rate", str(rate), "--delay", str(delay)],
                       log=self._log("feeder"))
        return feeder, str(feeder.ready()["pub"])

    def _probe(self, scenario: str, feed: str, count: int, *extra: str) -> dict[str, Any]:
        probe = Child("bench.app_probe", [scenario, "--feed", feed, "--count", str(count),
                                          "--fps", str(self.fps), *extra],
                      log=self._log(f"probe-{scenario}"))
        try:
            return probe.result(PHASE_TIMEOUT_S)
        finally:
            probe.stop()

    # --- phases ------------------------------------------------------------------------

    def raw_sub(self) -> dict[str, Any]:
        s = self.sizes
        feeder, feed = self._feeder(s.load_count, s.load_symbols)
        try:
            raw = Child("bench.raw", ["sub", "--feed", feed, "--count", str(s.load_count)],
                        log=self._log("raw-sub"))
            try:
                return raw.result(PHASE_TIMEOUT_S)
            finally:
                raw.stop()
        finally:
            feeder.stop()

    def console_load(self) -> dict[str, Any]:
        s = self.sizes
        feeder, feed = self._feeder(s.load_count, s.load_symbols, delay=APP_SETTLE_S)
        try:
            return self._probe("load", feed, s.load_count)
        finally:
            feeder.stop()

    def gateway(self) -> ServiceProcess:
        state = self.workdir / "gateway-state"
        return spawn("gateway", ["gateway", "--bind", "tcp://127.0.0.1:*", "--pub-bind",
                                 "tcp://127.0.0.1:*", "--state-dir", str(state)],
                     log_path=self._log("gateway"), timeout=60.0)

    def raw_latency(self, gateway: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """The reference loops alone: SUB on the paced feed, REQ heartbeats meanwhile."""
        s = self.sizes
        count = int(s.latency_rate * s.latency_seconds)
        feeder, feed = self._feeder(count, s.load_symbols, s.latency_rate)
        children = [feeder]
        try:
            sub = Child("bench.raw", ["sub", "--latency", "--feed", feed, "--count", str(count)],
                        log=self._log("raw-latency"))
            children.append(sub)
            req = Child("bench.raw", ["req", "--gateway", gateway], log=self._log("raw-req"))
            children.append(req)
            raw = sub.result(PHASE_TIMEOUT_S)
            beats = req.finish(PHASE_TIMEOUT_S)
        finally:
            for child in reversed(children):
                child.stop()
        # Only the round trips taken while the feed flowed, like the console's.
        return raw, rtt_percentiles(beats["samples"], raw["first_wall_ns"], raw["last_wall_ns"])

    def console_latency(self, gateway: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """The console on the paced feed; beside it, the plain REQ loop under the same load."""
        s = self.sizes
        count = int(s.latency_rate * s.latency_seconds)
        feeder, feed = self._feeder(count, s.load_symbols, s.latency_rate, delay=APP_SETTLE_S)
        req = Child("bench.raw", ["req", "--gateway", gateway], log=self._log("raw-req-beside"))
        try:
            result = self._probe("latency", feed, count, "--gateway", gateway,
                                 "--rtts", str(s.heartbeats))
            beats = req.finish(PHASE_TIMEOUT_S)
        finally:
            req.stop()
            feeder.stop()
        return result, rtt_percentiles(beats["samples"], result["first_wall_ns"],
                                       result["last_wall_ns"])

    def rss(self) -> dict[str, Any]:
        s = self.sizes
        feeder, feed = self._feeder(s.rss_count, s.rss_symbols, delay=APP_SETTLE_S)
        try:
            return self._probe("rss", feed, s.rss_count)
        finally:
            feeder.stop()

    def cpu(self) -> dict[str, Any]:
        s = self.sizes
        count = int(s.cpu_rate * s.cpu_seconds)
        feeder, feed = self._feeder(count, s.cpu_symbols, s.cpu_rate, delay=APP_SETTLE_S)
        try:
            result = self._probe("cpu", feed, count, "--rate", str(s.cpu_rate))
            result["feeder"] = feeder.line(DONE_PREFIX, 30.0)
            return result
        finally:
            feeder.stop()

    def raw_cpu(self) -> dict[str, Any]:
        """The reference subscriber's CPU on the same 30k msg/s feed, same window."""
        s = self.sizes
        count = int(s.cpu_rate * s.cpu_seconds)
        feeder, feed = self._feeder(count, s.cpu_symbols, s.cpu_rate, delay=APP_SETTLE_S)
        try:
            raw = Child("bench.raw", ["sub", "--latency", "--feed", feed, "--count", str(count)],
                        log=self._log("raw-cpu"))
            try:
                # The feed starts APP_SETTLE_S after the subscription; measure from
                # 1 s of flow until 0.5 s before its end, like the console's window.
                time.sleep(APP_SETTLE_S + 1.0)
                t0, c0 = time.monotonic(), process_cpu_seconds(raw.popen.pid)
                time.sleep(max(s.cpu_seconds - 1.5, 0.5))
                t1, c1 = time.monotonic(), process_cpu_seconds(raw.popen.pid)
                raw.result(PHASE_TIMEOUT_S)
            finally:
                raw.stop()
        finally:
            feeder.stop()
        return {"cpu_pct": (c1 - c0) / max(t1 - t0, 1e-9) * 100.0, "rate": s.cpu_rate}

    def first_frame(self) -> list[float]:
        publisher = spawn("publisher", ["publisher", "--bind", "tcp://127.0.0.1:*",
                                        "--rate", "200", "--symbols", "50"],
                          log_path=self._log("publisher-ff"), timeout=60.0)
        try:
            return first_frame.measure(str(publisher.endpoints["pub"]),
                                       self.sizes.first_frame_runs)
        finally:
            publisher.stop()

    def _drain(self, feed: str, name: str) -> dict[str, Any]:
        drain = Child("bench.raw", ["drain", "--feed", feed, "--warmup", "1.0", "--seconds",
                                    str(self.sizes.publisher_seconds)], log=self._log(name))
        try:
            return drain.result(PHASE_TIMEOUT_S)
        finally:
            drain.stop()

    def publisher(self) -> tuple[dict[str, Any], dict[str, Any]]:
        project = spawn("publisher", ["publisher", "--bind", "tcp://127.0.0.1:*", "--rate", "0",
                                      "--symbols", "100", "--seed", "1"],
                        log_path=self._log("publisher"), timeout=60.0)
        try:
            ours = self._drain(str(project.endpoints["pub"]), "drain-publisher")
        finally:
            project.stop()
        raw_pub = Child("bench.raw", ["pub", "--symbols", "100"], log=self._log("raw-pub"))
        try:
            raw = self._drain(str(raw_pub.ready()["pub"]), "drain-raw-pub")
        finally:
            raw_pub.stop()
        return ours, raw

    def cost(self) -> list[dict[str, Any]]:
        """The cost table: the console on a pty per feed, beside the raw subscriber's CPU."""
        fps = None if self.fps == SHIPPED_FPS else self.fps
        return cost.run_rows(cost.FEEDS, self.sizes.cost_seconds, self.workdir, fps, self.say)

    # --- the whole run ----------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        d = self.details
        self.say("raw subscriber ...")
        d["raw_sub"] = [self.raw_sub()]
        self.say("console ingest under load (app at 200x50) ...")
        d["console_load"] = self.console_load()
        self.say("raw subscriber again ...")
        d["raw_sub"].append(self.raw_sub())
        self.say("end-to-end latency and heartbeats ...")
        gateway = self.gateway()
        try:
            cmd = str(gateway.endpoints["cmd"])
            d["raw_latency"], d["raw_heartbeat"] = self.raw_latency(cmd)
            d["console_latency"], d["raw_heartbeat_beside"] = self.console_latency(cmd)
        finally:
            gateway.stop()
        self.say("heartbeats: one gateway link, then three with one gateway SIGKILLed ...")
        d["gateway_links"] = gateway_links.measure(self.workdir / "links",
                                                   max(150, self.sizes.heartbeats // 2))
        self.say("memory with 10k symbols ...")
        d["rss"] = self.rss()
        self.say("cpu at 30k msg/s ...")
        d["cpu"] = self.cpu()
        d["raw_cpu"] = self.raw_cpu()
        self.say("first frame ...")
        d["first_frame_s"] = self.first_frame()
        self.say("publisher ...")
        d["publisher"], d["raw_publisher"] = self.publisher()
        self.say("cost: CPU and terminal bytes per feed (console on a pty) ...")
        d["cost"] = self.cost()
        return summarise(d)

    def run_cost(self) -> dict[str, Any]:
        """The cost phase alone (--cost-only)."""
        self.details["cost"] = self.cost()
        result = cost.summarise(self.details["cost"])
        result["goals"] = cost.check_goals(result)
        return result


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def summarise(d: dict[str, Any]) -> dict[str, Any]:
    """The published keys, from the phases' details."""
    raw_rate = statistics.mean(r["msgs_per_s"] for r in d["raw_sub"])
    load = d["console_load"]
    lat, raw_lat = d["console_latency"], d["raw_latency"]
    hb = d["raw_heartbeat"]
    cpu = d["cpu"]
    result: dict[str, Any] = {
        "raw_sub_msgs_per_s": raw_rate,
        "console_ingest_msgs_per_s": load["msgs_per_s"],
        "ingest_ratio": _ratio(load["msgs_per_s"], raw_rate),
        "gaps": load["lost"],
        "fps_under_load": load["fps"],
        "key_latency_ms_p99_under_load": load["key_latency_ms_p99"],
        "e2e_latency_us_p50_console": lat["p50_us"],
        "e2e_latency_us_p99_console": lat["p99_us"],
        "e2e_latency_us_p50_raw": raw_lat["p50_us"],
        "e2e_latency_us_p99_raw": raw_lat["p99_us"],
        "heartbeat_rtt_us_p50_console": lat["rtt_p50_us"],
        "heartbeat_rtt_us_p99_console": lat["rtt_p99_us"],
        "heartbeat_rtt_us_p50_raw": hb["p50_us"],
        "heartbeat_rtt_us_p99_raw": hb["p99_us"],
        # The same plain REQ loop, run beside the console (same machine load).
        "heartbeat_rtt_us_p50_raw_beside_console": d["raw_heartbeat_beside"]["p50_us"],
        "heartbeat_rtt_us_p99_raw_beside_console": d["raw_heartbeat_beside"]["p99_us"],
        # request() to the reply callback in the UI process: the link's pipe included.
        "heartbeat_ui_wait_us_p50": lat.get("ui_wait_p50_us"),
        "heartbeat_ui_wait_us_p99": lat.get("ui_wait_p99_us"),
        "rss_mb_10k_symbols": d["rss"]["rss_mb"],
        "rss_messages": d["rss"]["sent"],
        "first_frame_s": statistics.median(d["first_frame_s"]),
        "publisher_msgs_per_s": d["publisher"]["msgs_per_s"],
        "publisher_ratio": _ratio(d["publisher"]["msgs_per_s"],
                                  d["raw_publisher"]["msgs_per_s"]),
        "raw_publisher_msgs_per_s": d["raw_publisher"]["msgs_per_s"],
        "cpu_pct_30k": cpu["cpu_pct"],
        "cpu_pct_30k_ui": cpu.get("cpu_pct_ui"),
        "cpu_pct_30k_ingest": cpu.get("cpu_pct_ingest"),
        "raw_sub_cpu_pct_30k": d["raw_cpu"]["cpu_pct"],
        "counted_all_30k": cpu["counted_all"],
        **cost.summarise(d["cost"]),
        # Heartbeats to one gateway through its link: alone, then beside two more links
        # of which one's gateway is SIGKILLed part-way (bench.gateway_links).
        "heartbeat_us_p99_one_link": d["gateway_links"]["one_link"]["p99_us"],
        "heartbeat_us_p99_three_links": d["gateway_links"]["three_links_a"]["p99_us"],
        "heartbeat_us_p99_after_kill": d["gateway_links"]["three_links_a_after_kill"]["p99_us"],
        "heartbeat_us_max_three_links": d["gateway_links"]["three_links_a"]["max_us"],
        "heartbeat_p99_ratio_three_to_one_link":
            d["gateway_links"]["p99_ratio_three_to_one"],
        "dead_gateway_down_after_s": d["gateway_links"]["down_after_kill_s"],
    }
    result["goals"] = check_goals(result)
    return result


def check_goals(r: dict[str, Any]) -> dict[str, bool | None]:
    """Each goal of the performance issue: True met, False missed, None not measured."""
    def at_most(value: float | None, limit: float) -> bool | None:
        return None if value is None else value <= limit

    def at_least(value: float | None, limit: float) -> bool | None:
        return None if value is None else value >= limit

    hb_raw = r["heartbeat_rtt_us_p99_raw"]
    return {
        "ingest_ratio >= 0.5 with 0 gaps": (r["ingest_ratio"] or 0) >= 0.5 and r["gaps"] == 0,
        "ingest_ratio >= 0.8 (stretch)": at_least(r["ingest_ratio"], 0.8),
        "fps_under_load >= 10": at_least(r["fps_under_load"], 10),
        "fps_under_load >= 30 (stretch)": at_least(r["fps_under_load"], 30),
        "key_latency_ms_p99_under_load <= 100": at_most(r["key_latency_ms_p99_under_load"], 100),
        "heartbeat p99 <= 2x raw + 0.5 ms": None if hb_raw is None else at_most(
            r["heartbeat_rtt_us_p99_console"], 2 * hb_raw + 500),
        "rss_mb_10k_symbols <= 250": at_most(r["rss_mb_10k_symbols"], 250),
        "first_frame_s <= 1.5": at_most(r["first_frame_s"], 1.5),
        "cpu_pct_30k <= 60": at_most(r["cpu_pct_30k"], 60),
        "counted_all_30k": r["counted_all_30k"],
        **cost.check_goals(r),
    }


# --- output -------------------------------------------------------------------------------


def _num(value: Any, digits: int = 0) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int) or digits == 0:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def table(r: dict[str, Any]) -> str:
    """The result as a Markdown table: console, raw reference, ratio."""
    rows = [
        ("ingest, msg/s (app rendering 200x50)", _num(r["console_ingest_msgs_per_s"]),
         _num(r["raw_sub_msgs_per_s"]), _num(r["ingest_ratio"], 2)),
        ("messages lost (from seq)", _num(r["gaps"]), "-", "-"),
        ("frames per second under load", _num(r["fps_under_load"], 1), "-", "-"),
        ("key to painted frame p99 under load, ms", _num(r["key_latency_ms_p99_under_load"], 1),
         "-", "-"),
        ("end-to-end latency p50 at 10k msg/s, µs", _num(r["e2e_latency_us_p50_console"]),
         _num(r["e2e_latency_us_p50_raw"]),
         _num(_ratio(r["e2e_latency_us_p50_console"], r["e2e_latency_us_p50_raw"]), 2)),
        ("end-to-end latency p99 at 10k msg/s, µs", _num(r["e2e_latency_us_p99_console"]),
         _num(r["e2e_latency_us_p99_raw"]),
         _num(_ratio(r["e2e_latency_us_p99_console"], r["e2e_latency_us_p99_raw"]), 2)),
        ("heartbeat RTT p50, µs", _num(r["heartbeat_rtt_us_p50_console"]),
         _num(r["heartbeat_rtt_us_p50_raw"]),
         _num(_ratio(r["heartbeat_rtt_us_p50_console"], r["heartbeat_rtt_us_p50_raw"]), 2)),
        ("heartbeat RTT p99, µs", _num(r["heartbeat_rtt_us_p99_console"]),
         _num(r["heartbeat_rtt_us_p99_raw"]),
         _num(_ratio(r["heartbeat_rtt_us_p99_console"], r["heartbeat_rtt_us_p99_raw"]), 2)),
        ("heartbeat RTT p99 beside the console (same load), µs",
         _num(r["heartbeat_rtt_us_p99_console"]),
         _num(r["heartbeat_rtt_us_p99_raw_beside_console"]),
         _num(_ratio(r["heartbeat_rtt_us_p99_console"],
                     r["heartbeat_rtt_us_p99_raw_beside_console"]), 2)),
        ("heartbeat p50 / p99 from request() to reply callback in the UI process, µs",
         f"{_num(r['heartbeat_ui_wait_us_p50'])} / {_num(r['heartbeat_ui_wait_us_p99'])}",
         "-", "-"),
        (f"RSS after {r['rss_messages']:,} msgs over 10k symbols, MB",
         _num(r["rss_mb_10k_symbols"], 1), "-", "-"),
        ("first painted frame, s", _num(r["first_frame_s"], 2), "-", "-"),
        ("CPU at 30k msg/s over 2000 symbols, % of a core", _num(r["cpu_pct_30k"], 1),
         _num(r["raw_sub_cpu_pct_30k"], 1), _num(_ratio(r["cpu_pct_30k"],
                                                        r["raw_sub_cpu_pct_30k"]), 2)),
        ("… of which the UI process / the ingest process", f"{_num(r['cpu_pct_30k_ui'], 1)} / "
         f"{_num(r['cpu_pct_30k_ingest'], 1)}", "-", "-"),
        ("feeds panel counted every message at 30k msg/s", _num(r["counted_all_30k"]), "-",
         "-"),
        ("heartbeat p99 through one gateway link, µs", _num(r["heartbeat_us_p99_one_link"]),
         "-", "-"),
        ("… through three links, one gateway SIGKILLed meanwhile (ratio to one link), µs",
         _num(r["heartbeat_us_p99_three_links"]), _num(r["heartbeat_us_p99_one_link"]),
         _num(r["heartbeat_p99_ratio_three_to_one_link"], 2)),
        ("… slowest of them, µs; the dead gateway shown DOWN after, s",
         _num(r["heartbeat_us_max_three_links"]), _num(r["dead_gateway_down_after_s"], 2), "-"),
        ("publisher --rate 0, msg/s", _num(r["publisher_msgs_per_s"]),
         _num(r["raw_publisher_msgs_per_s"]), _num(r["publisher_ratio"], 2)),
    ]
    lines = ["| measure | console | raw pyzmq | ratio |", "|---|---:|---:|---:|"]
    lines += [f"| {a} | {b} | {c} | {e} |" for a, b, c, e in rows]
    lines += ["", cost.table(r)]
    lines += ["", "| goal | met |", "|---|---|"]
    lines += [f"| {goal} | {_num(met)} |" for goal, met in r["goals"].items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/run.py", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller phases, under a minute")
    parser.add_argument("--json", metavar="OUT", type=Path, help="write the results here")
    parser.add_argument("--fps", type=int, default=SHIPPED_FPS,
                        help="the console's frame rate during the run (default 20, as shipped)")
    parser.add_argument("--cost-only", action="store_true",
                        help="run only the cost table (CPU and terminal bytes per feed)")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    started = time.monotonic()

    def say(text: str) -> None:
        print(f"[{time.monotonic() - started:5.1f}s] {text}", file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="tc-bench-") as tmp:
        bench = Bench(sizes, Path(tmp), args.fps, say)
        try:
            result = bench.run_cost() if args.cost_only else bench.run()
        except Exception as exc:
            print(f"bench failed: {exc}", file=sys.stderr)
            return 1
    result["run"] = {
        "quick": args.quick, "fps": args.fps, "seconds": round(time.monotonic() - started, 1),
        "cpus": os.cpu_count(), "load_average_at_end": os.getloadavg(),
        "python": sys.version.split()[0],
    }
    result["details"] = bench.details
    if args.cost_only:
        print(cost.table(result) + "\n\n" + cost.goals_table(result["goals"]))
    else:
        print(table(result))
    write_result(result, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
