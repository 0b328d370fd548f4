"""The pipe between the console and its ingest process: message kinds and encoding.

Every message is two frames, [kind, body]; bodies are msgpack written by
msgspec. The UI asks for one `drain` per screen frame and reads the answer
on its next frame, so the ingest process never produces faster than the
screen consumes and never queues more than one update. The few other
requests (detail, all rows, recording) are answered in order on the same
pipe. Both ends import this module, so the two sides cannot disagree.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgpack
import msgspec

from console.model import FrameUpdate, SymbolDetail, SymbolRow

# UI -> ingest process
DRAIN = b"drain"            # body: {"watch": vt_symbol | None, "on_screen": [vt_symbol]}
DETAIL = b"detail"          # body: vt_symbol
ALL_ROWS = b"all_rows"      # body: None
RECORD = b"record"          # body: path to record to, or None to stop
STOP = b"stop"              # body: None; the process closes its sockets and exits
# ingest process -> UI
STARTED = b"started"        # body: {"pid": int}
UPDATE = b"update"          # body: [FrameUpdate, SymbolDetail | None] (the watched symbol)
ANSWER = b"answer"          # body: the answer to DETAIL / ALL_ROWS / RECORD
FAILED = b"failed"          # body: {"kind": "usage" | "os" | "internal", "message": str}

FAILURE_USAGE = "usage"
FAILURE_OS = "os"
FAILURE_INTERNAL = "internal"


def _enc_hook(value: Any) -> Any:
    """Types msgspec does not know that feed payloads can hold."""
    if isinstance(value, msgpack.Timestamp):  # events decoded by msgpack-python
        return value.to_datetime()
    if isinstance(value, datetime):
        return value
    return repr(value)


_encoder = msgspec.msgpack.Encoder(enc_hook=_enc_hook)
encode = _encoder.encode

_update_decoder = msgspec.msgpack.Decoder(tuple[FrameUpdate, SymbolDetail | None])
_detail_decoder = msgspec.msgpack.Decoder(SymbolDetail | None)
_rows_decoder = msgspec.msgpack.Decoder(dict[str, SymbolRow])
_any_decoder = msgspec.msgpack.Decoder()


def decode_update(body: bytes) -> tuple[FrameUpdate, SymbolDetail | None]:
    return _update_decoder.decode(body)


def decode_detail(body: bytes) -> SymbolDetail | None:
    return _detail_decoder.decode(body)


def decode_rows(body: bytes) -> dict[str, SymbolRow]:
    return _rows_decoder.decode(body)


def decode_any(body: bytes) -> Any:
    return _any_decoder.decode(body)
