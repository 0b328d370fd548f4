"""The gateway link process (console.link.process) against the real gateway and a silent one.

What the UI relies on: replies come back through the pipe with the link
state they produced, a process that dies answers what it held as "not
delivered", shows DOWN, and is started again; a bad endpoint fails at start;
stop() leaves nothing running.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import zmq

from console.link.client import NO_REPLY
from console.link.process import LINK_LOST, NOT_ANSWERING, GatewayProcess
from console.model import GW_DOWN, GW_UP, Reply
from services.protocol import ACTIVE, HALTED, HEARTBEAT, KILL_SWITCH, RESUME_TRADING
from services.runtime.errors import UsageError
from tests.conftest import ANY_PORT, ServiceFactory, wait_until

DEADLINE = 15.0


class Replies:
    """Collects replies from the link's thread; `wait()` returns the n-th one."""

    def __init__(self, link: GatewayProcess) -> None:
        self.link = link
        self.items: list[tuple[Reply, Any]] = []
        self._cond = threading.Condition()

    def __call__(self, reply: Reply) -> None:
        state = self.link.status().trading_state  # what status() says as the callback runs
        with self._cond:
            self.items.append((reply, state))
            self._cond.notify_all()

    def wait(self, n: int = 1) -> tuple[Reply, Any]:
        with self._cond:
            assert self._cond.wait_for(lambda: len(self.items) >= n, DEADLINE), \
                f"no reply #{n} within {DEADLINE}s"
            return self.items[n - 1]


@pytest.fixture
def links() -> Iterator[list[GatewayProcess]]:
    started: list[GatewayProcess] = []
    yield started
    for link in started:
        link.stop()


def start_link(links: list[GatewayProcess], endpoint: str, **options: Any) -> GatewayProcess:
    link = GatewayProcess(endpoint, client_id="test-link", heartbeat_interval_s=0.2, **options)
    link.start()
    links.append(link)
    return link


def pid_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); its state says it is gone.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_requests_and_link_state_cross_the_pipe(
    services: ServiceFactory, links: list[GatewayProcess]
) -> None:
    gateway = services.gateway()
    link = start_link(links, str(gateway.endpoints["cmd"]))
    status = wait_until(lambda: (s := link.status()).state == GW_UP and s, DEADLINE,
                        message="link UP")
    assert status.trading_state == ACTIVE and status.rtt_ms is not None

    replies = Replies(link)
    link.request(HEARTBEAT, on_reply=replies)
    reply, _ = replies.wait(1)
    assert reply.ok and reply.action == HEARTBEAT and reply.rtt_ms is not None

    # The kill switch: its reply arrives after the state it produced.
    link.request(KILL_SWITCH, {"reason": "test", "mode": "HALT"}, on_reply=replies)
    reply, state_seen = replies.wait(2)
    assert reply.ok and reply.action == KILL_SWITCH
    assert state_seen == HALTED
    incident = reply.data["incident_id"]
    assert link.status().incident_id == incident
    link.request(RESUME_TRADING, {"incident_id": incident, "reason": "done"}, on_reply=replies)
    reply, state_seen = replies.wait(3)
    assert reply.ok and state_seen == ACTIVE


def test_a_killed_link_process_answers_what_it_held_and_comes_back(
    services: ServiceFactory, links: list[GatewayProcess], zctx: zmq.Context
) -> None:
    silent = zctx.socket(zmq.ROUTER)  # takes requests, never answers
    silent.bind(ANY_PORT)
    link = start_link(links, silent.getsockopt_string(zmq.LAST_ENDPOINT), timeout_ms=5000)
    replies = Replies(link)
    rid = link.request(HEARTBEAT, on_reply=replies)
    assert silent.poll(int(DEADLINE * 1000)), "the request never reached the gateway"
    first_pid = link.pid
    assert first_pid is not None
    os.kill(first_pid, signal.SIGKILL)

    reply, _ = replies.wait(1)
    assert (reply.req_id, reply.delivered) == (rid, False)
    assert reply.error == {"code": NO_REPLY, "message": LINK_LOST}
    wait_until(lambda: (s := link.status()).state == GW_DOWN and s.detail == NOT_ANSWERING,
               DEADLINE, message="link DOWN: its process is not answering")

    # Started again, with a new process; requests work against a real gateway.
    wait_until(lambda: link.restarts >= 1, DEADLINE, message="a restart")
    assert link.pid != first_pid
    assert not pid_running(first_pid)


def test_the_restarted_process_serves_requests(
    services: ServiceFactory, links: list[GatewayProcess]
) -> None:
    gateway = services.gateway()
    link = start_link(links, str(gateway.endpoints["cmd"]))
    replies = Replies(link)
    first_pid = link.pid
    assert first_pid is not None
    os.kill(first_pid, signal.SIGKILL)
    wait_until(lambda: link.restarts >= 1 and link.status().state == GW_UP, DEADLINE,
               message="restarted and UP")
    link.request(HEARTBEAT, on_reply=replies)
    reply, _ = replies.wait(1)
    assert reply.ok


def test_a_bad_endpoint_fails_at_start_with_the_reason() -> None:
    link = GatewayProcess("not-an-endpoint", client_id="bad")
    with pytest.raises(UsageError, match="not-an-endpoint"):
        link.start()
    assert not link.alive


def test_stop_leaves_no_process(services: ServiceFactory) -> None:
    gateway = services.gateway()
    link = GatewayProcess(str(gateway.endpoints["cmd"]), client_id="stop")
    link.start()
    pid = link.pid
    assert pid is not None and pid_running(pid)
    link.stop()
    assert not link.alive
    wait_until(lambda: not pid_running(pid), 5.0, message="link process gone")
