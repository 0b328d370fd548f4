"""`tradeconsole heartbeat`: HEARTBEAT the gateway and print each round-trip time.

One line per heartbeat as it is answered (a summary when there were several),
or one JSON object at the end. Exit 3 when any heartbeat went unanswered, 1
when the gateway refused one.
"""

from __future__ import annotations

import argparse
import math
import sys
import threading
from typing import Any

from console.cli.scripting import (
    EXIT_DEGRADED,
    EXIT_GATEWAY_DOWN,
    EXIT_OK,
    JSON_VERSION,
    GatewayTarget,
    add_gateway_arguments,
    error_text,
    gateway_target,
    load,
    print_json,
    str_or_none,
)
from console.model import Reply
from services import protocol as p
from services.runtime.errors import UsageError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--count", type=int, metavar="N", default=1,
                        help="heartbeats to send (default 1)")
    parser.add_argument("--interval", type=float, metavar="S",
                        help="seconds between heartbeats (default [console] "
                             "heartbeat_interval_s)")
    add_gateway_arguments(parser)


def run(args: argparse.Namespace) -> int:
    config = load(args)
    if args.count < 1:
        raise UsageError(f"--count must be >= 1, got {args.count}")
    interval = args.interval if args.interval is not None \
        else config.settings.console.heartbeat_interval_s
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
        print_json({
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
        "rtt_ms": reply.rtt_ms, "node": str_or_none(data.get("node")),
        "trading_state": str_or_none(data.get("trading_state")), "error": reply.error,
    }


def _heartbeat_line(target: GatewayTarget, reply: Reply) -> str:
    if not reply.delivered:
        return f"DOWN {target.no_reply()}"
    rtt = "-" if reply.rtt_ms is None else f"{reply.rtt_ms:.3f} ms"
    if not reply.ok:
        return f"{target.endpoint}: rtt {rtt}, {error_text(reply)}"
    data = reply.data if isinstance(reply.data, dict) else {}
    node = str_or_none(data.get("node")) or "?"
    trading = str_or_none(data.get("trading_state")) or "?"
    return f"{node} at {target.endpoint}: rtt {rtt}, trading {trading}"
