"""The monitor's snapshot as Prometheus metric families, built fresh on every scrape.

A custom collector (prometheus_client's documented way to export numbers a
program already keeps): the exact totals the data layer counts become
`_total` counters, states become 0/1 gauges, times are in seconds.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from console.model import (
    CONN_CONNECTED,
    CONN_CONNECTING,
    CONN_DISCONNECTED,
    CONN_HEARTBEAT_TIMEOUT,
    CONN_RETRYING,
    FEED_OK,
    GW_DOWN,
    GW_LATE,
    GW_UNKNOWN,
    GW_UP,
)
from console.watch.hooks import KINDS
from console.watch.monitor import Monitor
from console.watch.sampler import number
from services.protocol import HALTED, HEALTH_DOWN
from services.runtime.about import version

PREFIX = "tradeconsole"
CONNECTION_STATES = (CONN_CONNECTING, CONN_CONNECTED, CONN_RETRYING, CONN_DISCONNECTED,
                     CONN_HEARTBEAT_TIMEOUT)
GATEWAY_STATES = (GW_UP, GW_LATE, GW_DOWN, GW_UNKNOWN)


def _gauge(name: str, doc: str, labels: list[str], unit: str = "") -> GaugeMetricFamily:
    return GaugeMetricFamily(f"{PREFIX}_{name}", doc, labels=labels, unit=unit)


def _counter(name: str, doc: str, labels: list[str]) -> CounterMetricFamily:
    return CounterMetricFamily(f"{PREFIX}_{name}", doc, labels=labels)


class MonitorCollector(Collector):
    """Every family the exporter serves, read from one `Monitor.snapshot()`."""

    def __init__(self, monitor: Monitor) -> None:
        self.monitor = monitor

    def collect(self) -> Iterator[Metric]:
        snapshot = self.monitor.snapshot()
        info = _gauge("build_info", "tradeconsole version (always 1)", ["version"])
        info.add_metric([version()], 1)
        yield info
        yield from self._feeds(snapshot.feeds)
        yield from self._gateways(snapshot.gateways)
        firing = _gauge("alerts_firing", "alerts firing, by rule and severity",
                        ["rule", "severity"])
        for (rule, severity), count in sorted(snapshot.rule_counts.items()):
            firing.add_metric([rule, severity], count)
        yield firing
        sent = _counter("alert_hooks_sent_total", "alert hooks delivered, by kind", ["kind"])
        failed = _counter("alert_hook_failures_total",
                          "alert hooks that failed, timed out or were dropped, by kind", ["kind"])
        for kind in KINDS:
            sent.add_metric([kind], snapshot.hooks_sent.get(kind, 0))
            failed.add_metric([kind], snapshot.hook_failures.get(kind, 0))
        yield sent
        yield failed
        evaluations = _counter("alert_evaluations_total", "alert rule evaluations", [])
        evaluations.add_metric([], snapshot.evaluations)
        yield evaluations

    def _feeds(self, feeds: list[Any]) -> Iterator[Metric]:
        label = ["feed"]
        counters = {
            "received": _counter("feed_received_total", "frames received on the feed", label),
            "gaps": _counter("feed_gaps_total", "messages missing by sequence number", label),
            "rejected": _counter("feed_rejected_total", "malformed frames rejected", label),
            "restarts": _counter("feed_restarts_total", "publisher restarts (epoch changes)",
                                 label),
            "late": _counter("feed_late_total",
                             "ticks older than stale_after_s when they arrived", label),
            "duplicates": _counter("feed_duplicates_total",
                                   "frames whose sequence went backwards (duplicate or reorder)",
                                   label),
        }
        rate = _gauge("feed_messages_per_second", "frames received per second", label)
        p50 = _gauge("feed_latency_p50_seconds", "receive latency, median", label)
        p99 = _gauge("feed_latency_p99_seconds", "receive latency, 99th percentile", label)
        stale = _gauge("feed_stale", "1 while the feed is STALE or DOWN", label)
        age = _gauge("feed_last_seen_age_seconds", "time since the feed's last frame", label)
        connection = _gauge("feed_connection", "1 for the feed socket's current state",
                            ["feed", "state"])
        depth = _gauge("publisher_queue_depth", "publisher send queue depth (telemetry)",
                       ["feed", "node"])
        capacity = _gauge("publisher_queue_capacity", "publisher send queue capacity",
                          ["feed", "node"])
        dropped = _counter("publisher_dropped_total", "ticks the publisher dropped (telemetry)",
                           ["feed", "node"])
        rate_out = _gauge("publisher_messages_per_second", "publisher send rate (telemetry)",
                          ["feed", "node"])
        now_ns = time.monotonic_ns()
        for feed in feeds:
            ep = [feed.endpoint]
            for key, family in counters.items():
                family.add_metric(ep, getattr(feed, key))
            rate.add_metric(ep, feed.msgs_per_s)
            if feed.latency_p50_us is not None:
                p50.add_metric(ep, feed.latency_p50_us / 1e6)
            if feed.latency_p99_us is not None:
                p99.add_metric(ep, feed.latency_p99_us / 1e6)
            stale.add_metric(ep, float(feed.state != FEED_OK))
            if feed.last_seen_ns is not None:
                age.add_metric(ep, max(0.0, (now_ns - feed.last_seen_ns) / 1e9))
            for state in CONNECTION_STATES:
                connection.add_metric([feed.endpoint, state], float(feed.connection == state))
            if feed.state != FEED_OK:
                continue  # the publishers' latest telemetry is not current: no stale series
            for node, telemetry in sorted(feed.publishers.items()):
                if feed.health.get(node) == HEALTH_DOWN:
                    continue
                labels = [feed.endpoint, node]
                for family, key in ((depth, "queue_depth"), (capacity, "queue_capacity"),
                                    (dropped, "dropped_total"), (rate_out, "msgs_per_s")):
                    value = number(telemetry.get(key))
                    if value is not None:
                        family.add_metric(labels, value)
        yield from counters.values()
        yield from (rate, p50, p99, stale, age, connection, depth, capacity, dropped, rate_out)

    def _gateways(self, gateways: list[Any]) -> Iterator[Metric]:
        label = ["gateway", "endpoint"]
        up = _gauge("gateway_up", "1 while the gateway answers heartbeats (UP or LATE)", label)
        state = _gauge("gateway_state", "1 for the gateway link's current state",
                       ["gateway", "endpoint", "state"])
        rtt = _gauge("gateway_rtt_seconds", "last heartbeat round trip", label)
        halted = _gauge("gateway_halted", "1 while trading is HALTED (kill switch fired)",
                        label)
        account_labels = ["gateway", "account", "currency"]
        equity = _gauge("account_equity", "account equity, in the account currency",
                        account_labels)
        upnl = _gauge("account_unrealized_pnl", "unrealized PnL", account_labels)
        rpnl = _gauge("account_realized_pnl", "realized PnL", account_labels)
        qty = _gauge("position_quantity", "net position size (signed)", ["gateway", "symbol"])
        for gateway in gateways:
            labels = [gateway.name, gateway.endpoint]
            up.add_metric(labels, float(gateway.state in (GW_UP, GW_LATE)))
            for name in GATEWAY_STATES:
                state.add_metric([*labels, name], float(gateway.state == name))
            if gateway.rtt_ms is not None:
                rtt.add_metric(labels, gateway.rtt_ms / 1000.0)
            if gateway.trading_state is not None:
                halted.add_metric(labels, float(gateway.trading_state == HALTED))
            account = gateway.account
            if account is not None:
                alabels = [gateway.name, str(account.get("account_id", "?")),
                           str(account.get("currency", "?"))]
                for family, key in ((equity, "equity"), (upnl, "unrealized_pnl"),
                                    (rpnl, "realized_pnl")):
                    value = number(account.get(key))
                    if value is not None:
                        family.add_metric(alabels, value)
            for position in gateway.positions or ():
                value = number(position.get("qty"))
                if value is not None:
                    qty.add_metric([gateway.name, str(position.get("vt_symbol", "?"))], value)
        yield from (up, state, rtt, halted, equity, upnl, rpnl, qty)
