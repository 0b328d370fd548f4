"""`tradeconsole status`: one-shot health of the feeds and the gateway (exit 0/1/2/3).

Listens to every feed with the console's own ingest while it asks the gateway
for a HEARTBEAT (liveness, RTT) and GET_STATUS (trading state, incident), then
judges: a feed not OK, a node not reporting OK or a LATE or refusing gateway
is DEGRADED (1), no reply at all is GATEWAY_DOWN (3). HALTED is a trading
state, not a health problem.

The alert rules of `[alerts]` are evaluated over the listening window, as the
console would: a condition that held for its rule's `for` is reported firing,
one that holds but not yet for that long pending. Alerts never change the
exit code, and `status` runs no alert hooks.
"""

from __future__ import annotations

import argparse
import math
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from console.cli.scripting import (
    EXIT_DEGRADED,
    EXIT_GATEWAY_DOWN,
    EXIT_OK,
    JSON_VERSION,
    GatewayTarget,
    add_gateway_arguments,
    error_text,
    gateway_targets,
    load,
    print_json,
    str_or_none,
)
from console.model import FEED_OK, GW_DOWN, GW_LATE, GW_UP, FeedRow
from console.watch.observation import GatewayObservation, Observation
from console.watch.rules import check_alert_settings
from console.watch.watcher import AlertWatch
from services import protocol as p
from services.runtime.config import Config
from services.runtime.errors import UsageError

HEALTH_OK = "OK"
HEALTH_DEGRADED = "DEGRADED"
HEALTH_GATEWAY_DOWN = "GATEWAY_DOWN"

DEFAULT_STATUS_SECONDS = 2.0
# A rate needs at least this much listening: one telemetry interval, so a feed
# carrying only telemetry (the gateway's PUB) still shows as active.
MIN_RATE_WINDOW_S = 1.0
POLL_S = 0.05


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--feed", action="append", metavar="EP",
                        help="feed endpoint to check (repeatable; default [endpoints] feeds)")
    parser.add_argument("--seconds", type=float, metavar="S", default=DEFAULT_STATUS_SECONDS,
                        help=f"listen to the feeds at most this long (default "
                             f"{DEFAULT_STATUS_SECONDS:g}; ends after ~1 s once every feed "
                             f"has shown activity)")
    add_gateway_arguments(parser, skippable=True)


# --- the gateway ----------------------------------------------------------------------------


@dataclass(slots=True)
class GatewayReport:
    """What one HEARTBEAT + GET_STATUS said about the gateway."""

    endpoint: str
    state: str                            # UP / LATE / DOWN
    name: str = ""
    rtt_ms: float | None = None
    node: str | None = None
    uptime_s: float | None = None
    trading_state: str | None = None
    incident_id: str | None = None
    halted_reason: str | None = None
    error: dict[str, Any] | None = None   # a REJECTED/ERROR reply's {code, message}
    problems: list[str] = field(default_factory=list)  # why it counts against health

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name, "endpoint": self.endpoint, "state": self.state,
            "rtt_ms": self.rtt_ms,
            "node": self.node, "uptime_s": self.uptime_s, "trading_state": self.trading_state,
            "incident_id": self.incident_id, "halted_reason": self.halted_reason,
            "error": self.error,
        }


def probe_gateway(target: GatewayTarget) -> GatewayReport:
    """HEARTBEAT for liveness and RTT, then GET_STATUS for the incident."""
    report = GatewayReport(endpoint=target.endpoint, state=GW_DOWN, name=target.name)
    beat = target.request(p.HEARTBEAT)
    if not beat.delivered:
        report.problems.append(f"gateway {target.name}: {target.no_reply()}")
        return report
    report.rtt_ms = beat.rtt_ms
    late = beat.rtt_ms is not None and beat.rtt_ms > target.late_ms
    report.state = GW_LATE if late else GW_UP
    if late:
        report.problems.append(f"gateway is LATE: heartbeat took {beat.rtt_ms:.3f} ms "
                               f"(limit {target.late_ms:g} ms)")
    if not beat.ok or not isinstance(beat.data, dict):
        report.error = beat.error
        report.problems.append(f"gateway answered HEARTBEAT with {error_text(beat)}")
        return report
    report.node = str_or_none(beat.data.get("node"))
    uptime = beat.data.get("uptime_s")
    report.uptime_s = float(uptime) if p.is_finite_number(uptime) else None
    report.trading_state = str_or_none(beat.data.get("trading_state"))
    status = target.request(p.GET_STATUS)
    if not status.delivered:
        report.problems.append(
            f"gateway answered HEARTBEAT but not GET_STATUS ({target.no_reply()})")
    elif not status.ok or not isinstance(status.data, dict):
        report.error = status.error
        report.problems.append(f"gateway answered GET_STATUS with {error_text(status)}")
    else:
        report.trading_state = str_or_none(status.data.get("trading_state")) \
            or report.trading_state
        report.incident_id = str_or_none(status.data.get("incident_id"))
        report.halted_reason = str_or_none(status.data.get("reason"))
    return report


