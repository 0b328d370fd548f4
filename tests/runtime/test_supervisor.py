"""The child-process contract (services.runtime.supervisor), once for each kind of child.

The ingest process (console.feed.process) and the gateway link process
(console.link.process) share one supervisor and one child entry point, so
they must keep the same promises: a start reports the child's pid or raises
the child's own error; a killed child is started again and, until it is
back, the console says DOWN rather than showing old news; a stopped
(SIGSTOP) child is shown DOWN after its silent time and comes back when it
continues; stop() and the parent's death leave no process behind. Every test
runs a real child against a real peer (a feed, a gateway).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from console.feed import process as feed_process
from console.feed.ingest import Ingest
from console.feed.process import IngestProcess
from console.link import process as link_process
from console.link.client import GatewayClient
from console.link.process import GatewayProcess
from console.model import CONN_CONNECTED, FEED_DOWN, GW_DOWN, GW_UP, FeedRow
from services.runtime.errors import UsageError
from tests.conftest import Feed, ServiceFactory, wait_until

DEADLINE = 15.0
POLL_S = 0.02  # how often the tests look, like a UI at 50 fps
ROOT = Path(__file__).resolve().parents[2]


class IngestSubject:
    """An IngestProcess seen the way the UI sees it: one drain per look."""

    def __init__(self, endpoint: str) -> None:
        self.child = IngestProcess([endpoint])
        self.feeds: list[FeedRow] = []

    def look(self) -> None:
        self.feeds = self.child.drain().feeds  # drain() also supervises the child

    def answering(self) -> bool:
        self.look()
        return bool(self.feeds) and all(
            f.connection == CONN_CONNECTED and f.last_problem != feed_process.NOT_ANSWERING
            for f in self.feeds)

    def down(self) -> bool:
        self.look()
        return bool(self.feeds) and all(
            f.state == FEED_DOWN and f.last_problem == feed_process.NOT_ANSWERING
            for f in self.feeds)

    def restarts(self) -> int:
        self.look()
        return self.child.restarts


class LinkSubject:
    """A GatewayProcess seen the way the UI sees it: its status (its thread supervises)."""

    def __init__(self, endpoint: str) -> None:
        self.child = GatewayProcess(endpoint, client_id="contract", heartbeat_interval_s=0.2)

    def answering(self) -> bool:
        return self.child.status().state == GW_UP

    def down(self) -> bool:
        status = self.child.status()
        return status.state == GW_DOWN and status.detail == link_process.NOT_ANSWERING

    def restarts(self) -> int:
        return self.child.restarts


@dataclass(frozen=True)
class Kind:
    name: str
    subject: Callable[[str], Any]
    peer: Callable[[pytest.FixtureRequest], str]      # a live endpoint to talk to
    in_process: Callable[[str], Any]                  # the same job without a child
    bad_endpoint_message: str
    silent_s: float
    backoff_s: float


def feed_peer(request: pytest.FixtureRequest) -> str:
    feed: Feed = request.getfixturevalue("feed")
    return feed.endpoint


def gateway_peer(request: pytest.FixtureRequest) -> str:
    services: ServiceFactory = request.getfixturevalue("services")
    return str(services.gateway().endpoints["cmd"])


KINDS = [
    Kind("ingest", IngestSubject, feed_peer, lambda endpoint: Ingest([endpoint]),
         "feed endpoint", feed_process.SILENT_S, feed_process.RESTART_BACKOFF_S),
    Kind("link", LinkSubject, gateway_peer,
         lambda endpoint: GatewayClient(endpoint, client_id="contract"),
         "not-an-endpoint", link_process.SILENT_S, link_process.RESTART_BACKOFF_S),
]


@pytest.fixture(params=KINDS, ids=[kind.name for kind in KINDS])
def kind(request: pytest.FixtureRequest) -> Kind:
    return request.param


@pytest.fixture
def subject(kind: Kind, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A started child of `kind`, talking to a live peer, answering."""
    made = kind.subject(kind.peer(request))
    made.started_before = time.monotonic()
    made.child.start()
    try:
        wait_until(made.answering, DEADLINE, POLL_S, f"the {kind.name} child answering")
        yield made
    finally:
        made.child.stop()


