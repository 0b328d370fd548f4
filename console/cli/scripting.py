"""`tradeconsole status | heartbeat | kill | resume`: the fabric from a shell script.

Each command does one thing, prints a small table (or one JSON object with
`--json`) and ends with an exit code a script can branch on:

    0 healthy / done, 1 degraded or refused by the gateway,
    2 usage or config error (nothing sent), 3 gateway down (no reply).

They reuse the console's data layer: `console.feed.ingest.Ingest` listens to the
feeds, `console.link.client.request_once` sends a request the Lazy Pirate
way (a retry reuses the same req_id, so a kill is never fired twice). The
exit codes and the JSON shapes are documented in docs/scripting.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from console.model import FEED_OK, GW_DOWN, GW_LATE, GW_UP, FeedRow, Reply
from services import protocol as p
from services.runtime.config import Config, load_for_args
from services.runtime.errors import UsageError
from services.runtime.logsetup import LEVELS

log = logging.getLogger("tradeconsole.scripting")

EXIT_OK = 0
EXIT_DEGRADED = 1
EXIT_USAGE = 2
EXIT_GATEWAY_DOWN = 3

HEALTH_OK = "OK"
HEALTH_DEGRADED = "DEGRADED"
HEALTH_GATEWAY_DOWN = "GATEWAY_DOWN"

JSON_VERSION = 1
DEFAULT_STATUS_SECONDS = 2.0
# A rate needs at least this much listening: one telemetry interval, so a feed
# carrying only telemetry (the gateway's PUB) still shows as active.
MIN_RATE_WINDOW_S = 1.0
POLL_S = 0.05
MAX_TEXT = 1024  # longest reason / incident id the gateway accepts (protocol text limit)

EXIT_CODES_HELP = """\
exit codes:
  0  healthy (status), replied (heartbeat), done (kill, resume)
  1  degraded: a feed STALE or DOWN, a node reporting DEGRADED/DOWN, the gateway
     LATE, or the gateway answered REJECTED/ERROR (the code is printed)
  2  usage or config error; nothing was sent
  3  gateway down: no reply after every retry
A HALTED gateway is a trading state, not a health problem: status still exits 0
and shows HALTED (check .gateway.trading_state in --json output).
See docs/scripting.md."""


# --- command line -------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser, name: str) -> None:
    """Flags of one scripting command (cli.py passes the subcommand's name)."""
    parser.epilog = EXIT_CODES_HELP
    adders: dict[str, Callable[[argparse.ArgumentParser], None]] = {
        "status": _add_status_arguments,
        "heartbeat": _add_heartbeat_arguments,
        "kill": _add_kill_arguments,
        "resume": _add_resume_arguments,
    }
    adders[name](parser)
    _add_gateway_arguments(parser, skippable=name == "status")


def _add_gateway_arguments(parser: argparse.ArgumentParser, *, skippable: bool) -> None:
    skip = "; 'none' checks only the feeds" if skippable else ""
    parser.add_argument("--gateway", metavar="EP",
                        help=f"gateway command endpoint (default [endpoints] gateway{skip})")
    parser.add_argument("--timeout-ms", type=int, metavar="MS",
                        help="wait this long for each attempt (default [console] "
                             "request_timeout_ms)")
    parser.add_argument("--retries", type=int, metavar="N",
                        help="attempts before the gateway counts as down (default [console] "
                             "request_retries)")
    parser.add_argument("--keys", metavar="DIR",
                        help="CURVE key directory (encrypted, authenticated sockets)")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object instead of text (see docs/scripting.md)")


def _add_status_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--feed", action="append", metavar="EP",
                        help="feed endpoint to check (repeatable; default [endpoints] feeds)")
    parser.add_argument("--seconds", type=float, metavar="S", default=DEFAULT_STATUS_SECONDS,
                        help=f"listen to the feeds at most this long (default "
                             f"{DEFAULT_STATUS_SECONDS:g}; ends after ~1 s once every feed "
                             f"has shown activity)")


def _add_heartbeat_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--count", type=int, metavar="N", default=1,
                        help="heartbeats to send (default 1)")
    parser.add_argument("--interval", type=float, metavar="S",
                        help="seconds between heartbeats (default [console] "
                             "heartbeat_interval_s)")