# --- the feeds ------------------------------------------------------------------------------


class FeedCheck:
    """Listens to the feeds with the console's ingest until they can be judged."""

    def __init__(self, endpoints: Sequence[str], config: Config, keys_dir: str | None) -> None:
        from console.feed.ingest import Ingest  # lazy: keeps --help fast

        self.ingest = Ingest(endpoints, config=config, keys_dir=keys_dir)
        self.started = time.monotonic()
        self.rows: list[FeedRow] = []

    def __enter__(self) -> FeedCheck:
        self.ingest.start()  # a bad endpoint raises UsageError here
        self.started = time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        self.ingest.stop()

    @property
    def elapsed_s(self) -> float:
        return time.monotonic() - self.started

    def listen(self, seconds: float,
               each: Callable[[list[FeedRow], float], None] | None = None) -> float:
        """Collect until every feed was heard and a rate is meaningful, or `seconds` pass.

        `each(rows, monotonic seconds)` sees every drain (the alert rules do).
        """
        wake = threading.Event()
        while True:
            self.rows = self.ingest.drain().feeds
            if each is not None:
                each(self.rows, time.monotonic())
            elapsed = self.elapsed_s
            heard_all = all(row.received > 0 for row in self.rows)
            if elapsed >= seconds or (heard_all and elapsed >= MIN_RATE_WINDOW_S):
                return elapsed
            wake.wait(min(POLL_S, seconds - elapsed))


def feed_json(row: FeedRow, window_s: float, now_ns: int) -> dict[str, Any]:
    ago = None if row.last_seen_ns is None \
        else round(max(0.0, (now_ns - row.last_seen_ns) / 1e9), 3)
    return {
        "endpoint": row.endpoint, "state": row.state, "connection": row.connection,
        "msgs_per_s": round(row.received / window_s, 3) if window_s > 0 else 0.0,
        "received": row.received, "rejected": row.rejected, "gaps": row.gaps,
        "restarts": row.restarts, "last_seen_ago_s": ago, "nodes": dict(row.health),
    }


def probe_gateways(targets: Sequence[GatewayTarget]) -> list[GatewayReport]:
    """Every gateway at once: a dead one's retries do not delay the others."""
    if len(targets) <= 1:
        return [probe_gateway(t) for t in targets]
    with ThreadPoolExecutor(max_workers=len(targets)) as pool:
        return list(pool.map(probe_gateway, targets))


def gateway_observation(report: GatewayReport) -> GatewayObservation:
    """The gateway as the alert rules see it."""
    return GatewayObservation(name=report.name or report.endpoint, endpoint=report.endpoint,
                              state=report.state, rtt_ms=report.rtt_ms,
                              trading_state=report.trading_state,
                              incident_id=report.incident_id)


# --- judgement and output -------------------------------------------------------------------


def assess(feeds: list[dict[str, Any]], gateways: Sequence[GatewayReport]
           ) -> tuple[int, list[str]]:
    """Exit code and the reasons for it: the worst of the feeds and every gateway
    (one DOWN gateway is exit 3). HALTED is a trading state, not a health problem."""
    problems: list[str] = []
    for feed in feeds:
        if feed["state"] != FEED_OK:
            heard = "never heard from" if feed["last_seen_ago_s"] is None \
                else f"silent for {feed['last_seen_ago_s']:.1f} s"
            problems.append(f"feed {feed['endpoint']} is {feed['state']} ({heard}, "
                            f"{feed['connection']})")
        for node, health in sorted(feed["nodes"].items()):
            if health != p.HEALTH_OK:
                problems.append(f"node {node} on {feed['endpoint']} reports {health}")
    for gateway in gateways:
        problems += gateway.problems
    if any(gateway.state == GW_DOWN for gateway in gateways):
        return EXIT_GATEWAY_DOWN, problems
    return (EXIT_DEGRADED if problems else EXIT_OK), problems


