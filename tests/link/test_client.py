"""GatewayClient (Lazy Pirate) against a scripted ROUTER in the test and the real gateway."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import zmq

from console.link.client import NO_REPLY, GatewayClient, request_once
from console.model import GW_DOWN, GW_LATE, GW_UP, Reply
from services.protocol import (
    ACTIVE,
    GET_ACCOUNT_INFO,
    GET_ORDERS,
    GET_POSITIONS,
    GET_STATUS,
    HALTED,
    HEARTBEAT,
    KILL_SWITCH,
    RESUME_TRADING,
    SUCCESS,
    make_reply,
    packb,
    unpack_map,
)
from services.runtime.errors import UsageError
from tests.conftest import ANY_PORT, ServiceFactory, wait_until

DEADLINE = 15.0
# policy(request, times this req_id was seen) -> reply map, or None to stay silent
Policy = Callable[[dict[str, Any], int], dict[str, Any] | None]


def answer(request: dict[str, Any], attempt: int = 1) -> dict[str, Any]:
    action = request["action"]
    data: dict[str, Any] = {}
    if action == HEARTBEAT:
        data = {"node": "fake", "uptime_s": 1.0, "trading_state": ACTIVE, "ts_ns": 1}
    elif action == KILL_SWITCH:
        data = {"incident_id": "INC-1", "trading_state": HALTED}
    elif action == RESUME_TRADING:
        data = {"trading_state": ACTIVE}
    return make_reply(request["req_id"], action, SUCCESS, data)


def silent(request: dict[str, Any], attempt: int) -> None:
    return None


class FakeGateway:
    """A ROUTER that records every request and answers as `policy` says."""

    def __init__(self, ctx: zmq.Context, endpoint: str = ANY_PORT,
                 policy: Policy = answer) -> None:
        self.policy = policy
        self.sock = ctx.socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.bind(endpoint)
        self.endpoint = self.sock.getsockopt_string(zmq.LAST_ENDPOINT)
        self.requests: list[dict[str, Any]] = []
        self._seen: Counter[str] = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        try:
            while not self._stop.is_set():
                if not self.sock.poll(50):
                    continue
                identity, empty, payload = self.sock.recv_multipart()
                request = unpack_map(payload)
                self._seen[request["req_id"]] += 1
                self.requests.append(request)
                reply = self.policy(request, self._seen[request["req_id"]])
                if reply is not None:
                    self.sock.send_multipart([identity, empty, packb(reply)])
        finally:
            self.sock.close(linger=0)

    def actions(self) -> list[str]:
        return [r["action"] for r in list(self.requests)]

    def seen(self, req_id: str) -> int:
        return sum(1 for r in list(self.requests) if r["req_id"] == req_id)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


@pytest.fixture
def cleanup() -> Iterator[list[Any]]:
    """Things with stop(): clients and fake gateways, stopped after the test."""
    items: list[Any] = []
    try:
        yield items
    finally:
        for item in reversed(items):
            item.stop()


def client_for(endpoint: str, cleanup: list[Any], **kwargs: Any) -> GatewayClient:
    kwargs.setdefault("heartbeat_interval_s", 60.0)  # only the first, immediate heartbeat
    kwargs.setdefault("timeout_ms", 300)
    kwargs.setdefault("retries", 3)
    client = GatewayClient(endpoint, client_id="test-console", **kwargs)
    cleanup.append(client)
    client.start()
    return client


def collect() -> tuple[list[Reply], Callable[[Reply], None]]:
    replies: list[Reply] = []
    return replies, replies.append


def test_heartbeat_rtt_and_trading_state(zctx: zmq.Context, cleanup: list[Any]) -> None:
    gateway = FakeGateway(zctx)
    cleanup.append(gateway)
    client = client_for(gateway.endpoint, cleanup, heartbeat_interval_s=0.05)
    wait_until(lambda: len(client.status().rtt_history_ms) >= 3, DEADLINE,
               message="three heartbeats")
    status = client.status()
    assert status.state == GW_UP
    assert status.rtt_ms is not None and status.rtt_ms > 0
    assert status.trading_state == ACTIVE
    assert status.last_ok_ns is not None
    assert status.endpoint == gateway.endpoint
    assert set(gateway.actions()) == {HEARTBEAT}
    assert gateway.requests[0]["client_id"] == "test-console"


def test_down_when_nobody_answers_then_single_attempts(
    zctx: zmq.Context, cleanup: list[Any]
) -> None:
    gateway = FakeGateway(zctx, policy=silent)
    cleanup.append(gateway)
    client = client_for(gateway.endpoint, cleanup, timeout_ms=150, retries=2)
    wait_until(lambda: client.status().state == GW_DOWN, DEADLINE, message="DOWN")
    assert "2 attempt" in client.status().detail
    first = gateway.requests[0]
    assert first["action"] == HEARTBEAT and gateway.seen(first["req_id"]) == 2
    replies, on_reply = collect()
    req_id = client.request(GET_STATUS, on_reply=on_reply)
    wait_until(lambda: replies, DEADLINE, message="undelivered reply")
    reply = replies[0]
    assert (reply.delivered, reply.status, reply.req_id) == (False, None, req_id)
    assert reply.error is not None and reply.error["code"] == NO_REPLY
    assert not reply.ok
    assert gateway.seen(req_id) == 1  # while DOWN: fail fast, one attempt


def test_retry_resends_the_same_req_id(zctx: zmq.Context, cleanup: list[Any]) -> None:
    def drop_first_status(request: dict[str, Any], attempt: int) -> dict[str, Any] | None:
        if request["action"] == GET_STATUS and attempt == 1:
            return None
        return answer(request)

    gateway = FakeGateway(zctx, policy=drop_first_status)
    cleanup.append(gateway)
    client = client_for(gateway.endpoint, cleanup, timeout_ms=200)
    replies, on_reply = collect()
    req_id = client.request(GET_STATUS, on_reply=on_reply)
    wait_until(lambda: replies, DEADLINE, message="reply after a retry")
    assert replies[0].ok and replies[0].req_id == req_id
    assert gateway.seen(req_id) == 2
    sent = [r for r in gateway.requests if r["req_id"] == req_id]
    assert sent[0] == sent[1]  # the very same request, byte for byte
    assert client.status().state == GW_UP


def test_reply_with_another_req_id_is_discarded(zctx: zmq.Context, cleanup: list[Any]) -> None:
    def wrong_first(request: dict[str, Any], attempt: int) -> dict[str, Any]:
        reply = answer(request)
        if request["action"] == GET_STATUS and attempt == 1:
            reply["req_id"] = "somebody-else"
        return reply

    gateway = FakeGateway(zctx, policy=wrong_first)
    cleanup.append(gateway)
    client = client_for(gateway.endpoint, cleanup)
    replies, on_reply = collect()
    req_id = client.request(GET_STATUS, on_reply=on_reply)
    wait_until(lambda: gateway.seen(req_id) == 2 and replies, DEADLINE, message="retry")
    client.request(HEARTBEAT)  # one more round trip: no late second callback
    wait_until(lambda: gateway.actions().count(HEARTBEAT) == 2, DEADLINE, message="heartbeat")
    assert len(replies) == 1
    assert replies[0].ok and replies[0].req_id == req_id


def test_recovers_when_a_gateway_appears_later(zctx: zmq.Context, cleanup: list[Any]) -> None:
    probe = zctx.socket(zmq.ROUTER)
    probe.bind(ANY_PORT)
    endpoint = probe.getsockopt_string(zmq.LAST_ENDPOINT)
    probe.close(linger=0)  # a free port with nobody on it
    client = client_for(endpoint, cleanup, heartbeat_interval_s=0.1, timeout_ms=150,
                        retries=2)
    wait_until(lambda: client.status().state == GW_DOWN, DEADLINE, message="DOWN")
    gateway = FakeGateway(zctx, endpoint=endpoint)
    cleanup.append(gateway)
    wait_until(lambda: client.status().state == GW_UP, DEADLINE, message="back UP")
    assert client.status().detail == ""


def test_urgent_requests_go_first(zctx: zmq.Context, cleanup: list[Any]) -> None:
    release = threading.Event()

    def hold_first(request: dict[str, Any], attempt: int) -> dict[str, Any]:
        if request["action"] == HEARTBEAT:
            release.wait(DEADLINE)
        return answer(request)

    gateway = FakeGateway(zctx, policy=hold_first)
    cleanup.append(gateway)
    client = client_for(gateway.endpoint, cleanup, timeout_ms=int(DEADLINE * 1000))
    wait_until(lambda: gateway.requests, DEADLINE, message="the first heartbeat")
    client.request(GET_ORDERS)
    client.request(GET_POSITIONS)
    client.request(KILL_SWITCH, {"reason": "test", "mode": "HALT"})  # urgent by nature
    client.request(GET_ACCOUNT_INFO, urgent=True)
    release.set()
    wait_until(lambda: len(gateway.requests) == 5, DEADLINE, message="five requests")
    assert gateway.actions() == [HEARTBEAT, KILL_SWITCH, GET_ACCOUNT_INFO, GET_ORDERS,
                                 GET_POSITIONS]
    wait_until(lambda: client.status().trading_state == HALTED, DEADLINE, message="HALTED")
    assert client.status().incident_id == "INC-1"


def test_late_when_replies_are_slow(zctx: zmq.Context, cleanup: list[Any]) -> None:
    def slow(request: dict[str, Any], attempt: int) -> dict[str, Any]:
        time.sleep(0.3)  # a slow gateway, not a test wait
        return answer(request)

    gateway = FakeGateway(zctx, policy=slow)
    cleanup.append(gateway)
    client = client_for(gateway.endpoint, cleanup, late_ms=100, timeout_ms=2000)
    wait_until(lambda: client.status().rtt_ms is not None, DEADLINE, message="a heartbeat")
    status = client.status()
    assert status.state == GW_LATE
    assert status.rtt_ms is not None and status.rtt_ms > 100


def test_callback_errors_do_not_break_the_link(zctx: zmq.Context, cleanup: list[Any]) -> None:
    gateway = FakeGateway(zctx)
    cleanup.append(gateway)
    client = client_for(gateway.endpoint, cleanup)

    def explode(reply: Reply) -> None:
        raise RuntimeError("bad callback")

    client.request(GET_STATUS, on_reply=explode)
    replies, on_reply = collect()
    client.request(GET_STATUS, on_reply=on_reply)
    wait_until(lambda: replies, DEADLINE, message="second reply")
    assert replies[0].ok and client.alive


def test_stop_is_prompt_even_mid_request(zctx: zmq.Context, cleanup: list[Any]) -> None:
    gateway = FakeGateway(zctx, policy=silent)
    cleanup.append(gateway)
    client = client_for(gateway.endpoint, cleanup, timeout_ms=60_000)
    wait_until(lambda: gateway.requests, DEADLINE, message="a request in flight")
    client.stop()
    assert not client.alive


def test_bad_endpoint_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="gateway endpoint"):
        GatewayClient("nowhere", client_id="t").start()
    with pytest.raises(UsageError, match="gateway endpoint"):
        request_once("nowhere", HEARTBEAT, client_id="t")


def test_request_once(zctx: zmq.Context, cleanup: list[Any]) -> None:
    gateway = FakeGateway(zctx)
    cleanup.append(gateway)
    reply = request_once(gateway.endpoint, HEARTBEAT, client_id="script", timeout_ms=2000)
    assert reply.ok and reply.rtt_ms is not None
    assert reply.data["trading_state"] == ACTIVE
    nobody = FakeGateway(zctx, policy=silent)
    cleanup.append(nobody)
    reply = request_once(nobody.endpoint, GET_STATUS, client_id="script", timeout_ms=100,
                         retries=2)
    assert not reply.delivered and reply.error is not None
    assert reply.error["code"] == NO_REPLY
    assert nobody.seen(reply.req_id) == 2


def test_against_the_real_gateway(services: ServiceFactory, cleanup: list[Any]) -> None:
    gateway = services.gateway()
    endpoint = gateway.endpoints["cmd"]
    client = client_for(endpoint, cleanup, heartbeat_interval_s=0.2, timeout_ms=2000)
    wait_until(lambda: client.status().state in (GW_UP, GW_LATE)
               and client.status().trading_state == ACTIVE, DEADLINE, message="UP, ACTIVE")
    replies, on_reply = collect()
    client.request(KILL_SWITCH, {"reason": "test", "mode": "HALT"}, on_reply=on_reply)
    wait_until(lambda: replies, DEADLINE, message="kill reply")
    assert replies[0].ok, replies[0]
    incident = replies[0].data["incident_id"]
    status = client.status()
    assert (status.trading_state, status.incident_id) == (HALTED, incident)
    client.request(RESUME_TRADING, {"incident_id": incident, "reason": "done"},
                   on_reply=on_reply)
    wait_until(lambda: len(replies) == 2, DEADLINE, message="resume reply")
    assert replies[1].ok, replies[1]
    assert client.status().trading_state == ACTIVE
    assert client.status().incident_id is None
    once = request_once(endpoint, GET_STATUS, client_id="script", timeout_ms=2000)
    assert once.ok and once.data["trading_state"] == ACTIVE


class ManualClock:
    """The client's status clock, moved by the test."""

    def __init__(self) -> None:
        self.now = 1_000_000_000_000

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += int(seconds * 1e9)


def test_down_counts_silence_not_a_quiet_spell(zctx: zmq.Context, cleanup: list[Any]) -> None:
    release = threading.Event()

    def hold_status(request: dict[str, Any], attempt: int) -> dict[str, Any]:
        if request["action"] == GET_STATUS:
            release.wait(DEADLINE)
        return answer(request)

    gateway = FakeGateway(zctx, policy=hold_status)
    cleanup.append(gateway)
    clock = ManualClock()
    client = client_for(gateway.endpoint, cleanup, clock_ns=clock, timeout_ms=30_000,
                        retries=1)
    wait_until(lambda: client.status().state == GW_UP, DEADLINE, message="UP")
    clock.advance(120)  # nothing asked for two minutes: that is not silence
    client.request(GET_STATUS)
    wait_until(lambda: GET_STATUS in gateway.actions(), DEADLINE, message="request sent")
    assert client.status().state in (GW_UP, GW_LATE)
    clock.advance(31)  # asked, and no answer for the whole retry budget
    status = client.status()
    assert status.state == GW_DOWN and "no reply" in status.detail
    release.set()
    wait_until(lambda: client.status().state == GW_UP and client.status().detail == "",
               DEADLINE, message="UP once the answer came")