def _add_kill_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--reason", required=True, metavar="TEXT",
                        help="why trading is being halted (kept in the audit log)")
    parser.add_argument("--mode", type=str.upper, choices=p.KILL_MODES, default=p.FLATTEN,
                        help="FLATTEN cancels orders and closes positions (default); "
                             "HALT only cancels orders")
    parser.add_argument("--yes", action="store_true",
                        help="really fire the kill switch (without it nothing is sent)")


def _add_resume_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--incident", required=True, metavar="ID",
                        help="the incident id the kill switch returned (INC-...)")
    parser.add_argument("--reason", metavar="TEXT", default="resumed from the command line",
                        help="why trading may resume (kept in the audit log)")
    parser.add_argument("--yes", action="store_true",
                        help="really resume trading (without it nothing is sent)")


def run(args: argparse.Namespace) -> int:
    commands: dict[str, Callable[[argparse.Namespace], int]] = {
        "status": run_status,
        "heartbeat": run_heartbeat,
        "kill": run_kill,
        "resume": run_resume,
    }
    return commands[args.command](args)


# --- settings shared by the four commands ---------------------------------------------------


def client_id() -> str:
    """Who is asking, as the gateway's audit log will show it."""
    host = socket.gethostname()[:64] or "localhost"
    return f"tradeconsole-cli@{host}:{os.getpid()}"


@dataclass(frozen=True, slots=True)
class GatewayTarget:
    """Where and how patiently to ask the gateway; endpoint '' means no gateway."""

    endpoint: str
    timeout_ms: int
    retries: int
    late_ms: float
    keys_dir: str | None
    limits: p.Limits = p.DEFAULT_LIMITS
    client_id: str = field(default_factory=client_id)

    def request(self, action: str, payload: dict[str, Any] | None = None) -> Reply:
        """One request, retried with the same req_id; never raises for a dead gateway."""
        import zmq

        from console.link.client import request_once  # lazy: keeps --help fast

        try:
            return request_once(self.endpoint, action, payload or {}, client_id=self.client_id,
                                timeout_ms=self.timeout_ms, retries=self.retries,
                                keys_dir=self.keys_dir, limits=self.limits)
        except zmq.ZMQError as exc:  # e.g. an endpoint libzmq cannot parse
            raise UsageError(f"--gateway {self.endpoint}: {exc.strerror}; expected e.g. "
                             f"tcp://127.0.0.1:5555") from exc

    def no_reply(self) -> str:
        return (f"no reply from {self.endpoint} after {self.retries} attempt(s) of "
                f"{self.timeout_ms} ms")


def _load(args: argparse.Namespace) -> Config:
    config = load_for_args(args, {
        "console.request_timeout_ms": args.timeout_ms,
        "console.request_retries": args.retries,
    })
    _setup_stderr_logging(args.log_level)
    return config


def _setup_stderr_logging(level: str | None) -> None:
    """Warnings (or the --log-level asked for) on stderr; a one-shot writes no log file."""
    chosen = (level or "WARNING").upper()
    if chosen not in LEVELS:
        raise UsageError(f"--log-level {level!r} is not one of {', '.join(LEVELS)}")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(chosen)


def _positive(config: Config, key: str, flag: str) -> Any:
    value = config.get("console", key)
    if value <= 0:
        where = config.source_of("console", key)
        name = flag if where == "command line" else f"console.{key} ({where})"
        raise UsageError(f"{name} must be > 0, got {value}")
    return value


def gateway_target(args: argparse.Namespace, config: Config, *,
                   optional: bool = False) -> GatewayTarget:
    """The gateway to talk to; 'none' is allowed only where it is `optional` (status)."""
    endpoint = args.gateway if args.gateway is not None else config.get("endpoints", "gateway")
    endpoint = endpoint.strip()
    if endpoint.lower() in ("", "none"):
        if not optional:
            raise UsageError("no gateway endpoint: give --gateway EP or set [endpoints] gateway")
        endpoint = ""
    return GatewayTarget(
        endpoint=endpoint,
        timeout_ms=_positive(config, "request_timeout_ms", "--timeout-ms"),
        retries=_positive(config, "request_retries", "--retries"),
        late_ms=_positive(config, "heartbeat_late_ms", "console.heartbeat_late_ms"),
        keys_dir=args.keys,
        limits=p.Limits.from_config(config.section("limits")),
    )


def _print_json(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj, sort_keys=True) + "\n")


