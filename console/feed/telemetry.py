"""Service telemetry read off a feed: metrics kept per node, health changes and logs recorded.

Telemetry shares its publisher's sequence numbers, so it goes through the
feed's envelope accounting too. Nodes remembered per feed and the text kept
per record are capped (hostile peers).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from console.feed.feed_state import FeedState
from console.model import TelemetryRecord
from services.protocol import HEALTH_STATES, TELEMETRY_PREFIX, DecodeError

MAX_NODES_PER_FEED = 256
MAX_TELEMETRY_TEXT = 2000


def read_telemetry(
    feed: FeedState, name: str, body: dict[str, Any], wall_ns: Callable[[], int]
) -> TelemetryRecord | None:
    """Apply one `telemetry.{kind}.{node}` frame to `feed`; the record to show, if any.

    `wall_ns()` stands in for a missing or invalid `ts_ns`. Raises DecodeError.
    """
    _, _, rest = name.partition(TELEMETRY_PREFIX)
    kind, _, node = rest.partition(".")
    if not node:
        raise DecodeError(f"telemetry topic {name!r} has no node")
    feed.track_envelope(body)
    ts_ns = body.get("ts_ns")
    ts = ts_ns if type(ts_ns) is int else wall_ns()
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
            return TelemetryRecord(node, "health", status, text, ts)
    elif kind == "logs":
        level = body.get("level")
        message = body.get("message")
        if not isinstance(level, str) or not isinstance(message, str):
            raise DecodeError("log record needs string level and message")
        return TelemetryRecord(node, "logs", level[:16], message[:MAX_TELEMETRY_TEXT], ts)
    return None