def gone(pid: int) -> bool:
    """The process has exited (a zombie counts: it is waiting to be reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] == "Z"
    except FileNotFoundError:
        return True


def parent_of(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as stat:
        return int(stat.read().rpartition(")")[2].split()[1])


def test_a_start_reports_the_childs_pid(subject: Any) -> None:
    pid = subject.child.pid
    assert pid is not None and pid != os.getpid()
    assert not gone(pid) and parent_of(pid) == os.getpid()
    assert subject.child.alive and subject.child.restarts == 0


def test_a_bad_endpoint_is_the_usage_error_the_child_met(kind: Kind) -> None:
    child = kind.subject("not-an-endpoint").child
    with pytest.raises(UsageError, match=kind.bad_endpoint_message) as from_child:
        child.start()
    assert not child.alive and child.pid is None
    with pytest.raises(UsageError) as in_process:
        kind.in_process("not-an-endpoint").start()
    assert str(from_child.value) == str(in_process.value)


def test_a_killed_child_is_restarted_and_shown_down_until_it_is_back(
    kind: Kind, subject: Any
) -> None:
    first = subject.child.pid
    assert first is not None
    killed_at = time.monotonic()
    os.kill(first, signal.SIGKILL)
    # Until a new child answers, the console says DOWN rather than old news.
    wait_until(subject.down, DEADLINE, POLL_S, "shown DOWN while the child is gone")
    wait_until(lambda: subject.restarts() == 1, kind.backoff_s + DEADLINE, POLL_S,
               "a new child")
    restarted_at = time.monotonic()
    if killed_at - subject.started_before < kind.backoff_s:
        # It died that soon after its start: the new one waited backoff_s.
        assert restarted_at - killed_at >= kind.backoff_s
    wait_until(subject.answering, DEADLINE, POLL_S, "the new child answering")
    second = subject.child.pid
    assert second not in (None, first)
    assert gone(first) and not gone(second)


def test_a_stopped_child_is_shown_down_after_its_silent_time_and_back_when_it_continues(
    kind: Kind, subject: Any
) -> None:
    pid = subject.child.pid
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    stopped_at = time.monotonic()
    try:
        wait_until(subject.down, kind.silent_s + DEADLINE, POLL_S, "shown DOWN")
        assert time.monotonic() - stopped_at >= kind.silent_s * 0.9
    finally:
        os.kill(pid, signal.SIGCONT)
    wait_until(subject.answering, DEADLINE, POLL_S, "answering again")
    assert subject.child.pid == pid and subject.restarts() == 0


def test_stop_leaves_no_process(subject: Any) -> None:
    pid = subject.child.pid
    assert pid is not None
    subject.child.stop()
    assert not subject.child.alive
    wait_until(lambda: gone(pid), DEADLINE, POLL_S, "the child to exit")


ORPHANING_PARENT = """
import sys, time
from tests.runtime.test_supervisor import KINDS
kind = next(k for k in KINDS if k.name == sys.argv[1])
made = kind.subject(sys.argv[2])
made.child.start()
print(made.child.pid, flush=True)
time.sleep(60)
"""


def test_the_child_exits_when_its_parent_dies(kind: Kind, request: pytest.FixtureRequest) -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", ORPHANING_PARENT, kind.name, kind.peer(request)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert parent.stdout is not None
        line = parent.stdout.readline()  # the parent prints the pid once its child started
        assert line.strip().isdigit(), f"the parent said {line!r}"
        pid = int(line)
        assert not gone(pid)
    finally:
        parent.kill()
        parent.wait(DEADLINE)
    wait_until(lambda: gone(pid), DEADLINE, POLL_S, "the orphaned child to exit")
