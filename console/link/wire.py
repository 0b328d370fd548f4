"""The pipe between the console and its gateway link process: message kinds and codec.

Two frames a message, [kind, body], as for every child process
(services.runtime.child_pipe, which also has STARTED, FAILED and STOP). The
UI sends requests; the link process answers each with a REPLY, always
preceded by the STATUS that reply produced (so a callback that reads
`status()` sees, say, HALTED after a kill), and sends STATUS on its own
every STATUS_EVERY_S so LATE and DOWN show while a request waits. Both ends
import this module.
"""

from __future__ import annotations

import msgspec

from console.model import GatewayStatus, Reply

# UI -> link process
REQUEST = b"request"   # body: {"action", "payload", "req_id", "urgent"}
# link process -> UI
REPLY = b"reply"       # body: Reply
STATUS = b"status"     # body: GatewayStatus

# The link process reports its state at least this often.
STATUS_EVERY_S = 0.1

_reply_decoder = msgspec.msgpack.Decoder(Reply)
_status_decoder = msgspec.msgpack.Decoder(GatewayStatus)


def decode_reply(body: bytes) -> Reply:
    return _reply_decoder.decode(body)


def decode_status(body: bytes) -> GatewayStatus:
    return _status_decoder.decode(body)
