"""Shared test fixtures: real services as child processes on free ports.

Services bind `tcp://127.0.0.1:*` and announce the port they got, so tests
never race for ports. Every wait is a condition with a deadline.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq

from bench.partition_relay import PartitionRelay
from console.feed.ingest import Ingest
from services.envelope import Envelope
from services.protocol import packb
from services.runtime.launcher import ServiceProcess, spawn

ANY_PORT = "tcp://127.0.0.1:*"


def wait_until(
    predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.01,
    message: str = "condition",
) -> Any:
    """Poll `predicate` until it returns something truthy; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


class ServiceFactory:
    """Starts services for one test and stops them all afterwards."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.started: list[ServiceProcess] = []

    def start(self, name: str, *args: str, timeout: float = 20.0) -> ServiceProcess:
        log = self.tmp_path / f"{name}-{len(self.started)}.log"
        proc = spawn(name, [name, *args], log_path=log, timeout=timeout)
        self.started.append(proc)
        return proc

    def publisher(self, *args: str) -> ServiceProcess:
        return self.start("publisher", "--bind", ANY_PORT, *args)

    def gateway(self, *args: str, state_dir: Path | None = None) -> ServiceProcess:
        state = state_dir or (self.tmp_path / "gw-state")
        return self.start(
            "gateway", "--bind", ANY_PORT, "--pub-bind", ANY_PORT, "--state-dir", str(state),
            *args,
        )

    def stop_all(self) -> None:
        for proc in reversed(self.started):
            proc.stop()


@pytest.fixture
def services(tmp_path: Path) -> Iterator[ServiceFactory]:
    factory = ServiceFactory(tmp_path)
    try:
        yield factory
    finally:
        factory.stop_all()


@pytest.fixture
def ingests() -> Iterator[list[Ingest]]:
    """Ingest threads a test started; each is stopped afterwards, whatever happened."""
    started: list[Ingest] = []
    try:
        yield started
    finally:
        for ingest in started:
            ingest.stop()


@pytest.fixture
def relays() -> Iterator[list[PartitionRelay]]:
    """PartitionRelays a test starts (bench/partition_relay.py), closed afterwards."""
    started: list[PartitionRelay] = []
    try:
        yield started
    finally:
        for relay in started:
            relay.close()


@pytest.fixture
def zctx() -> Iterator[zmq.Context]:
    ctx = zmq.Context()
    try:
        yield ctx
    finally:
        ctx.destroy(linger=0)


# A raw XPUB feed for ingest tests (thread and process alike).
FEED_DEADLINE = 15.0


class Feed:
    """An XPUB in the test: it sees the ingest's subscription, so nothing is sent too early."""

    def __init__(self, ctx: zmq.Context) -> None:
        self.sock = ctx.socket(zmq.XPUB)
        self.sock.setsockopt(zmq.SNDHWM, 0)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.bind(ANY_PORT)
        self.endpoint = self.sock.getsockopt_string(zmq.LAST_ENDPOINT)
        self.env = Envelope("test-pub", epoch=1)

    def wait_subscribed(self) -> None:
        """Wait for a subscribe message (unsubscribes, sent on disconnect, are skipped)."""
        deadline = time.monotonic() + FEED_DEADLINE
        while time.monotonic() < deadline:
            if self.sock.poll(100) and self.sock.recv()[:1] == b"\x01":
                return
        raise AssertionError("ingest never subscribed")

    def tick(self, vt: str, last: float, *, age_s: float = 0.0) -> None:
        """Send one tick, stamped `age_s` seconds in the past (a backlog's tick)."""
        body = self.env.stamp(vt, {"vt_symbol": vt, "last_price": last, "volume": 1.0})
        body["ts_ns"] -= int(age_s * 1e9)
        self.sock.send_multipart([vt.encode(), packb(body)])

    def close(self) -> None:
        self.sock.close(linger=0)


@pytest.fixture
def feed(zctx: zmq.Context) -> Iterator[Feed]:
    f = Feed(zctx)
    try:
        yield f
    finally:
        f.close()
