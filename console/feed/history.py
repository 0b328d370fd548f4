"""The per-second sample behind the charts: message rates, latency percentiles, late ticks.

Deterministic under an injected clock: a sample is taken when a second has
passed since the previous one, and when several seconds passed without one,
the average fills each missed second. Every series is bounded by the
history length.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

from console.feed.feed_state import NS_PER_S, FeedState, percentile
from console.model import History


class RateHistory:
    """The last `history_s` seconds of rates (total and per feed) and latency."""

    def __init__(self, endpoints: Sequence[str], history_s: int, start_ns: int) -> None:
        self._endpoints = list(endpoints)
        self._history_s = max(1, int(history_s))
        self._last_sample_ns = start_ns
        self._sampled = False
        self._rate_total: deque[float] = deque(maxlen=self._history_s)
        self._rate_by_feed: list[deque[float]] = [
            deque(maxlen=self._history_s) for _ in self._endpoints
        ]
        self._lat_p50: deque[float] = deque(maxlen=self._history_s)
        self._lat_p99: deque[float] = deque(maxlen=self._history_s)
        self._late: deque[int] = deque(maxlen=self._history_s)
        self._last_p50 = 0.0
        self._last_p99 = 0.0

    def due(self, now: int) -> bool:
        """Whether the next `sample` would add one (a second has passed)."""
        return now - self._last_sample_ns >= NS_PER_S

    def sample(self, feeds: Sequence[FeedState], now: int) -> bool:
        """Take the sample if a second has passed; True when one was added."""
        elapsed = now - self._last_sample_ns
        if elapsed < NS_PER_S:
            return False
        self._last_sample_ns = now
        seconds = elapsed / NS_PER_S
        slots = min(int(seconds), self._history_s)
        total = 0.0
        merged: list[int] = []
        late = 0
        for feed, rates in zip(feeds, self._rate_by_feed, strict=True):
            merged.extend(feed.sample(seconds, now))
            late += feed.take_late()
            total += feed.msgs_per_s
            rates.extend([feed.msgs_per_s] * slots)
        if merged:
            merged.sort()
            self._last_p50 = percentile(merged, 0.50) / 1000.0
            self._last_p99 = percentile(merged, 0.99) / 1000.0
        self._rate_total.extend([total] * slots)
        self._lat_p50.extend([self._last_p50] * slots)
        self._lat_p99.extend([self._last_p99] * slots)
        # Late ticks are not spread over missed seconds: they arrived in this one.
        self._late.extend([0] * (slots - 1) + [late])
        self._sampled = True
        return True

    def take_new(self) -> History | None:
        """The history if a sample was added since the previous call, else None."""
        if not self._sampled:
            return None
        self._sampled = False
        return self.snapshot()

    def snapshot(self) -> History:
        return History(
            rate_total=list(self._rate_total),
            rate_by_feed={
                endpoint: list(rates)
                for endpoint, rates in zip(self._endpoints, self._rate_by_feed, strict=True)
            },
            latency_p50_us=list(self._lat_p50),
            latency_p99_us=list(self._lat_p99),
            late_per_s=list(self._late),
        )
