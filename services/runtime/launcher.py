"""Start services as child processes and stop them without leaving orphans.

Used by `tradeconsole demo`, the tests and the benchmarks. A child is started
with `python -m console SUBCOMMAND ...`, waits for its READY line (with a
deadline, never a fixed sleep), and on Linux is told by the kernel to die if
its parent dies (PR_SET_PDEATHSIG), so even a crashed console leaves nothing.
"""

from __future__ import annotations

import ctypes
import json
import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from services.runtime.sockets import READY_PREFIX

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:  # pragma: no cover - runs in the child
    """preexec_fn for children: the kernel sends SIGTERM when the parent dies."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


class ServiceStartError(RuntimeError):
    """A child service exited or stayed silent instead of announcing READY."""


@dataclass
class ServiceProcess:
    """A running child service and the endpoints it announced."""

    name: str
    popen: subprocess.Popen[bytes]
    endpoints: dict[str, Any] = field(default_factory=dict)
    log_path: Path | None = None

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def signal(self, sig: int) -> None:
        if self.alive():
            self.popen.send_signal(sig)

    def stop(self, timeout: float = 3.0) -> int | None:
        """SIGTERM, wait, then SIGKILL: always returns with the child reaped."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout)
        if self.popen.stdout is not None:
            self.popen.stdout.close()
        return self.popen.returncode

    def log_tail(self, lines: int = 20) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def _read_ready(name: str, stdout: IO[bytes], popen: subprocess.Popen[bytes],
                timeout: float, log_path: Path | None) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    buf = b""
    with selectors.DefaultSelector() as sel:
        sel.register(stdout, selectors.EVENT_READ)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            if not sel.select(remaining):
                continue
            chunk = os.read(stdout.fileno(), 65536)
            if not chunk:
                break
            buf += chunk
            while b"\n" in buf:
                line, _, buf = buf.partition(b"\n")
                text = line.decode(errors="replace")
                if text.startswith(READY_PREFIX):
                    return json.loads(text[len(READY_PREFIX):])
    popen.poll()
    tail = ""
    if log_path is not None and log_path.exists():
        lines = log_path.read_text(errors="replace").strip().splitlines()
        tail = lines[-1] if lines else ""
    state = f"exited with {popen.returncode}" if popen.returncode is not None else \
        f"sent no READY line within {timeout:.0f}s"
    raise ServiceStartError(f"{name} {state}" + (f": {tail}" if tail else ""))


def spawn(
    name: str,
    args: Sequence[str],
    *,
    log_path: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 15.0,
) -> ServiceProcess:
    """Start `python -m console <args>` and wait for its READY line."""
    log = log_path.open("ab") if log_path is not None else subprocess.DEVNULL
    child_env = dict(os.environ if env is None else env)
    child_env.setdefault("PYTHONUNBUFFERED", "1")
    try:
        popen = subprocess.Popen(
            [sys.executable, "-m", "console", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log,
            env=child_env,
            preexec_fn=die_with_parent if sys.platform.startswith("linux") else None,
        )
    finally:
        if log_path is not None and not isinstance(log, int):
            log.close()
    assert popen.stdout is not None
    try:
        endpoints = _read_ready(name, popen.stdout, popen, timeout, log_path)
    except BaseException:
        proc = ServiceProcess(name, popen, {}, log_path)
        proc.stop(1.0)
        raise
    return ServiceProcess(name, popen, endpoints, log_path)
