"""What the console's helper processes (ingest, gateway link) share: pipe, spawn, codec.

Each helper is `python -m console.<module> --control ENDPOINT --settings JSON`.
The UI binds a PAIR socket on a socket file in a private directory (no other
user can reach it), the helper connects, and every message is two frames,
[kind, body], the body msgpack written by msgspec. A helper dies with the
console (PR_SET_PDEATHSIG) and ignores SIGINT and SIGHUP: the console decides
when it stops.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import msgpack
import msgspec
import zmq

from services.runtime.errors import UsageError
from services.runtime.launcher import die_with_parent

# Answers every helper gives when it starts: STARTED {"pid"} or FAILED {"kind", "message"}.
STARTED = b"started"
FAILED = b"failed"
FAILURE_USAGE = "usage"
FAILURE_OS = "os"
FAILURE_INTERNAL = "internal"
# A helper checks this often that the console, its parent, is still there.
PARENT_CHECK_S = 1.0


def _enc_hook(value: Any) -> Any:
    """Types msgspec does not know that feed payloads and replies can hold."""
    if isinstance(value, msgpack.Timestamp):  # decoded by msgpack-python
        return value.to_datetime()
    if isinstance(value, datetime):
        return value
    return repr(value)


_encoder = msgspec.msgpack.Encoder(enc_hook=_enc_hook)
encode = _encoder.encode
_any_decoder = msgspec.msgpack.Decoder()


def decode_any(body: bytes) -> Any:
    return _any_decoder.decode(body)


@dataclass
class Pipe:
    """The UI's end: a bound PAIR socket and the private directory holding its file."""

    socket: zmq.Socket
    endpoint: str
    tmpdir: str | None

    def close(self) -> None:
        self.socket.close(linger=0)
        if self.tmpdir is not None:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            self.tmpdir = None


def open_pipe(context: zmq.Context, name: str) -> Pipe:
    sock = context.socket(zmq.PAIR)
    sock.setsockopt(zmq.LINGER, 0)
    tmpdir = None
    if os.name == "posix":
        tmpdir = tempfile.mkdtemp(prefix="tradeconsole-")
        sock.bind(f"ipc://{tmpdir}/{name}")
    else:  # pragma: no cover - no ipc transport
        sock.bind("tcp://127.0.0.1:*")
    return Pipe(sock, sock.getsockopt_string(zmq.LAST_ENDPOINT), tmpdir)


def spawn(module: str, endpoint: str, settings: dict[str, Any]) -> subprocess.Popen[bytes]:
    """Start `python -m module` on the pipe; it must answer STARTED or FAILED."""
    command = [sys.executable, "-m", module, "--control", endpoint,
               "--settings", json.dumps(settings)]
    return subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, env=_child_env(),
        preexec_fn=die_with_parent if sys.platform.startswith("linux") else None,
    )


def reap(popen: subprocess.Popen[bytes] | None, timeout: float) -> None:
    """Wait for a helper to exit; kill it if it does not within `timeout`."""
    if popen is None:
        return
    try:
        popen.wait(timeout)
    except subprocess.TimeoutExpired:
        popen.kill()
        popen.wait(5.0)


@dataclass
class HelperEnd:
    """The helper's end: its settings and the PAIR socket connected to the UI."""

    settings: dict[str, Any]
    context: zmq.Context
    control: zmq.Socket

    def close(self) -> None:
        self.control.close()
        self.context.term()


def begin_helper(prog: str, description: str | None, argv: list[str] | None,
                 log_name: str) -> HelperEnd:
    """A helper's first steps: arguments, signals, logging, the pipe to the UI."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--control", required=True, help="the UI's PAIR endpoint")
    parser.add_argument("--settings", required=True, help="JSON: what the helper needs")
    args = parser.parse_args(argv)
    for sig in (signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    settings = json.loads(args.settings)
    _setup_logging(log_name, settings)
    context = zmq.Context()
    control = context.socket(zmq.PAIR)
    control.setsockopt(zmq.LINGER, 1000)  # let the last answers leave
    control.connect(args.control)
    return HelperEnd(settings, context, control)


def _setup_logging(name: str, settings: dict[str, Any]) -> None:
    level = settings.get("log_level")
    if not level:
        return
    from services.runtime.logsetup import setup_logging

    # The console already checked these; never fail to start over a log file.
    with contextlib.suppress(OSError, UsageError):
        setup_logging(name, level, settings.get("log_dir") or "", stderr=False)


def _child_env() -> dict[str, str]:
    """This environment, with the directory holding `console` importable by the child."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    paths = env.get("PYTHONPATH", "")
    if root not in paths.split(os.pathsep):
        env["PYTHONPATH"] = root + (os.pathsep + paths if paths else "")
    return env
