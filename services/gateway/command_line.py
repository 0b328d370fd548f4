"""`tradeconsole gateway` on the command line: flags, settings, then the server loop."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from services.gateway.server import GatewayServer
from services.gateway.settings import GatewaySettings
from services.runtime.config import load_for_args, user_data_dir
from services.runtime.lifecycle import stop_event_on_signals
from services.runtime.logsetup import setup_logging
from services.runtime.sockets import announce_ready
from services.store import Store

log = logging.getLogger("tradeconsole.gateway")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bind", metavar="EP",
                        help="command ROUTER endpoint (default [endpoints] gateway)")
    parser.add_argument("--pub-bind", metavar="EP",
                        help="event/telemetry PUB endpoint (default [endpoints] gateway_pub)")
    parser.add_argument("--feed", metavar="EP",
                        help="publisher to price orders from (default [endpoints] publisher)")
    parser.add_argument("--state-dir", metavar="DIR",
                        help="where state.json and audit.jsonl live (default [gateway] "
                             "state_dir, else the user data dir)")
    parser.add_argument("--node", metavar="NAME", help="node name in telemetry (default gw-1)")
    parser.add_argument("--keys", metavar="DIR",
                        help="require CURVE with the certificates in DIR (tradeconsole keys)")


def run(args: argparse.Namespace) -> int:
    config = load_for_args(args, {
        "endpoints.gateway": args.bind, "endpoints.gateway_pub": args.pub_bind,
        "endpoints.publisher": args.feed, "gateway.node": args.node,
        "gateway.state_dir": args.state_dir,
    })
    settings = GatewaySettings.from_config(config)
    logging_cfg = config.settings.logging
    setup_logging("gateway", logging_cfg.level, logging_cfg.dir)
    state_dir = Path(config.settings.gateway.state_dir or user_data_dir() / "gateway")
    store = Store(state_dir)
    server = GatewayServer(settings, store)
    try:
        server.restore()
        endpoints = config.settings.endpoints
        cmd, pub = server.open(cmd=endpoints.gateway, pub=endpoints.gateway_pub,
                               feed=endpoints.publisher, keys_dir=args.keys)
        stop = stop_event_on_signals()
        log.info("gateway %s serving %s, events on %s, feed %s, state in %s", settings.node,
                 cmd, pub, endpoints.publisher, state_dir)
        announce_ready(service="gateway", node=settings.node, cmd=cmd, pub=pub,
                       feed=endpoints.publisher, state_dir=str(store.directory))
        code = server.serve(stop)
        log.info("gateway %s stopped", settings.node)
        return code
    finally:
        server.close()
