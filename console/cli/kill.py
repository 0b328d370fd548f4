"""`tradeconsole kill`: fire the gateway's kill switch from a script.

Nothing is sent without `--yes`, nor when the config (or the gateway) is
read-only. The request is retried the Lazy Pirate way with one req_id, so the
gateway acts at most once; what it cancelled and closed is printed with the
incident id that `tradeconsole resume` needs. `--all` fires every configured
gateway at once, in parallel (a dead one does not delay the others), and
reports each: its incident id, or NOT DELIVERED; the exit code is the worst.
"""

from __future__ import annotations

import argparse
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from console.cli.scripting import (
    EXIT_DEGRADED,
    JSON_VERSION,
    GatewayTarget,
    add_gateway_arguments,
    finish,
    gateway_target,
    gateway_targets,
    load,
    outcome,
    print_json,
    refuse_unless_allowed,
    reply_json,
    text_arg,
    worst,
)
from console.model import Reply
from services import protocol as p
from services.runtime.errors import UsageError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--reason", required=True, metavar="TEXT",
                        help="why trading is being halted (kept in the audit log)")
    parser.add_argument("--mode", type=str.upper, choices=p.KILL_MODES, default=p.FLATTEN,
                        help="FLATTEN cancels orders and closes positions (default); "
                             "HALT only cancels orders")
    parser.add_argument("--yes", action="store_true",
                        help="really fire the kill switch (without it nothing is sent)")
    parser.add_argument("--all", action="store_true",
                        help="fire every gateway (the config's [gateways], or every --gateway)"
                             " at once")
    add_gateway_arguments(parser)


def run(args: argparse.Namespace) -> int:
    config = load(args)
    reason = text_arg(args.reason, "--reason")
    payload = {"reason": reason, "mode": args.mode}
    if args.all:
        targets = gateway_targets(args, config)
        if not targets:
            raise UsageError("kill --all: no gateway configured; nothing was sent")
        refuse_unless_allowed(args, config, "fire the kill switch")
        return fire_all(targets, payload, args.json)
    target = gateway_target(args, config)
    refuse_unless_allowed(args, config, "fire the kill switch", target)
    reply = target.request(p.KILL_SWITCH, payload)
    return finish(target, reply, args.json, describe_kill)


def fire_all(targets: list[GatewayTarget], payload: dict[str, Any], as_json: bool) -> int:
    """KILL_SWITCH to every live target in parallel; read-only ones are not sent to."""
    live = [t for t in targets if not t.readonly]
    with ThreadPoolExecutor(max_workers=max(1, len(live))) as pool:
        replies: dict[str, Reply] = dict(zip(
            (t.name for t in live),
            pool.map(lambda t: t.request(p.KILL_SWITCH, payload), live), strict=True))
    codes, entries, lines = [], [], []
    for target in targets:
        reply = replies.get(target.name)
        if reply is None:
            code, text = EXIT_DEGRADED, ["not sent: the gateway is read-only"]
            entry: dict[str, Any] = {"name": target.name, "endpoint": target.endpoint,
                                     "delivered": False, "status": None, "readonly": True}
        else:
            code, text = outcome(target, reply, describe_kill)
            entry = reply_json(target, reply)
            entry.pop("v", None)
        codes.append(code)
        entries.append({**entry, "exit_code": code})
        lines.append(f"{target.name}: {text[0]}")
        lines += [f"  {line}" for line in text[1:]]
    code = worst(codes)
    if as_json:
        print_json({"v": JSON_VERSION, "action": p.KILL_SWITCH, "exit_code": code,
                    "gateways": entries})
    else:
        sys.stdout.write("\n".join(lines) + "\n")
    return code


def describe_kill(data: dict[str, Any]) -> list[str]:
    """The kill switch's outcome as lines for a person: incident, orders, positions."""
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
