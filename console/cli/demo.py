"""`tradeconsole demo`: a whole fabric on this machine in one command.

Starts a publisher and two gateways (`paper-a`, `paper-b`, each a paper
account fed by the same simulated market; `--gateways N` for one to four) as
child processes on free local ports (they bind `tcp://127.0.0.1:*` and
announce what they got), opens the console against all of them, and stops
them when the console exits — on `q`, Ctrl+C, SIGHUP or a crash. The
children also get PR_SET_PDEATHSIG, so even a killed console leaves no
orphans.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from console.cli.run import add_quiet_argument
from services.runtime.config import load_for_args, user_data_dir, user_log_dir
from services.runtime.errors import UsageError
from services.runtime.launcher import ServiceProcess, ServiceStartError, spawn

ANY_LOCAL = "tcp://127.0.0.1:*"
MAX_GATEWAYS = 4


def gateway_names(count: int) -> list[str]:
    return [f"paper-{chr(ord('a') + i)}" for i in range(count)]


def gateway_key(index: int) -> str:
    """How --no-console names gateway i: gateway, gateway2, gateway3, …"""
    return "gateway" if index == 0 else f"gateway{index + 1}"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--symbols", type=int, default=24, help="simulated symbols (default 24)")
    parser.add_argument("--rate", type=float, default=500.0,
                        help="ticks per second over all symbols (default 500; 0 = flat out)")
    parser.add_argument("--gateways", type=int, default=2, metavar="N",
                        help=f"paper gateways to start, 1 to {MAX_GATEWAYS} (default 2: "
                             "paper-a and paper-b)")
    parser.add_argument("--fps", type=int, help="console frames per second")
    parser.add_argument("--theme", help="console theme")
    parser.add_argument("--readonly", action="store_true", default=None,
                        help="disable every state-changing command")
    parser.add_argument("--state-dir", metavar="DIR",
                        help="gateway state dir (default: a fresh one under the user data dir)")
    add_quiet_argument(parser)
    parser.add_argument("--no-console", action="store_true",
                        help="only start the services and print their endpoints (Ctrl+C stops)")


@contextlib.contextmanager
def running_fabric(args: argparse.Namespace, log_dir: Path) -> Iterator[dict[str, str]]:
    """Start the publisher then the gateways (fed by it); always stop them on the way out."""
    if not 1 <= args.gateways <= MAX_GATEWAYS:
        raise UsageError(f"--gateways must be 1 to {MAX_GATEWAYS}, got {args.gateways}")
    if args.symbols < 1:
        raise UsageError(f"--symbols must be at least 1, got {args.symbols}")
    if args.rate < 0:
        raise UsageError(f"--rate must be >= 0 (0 = as fast as possible), got {args.rate}")
    state_dir = Path(args.state_dir) if args.state_dir else Path(
        tempfile.mkdtemp(prefix="demo-", dir=_ensure(user_data_dir() / "demo"))
    )
    started: list[ServiceProcess] = []
    try:
        publisher = spawn("publisher", [
            "publisher", "--bind", ANY_LOCAL, "--symbols", str(args.symbols),
            "--rate", str(args.rate), "--node", "demo-pub",
        ], log_path=log_dir / "demo-publisher.stderr")
        started.append(publisher)
        endpoints = {"publisher": publisher.endpoints["pub"]}
        for index, name in enumerate(gateway_names(args.gateways)):
            gateway = spawn("gateway", [
                "gateway", "--bind", ANY_LOCAL, "--pub-bind", ANY_LOCAL,
                "--feed", publisher.endpoints["pub"],
                "--state-dir", str(_ensure(state_dir / name)), "--node", f"demo-{name}",
            ], log_path=log_dir / f"demo-{name}.stderr")
            started.append(gateway)
            key = gateway_key(index)
            endpoints[key] = gateway.endpoints["cmd"]
            endpoints[f"{key}_pub"] = gateway.endpoints["pub"]
        yield {**endpoints, "state_dir": str(state_dir)}
    except ServiceStartError as exc:
        raise UsageError(f"demo could not start its services: {exc}") from exc
    finally:
        for proc in reversed(started):
            proc.stop()


def _ensure(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _wait_for_signal() -> None:
    stop = {"now": False}

    def handler(signum: int, frame: object) -> None:
        stop["now"] = True

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, handler)
    while not stop["now"]:
        signal.pause()


def run(args: argparse.Namespace) -> int:
    config = load_for_args(args, {
        "console.fps": args.fps, "console.theme": args.theme, "console.readonly": args.readonly,
    })
    log_dir = _ensure(Path(config.settings.logging.dir or user_log_dir()))
    # SIGTERM/SIGHUP become SystemExit so the finally blocks stop the children.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    with running_fabric(args, log_dir) as endpoints:
        if args.no_console:
            for name, endpoint in endpoints.items():
                print(f"{name:12} {endpoint}", flush=True)
            _wait_for_signal()
            return 0
        from console.cli.run import run_console

        names = gateway_names(args.gateways)
        keys = [gateway_key(i) for i in range(len(names))]
        return run_console(
            config,
            feeds=[endpoints["publisher"], *(endpoints[f"{k}_pub"] for k in keys)],
            gateway=[f"{name}={endpoints[k]}" for name, k in zip(names, keys, strict=True)],
            title="tradeconsole demo",
            quiet=args.quiet,
        )
