"""The tradeconsole wire protocol (v1), shared by the services and the console.

Everything that crosses a socket is built and checked here, so both sides
agree byte for byte. Decoding is hardened: frames are capped by the socket's
MAXMSGSIZE, msgpack containers and strings by explicit limits, only the
msgpack Timestamp extension is accepted, and trailing bytes are an error.
See docs/protocol.md for the contract in prose.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import msgpack

PROTOCOL_VERSION: Final = 1

# --- topics -----------------------------------------------------------------

TELEMETRY_PREFIX: Final = "telemetry."
EVENT_PREFIX: Final = "event."
KIND_TICK: Final = "tick"
KIND_TELEMETRY: Final = "telemetry"
KIND_EVENT: Final = "event"


def topic_kind(topic: str) -> str:
    """Sort a topic: anything that is not telemetry or an event is a tick."""
    if topic.startswith(TELEMETRY_PREFIX):
        return KIND_TELEMETRY
    if topic.startswith(EVENT_PREFIX):
        return KIND_EVENT
    return KIND_TICK


def exchange_of(vt_symbol: str) -> str:
    """The exchange is the part of `vt_symbol` after the last dot ('' if none)."""
    _, dot, exchange = vt_symbol.rpartition(".")
    return exchange if dot else ""


def metrics_topic(node: str) -> str:
    return f"telemetry.metrics.{node}"


def health_topic(node: str) -> str:
    return f"telemetry.health.{node}"


def logs_topic(node: str) -> str:
    return f"telemetry.logs.{node}"


def event_topic(kind: str) -> str:
    return f"event.{kind}"


# --- tick fields ------------------------------------------------------------

TICK_STR_FIELDS: Final = ("symbol", "exchange", "vt_symbol", "gateway_name", "name")
TICK_NUM_FIELDS: Final = (
    "volume", "turnover", "open_interest", "last_price", "last_volume",
    "limit_up", "limit_down", "open_price", "high_price", "low_price", "pre_close",
    *(f"bid_price_{i}" for i in range(1, 6)),
    *(f"ask_price_{i}" for i in range(1, 6)),
    *(f"bid_volume_{i}" for i in range(1, 6)),
    *(f"ask_volume_{i}" for i in range(1, 6)),
)
TIME_FIELDS: Final = ("datetime", "localtime")
ENVELOPE_FIELDS: Final = ("pub", "epoch", "seq", "tseq", "ts_ns")
ENVELOPE_INT_FIELDS: Final = ("epoch", "seq", "tseq", "ts_ns")
# The fields ingest checks on every tick (the ones the table shows); the rest
# are checked when a detail view reads them (see tick_field_problem).
HOT_NUM_FIELDS: Final = (
    "last_price", "bid_price_1", "ask_price_1", "bid_volume_1", "ask_volume_1", "volume",
    "pre_close",
)

HEALTH_OK: Final = "OK"
HEALTH_DEGRADED: Final = "DEGRADED"
HEALTH_DOWN: Final = "DOWN"
HEALTH_STATES: Final = (HEALTH_OK, HEALTH_DEGRADED, HEALTH_DOWN)
METRICS_FIELDS: Final = (
    "node", "ts_ns", "uptime_s", "sent_total", "msgs_per_s", "bytes_per_s",
    "ser_us_p50", "ser_us_p99", "queue_depth", "queue_capacity", "dropped_total",
)

# --- commands ---------------------------------------------------------------

HEARTBEAT: Final = "HEARTBEAT"
GET_STATUS: Final = "GET_STATUS"
GET_ACCOUNT_INFO: Final = "GET_ACCOUNT_INFO"
GET_POSITIONS: Final = "GET_POSITIONS"
GET_ORDERS: Final = "GET_ORDERS"
GET_SNAPSHOT: Final = "GET_SNAPSHOT"
OPEN_ORDER: Final = "OPEN_ORDER"
CANCEL_ORDER: Final = "CANCEL_ORDER"
CLOSE_POSITION: Final = "CLOSE_POSITION"
KILL_SWITCH: Final = "KILL_SWITCH"
RESUME_TRADING: Final = "RESUME_TRADING"

READ_ACTIONS: Final = frozenset(
    {HEARTBEAT, GET_STATUS, GET_ACCOUNT_INFO, GET_POSITIONS, GET_ORDERS, GET_SNAPSHOT}
)
STATE_CHANGING_ACTIONS: Final = frozenset(
    {OPEN_ORDER, CANCEL_ORDER, CLOSE_POSITION, KILL_SWITCH, RESUME_TRADING}
)
ACTIONS: Final = READ_ACTIONS | STATE_CHANGING_ACTIONS
# Served ahead of everything queued, on both ends of the link: the kill switch
# and its release must never wait behind a flood of orders or polls.
PRIORITY_ACTIONS: Final = frozenset({KILL_SWITCH, RESUME_TRADING})

SUCCESS: Final = "SUCCESS"
REJECTED: Final = "REJECTED"
ERROR: Final = "ERROR"

BAD_REQUEST: Final = "BAD_REQUEST"
UNKNOWN_ACTION: Final = "UNKNOWN_ACTION"
FORBIDDEN: Final = "FORBIDDEN"
TRADING_HALTED: Final = "TRADING_HALTED"
NOT_FOUND: Final = "NOT_FOUND"
INTERNAL: Final = "INTERNAL"
ERROR_CODES: Final = frozenset(
    {BAD_REQUEST, UNKNOWN_ACTION, FORBIDDEN, TRADING_HALTED, NOT_FOUND, INTERNAL}
)

ACTIVE: Final = "ACTIVE"
HALTED: Final = "HALTED"
FLATTEN: Final = "FLATTEN"
HALT: Final = "HALT"
KILL_MODES: Final = (FLATTEN, HALT)
BUY: Final = "BUY"
SELL: Final = "SELL"
MARKET: Final = "MARKET"
LIMIT: Final = "LIMIT"

# --- limits and hardened decoding ----------------------------------------------


@dataclass(frozen=True, slots=True)
class Limits:
    """Caps on what a peer may make us allocate. Defaults match config.toml."""

    max_msg_size: int = 262144
    max_str_len: int = 65536
    max_container_len: int = 4096

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> Limits:
        return cls(
            max_msg_size=int(section["max_msg_size"]),
            max_str_len=int(section["max_str_len"]),
            max_container_len=int(section["max_container_len"]),
        )


DEFAULT_LIMITS: Final = Limits()


class DecodeError(ValueError):
    """A frame that is not a valid protocol payload. `reason` is short and stable."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _reject_ext(code: int, data: bytes) -> Any:
    raise DecodeError(f"msgpack ext type {code} not allowed")


