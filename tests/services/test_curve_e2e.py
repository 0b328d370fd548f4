"""CURVE end to end: keys from `tradeconsole keys generate`, real services with `--keys`.

One publisher and one gateway (pricing from that publisher) run with the
same key directory for the whole module. Each test talks to them as a
different client: the trader key (everything works, through the console's
own Ingest and GatewayClient), the monitor key (read-only), a key that is
not in the allow-list, and a client without CURVE at all. Every "gets
nothing" check runs beside a trader-keyed client that does get traffic in
the same window, so silence cannot come from an idle service.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import zmq

from console.feed.ingest import Ingest
from console.link.client import GatewayClient, request_once
from console.model import FEED_OK, GW_LATE, GW_UP
from services import security
from services.protocol import (
    ACTIVE,
    BUY,
    CANCEL_ORDER,
    CLOSE_POSITION,
    ERROR,
    FORBIDDEN,
    GET_STATUS,
    HALT,
    HEARTBEAT,
    KILL_SWITCH,
    LIMIT,
    OPEN_ORDER,
    RESUME_TRADING,
    SUCCESS,
    decode_reply,
    encode_request,
    make_request,
)
from services.store import read_audit
from tests.conftest import ServiceFactory, wait_until

DEADLINE = 20.0
# How long a refused client is watched for anything arriving, after the refusal
# is known and while a trader-keyed client is receiving.
QUIET_S = 1.5
SYMBOL = "SIM0.TEST"  # any symbol: a LIMIT order may rest before a price is known

STATE_CHANGING = {
    OPEN_ORDER: {"vt_symbol": SYMBOL, "side": BUY, "qty": 1.0, "type": LIMIT, "price": 1.0},
    CANCEL_ORDER: {"order_id": "no-such-order"},
    CLOSE_POSITION: {"vt_symbol": SYMBOL},
    KILL_SWITCH: {"reason": "should be refused", "mode": HALT},
    RESUME_TRADING: {"incident_id": "INC-0", "reason": "should be refused"},
}


def keys_generate(directory: Path) -> None:
    """`tradeconsole keys generate DIR`, as a user would run it."""
    done = subprocess.run([sys.executable, "-m", "console", "keys", "generate", str(directory)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


@dataclass
class Fabric:
    keys: Path          # the key directory shared by services and trusted clients
    stranger: Path      # server.key plus a client key that is in no allow-list
    pub: str
    cmd: str
    gw_pub: str
    state_dir: Path
    gateway: Any


@pytest.fixture(scope="module")
def fabric(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fabric]:
    root = tmp_path_factory.mktemp("curve")
    keys = root / "keys"
    keys_generate(keys)
    other = root / "other-keys"
    keys_generate(other)
    stranger = root / "stranger"
    stranger.mkdir(mode=0o700)
    shutil.copy(keys / "server.key", stranger / "server.key")
    shutil.copy(other / "trader.key_secret", stranger / "trader.key_secret")
    (stranger / "trader.key_secret").chmod(0o600)

    factory = ServiceFactory(root)
    try:
        publisher = factory.publisher("--keys", str(keys), "--rate", "50", "--symbols", "3")
        state_dir = root / "gw-state"
        gateway = factory.gateway("--keys", str(keys), "--feed", publisher.endpoints["pub"],
                                  state_dir=state_dir)
        yield Fabric(keys, stranger, publisher.endpoints["pub"], gateway.endpoints["cmd"],
                     gateway.endpoints["pub"], state_dir, gateway)
    finally:
        factory.stop_all()



def trusted_ingest(ingests: list[Ingest], endpoint: str, keys: Path) -> Ingest:
    ingest = Ingest([endpoint], keys_dir=keys)
    ingest.start()
    ingests.append(ingest)
    return ingest


def raw_request(ctx: zmq.Context, endpoint: str, action: str, payload: dict[str, Any] | None,
                keys: security.Keys | None, timeout_s: float) -> dict[str, Any] | None:
    """One REQ round trip with the given client keys (None: no CURVE); None if no reply."""
    sock = ctx.socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        if keys is not None:
            security.secure_client(sock, keys)
        sock.connect(endpoint)
        sock.send(encode_request(make_request(action, payload, client_id="curve-test")))
        if not sock.poll(int(timeout_s * 1000), zmq.POLLIN):
            return None
        return decode_reply(sock.recv())
    finally:
        sock.close(linger=0)


def raw_subscriber(ctx: zmq.Context, endpoint: str, keys: security.Keys | None) -> zmq.Socket:
    sock = ctx.socket(zmq.SUB)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SUBSCRIBE, b"")
    if keys is not None:
        security.secure_client(sock, keys)
    sock.connect(endpoint)
    return sock


def gateway_metrics(ingest: Ingest, node: str = "gw-1") -> dict[str, Any] | None:
    return ingest.drain().feeds[0].publishers.get(node)


def assert_silent_while_trusted_receives(sub: zmq.Socket, trusted: Ingest) -> None:
    """Nothing on `sub` for QUIET_S while `trusted` keeps receiving on the same feed."""
    before = trusted.received_total
    assert not sub.poll(int(QUIET_S * 1000), zmq.POLLIN)
    assert trusted.received_total > before


def trading_state(fabric: Fabric) -> str:
    reply = request_once(fabric.cmd, GET_STATUS, client_id="curve-test", timeout_ms=3000,
                         keys_dir=fabric.keys)
    assert reply.ok, reply
    return str(reply.data["trading_state"])


# --- trusted clients -----------------------------------------------------------------------


def test_generated_keys_and_the_trader_key_works_end_to_end(
    fabric: Fabric, ingests: list[Ingest]
) -> None:
    for name in ("server.key", "trader.key_secret", "monitor.key_secret",
                 "authorized/trader/trader.key", "authorized/monitor/monitor.key"):
        assert (fabric.keys / name).is_file(), name
    assert (fabric.keys / "trader.key_secret").stat().st_mode & 0o077 == 0

    ingest = trusted_ingest(ingests, fabric.pub, fabric.keys)
    wait_until(lambda: len(ingest.all_rows()) == 3 and ingest.drain().feeds[0].state == FEED_OK,
               DEADLINE, message="encrypted ticks of all 3 symbols")

    client = GatewayClient(fabric.cmd, client_id="curve-console", heartbeat_interval_s=0.2,
                           timeout_ms=3000, keys_dir=fabric.keys)
    client.start()
    try:
        wait_until(lambda: client.status().state in (GW_UP, GW_LATE)
                   and len(client.status().rtt_history_ms) >= 2, DEADLINE,
                   message="heartbeats over CURVE")
        assert client.status().trading_state == ACTIVE
    finally:
        client.stop()

    opened = request_once(fabric.cmd, OPEN_ORDER, STATE_CHANGING[OPEN_ORDER],
                          client_id="curve-trader", timeout_ms=3000, keys_dir=fabric.keys)
    assert opened.ok, opened
    cancelled = request_once(fabric.cmd, CANCEL_ORDER, {"order_id": opened.data["order_id"]},
                             client_id="curve-trader", timeout_ms=3000, keys_dir=fabric.keys)
    assert cancelled.ok, cancelled


def test_monitor_key_reads_but_every_state_change_is_forbidden(
    fabric: Fabric, zctx: zmq.Context
) -> None:
    monitor = security.load_keys(fabric.keys, client="monitor")
    heartbeat = raw_request(zctx, fabric.cmd, HEARTBEAT, None, monitor, DEADLINE)
    assert heartbeat is not None and heartbeat["status"] == SUCCESS
    for action, payload in STATE_CHANGING.items():
        reply = raw_request(zctx, fabric.cmd, action, payload, monitor, DEADLINE)
        assert reply is not None, action
        assert (reply["status"], reply["error"]["code"]) == (ERROR, FORBIDDEN), (action, reply)
    assert trading_state(fabric) == ACTIVE


# --- refused clients -------------------------------------------------------------------------


def test_unknown_key_gets_nothing_and_its_kill_is_not_executed(
    fabric: Fabric, zctx: zmq.Context, ingests: list[Ingest]
) -> None:
    telemetry = trusted_ingest(ingests, fabric.gw_pub, fabric.keys)
    wait_until(lambda: gateway_metrics(telemetry), DEADLINE, message="gateway metrics")
    refused_before = gateway_metrics(telemetry)["auth_failures"]  # type: ignore[index]

    kill = request_once(fabric.cmd, KILL_SWITCH, STATE_CHANGING[KILL_SWITCH],
                        client_id="intruder", timeout_ms=2000, retries=1,
                        keys_dir=fabric.stranger)
    assert not kill.delivered
    assert trading_state(fabric) == ACTIVE
    assert not [r for r in read_audit(fabric.state_dir / "audit.jsonl")
                if r.get("req_id") == kill.req_id]

    # Refusals show in the gateway's telemetry and in its log.
    wait_until(lambda: gateway_metrics(telemetry)["auth_failures"] > refused_before,  # type: ignore[index]
               DEADLINE, message="auth_failures counted in telemetry")
    wait_until(lambda: "key not in the allow-list" in fabric.gateway.log_tail(200), DEADLINE,
               message="the refusal in the gateway log")

    ticks = trusted_ingest(ingests, fabric.pub, fabric.keys)
    wait_until(lambda: ticks.received_total > 0, DEADLINE, message="trusted ticks")
    sub = raw_subscriber(zctx, fabric.pub, security.load_keys(fabric.stranger))
    try:
        assert_silent_while_trusted_receives(sub, ticks)
    finally:
        sub.close(linger=0)


def test_client_without_curve_gets_neither_ticks_nor_replies(
    fabric: Fabric, zctx: zmq.Context, ingests: list[Ingest]
) -> None:
    ticks = trusted_ingest(ingests, fabric.pub, fabric.keys)
    wait_until(lambda: ticks.received_total > 0, DEADLINE, message="trusted ticks")
    sub = raw_subscriber(zctx, fabric.pub, None)
    try:
        assert_silent_while_trusted_receives(sub, ticks)
    finally:
        sub.close(linger=0)

    assert raw_request(zctx, fabric.cmd, HEARTBEAT, None, None, QUIET_S) is None
    assert raw_request(zctx, fabric.cmd, KILL_SWITCH, STATE_CHANGING[KILL_SWITCH], None,
                       QUIET_S) is None
    assert trading_state(fabric) == ACTIVE

    def refusal_logged() -> bool:
        # Each try is a new connection and handshake, so a slow machine that closed an
        # earlier socket before its handshake finished still gets one refused and logged.
        assert raw_request(zctx, fabric.cmd, HEARTBEAT, None, None, QUIET_S) is None
        return "security mechanism mismatch" in fabric.gateway.log_tail(200)

    wait_until(refusal_logged, DEADLINE, message="the NULL client's refusal in the gateway log")