def _error_text(reply: Reply) -> str:
    error = reply.error or {}
    code = error.get("code", "?")
    message = error.get("message", "")
    return f"{reply.status} {code}: {message}" if message else f"{reply.status} {code}"


def _reply_json(target: GatewayTarget, reply: Reply) -> dict[str, Any]:
    return {
        "v": JSON_VERSION, "endpoint": target.endpoint, "action": reply.action,
        "req_id": reply.req_id, "delivered": reply.delivered, "status": reply.status,
        "data": reply.data, "error": reply.error, "rtt_ms": reply.rtt_ms,
    }


# --- status ---------------------------------------------------------------------------------


@dataclass(slots=True)
class GatewayReport:
    """What one HEARTBEAT + GET_STATUS said about the gateway."""

    endpoint: str
    state: str                            # UP / LATE / DOWN
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
            "endpoint": self.endpoint, "state": self.state, "rtt_ms": self.rtt_ms,
            "node": self.node, "uptime_s": self.uptime_s, "trading_state": self.trading_state,
            "incident_id": self.incident_id, "halted_reason": self.halted_reason,
            "error": self.error,
        }


def probe_gateway(target: GatewayTarget) -> GatewayReport:
    """HEARTBEAT for liveness and RTT, then GET_STATUS for the incident."""
    report = GatewayReport(endpoint=target.endpoint, state=GW_DOWN)
    beat = target.request(p.HEARTBEAT)
    if not beat.delivered:
        report.problems.append(f"gateway {target.no_reply()}")
        return report
    report.rtt_ms = beat.rtt_ms
    late = beat.rtt_ms is not None and beat.rtt_ms > target.late_ms
    report.state = GW_LATE if late else GW_UP
    if late:
        report.problems.append(f"gateway is LATE: heartbeat took {beat.rtt_ms:.3f} ms "
                               f"(limit {target.late_ms:g} ms)")
    if not beat.ok or not isinstance(beat.data, dict):
        report.error = beat.error
        report.problems.append(f"gateway answered HEARTBEAT with {_error_text(beat)}")
        return report
    report.node = _str_or_none(beat.data.get("node"))
    uptime = beat.data.get("uptime_s")
    report.uptime_s = float(uptime) if p.is_finite_number(uptime) else None
    report.trading_state = _str_or_none(beat.data.get("trading_state"))
    status = target.request(p.GET_STATUS)
    if not status.delivered:
        report.problems.append(
            f"gateway answered HEARTBEAT but not GET_STATUS ({target.no_reply()})")
    elif not status.ok or not isinstance(status.data, dict):
        report.error = status.error
        report.problems.append(f"gateway answered GET_STATUS with {_error_text(status)}")
    else:
        report.trading_state = _str_or_none(status.data.get("trading_state")) \
            or report.trading_state
        report.incident_id = _str_or_none(status.data.get("incident_id"))
        report.halted_reason = _str_or_none(status.data.get("reason"))
    return report


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


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

    def listen(self, seconds: float) -> float:
        """Collect until every feed was heard and a rate is meaningful, or `seconds` pass."""
        wake = threading.Event()
        while True:
            self.rows = self.ingest.drain().feeds
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


def assess(feeds: list[dict[str, Any]], gateway: GatewayReport | None) -> tuple[int, list[str]]:
    """Exit code and the reasons for it. HALTED is a trading state, not a health problem."""
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
    if gateway is not None:
        problems += gateway.problems
    if gateway is not None and gateway.state == GW_DOWN:
        return EXIT_GATEWAY_DOWN, problems
    return (EXIT_DEGRADED if problems else EXIT_OK), problems


def run_status(args: argparse.Namespace) -> int:
    config = _load(args)
    if not (math.isfinite(args.seconds) and args.seconds > 0):
        raise UsageError(f"--seconds must be a number > 0, got {args.seconds:g}")
    target = gateway_target(args, config, optional=True)
    endpoints = list(args.feed or config.get("endpoints", "feeds"))
    if not endpoints:
        raise UsageError("no feed endpoint: give --feed EP or set [endpoints] feeds")
    with FeedCheck(endpoints, config, args.keys) as check:
        gateway = probe_gateway(target) if target.endpoint else None
        window = check.listen(args.seconds)
        now_ns = time.monotonic_ns()
        feeds = [feed_json(row, window, now_ns) for row in check.rows]
    code, problems = assess(feeds, gateway)
    health = {EXIT_OK: HEALTH_OK, EXIT_DEGRADED: HEALTH_DEGRADED}.get(code, HEALTH_GATEWAY_DOWN)
    if args.json:
        _print_json({
            "v": JSON_VERSION, "health": health, "exit_code": code, "problems": problems,
            "listened_s": round(window, 3), "feeds": feeds,
            "gateway": gateway.as_json() if gateway is not None else None,
        })
    else:
        sys.stdout.write(render_status(feeds, gateway, health, problems))
    return code


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
            for row in (header, *rows)]