def packb(obj: Any) -> bytes:
    return msgpack.packb(obj, use_bin_type=True, datetime=False)


def unpack_map(data: bytes, limits: Limits = DEFAULT_LIMITS) -> dict[str, Any]:
    """Decode one payload frame into a dict with string keys, or raise DecodeError."""
    if len(data) > limits.max_msg_size:
        raise DecodeError(f"frame of {len(data)} bytes exceeds {limits.max_msg_size}")
    try:
        obj = msgpack.unpackb(
            data,
            raw=False,
            strict_map_key=True,
            ext_hook=_reject_ext,
            max_str_len=limits.max_str_len,
            max_bin_len=limits.max_str_len,
            max_array_len=limits.max_container_len,
            max_map_len=limits.max_container_len,
            max_ext_len=12,  # a msgpack Timestamp is at most 12 bytes
        )
    except DecodeError:
        raise
    except msgpack.ExtraData as exc:
        raise DecodeError("trailing bytes after payload") from exc
    except msgpack.StackError as exc:
        raise DecodeError("nesting too deep") from exc
    except (ValueError, TypeError, UnicodeDecodeError, msgpack.UnpackException) as exc:
        raise DecodeError(f"not msgpack: {exc}") from exc
    except RecursionError as exc:
        raise DecodeError("nesting too deep") from exc
    if not isinstance(obj, dict):
        raise DecodeError(f"payload is {type(obj).__name__}, expected map")
    try:
        # str.join refuses any non-str key; it is C-fast (ingest runs this per tick).
        "".join(obj)
    except TypeError:
        raise DecodeError("payload map keys must be strings") from None
    return obj


def decode_topic(frame: bytes) -> str:
    try:
        return frame.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecodeError("topic is not UTF-8") from exc


def is_finite_number(value: Any) -> bool:
    """True for int/float that are finite; bools are not numbers on the wire."""
    t = type(value)
    if t is float:
        return value - value == 0.0  # False for NaN and +-inf
    return t is int


