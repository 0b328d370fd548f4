"""Kill latency under an order flood: does a flood of OPEN_ORDER delay KILL_SWITCH?

    .venv/bin/python bench/kill_flood.py [--quick] [--json OUT] [--flooders N] [--cycles N]
                                         [--window N] [--active-ms MS]

The goal (docs/gateway.md): a KILL_SWITCH reply within 100 ms p99 while
clients flood the gateway with orders. Everything is real: the project's
publisher (a modest simulated feed) and gateway run as child processes on
free ports, the gateway with its own temporary state directory (so every
commit really fsyncs) and with the per-client rate limit off
(`TRADECONSOLE_GATEWAY__RATE_LIMIT_PER_S=0`) so that the flood reaches it.

Method:

1. wait until the gateway can price a market order (GET_SNAPSHOT shows a
   bid and an ask for the symbol used);
2. **baseline**: a REQ client runs cycles of KILL_SWITCH (mode HALT) ->
   RESUME_TRADING (with the incident id), and HEARTBEATs in the pause
   between cycles, with nothing else talking to the gateway;
3. **flood**: N flooder processes each keep up to `--window` OPEN_ORDERs in
   flight on a DEALER socket (a new one for every reply), LIMIT orders far
   from the market so they rest; after a warm-up the same REQ client runs
   the same cycles. Orders rest between kills, so each KILL also cancels
   everything that accumulated since the previous RESUME: that is part of
   what a kill costs, and the count is reported per kill.

Round trips are timed by the REQ client around send and receive. The flood
rate is counted by the flooders (replies received, by 100 ms bucket of the
system-wide monotonic clock) and summed over the flood phase's cycles only.

Flooders are processes, not threads: the timing client lives in this
process, and a flooder thread sharing its interpreter would hold the GIL
while packing and unpacking, so a kill reply that had already arrived would
wait up to a switch interval (5 ms) or more before being timestamped; the
measurement would then include our own client's contention, not the
gateway's. Separate processes compete only for CPU, which is the honest
situation of a gateway serving several clients (on 2 cores the flooders
still compete with the gateway for CPU; the load average is reported).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import zmq

from bench.procs import Child, child_env, emit_result
from bench.stats import percentile, write_result
from services import protocol as p
from services.runtime.launcher import ServiceProcess, spawn
from services.runtime.sockets import READY_PREFIX

GOAL_P99_MS = 100.0
REPLY_TIMEOUT_S = 15.0
# Client-side decode limits for the bench itself: a kill reply listing many
# cancelled orders may exceed the protocol's default limits (that is reported).
GENEROUS_LIMITS = p.Limits(max_msg_size=1 << 30, max_str_len=1 << 20,
                           max_container_len=1 << 24)
BUCKETS_PER_S = 10


@dataclass(frozen=True)
class Sizes:
    """How long each phase runs; --quick keeps the whole run near a minute."""

    baseline_cycles: int
    flood_cycles: int
    active_s: float        # pause between a RESUME and the next KILL (orders rest meanwhile)
    warmup_s: float        # flood before the first measured kill


FULL = Sizes(baseline_cycles=100, flood_cycles=400, active_s=0.25, warmup_s=2.0)
QUICK = Sizes(baseline_cycles=30, flood_cycles=100, active_s=0.2, warmup_s=1.0)


class BenchError(RuntimeError):
    """The run could not be measured (a service did not answer in time)."""


# --- the flooder (a child process: python -m bench.kill_flood --flooder ...) -----------------


def _decisecond() -> int:
    return int(time.monotonic() * BUCKETS_PER_S)


def run_flooder(gateway: str, symbol: str, price: float, window: int) -> int:
    """Keep `window` OPEN_ORDERs in flight until stdin closes; then print the counts."""
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SNDHWM, window * 4)
    sock.connect(gateway)
    client_id = f"flooder-{os.getpid()}"
    # Far from the market both ways: the orders rest (and the kill has to cancel them).
    prices = {p.BUY: max(0.01, round(price * 0.5, 2)), p.SELL: round(price * 2.0, 2) + 0.01}
    sides = (p.BUY, p.SELL)
    poller = zmq.Poller()
    poller.register(sock, zmq.POLLIN)
    stdin_fd = sys.stdin.fileno()
    poller.register(stdin_fd, zmq.POLLIN)
    sent = answered = 0
    statuses: Counter[str] = Counter()
    buckets: Counter[int] = Counter()
    in_flight = 0
    announced = False
    try:
        while True:
            while in_flight < window:
                side = sides[sent & 1]
                request = p.make_request(p.OPEN_ORDER, {
                    "vt_symbol": symbol, "side": side, "qty": 1.0, "type": p.LIMIT,
                    "price": prices[side]}, client_id=client_id)
                sock.send(p.packb(request))
                sent += 1
                in_flight += 1
            ready = dict(poller.poll(1000))
            if stdin_fd in ready and not os.read(stdin_fd, 4096):
                break
            while True:
                try:
                    raw = sock.recv(zmq.NOBLOCK)
                except zmq.Again:
                    break
                in_flight -= 1
                answered += 1
                buckets[_decisecond()] += 1
                try:
                    reply = p.decode_reply(raw, GENEROUS_LIMITS)
                except p.DecodeError:
                    statuses["undecodable"] += 1
                    continue
                error = reply.get("error") or {}
                statuses[f"{reply['status']}/{error.get('code', '')}".rstrip("/")] += 1
            if not announced and answered:
                sys.stdout.write(READY_PREFIX + json.dumps({"client_id": client_id}) + "\n")
                sys.stdout.flush()
                announced = True
    finally:
        sock.close()
        ctx.term()
    emit_result({"client_id": client_id, "sent": sent, "answered": answered,
                 "statuses": dict(statuses), "buckets": {str(k): v for k, v in buckets.items()}})
    return 0


# --- the timing client -----------------------------------------------------------------------


class TimedClient:
    """A REQ socket that times each request from send to reply (ms)."""

    def __init__(self, ctx: zmq.Context, gateway: str, client_id: str) -> None:
        self.sock = ctx.socket(zmq.REQ)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(gateway)
        self.client_id = client_id
        self.over_default_limits = 0

    def call(self, action: str, payload: dict[str, Any] | None = None) -> tuple[float,
                                                                             dict[str, Any]]:
        data = p.packb(p.make_request(action, payload, client_id=self.client_id))
        start = time.perf_counter()
        self.sock.send(data)
        if not self.sock.poll(int(REPLY_TIMEOUT_S * 1000)):
            raise BenchError(f"{action}: no reply within {REPLY_TIMEOUT_S:.0f}s")
        raw = self.sock.recv()
        elapsed_ms = (time.perf_counter() - start) * 1000.0
        try:
            reply = p.decode_reply(raw)
        except p.DecodeError:  # e.g. more cancelled ids than max_container_len
            self.over_default_limits += 1
            reply = p.decode_reply(raw, GENEROUS_LIMITS)
        return elapsed_ms, reply

    def close(self) -> None:
        self.sock.close()


def _expect_success(action: str, reply: dict[str, Any]) -> dict[str, Any]:
    if reply["status"] != p.SUCCESS:
        raise BenchError(f"{action} answered {reply['status']}: {reply.get('error')}")
    return reply["data"] or {}


@dataclass
class PhaseSamples:
    kill_ms: list[float]
    resume_ms: list[float]
    heartbeat_ms: list[float]
    cancelled: list[int]
    started_mono: float = 0.0
    ended_mono: float = 0.0


def run_cycles(client: TimedClient, cycles: int, active_s: float) -> PhaseSamples:
    """HEARTBEATs for `active_s`, then KILL (HALT) -> RESUME; `cycles` times."""
    samples = PhaseSamples([], [], [], [], started_mono=time.monotonic())
    for _ in range(cycles):
        until = time.monotonic() + active_s
        while time.monotonic() < until:
            ms, reply = client.call(p.HEARTBEAT)
            _expect_success(p.HEARTBEAT, reply)
            samples.heartbeat_ms.append(ms)
            time.sleep(0.02)  # pacing only: a heartbeat every ~20 ms, not a flood of its own
        ms, reply = client.call(p.KILL_SWITCH, {"reason": "bench kill_flood", "mode": p.HALT})
        data = _expect_success(p.KILL_SWITCH, reply)
        if data.get("already_halted"):
            raise BenchError("KILL_SWITCH found trading already halted")
        samples.kill_ms.append(ms)
        samples.cancelled.append(len(data.get("cancelled_orders") or []))
        ms, reply = client.call(p.RESUME_TRADING, {"incident_id": data["incident_id"],
                                                   "reason": "bench kill_flood"})
        _expect_success(p.RESUME_TRADING, reply)
        samples.resume_ms.append(ms)
    samples.ended_mono = time.monotonic()
    return samples


# --- orchestration ----------------------------------------------------------------------------


def wait_for_price(client: TimedClient, timeout: float = 30.0) -> tuple[str, float]:
    """A symbol with a bid and an ask in the gateway: market orders can be priced."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _, reply = client.call(p.GET_SNAPSHOT)
        ticks = (_expect_success(p.GET_SNAPSHOT, reply).get("ticks") or {})
        for symbol, tick in sorted(ticks.items()):
            bid, ask = tick.get("bid_price_1"), tick.get("ask_price_1")
            if isinstance(bid, float | int) and isinstance(ask, float | int) and bid > 0 < ask:
                return symbol, (float(bid) + float(ask)) / 2.0
        time.sleep(0.1)
    raise BenchError(f"the gateway had no priced symbol within {timeout:.0f}s")


