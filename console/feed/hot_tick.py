"""The part of a tick the console reads on every frame, decoded in one C call.

Ingest receives every tick, but the table shows only a handful of its fields
and the gap/latency accounting needs only the envelope. Decoding those into a
msgspec Struct costs less than half of decoding the whole map into a dict,
and msgspec checks their types as it goes (finite numbers, integer
envelope), so nothing is left to check in Python per tick.

The rest of the map is walked, not kept: a frame that is not msgpack, is
truncated, has trailing bytes, a non-string key, or nests too deep is still
rejected, but the values of fields nobody displays are not type-checked
here. They are checked when somebody reads them: the detail view decodes the
symbol's latest frame in full (`console.feed.full_tick.decode_tick`) and shows any
problem it finds.
"""

from __future__ import annotations

import re
import sys
from typing import Annotated, Any

import msgspec

from services.protocol import ENVELOPE_INT_FIELDS, HOT_NUM_FIELDS, DecodeError, Limits

# Finite floats only: NaN fails both bounds, +-inf one of them. Ints are
# accepted (and become floats); bools are not numbers here.
_Finite = Annotated[float, msgspec.Meta(ge=-sys.float_info.max, le=sys.float_info.max)]

# msgpack map headers for maps that can exceed a container limit.
_MAP16 = 0xDE
_MAP32 = 0xDF


class HotTick(msgspec.Struct, gc=False):
    """What a table row and the envelope accounting need; every field optional.

    The fields are protocol.HOT_NUM_FIELDS and ENVELOPE_FIELDS plus vt_symbol,
    spelled out for msgspec (a test holds them equal).
    """

    vt_symbol: Any = None   # compared with the topic (any type: a mismatch is rejected)
    last_price: _Finite | None = None
    bid_price_1: _Finite | None = None
    ask_price_1: _Finite | None = None
    bid_volume_1: _Finite | None = None
    ask_volume_1: _Finite | None = None
    volume: _Finite | None = None
    pre_close: _Finite | None = None
    pub: Any = None         # str when the envelope is there; checked by FeedBook
    epoch: int | None = None
    seq: int | None = None
    tseq: int | None = None
    ts_ns: int | None = None


_decode = msgspec.msgpack.Decoder(HotTick).decode
_AT_FIELD = re.compile(r"at `\$\.(\w+)`")


def _reason(exc: msgspec.ValidationError) -> str:
    """The same short reasons the full check gives, so feeds panels read alike."""
    match = _AT_FIELD.search(str(exc))
    field = match.group(1) if match else None
    if field in HOT_NUM_FIELDS:
        return f"{field} is not a finite number"
    if field in ENVELOPE_INT_FIELDS:
        return f"envelope field {field} is not an integer"
    return f"not a msgpack map with string keys: {exc}"


def _map_len(payload: bytes) -> int:
    first = payload[0]
    if first == _MAP16:
        return payload[1] << 8 | payload[2]
    if first == _MAP32:
        return int.from_bytes(payload[1:5], "big")
    return 0  # a fixmap (<= 15 entries) or not a map at all (the decoder says so)


def decode_hot(payload: bytes, topic: str, limits: Limits) -> HotTick:
    """Decode and check one tick frame's hot fields, or raise DecodeError."""
    size = len(payload)
    if size > limits.max_msg_size:
        raise DecodeError(f"frame of {size} bytes exceeds {limits.max_msg_size}")
    if size > 4 and payload[0] >= _MAP16 and _map_len(payload) > limits.max_container_len:
        raise DecodeError(f"map of {_map_len(payload)} entries exceeds "
                          f"{limits.max_container_len}")
    try:
        tick = _decode(payload)
    except msgspec.ValidationError as exc:
        raise DecodeError(_reason(exc)) from None
    except (msgspec.DecodeError, ValueError) as exc:  # ValueError: invalid UTF-8
        raise DecodeError(f"not a msgpack map with string keys: {exc}") from None
    except RecursionError:
        raise DecodeError("nesting too deep") from None
    vt = tick.vt_symbol
    if vt is not None and vt != topic:
        raise DecodeError("vt_symbol does not match topic")
    if tick.seq is not None and (tick.epoch is None or tick.tseq is None
                                 or tick.ts_ns is None):
        missing = next(n for n in ENVELOPE_INT_FIELDS if getattr(tick, n) is None)
        raise DecodeError(f"envelope field {missing} is not an integer")
    return tick
