"""Hostile and broken requests: each gets one error reply, is counted, and wedges nothing."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import msgpack
import pytest
import zmq

from services import protocol as p
from tests.conftest import ServiceFactory
from tests.services.test_gateway import CommandClient, EventWatcher, start_gateway

REQ_ID = "0123456789abcdef0123456789abcdef"


def request(action: str = p.HEARTBEAT, payload: Any = None, **fields: Any) -> dict[str, Any]:
    body = {"v": 1, "action": action, "req_id": REQ_ID, "client_id": "hostile",
            "ts_ns": 1, "payload": payload if payload is not None else {}}
    body.update(fields)
    return body


def order(**overrides: Any) -> bytes:
    payload = {"vt_symbol": "A.B", "side": "BUY", "qty": 1.0, "type": "LIMIT", "price": 1.0}
    payload.update(overrides)
    return p.packb(request(p.OPEN_ORDER, payload))


def without(key: str) -> bytes:
    body = request()
    del body[key]
    return p.packb(body)


VALID = p.packb(request())
# (name, frame, expected error code, whether the reply can echo REQ_ID)
CASES: list[tuple[str, bytes, str, bool]] = [
    ("empty frame", b"", p.BAD_REQUEST, False),
    ("never-used msgpack byte", b"\xc1", p.BAD_REQUEST, False),
    ("text, not msgpack", b"not msgpack at all", p.BAD_REQUEST, False),
    ("truncated map", VALID[:-5], p.BAD_REQUEST, False),
    ("trailing bytes", VALID + b"\x00", p.BAD_REQUEST, False),
    ("array, not map", p.packb([1, 2, 3]), p.BAD_REQUEST, False),
    ("integer, not map", p.packb(42), p.BAD_REQUEST, False),
    ("string, not map", p.packb("HEARTBEAT"), p.BAD_REQUEST, False),
    ("nil", p.packb(None), p.BAD_REQUEST, False),
    ("integer keys", p.packb({1: 2}), p.BAD_REQUEST, False),
    ("v as string", p.packb(request(v="1")), p.BAD_REQUEST, True),
    ("v = 2", p.packb(request(v=2)), p.BAD_REQUEST, True),
    ("no v", without("v"), p.BAD_REQUEST, True),
    ("req_id as integer", p.packb(request(req_id=7)), p.BAD_REQUEST, False),
    ("req_id too long", p.packb(request(req_id="x" * 500)), p.BAD_REQUEST, False),
    ("no client_id", without("client_id"), p.BAD_REQUEST, True),
    ("ts_ns as float", p.packb(request(ts_ns=1.5)), p.BAD_REQUEST, True),
    ("action as integer", p.packb(request(action=3)), p.BAD_REQUEST, True),
    ("unknown action", p.packb(request("LAUNCH_ROCKET")), p.UNKNOWN_ACTION, True),
    ("payload as list", p.packb(request(payload=[1])), p.BAD_REQUEST, True),
    ("qty NaN", order(qty=math.nan), p.BAD_REQUEST, True),
    ("qty +inf", order(qty=math.inf), p.BAD_REQUEST, True),
    ("price -inf", order(price=-math.inf), p.BAD_REQUEST, True),
    ("qty negative", order(qty=-1.0), p.BAD_REQUEST, True),
    ("qty zero", order(qty=0), p.BAD_REQUEST, True),
    ("qty boolean", order(qty=True), p.BAD_REQUEST, True),
    ("qty as string", order(qty="1"), p.BAD_REQUEST, True),
    ("side HOLD", order(side="HOLD"), p.BAD_REQUEST, True),
    ("limit without price", order(price=None), p.BAD_REQUEST, True),
    ("kill without reason", p.packb(request(p.KILL_SWITCH, {"mode": "HALT"})),
     p.BAD_REQUEST, True),
    ("kill mode PANIC", p.packb(request(p.KILL_SWITCH, {"reason": "x", "mode": "PANIC"})),
     p.BAD_REQUEST, True),
    ("snapshot symbols not a list", p.packb(request(p.GET_SNAPSHOT, {"symbols": "A.B"})),
     p.BAD_REQUEST, True),
    ("deep nesting", b"\x91" * 100_000 + b"\xc0", p.BAD_REQUEST, False),
    ("array32 header of 4G entries", b"\xdd\xff\xff\xff\xff", p.BAD_REQUEST, False),
    ("map32 header of 4G entries", b"\xdf\xff\xff\xff\xff", p.BAD_REQUEST, False),
    ("str32 header of 4 GB", b"\xdb\xff\xff\xff\xff", p.BAD_REQUEST, False),
    ("bin32 header of 4 GB", b"\xc6\xff\xff\xff\xff", p.BAD_REQUEST, False),
    ("huge header inside the payload",
     VALID[:-1] + b"\xdd\xff\xff\xff\xff", p.BAD_REQUEST, False),
    ("string over max_str_len", p.packb(request(client_id="c" * 70_000)), p.BAD_REQUEST, False),
    ("ext type", msgpack.packb(request(payload={"x": msgpack.ExtType(42, b"boom")})),
     p.BAD_REQUEST, False),
    ("ext type at the top", msgpack.packb(msgpack.ExtType(1, b"x")), p.BAD_REQUEST, False),
    ("timestamp as req_id",
     msgpack.packb(request(req_id=msgpack.Timestamp(1, 0)), datetime=False),
     p.BAD_REQUEST, False),
]


@pytest.fixture
def gw(services: ServiceFactory, tmp_path: Path) -> Any:
    return start_gateway(services, tmp_path)


def test_every_malformed_request_gets_one_error_reply_and_is_counted(
        gw: Any, zctx: zmq.Context) -> None:
    client = CommandClient(zctx, gw.endpoints["cmd"], client_id="checker")
    watcher = EventWatcher(zctx, gw.endpoints["pub"])
    for name, frame, code, echoes in CASES:
        reply = client.raw(frame)
        assert reply is not None, f"{name}: no reply"
        assert reply["status"] == p.ERROR, (name, reply)
        assert reply["error"]["code"] == code, (name, reply)
        assert reply["error"]["message"], name
        assert reply["req_id"] == (REQ_ID if echoes else None), (name, reply)
        assert reply["data"] is None and reply["v"] == 1
        assert client.ok(p.HEARTBEAT)["node"] == "gw-1", name
    watcher.wait_for(lambda t, pl: t == "telemetry.metrics.gw-1"
                     and pl["malformed_total"] == len(CASES)
                     and pl["dropped_total"] == len(CASES), "every bad request counted")
    assert client.ok(p.GET_ORDERS) == []  # none of them acted
    watcher.close()


def test_oversized_frame_is_dropped_and_the_next_heartbeat_works(
        gw: Any, zctx: zmq.Context) -> None:
    """Over MAXMSGSIZE libzmq drops the frame and resets that connection: no reply."""
    client = CommandClient(zctx, gw.endpoints["cmd"])
    assert client.raw(b"\x00" * (1024 * 1024), timeout_ms=1500) is None
    assert client.ok(p.HEARTBEAT)["trading_state"] == p.ACTIVE  # raw() reopened the socket
    assert gw.alive()


def test_multi_frame_and_dealer_envelopes(gw: Any, zctx: zmq.Context) -> None:
    client = CommandClient(zctx, gw.endpoints["cmd"])
    reply = client.raw(VALID, VALID)
    assert (reply["status"], reply["error"]["code"]) == (p.ERROR, p.BAD_REQUEST)
    assert "2" in reply["error"]["message"]
    assert client.ok(p.HEARTBEAT)

    dealer = zctx.socket(zmq.DEALER)
    dealer.setsockopt(zmq.LINGER, 0)
    dealer.connect(gw.endpoints["cmd"])

    def exchange(*frames: bytes) -> list[bytes]:
        dealer.send_multipart(list(frames))
        assert dealer.poll(10_000), f"no reply to {frames!r:.60}"
        return dealer.recv_multipart()

    [bare] = exchange(VALID)  # a DEALER without the REQ delimiter gets a bare reply
    assert msgpack.unpackb(bare)["status"] == p.SUCCESS
    delimiter, framed = exchange(b"", VALID)
    assert delimiter == b"" and msgpack.unpackb(framed)["status"] == p.SUCCESS
    [three] = exchange(VALID, VALID, VALID)
    assert msgpack.unpackb(three)["error"]["code"] == p.BAD_REQUEST
    delimiter, nothing = exchange(b"")
    assert msgpack.unpackb(nothing)["error"]["code"] == p.BAD_REQUEST
    assert client.ok(p.HEARTBEAT)
    dealer.close(0)
