"""What `tradeconsole status | heartbeat | kill | resume` share: the fabric from a shell script.

Each command (status.py, heartbeat.py, kill.py, resume.py) does one thing,
prints a small table (or one JSON object with `--json`) and ends with an exit
code a script can branch on:

    0 healthy / done, 1 degraded or refused by the gateway,
    2 usage or config error (nothing sent), 3 gateway down (no reply).

They reuse the console's data layer: `console.feed.ingest.Ingest` listens to the
feeds, `console.link.client.request_once` sends a request the Lazy Pirate
way (a retry reuses the same req_id, so a kill is never fired twice). This
module holds their gateway flags, settings and output helpers; the exit codes
and the JSON shapes are documented in docs/scripting.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from console.link.gateways import endpoint_name, resolve_gateways
from console.model import Reply
from services import protocol as p
from services.runtime.config import Config, load_for_args
from services.runtime.errors import UsageError
from services.runtime.logsetup import LEVELS

EXIT_OK = 0
EXIT_DEGRADED = 1
EXIT_GATEWAY_DOWN = 3  # 2 is services.runtime.errors.UsageError.exit_code

JSON_VERSION = 1
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

_Number = TypeVar("_Number", int, float)


# --- command line -------------------------------------------------------------------------


def add_gateway_arguments(parser: argparse.ArgumentParser, *, skippable: bool = False) -> None:
    """The flags every scripting command has (after its own), and the exit codes as epilog."""
    parser.epilog = EXIT_CODES_HELP
    skip = "; 'none' checks only the feeds" if skippable else ""
    many = "every gateway given (repeatable)" if skippable else "the gateway"
    parser.add_argument("--gateway", action="append", metavar="NAME|NAME=EP|EP",
                        help=f"{many}: a [gateways.NAME] of the config, NAME=EP or an "
                             f"endpoint (default the config's [gateways], else [endpoints] "
                             f"gateway{skip})")
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


def text_arg(value: str, flag: str) -> str:
    """A --reason / --incident value, stripped; empty or too long is a usage error."""
    text = value.strip()
    if not text:
        raise UsageError(f"{flag} must not be empty")
    if len(text) > MAX_TEXT:
        raise UsageError(f"{flag} is longer than {MAX_TEXT} characters ({len(text)})")
    return text


# --- settings -------------------------------------------------------------------------------


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
    name: str = ""
    readonly: bool = False

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

    @property
    def title(self) -> str:
        """How output names it: 'paper-a (tcp://...)', or the endpoint alone."""
        if self.name and self.name != endpoint_name(self.endpoint):
            return f"{self.name} ({self.endpoint})"
        return self.endpoint


def load(args: argparse.Namespace) -> Config:
    """The config with --timeout-ms / --retries applied; logging to stderr only."""
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


def _positive(value: _Number, config: Config, key: str, flag: str) -> _Number:
    """`value` of [console] `key`, which must be > 0 (the error names where it was set)."""
    if value <= 0:
        where = config.source_of("console", key)
        name = flag if where == "command line" else f"console.{key} ({where})"
        raise UsageError(f"{name} must be > 0, got {value}")
    return value


def gateway_targets(args: argparse.Namespace, config: Config) -> list[GatewayTarget]:
    """Every gateway `--gateway` names (see console.link.gateways); [] for 'none'."""
    settings = config.settings
    console = settings.console
    timeout_ms = _positive(console.request_timeout_ms, config, "request_timeout_ms",
                           "--timeout-ms")
    retries = _positive(console.request_retries, config, "request_retries", "--retries")
    late_ms = _positive(console.heartbeat_late_ms, config, "heartbeat_late_ms",
                        "console.heartbeat_late_ms")
    limits = p.Limits.from_settings(settings.limits)
    return [
        GatewayTarget(endpoint=spec.endpoint, timeout_ms=timeout_ms, retries=retries,
                      late_ms=late_ms, keys_dir=spec.keys_dir, limits=limits,
                      name=spec.name, readonly=spec.readonly)
        for spec in resolve_gateways(config, args.gateway, keys_dir=args.keys)
    ]


def gateway_target(args: argparse.Namespace, config: Config, *,
                   optional: bool = False) -> GatewayTarget:
    """The one gateway to talk to; 'none' is allowed only where it is `optional`."""
    targets = gateway_targets(args, config)
    if len(targets) > 1:
        names = ", ".join(t.name for t in targets)
        raise UsageError(f"{len(targets)} gateways ({names}): give --gateway NAME")
    if targets:
        return targets[0]
    if not optional:
        raise UsageError("no gateway endpoint: give --gateway EP or set [endpoints] gateway")
    console = config.settings.console
    return GatewayTarget(endpoint="", timeout_ms=console.request_timeout_ms,
                         retries=console.request_retries, late_ms=console.heartbeat_late_ms,
                         keys_dir=args.keys)


def worst(codes: Sequence[int]) -> int:
    """The exit code of several gateways: down beats degraded beats healthy."""
    order = {EXIT_OK: 0, EXIT_DEGRADED: 1, EXIT_GATEWAY_DOWN: 2}
    return max(codes, key=lambda code: order.get(code, 3), default=EXIT_OK)


# --- output ---------------------------------------------------------------------------------


def print_json(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj, sort_keys=True) + "\n")


def str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def error_text(reply: Reply) -> str:
    """A REJECTED/ERROR reply in one line: status, code and message."""
    error = reply.error or {}
    code = error.get("code", "?")
    message = error.get("message", "")
    return f"{reply.status} {code}: {message}" if message else f"{reply.status} {code}"


def reply_json(target: GatewayTarget, reply: Reply) -> dict[str, Any]:
    return {
        "v": JSON_VERSION, "name": target.name, "endpoint": target.endpoint,
        "action": reply.action,
        "req_id": reply.req_id, "delivered": reply.delivered, "status": reply.status,
        "data": reply.data, "error": reply.error, "rtt_ms": reply.rtt_ms,
    }


# --- state-changing commands (kill, resume) ---------------------------------------------------


def refuse_unless_allowed(args: argparse.Namespace, config: Config, what: str,
                          target: GatewayTarget | None = None) -> None:
    """Read-only config (or gateway) and a missing --yes stop a command before anything
    is sent."""
    if config.settings.console.readonly:
        where = config.source_of("console", "readonly")
        raise UsageError(f"refusing to {what}: console.readonly is true ({where}); "
                         f"nothing was sent")
    if target is not None and target.readonly:
        raise UsageError(f"refusing to {what}: gateway {target.name} is read-only "
                         f"([gateways.{target.name}] readonly = true); nothing was sent")
    if not args.yes:
        raise UsageError(f"refusing to {what} without --yes; nothing was sent")


def outcome(target: GatewayTarget, reply: Reply,
            describe: Callable[[dict[str, Any]], list[str]]) -> tuple[int, list[str]]:
    """The exit code and the lines for a person of one state-changing request."""
    if not reply.delivered:
        return EXIT_GATEWAY_DOWN, [
            f"{reply.action} NOT delivered: {target.no_reply()}.",
            "The gateway's state is unknown; check it with: tradeconsole status"]
    if not reply.ok:
        return EXIT_DEGRADED, [f"{reply.action} refused: {error_text(reply)}"]
    return EXIT_OK, describe(reply.data if isinstance(reply.data, dict) else {})


def finish(target: GatewayTarget, reply: Reply, as_json: bool,
           describe: Callable[[dict[str, Any]], list[str]]) -> int:
    """Print the outcome of a state-changing request and choose the exit code."""
    code, text = outcome(target, reply, describe)
    if as_json:
        print_json({**reply_json(target, reply), "exit_code": code})
    else:
        stream = sys.stdout if code == EXIT_OK else sys.stderr
        stream.write("\n".join(text) + "\n")
    return code