def run(args: argparse.Namespace) -> int:
    config = load(args)
    check_alert_settings(config.settings.alerts)
    if not (math.isfinite(args.seconds) and args.seconds > 0):
        raise UsageError(f"--seconds must be a number > 0, got {args.seconds:g}")
    targets = gateway_targets(args, config)
    endpoints = list(args.feed or config.settings.endpoints.feeds)
    if not endpoints:
        raise UsageError("no feed endpoint: give --feed EP or set [endpoints] feeds")
    watch = AlertWatch(config.settings.alerts, send_hooks=False)
    with FeedCheck(endpoints, config, args.keys) as check:
        gateways = probe_gateways(targets)
        observed_gateways = [gateway_observation(g) for g in gateways]

        def evaluate(rows: list[FeedRow], now_s: float) -> None:
            watch.observe(Observation(now_s=now_s, feeds=rows, gateways=observed_gateways))

        window = check.listen(args.seconds, evaluate if watch.enabled else None)
        now_ns = time.monotonic_ns()
        feeds = [feed_json(row, window, now_ns) for row in check.rows]
    alerts = [a.as_json(now_ns / 1e9) for a in (*watch.firing(), *watch.pending())]
    code, problems = assess(feeds, gateways)
    health = {EXIT_OK: HEALTH_OK, EXIT_DEGRADED: HEALTH_DEGRADED}.get(code, HEALTH_GATEWAY_DOWN)
    if args.json:
        print_json({
            "v": JSON_VERSION, "health": health, "exit_code": code, "problems": problems,
            "listened_s": round(window, 3), "feeds": feeds,
            # "gateway" is the first one, as before several gateways were possible.
            "gateway": gateways[0].as_json() if gateways else None,
            "gateways": [g.as_json() for g in gateways],
            "alerts": alerts,
        })
    else:
        sys.stdout.write(render_status(feeds, gateways, health, problems, alerts))
    return code


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
            for row in (header, *rows)]


def render_status(feeds: list[dict[str, Any]], gateways: Sequence[GatewayReport], health: str,
                  problems: list[str], alerts: Sequence[dict[str, Any]] = ()) -> str:
    feed_rows = [
        (f["endpoint"], f["state"], f"{f['msgs_per_s']:.1f}",
         "never" if f["last_seen_ago_s"] is None else f"{f['last_seen_ago_s']:.1f}s ago",
         str(f["gaps"]),
         ", ".join(f"{n} {h}" for n, h in sorted(f["nodes"].items())) or "-")
        for f in feeds
    ]
    lines = _table(("FEED", "STATE", "MSGS/S", "LAST SEEN", "GAPS", "NODES"), feed_rows)
    lines.append("")
    if not gateways:
        lines.append("GATEWAY  not checked (--gateway none)")
    else:
        rows = []
        for gateway in gateways:
            rtt = "-" if gateway.rtt_ms is None else f"{gateway.rtt_ms:.3f} ms"
            trading = gateway.trading_state or "-"
            if gateway.incident_id:
                trading += f" (incident {gateway.incident_id})"
            rows.append((gateway.name or "-", gateway.endpoint, gateway.state, rtt,
                         gateway.node or "-", trading))
        lines += _table(("GATEWAY", "ENDPOINT", "STATE", "RTT", "NODE", "TRADING"), rows)
    if alerts:
        lines.append("")
        lines += _table(("ALERT", "SEVERITY", "STATE", "MESSAGE"),
                        [(a["rule"], a["severity"], a["state"], a["message"]) for a in alerts])
    lines.append("")
    lines.append(f"health: {health}")
    lines += [f"  - {problem}" for problem in problems]
    return "\n".join(lines) + "\n"
