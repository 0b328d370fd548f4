"""What a tick may carry, and the checks ingest and the gateway run on it.

Missing fields are allowed (third-party publishers); present ones must have
the right type. `tick_problem` is the cheap per-tick check, `tick_field_problem`
the full one, run off the hot path.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

import msgpack

from services.protocol.codec import is_finite_number

TICK_STR_FIELDS: Final = ("symbol", "exchange", "vt_symbol", "gateway_name", "name")
TICK_NUM_FIELDS: Final = (
    "volume", "turnover", "open_interest", "last_price", "last_volume",
    "limit_up", "limit_down", "open_price", "high_price", "low_price", "pre_close",
    *(f"bid_price_{i}" for i in range(1, 6)),
    *(f"ask_price_{i}" for i in range(1, 6)),
    *(f"bid_volume_{i}" for i in range(1, 6)),
    *(f"ask_volume_{i}" for i in range(1, 6)),
)
ENVELOPE_FIELDS: Final = ("pub", "epoch", "seq", "tseq", "ts_ns")
ENVELOPE_INT_FIELDS: Final = ("epoch", "seq", "tseq", "ts_ns")
# The fields ingest checks on every tick (the ones the table shows); the rest
# are checked when a detail view reads them (see tick_field_problem).
HOT_NUM_FIELDS: Final = (
    "last_price", "bid_price_1", "ask_price_1", "bid_volume_1", "ask_volume_1", "volume",
    "pre_close",
)


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
