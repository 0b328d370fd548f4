"""Every metric an alert rule can name: its subject, unit and default message.

One list serves the rules (an unknown metric is refused at load, with the
known ones listed), the sampler (which computes exactly these) and the docs.
"""

from __future__ import annotations

from dataclasses import dataclass

# What a metric is measured on, and the labels a message can use for it.
SUBJECT_LABELS: dict[str, tuple[str, ...]] = {
    "feed": ("feed", "state", "connection"),
    "publisher": ("feed", "node"),
    "gateway": ("gateway", "endpoint", "state", "trading_state", "incident"),
    "account": ("gateway", "account", "currency"),
    "position": ("gateway", "symbol"),
}
# Every message can also use these.
COMMON_FIELDS = ("rule", "severity", "subject", "value", "threshold", "op", "for")


@dataclass(frozen=True, slots=True)
class MetricDef:
    name: str
    subject: str        # a key of SUBJECT_LABELS
    unit: str
    help: str


METRICS: dict[str, MetricDef] = {m.name: m for m in (
    MetricDef("feed.stale", "feed", "0/1", "1 while the feed is STALE or DOWN"),
    MetricDef("feed.down", "feed", "0/1", "1 while the feed is DOWN (never heard, or lost)"),
    MetricDef("feed.msgs_per_s", "feed", "msg/s", "frames received per second"),
    MetricDef("feed.gap_rate", "feed", "msg/s", "messages missing by sequence, per second"),
    MetricDef("feed.reject_rate", "feed", "frames/s", "malformed frames rejected, per second"),
    MetricDef("feed.late_rate", "feed", "ticks/s",
              "ticks older than stale_after_s on arrival, per second"),
    MetricDef("feed.latency_p50_s", "feed", "s", "receive latency, median"),
    MetricDef("feed.latency_p99_s", "feed", "s", "receive latency, 99th percentile"),
    MetricDef("publisher.drop_rate", "publisher", "msg/s",
              "ticks the publisher dropped from its queue, per second (telemetry)"),
    MetricDef("publisher.queue_fill", "publisher", "0..1",
              "publisher queue depth over its capacity (telemetry)"),
    MetricDef("gateway.late", "gateway", "0/1",
              "1 while the gateway is LATE (answers, slower than heartbeat_late_ms)"),
    MetricDef("gateway.down", "gateway", "0/1", "1 while the gateway is DOWN"),
    MetricDef("gateway.rtt_s", "gateway", "s", "heartbeat round trip"),
    MetricDef("gateway.halted", "gateway", "0/1", "1 while trading is HALTED"),
    MetricDef("account.equity", "account", "currency", "account equity"),
    MetricDef("account.upnl", "account", "currency", "unrealized PnL"),
    MetricDef("account.rpnl", "account", "currency", "realized PnL"),
    MetricDef("account.drawdown", "account", "currency",
              "equity minus the highest equity seen since start (0 or negative)"),
    MetricDef("position.abs_qty", "position", "qty", "absolute size of one position"),
)}
