"""Alert hooks for real: a webhook against an HTTP server the test runs, commands as processes.

A hook never blocks whoever evaluates the rules, and every failure (a server
that errors, a port nobody listens on, a command that hangs or fails) is
counted by kind and the watch goes on.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from console.model import FEED_DOWN, FEED_OK
from console.watch.hooks import EXEC, WEBHOOK, HookDispatcher
from console.watch.observation import Observation
from console.watch.rules import compile_rules
from console.watch.watcher import AlertWatch
from services.runtime.config import load_config
from tests.conftest import wait_until
from tests.watch.test_engine import feed_row

DEADLINE_S = 15.0


class Receiver:
    """A local HTTP server that keeps every POSTed JSON body; it can fail or hold requests."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self._fail_next = 0
        self.release = threading.Event()
        self.release.set()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                receiver.release.wait(DEADLINE_S)
                if receiver.take_failure():
                    self.send_response(503)
                else:
                    receiver.bodies.append(body)
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/alerts"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def fail_next(self, count: int) -> None:
        with self.lock:
            self._fail_next = count

    def take_failure(self) -> bool:
        with self.lock:
            if self._fail_next:
                self._fail_next -= 1
                return True
            return False

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    try:
        yield r
    finally:
        r.close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stale_watch(**alerts: Any) -> AlertWatch:
    rules = [{"name": "feed-stale", "for": 0, **alerts.pop("rule", {})}]
    config = load_config(use_user_file=False, env={}, overrides={
        "alerts.rules": rules, "alerts.webhook_retries": 1, **{
            f"alerts.{k}": v for k, v in alerts.items()}})
    config_rules = [r for r in config.settings.alerts.rules if r.name == "feed-stale"]
    return AlertWatch(config.settings.alerts, rules=compile_rules(config_rules),
                      hooks=HookDispatcher(timeout_s=config.settings.alerts.hook_timeout_s,
                                           retries=1, sleep=lambda s: None))


def test_a_webhook_gets_firing_then_resolved_and_never_holds_up_the_evaluation(
    receiver: Receiver,
) -> None:
    watch = stale_watch(webhook=receiver.url)
    receiver.release.clear()          # the server holds the request until told
    fired = watch.observe(Observation(now_s=0.0, feeds=[feed_row(FEED_DOWN)]))
    assert [t.kind for t in fired] == ["firing"]   # observe() came back with the server stuck
    assert receiver.bodies == []
    receiver.release.set()
    wait_until(lambda: len(receiver.bodies) == 1, DEADLINE_S, message="the firing POST")
    watch.observe(Observation(now_s=1.0, feeds=[feed_row(FEED_OK)]))
    wait_until(lambda: len(receiver.bodies) == 2, DEADLINE_S, message="the resolved POST")
    first, second = receiver.bodies
    assert (first["rule"], first["state"], first["severity"]) == \
        ("feed-stale", "firing", "critical")
    assert first["labels"]["feed"] == feed_row().endpoint and first["subject"] == \
        feed_row().endpoint
    assert second["state"] == "resolved" and second["resolved_at"]
    assert watch.hooks.sent() == {EXEC: 0, WEBHOOK: 2}
    watch.close()


def test_a_failing_webhook_is_retried_then_counted(receiver: Receiver) -> None:
    watch = stale_watch(webhook=receiver.url)
    receiver.fail_next(1)             # first attempt 503, the retry succeeds
    watch.observe(Observation(now_s=0.0, feeds=[feed_row(FEED_DOWN)]))
    wait_until(lambda: watch.hooks.sent()[WEBHOOK] == 1, DEADLINE_S, message="delivered")
    assert watch.hooks.failures()[WEBHOOK] == 0
    receiver.fail_next(2)             # both attempts fail
    watch.observe(Observation(now_s=1.0, feeds=[feed_row(FEED_OK)]))
    wait_until(lambda: watch.hooks.failures()[WEBHOOK] == 1, DEADLINE_S, message="a failure")
    watch.close()


def test_an_unreachable_webhook_is_a_counted_failure() -> None:
    watch = stale_watch(webhook=f"http://127.0.0.1:{closed_port()}/x")
    watch.observe(Observation(now_s=0.0, feeds=[feed_row(FEED_DOWN)]))
    wait_until(lambda: watch.hooks.failures()[WEBHOOK] == 1, DEADLINE_S, message="a failure")
    assert watch.hooks.sent()[WEBHOOK] == 0
    watch.close()


def test_exec_gets_the_alert_on_stdin(tmp_path: Path) -> None:
    out = tmp_path / "alert.json"
    script = f"import sys; open({str(out)!r}, 'w').write(sys.stdin.read())"
    command = f"{sys.executable} -c \"{script}\""
    watch = stale_watch(rule={"exec": command})
    watch.observe(Observation(now_s=0.0, feeds=[feed_row(FEED_DOWN)]))
    wait_until(lambda: watch.hooks.sent()[EXEC] == 1, DEADLINE_S, message="exec ran")
    alert = json.loads(out.read_text())
    assert alert["rule"] == "feed-stale" and alert["state"] == "firing"
    assert alert["message"].startswith(f"feed {feed_row().endpoint} is DOWN")
    watch.close()


def test_an_exec_that_hangs_is_killed_and_one_that_fails_is_counted() -> None:
    hang = f"{sys.executable} -c \"import time; time.sleep(60)\""
    watch = stale_watch(rule={"exec": hang}, hook_timeout_s=0.5)
    watch.observe(Observation(now_s=0.0, feeds=[feed_row(FEED_DOWN)]))
    wait_until(lambda: watch.hooks.failures()[EXEC] == 1, DEADLINE_S,
               message="the hung command killed")
    watch.close()
    failing = stale_watch(rule={"exec": f"{sys.executable} -c \"raise SystemExit(3)\""})
    failing.observe(Observation(now_s=0.0, feeds=[feed_row(FEED_DOWN)]))
    wait_until(lambda: failing.hooks.failures()[EXEC] == 1, DEADLINE_S, message="exit 3")
    missing = stale_watch(rule={"exec": "/nonexistent/alert-hook"})
    missing.observe(Observation(now_s=0.0, feeds=[feed_row(FEED_DOWN)]))
    wait_until(lambda: missing.hooks.failures()[EXEC] == 1, DEADLINE_S, message="not found")
    failing.close()
    missing.close()


def test_close_kills_a_running_command_and_abandons_webhook_retries(tmp_path: Path) -> None:
    started = tmp_path / "started"
    script = f"import pathlib, time; pathlib.Path({str(started)!r}).touch(); time.sleep(60)"
    watch = stale_watch(rule={"exec": f"{sys.executable} -c \"{script}\"",
                              "webhook": f"http://127.0.0.1:{closed_port()}/x"})
    watch.hooks = HookDispatcher(timeout_s=30.0, retries=50)   # real backoff, cut by close()
    watch.observe(Observation(now_s=0.0, feeds=[feed_row(FEED_DOWN)]))
    wait_until(started.exists, DEADLINE_S, message="the command running")
    watch.close(wait_s=0.0)
    wait_until(lambda: watch.hooks.wait_idle(0.0), DEADLINE_S, message="both hooks given up")
    assert watch.hooks.failures() == {EXEC: 1, WEBHOOK: 1}
