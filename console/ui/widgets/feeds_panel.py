"""The feeds panel: one block per endpoint, with exact counts.

Totals are printed with every digit (thousands separators only): an operator
comparing the publisher's `sent_total` with what the console received must
see the real numbers, never "1.2M".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from rich.text import Text

from console.model import (
    CONN_CONNECTED,
    CONN_DISCONNECTED,
    CONN_HEARTBEAT_TIMEOUT,
    CONN_RETRYING,
    FEED_DOWN,
    FEED_OK,
    FEED_STALE,
    FeedRow,
)
from console.ui import format as fmt
from console.ui.widgets.text_panel import TextPanel


def _metric(payload: dict[str, Any], key: str) -> int | None:
    value = payload.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


# Shown instead of "disconnected  OK": the socket dropped, ticks were seen within
# stale_after_s, and ingest (or libzmq) is connecting again.
RECONNECTING = "reconnecting"


def feed_signature(feeds: Sequence[FeedRow]) -> tuple[Any, ...]:
    """What the panel shows, as a hashable value (changes => repaint)."""
    return tuple(
        (f.endpoint, f.connection, f.state, f.received, f.rejected, f.gaps, f.restarts,
         round(f.msgs_per_s, 1), f.backlog, f.duplicates, f.late, f.last_problem,
         tuple(sorted((n, _metric(p, "queue_depth"), _metric(p, "queue_capacity"),
                       _metric(p, "dropped_total")) for n, p in f.publishers.items())),
         tuple(sorted(f.health.items())))
        for f in feeds
    )


class FeedsPanel(TextPanel):
    """Connection, freshness and counters of every feed endpoint."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "feeds--ok", "feeds--warn", "feeds--bad", "feeds--label", "feeds--title",
    }
    DEFAULT_CSS = """
    FeedsPanel { height: auto; padding: 0 1; }
    FeedsPanel > .feeds--ok { color: $tc-ok; text-style: bold; }
    FeedsPanel > .feeds--warn { color: $tc-late; text-style: bold; }
    FeedsPanel > .feeds--bad { color: $tc-bad; text-style: bold; }
    FeedsPanel > .feeds--label { color: $text-muted; }
    FeedsPanel > .feeds--title { text-style: bold; }
    """

    def show_feeds(self, feeds: Sequence[FeedRow]) -> None:
        self.show(feed_signature(feeds), lambda: self._build(feeds))

    def _state_style(self, value: str) -> str:
        if value in (FEED_OK, CONN_CONNECTED, "OK"):
            return "feeds--ok"
        if value in (FEED_STALE, CONN_RETRYING, "DEGRADED") or value.startswith("connecting"):
            return "feeds--warn"
        if value in (FEED_DOWN, CONN_DISCONNECTED, CONN_HEARTBEAT_TIMEOUT, "DOWN"):
            return "feeds--bad"
        return "feeds--warn"

    def _build(self, feeds: Sequence[FeedRow]) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis")
        label = self.style_of("feeds--label")
        if not feeds:
            text.append("no feed endpoints configured", label)
            return text
        for n, feed in enumerate(feeds):
            if n:
                text.append("\n")
            text.append(feed.endpoint, self.style_of("feeds--title"))
            text.append("  ")
            if feed.state == FEED_OK and feed.connection != CONN_CONNECTED:
                # Ticks seen recently but the socket is down: one state, not "disconnected OK".
                text.append(RECONNECTING, self.style_of("feeds--warn"))
            else:
                text.append(feed.connection,
                            self.style_of(self._state_style(feed.connection)))
                text.append("  ")
                text.append(feed.state, self.style_of(self._state_style(feed.state)))
            text.append("\n  rx ", label)
            text.append(fmt.count(feed.received))
            text.append("  ", label)
            text.append(fmt.rate(feed.msgs_per_s))
            text.append("  gaps ", label)
            text.append(fmt.count(feed.gaps), self.style_of("feeds--warn") if feed.gaps else "")
            text.append("  rej ", label)
            text.append(fmt.count(feed.rejected),
                        self.style_of("feeds--bad") if feed.rejected else "")
            text.append("  restarts ", label)
            text.append(fmt.count(feed.restarts))
            text.append("  backlog ", label)
            text.append(fmt.count(feed.backlog))
            if feed.duplicates:
                text.append("  dup ", label)
                text.append(fmt.count(feed.duplicates), self.style_of("feeds--warn"))
            if feed.late:
                # Ticks already older than stale_after_s when they arrived: a
                # backlog, shown but never taken as proof the feed is alive.
                text.append("  late ", label)
                text.append(fmt.count(feed.late), self.style_of("feeds--warn"))
            for node, metrics in sorted(feed.publishers.items()):
                depth = _metric(metrics, "queue_depth")
                capacity = _metric(metrics, "queue_capacity")
                drops = _metric(metrics, "dropped_total")
                text.append(f"\n  {node}", label)
                text.append("  queue ", label)
                text.append(f"{fmt.count(depth)}/{fmt.count(capacity)}")
                text.append("  drops ", label)
                text.append(fmt.count(drops), self.style_of("feeds--bad") if drops else "")
                health = feed.health.get(node)
                if health:
                    text.append("  ")
                    text.append(health, self.style_of(self._state_style(health)))
            for node, health in sorted(feed.health.items()):
                if node not in feed.publishers:
                    text.append(f"\n  {node}  ", label)
                    text.append(health, self.style_of(self._state_style(health)))
            if feed.last_problem and feed.rejected:
                text.append("\n  last reject: ", label)
                text.append(feed.last_problem, self.style_of("feeds--bad"))
        return text
