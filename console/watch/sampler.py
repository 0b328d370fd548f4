"""From an observation to numbers: one `Sample` per metric of the catalog and subject.

Rates come from the data layer's exact totals over a sliding window
(`rate_window_s`), so a burst of gaps reads as a rate, not as a counter that
never goes down. A total that goes backwards (a publisher restarted) starts
its window again.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from console.model import FEED_DOWN, FEED_OK, GW_DOWN, GW_LATE
from console.watch.observation import GatewayObservation, Observation
from services.protocol import HALTED, HEALTH_DOWN, is_finite_number

MIN_RATE_SPAN_S = 0.5   # a rate over less time than this is noise: no sample yet


@dataclass(frozen=True, slots=True)
class Sample:
    metric: str
    subject: str                        # the feed, publisher, gateway or symbol it is about
    labels: Mapping[str, str]
    value: float | None                 # None: not known this time (keeps an alert as it is)


def number(value: Any) -> float | None:
    """A payload value as a float, or None for anything else (bools, NaN, text)."""
    return float(value) if is_finite_number(value) else None


class RateWindow:
    """Per-second rate of a growing total over the last `window_s`."""

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self._points: deque[tuple[float, float]] = deque()

    def add(self, now_s: float, total: float) -> float | None:
        points = self._points
        if points and total < points[-1][1]:
            points.clear()  # the total was reset (a restart): measure again
        points.append((now_s, total))
        while len(points) > 2 and now_s - points[1][0] >= self.window_s:
            points.popleft()
        span = now_s - points[0][0]
        if span < MIN_RATE_SPAN_S:
            return None
        return (total - points[0][1]) / span


class Sampler:
    """Keeps the rate windows and the equity peaks between observations."""

    def __init__(self, rate_window_s: float) -> None:
        self.rate_window_s = rate_window_s
        self._rates: dict[tuple[str, str], RateWindow] = {}
        self._peak_equity: dict[str, float] = {}

    def _rate(self, key: tuple[str, str], now_s: float, total: float) -> float | None:
        window = self._rates.get(key)
        if window is None:
            window = self._rates[key] = RateWindow(self.rate_window_s)
        return window.add(now_s, total)

    def samples(self, observation: Observation) -> list[Sample]:
        return list(self._feeds(observation)) + list(self._gateways(observation))

    def _feeds(self, observation: Observation) -> Iterator[Sample]:
        now = observation.now_s
        for feed in observation.feeds:
            subject = feed.endpoint
            labels = {"feed": subject, "state": feed.state, "connection": feed.connection}
            yield Sample("feed.stale", subject, labels, float(feed.state != FEED_OK))
            yield Sample("feed.down", subject, labels, float(feed.state == FEED_DOWN))
            yield Sample("feed.msgs_per_s", subject, labels, feed.msgs_per_s)
            for metric, total in (("feed.gap_rate", feed.gaps),
                                  ("feed.reject_rate", feed.rejected),
                                  ("feed.late_rate", feed.late)):
                yield Sample(metric, subject, labels, self._rate((metric, subject), now, total))
            for metric, micros in (("feed.latency_p50_s", feed.latency_p50_us),
                                   ("feed.latency_p99_s", feed.latency_p99_us)):
                yield Sample(metric, subject, labels, None if micros is None else micros / 1e6)
            if feed.state != FEED_OK:
                continue  # its publishers' latest telemetry is not current any more
            for node, telemetry in feed.publishers.items():
                if feed.health.get(node) != HEALTH_DOWN:
                    yield from self._publisher(now, subject, node, telemetry)

    def _publisher(self, now: float, feed: str, node: str,
                   telemetry: Mapping[str, Any]) -> Iterator[Sample]:
        subject = f"{node}@{feed}"
        labels = {"feed": feed, "node": node}
        dropped = number(telemetry.get("dropped_total"))
        if dropped is not None:
            yield Sample("publisher.drop_rate", subject, labels,
                         self._rate(("publisher.drop_rate", subject), now, dropped))
        depth = number(telemetry.get("queue_depth"))
        capacity = number(telemetry.get("queue_capacity"))
        if depth is not None and capacity:
            yield Sample("publisher.queue_fill", subject, labels, depth / capacity)

    def _gateways(self, observation: Observation) -> Iterator[Sample]:
        for gateway in observation.gateways:
            yield from self._gateway(gateway)

    def _gateway(self, gateway: GatewayObservation) -> Iterator[Sample]:
        name = gateway.name
        labels = {"gateway": name, "endpoint": gateway.endpoint, "state": gateway.state,
                  "trading_state": gateway.trading_state or "?",
                  "incident": gateway.incident_id or "?"}
        yield Sample("gateway.late", name, labels, float(gateway.state == GW_LATE))
        yield Sample("gateway.down", name, labels, float(gateway.state == GW_DOWN))
        if gateway.rtt_ms is not None:
            yield Sample("gateway.rtt_s", name, labels, gateway.rtt_ms / 1000.0)
        if gateway.trading_state is not None:
            yield Sample("gateway.halted", name, labels, float(gateway.trading_state == HALTED))
        account = gateway.account
        if account is not None:
            account_id = str(account.get("account_id", "?"))
            alabels = {"gateway": name, "account": account_id,
                       "currency": str(account.get("currency", "?"))}
            subject = f"{name}/{account_id}"
            equity = number(account.get("equity"))
            for metric, key in (("account.equity", "equity"),
                                ("account.upnl", "unrealized_pnl"),
                                ("account.rpnl", "realized_pnl")):
                value = number(account.get(key))
                if value is not None:
                    yield Sample(metric, subject, alabels, value)
            if equity is not None:
                peak = max(self._peak_equity.get(subject, equity), equity)
                self._peak_equity[subject] = peak
                yield Sample("account.drawdown", subject, alabels, equity - peak)
        for position in gateway.positions or ():
            qty = number(position.get("qty"))
            symbol = str(position.get("vt_symbol", "?"))
            if qty is not None:
                yield Sample("position.abs_qty", f"{name}/{symbol}",
                             {"gateway": name, "symbol": symbol}, abs(qty))
