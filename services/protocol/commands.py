"""Command requests and their replies: built, encoded, decoded and validated.

`decode_request` is strict (version, ids, action, payload per action) and
raises `RequestError` carrying whatever could be read, so even a malformed
request gets a reply its client can match.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from services.protocol.codec import (
    DEFAULT_LIMITS,
    DecodeError,
    Limits,
    is_finite_number,
    packb,
    unpack_map,
)
from services.protocol.vocabulary import (
    ACTIONS,
    BAD_REQUEST,
    BUY,
    CANCEL_ORDER,
    CLOSE_POSITION,
    ERROR,
    FLATTEN,
    GET_SNAPSHOT,
    KILL_MODES,
    KILL_SWITCH,
    LIMIT,
    MARKET,
    OPEN_ORDER,
    PROTOCOL_VERSION,
    REJECTED,
    RESUME_TRADING,
    SELL,
    SUCCESS,
    UNKNOWN_ACTION,
)


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
