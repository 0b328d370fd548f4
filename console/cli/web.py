"""`tradeconsole web`: the console in a browser, through textual-serve.

textual-serve has no authentication, so the server listens on localhost by
default and the console it starts is read-only unless `--allow-control` is
given explicitly. Every browser session runs its own console process.
"""

from __future__ import annotations

import argparse
import shlex
import sys

from services.runtime.config import load_for_args
from services.runtime.errors import UsageError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8000, help="HTTP port (default 8000)")
    parser.add_argument("--allow-control", action="store_true",
                        help="allow state-changing commands (kill, resume) from the browser")
    parser.add_argument("--feed", action="append", metavar="EP", help="feed endpoint(s)")
    parser.add_argument("--gateway", metavar="EP", help="gateway endpoint")
    parser.add_argument("--keys", metavar="DIR", help="CURVE key directory")
    parser.add_argument("--public-url", metavar="URL",
                        help="URL the browser uses, when behind a reverse proxy")


def console_command(args: argparse.Namespace) -> str:
    """The command line each browser session runs: the same console, maybe read-only."""
    parts = [sys.executable, "-m", "console"]
    for option in ("config", "profile", "gateway", "keys"):
        value = getattr(args, option, None)
        if value:
            parts += [f"--{option}", value]
    for feed in args.feed or []:
        parts += ["--feed", feed]
    if not args.allow_control:
        parts.append("--readonly")
    return shlex.join(parts)


def run(args: argparse.Namespace) -> int:
    if not 0 < args.port < 65536:
        raise UsageError(f"--port must be 1..65535, got {args.port}")
    load_for_args(args)  # a bad config fails here, with one line, not in the browser
    try:
        from textual_serve.server import Server
    except ImportError as exc:
        raise UsageError(
            "textual-serve is not installed; install it with: pip install 'tradeconsole[web]'"
        ) from exc
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: serving on {args.host} without authentication; anyone who can reach "
              "it can watch the console", file=sys.stderr)
    mode = "with control" if args.allow_control else "read-only"
    print(f"serving the console ({mode}) on http://{args.host}:{args.port}", flush=True)
    server = Server(console_command(args), host=args.host, port=args.port,
                    title="tradeconsole", public_url=args.public_url)
    server.serve()
    return 0
