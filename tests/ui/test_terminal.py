"""The console in a real pseudo-terminal: it draws, and it goes away with its terminal.

When an ssh session drops, the console's terminal vanishes; the process must
notice (SIGHUP, end of input) and exit promptly instead of spinning a core.
"""

from __future__ import annotations

import os
import pty
import select
import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import wait_until


def spawn_in_pty(args: list[str], tmp_path: Path) -> tuple[int, int]:
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "cfg"),
               XDG_DATA_HOME=str(tmp_path / "data"), XDG_STATE_HOME=str(tmp_path / "state"),
               TERM="xterm-256color", COLUMNS="100", LINES="30")
    env = {k: v for k, v in env.items() if not k.startswith("TRADECONSOLE_")}
    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child
        os.execve(sys.executable, [sys.executable, "-m", "console", *args], env)
    return pid, fd


def read_until(fd: int, needle: bytes, timeout: float = 20.0) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    while needle not in seen:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"{needle!r} never appeared; got {seen[-400:]!r}"
        ready, _, _ = select.select([fd], [], [], min(remaining, 0.5))
        if ready:
            try:
                seen += os.read(fd, 65536)
            except OSError:
                break
    return seen


def reap(pid: int) -> int | None:
    """The exit code once the child has exited, else None (never blocks)."""
    done, status = os.waitpid(pid, os.WNOHANG)
    return os.waitstatus_to_exitcode(status) if done else None


def kill_if_running(pid: int) -> None:
    """A failed test must not leave a console running."""
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


@pytest.mark.parametrize("how", ["close-terminal", "sighup"])
def test_console_exits_when_the_terminal_goes_away(services: Any, tmp_path: Path,
                                                   how: str) -> None:
    feed = services.publisher("--symbols", "8", "--rate", "200").endpoints["pub"]
    pid, fd = spawn_in_pty(["--feed", feed, "--gateway", "none"], tmp_path)
    codes: list[int] = []
    try:
        read_until(fd, b"feeds 1/1 OK")  # the console is up and drawing
        if how == "close-terminal":
            os.close(fd)
        else:
            os.kill(pid, signal.SIGHUP)

        def gone() -> bool:
            code = reap(pid)
            if code is not None:
                codes.append(code)
            return bool(codes)

        wait_until(gone, timeout=10.0, message="the console to exit after a hangup")
        assert codes == [129], "a hangup ends the console with 128 + SIGHUP"
    finally:
        kill_if_running(pid)
        if how != "close-terminal":
            os.close(fd)
