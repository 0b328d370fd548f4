"""`tradeconsole gateway`: the command server over the paper broker.

One thread owns everything (sockets, broker, store), so there are no locks.
Each loop iteration:

1. drains a bounded batch of requests from the ROUTER and decodes them;
2. handles KILL_SWITCH and RESUME_TRADING of that batch first, persists and
   replies to them at once: a flood of orders cannot delay a kill;
3. drains a bounded batch of ticks from the feed (prices, resting fills);
4. handles the rest of the batch, persists once (group commit: audit lines
   fsync'd, then state.json replaced atomically) and only then replies;
5. publishes events and, when due, telemetry.

Every request gets exactly one reply, malformed ones included. See
docs/gateway.md for the rules (reply cache, time budget, rate limit).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import zmq

from services import protocol as p
from services.broker import PaperBroker, Rejection
from services.envelope import Envelope
from services.runtime.config import Config, load_for_args, user_data_dir
from services.runtime.errors import UsageError
from services.runtime.lifecycle import stop_event_on_signals
from services.runtime.logsetup import setup_logging
from services.runtime.sockets import announce_ready, apply_limits, bind, connect
from services.store import PersistenceError, Store
from services.telemetry import (
    Percentiles,
    RateMeter,
    TelemetryLogHandler,
    health_payload,
    metrics_payload,
)

log = logging.getLogger("tradeconsole.gateway")

COMMAND_BATCH = 256        # requests drained per loop iteration
TICK_BATCH = 1000          # ticks drained per loop iteration (commands stay responsive)
POLL_MS = 100              # longest sleep: SIGTERM is noticed within this
FEED_SILENT_S = 5.0        # no tick for this long: health DEGRADED (cannot price orders)
SNAPSHOT_MARGIN = 16 * 1024  # room left in a reply for everything but the ticks
PRIORITY_ACTIONS = frozenset({p.KILL_SWITCH, p.RESUME_TRADING})
RATE_EXEMPT = frozenset({p.HEARTBEAT, p.KILL_SWITCH, p.RESUME_TRADING})
BUDGET_EXEMPT = frozenset({p.KILL_SWITCH})
NON_TICK_PREFIXES = (p.TELEMETRY_PREFIX, p.EVENT_PREFIX)  # the feed's own telemetry: skipped


# --- settings -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    node: str = "gw-1"
    account_id: str = "PAPER-1"
    currency: str = "USD"
    starting_balance: float = 1_000_000.0
    reply_cache_size: int = 10_000
    request_budget_ms: int = 2000
    rate_limit_per_s: float = 200.0
    telemetry_interval_s: float = 1.0
    limits: p.Limits = field(default_factory=p.Limits)

    @classmethod
    def from_config(cls, config: Config) -> GatewaySettings:
        """Check the [gateway] values; one line naming the key when one is out of range."""
        gw = config.section("gateway")
        checks = [
            ("node", bool(gw["node"].strip()), "a non-empty name (--node)"),
            ("account_id", bool(gw["account_id"].strip()), "a non-empty string"),
            ("currency", bool(gw["currency"].strip()), "a non-empty string"),
            ("starting_balance", gw["starting_balance"] > 0, "a number > 0"),
            ("reply_cache_size", gw["reply_cache_size"] >= 1, "an integer >= 1"),
            ("request_budget_ms", gw["request_budget_ms"] >= 0, "an integer >= 0 (0 = no budget)"),
            ("rate_limit_per_s", gw["rate_limit_per_s"] >= 0, "a number >= 0 (0 = no limit)"),
            ("telemetry_interval_s", gw["telemetry_interval_s"] > 0, "a number > 0"),
        ]
        for key, ok, allowed in checks:
            if not ok:
                raise UsageError(f"gateway.{key} = {gw[key]!r} is not allowed: expected {allowed}")
        try:
            limits = p.Limits.from_config(config.section("limits"))
        except (KeyError, ValueError) as exc:
            raise UsageError(f"[limits] is invalid: {exc}") from exc
        if min(limits.max_msg_size, limits.max_str_len, limits.max_container_len) < 1:
            raise UsageError("[limits] values must be integers >= 1")
        return cls(node=gw["node"], account_id=gw["account_id"], currency=gw["currency"],
                   starting_balance=float(gw["starting_balance"]),
                   reply_cache_size=int(gw["reply_cache_size"]),
                   request_budget_ms=int(gw["request_budget_ms"]),
                   rate_limit_per_s=float(gw["rate_limit_per_s"]),
                   telemetry_interval_s=float(gw["telemetry_interval_s"]), limits=limits)


# --- request handling (no sockets: testable with an injected clock) --------------


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


# --- CURVE roles (only with --keys) -----------------------------------------------


class Access:
    """May the sender of this frame do this action? Everyone may, without --keys."""

    def __init__(self, security: Any = None, auth: Any = None) -> None:
        self._security = security
        self._auth = auth

    def allowed(self, frame: zmq.Frame, action: str) -> bool:
        if self._security is None:
            return True
        return bool(self._security.is_allowed(self._security.role_of_frame(frame), action))

    def auth_failures(self) -> int | None:
        if self._security is None:
            return None
        return int(self._security.auth_failures(self._auth))

    def stop(self) -> None:
        if self._auth is not None:
            self._auth.stop()


def secure_sockets(ctx: zmq.Context, keys_dir: str | None, *, servers: Sequence[zmq.Socket],
                   clients: Sequence[zmq.Socket]) -> Access:
    """With --keys: ZAP authenticator, CURVE on every socket (before bind/connect)."""
    if not keys_dir:
        return Access()
    from services import security  # lazy: only deployments with keys need it

    keys = security.load_keys(keys_dir)
    auth = security.start_auth(ctx, keys)
    for sock in servers:
        security.secure_server(sock, keys)
    if keys.client_secret is not None:  # the feed may be a CURVE publisher too
        for sock in clients:
            security.secure_client(sock, keys)
    return Access(security, auth)


# --- the server loop ------------------------------------------------------------------


def split_envelope(frames: Sequence[zmq.Frame]) -> tuple[list[zmq.Frame], list[zmq.Frame]]:
    """ROUTER frames -> (routing envelope to echo back, payload frames).

    REQ clients (and proxies) put an empty delimiter after the routing ids;
    DEALER clients may send `[payload]` alone, which arrives as `[id, payload]`.
    """
    for index in range(1, len(frames)):
        if len(frames[index]) == 0:
            return list(frames[: index + 1]), list(frames[index + 1:])
    return list(frames[:1]), list(frames[1:])


@dataclass(slots=True)
class Pending:
    """One received request waiting in the current batch."""

    envelope: list[zmq.Frame]
    arrived_ns: int
    request: p.Request | None = None
    error_reply: dict[str, Any] | None = None
    allowed: bool = True


def split_urgent(batch: list[Pending]) -> tuple[list[Pending], list[Pending]]:
    """Kill switch and resume first, everything else after, each in arrival order."""
    urgent: list[Pending] = []
    rest: list[Pending] = []
    for item in batch:
        is_urgent = item.request is not None and item.request.action in PRIORITY_ACTIONS
        (urgent if is_urgent else rest).append(item)
    return urgent, rest


class GatewayServer:
    """Sockets, broker, store and telemetry, driven by `serve()` on one thread."""

    def __init__(self, settings: GatewaySettings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self.broker = PaperBroker(account_id=settings.account_id, currency=settings.currency,
                                  starting_balance=settings.starting_balance)
        self.dispatcher = CommandDispatcher(self.broker, settings)
        self.audit_seq = 0
        self.ctx = zmq.Context()
        self.router = self.ctx.socket(zmq.ROUTER)
        self.pub = self.ctx.socket(zmq.PUB)
        self.sub = self.ctx.socket(zmq.SUB)
        for sock in (self.router, self.pub, self.sub):
            sock.setsockopt(zmq.LINGER, 0)
        self.pub.setsockopt(zmq.LINGER, 200)  # let the last events leave on shutdown
        self.access = Access()
        self.envelope = Envelope(settings.node)
        self.log_handler = TelemetryLogHandler(settings.node, logging.WARNING)
        # statistics for telemetry
        self.replies_sent = 0
        self.reply_bytes = 0
        self.events_sent = 0
        self.pub_dropped = 0
        self.ticks_total = 0
        self.ticks_rejected = 0
        self.last_tick_mono = 0.0
        self.feed_endpoint: str | None = None
        self.feed_reopened_mono = 0.0
        self.last_batch = 0
        self.handle_us = Percentiles()
        self.rate = RateMeter()
        self.started = time.monotonic()
        self._bad_logged_at = 0.0
        self._bad_unlogged = 0
        self.exit_code = 0

    # --- start-up ---------------------------------------------------------------

    def restore(self) -> None:
        """Load state.json and the recent replies from audit.jsonl (exactly once across restarts).

        Audit lines are written before state.json. Lines newer than the state's
        `audit_seq` belong to a batch whose state was never saved and whose
        replies were never sent: they are not replayed as cached replies, so a
        client retry acts on the state that really was saved.
        """
        state = self.store.load_state()
        if state is not None:
            try:
                self.broker.load_state(state)
            except ValueError as exc:
                raise UsageError(f"{self.store.state_path}: {exc}; move it away to start "
                                 f"fresh") from exc
        state_seq = int(state.get("audit_seq", 0)) if state is not None else None
        recent: deque[dict[str, Any]] = deque(maxlen=self.settings.reply_cache_size)
        unapplied: list[int] = []
        max_seq = 0
        for record in self.store.read_audit():
            seq = record.get("seq")
            if type(seq) is not int:
                continue
            max_seq = max(max_seq, seq)
            if state_seq is not None and seq > state_seq:
                unapplied.append(seq)
            elif record.get("final"):
                recent.append(record)
        self.audit_seq = max_seq
        if state is None:
            if max_seq:
                log.warning("%s is missing: starting a new paper account (the audit log is "
                            "kept)", self.store.state_path)
        else:
            self.dispatcher.restore_replies(list(recent))
        recovery = []
        if unapplied:
            log.warning("%d audited request(s) were never applied (stopped before the state "
                        "was saved; their clients got no reply and may retry): seq %s",
                        len(unapplied), unapplied[:20])
            recovery.append({"action": "RECOVERY", "ts_ns": time.time_ns(),
                             "unapplied_seqs": unapplied, "final": False})
        self.broker.dirty = True
        self._commit(recovery)

    def open(self, *, cmd: str, pub: str, feed: str, keys_dir: str | None) -> tuple[str, str]:
        """Secure (with --keys), bind and connect; return the endpoints really bound."""
        limits = self.settings.limits
        apply_limits(self.router, limits)
        apply_limits(self.sub, limits)
        self.router.setsockopt(zmq.RCVHWM, 10_000)
        self.router.setsockopt(zmq.SNDHWM, 10_000)
        self.sub.setsockopt(zmq.RCVHWM, 100_000)
        self.pub.setsockopt(zmq.SNDHWM, 100_000)
        self.access = secure_sockets(self.ctx, keys_dir, servers=[self.router, self.pub],
                                     clients=[self.sub])
        cmd_bound = bind(self.router, cmd, what="gateway command")
        pub_bound = bind(self.pub, pub, what="gateway pub")
        connect(self.sub, feed, what="feed")
        self.feed_endpoint = feed
        self.feed_reopened_mono = time.monotonic()
        self.sub.setsockopt(zmq.SUBSCRIBE, b"")
        return cmd_bound, pub_bound

    def _reopen_feed(self) -> None:
        """Re-open a silent feed connection, at most once per FEED_SILENT_S.

        libzmq does not reconnect after a protocol error (a frame bigger than
        MAXMSGSIZE from a hostile publisher); re-opening a feed that was only
        quiet is harmless.
        """
        now = time.monotonic()
        if self.feed_endpoint is None or now - self.feed_reopened_mono < FEED_SILENT_S:
            return
        self.feed_reopened_mono = now
        with contextlib.suppress(zmq.ZMQError):  # libzmq may have dropped it already
            self.sub.disconnect(self.feed_endpoint)
        self.sub.connect(self.feed_endpoint)
        log.info("feed %s silent: connection re-opened", self.feed_endpoint)

    def close(self) -> None:
        for sock in (self.router, self.sub, self.pub):
            sock.close()
        try:
            self.access.stop()
        except Exception:  # the authenticator is optional; never block shutdown on it
            log.exception("stopping the authenticator failed")
        self.ctx.term()
        self.store.close()

    # --- main loop ----------------------------------------------------------------

    def serve(self, stop: threading.Event) -> int:
        logging.getLogger().addHandler(self.log_handler)
        poller = zmq.Poller()
        poller.register(self.router, zmq.POLLIN)
        poller.register(self.sub, zmq.POLLIN)
        next_telemetry = time.monotonic()
        try:
            while not stop.is_set() and self.exit_code == 0:
                now = time.monotonic()
                if now >= next_telemetry:
                    self._publish_telemetry()
                    next_telemetry = now + self.settings.telemetry_interval_s
                timeout = max(0, min(POLL_MS, int((next_telemetry - now) * 1000)))
                ready = dict(poller.poll(timeout))
                batch = self._drain_commands() if self.router in ready else []
                self.last_batch = len(batch)
                urgent, rest = split_urgent(batch)
                if urgent:
                    self._run_phase(urgent)
                if self.sub in ready:
                    self._drain_ticks()
                self._run_phase(rest)
                self._publish_logs()
        finally:
            logging.getLogger().removeHandler(self.log_handler)
        return self.exit_code

    def _drain_commands(self) -> list[Pending]:
        batch: list[Pending] = []
        limits = self.settings.limits
        for _ in range(COMMAND_BATCH):
            try:
                frames = self.router.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                break
            envelope, body = split_envelope(frames)
            item = Pending(envelope, time.monotonic_ns())
            if len(body) != 1:
                item.error_reply = p.RequestError(
                    p.BAD_REQUEST, f"expected 1 payload frame, got {len(body)}").reply()
            else:
                try:
                    item.request = p.decode_request(body[0].bytes, limits)
                    item.allowed = self.access.allowed(body[0], item.request.action)
                except p.RequestError as exc:
                    item.error_reply = exc.reply()
            if item.error_reply is not None:
                self._note_malformed(item.error_reply["error"]["message"])
            batch.append(item)
        return batch

    def _run_phase(self, items: list[Pending]) -> None:
        """Handle, make durable, then reply: nothing is answered before it is on disk."""
        outcomes: list[tuple[Pending, Outcome, float]] = []
        for item in items:
            start = time.perf_counter()
            if item.request is None:
                assert item.error_reply is not None
                outcome = Outcome(item.error_reply)
            else:
                outcome = self.dispatcher.handle(item.request, arrived_ns=item.arrived_ns,
                                                 allowed=item.allowed)
            outcomes.append((item, outcome, start))
        records = [outcome.audit for _, outcome, _ in outcomes if outcome.audit is not None]
        try:
            self._commit(records)
        except PersistenceError as exc:
            log.critical("%s; stopping: the state on disk stays the last one saved", exc)
            self.exit_code = 1
            for _, outcome, _ in outcomes:
                if outcome.audit is not None:
                    outcome.reply = p.make_reply(
                        outcome.reply["req_id"], outcome.reply["action"], p.ERROR, None,
                        p.INTERNAL, "state could not be saved; not acted on, gateway stopping")
        for item, outcome, start in outcomes:
            self._send_reply(item.envelope, outcome.reply)
            self.handle_us.add((time.perf_counter() - start) * 1e6)
        self._publish_events()

    def _commit(self, records: list[dict[str, Any]]) -> None:
        if not records and not self.broker.dirty:
            return
        for record in records:
            self.audit_seq += 1
            record["seq"] = self.audit_seq
        self.store.append_audit(records)
        state = self.broker.to_state()
        state["audit_seq"] = self.audit_seq
        self.store.save_state(state)
        self.broker.dirty = False

    def _send_reply(self, envelope: list[zmq.Frame], reply: dict[str, Any]) -> None:
        data = p.packb(reply)
        try:
            self.router.send_multipart([*envelope, data], zmq.NOBLOCK, copy=False)
        except zmq.ZMQError as exc:  # peer gone or its queue full: nothing else to do
            log.warning("reply to %s not sent: %s", reply.get("req_id"), exc)
            return
        self.replies_sent += 1
        self.reply_bytes += len(data)

    def _drain_ticks(self) -> None:
        """Up to TICK_BATCH ticks into the broker; runs at feed rate, so kept lean."""
        sub = self.sub
        recv, getsockopt = sub.recv, sub.getsockopt
        limits = self.settings.limits
        on_tick = self.broker.on_tick
        unpack_map, tick_problem = p.unpack_map, p.tick_problem
        now_ns = time.time_ns()
        accepted = rejected = 0
        for _ in range(TICK_BATCH):
            try:
                topic_frame = recv(zmq.NOBLOCK)
            except zmq.Again:
                break
            if not getsockopt(zmq.RCVMORE):
                rejected += 1
                continue
            payload = recv()
            if getsockopt(zmq.RCVMORE):  # extra frames: drop the whole message
                while getsockopt(zmq.RCVMORE):
                    recv()
                rejected += 1
                continue
            try:
                topic = topic_frame.decode("utf-8")
                if topic.startswith(NON_TICK_PREFIXES):
                    continue
                tick = unpack_map(payload, limits)
            except (UnicodeDecodeError, p.DecodeError):
                rejected += 1
                continue
            if tick_problem(tick, topic) is not None:
                rejected += 1
                continue
            accepted += 1
            on_tick(topic, tick, now_ns)
        if accepted:
            self.ticks_total += accepted
            self.last_tick_mono = time.monotonic()
        self.ticks_rejected += rejected

    def _note_malformed(self, reason: str) -> None:
        """Count every malformed request; log at most one line per second."""
        self.dispatcher.counters.malformed += 1
        self._bad_unlogged += 1
        now = time.monotonic()
        if now - self._bad_logged_at >= 1.0:
            log.warning("%d malformed request(s) answered BAD_REQUEST (latest: %s)",
                        self._bad_unlogged, reason[:200])
            self._bad_logged_at = now
            self._bad_unlogged = 0

    # --- publishing -----------------------------------------------------------------

    def _publish(self, topic: str, payload: dict[str, Any]) -> None:
        frame = p.packb(self.envelope.stamp(topic, payload))
        try:
            self.pub.send_multipart([topic.encode(), frame], zmq.NOBLOCK)
            self.events_sent += 1
        except zmq.ZMQError:
            self.pub_dropped += 1

    def _publish_events(self) -> None:
        events, self.broker.events = self.broker.events, []
        for kind, payload in events:
            self._publish(p.event_topic(kind), dict(payload))

    def _publish_logs(self) -> None:
        if self.log_handler.pending:
            for record in self.log_handler.drain():
                self._publish(p.logs_topic(self.settings.node), record)

    def _publish_telemetry(self) -> None:
        counters = self.dispatcher.counters
        self.rate.update(counters.commands + counters.duplicates + counters.malformed,
                         self.reply_bytes)
        node = self.settings.node
        self._publish(p.metrics_topic(node), metrics_payload(
            node, started=self.started, sent_total=self.replies_sent, rate=self.rate,
            ser=self.handle_us, queue_depth=self.last_batch, queue_capacity=COMMAND_BATCH,
            dropped_total=counters.malformed + self.ticks_rejected,
            commands_total=counters.commands, malformed_total=counters.malformed,
            duplicates_total=counters.duplicates, rate_limited_total=counters.rate_limited,
            deadline_exceeded_total=counters.deadline_exceeded,
            forbidden_total=counters.forbidden, internal_errors_total=counters.internal_errors,
            ticks_total=self.ticks_total, ticks_rejected=self.ticks_rejected,
            symbols=len(self.broker.latest), events_dropped=self.pub_dropped,
            auth_failures=self.access.auth_failures(),
            trading_state=self.broker.trading_state))
        status, detail = p.HEALTH_OK, f"trading {self.broker.trading_state}"
        if self.broker.incident:
            detail += f" (incident {self.broker.incident['incident_id']})"
        silent = time.monotonic() - (self.last_tick_mono or self.started)
        if silent > FEED_SILENT_S:
            self._reopen_feed()
            status = p.HEALTH_DEGRADED
            detail += f"; no ticks from the feed for {silent:.0f}s, market orders cannot be priced"
        self._publish(p.health_topic(node), health_payload(node, status, detail))


# --- command line ------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bind", metavar="EP",
                        help="command ROUTER endpoint (default [endpoints] gateway)")
    parser.add_argument("--pub-bind", metavar="EP",
                        help="event/telemetry PUB endpoint (default [endpoints] gateway_pub)")
    parser.add_argument("--feed", metavar="EP",
                        help="publisher to price orders from (default [endpoints] publisher)")
    parser.add_argument("--state-dir", metavar="DIR",
                        help="where state.json and audit.jsonl live (default [gateway] "
                             "state_dir, else the user data dir)")
    parser.add_argument("--node", metavar="NAME", help="node name in telemetry (default gw-1)")
    parser.add_argument("--keys", metavar="DIR",
                        help="require CURVE with the certificates in DIR (tradeconsole keys)")


def run(args: argparse.Namespace) -> int:
    config = load_for_args(args, {
        "endpoints.gateway": args.bind, "endpoints.gateway_pub": args.pub_bind,
        "endpoints.publisher": args.feed, "gateway.node": args.node,
        "gateway.state_dir": args.state_dir,
    })
    settings = GatewaySettings.from_config(config)
    logging_cfg = config.section("logging")
    setup_logging("gateway", logging_cfg["level"], logging_cfg["dir"])
    state_dir = Path(config.get("gateway", "state_dir") or user_data_dir() / "gateway")
    store = Store(state_dir)
    server = GatewayServer(settings, store)
    try:
        server.restore()
        endpoints = config.section("endpoints")
        cmd, pub = server.open(cmd=endpoints["gateway"], pub=endpoints["gateway_pub"],
                               feed=endpoints["publisher"], keys_dir=args.keys)
        stop = stop_event_on_signals()
        log.info("gateway %s serving %s, events on %s, feed %s, state in %s", settings.node,
                 cmd, pub, endpoints["publisher"], state_dir)
        announce_ready(service="gateway", node=settings.node, cmd=cmd, pub=pub,
                       feed=endpoints["publisher"], state_dir=str(store.directory))
        code = server.serve(stop)
        log.info("gateway %s stopped", settings.node)
        return code
    finally:
        server.close()
