"""`tradeconsole resume`: release the kill switch for one incident from a script.

Like `kill`, nothing is sent without `--yes`, nor when the config is
read-only; the incident id is the one the kill switch returned.
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
    parser.add_argument("--incident", required=True, metavar="ID",
                        help="the incident id the kill switch returned (INC-...)")
    parser.add_argument("--reason", metavar="TEXT", default="resumed from the command line",
                        help="why trading may resume (kept in the audit log)")
    parser.add_argument("--yes", action="store_true",
                        help="really resume trading (without it nothing is sent)")
    add_gateway_arguments(parser)


def run(args: argparse.Namespace) -> int:
    config = load(args)
    target = gateway_target(args, config)
    incident = text_arg(args.incident, "--incident")
    reason = text_arg(args.reason, "--reason")
    refuse_unless_allowed(args, config, "resume trading", target)
    reply = target.request(p.RESUME_TRADING, {"incident_id": incident, "reason": reason})
    return finish(target, reply, args.json, describe_resume)


def describe_resume(data: dict[str, Any]) -> list[str]:
    return [f"incident {data.get('incident_id')} released: trading "
            f"{data.get('trading_state')}"]