def summarise(values: Sequence[float]) -> dict[str, float | int | None]:
    ordered = sorted(values)
    return {"n": len(ordered), "p50": percentile(ordered, 0.50),
            "p99": percentile(ordered, 0.99), "max": ordered[-1] if ordered else None}


def flood_rate(results: Sequence[dict[str, Any]], start: float, end: float) -> float:
    """Orders answered per second over [start, end] (monotonic s), all flooders together."""
    first, last = int(start * BUCKETS_PER_S), int(end * BUCKETS_PER_S)
    if last <= first:
        return 0.0
    total = sum(count for result in results for key, count in result["buckets"].items()
                if first <= int(key) < last)
    return total * BUCKETS_PER_S / (last - first)


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


class KillFlood:
    """Starts the services and flooders, runs the phases, collects the numbers."""

    def __init__(self, sizes: Sizes, flooders: int, window: int, workdir: Path,
                 say: Callable[[str], None]) -> None:
        self.sizes = sizes
        self.flooders = flooders
        self.window = window
        self.workdir = workdir
        self.say = say

    def _spawn(self, name: str, args: list[str], env: dict[str, str] | None = None
               ) -> ServiceProcess:
        return spawn(name, [name, *args], log_path=self.workdir / f"{name}.log", env=env,
                     timeout=60.0)

    def run(self) -> dict[str, Any]:
        result: dict[str, Any] = {"load_at_start": load()}
        publisher = self._spawn("publisher", ["--bind", "tcp://127.0.0.1:*", "--rate", "200",
                                              "--symbols", "20"])
        gateway: ServiceProcess | None = None
        ctx = zmq.Context()
        client: TimedClient | None = None
        try:
            env = child_env({"TRADECONSOLE_GATEWAY__RATE_LIMIT_PER_S": "0"})
            gateway = self._spawn("gateway", [
                "--bind", "tcp://127.0.0.1:*", "--pub-bind", "tcp://127.0.0.1:*",
                "--feed", str(publisher.endpoints["pub"]),
                "--state-dir", str(self.workdir / "gateway-state")], env)
            cmd = str(gateway.endpoints["cmd"])
            client = TimedClient(ctx, cmd, "bench-kill")
            symbol, price = wait_for_price(client)
            result["symbol"], result["reference_price"] = symbol, round(price, 4)
            self.say(f"gateway prices {symbol} at {price:.2f}; baseline "
                     f"{self.sizes.baseline_cycles} cycles")
            baseline = run_cycles(client, self.sizes.baseline_cycles, self.sizes.active_s)
            result["load_after_baseline"] = load()
            result["baseline"] = self._phase(baseline)
            self.say(f"flood: {self.flooders} flooder processes x {self.window} in flight, "
                     f"{self.sizes.flood_cycles} cycles")
            result["flood"] = self._flood(cmd, symbol, price, client)
            result["kill_replies_over_default_limits"] = client.over_default_limits
            result["load_at_end"] = load()
        finally:
            if client is not None:
                client.close()
            ctx.term()
            if gateway is not None:
                gateway.stop()
            publisher.stop()
        return result

    def _flood(self, cmd: str, symbol: str, price: float,
               client: TimedClient) -> dict[str, Any]:
        children: list[Child] = []
        results: list[dict[str, Any]] = []
        try:
            for _ in range(self.flooders):
                children.append(Child("bench.kill_flood", [
                    "--flooder", cmd, "--symbol", symbol, "--price", repr(price),
                    "--window", str(self.window)], log=self.workdir / "flooder.log"))
            for child in children:
                child.ready(60.0)
            time.sleep(self.sizes.warmup_s)  # warm-up: the flood reaches its steady state
            samples = run_cycles(client, self.sizes.flood_cycles, self.sizes.active_s)
            for child in children:
                assert child.popen.stdin is not None
                child.popen.stdin.close()
            results = [child.result(30.0) for child in children]
        finally:
            for child in children:
                child.stop()
        phase = self._phase(samples)
        statuses: Counter[str] = Counter()
        for flooder in results:
            statuses.update(flooder["statuses"])
        phase["orders_answered_per_s"] = round(
            flood_rate(results, samples.started_mono, samples.ended_mono), 1)
        phase["orders_sent"] = sum(r["sent"] for r in results)
        phase["orders_answered"] = sum(r["answered"] for r in results)
        phase["order_replies"] = dict(statuses)
        return phase

    @staticmethod
    def _phase(samples: PhaseSamples) -> dict[str, Any]:
        kill = summarise(samples.kill_ms)
        return {"seconds": round(samples.ended_mono - samples.started_mono, 1),
                "kill_ms": kill, "resume_ms": summarise(samples.resume_ms),
                "heartbeat_ms": summarise(samples.heartbeat_ms),
                "cancelled_per_kill": summarise(samples.cancelled),
                "kill_p99_within_goal": kill["p99"] is not None and kill["p99"] <= GOAL_P99_MS,
                "kills": [[round(ms, 3), n] for ms, n in zip(samples.kill_ms, samples.cancelled,
                                                             strict=True)]}


