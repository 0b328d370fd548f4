"""The `tradeconsole` command line: one entry point, lazily imported subcommands.

Every subcommand lives in its own module exposing `add_arguments(parser)` and
`run(args) -> int`. Modules are imported only when chosen, so the console
starts fast. Bad flags, config values and endpoints end with one line and
exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import NoReturn

from services.runtime.about import version
from services.runtime.errors import UsageError
from services.runtime.scheduling import use_default_slice

PROG = "tradeconsole"

# name -> (module, one-line help). The console itself is the default command.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("console.cli.demo", "start a publisher and a gateway locally and open the console"),
    "publisher": ("services.publisher", "publish simulated or replayed ticks on PUB"),
    "gateway": ("services.gateway", "serve commands over a paper broker"),
    "proxy": ("services.proxy", "XSUB/XPUB proxy between many publishers and consoles"),
    "record": ("services.recorder", "record raw frames from a feed to a file"),
    "status": ("console.cli.status", "one-shot health of feeds and gateway (exit 0/1/2/3)"),
    "heartbeat": ("console.cli.heartbeat", "send one HEARTBEAT and print its round-trip time"),
    "kill": ("console.cli.kill", "fire the kill switch (needs --yes)"),
    "resume": ("console.cli.resume", "release the kill switch (needs --yes)"),
    "keys": ("services.keys", "generate CURVE certificates and the allow-list"),
    "config": ("console.cli.config_cmd", "init, show or locate the user config"),
    "web": ("console.cli.web", "serve the console in a browser (textual-serve)"),
    "exporter": ("console.cli.exporter", "serve feed, gateway and alert metrics to Prometheus"),
}
CONSOLE_MODULE = "console.cli.run"
# The fabric's services: latency-critical, whoever started them (services.runtime.scheduling).
SERVICE_COMMANDS = frozenset({"publisher", "gateway", "proxy", "record"})


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a bad argument on one line and exits 2."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {message} (see {self.prog} --help)\n")
        raise SystemExit(2)


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags every command shares: which config, which profile, how much logging."""
    parser.add_argument("--config", metavar="FILE", help="config file instead of the user file")
    parser.add_argument("--profile", metavar="NAME", help="apply [profiles.NAME] from the config")
    parser.add_argument("--log-level", metavar="LEVEL", help="DEBUG, INFO, WARNING or ERROR")


def build_parser(name: str | None) -> tuple[argparse.ArgumentParser, object]:
    module_name, help_text = (CONSOLE_MODULE, "open the console") if name is None \
        else SUBCOMMANDS[name]
    module = importlib.import_module(module_name)
    prog = PROG if name is None else f"{PROG} {name}"
    description = help_text
    if name is None:
        commands = "\n".join(f"  {n:<10} {h}" for n, (_, h) in SUBCOMMANDS.items())
        description = f"{help_text}\n\ncommands (tradeconsole COMMAND --help):\n{commands}"
    parser = OneLineParser(
        prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    if name is None:
        parser.add_argument("-V", "--version", action="version",
                            version=f"{PROG} {version()}",
                            help="print the installed version and exit")
    add_common_arguments(parser)
    module.add_arguments(parser)  # type: ignore[attr-defined]
    parser.set_defaults(command=name)
    return parser, module


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    name = argv[0] if argv and argv[0] in SUBCOMMANDS else None
    if name is not None:
        argv = argv[1:]
    parser, module = build_parser(name)
    args = parser.parse_args(argv)
    if name in SERVICE_COMMANDS:
        use_default_slice()  # not the long slice of a console that started it
    try:
        return int(module.run(args) or 0)  # type: ignore[attr-defined]
    except UsageError as exc:
        sys.stderr.write(f"{parser.prog}: error: {exc}\n")
        return UsageError.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
