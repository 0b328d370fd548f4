"""The pipe between the console and one of its child processes: what both ends agree on.

Every message is two frames, [kind, body], the body msgpack written by
msgspec. A child answers its start with STARTED {"pid"} or FAILED {"kind",
"message"}, and any request it could not serve with FAILED; STOP asks it to
exit. A failure travels as its kind (usage, os, internal) so that the parent
raises what the child met: UsageError, OSError, or ChildError for the rest.
The supervisor (services.runtime.supervisor) and the child's entry point
(services.runtime.child) both use this module, so the two ends cannot disagree.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgpack
import msgspec

from services.runtime.errors import UsageError

# child -> parent: the answer to its start, and to a request it could not serve
STARTED = b"started"        # body: {"pid"}
FAILED = b"failed"          # body: {"kind": FAILURE_*, "message"}
# parent -> child
STOP = b"stop"              # body: None; the child closes its sockets and exits

FAILURE_USAGE = "usage"     # bad endpoint, key or setting: UsageError
FAILURE_OS = "os"           # the OS refused (a file, a socket): OSError
FAILURE_INTERNAL = "internal"  # anything else: ChildError

# A child checks this often that its parent is still there.
PARENT_CHECK_S = 1.0


class ChildError(RuntimeError):
    """A child process failed, exited, or did not answer in time (not a usage or OS error)."""


def _enc_hook(value: Any) -> Any:
    """Types msgspec does not know that feed payloads and replies can hold."""
    if isinstance(value, msgpack.Timestamp):  # decoded by msgpack-python
        return value.to_datetime()
    if isinstance(value, datetime):
        return value
    return repr(value)


_encoder = msgspec.msgpack.Encoder(enc_hook=_enc_hook)
encode = _encoder.encode
_any_decoder = msgspec.msgpack.Decoder()


def decode_any(body: bytes) -> Any:
    return _any_decoder.decode(body)


def failure_of(exc: BaseException) -> dict[str, str]:
    """The FAILED body that tells the parent what `exc` was."""
    if isinstance(exc, UsageError):
        return {"kind": FAILURE_USAGE, "message": str(exc)}
    if isinstance(exc, OSError):
        return {"kind": FAILURE_OS, "message": str(exc)}
    return {"kind": FAILURE_INTERNAL, "message": repr(exc)}


def error_of(body: bytes, name: str) -> Exception:
    """The exception a FAILED body stands for; `name` says which child failed."""
    failure = decode_any(body)
    if not isinstance(failure, dict):
        return ChildError(f"the {name} failed: {failure!r}")
    message = str(failure.get("message"))
    if failure.get("kind") == FAILURE_USAGE:
        return UsageError(message)
    if failure.get("kind") == FAILURE_OS:
        return OSError(message)
    return ChildError(f"the {name} failed: {message}")
