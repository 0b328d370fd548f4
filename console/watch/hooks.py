"""Telling the world: an alert's `exec` command and `webhook` POST, off the caller's thread.

Each firing or resolving alert is handed to a small pool of worker threads,
so a command that hangs or a webhook that does not answer never delays a
frame or the exporter. A command gets the alert as JSON on stdin and is
killed after `timeout_s`; a webhook gets it as an HTTP POST, retried with
backoff. Every failure is logged and counted by kind (`failures()`), and a
queue that is full drops the newest hook and counts it, rather than grow.
The workers are daemon threads and `close()` kills a command still running,
so a hook never holds up the exit of the console or the exporter.
"""

from __future__ import annotations

import json
import logging
import shlex
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from queue import Empty, Queue
from typing import Any

log = logging.getLogger(__name__)

EXEC = "exec"
WEBHOOK = "webhook"
KINDS = (EXEC, WEBHOOK)
MAX_PENDING = 64                 # hooks queued or running; beyond it they are dropped
WORKERS = 2
BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 8.0


class HookDispatcher:
    """Runs hooks in the background and counts what happened to them."""

    def __init__(self, *, timeout_s: float = 5.0, retries: int = 2,
                 sleep: Callable[[float], Any] | None = None) -> None:
        self.timeout_s = timeout_s
        self.retries = retries
        self._lock = threading.Lock()
        self._pending = 0
        self._idle = threading.Condition(self._lock)
        self._sent = dict.fromkeys(KINDS, 0)
        self._failed = dict.fromkeys(KINDS, 0)
        self._closed = threading.Event()
        # Backoff between webhook attempts; close() cuts it short.
        self._sleep = sleep or self._closed.wait
        self._jobs: Queue[tuple[str, Callable[[str, dict[str, Any]], bool], str,
                                dict[str, Any]] | None] = Queue()
        self._running: set[subprocess.Popen[bytes]] = set()
        self._workers: list[threading.Thread] = []

    # -- what callers see -------------------------------------------------------------

    def sent(self) -> dict[str, int]:
        with self._lock:
            return dict(self._sent)

    def failures(self) -> dict[str, int]:
        with self._lock:
            return dict(self._failed)

    def wait_idle(self, timeout_s: float) -> bool:
        """Wait until no hook is queued or running (for shutdown and tests)."""
        deadline = time.monotonic() + timeout_s
        with self._idle:
            while self._pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True

    def close(self, wait_s: float = 0.5) -> None:
        """Let hooks finish for up to `wait_s`; then no retry, no new hook, commands killed."""
        self.wait_idle(wait_s)
        self._closed.set()
        with self._lock:
            running = list(self._running)
        for proc in running:
            proc.kill()
        for _ in self._workers:
            self._jobs.put(None)

    # -- sending ----------------------------------------------------------------------

    def run_exec(self, command: str, alert: dict[str, Any]) -> None:
        self._submit(EXEC, self._exec, command, alert)

    def post_webhook(self, url: str, alert: dict[str, Any]) -> None:
        self._submit(WEBHOOK, self._webhook, url, alert)

    def _submit(self, kind: str, job: Callable[[str, dict[str, Any]], bool],
                target: str, alert: dict[str, Any]) -> None:
        closed = self._closed.is_set()
        with self._lock:
            if closed or self._pending >= MAX_PENDING:
                self._failed[kind] += 1
                log.warning("alert %s for %s dropped: %s", kind, alert.get("rule"),
                            "shutting down" if closed else f"{MAX_PENDING} hooks queued")
                return
            self._pending += 1
            if len(self._workers) < WORKERS:
                worker = threading.Thread(target=self._work, name="alert-hook", daemon=True)
                self._workers.append(worker)
                worker.start()
        self._jobs.put((kind, job, target, alert))

    def _work(self) -> None:
        while True:
            try:
                item = self._jobs.get(timeout=1.0)
            except Empty:
                if self._closed.is_set():
                    return
                continue
            if item is None:
                return
            kind, job, target, alert = item
            ok = False
            if not self._closed.is_set():
                try:
                    ok = job(target, alert)
                except Exception:  # a hook must never take a worker down with it
                    log.exception("alert %s %r raised", kind, target)
            self._done(kind, ok)

    def _done(self, kind: str, ok: bool) -> None:
        with self._idle:
            (self._sent if ok else self._failed)[kind] += 1
            self._pending -= 1
            self._idle.notify_all()

    def _exec(self, command: str, alert: dict[str, Any]) -> bool:
        body = json.dumps(alert).encode()
        try:
            argv = shlex.split(command)
        except ValueError as exc:
            log.error("alert exec %r: cannot split the command line (%s)", command, exc)
            return False
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE)
        except OSError as exc:
            log.error("alert exec %r for %s: %s", command, alert.get("rule"), exc)
            return False
        with self._lock:
            self._running.add(proc)
        if self._closed.is_set():  # close() ran before it could see this command
            proc.kill()
        try:
            _, stderr = proc.communicate(body, timeout=self.timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            log.error("alert exec %r for %s: killed after %.1f s", command, alert.get("rule"),
                      self.timeout_s)
            return False
        finally:
            with self._lock:
                self._running.discard(proc)
        if proc.returncode != 0:
            log.error("alert exec %r for %s: exit code %d: %s", command, alert.get("rule"),
                      proc.returncode, stderr.decode(errors="replace").strip()[:200])
            return False
        return True

    def _webhook(self, url: str, alert: dict[str, Any]) -> bool:
        body = json.dumps(alert).encode()
        delay = BACKOFF_FIRST_S
        for attempt in range(self.retries + 1):
            if self._closed.is_set():
                log.error("alert webhook %s for %s: abandoned at shutdown", url,
                          alert.get("rule"))
                return False
            request = urllib.request.Request(
                url, data=body, method="POST",
                headers={"Content-Type": "application/json", "User-Agent": "tradeconsole"})
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                    if 200 <= response.status < 300:
                        return True
                    problem = f"HTTP {response.status}"
            except urllib.error.HTTPError as exc:
                problem = f"HTTP {exc.code}"
                if 400 <= exc.code < 500 and exc.code != 429:
                    log.error("alert webhook %s for %s: %s (not retried)", url,
                              alert.get("rule"), problem)
                    return False
            except (urllib.error.URLError, OSError, ValueError) as exc:
                problem = str(getattr(exc, "reason", exc))
            log.warning("alert webhook %s for %s: %s (attempt %d of %d)", url, alert.get("rule"),
                        problem, attempt + 1, self.retries + 1)
            if attempt < self.retries and not self._closed.is_set():
                self._sleep(delay)
                delay = min(delay * 2, BACKOFF_MAX_S)
        log.error("alert webhook %s for %s: failed after %d attempts", url, alert.get("rule"),
                  self.retries + 1)
        return False
