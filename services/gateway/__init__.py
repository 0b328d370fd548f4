"""`tradeconsole gateway`: the command server over the paper broker.

One thread owns everything (sockets, broker, store), so there are no locks.
Every request gets exactly one reply, malformed ones included. See
docs/gateway.md for the rules (reply cache, time budget, rate limit).

The package is split by job: `server` (the socket loop), `dispatch` (request
handling), `publishing` (events and telemetry), `access` (CURVE roles),
`settings` and `command_line`; the names are re-exported here.
"""

from __future__ import annotations

from services.gateway.access import Access, secure_sockets
from services.gateway.command_line import add_arguments, run
from services.gateway.dispatch import (
    CommandDispatcher,
    Counters,
    Outcome,
    RateLimiter,
    ReplyCache,
)
from services.gateway.publishing import EventPublisher
from services.gateway.server import GatewayServer, Pending, split_envelope, split_urgent
from services.gateway.settings import GatewaySettings

__all__ = [
    "Access",
    "CommandDispatcher",
    "Counters",
    "EventPublisher",
    "GatewayServer",
    "GatewaySettings",
    "Outcome",
    "Pending",
    "RateLimiter",
    "ReplyCache",
    "add_arguments",
    "run",
    "secure_sockets",
    "split_envelope",
    "split_urgent",
]
