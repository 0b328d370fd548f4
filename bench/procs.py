"""Child processes for the benchmark: start, read their READY/result lines, stop.

Every phase runs its parts as separate processes (feeder, reference loops,
the console) so that each is measured in a fresh interpreter and none of
them shares a GIL with the orchestrator. Children get the repository on
PYTHONPATH, die with the benchmark (stdin closes, PR_SET_PDEATHSIG), and
every wait has a deadline.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from services.runtime.launcher import die_with_parent
from services.runtime.sockets import READY_PREFIX

ROOT = Path(__file__).resolve().parent.parent
RESULT_PREFIX = "BENCH-RESULT "


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"]
                                     if env.get("PYTHONPATH") else "")
    env["PYTHONUNBUFFERED"] = "1"
    if extra:
        env.update(extra)
    return env


class Child:
    """One benchmark child: `python -m MODULE ARGS`, lines read from its stdout."""

    def __init__(self, module: str, args: Sequence[str], *, env: dict[str, str] | None = None,
                 log: Path | None = None) -> None:
        self.module = module
        self.log = log
        stderr: Any = log.open("ab") if log is not None else subprocess.DEVNULL
        try:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", module, *args],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr,
                env=env or child_env(), cwd=ROOT,
                preexec_fn=die_with_parent if sys.platform.startswith("linux") else None,
            )
        finally:
            if log is not None:
                stderr.close()
        self._buffer = b""

    @property
    def pid(self) -> int:
        return self.popen.pid

    def line(self, prefix: str, timeout: float) -> dict[str, Any]:
        """The JSON after the next stdout line starting with `prefix`, within `timeout`."""
        assert self.popen.stdout is not None
        fd = self.popen.stdout.fileno()
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while True:
                while b"\n" in self._buffer:
                    raw, _, self._buffer = self._buffer.partition(b"\n")
                    text = raw.decode(errors="replace")
                    if text.startswith(prefix):
                        return json.loads(text[len(prefix):])
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                if not sel.select(remaining):
                    continue
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                self._buffer += chunk
        state = "exited" if self.popen.poll() is not None else "is silent"
        raise RuntimeError(f"{self.module} {state}: no {prefix.strip()} line within "
                           f"{timeout:.0f}s{self._log_tail()}")

    def ready(self, timeout: float = 60.0) -> dict[str, Any]:
        return self.line(READY_PREFIX, timeout)

    def result(self, timeout: float) -> dict[str, Any]:
        return self.line(RESULT_PREFIX, timeout)

    def finish(self, timeout: float) -> dict[str, Any]:
        """Close stdin (a child that runs until told) and read its result line."""
        if self.popen.stdin is not None:
            with contextlib.suppress(OSError):
                self.popen.stdin.close()
        return self.result(timeout)

    def _log_tail(self) -> str:
        if self.log is None or not self.log.exists():
            return ""
        lines = self.log.read_text(errors="replace").strip().splitlines()
        return f" ({lines[-1]})" if lines else ""

    def stop(self, timeout: float = 5.0) -> None:
        """Close stdin (the polite stop), then SIGTERM, then SIGKILL."""
        if self.popen.stdin is not None:
            with contextlib.suppress(OSError):
                self.popen.stdin.close()
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.terminate()
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout)
        if self.popen.stdout is not None:
            self.popen.stdout.close()


def emit_result(result: dict[str, Any]) -> None:
    """A child's answer to the orchestrator: one line of JSON on stdout."""
    sys.stdout.write(RESULT_PREFIX + json.dumps(result) + "\n")
    sys.stdout.flush()


def stop_event_on_eof_or_term() -> threading.Event:
    """An Event set when the orchestrator closes stdin or sends SIGTERM.

    Call from the main thread (it installs the SIGTERM handler).
    """
    stop = threading.Event()

    def read_until_eof() -> None:
        with contextlib.suppress(OSError, ValueError):
            while sys.stdin.buffer.read(4096):
                pass
        stop.set()

    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    threading.Thread(target=read_until_eof, daemon=True).start()
    return stop