def render_status(feeds: list[dict[str, Any]], gateway: GatewayReport | None, health: str,
                  problems: list[str]) -> str:
    feed_rows = [
        (f["endpoint"], f["state"], f"{f['msgs_per_s']:.1f}",
         "never" if f["last_seen_ago_s"] is None else f"{f['last_seen_ago_s']:.1f}s ago",
         str(f["gaps"]),
         ", ".join(f"{n} {h}" for n, h in sorted(f["nodes"].items())) or "-")
        for f in feeds
    ]
    lines = _table(("FEED", "STATE", "MSGS/S", "LAST SEEN", "GAPS", "NODES"), feed_rows)
    lines.append("")
    if gateway is None:
        lines.append("GATEWAY  not checked (--gateway none)")
    else:
        rtt = "-" if gateway.rtt_ms is None else f"{gateway.rtt_ms:.3f} ms"
        trading = gateway.trading_state or "-"
        if gateway.incident_id:
            trading += f" (incident {gateway.incident_id})"
        lines += _table(("GATEWAY", "STATE", "RTT", "NODE", "TRADING"),
                        [(gateway.endpoint, gateway.state, rtt, gateway.node or "-", trading)])
    lines.append("")
    lines.append(f"health: {health}")
    lines += [f"  - {problem}" for problem in problems]
    return "\n".join(lines) + "\n"


# --- heartbeat ------------------------------------------------------------------------------


def run_heartbeat(args: argparse.Namespace) -> int:
    config = _load(args)
    if args.count < 1:
        raise UsageError(f"--count must be >= 1, got {args.count}")
    interval = args.interval if args.interval is not None \
        else config.get("console", "heartbeat_interval_s")
    if not (math.isfinite(interval) and interval >= 0):
        raise UsageError(f"--interval must be a number >= 0, got {interval:g}")
    target = gateway_target(args, config)
    replies: list[Reply] = []
    pause = threading.Event()
    for index in range(args.count):
        if index:
            pause.wait(interval)
        reply = target.request(p.HEARTBEAT)
        replies.append(reply)
        if not args.json:
            sys.stdout.write(_heartbeat_line(target, reply) + "\n")
            sys.stdout.flush()
    answered = [r for r in replies if r.delivered]
    code = EXIT_OK
    if len(answered) < len(replies):
        code = EXIT_GATEWAY_DOWN
    elif any(not r.ok for r in replies):
        code = EXIT_DEGRADED
    rtts = [r.rtt_ms for r in answered if r.rtt_ms is not None]
    if args.json:
        _print_json({
            "v": JSON_VERSION, "endpoint": target.endpoint, "exit_code": code,
            "sent": len(replies), "answered": len(answered),
            "replies": [_heartbeat_json(r) for r in replies],
        })
    elif len(replies) > 1:
        summary = f"{len(replies)} sent, {len(answered)} answered"
        if rtts:
            summary += (f", rtt min/avg/max {min(rtts):.3f}/{sum(rtts) / len(rtts):.3f}/"
                        f"{max(rtts):.3f} ms")
        sys.stdout.write(summary + "\n")
    return code


def _heartbeat_json(reply: Reply) -> dict[str, Any]:
    data = reply.data if isinstance(reply.data, dict) else {}
    return {
        "req_id": reply.req_id, "delivered": reply.delivered, "status": reply.status,
        "rtt_ms": reply.rtt_ms, "node": _str_or_none(data.get("node")),
        "trading_state": _str_or_none(data.get("trading_state")), "error": reply.error,
    }


def _heartbeat_line(target: GatewayTarget, reply: Reply) -> str:
    if not reply.delivered:
        return f"DOWN {target.no_reply()}"
    rtt = "-" if reply.rtt_ms is None else f"{reply.rtt_ms:.3f} ms"
    if not reply.ok:
        return f"{target.endpoint}: rtt {rtt}, {_error_text(reply)}"
    data = reply.data if isinstance(reply.data, dict) else {}
    node = _str_or_none(data.get("node")) or "?"
    trading = _str_or_none(data.get("trading_state")) or "?"
    return f"{node} at {target.endpoint}: rtt {rtt}, trading {trading}"


