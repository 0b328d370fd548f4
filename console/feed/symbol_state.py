"""Per-symbol state: the latest tick of one vt_symbol and the row the table shows for it.

FeedBook keeps one SymbolState per topic and turns it into a SymbolRow only
when the UI drains, so a symbol ticking a thousand times a frame is derived
for display once.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from console.feed.hot_tick import HotTick
from console.model import SymbolRow
from services.protocol import exchange_of

EMPTY_TICK = HotTick()


class SymbolState:
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
        self.exchange = exchange_of(vt)
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

    def track_tseq(self, epoch: int, tseq: int) -> None:
        """The slow path of the per-topic sequence: new baseline or a gap."""
        if epoch != self.epoch:
            self.epoch = epoch  # first tick or publisher restart: new baseline
            self.tseq = tseq
        elif tseq > self.tseq:
            self.gaps += tseq - self.tseq - 1
            self.tseq = tseq

    def row(self) -> SymbolRow:
        """The table row, derived from the latest tick."""
        tick = self.tick
        last = self.last
        bid = tick.bid_price_1
        ask = tick.ask_price_1
        pre_close = tick.pre_close
        change = None
        if last is not None and self.first_last is None:
            self.first_last = last  # the first tick had no last price
        if last is not None:
            # vnpy leaves pre_close at 0 when unknown: treat 0 as absent.
            if pre_close:
                change = last - pre_close
            elif self.first_last is not None:
                change = last - self.first_last
        previous = self.prev_last
        direction = 0
        if last is not None and previous is not None:
            direction = (last > previous) - (last < previous)
        latency_ns = self.latency_ns
        # Positional: this runs for every changed symbol every frame.
        return SymbolRow(
            self.vt,                                                  # vt_symbol
            self.exchange,                                            # exchange
            last,                                                     # last
            change,                                                   # change
            bid,                                                      # bid
            ask,                                                      # ask
            ask - bid if bid is not None and ask is not None else None,  # spread
            tick.bid_volume_1,                                        # bid_size
            tick.ask_volume_1,                                        # ask_size
            tick.volume,                                              # volume
            self.ticks,                                               # ticks
            self.updated_ns,                                          # updated_ns
            latency_ns / 1000.0 if latency_ns is not None else None,  # latency_us
            direction,                                                # direction
            latency_ns is not None,                                   # has_envelope
            self.gaps,                                                # gaps
            self.feed,                                                # feed
        )
