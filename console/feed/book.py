"""The console's market-data state: decoded frames in, coalesced display records out.

Pure state, no sockets and no threads, so it can be driven frame by frame
under an injected clock in tests. The ingest thread calls `on_frame` for
every frame it receives (the hot path: one C decode of the fields the table
shows, a few dict lookups and integer comparisons, no logging); the UI
calls `drain()` once per screen frame and gets only what changed, already
derived for display. Every structure is bounded, whatever peers send.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Container, Sequence
from typing import Any

import msgspec

from console.feed.hot_tick import HotTick, decode_hot
from console.model import (
    CONN_CONNECTING,
    CONN_DISCONNECTED,
    CONN_RETRYING,
    FEED_DOWN,
    FEED_OK,
    FEED_STALE,
    FeedRow,
    FrameUpdate,
    History,
    SymbolDetail,
    SymbolRow,
    TelemetryRecord,
)
from services.protocol import (
    DEFAULT_LIMITS,
    EVENT_PREFIX,
    HEALTH_STATES,
    TELEMETRY_PREFIX,
    DecodeError,
    Limits,
    decode_topic,
    tick_field_problem,
    unpack_map,
)

log = logging.getLogger(__name__)

NS_PER_S = 1_000_000_000
# Latency samples kept per feed between two per-second samples.
LATENCY_RING = 4096
# (recv ns, last price) pairs kept for a symbol whose detail pane is open.
RECENT_POINTS = 64
# Rows of symbols off screen go to the UI at most this often (on-screen ones
# every frame): a table sorted by a live column re-sorts with them, and the
# UI is spared decoding and applying rows it cannot show.
OFF_SCREEN_ROWS_NS = NS_PER_S // 2
# A detail pane not asked for during this long stops collecting history.
WATCH_TTL_NS = 10 * NS_PER_S
# New telemetry records / events kept until the next drain.
TELEMETRY_KEEP = 500
EVENTS_KEEP = 1000
# Distinct publishers / telemetry nodes remembered per feed (hostile peers).
MAX_PUBS_PER_FEED = 1024
MAX_NODES_PER_FEED = 256
MAX_TELEMETRY_TEXT = 2000


def _reject_ext(code: int, data: memoryview) -> Any:
    raise DecodeError(f"msgpack ext type {code} not allowed")


# A whole tick, for the detail view (ingest decodes only console.feed.hot_tick). The
# rules are those of protocol.unpack_map: a map with string keys, no extension
# type but the Timestamp (decoded as an aware datetime), no trailing bytes, and
# the frame within max_msg_size (which bounds every string and container in
# it). msgspec rather than msgpack-python: twice as fast on a vnpy tick.
_decode_map = msgspec.msgpack.Decoder(dict[str, Any], ext_hook=_reject_ext).decode


def decode_tick(payload: bytes, limits: Limits) -> dict[str, Any]:
    """Decode one tick payload into a dict, or raise DecodeError."""
    if len(payload) > limits.max_msg_size:
        raise DecodeError(f"frame of {len(payload)} bytes exceeds {limits.max_msg_size}")
    try:
        tick = _decode_map(payload)
    except (msgspec.DecodeError, ValueError) as exc:  # ValueError: invalid UTF-8 string
        raise DecodeError(f"not a msgpack map with string keys: {exc}") from None
    except RecursionError:
        raise DecodeError("nesting too deep") from None
    if len(tick) > limits.max_container_len:
        raise DecodeError(f"map of {len(tick)} entries exceeds {limits.max_container_len}")
    return tick


EMPTY_TICK = HotTick()


class _Pub:
    """Sequence baseline of one publisher seen on one feed."""

    __slots__ = ("epoch", "seq")

    def __init__(self, epoch: int, seq: int) -> None:
        self.epoch = epoch
        self.seq = seq


class _Feed:
    """Counters for one endpoint (one SUB socket)."""

    __slots__ = (
        "connection", "duplicates", "endpoint", "gaps", "health", "last_problem",
        "last_reject_log_ns", "last_seen_ns", "latency", "latency_p50_us", "latency_p99_us",
        "msgs_per_s", "publishers", "pubs", "received", "received_at_drain",
        "received_at_sample", "rejected", "rejected_unlogged", "restarts",
    )

    def __init__(self, endpoint: str, latency_ring: int = LATENCY_RING) -> None:
        self.endpoint = endpoint
        self.connection = CONN_CONNECTING
        self.received = 0
        self.rejected = 0
        self.rejected_unlogged = 0
        self.last_reject_log_ns: int | None = None
        self.last_problem: str | None = None
        self.gaps = 0
        self.restarts = 0
        self.duplicates = 0
        self.last_seen_ns: int | None = None
        self.latency: deque[int] = deque(maxlen=latency_ring)
        self.latency_p50_us: float | None = None
        self.latency_p99_us: float | None = None
        self.msgs_per_s = 0.0
        self.received_at_sample = 0
        self.received_at_drain = 0
        self.pubs: dict[str, _Pub] = {}
        self.publishers: dict[str, dict[str, Any]] = {}
        self.health: dict[str, str] = {}


class _Symbol:
    """Latest tick of one vt_symbol plus the few counters its row needs."""

    __slots__ = (
        "dirty", "epoch", "evicted", "exchange", "feed", "first_last", "gaps", "key", "last",
        "latency_ns", "payload", "prev_last", "recent", "sent", "tick", "ticks", "tseq",
        "updated_ns", "vt",
        "watch_until_ns",
    )

    def __init__(self, key: bytes, vt: str, feed: str) -> None:
        self.key = key
        self.vt = vt
        _, dot, exchange = vt.rpartition(".")
        self.exchange = exchange if dot else ""
        self.feed = feed
        self.tick = EMPTY_TICK
        self.payload = b""  # the latest frame as received, decoded in full for the detail
        self.last: Any = None
        self.prev_last: Any = None
        self.first_last: Any = None
        self.ticks = 0
        self.updated_ns = 0
        self.latency_ns: int | None = None
        self.epoch: int | None = None
        self.tseq = 0
        self.gaps = 0
        self.dirty = False
        self.sent = False  # a row went out: the UI knows the symbol
        self.evicted = False
        # Only symbols whose detail pane is open collect history: memory and
        # hot-path cost stay flat however many symbols stream.
        self.recent: deque[tuple[int, float]] | None = None
        self.watch_until_ns = 0


def _percentile(ordered: Sequence[int], q: float) -> float:
    return float(ordered[min(len(ordered) - 1, int(q * len(ordered)))])


class FeedBook:
    """Everything the console knows about its feeds, updated frame by frame."""

    def __init__(
        self,
        endpoints: Sequence[str],
        *,
        limits: Limits = DEFAULT_LIMITS,
        max_symbols: int = 50_000,
        stale_after_s: float = 3.0,
        history_s: int = 120,
        latency_ring: int = LATENCY_RING,
        clock_ns: Callable[[], int] = time.monotonic_ns,
        wall_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        if max_symbols < 1:
            raise ValueError("max_symbols must be at least 1")
        self._feeds = [_Feed(ep, latency_ring) for ep in endpoints]
        self._limits = limits
        self._max_symbols = max_symbols
        self._stale_ns = int(stale_after_s * NS_PER_S)
        self._history_s = max(1, int(history_s))
        self._clock_ns = clock_ns
        self._wall_ns = wall_ns
        # Keyed by the raw topic bytes so the hot path never decodes a topic;
        # ordered least recently updated first (refreshed at each drain).
        self._symbols: OrderedDict[bytes, _Symbol] = OrderedDict()
        self._changed: list[_Symbol] = []
        self._removed: dict[str, bytes] = {}
        self._pending = 0
        self._telemetry: deque[TelemetryRecord] = deque(maxlen=TELEMETRY_KEEP)
        self._events: deque[tuple[str, dict[str, Any]]] = deque(maxlen=EVENTS_KEEP)
        self._last_sample_ns = clock_ns()
        self._sampled = False
        self._rate_total: deque[float] = deque(maxlen=self._history_s)
        self._rate_by_feed: list[deque[float]] = [
            deque(maxlen=self._history_s) for _ in self._feeds
        ]
        self._lat_p50: deque[float] = deque(maxlen=self._history_s)
        self._lat_p99: deque[float] = deque(maxlen=self._history_s)
        self._last_p50 = 0.0
        self._last_p99 = 0.0
        self._watched: set[bytes] = set()  # keys of symbols collecting `recent`
        self._off_screen_due_ns = 0

    # --- the hot path -------------------------------------------------------------

    def on_frame(self, feed_index: int, topic: bytes, payload: bytes) -> bool:
        """Merge one received [topic, payload] frame; False when it was rejected.

        Never raises for bad input: a bad frame is counted and dropped.
        """
        feed = self._feeds[feed_index]
        feed.received += 1
        now = self._clock_ns()
        feed.last_seen_ns = now
        sym = self._symbols.get(topic)
        try:
            if sym is None:
                tick = self._admit(feed, topic, payload, now)
                if tick is None:
                    return True  # telemetry or event, already handled
            else:
                tick = decode_hot(payload, sym.vt, self._limits)
            seq = tick.seq
            if seq is not None:
                pub = tick.pub
                pub_state = feed.pubs.get(pub)  # TypeError when unhashable
                if pub_state is None and type(pub) is not str:
                    raise DecodeError("envelope field pub is not a string")
        except DecodeError as exc:
            self._reject(feed, exc.reason, now)
            return False
        except TypeError:
            self._reject(feed, "envelope field pub is not a string", now)
            return False
        if sym is None:
            sym = self._new_symbol(topic, feed.endpoint, tick.last_price)
        if seq is not None:
            epoch = tick.epoch
            if pub_state is not None and pub_state.epoch == epoch and seq == pub_state.seq + 1:
                pub_state.seq = seq
            else:
                self._track_seq(feed, pub_state, pub, epoch, seq)
            tseq = tick.tseq
            if epoch == sym.epoch and tseq == sym.tseq + 1:
                sym.tseq = tseq
            else:
                self._track_tseq(sym, epoch, tseq)
            latency = self._wall_ns() - tick.ts_ns
            sym.latency_ns = latency
            feed.latency.append(latency)
        else:
            sym.latency_ns = None
        last = tick.last_price
        sym.prev_last = sym.last
        sym.last = last
        sym.tick = tick
        sym.payload = payload
        sym.ticks += 1
        sym.updated_ns = now
        if sym.recent is not None and last is not None:
            sym.recent.append((now, last))
        if not sym.dirty:
            sym.dirty = True
            self._changed.append(sym)
        self._pending += 1
        return True

    # --- slow paths (first frame of a topic, telemetry, events, problems) ---------

    def _admit(
        self, feed: _Feed, topic: bytes, payload: bytes, now: int
    ) -> HotTick | None:
        """Decode a frame whose topic is not a known symbol.

        Returns the tick when it is a valid tick of a new symbol, None when the
        frame was telemetry or an event (handled here); raises DecodeError.
        """
        name = decode_topic(topic)
        if name.startswith(TELEMETRY_PREFIX):
            self._on_telemetry(feed, name, unpack_map(payload, self._limits))
            return None
        if name.startswith(EVENT_PREFIX):
            body = unpack_map(payload, self._limits)
            self._track_envelope(feed, body)
            self._events.append((name, body))
            return None
        if not name:
            raise DecodeError("empty topic")
        return decode_hot(payload, name, self._limits)

    def _new_symbol(self, topic: bytes, endpoint: str, first_last: Any) -> _Symbol:
        if len(self._symbols) >= self._max_symbols:
            _, old = self._symbols.popitem(last=False)
            old.evicted = True
            self._watched.discard(old.key)
            self._removed[old.vt] = old.key
            if len(self._removed) > self._max_symbols:
                # Nobody drains: forget the oldest evictions rather than grow.
                del self._removed[next(iter(self._removed))]
        sym = _Symbol(topic, topic.decode("utf-8"), endpoint)
        sym.first_last = first_last
        self._symbols[topic] = sym
        return sym

    def _track_envelope(self, feed: _Feed, body: dict[str, Any]) -> None:
        """Sequence accounting for non-tick frames (they share the publisher's seq)."""
        seq = body.get("seq")
        if seq is None:
            return
        epoch = body.get("epoch")
        pub = body.get("pub")
        if type(seq) is not int or type(epoch) is not int:
            raise DecodeError("envelope fields epoch/seq must be integers")
        if type(pub) is not str:
            raise DecodeError("envelope field pub is not a string")
        self._track_seq(feed, feed.pubs.get(pub), pub, epoch, seq)

    def _track_seq(
        self, feed: _Feed, state: _Pub | None, pub: str, epoch: int, seq: int
    ) -> None:
        if state is None:
            if len(feed.pubs) >= MAX_PUBS_PER_FEED:
                del feed.pubs[next(iter(feed.pubs))]
            feed.pubs[pub] = _Pub(epoch, seq)  # first sight: a baseline, not a gap
        elif state.epoch != epoch:
            feed.restarts += 1
            state.epoch = epoch
            state.seq = seq
        elif seq > state.seq:
            feed.gaps += seq - state.seq - 1
            state.seq = seq
        else:
            feed.duplicates += 1  # backwards within an epoch: duplicate or reorder

    @staticmethod
    def _track_tseq(sym: _Symbol, epoch: int, tseq: int) -> None:
        if epoch != sym.epoch:
            sym.epoch = epoch  # first tick or publisher restart: new baseline
            sym.tseq = tseq
        elif tseq > sym.tseq:
            sym.gaps += tseq - sym.tseq - 1
            sym.tseq = tseq

    def _on_telemetry(self, feed: _Feed, name: str, body: dict[str, Any]) -> None:
        _, _, rest = name.partition(TELEMETRY_PREFIX)
        kind, _, node = rest.partition(".")
        if not node:
            raise DecodeError(f"telemetry topic {name!r} has no node")
        self._track_envelope(feed, body)
        ts_ns = body.get("ts_ns")
        ts = ts_ns if type(ts_ns) is int else self._wall_ns()
        if kind == "metrics":
            if node not in feed.publishers and len(feed.publishers) >= MAX_NODES_PER_FEED:
                del feed.publishers[next(iter(feed.publishers))]
            feed.publishers[node] = body
        elif kind == "health":
            status = body.get("status")
            if status not in HEALTH_STATES:
                raise DecodeError(f"health status must be one of {', '.join(HEALTH_STATES)}")
            detail = body.get("detail")
            text = detail[:MAX_TELEMETRY_TEXT] if isinstance(detail, str) else ""
            previous = feed.health.get(node)
            if node not in feed.health and len(feed.health) >= MAX_NODES_PER_FEED:
                del feed.health[next(iter(feed.health))]
            feed.health[node] = status
            if previous != status:  # health repeats every second: record changes only
                self._telemetry.append(TelemetryRecord(node, "health", status, text, ts))
        elif kind == "logs":
            level = body.get("level")
            message = body.get("message")
            if not isinstance(level, str) or not isinstance(message, str):
                raise DecodeError("log record needs string level and message")
            self._telemetry.append(
                TelemetryRecord(node, "logs", level[:16], message[:MAX_TELEMETRY_TEXT], ts)
            )

    def on_malformed(self, feed_index: int, reason: str) -> None:
        """Count a message that was not [topic, payload] (too few or too many frames)."""
        feed = self._feeds[feed_index]
        feed.received += 1
        now = self._clock_ns()
        feed.last_seen_ns = now
        self._reject(feed, reason, now)

    def on_dropped(self, feed_index: int, reason: str) -> None:
        """Count a frame libzmq refused before it reached us (bigger than MAXMSGSIZE).

        It is a rejection, not activity: `received` and freshness are untouched.
        """
        self._reject(self._feeds[feed_index], reason, self._clock_ns())

    def _reject(self, feed: _Feed, reason: str, now: int) -> None:
        """Count a bad frame; log at most one line per second per feed."""
        feed.rejected += 1
        feed.rejected_unlogged += 1
        feed.last_problem = reason
        if feed.last_reject_log_ns is None or now - feed.last_reject_log_ns >= NS_PER_S:
            self._log_rejects(feed, now)

    @staticmethod
    def _log_rejects(feed: _Feed, now: int) -> None:
        log.warning(
            "feed %s: %d frame(s) rejected (total %d), latest: %s",
            feed.endpoint, feed.rejected_unlogged, feed.rejected, feed.last_problem,
        )
        feed.rejected_unlogged = 0
        feed.last_reject_log_ns = now

    # --- connection state -----------------------------------------------------------

    def set_connection(self, feed_index: int, state: str) -> None:
        """Record what the socket monitor says (model.CONN_*)."""
        self._feeds[feed_index].connection = state

    def connection(self, feed_index: int) -> str:
        return self._feeds[feed_index].connection

    # --- per-second sampling ----------------------------------------------------------

    def tick_second(self, now_ns: int | None = None) -> bool:
        """Take the per-second sample if a second has passed; True when one was added.

        Called by drain(); deterministic under an injected clock. When several
        seconds passed without a call, the average fills each missed second.
        """
        now = self._clock_ns() if now_ns is None else now_ns
        elapsed = now - self._last_sample_ns
        if elapsed < NS_PER_S:
            return False
        self._last_sample_ns = now
        seconds = elapsed / NS_PER_S
        slots = min(int(seconds), self._history_s)
        total = 0.0
        merged: list[int] = []
        for feed, rates in zip(self._feeds, self._rate_by_feed, strict=True):
            feed.msgs_per_s = (feed.received - feed.received_at_sample) / seconds
            feed.received_at_sample = feed.received
            total += feed.msgs_per_s
            if feed.latency:
                ordered = sorted(feed.latency)
                feed.latency.clear()
                feed.latency_p50_us = _percentile(ordered, 0.50) / 1000.0
                feed.latency_p99_us = _percentile(ordered, 0.99) / 1000.0
                merged.extend(ordered)
            rates.extend([feed.msgs_per_s] * slots)
            if feed.rejected_unlogged and now - (feed.last_reject_log_ns or 0) >= NS_PER_S:
                self._log_rejects(feed, now)
        if merged:
            merged.sort()
            self._last_p50 = _percentile(merged, 0.50) / 1000.0
            self._last_p99 = _percentile(merged, 0.99) / 1000.0
        self._rate_total.extend([total] * slots)
        self._lat_p50.extend([self._last_p50] * slots)
        self._lat_p99.extend([self._last_p99] * slots)
        self._sampled = True
        self._expire_watches(now)
        return True

    def _expire_watches(self, now: int) -> None:
        """Stop collecting history for detail panes nobody looked at lately."""
        for key in [k for k in self._watched if now > self._symbols[k].watch_until_ns]:
            self._symbols[key].recent = None
            self._watched.discard(key)

    # --- what the UI reads -----------------------------------------------------------

    def drain(self, on_screen: Container[str] | None = None) -> FrameUpdate:
        """Everything changed since the previous drain, derived for display.

        With `on_screen` (the symbols the UI shows), rows of other symbols the
        UI already knows wait for the next OFF_SCREEN_ROWS_NS turn; new symbols
        and the ones on screen always go at once.
        """
        now = self._clock_ns()
        self.tick_second(now)
        everything = on_screen is None or now >= self._off_screen_due_ns
        if everything and on_screen is not None:
            self._off_screen_due_ns = now + OFF_SCREEN_ROWS_NS
        rows: dict[str, SymbolRow] = {}
        waiting: list[_Symbol] = []
        move_to_end = self._symbols.move_to_end
        for sym in self._changed:
            if sym.evicted:
                continue
            if not everything and sym.sent and sym.vt not in on_screen:  # type: ignore[operator]
                waiting.append(sym)  # still dirty: it goes out on its turn
                continue
            sym.dirty = False
            sym.sent = True
            move_to_end(sym.key)  # least recently updated stay at the front
            rows[sym.vt] = self._row(sym)
        self._changed = waiting
        removed = [vt for vt, key in self._removed.items() if key not in self._symbols]
        self._removed.clear()
        history = self.history() if self._sampled else None
        self._sampled = False
        telemetry = list(self._telemetry)
        self._telemetry.clear()
        events = list(self._events)
        self._events.clear()
        feeds = self.feed_rows(now, advance_backlog=True)
        pending = self._pending
        self._pending = 0
        return FrameUpdate(
            rows=rows,
            removed=removed,
            feeds=feeds,
            telemetry=telemetry,
            events=events,
            history=history,
            received_total=sum(feed.received for feed in self._feeds),
            pending=pending,
        )

    def feed_rows(
        self, now_ns: int | None = None, *, advance_backlog: bool = False
    ) -> list[FeedRow]:
        """One row per feed; `advance_backlog` is for drain() only."""
        now = self._clock_ns() if now_ns is None else now_ns
        rows = []
        for feed in self._feeds:
            backlog = feed.received - feed.received_at_drain
            if advance_backlog:
                feed.received_at_drain = feed.received
            rows.append(FeedRow(
                endpoint=feed.endpoint,
                connection=feed.connection,
                state=self._freshness(feed, now),
                received=feed.received,
                rejected=feed.rejected,
                gaps=feed.gaps,
                restarts=feed.restarts,
                msgs_per_s=feed.msgs_per_s,
                last_seen_ns=feed.last_seen_ns,
                latency_p50_us=feed.latency_p50_us,
                latency_p99_us=feed.latency_p99_us,
                backlog=backlog,
                publishers=dict(feed.publishers),  # payloads are replaced, never mutated
                health=dict(feed.health),
                duplicates=feed.duplicates,
                last_problem=feed.last_problem,
            ))
        return rows

    def _freshness(self, feed: _Feed, now: int) -> str:
        if feed.last_seen_ns is None:
            return FEED_DOWN
        if now - feed.last_seen_ns <= self._stale_ns:
            return FEED_OK
        if feed.connection in (CONN_DISCONNECTED, CONN_RETRYING):
            return FEED_DOWN
        return FEED_STALE

    def history(self) -> History:
        return History(
            rate_total=list(self._rate_total),
            rate_by_feed={
                feed.endpoint: list(rates)
                for feed, rates in zip(self._feeds, self._rate_by_feed, strict=True)
            },
            latency_p50_us=list(self._lat_p50),
            latency_p99_us=list(self._lat_p99),
        )

    def detail(self, vt_symbol: str) -> SymbolDetail | None:
        """The detail pane of one symbol; asking for it keeps its history collecting."""
        sym = self._symbols.get(vt_symbol.encode("utf-8"))
        if sym is None:
            return None
        now = self._clock_ns()
        if sym.recent is None:
            sym.recent = deque(maxlen=RECENT_POINTS)
            if sym.last is not None:
                sym.recent.append((sym.updated_ns, sym.last))
            self._watched.add(sym.key)
        sym.watch_until_ns = now + WATCH_TTL_NS
        # Ingest checked only the fields the table shows; the rest are checked here.
        try:
            tick = decode_tick(sym.payload, self._limits) if sym.payload else {}
            problem = tick_field_problem(tick)
        except DecodeError as exc:
            tick = {k: v for k, v in msgspec.structs.asdict(sym.tick).items() if v is not None}
            problem = exc.reason
        return SymbolDetail(row=self._row(sym), tick=tick, recent=list(sym.recent),
                            problem=problem)

    def all_rows(self) -> dict[str, SymbolRow]:
        """Every tracked symbol's row (for a full table rebuild, not per frame)."""
        return {sym.vt: self._row(sym) for sym in self._symbols.values()}

    @property
    def received_total(self) -> int:
        return sum(feed.received for feed in self._feeds)

    @property
    def symbol_count(self) -> int:
        return len(self._symbols)

    @staticmethod
    def _row(sym: _Symbol) -> SymbolRow:
        tick = sym.tick
        last = sym.last
        bid = tick.bid_price_1
        ask = tick.ask_price_1
        pre_close = tick.pre_close
        change = None
        if last is not None and sym.first_last is None:
            sym.first_last = last  # the first tick had no last price
        if last is not None:
            # vnpy leaves pre_close at 0 when unknown: treat 0 as absent.
            if pre_close:
                change = last - pre_close
            elif sym.first_last is not None:
                change = last - sym.first_last
        previous = sym.prev_last
        direction = 0
        if last is not None and previous is not None:
            direction = (last > previous) - (last < previous)
        latency_ns = sym.latency_ns
        # Positional: this runs for every changed symbol every frame.
        return SymbolRow(
            sym.vt,                                                   # vt_symbol
            sym.exchange,                                             # exchange
            last,                                                     # last
            change,                                                   # change
            bid,                                                      # bid
            ask,                                                      # ask
            ask - bid if bid is not None and ask is not None else None,  # spread
            tick.bid_volume_1,                                        # bid_size
            tick.ask_volume_1,                                        # ask_size
            tick.volume,                                              # volume
            sym.ticks,                                                # ticks
            sym.updated_ns,                                           # updated_ns
            latency_ns / 1000.0 if latency_ns is not None else None,  # latency_us
            direction,                                                # direction
            latency_ns is not None,                                   # has_envelope
            sym.gaps,                                                 # gaps
            sym.feed,                                                 # feed
        )
