"""The gateway's socket loop: one thread owns the sockets, the broker and the store.

Each loop iteration:

1. drains a bounded batch of requests from the ROUTER and decodes them;
2. handles KILL_SWITCH and RESUME_TRADING of that batch first, persists and
   replies to them at once: a flood of orders cannot delay a kill;
3. drains a bounded batch of ticks from the feed (prices, resting fills);
4. handles the rest of the batch, persists once (group commit: audit lines
   fsync'd, then state.json replaced atomically) and only then replies;
5. publishes events and, when due, telemetry.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import zmq

from services import protocol as p
from services.broker import PaperBroker
from services.gateway.access import Access, secure_sockets
from services.gateway.dispatch import CommandDispatcher, Outcome
from services.gateway.publishing import EventPublisher, gateway_health, gateway_metrics
from services.gateway.settings import GatewaySettings
from services.runtime.errors import UsageError
from services.runtime.network import apply_network
from services.runtime.sockets import apply_limits, bind, connect
from services.store import PersistenceError, Store
from services.telemetry import Percentiles, RateMeter

log = logging.getLogger("tradeconsole.gateway")

COMMAND_BATCH = 256        # requests drained per loop iteration
TICK_BATCH = 1000          # ticks drained per loop iteration (commands stay responsive)
POLL_MS = 100              # longest sleep: SIGTERM is noticed within this
FEED_SILENT_S = 5.0        # no tick for this long: health DEGRADED (cannot price orders)


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
        is_urgent = item.request is not None and item.request.action in p.PRIORITY_ACTIONS
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
        self.out = EventPublisher(self.pub, settings.node)
        # statistics for telemetry
        self.replies_sent = 0
        self.reply_bytes = 0
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
        for sock in (self.router, self.pub, self.sub):
            apply_network(sock, self.settings.network)
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
        logging.getLogger().addHandler(self.out.log_handler)
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
                self.out.publish_logs()
        finally:
            logging.getLogger().removeHandler(self.out.log_handler)
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
        self.out.publish_events(self.broker)

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
        topic_kind, tick_kind = p.topic_kind, p.KIND_TICK
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
                if topic_kind(topic) != tick_kind:  # the feed's own telemetry: skipped
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

    def _publish_telemetry(self) -> None:
        node = self.settings.node
        self.out.publish(p.metrics_topic(node), gateway_metrics(self, COMMAND_BATCH))
        silent = time.monotonic() - (self.last_tick_mono or self.started)
        if silent > FEED_SILENT_S:
            self._reopen_feed()
        self.out.publish(p.health_topic(node), gateway_health(
            self.broker, node, silent if silent > FEED_SILENT_S else None))
