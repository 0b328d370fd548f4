"""Request handling: decoded request -> exactly one reply (no sockets, injectable clock).

The reply cache, the rate limit and the time budget live here, ahead of the
broker, so a repeat or a refusal never reaches it.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from services import protocol as p
from services.broker import PaperBroker, Rejection
from services.gateway.settings import GatewaySettings

log = logging.getLogger("tradeconsole.gateway")

SNAPSHOT_MARGIN = 16 * 1024  # room left in a reply for everything but the ticks
RATE_EXEMPT = frozenset({p.HEARTBEAT, p.KILL_SWITCH, p.RESUME_TRADING})
BUDGET_EXEMPT = frozenset({p.KILL_SWITCH})


class RateLimiter:
    """Token bucket per client_id: `rate` requests/s sustained, bursts of up to `rate`."""

    MAX_CLIENTS = 10_000  # bounded memory: the least recently seen client is forgotten

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._buckets: OrderedDict[str, list[float]] = OrderedDict()

    def allow(self, client_id: str, now_ns: int) -> bool:
        if self.rate <= 0:
            return True
        now = now_ns / 1e9
        capacity = max(self.rate, 1.0)
        bucket = self._buckets.get(client_id)
        if bucket is None:
            if len(self._buckets) >= self.MAX_CLIENTS:
                self._buckets.popitem(last=False)
            bucket = self._buckets[client_id] = [capacity, now]
        else:
            self._buckets.move_to_end(client_id)
        tokens = min(capacity, bucket[0] + (now - bucket[1]) * self.rate)
        bucket[1] = now
        allowed = tokens >= 1.0
        bucket[0] = tokens - 1.0 if allowed else tokens
        return allowed


class ReplyCache:
    """The first reply per (client_id, req_id), oldest forgotten first."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._replies: OrderedDict[tuple[str, str], dict[str, Any]] = OrderedDict()

    def get(self, key: tuple[str, str]) -> dict[str, Any] | None:
        return self._replies.get(key)

    def put(self, key: tuple[str, str], reply: dict[str, Any]) -> None:
        self._replies[key] = reply
        while len(self._replies) > self.size:
            self._replies.popitem(last=False)

    def __len__(self) -> int:
        return len(self._replies)


@dataclass(slots=True)
class Outcome:
    """A reply, plus the audit record to make durable before sending it (if any)."""

    reply: dict[str, Any]
    audit: dict[str, Any] | None = None


@dataclass(slots=True)
class Counters:
    commands: int = 0
    malformed: int = 0
    duplicates: int = 0
    rate_limited: int = 0
    deadline_exceeded: int = 0
    forbidden: int = 0
    internal_errors: int = 0


def _reply_from_audit(record: dict[str, Any]) -> dict[str, Any]:
    """Rebuild the reply a previous run sent, so a retry after a restart gets it again."""
    return {"v": p.PROTOCOL_VERSION, "req_id": record["req_id"], "action": record["action"],
            "status": record["status"], "data": record.get("result"),
            "error": record.get("error"), "ts_ns": record.get("reply_ts_ns")}