# --- kill and resume --------------------------------------------------------------------------


def _refuse_unless_allowed(args: argparse.Namespace, config: Config, what: str) -> None:
    """Read-only config and a missing --yes both stop a command before anything is sent."""
    if config.get("console", "readonly"):
        where = config.source_of("console", "readonly")
        raise UsageError(f"refusing to {what}: console.readonly is true ({where}); "
                         f"nothing was sent")
    if not args.yes:
        raise UsageError(f"refusing to {what} without --yes; nothing was sent")


def _text_arg(value: str, flag: str) -> str:
    text = value.strip()
    if not text:
        raise UsageError(f"{flag} must not be empty")
    if len(text) > MAX_TEXT:
        raise UsageError(f"{flag} is longer than {MAX_TEXT} characters ({len(text)})")
    return text


def _finish(target: GatewayTarget, reply: Reply, as_json: bool,
            describe: Callable[[Any], list[str]]) -> int:
    """Print the outcome of a state-changing request and choose the exit code."""
    if not reply.delivered:
        code = EXIT_GATEWAY_DOWN
        text = [f"{reply.action} NOT delivered: {target.no_reply()}.",
                "The gateway's state is unknown; check it with: tradeconsole status"]
    elif not reply.ok:
        code = EXIT_DEGRADED
        text = [f"{reply.action} refused: {_error_text(reply)}"]
    else:
        code = EXIT_OK
        text = describe(reply.data if isinstance(reply.data, dict) else {})
    if as_json:
        _print_json({**_reply_json(target, reply), "exit_code": code})
    else:
        stream = sys.stdout if code == EXIT_OK else sys.stderr
        stream.write("\n".join(text) + "\n")
    return code


def run_kill(args: argparse.Namespace) -> int:
    config = _load(args)
    target = gateway_target(args, config)
    reason = _text_arg(args.reason, "--reason")
    _refuse_unless_allowed(args, config, "fire the kill switch")
    reply = target.request(p.KILL_SWITCH, {"reason": reason, "mode": args.mode})
    return _finish(target, reply, args.json, describe_kill)


def describe_kill(data: dict[str, Any]) -> list[str]:
    incident = data.get("incident_id")
    state = data.get("trading_state")
    if data.get("already_halted"):
        return [f"already halted: incident {incident}, trading {state}; nothing new was done"]
    lines = [f"kill switch fired: incident {incident}, trading {state}"]
    cancelled = [str(o) for o in data.get("cancelled_orders") or []]
    total = data.get("cancelled_count", len(cancelled))
    shown = f" ({', '.join(cancelled)}{', ...' if total > len(cancelled) else ''})" \
        if cancelled else ""
    lines.append(f"cancelled orders: {total}{shown}")
    closed = [c for c in data.get("closed_positions") or [] if isinstance(c, dict)]
    lines.append(f"closed positions: {data.get('closed_count', len(closed))}")
    lines += [f"  {c.get('vt_symbol')} qty {c.get('closed_qty')} at {c.get('fill_price')}, "
              f"realized {c.get('realized_pnl')}" for c in closed]
    unclosed = [u for u in data.get("unclosed_positions") or [] if isinstance(u, dict)]
    if unclosed:
        lines.append(f"NOT closed: {len(unclosed)}")
        lines += [f"  {u.get('vt_symbol')} qty {u.get('qty')}: {u.get('reason')}"
                  for u in unclosed]
    lines.append(f"release with: tradeconsole resume --incident {incident} --yes")
    return lines


def run_resume(args: argparse.Namespace) -> int:
    config = _load(args)
    target = gateway_target(args, config)
    incident = _text_arg(args.incident, "--incident")
    reason = _text_arg(args.reason, "--reason")
    _refuse_unless_allowed(args, config, "resume trading")
    reply = target.request(p.RESUME_TRADING, {"incident_id": incident, "reason": reason})
    return _finish(target, reply, args.json, describe_resume)


def describe_resume(data: dict[str, Any]) -> list[str]:
    return [f"incident {data.get('incident_id')} released: trading "
            f"{data.get('trading_state')}"]
