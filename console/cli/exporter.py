"""`tradeconsole exporter`: the console's data layer and alerts on /metrics, with no terminal.

Headless and long-running: the same ingest, gateway link, polls and alert
rules as the console (console.watch.monitor), served to Prometheus by
prometheus_client's HTTP server from a custom collector
(console.watch.exposition). SIGTERM, SIGINT or SIGHUP stops it within a
second: hooks still running get 0.2 s, then are abandoned.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
import threading
from collections.abc import Sequence
from typing import Any

from console.link.gateways import resolve_gateways
from services.runtime.config import Config, load_for_args
from services.runtime.errors import UsageError
from services.runtime.sockets import announce_ready

DEFAULT_LISTEN = "127.0.0.1:9464"   # the port Prometheus's registry of exporters leaves free


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--listen", metavar="HOST:PORT", default=DEFAULT_LISTEN,
                        help=f"serve /metrics here (default {DEFAULT_LISTEN}; 0.0.0.0:PORT for "
                             f"every interface; port 0 picks a free one, printed at start)")
    parser.add_argument("--feed", action="append", metavar="EP",
                        help="feed endpoint to watch (repeatable; default [endpoints] feeds)")
    parser.add_argument("--gateway", action="append", metavar="NAME|NAME=EP|EP",
                        help="gateway to watch (repeatable): a [gateways.NAME] of the config, "
                             "NAME=EP or an endpoint (default every [gateways] table, else "
                             "[endpoints] gateway; 'none' for no gateway)")
    parser.add_argument("--keys", metavar="DIR",
                        help="CURVE key directory (encrypted, authenticated sockets)")


def parse_listen(value: str) -> tuple[str, int]:
    """HOST:PORT (or :PORT for every interface) -> (host, port); UsageError otherwise."""
    host, sep, port_text = value.strip().rpartition(":")
    if not sep or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise UsageError(f"--listen {value!r}: expected HOST:PORT with a port 0..65535, "
                         f"e.g. {DEFAULT_LISTEN}")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port_text)


def build_monitor(config: Config, endpoints: Sequence[str], gateways: Sequence[tuple[str, str]],
                  *, keys_dir: str | None = None) -> Any:
    """The console's data layer and alert watch, without the app."""
    from console.cli.run import make_gateway_client, make_tick_source
    from console.watch.monitor import Monitor
    from console.watch.watcher import AlertWatch

    watch = AlertWatch(config.settings.alerts)
    source = make_tick_source(endpoints, config, keys_dir=keys_dir)
    client_id = f"exporter-{socket.gethostname()[:48]}-{os.getpid()}"
    links = [(name, make_gateway_client(endpoint, config, keys_dir=keys_dir,
                                        client_id=client_id))
             for name, endpoint in gateways]
    return Monitor(source, links, watch, poll_interval_s=config.settings.console.poll_interval_s)


def serve(host: str, port: int, registry: Any) -> Any:
    """prometheus_client's HTTP server; a port in use or a bad host is one line, exit 2."""
    from prometheus_client import start_http_server

    try:
        server, _thread = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise UsageError(f"--listen {host}:{port}: cannot listen ({reason}); pick another "
                         f"address with --listen HOST:PORT") from exc
    return server


def run(args: argparse.Namespace) -> int:
    config = load_for_args(args, {})
    from console.watch.rules import check_alert_settings

    check_alert_settings(config.settings.alerts)
    host, port = parse_listen(args.listen)
    endpoints = list(args.feed or config.settings.endpoints.feeds)
    if not endpoints:
        raise UsageError("no feed endpoint: give --feed EP or set [endpoints] feeds")
    gateways = [(g.name, g.endpoint)
                for g in resolve_gateways(config, args.gateway, keys_dir=args.keys)]

    from prometheus_client import CollectorRegistry
    from prometheus_client.process_collector import ProcessCollector

    from console.watch.exposition import MonitorCollector
    from services.runtime.logsetup import setup_logging

    logging_settings = config.settings.logging
    setup_logging("exporter", logging_settings.level, logging_settings.dir, stderr=True)
    monitor = build_monitor(config, endpoints, gateways, keys_dir=args.keys)
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    registry.register(MonitorCollector(monitor))

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, lambda *_: stop.set())
    server = serve(host, port, registry)
    try:
        monitor.start()  # a bad endpoint or key ends here with one line
        where = f"http://{host}:{server.server_port}/metrics"
        sys.stderr.write(f"tradeconsole exporter: serving {where} "
                         f"({len(endpoints)} feed(s), gateways "
                         f"{', '.join(name for name, _ in gateways) or 'none'})\n")
        sys.stderr.flush()
        announce_ready(metrics=where)
        while not stop.wait(0.2):
            pass
    finally:
        # The HTTP server notices a shutdown within its 0.5 s poll: stop it beside the rest.
        closing = threading.Thread(target=_close_server, args=(server,), daemon=True)
        closing.start()
        monitor.stop()
        closing.join(1.0)
    return 0


def _close_server(server: Any) -> None:
    server.shutdown()
    server.server_close()
