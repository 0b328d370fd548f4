"""Topic names and how to sort them: the first frame of every PUB message.

A topic is a tick's `vt_symbol`, or starts with `telemetry.` or `event.`;
`topic_kind` is the one place that tells them apart.
"""

from __future__ import annotations

from typing import Final

TELEMETRY_PREFIX: Final = "telemetry."
EVENT_PREFIX: Final = "event."
KIND_TICK: Final = "tick"
KIND_TELEMETRY: Final = "telemetry"
KIND_EVENT: Final = "event"


def topic_kind(topic: str) -> str:
    """Sort a topic: anything that is not telemetry or an event is a tick."""
    if topic.startswith(TELEMETRY_PREFIX):
        return KIND_TELEMETRY
    if topic.startswith(EVENT_PREFIX):
        return KIND_EVENT
    return KIND_TICK


def exchange_of(vt_symbol: str) -> str:
    """The exchange is the part of `vt_symbol` after the last dot ('' if none)."""
    _, dot, exchange = vt_symbol.rpartition(".")
    return exchange if dot else ""


def metrics_topic(node: str) -> str:
    return f"telemetry.metrics.{node}"


def health_topic(node: str) -> str:
    return f"telemetry.health.{node}"


def logs_topic(node: str) -> str:
    return f"telemetry.logs.{node}"


def event_topic(kind: str) -> str:
    return f"event.{kind}"