def tick_problem(tick: dict[str, Any], topic: str) -> str | None:
    """Cheap per-tick check of what the table shows; None when the tick is usable.

    Runs on every tick in ingest, so it only looks at the hot fields and the
    envelope. Missing fields are allowed (third-party publishers).
    """
    get = tick.get
    for name in HOT_NUM_FIELDS:
        value = get(name)
        if value is None:
            continue
        kind = type(value)  # is_finite_number, inlined: this runs per tick
        if kind is float:
            if value - value != 0.0:
                return f"{name} is not a finite number"
        elif kind is not int:
            return f"{name} is not a finite number"
    vt = get("vt_symbol")
    if vt is not None and vt != topic:
        return "vt_symbol does not match topic"
    if "seq" in tick:
        for name in ENVELOPE_INT_FIELDS:
            if type(get(name)) is not int:
                return f"envelope field {name} is not an integer"
    return None


def tick_field_problem(tick: Mapping[str, Any]) -> str | None:
    """Full check of every known tick field; used off the hot path."""
    for name in TICK_NUM_FIELDS:
        value = tick.get(name)
        if value is not None and not is_finite_number(value):
            return f"{name} is not a finite number"
    for name in TICK_STR_FIELDS:
        value = tick.get(name)
        if value is not None and not isinstance(value, str):
            return f"{name} is not a string"
    return None


def has_envelope(tick: Mapping[str, Any]) -> bool:
    return type(tick.get("seq")) is int and type(tick.get("ts_ns")) is int


def datetime_to_ns(value: Any) -> int | None:
    """Exchange time as epoch ns from any accepted form, None if absent or invalid.

    Accepted: ISO-8601 string with offset, float epoch seconds, int epoch
    nanoseconds, msgpack Timestamp, datetime.
    """
    if value is None:
        return None
    if isinstance(value, msgpack.Timestamp):
        return value.to_unix_nano()
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        ns = value * 1e9  # finite seconds can still overflow to inf as nanoseconds
        return int(ns) if math.isfinite(ns) else None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return None
        return int(value.timestamp() * 1e9)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
        if parsed.tzinfo is None:
            return None
        return int(parsed.timestamp()) * 1_000_000_000 + parsed.microsecond * 1000
    return None


# --- requests and replies ---------------------------------------------------------


def new_req_id() -> str:
    return uuid.uuid4().hex


def make_request(
    action: str,
    payload: Mapping[str, Any] | None = None,
    *,
    client_id: str,
    req_id: str | None = None,
) -> dict[str, Any]:
    return {
        "v": PROTOCOL_VERSION,
        "action": action,
        "req_id": req_id or new_req_id(),
        "client_id": client_id,
        "ts_ns": time.time_ns(),
        "payload": dict(payload) if payload else {},
    }


def encode_request(request: Mapping[str, Any]) -> bytes:
    return packb(dict(request))


def make_reply(
    req_id: str | None,
    action: str | None,
    status: str,
    data: Any = None,
    error_code: str | None = None,
    error_message: str | None = None,
) -> dict[str, Any]:
    error = None
    if error_code is not None:
        error = {"code": error_code, "message": error_message or error_code}
    return {
        "v": PROTOCOL_VERSION,
        "req_id": req_id,
        "action": action,
        "status": status,
        "data": data,
        "error": error,
        "ts_ns": time.time_ns(),
    }


