"""`tradeconsole kill`: fire the gateway's kill switch from a script.

Nothing is sent without `--yes`, nor when the config is read-only. The
request is retried the Lazy Pirate way with one req_id, so the gateway acts
at most once; what it cancelled and closed is printed with the incident id
that `tradeconsole resume` needs.
"""

from __future__ import annotations

import argparse
from typing import Any

from console.cli.scripting import (
    add_gateway_arguments,
    finish,
    gateway_target,
    load,
    refuse_unless_allowed,
    text_arg,
)
from services import protocol as p


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--reason", required=True, metavar="TEXT",
                        help="why trading is being halted (kept in the audit log)")
    parser.add_argument("--mode", type=str.upper, choices=p.KILL_MODES, default=p.FLATTEN,
                        help="FLATTEN cancels orders and closes positions (default); "
                             "HALT only cancels orders")
    parser.add_argument("--yes", action="store_true",
                        help="really fire the kill switch (without it nothing is sent)")
    add_gateway_arguments(parser)


def run(args: argparse.Namespace) -> int:
    config = load(args)
    target = gateway_target(args, config)
    reason = text_arg(args.reason, "--reason")
    refuse_unless_allowed(args, config, "fire the kill switch")
    reply = target.request(p.KILL_SWITCH, {"reason": reason, "mode": args.mode})
    return finish(target, reply, args.json, describe_kill)


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
