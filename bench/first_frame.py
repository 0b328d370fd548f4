"""Time from starting `tradeconsole` to its first painted frame, under a real pty.

The console runs exactly as a user starts it (`python -m console --feed EP
--gateway none`), on a pseudo-terminal of 200x50, with its own config, data
and log directories in a temporary folder. The clock starts just before the
process is spawned and stops when the terminal receives the table header,
which is part of the first frame Textual paints. A first unmeasured run
lets Python write its bytecode cache, as an installed console would have.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path

from bench.procs import ROOT, child_env

COLUMNS, ROWS = 200, 50
MARKER = b"Symbol"          # the tick table's first column title
TIMEOUT_S = 30.0


def _set_winsize(fd: int, rows: int, columns: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))


def console_env(home: Path) -> dict[str, str]:
    """The environment of a console started as a user would, with its own folders in `home`."""
    env = child_env({
        "TERM": "xterm-256color", "COLORTERM": "truecolor",
        "XDG_CONFIG_HOME": str(home / "config"), "XDG_DATA_HOME": str(home / "data"),
        "XDG_STATE_HOME": str(home / "state"), "XDG_CACHE_HOME": str(home / "cache"),
    })
    env.pop("TEXTUAL", None)
    return env


def time_first_frame(feed: str, home: Path, *, write_bytecode: bool = True) -> float:
    """Seconds from spawn to the first frame's bytes on the terminal."""
    master, slave = pty.openpty()
    _set_winsize(slave, ROWS, COLUMNS)
    env = console_env(home)
    if write_bytecode:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "console", "--feed", feed, "--gateway", "none"],
        stdin=slave, stdout=slave, stderr=slave, env=env, cwd=ROOT, start_new_session=True,
    )
    os.close(slave)
    seen = b""
    try:
        while True:
            remaining = started + TIMEOUT_S - time.perf_counter()
            if remaining <= 0:
                raise RuntimeError(f"no frame within {TIMEOUT_S:.0f}s; output so far: "
                                   f"{seen[-300:]!r}")
            ready, _, _ = select.select([master], [], [], remaining)
            if not ready:
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                chunk = b""
            if not chunk:
                raise RuntimeError(f"the console exited before painting: {seen[-300:]!r}")
            seen = seen[-len(MARKER):] + chunk
            if MARKER in seen:
                return time.perf_counter() - started
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        _drain_until_exit(master, proc)
        os.close(master)


def _drain_until_exit(master: int, proc: subprocess.Popen[bytes]) -> None:
    """Keep reading the pty while the console shuts down (a full pty would block it)."""
    deadline = time.monotonic() + 5.0
    while proc.poll() is None and time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.05)
        if ready:
            try:
                os.read(master, 65536)
            except OSError:
                break
    if proc.poll() is None:
        proc.kill()
    proc.wait(5.0)


def measure(feed: str, runs: int) -> list[float]:
    """One warm-up run (bytecode cache), then `runs` measured ones."""
    with tempfile.TemporaryDirectory(prefix="tc-bench-ff-") as tmp:
        home = Path(tmp)
        time_first_frame(feed, home)
        return [time_first_frame(feed, home) for _ in range(runs)]