class RequestError(Exception):
    """A request that must be answered with an error reply (status, code, message)."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        req_id: str | None = None,
        action: str | None = None,
        status: str = ERROR,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.req_id = req_id
        self.action = action
        self.status = status

    def reply(self) -> dict[str, Any]:
        return make_reply(self.req_id, self.action, self.status, None, self.code, self.message)


@dataclass(frozen=True, slots=True)
class Request:
    action: str
    req_id: str
    client_id: str
    ts_ns: int
    payload: dict[str, Any]


_REQ_ID_MAX = 128
_TEXT_MAX = 1024


def _need_str(payload: Mapping[str, Any], key: str, *, optional: bool = False) -> str | None:
    value = payload.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value:
        raise ValueError(f"payload.{key} must be a non-empty string")
    if len(value) > _TEXT_MAX:
        raise ValueError(f"payload.{key} is longer than {_TEXT_MAX} characters")
    return value


def _need_positive(payload: Mapping[str, Any], key: str, *, optional: bool = False) -> float | None:
    value = payload.get(key)
    if value is None and optional:
        return None
    if not is_finite_number(value) or value <= 0:
        raise ValueError(f"payload.{key} must be a finite number > 0")
    return float(value)


def _validate_payload(action: str, payload: dict[str, Any]) -> dict[str, Any]:
    """Check and normalise an action's payload; raise ValueError with the reason."""
    if action == OPEN_ORDER:
        vt_symbol = _need_str(payload, "vt_symbol")
        side = payload.get("side")
        if side not in (BUY, SELL):
            raise ValueError("payload.side must be BUY or SELL")
        qty = _need_positive(payload, "qty")
        order_type = payload.get("type", MARKET)
        if order_type not in (MARKET, LIMIT):
            raise ValueError("payload.type must be MARKET or LIMIT")
        price = _need_positive(payload, "price", optional=order_type == MARKET)
        return {"vt_symbol": vt_symbol, "side": side, "qty": qty, "type": order_type,
                "price": price}
    if action == CANCEL_ORDER:
        return {"order_id": _need_str(payload, "order_id")}
    if action == CLOSE_POSITION:
        return {"vt_symbol": _need_str(payload, "vt_symbol")}
    if action == KILL_SWITCH:
        reason = _need_str(payload, "reason")
        mode = payload.get("mode", FLATTEN)
        if mode not in KILL_MODES:
            raise ValueError("payload.mode must be FLATTEN or HALT")
        return {"reason": reason, "mode": mode}
    if action == RESUME_TRADING:
        return {"incident_id": _need_str(payload, "incident_id"),
                "reason": _need_str(payload, "reason")}
    if action == GET_SNAPSHOT:
        symbols = payload.get("symbols")
        if symbols is None:
            return {"symbols": None}
        if not isinstance(symbols, list) or not all(isinstance(s, str) for s in symbols):
            raise ValueError("payload.symbols must be a list of strings")
        return {"symbols": symbols}
    return {}


def decode_request(data: bytes, limits: Limits = DEFAULT_LIMITS) -> Request:
    """Decode and strictly validate a request frame, or raise RequestError.

    The RequestError carries whatever req_id/action could be read, so the
    error reply can be matched by the client.
    """
    try:
        obj = unpack_map(data, limits)
    except DecodeError as exc:
        raise RequestError(BAD_REQUEST, exc.reason) from exc
    raw_req_id = obj.get("req_id")
    req_id = raw_req_id if isinstance(raw_req_id, str) and 0 < len(raw_req_id) <= _REQ_ID_MAX \
        else None
    raw_action = obj.get("action")
    action = raw_action if isinstance(raw_action, str) and len(raw_action) <= 64 else None

    def fail(code: str, message: str) -> RequestError:
        return RequestError(code, message, req_id=req_id, action=action)

    if obj.get("v") != PROTOCOL_VERSION or type(obj.get("v")) is not int:
        raise fail(BAD_REQUEST, f"v must be {PROTOCOL_VERSION}")
    if req_id is None:
        raise fail(BAD_REQUEST, f"req_id must be a string of 1..{_REQ_ID_MAX} characters")
    client_id = obj.get("client_id")
    if not isinstance(client_id, str) or not 0 < len(client_id) <= _REQ_ID_MAX:
        raise fail(BAD_REQUEST, f"client_id must be a string of 1..{_REQ_ID_MAX} characters")
    ts_ns = obj.get("ts_ns")
    if type(ts_ns) is not int:
        raise fail(BAD_REQUEST, "ts_ns must be an integer")
    if action is None:
        raise fail(BAD_REQUEST, "action must be a string")
    if action not in ACTIONS:
        raise fail(UNKNOWN_ACTION, f"unknown action {action!r}")
    payload = obj.get("payload")
    if payload is None:
        payload = {}
    if not isinstance(payload, dict):
        raise fail(BAD_REQUEST, "payload must be a map")
    try:
        clean = _validate_payload(action, payload)
    except ValueError as exc:
        raise fail(BAD_REQUEST, str(exc)) from exc
    return Request(action=action, req_id=req_id, client_id=client_id, ts_ns=ts_ns,
                   payload=clean)


def decode_reply(data: bytes, limits: Limits = DEFAULT_LIMITS) -> dict[str, Any]:
    """Decode a reply frame and check its shape; raise DecodeError if it is not one."""
    obj = unpack_map(data, limits)
    if obj.get("v") != PROTOCOL_VERSION:
        raise DecodeError("reply has wrong protocol version")
    if obj.get("status") not in (SUCCESS, REJECTED, ERROR):
        raise DecodeError("reply has no valid status")
    error = obj.get("error")
    if error is not None and not (isinstance(error, dict) and isinstance(error.get("code"), str)):
        raise DecodeError("reply error must be {code, message} or nil")
    return obj
