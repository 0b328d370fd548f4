"""The outcome of a gateway request as the console sees it: a console.model.Reply.

A reply the gateway sent and a reply that never came both end as a `Reply`, so
callers handle one type; the two codes below mark the second kind. They are
the client's own codes in `Reply.error`, never sent by the gateway.
"""

from __future__ import annotations

from typing import Any

from console.model import Reply

# No attempt got an answer (every Lazy Pirate retry timed out).
NO_REPLY = "NO_REPLY"
# The client's queue was full; the request was never sent.
QUEUE_FULL = "QUEUE_FULL"


def to_reply(action: str, req_id: str, reply: dict[str, Any], rtt_ms: float | None) -> Reply:
    """A decoded gateway reply as a delivered Reply."""
    error = reply.get("error")
    return Reply(
        action=action,
        req_id=req_id,
        delivered=True,
        status=reply.get("status"),
        data=reply.get("data"),
        error=error if isinstance(error, dict) else None,
        rtt_ms=rtt_ms,
    )


def undelivered(action: str, req_id: str, code: str, message: str) -> Reply:
    """A Reply for a request the gateway never answered (`code` says why)."""
    return Reply(action=action, req_id=req_id, delivered=False, status=None,
                 error={"code": code, "message": message})
