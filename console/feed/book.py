"""The console's market-data state: decoded frames in, coalesced display records out.

Pure state, no sockets and no threads, so it can be driven frame by frame
under an injected clock in tests. The ingest thread calls `on_frame` for
every frame it receives (the hot path: one C decode of the fields the table
shows, a few dict lookups and integer comparisons, no logging); the UI
calls `drain()` once per screen frame and gets only what changed, already
derived for display. Every structure is bounded, whatever peers send.

The parts live beside it: per-feed counters in feed_state, per-symbol rows
in symbol_state, telemetry in telemetry, the per-second sample in history,
the detail view's full decode in full_tick.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable, Container, Sequence
from typing import Any

from console.feed.feed_state import LATENCY_RING, NS_PER_S, FeedState
from console.feed.full_tick import full_tick
from console.feed.history import RateHistory
from console.feed.hot_tick import HotTick, decode_hot
from console.feed.symbol_state import SymbolState
from console.feed.telemetry import read_telemetry
from console.model import FrameUpdate, SymbolDetail, SymbolRow, TelemetryRecord
from services.protocol import (
    DEFAULT_LIMITS,
    KIND_EVENT,
    KIND_TELEMETRY,
    DecodeError,
    Limits,
    decode_topic,
    topic_kind,
    unpack_map,
)

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
        self._stale_ns = int(stale_after_s * NS_PER_S)
        self._feeds = [FeedState(ep, latency_ring, self._stale_ns) for ep in endpoints]
        self._feed_states_drained: list[tuple[str, str]] = []
        self._limits = limits
        self._max_symbols = max_symbols
        self._clock_ns = clock_ns
        self._wall_ns = wall_ns
        # Keyed by the raw topic bytes so the hot path never decodes a topic;
        # ordered least recently updated first (refreshed at each drain).
        self._symbols: OrderedDict[bytes, SymbolState] = OrderedDict()
        self._changed: list[SymbolState] = []
        self._removed: dict[str, bytes] = {}
        self._pending = 0
        self._telemetry: deque[TelemetryRecord] = deque(maxlen=TELEMETRY_KEEP)
        self._events: deque[tuple[str, dict[str, Any]]] = deque(maxlen=EVENTS_KEEP)
        self._history = RateHistory(endpoints, history_s, clock_ns())
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
        seen_before = feed.last_seen_ns
        feed.last_seen_ns = now
        sym = self._symbols.get(topic)
        try:
            if sym is None:
                tick = self._admit(feed, topic, payload)
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
            feed.reject(exc.reason, now)
            return False
        except TypeError:
            feed.reject("envelope field pub is not a string", now)
            return False
        if sym is None:
            sym = self._new_symbol(topic, feed.endpoint, tick.last_price)
        if seq is not None:
            epoch = tick.epoch
            if pub_state is not None and pub_state.epoch == epoch and seq == pub_state.seq + 1:
                pub_state.seq = seq
            else:
                feed.track_seq(pub_state, pub, epoch, seq)
            tseq = tick.tseq
            if epoch == sym.epoch and tseq == sym.tseq + 1:
                sym.tseq = tseq
            else:
                sym.track_tseq(epoch, tseq)
            latency = self._wall_ns() - tick.ts_ns
            sym.latency_ns = latency
            feed.latency.append(latency)
            if latency > feed.late_after_ns:
                # A backlog arriving after a partition is news of the past:
                # count it, show it, but do not let it make the feed look fresh.
                feed.late += 1
                feed.last_seen_ns = seen_before
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

    def _admit(self, feed: FeedState, topic: bytes, payload: bytes) -> HotTick | None:
        """Decode a frame whose topic is not a known symbol.

        Returns the tick when it is a valid tick of a new symbol, None when the
        frame was telemetry or an event (handled here); raises DecodeError.
        """
        name = decode_topic(topic)
        kind = topic_kind(name)
        if kind == KIND_TELEMETRY:
            body = unpack_map(payload, self._limits)
            record = read_telemetry(feed, name, body, self._wall_ns)
            if record is not None:
                self._telemetry.append(record)
            return None
        if kind == KIND_EVENT:
            body = unpack_map(payload, self._limits)
            feed.track_envelope(body)
            self._events.append((name, body))
            return None
        if not name:
            raise DecodeError("empty topic")
        return decode_hot(payload, name, self._limits)

    def _new_symbol(self, topic: bytes, endpoint: str, first_last: Any) -> SymbolState:
        if len(self._symbols) >= self._max_symbols:
            _, old = self._symbols.popitem(last=False)
            old.evicted = True
            self._watched.discard(old.key)
            self._removed[old.vt] = old.key
            if len(self._removed) > self._max_symbols:
                # Nobody drains: forget the oldest evictions rather than grow.
                del self._removed[next(iter(self._removed))]
        sym = SymbolState(topic, topic.decode("utf-8"), endpoint)
        sym.first_last = first_last
        self._symbols[topic] = sym
        return sym

    def on_malformed(self, feed_index: int, reason: str) -> None:
        """Count a message that was not [topic, payload] (too few or too many frames)."""
        feed = self._feeds[feed_index]
        feed.received += 1
        now = self._clock_ns()
        feed.last_seen_ns = now
        feed.reject(reason, now)

    def on_dropped(self, feed_index: int, reason: str) -> None:
        """Count a frame libzmq refused before it reached us (bigger than MAXMSGSIZE).

        It is a rejection, not activity: `received` and freshness are untouched.
        """
        self._feeds[feed_index].reject(reason, self._clock_ns())

    # --- connection state -----------------------------------------------------------

    def set_connection(self, feed_index: int, state: str) -> None:
        """Record what the socket monitor says (model.CONN_*)."""
        self._feeds[feed_index].connection = state

    def connection(self, feed_index: int) -> str:
        return self._feeds[feed_index].connection

    def silent_ns(self, feed_index: int) -> int | None:
        """How long the feed has sent nothing current (None: never heard from)."""
        seen = self._feeds[feed_index].last_seen_ns
        return None if seen is None else self._clock_ns() - seen

    # --- what the UI reads -----------------------------------------------------------

    def has_news(self, on_screen: Container[str] | None = None) -> bool:
        """Whether a drain now would bring anything the screen does not show yet:
        rows (not those waiting for their off-screen turn, see `drain`), removals,
        telemetry, events, a history second, or a feed whose state or connection
        changed. The ingest process holds the UI's request until then."""
        if self._removed or self._telemetry or self._events:
            return True
        now = self._clock_ns()
        if self._changed and self._rows_due(on_screen, now):
            return True
        if self._history.due(now):
            return True
        shown = self._feed_states_drained
        return len(shown) != len(self._feeds) or any(
            (feed.freshness(now, self._stale_ns), feed.connection) != state
            for feed, state in zip(self._feeds, shown, strict=False))

    def _rows_due(self, on_screen: Container[str] | None, now: int) -> bool:
        """Whether `drain(on_screen)` now would send a changed row."""
        if on_screen is None or now >= self._off_screen_due_ns:
            return True
        return any(not sym.evicted and (not sym.sent or sym.vt in on_screen)
                   for sym in self._changed)

    def rows_due_in_ns(self) -> int | None:
        """How long until changed rows waiting off screen are due (None: none wait)."""
        if not self._changed:
            return None
        return max(0, self._off_screen_due_ns - self._clock_ns())

    def drain(self, on_screen: Container[str] | None = None) -> FrameUpdate:
        """Everything changed since the previous drain, derived for display.

        With `on_screen` (the symbols the UI shows), rows of other symbols the
        UI already knows wait for the next OFF_SCREEN_ROWS_NS turn; new symbols
        and the ones on screen always go at once.
        """
        now = self._clock_ns()
        if self._history.sample(self._feeds, now):
            self._expire_watches(now)
        everything = on_screen is None or now >= self._off_screen_due_ns
        if everything and on_screen is not None:
            self._off_screen_due_ns = now + OFF_SCREEN_ROWS_NS
        rows: dict[str, SymbolRow] = {}
        waiting: list[SymbolState] = []
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
            rows[sym.vt] = sym.row()
        self._changed = waiting
        removed = [vt for vt, key in self._removed.items() if key not in self._symbols]
        self._removed.clear()
        history = self._history.take_new()
        telemetry = list(self._telemetry)
        self._telemetry.clear()
        events = list(self._events)
        self._events.clear()
        feeds = [feed.row(now, self._stale_ns, advance_backlog=True) for feed in self._feeds]
        self._feed_states_drained = [(feed.state, feed.connection) for feed in feeds]
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

    def _expire_watches(self, now: int) -> None:
        """Stop collecting history for detail panes nobody looked at lately."""
        for key in [k for k in self._watched if now > self._symbols[k].watch_until_ns]:
            self._symbols[key].recent = None
            self._watched.discard(key)

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
        tick, problem = full_tick(sym.payload, sym.tick, self._limits)
        return SymbolDetail(row=sym.row(), tick=tick, recent=list(sym.recent), problem=problem)

    def all_rows(self) -> dict[str, SymbolRow]:
        """Every tracked symbol's row (for a full table rebuild, not per frame)."""
        return {sym.vt: sym.row() for sym in self._symbols.values()}

    @property
    def received_total(self) -> int:
        return sum(feed.received for feed in self._feeds)
