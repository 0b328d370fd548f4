"""Per-feed accounting: what one SUB socket received, rejected, lost and how fresh it is.

FeedBook keeps one FeedState per endpoint. Sequence numbers are tracked per
publisher (`seq` is shared by all of a publisher's topics), so gaps, restarts
and duplicates are counted per feed whatever mix of publishers it carries.
Every map here is bounded: a hostile peer cannot make it grow.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Sequence
from typing import Any

from console.model import (
    CONN_CONNECTING,
    CONN_DISCONNECTED,
    CONN_HEARTBEAT_TIMEOUT,
    CONN_RETRYING,
    FEED_DOWN,
    FEED_OK,
    FEED_STALE,
    FeedRow,
)
from services.protocol import DecodeError

# Rejections are the book's warnings: they keep the logger name they always had.
log = logging.getLogger("console.feed.book")

NS_PER_S = 1_000_000_000
# Latency samples kept per feed between two per-second samples.
LATENCY_RING = 4096
# Distinct publishers remembered per feed (hostile peers).
MAX_PUBS_PER_FEED = 1024
# Seconds of per-second minimum latencies behind the "late" baseline.
LATE_BASELINE_S = 60
# Before the first per-second sample nothing is judged late.
NEVER_LATE = 1 << 62


class PubState:
    """Sequence baseline of one publisher seen on one feed."""

    __slots__ = ("epoch", "seq")

    def __init__(self, epoch: int, seq: int) -> None:
        self.epoch = epoch
        self.seq = seq


class FeedState:
    """Counters for one endpoint (one SUB socket)."""

    __slots__ = (
        "connection", "duplicates", "endpoint", "gaps", "health", "last_problem",
        "last_reject_log_ns", "last_seen_ns", "late", "late_after_ns", "late_at_sample",
        "latency", "latency_floors", "latency_p50_us", "latency_p99_us", "msgs_per_s",
        "publishers", "pubs", "received", "received_at_drain", "received_at_sample", "rejected",
        "rejected_unlogged", "restarts", "stale_ns",
    )

    def __init__(self, endpoint: str, latency_ring: int = LATENCY_RING,
                 stale_ns: int = 3 * NS_PER_S) -> None:
        self.endpoint = endpoint
        self.stale_ns = stale_ns
        self.connection = CONN_CONNECTING
        self.received = 0
        self.rejected = 0
        self.rejected_unlogged = 0
        self.last_reject_log_ns: int | None = None
        self.last_problem: str | None = None
        self.gaps = 0
        self.restarts = 0
        self.duplicates = 0
        # Ticks that were already older than the stale threshold when they
        # arrived (a backlog after a partition): counted, but they do not make
        # the feed look fresh. "Older" is measured above the feed's lowest
        # latency of the last minute, so a publisher whose clock is off by a
        # few seconds is not late on every tick.
        self.late = 0
        self.late_at_sample = 0
        self.late_after_ns = NEVER_LATE
        self.latency_floors: deque[int] = deque(maxlen=LATE_BASELINE_S)
        self.last_seen_ns: int | None = None
        self.latency: deque[int] = deque(maxlen=latency_ring)
        self.latency_p50_us: float | None = None
        self.latency_p99_us: float | None = None
        self.msgs_per_s = 0.0
        self.received_at_sample = 0
        self.received_at_drain = 0
        self.pubs: dict[str, PubState] = {}
        self.publishers: dict[str, dict[str, Any]] = {}
        self.health: dict[str, str] = {}

    # --- sequence accounting ----------------------------------------------------------

    def track_seq(self, state: PubState | None, pub: str, epoch: int, seq: int) -> None:
        """The slow path of a publisher's seq: first sight, restart, gap or duplicate."""
        if state is None:
            if len(self.pubs) >= MAX_PUBS_PER_FEED:
                del self.pubs[next(iter(self.pubs))]
            self.pubs[pub] = PubState(epoch, seq)  # first sight: a baseline, not a gap
        elif state.epoch != epoch:
            self.restarts += 1
            state.epoch = epoch
            state.seq = seq
        elif seq > state.seq:
            self.gaps += seq - state.seq - 1
            state.seq = seq
        else:
            self.duplicates += 1  # backwards within an epoch: duplicate or reorder

    def track_envelope(self, body: dict[str, Any]) -> None:
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
        self.track_seq(self.pubs.get(pub), pub, epoch, seq)

    # --- rejections -------------------------------------------------------------------

    def reject(self, reason: str, now: int) -> None:
        """Count a bad frame; log at most one line per second."""
        self.rejected += 1
        self.rejected_unlogged += 1
        self.last_problem = reason
        if self.last_reject_log_ns is None or now - self.last_reject_log_ns >= NS_PER_S:
            self.log_rejects(now)

    def log_rejects(self, now: int) -> None:
        log.warning(
            "feed %s: %d frame(s) rejected (total %d), latest: %s",
            self.endpoint, self.rejected_unlogged, self.rejected, self.last_problem,
        )
        self.rejected_unlogged = 0
        self.last_reject_log_ns = now

    # --- the per-second sample --------------------------------------------------------

    def take_late(self) -> int:
        """Late ticks since the previous call (the per-second sample)."""
        new = self.late - self.late_at_sample
        self.late_at_sample = self.late
        return new

    def sample(self, seconds: float, now: int) -> list[int]:
        """Rate and latency percentiles over the last `seconds`; the sorted latencies.

        Also logs rejections held back by the once-a-second limit.
        """
        self.msgs_per_s = (self.received - self.received_at_sample) / seconds
        self.received_at_sample = self.received
        ordered: list[int] = []
        if self.latency:
            ordered = sorted(self.latency)
            self.latency.clear()
            self.latency_floors.append(ordered[0])
            self.late_after_ns = min(self.latency_floors) + self.stale_ns
            self.latency_p50_us = percentile(ordered, 0.50) / 1000.0
            self.latency_p99_us = percentile(ordered, 0.99) / 1000.0
        if self.rejected_unlogged and now - (self.last_reject_log_ns or 0) >= NS_PER_S:
            self.log_rejects(now)
        return ordered

    # --- what the feeds panel shows ----------------------------------------------------

    def freshness(self, now: int, stale_ns: int) -> str:
        if self.last_seen_ns is None:
            return FEED_DOWN
        if now - self.last_seen_ns <= stale_ns:
            return FEED_OK
        if self.connection in (CONN_DISCONNECTED, CONN_HEARTBEAT_TIMEOUT, CONN_RETRYING):
            return FEED_DOWN
        return FEED_STALE

    def row(self, now: int, stale_ns: int, *, advance_backlog: bool) -> FeedRow:
        """The feed's panel row; `advance_backlog` starts the next frame's backlog count."""
        backlog = self.received - self.received_at_drain
        if advance_backlog:
            self.received_at_drain = self.received
        return FeedRow(
            endpoint=self.endpoint,
            connection=self.connection,
            state=self.freshness(now, stale_ns),
            received=self.received,
            rejected=self.rejected,
            gaps=self.gaps,
            restarts=self.restarts,
            msgs_per_s=self.msgs_per_s,
            last_seen_ns=self.last_seen_ns,
            latency_p50_us=self.latency_p50_us,
            latency_p99_us=self.latency_p99_us,
            backlog=backlog,
            publishers=dict(self.publishers),  # payloads are replaced, never mutated
            health=dict(self.health),
            duplicates=self.duplicates,
            last_problem=self.last_problem,
            late=self.late,
        )


def percentile(ordered: Sequence[int], q: float) -> float:
    return float(ordered[min(len(ordered) - 1, int(q * len(ordered)))])
