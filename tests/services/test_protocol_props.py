"""Properties of services/protocol.py: round trips, and hostile input only ever fails cleanly.

A gateway or console that gets an exception other than RequestError /
DecodeError out of the decoders would drop a reply or kill a thread, so
"never raises anything else" is checked on arbitrary bytes and maps.
"""

from __future__ import annotations

import math
from typing import Any

import msgpack
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services import protocol as p

settings.register_profile("protocol", max_examples=200, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("protocol")

SMALL = p.Limits(max_msg_size=4096, max_str_len=64, max_container_len=16)

scalars = (st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**64 - 1)
           | st.floats() | st.text(max_size=20) | st.binary(max_size=20))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=5)
                      | st.dictionaries(st.text(max_size=10), inner, max_size=5),
                      max_leaves=25)
maps = st.dictionaries(st.text(max_size=12), values, max_size=8)
names = st.text(min_size=1, max_size=40)
finite_positive = st.floats(min_value=1e-9, max_value=1e12, allow_nan=False,
                            allow_infinity=False) | st.integers(min_value=1, max_value=10**9)


def only_request_errors(data: bytes, limits: p.Limits = p.DEFAULT_LIMITS) -> None:
    """Decode; a refusal must be a RequestError whose reply is a valid wire reply."""
    try:
        p.decode_request(data, limits)
    except p.RequestError as exc:
        assert exc.code in p.ERROR_CODES
        reply = p.decode_reply(p.packb(exc.reply()))
        assert reply["status"] in (p.ERROR, p.REJECTED)
        assert reply["req_id"] is None or isinstance(reply["req_id"], str)


@given(st.binary(max_size=300))
def test_decode_request_on_arbitrary_bytes_raises_only_request_error(data: bytes) -> None:
    only_request_errors(data)
    only_request_errors(data, SMALL)


@given(st.binary(max_size=300))
def test_unpack_map_on_arbitrary_bytes_raises_only_decode_error(data: bytes) -> None:
    for limits in (p.DEFAULT_LIMITS, SMALL):
        try:
            result = p.unpack_map(data, limits)
        except p.DecodeError as exc:
            assert exc.reason
        else:
            assert isinstance(result, dict) and all(isinstance(k, str) for k in result)


@given(maps)
def test_decode_request_on_arbitrary_maps_raises_only_request_error(obj: dict[str, Any]) -> None:
    only_request_errors(msgpack.packb(obj, use_bin_type=True))


@given(st.sampled_from(sorted(p.ACTIONS)), maps, st.dictionaries(
    st.sampled_from(["v", "action", "req_id", "client_id", "ts_ns", "payload"]), values))
def test_requests_with_hostile_fields_raise_only_request_error(
        action: str, payload: dict[str, Any], hostile: dict[str, Any]) -> None:
    body = p.make_request(action, None, client_id="c")
    body["payload"] = payload
    body.update(hostile)
    only_request_errors(msgpack.packb(body, use_bin_type=True))


@given(st.integers(min_value=1, max_value=5000), st.sampled_from([b"\x91", b"\x81\xa1k"]))
def test_nesting_of_any_depth_is_a_map_or_a_decode_error(depth: int, level: bytes) -> None:
    data = level * depth + b"\xc0"
    try:
        result = p.unpack_map(data)
    except p.DecodeError as exc:
        assert exc.reason
    else:  # only nested maps can decode, and only while shallow enough
        assert level.startswith(b"\x81") and isinstance(result, dict)


@given(st.dictionaries(st.text(max_size=10), st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False) | st.text(max_size=20) | st.binary(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                               max_size=4),
    max_leaves=20), max_size=8))
def test_pack_unpack_round_trip(obj: dict[str, Any]) -> None:
    assert p.unpack_map(p.packb(obj)) == obj


order_payloads = st.fixed_dictionaries({
    "vt_symbol": names, "side": st.sampled_from([p.BUY, p.SELL]), "qty": finite_positive,
    "type": st.just(p.LIMIT), "price": finite_positive,
}) | st.fixed_dictionaries({
    "vt_symbol": names, "side": st.sampled_from([p.BUY, p.SELL]), "qty": finite_positive,
    "type": st.just(p.MARKET),
})
valid_requests = st.one_of(
    st.tuples(st.sampled_from([p.HEARTBEAT, p.GET_STATUS, p.GET_ACCOUNT_INFO,
                               p.GET_POSITIONS, p.GET_ORDERS]), st.just({})),
    st.tuples(st.just(p.GET_SNAPSHOT), st.fixed_dictionaries(
        {"symbols": st.none() | st.lists(st.text(max_size=20), max_size=10)})),
    st.tuples(st.just(p.OPEN_ORDER), order_payloads),
    st.tuples(st.just(p.CANCEL_ORDER), st.fixed_dictionaries({"order_id": names})),
    st.tuples(st.just(p.CLOSE_POSITION), st.fixed_dictionaries({"vt_symbol": names})),
    st.tuples(st.just(p.KILL_SWITCH), st.fixed_dictionaries(
        {"reason": names, "mode": st.sampled_from(p.KILL_MODES)})),
    st.tuples(st.just(p.RESUME_TRADING), st.fixed_dictionaries(
        {"incident_id": names, "reason": names})),
)


@given(valid_requests, names, st.text(min_size=1, max_size=128))
def test_valid_requests_round_trip(action_payload: tuple[str, dict[str, Any]], client_id: str,
                                   req_id: str) -> None:
    action, payload = action_payload
    sent = p.make_request(action, payload, client_id=client_id, req_id=req_id)
    got = p.decode_request(p.encode_request(sent))
    assert (got.action, got.req_id, got.client_id, got.ts_ns) == \
        (action, req_id, client_id, sent["ts_ns"])
    for key, value in payload.items():
        assert got.payload[key] == value
    if action == p.OPEN_ORDER:
        assert type(got.payload["qty"]) is float and math.isfinite(got.payload["qty"])


@given(st.none() | st.text(min_size=1, max_size=40), st.sampled_from(sorted(p.ACTIONS)),
       st.sampled_from([p.SUCCESS, p.REJECTED, p.ERROR]), values,
       st.none() | st.sampled_from(sorted(p.ERROR_CODES)), st.text(max_size=40))
def test_replies_round_trip(req_id: str | None, action: str, status: str, data: Any,
                            code: str | None, message: str) -> None:
    reply = p.make_reply(req_id, action, status, data, code, message or None)
    decoded = p.decode_reply(p.packb(reply))
    assert decoded["req_id"] == req_id and decoded["status"] == status
    assert decoded["error"] == (None if code is None else {"code": code,
                                                           "message": message or code})


@given(maps, st.text(max_size=20))
def test_tick_checks_never_raise(tick: dict[str, Any], topic: str) -> None:
    problem = p.tick_problem(tick, topic)
    assert problem is None or isinstance(problem, str)
    full = p.tick_field_problem(tick)
    assert full is None or isinstance(full, str)


@given(st.floats() | st.integers())
def test_datetime_to_ns_never_raises_on_numbers(value: float | int) -> None:
    result = p.datetime_to_ns(value)
    assert result is None or type(result) is int


@given(st.text(max_size=40) | values | st.datetimes(timezones=st.none() | st.timezones())
       | st.builds(msgpack.Timestamp, st.integers(0, 2**33), st.integers(0, 999_999_999)))
def test_datetime_to_ns_never_raises(value: Any) -> None:
    result = p.datetime_to_ns(value)
    assert result is None or type(result) is int
