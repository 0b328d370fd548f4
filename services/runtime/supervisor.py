"""One supervisor for the console's child processes (the ingest, the gateway link).

A child is `python -m MODULE --control ENDPOINT --settings JSON` (its entry
point is services.runtime.child). The supervisor binds a PAIR socket on a
socket file in a private directory (no other user can reach it), starts the
child, and waits for its STARTED or FAILED: a failure raises UsageError,
OSError or ChildError with the child's own message. Afterwards it watches
the child: the owner says `heard()` whenever the child shows it is alive,
`silent` turns true after `silent_s` without that (the owner shows DOWN),
and `supervise()` kills a child silent for `hung_s`, reaps one that exited
and starts another, after `backoff_s` if the last one died that soon after
its start. The kernel ends a child when its parent dies (PR_SET_PDEATHSIG).

The owner (console.feed.process, console.link.process) supplies a ChildSpec
and its settings, and hooks for what a start or a loss means to it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zmq

from services.runtime.child_pipe import (
    FAILED,
    STARTED,
    STOP,
    ChildError,
    decode_any,
    encode,
    error_of,
)
from services.runtime.errors import UsageError
from services.runtime.launcher import die_with_parent

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChildSpec:
    """What one kind of child is: its module, its name in messages, its timeouts."""

    module: str                 # run as `python -m module`
    name: str                   # in messages: "the {name} did not answer"
    pipe_name: str              # the socket file's name in the private directory
    silent_s: float             # no sign of life this long: `silent` (shown DOWN)
    hung_s: float               # no sign of life this long: killed and started again
    backoff_s: float            # died this soon after its start: restarted after this pause
    start_timeout_s: float = 15.0
    stop_timeout_s: float = 2.0
    exit_detail: str = ""       # added to the notice that an exited child is restarted


class Supervisor:
    """Starts, watches and restarts one child process over a private pipe.

    Every method is for one thread, the owner's, except `heard()`, `silent`,
    `running`, `alive` and `pid`, which any thread may use. Hooks run on the
    owner's thread: `on_started()` after every STARTED, `on_lost()` once a
    child that had started is gone (killed or exited), `on_note(message)`
    for every restart notice (by default an ERROR log line).
    """

    def __init__(
        self,
        spec: ChildSpec,
        settings: dict[str, Any],
        *,
        on_started: Callable[[], None] | None = None,
        on_lost: Callable[[], None] | None = None,
        on_note: Callable[[str], None] | None = None,
    ) -> None:
        self.spec = spec
        self.settings = settings  # the owner may change them for the next start
        self._on_started = on_started
        self._on_lost = on_lost
        self._on_note = on_note or (lambda message: log.error("%s", message))
        self._lock = threading.Lock()
        self._context: zmq.Context | None = None
        self._socket: zmq.Socket | None = None
        self._tmpdir: str | None = None
        self._endpoint = ""
        self._popen: subprocess.Popen[bytes] | None = None
        self._pid: int | None = None
        self._started_at = 0.0
        self._heard_at = 0.0
        self._running = False       # a child said STARTED and has not been lost since
        self._restart_due: float | None = None
        self.restarts = 0           # times a child was started again

    # --- lifecycle --------------------------------------------------------------------

    def start(self) -> None:
        """Open the pipe, start a child and wait for its STARTED; raise what it reported."""
        if self._context is not None:
            return
        self._context = zmq.Context()
        try:
            self._open_pipe()
            self._spawn()
        except BaseException:
            self._close_pipe()
            raise

    def stop(self) -> None:
        """Ask the child to exit, make sure it did, close the pipe (no restart after this)."""
        if self._socket is not None and self._popen is not None:
            with contextlib.suppress(zmq.ZMQError):
                self._socket.send_multipart([STOP, encode(None)], zmq.NOBLOCK)
        with self._lock:
            self._running = False
        self._reap(self.spec.stop_timeout_s)
        self._close_pipe()

    @property
    def socket(self) -> zmq.Socket | None:
        """The parent's end of the pipe (None when stopped), for the owner's poll."""
        return self._socket

    @property
    def running(self) -> bool:
        """A child has started and has not been lost since."""
        return self._running

    @property
    def alive(self) -> bool:
        """The child process exists and has not exited."""
        popen = self._popen
        return popen is not None and popen.poll() is None

    @property
    def pid(self) -> int | None:
        """The child's pid (it changes after a restart)."""
        return self._pid

    # --- signs of life ------------------------------------------------------------------

    def heard(self) -> None:
        """The child just showed it is alive (an update, a status)."""
        with self._lock:
            self._heard_at = time.monotonic()

    @property
    def silent(self) -> bool:
        """No child running, or none heard for `silent_s`: the owner cannot vouch for it."""
        with self._lock:
            running, heard_at = self._running, self._heard_at
        return not running or time.monotonic() - heard_at > self.spec.silent_s

    # --- the pipe ----------------------------------------------------------------------

    def send(self, kind: bytes, body: Any) -> None:
        """Send without waiting: zmq.Again if the pipe is full, ChildError if no child runs."""
        if self._socket is None or not self.alive:
            raise ChildError(f"the {self.spec.name} is not running")
        self._socket.send_multipart([kind, encode(body)], zmq.NOBLOCK)

    def receive(self) -> list[tuple[bytes, bytes]]:
        """Every message waiting on the pipe, without waiting (none when no child runs)."""
        messages: list[tuple[bytes, bytes]] = []
        sock = self._socket
        if sock is None or self._popen is None:
            return messages
        while True:
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return messages
            if len(frames) == 2:
                messages.append((frames[0], frames[1]))

    def await_reply(
        self,
        kinds: Collection[bytes],
        timeout: float,
        keep: Callable[[bytes, bytes], None] | None = None,
    ) -> tuple[bytes, bytes]:
        """The child's next message of one of `kinds`; FAILED raises what it stands for.

        Other messages met meanwhile go to `keep` (or are dropped). ChildError
        when the child exits or `timeout` passes first.
        """
        sock, popen = self._socket, self._popen
        if sock is None or popen is None:
            raise ChildError(f"the {self.spec.name} is not running")
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ChildError(f"the {self.spec.name} did not answer within {timeout:.0f} s")
            if not sock.poll(min(remaining, 0.1) * 1000):
                code = popen.poll()
                if code is not None:
                    raise ChildError(f"the {self.spec.name} exited with code {code}")
                continue
            frames = sock.recv_multipart()
            if len(frames) != 2:
                continue
            kind, body = frames
            if kind == FAILED:
                raise error_of(body, self.spec.name)
            if kind in kinds:
                return kind, body
            if keep is not None:
                keep(kind, body)

    # --- supervision ------------------------------------------------------------------

    def supervise(self) -> None:
        """Restart a child that exited or hung; call it often (each frame, each poll)."""
        if self._context is None:
            return
        now = time.monotonic()
        popen = self._popen
        if popen is not None:
            code = popen.poll()
            with self._lock:
                heard_at = self._heard_at
            if code is None and now - heard_at <= self.spec.hung_s:
                return
            name = self.spec.name
            if code is None:
                self._on_note(f"{name} {self._pid} stopped answering; restarting it")
                popen.kill()
            else:
                detail = f" ({self.spec.exit_detail})" if self.spec.exit_detail else ""
                self._on_note(f"{name} {self._pid} exited with code {code}; "
                              f"restarting it{detail}")
            with self._lock:
                self._running = False
            self._reap(1.0)
            if self._on_lost is not None:
                self._on_lost()
            quick = now - self._started_at < self.spec.backoff_s
            self._restart_due = now + self.spec.backoff_s if quick else now
        if self._restart_due is None or now < self._restart_due:
            return
        self._restart_due = None
        try:
            self._spawn()
        except (UsageError, OSError, ChildError) as exc:
            self._on_note(f"{self.spec.name} failed to start again: {exc}")
            self._restart_due = time.monotonic() + self.spec.backoff_s
            return
        self.restarts += 1

    # --- inside ------------------------------------------------------------------------

    def _open_pipe(self) -> None:
        assert self._context is not None
        sock = self._context.socket(zmq.PAIR)
        sock.setsockopt(zmq.LINGER, 0)
        if os.name == "posix":
            self._tmpdir = tempfile.mkdtemp(prefix="tradeconsole-")
            sock.bind(f"ipc://{self._tmpdir}/{self.spec.pipe_name}")
        else:  # pragma: no cover - no ipc transport
            sock.bind("tcp://127.0.0.1:*")
        self._socket = sock
        self._endpoint = sock.getsockopt_string(zmq.LAST_ENDPOINT)

    def _close_pipe(self) -> None:
        if self._socket is not None:
            self._socket.close(linger=0)
            self._socket = None
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None
        if self._context is not None:
            self._context.term()
            self._context = None

    def _spawn(self) -> None:
        """Start a child and wait for its STARTED; raise what it reported otherwise."""
        command = [sys.executable, "-m", self.spec.module, "--control", self._endpoint,
                   "--settings", json.dumps(self.settings)]
        self._popen = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, env=_child_env(),
            preexec_fn=die_with_parent if sys.platform.startswith("linux") else None,
        )
        self._started_at = time.monotonic()
        try:
            _, body = self.await_reply({STARTED}, self.spec.start_timeout_s)
        except BaseException:
            self._reap(0.5)
            raise
        self._pid = int(decode_any(body)["pid"])
        with self._lock:
            self._heard_at = time.monotonic()
            self._running = True
        if self._on_started is not None:
            self._on_started()

    def _reap(self, timeout: float) -> None:
        """Wait for the child to exit; kill it if it does not within `timeout`."""
        popen, self._popen = self._popen, None
        if popen is None:
            return
        try:
            popen.wait(timeout)
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.wait(5.0)


def _child_env() -> dict[str, str]:
    """This environment, with the directory holding the child's package importable."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    paths = env.get("PYTHONPATH", "")
    if root not in paths.split(os.pathsep):
        env["PYTHONPATH"] = root + (os.pathsep + paths if paths else "")
    return env
