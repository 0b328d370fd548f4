"""The pipe between the console and its ingest process: message kinds and encoding.

Every message is two frames, [kind, body]; bodies are msgpack written by
msgspec. The UI asks for one `drain` per screen frame and reads the answer
on its next frame, so the ingest process never produces faster than the
screen consumes and never queues more than one update. The few other
requests (detail, all rows, recording) are answered in order on the same
pipe. STARTED, FAILED and STOP are those of every child process
(services.runtime.child_pipe). Both ends import this module, so the two sides
cannot disagree.
"""

from __future__ import annotations

import msgspec

from console.model import FrameUpdate, SymbolDetail, SymbolRow

# UI -> ingest process
# DRAIN body: {"watch": vt_symbol | None, "hold_ms": int | None, "on_screen": [vt_symbol]},
# "on_screen" only when it changed since the last DRAIN (the process keeps the last one).
DRAIN = b"drain"
DETAIL = b"detail"          # body: vt_symbol
ALL_ROWS = b"all_rows"      # body: None
RECORD = b"record"          # body: path to record to, or None to stop
# ingest process -> UI
UPDATE = b"update"          # body: [FrameUpdate, SymbolDetail | None] (the watched symbol)
ANSWER = b"answer"          # body: the answer to DETAIL / ALL_ROWS / RECORD (or FAILED)


_update_decoder = msgspec.msgpack.Decoder(tuple[FrameUpdate, SymbolDetail | None])
_detail_decoder = msgspec.msgpack.Decoder(SymbolDetail | None)
_rows_decoder = msgspec.msgpack.Decoder(dict[str, SymbolRow])


def decode_update(body: bytes) -> tuple[FrameUpdate, SymbolDetail | None]:
    return _update_decoder.decode(body)


def decode_detail(body: bytes) -> SymbolDetail | None:
    return _detail_decoder.decode(body)


def decode_rows(body: bytes) -> dict[str, SymbolRow]:
    return _rows_decoder.decode(body)
