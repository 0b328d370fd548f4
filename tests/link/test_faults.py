"""The gateway link under faults: a killed, restarted and frozen gateway process.

The client is the console's own (`make_gateway_client` with the default
`[console]` settings: heartbeat 1 s, 3 attempts of 1 s). What must hold: it
shows DOWN within about 3 s, stays responsive, recovers by itself when the
gateway comes back on the same port, and a kill switch that was not
delivered acts exactly once when retried with the same req_id, even if the
first attempt did reach the gateway after all.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from console.cli.run import make_gateway_client
from console.link.client import GatewayClient, request_once
from console.model import GW_DOWN, GW_LATE, GW_UP, Reply
from services.protocol import (
    ACTIVE,
    GET_SNAPSHOT,
    GET_STATUS,
    HALT,
    HALTED,
    KILL_SWITCH,
    SUCCESS,
)
from services.runtime.config import load_config
from services.store import read_audit
from tests.conftest import ANY_PORT, ServiceFactory, wait_until
from tests.feed.test_faults import FaultFeed

# The console's defaults (config.toml), untouched by any user file or environment.
CONFIG = load_config(use_user_file=False, env={})
# DOWN is due 3 s after the last good reply; the rest is slack for a busy machine.
DOWN_DEADLINE = 3.0 + 1.5
DEADLINE = 20.0
# A feed endpoint nobody listens on: these tests need no prices.
NO_FEED = "tcp://127.0.0.1:1"


@pytest.fixture
def clients() -> Iterator[list[GatewayClient]]:
    started: list[GatewayClient] = []
    try:
        yield started
    finally:
        for client in started:
            client.stop()


def start_client(clients: list[GatewayClient], endpoint: str) -> GatewayClient:
    client = make_gateway_client(endpoint, CONFIG, client_id="fault-console")
    client.start()
    clients.append(client)
    wait_until(lambda: client.status().state in (GW_UP, GW_LATE), DEADLINE, message="UP")
    return client


def start_gateway(services: ServiceFactory, state_dir: Path, bind: str = ANY_PORT) -> Any:
    return services.start("gateway", "--bind", bind, "--pub-bind", ANY_PORT,
                          "--state-dir", str(state_dir), "--feed", NO_FEED)


def ask(client: GatewayClient, action: str, payload: dict[str, Any] | None = None,
        req_id: str | None = None) -> Reply:
    """One request through the client; waits for its outcome (delivered or not)."""
    replies: list[Reply] = []
    client.request(action, payload, req_id=req_id, on_reply=replies.append)
    wait_until(lambda: replies, DEADLINE, message=f"outcome of {action}")
    return replies[0]


def kill_lines(state_dir: Path, req_id: str) -> list[dict[str, Any]]:
    return [r for r in read_audit(state_dir / "audit.jsonl")
            if r.get("action") == KILL_SWITCH and r.get("req_id") == req_id]


KILL = {"reason": "fault test", "mode": HALT}


def test_killed_gateway_is_down_then_recovers_and_a_retried_kill_acts_once(
    services: ServiceFactory, clients: list[GatewayClient], tmp_path: Path
) -> None:
    state_dir = tmp_path / "gw"
    gateway = start_gateway(services, state_dir)
    endpoint = gateway.endpoints["cmd"]
    client = start_client(clients, endpoint)

    gateway.signal(signal.SIGKILL)
    gateway.popen.wait(5)
    wait_until(lambda: client.status().state == GW_DOWN, DOWN_DEADLINE,
               message="DOWN within about 3 s")
    # Still responsive while DOWN: a read fails fast instead of queueing behind the dead link.
    status = ask(client, GET_STATUS)
    assert not status.delivered and status.status is None

    kill = ask(client, KILL_SWITCH, KILL)
    assert not kill.delivered and not kill.ok
    assert kill_lines(state_dir, kill.req_id) == []  # it never reached a gateway

    start_gateway(services, state_dir, bind=endpoint)  # same port, same state
    wait_until(lambda: client.status().state in (GW_UP, GW_LATE), DEADLINE,
               message="the same client UP again")
    assert client.status().detail == ""

    retry = ask(client, KILL_SWITCH, KILL, req_id=kill.req_id)
    assert retry.ok, retry
    incident = retry.data["incident_id"]
    assert incident
    again = ask(client, KILL_SWITCH, KILL, req_id=kill.req_id)  # a second retry: no new act
    assert again.ok and again.data["incident_id"] == incident
    assert len(kill_lines(state_dir, kill.req_id)) == 1
    now = ask(client, GET_STATUS)
    assert now.ok and (now.data["trading_state"], now.data["incident_id"]) == (HALTED, incident)


def test_kill_sent_to_a_frozen_gateway_acts_once_after_it_thaws(
    services: ServiceFactory, clients: list[GatewayClient], tmp_path: Path
) -> None:
    state_dir = tmp_path / "gw"
    gateway = start_gateway(services, state_dir)
    client = start_client(clients, gateway.endpoints["cmd"])
    try:
        gateway.signal(signal.SIGSTOP)
        wait_until(lambda: client.status().state == GW_DOWN, DOWN_DEADLINE, message="DOWN")
        # The bytes reach the frozen process's socket buffer; no reply can come back.
        kill = ask(client, KILL_SWITCH, KILL)
        assert not kill.delivered
    finally:
        gateway.signal(signal.SIGCONT)
    wait_until(lambda: client.status().state in (GW_UP, GW_LATE), DEADLINE,
               message="UP after SIGCONT")
    # The thawed gateway may have acted on the undelivered attempts; the retry must
    # not act again either way: the reply cache answers it.
    retry = ask(client, KILL_SWITCH, KILL, req_id=kill.req_id)
    assert retry.ok and retry.status == SUCCESS, retry
    assert retry.data["incident_id"]
    lines = kill_lines(state_dir, kill.req_id)
    assert len(lines) == 1
    assert lines[0]["result"]["incident_id"] == retry.data["incident_id"]
    now = ask(client, GET_STATUS)
    assert now.data["trading_state"] == HALTED


def test_gateway_restarted_by_kill_keeps_trading_state_and_answers_at_once(
    services: ServiceFactory, clients: list[GatewayClient], tmp_path: Path
) -> None:
    """A restart is not a reset: the state survives, and nothing is acted on twice."""
    state_dir = tmp_path / "gw"
    gateway = start_gateway(services, state_dir)
    endpoint = gateway.endpoints["cmd"]
    client = start_client(clients, endpoint)
    assert ask(client, GET_STATUS).data["trading_state"] == ACTIVE
    first = ask(client, KILL_SWITCH, KILL)
    assert first.ok
    gateway.signal(signal.SIGKILL)
    gateway.popen.wait(5)
    start_gateway(services, state_dir, bind=endpoint)
    # Retried across the restart: the reply is rebuilt from the audit log, not re-acted.
    retry = ask(client, KILL_SWITCH, KILL, req_id=first.req_id)
    assert retry.ok and retry.data["incident_id"] == first.data["incident_id"]
    assert len(kill_lines(state_dir, first.req_id)) == 1
    status = ask(client, GET_STATUS)
    assert (status.data["trading_state"], status.data["incident_id"]) == \
        (HALTED, first.data["incident_id"])


def test_gateway_price_feed_comes_back_after_an_oversized_frame(
    services: ServiceFactory, tmp_path: Path
) -> None:
    """libzmq drops the gateway's feed connection for good on a frame over max_msg_size;
    the gateway re-opens a feed that went silent, so prices start flowing again."""
    feed = FaultFeed("--rate", "200", "--symbols", "2", "--hostile-every", "200",
                     "--hostile-kinds", "oversized", "--report-every", "0.2")
    try:
        gateway = services.start("gateway", "--bind", ANY_PORT, "--pub-bind", ANY_PORT,
                                 "--state-dir", str(tmp_path / "gw"), "--feed", feed.endpoint)
        endpoint = gateway.endpoints["cmd"]

        def newest_seq() -> int:
            reply = request_once(endpoint, GET_SNAPSHOT, client_id="fault-test",
                                 timeout_ms=3000)
            assert reply.ok, reply
            return max((tick["seq"] for tick in reply.data["ticks"].values()), default=0)

        sent = wait_until(lambda: (s := feed.last()) and s["hostile"] >= 1 and s, DEADLINE,
                          message="an oversized frame sent to the gateway's feed")
        wait_until(lambda: newest_seq() > sent["seq"] + 10, DEADLINE,
                   message="prices newer than the oversized frame")
    finally:
        feed.stop()
