"""`tradeconsole` with no subcommand: open the console against feeds and a gateway.

Checks every setting before the terminal is taken over, so a bad flag or
config value ends with one line and exit code 2. The app exits within a
couple of seconds when its terminal goes away (console.ui.runner): SIGHUP,
SIGTERM, or a hang-up or end of input on stdin.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from textual.theme import BUILTIN_THEMES

from console.link.gateways import resolve_gateways
from console.ui.commands import resolve_keymap
from services.runtime.config import Config, load_for_args, user_config_path, user_data_dir
from services.runtime.errors import UsageError
from themes import PROJECT_THEMES

MIN_FPS, MAX_FPS = 1, 120


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--feed", action="append", metavar="EP",
                        help="feed endpoint to subscribe to (repeatable; default [endpoints] "
                             "feeds)")
    parser.add_argument("--gateway", action="append", metavar="NAME|NAME=EP|EP",
                        help="gateway to link to: a [gateways.NAME] of the config, NAME=EP or "
                             "an endpoint (default the config's first [gateways] table, else "
                             "[endpoints] gateway; 'none' for no gateway)")
    parser.add_argument("--fps", type=int, metavar="N",
                        help=f"screen frames per second, {MIN_FPS}..{MAX_FPS} (default 20)")
    parser.add_argument("--theme", metavar="NAME",
                        help=f"colour theme: {', '.join(PROJECT_THEMES)} or a Textual theme")
    parser.add_argument("--readonly", action="store_true", default=None,
                        help="disable every state-changing command (kill, resume, orders)")
    parser.add_argument("--keys", metavar="DIR",
                        help="CURVE key directory (encrypted, authenticated sockets)")
    add_quiet_argument(parser)


def add_quiet_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quiet", action="store_true",
                        help="never ring the terminal bell for critical alerts (toasts and the "
                             "badge stay)")


def available_themes() -> list[str]:
    return [*PROJECT_THEMES, *(n for n in BUILTIN_THEMES if n not in PROJECT_THEMES)]


def validate_console_config(config: Config) -> None:
    """Refuse bad console settings with one line naming the key and what is allowed."""
    console = config.settings.console
    fps = console.fps
    if not MIN_FPS <= fps <= MAX_FPS:
        where = config.source_of("console", "fps")
        flag = "--fps" if where == "command line" else f"console.fps ({where})"
        raise UsageError(f"{flag} must be between {MIN_FPS} and {MAX_FPS}, got {fps}")
    theme = console.theme
    if theme not in available_themes():
        where = config.source_of("console", "theme")
        flag = "--theme" if where == "command line" else f"console.theme ({where})"
        raise UsageError(f"{flag}: unknown theme {theme!r} (available: "
                         f"{', '.join(available_themes())})")
    nice = console.ingest_nice
    if not 0 <= nice <= 19:
        where = config.source_of("console", "ingest_nice")
        raise UsageError(f"console.ingest_nice ({where}) must be between 0 and 19, got {nice}")
    for key, value in (("row_stale_after_s", console.row_stale_after_s),
                       ("poll_interval_s", console.poll_interval_s)):
        if value <= 0:
            raise UsageError(f"console.{key} must be > 0, got {value}")
    resolve_keymap(config.settings.keys)
    from console.watch.rules import check_alert_settings

    check_alert_settings(config.settings.alerts)


def run(args: argparse.Namespace) -> int:
    config = load_for_args(args, {
        "console.fps": args.fps,
        "console.theme": args.theme,
        "console.readonly": args.readonly,
    })
    return run_console(config, feeds=args.feed, gateway=args.gateway, keys_dir=args.keys,
                       config_file=args.config, quiet=args.quiet)


def _settings_note(config_file: str | None) -> str | None:
    if config_file and Path(config_file).resolve() != user_config_path().resolve():
        return f"the user config; {config_file} given with --config was not changed"
    return None


def run_console(
    config: Config,
    *,
    feeds: Sequence[str] | None = None,
    gateway: Sequence[str] | str | None = None,
    keys_dir: str | None = None,
    title: str | None = None,
    config_file: str | None = None,
    quiet: bool = False,
) -> int:
    """Build the data layer and the app from a loaded config and run it to the end."""
    validate_console_config(config)
    endpoints = list(feeds or config.settings.endpoints.feeds)
    if not endpoints:
        raise UsageError("no feed endpoint: give --feed EP or set [endpoints] feeds")
    chosen = resolve_gateways(config, [gateway] if isinstance(gateway, str) else gateway,
                              keys_dir=keys_dir)

    from console.link.fleet import LinkedGateway
    from console.ui.app import TradeConsole
    from console.ui.runner import HANGUP_EXIT_CODE, run_app
    from services.runtime.logsetup import setup_logging

    logging_settings = config.settings.logging
    setup_logging("console", logging_settings.level, logging_settings.dir, stderr=False)
    # Feeds of a CURVE fabric whose keys are only given per gateway use the first such.
    feed_keys = keys_dir or next((s.keys_dir for s in chosen if s.keys_dir), None)
    source = make_tick_source(endpoints, config, keys_dir=feed_keys)
    # One link (and one link process) per gateway: a dead one never delays another.
    linked = [LinkedGateway(spec, make_gateway_client(spec.endpoint, config,
                                                      keys_dir=spec.keys_dir))
              for spec in chosen]
    app = TradeConsole(
        config, source=source, gateways=linked, settings_path=user_config_path(),
        settings_note=_settings_note(config_file), data_dir=user_data_dir(),
        manage_lifecycle=False, title=title, quiet=quiet,
    )
    # Bad endpoints and keys fail here, with one line, before the terminal is taken over.
    source.start()
    try:
        for gateway_link in linked:
            gateway_link.link.start()
        result, hung_up = run_app(app, watch_stdin=_owns_the_terminal())
    finally:
        for gateway_link in linked:
            gateway_link.link.stop()
        source.stop()
    if hung_up:
        return HANGUP_EXIT_CODE
    return int(result or 0)


def make_tick_source(endpoints: Sequence[str], config: Config, *,
                     keys_dir: str | None = None, **options: Any) -> Any:
    """The console's ingest as `[console] ingest` says: a child process or a thread.

    `options` go to either class as keywords (e.g. `latency_ring` for the benchmark).
    """
    if config.settings.console.ingest.lower() == "thread":
        from console.feed.ingest import Ingest

        return Ingest(endpoints, config=config, keys_dir=keys_dir, **options)
    from console.feed.process import IngestProcess

    return IngestProcess(endpoints, config=config, keys_dir=keys_dir, **options)


def make_gateway_client(endpoint: str, config: Config, *, keys_dir: str | None = None,
                        client_id: str | None = None) -> Any:
    """The console's gateway link as `[console] gateway_link` says: a child process or a thread.

    Either takes the [console] link settings, [limits] and [network].
    """
    from services.protocol import Limits

    console = config.settings.console
    settings: dict[str, Any] = {
        "client_id": client_id or f"console-{socket.gethostname()[:64]}-{os.getpid()}",
        "heartbeat_interval_s": console.heartbeat_interval_s,
        "late_ms": float(console.heartbeat_late_ms),
        "timeout_ms": console.request_timeout_ms,
        "retries": console.request_retries,
        "keys_dir": keys_dir,
        "limits": Limits.from_settings(config.settings.limits),
        "network": config.network,
    }
    if console.gateway_link.lower() == "thread":
        from console.link.client import GatewayClient

        return GatewayClient(endpoint, **settings)
    from console.link.process import GatewayProcess

    logging_settings = config.settings.logging
    return GatewayProcess(endpoint, log_level=logging_settings.level,
                          log_dir=logging_settings.dir or "", **settings)


def _owns_the_terminal() -> bool:
    """Whether stdin is this console's terminal, to be watched for a hang-up.

    Not under a host that chose Textual's driver itself (e.g. textual-serve),
    nor off Linux, where Textual reads input differently.
    """
    from textual import constants

    return sys.platform.startswith("linux") and not constants.DRIVER