# --- report ----------------------------------------------------------------------------------


def _ms(stats: dict[str, Any]) -> str:
    if not stats["n"]:
        return "-"
    return f"{stats['p50']:.1f} / {stats['p99']:.1f} / {stats['max']:.1f}"


def _counts(stats: dict[str, Any]) -> str:
    return f"{stats['p50']:.0f} / {stats['max']:.0f}" if stats["n"] else "-"


def table(result: dict[str, Any]) -> str:
    base, flood = result["baseline"], result["flood"]
    rows = [
        ("KILL_SWITCH RTT ms p50 / p99 / max", _ms(base["kill_ms"]), _ms(flood["kill_ms"])),
        ("RESUME_TRADING RTT ms p50 / p99 / max", _ms(base["resume_ms"]),
         _ms(flood["resume_ms"])),
        ("HEARTBEAT RTT ms p50 / p99 / max", _ms(base["heartbeat_ms"]),
         _ms(flood["heartbeat_ms"])),
        ("kills measured", str(base["kill_ms"]["n"]), str(flood["kill_ms"]["n"])),
        ("orders cancelled per kill p50 / max", _counts(base["cancelled_per_kill"]),
         _counts(flood["cancelled_per_kill"])),
        ("orders answered per s (all flooders)", "-", f"{flood['orders_answered_per_s']:.0f}"),
        (f"kill p99 <= {GOAL_P99_MS:.0f} ms", "yes" if base["kill_p99_within_goal"] else "NO",
         "yes" if flood["kill_p99_within_goal"] else "NO"),
    ]
    lines = ["| measure | baseline (no flood) | under flood |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    run = result["run"]
    lines.append("")
    lines.append(f"flooders: {run['flooders']} processes x {run['window']} in flight; "
                 f"order replies: {flood['order_replies']}")
    lines.append(f"kill replies over the default decode limits: "
                 f"{result['kill_replies_over_default_limits']}")
    lines.append(f"load average (1/5/15 min): start {result['load_at_start']}, "
                 f"end {result['load_at_end']}; {run['cpus']} CPUs; {run['seconds']} s")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="about a minute")
    parser.add_argument("--json", type=Path, metavar="OUT", help="write the figures here")
    parser.add_argument("--flooders", type=int, default=2, metavar="N",
                        help="flooder processes (default 2)")
    parser.add_argument("--cycles", type=int, metavar="N",
                        help="kill/resume cycles under flood (default 400, --quick 100)")
    parser.add_argument("--window", type=int, default=200, metavar="N",
                        help="OPEN_ORDERs in flight per flooder (default 200)")
    parser.add_argument("--active-ms", type=int, metavar="MS",
                        help="trading time between a RESUME and the next KILL, while orders "
                             "accumulate (default 250, --quick 200)")
    # the flooder child (internal)
    parser.add_argument("--flooder", metavar="EP", help=argparse.SUPPRESS)
    parser.add_argument("--symbol", help=argparse.SUPPRESS)
    parser.add_argument("--price", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.flooder:
        return run_flooder(args.flooder, args.symbol, args.price, args.window)
    for flag, value in (("--flooders", args.flooders), ("--window", args.window),
                        ("--cycles", args.cycles if args.cycles is not None else 1),
                        ("--active-ms", args.active_ms if args.active_ms is not None else 1)):
        if value < 1:
            parser.error(f"{flag} must be an integer >= 1")
    sizes = QUICK if args.quick else FULL
    if args.cycles is not None:
        sizes = replace(sizes, flood_cycles=args.cycles)
    if args.active_ms is not None:
        sizes = replace(sizes, active_s=args.active_ms / 1000.0)
    started = time.monotonic()

    def say(text: str) -> None:
        print(f"[{time.monotonic() - started:5.1f}s] {text}", file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="tc-killflood-") as tmp:
        try:
            result = KillFlood(sizes, args.flooders, args.window, Path(tmp), say).run()
        except Exception as exc:
            print(f"kill_flood failed: {exc}", file=sys.stderr)
            with contextlib.suppress(OSError):
                for log in sorted(Path(tmp).glob("*.log")):
                    tail = log.read_text(errors="replace").strip().splitlines()[-3:]
                    if tail:
                        print(f"{log.name}: " + " | ".join(tail), file=sys.stderr)
            return 1
    result["run"] = {"quick": args.quick, "flooders": args.flooders, "window": args.window,
                     "active_s": sizes.active_s, "seconds": round(time.monotonic() - started, 1),
                     "cpus": os.cpu_count(), "python": sys.version.split()[0]}
    print(table(result))
    write_result(result, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