class CommandDispatcher:
    """Decoded request -> exactly one reply; acts on the broker at most once per req_id.

    Order of checks: reply cache (a repeat gets the first reply), role, rate
    limit, time budget, then the action itself. Refusals that are about the
    moment (rate limit, deadline, internal error) are not cached: the request
    did not act, so a retry may.
    """

    def __init__(self, broker: PaperBroker, settings: GatewaySettings, *,
                 clock_ns: Callable[[], int] = time.monotonic_ns,
                 wall_ns: Callable[[], int] = time.time_ns) -> None:
        self.broker = broker
        self.settings = settings
        self.clock_ns = clock_ns
        self.wall_ns = wall_ns
        self.started_ns = clock_ns()
        self.cache = ReplyCache(settings.reply_cache_size)
        self.limiter = RateLimiter(settings.rate_limit_per_s)
        self.counters = Counters()
        self._actions: dict[str, Callable[[p.Request, int], Any]] = {
            p.HEARTBEAT: self._heartbeat,
            p.GET_STATUS: lambda req, now: broker.status(),
            p.GET_ACCOUNT_INFO: lambda req, now: broker.account(),
            p.GET_POSITIONS: lambda req, now: broker.position_rows(),
            p.GET_ORDERS: lambda req, now: broker.order_rows(),
            p.GET_SNAPSHOT: self._snapshot,
            p.OPEN_ORDER: self._open_order,
            p.CANCEL_ORDER: lambda req, now: broker.cancel_order(req.payload["order_id"], now),
            p.CLOSE_POSITION: lambda req, now: broker.close_position(
                req.payload["vt_symbol"], client_id=req.client_id, now_ns=now),
            p.KILL_SWITCH: lambda req, now: broker.kill(
                reason=req.payload["reason"], mode=req.payload["mode"],
                client_id=req.client_id, now_ns=now),
            p.RESUME_TRADING: lambda req, now: broker.resume(
                incident_id=req.payload["incident_id"], reason=req.payload["reason"],
                client_id=req.client_id, now_ns=now),
        }

    def uptime_s(self) -> float:
        return (self.clock_ns() - self.started_ns) / 1e9

    def handle(self, req: p.Request, *, arrived_ns: int, allowed: bool = True) -> Outcome:
        key = (req.client_id, req.req_id)
        cached = self.cache.get(key)
        if cached is not None:
            self.counters.duplicates += 1
            return Outcome(cached)
        self.counters.commands += 1
        final = True
        waited_ms = (self.clock_ns() - arrived_ns) / 1e6
        budget = self.settings.request_budget_ms
        if not allowed:
            self.counters.forbidden += 1
            reply = self._refusal(req, p.ERROR, p.FORBIDDEN,
                                  f"{req.action} is not allowed for this client's role")
        elif req.action not in RATE_EXEMPT and not self.limiter.allow(req.client_id,
                                                                     self.clock_ns()):
            self.counters.rate_limited += 1
            final = False
            reply = self._refusal(
                req, p.REJECTED, p.FORBIDDEN,
                f"rate limit exceeded ({self.settings.rate_limit_per_s:g} requests/s)")
        elif budget and req.action not in BUDGET_EXEMPT and waited_ms > budget:
            self.counters.deadline_exceeded += 1
            final = False
            reply = self._refusal(
                req, p.ERROR, p.INTERNAL,
                f"deadline exceeded: waited {waited_ms:.0f} ms, budget {budget} ms; not acted on")
        else:
            reply, final = self._act(req)
        if final:
            self.cache.put(key, reply)
        audit = self._audit_record(req, reply, final) \
            if req.action in p.STATE_CHANGING_ACTIONS else None
        return Outcome(reply, audit)

    def restore_replies(self, records: Sequence[dict[str, Any]]) -> None:
        for record in records:
            try:
                self.cache.put((record["client_id"], record["req_id"]),
                               _reply_from_audit(record))
            except (KeyError, TypeError):
                continue

    def _act(self, req: p.Request) -> tuple[dict[str, Any], bool]:
        try:
            data = self._actions[req.action](req, self.wall_ns())
        except Rejection as exc:
            return self._refusal(req, p.REJECTED, exc.code, exc.message), True
        except Exception as exc:  # one reply per request, whatever breaks
            self.counters.internal_errors += 1
            log.exception("%s %s from %s failed", req.action, req.req_id, req.client_id)
            return self._refusal(req, p.ERROR, p.INTERNAL,
                                 f"internal error: {type(exc).__name__}"), False
        return p.make_reply(req.req_id, req.action, p.SUCCESS, data), True

    @staticmethod
    def _refusal(req: p.Request, status: str, code: str, message: str) -> dict[str, Any]:
        return p.make_reply(req.req_id, req.action, status, None, code, message)

    def _audit_record(self, req: p.Request, reply: dict[str, Any],
                      final: bool) -> dict[str, Any]:
        now = self.wall_ns()
        return {"ts": datetime.fromtimestamp(now / 1e9, UTC).isoformat(), "ts_ns": now,
                "client_id": req.client_id, "req_id": req.req_id, "action": req.action,
                "payload": req.payload, "status": reply["status"], "error": reply["error"],
                "result": reply["data"], "reply_ts_ns": reply["ts_ns"], "final": final}

    def _heartbeat(self, req: p.Request, now: int) -> dict[str, Any]:
        return {"node": self.settings.node, "uptime_s": self.uptime_s(),
                "trading_state": self.broker.trading_state, "ts_ns": now}

    def _snapshot(self, req: p.Request, now: int) -> dict[str, Any]:
        limits = self.settings.limits
        return self.broker.snapshot(
            req.payload.get("symbols"),
            max_bytes=max(1024, limits.max_msg_size - SNAPSHOT_MARGIN),
            max_entries=limits.max_container_len)

    def _open_order(self, req: p.Request, now: int) -> dict[str, Any]:
        pl = req.payload
        return self.broker.open_order(
            client_id=req.client_id, vt_symbol=pl["vt_symbol"], side=pl["side"], qty=pl["qty"],
            order_type=pl["type"], price=pl["price"], now_ns=now)

