"""What the gateway publishes on its PUB socket: broker events, warnings, telemetry.

Everything goes out stamped by one `Envelope` and never blocks: a full queue
drops the message and counts it, since the command loop must not wait on a
slow subscriber.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import zmq

from services import protocol as p
from services.broker import PaperBroker
from services.envelope import Envelope
from services.telemetry import TelemetryLogHandler, health_payload, metrics_payload

if TYPE_CHECKING:
    from services.gateway.server import GatewayServer


class EventPublisher:
    """The PUB socket's sender: stamps, packs and sends without blocking."""

    def __init__(self, sock: zmq.Socket, node: str) -> None:
        self.sock = sock
        self.node = node
        self.envelope = Envelope(node)
        self.log_handler = TelemetryLogHandler(node, logging.WARNING)
        self.dropped = 0

    def publish(self, topic: str, payload: dict[str, Any]) -> None:
        frame = p.packb(self.envelope.stamp(topic, payload))
        try:
            self.sock.send_multipart([topic.encode(), frame], zmq.NOBLOCK)
        except zmq.ZMQError:
            self.dropped += 1

    def publish_events(self, broker: PaperBroker) -> None:
        """The broker's events since the last call (the caller has persisted them)."""
        events, broker.events = broker.events, []
        for kind, payload in events:
            self.publish(p.event_topic(kind), dict(payload))

    def publish_logs(self) -> None:
        if self.log_handler.pending:
            for record in self.log_handler.drain():
                self.publish(p.logs_topic(self.node), record)


def gateway_metrics(server: GatewayServer, queue_capacity: int) -> dict[str, Any]:
    """The metrics payload; updates the server's rate meter."""
    counters = server.dispatcher.counters
    server.rate.update(counters.commands + counters.duplicates + counters.malformed,
                       server.reply_bytes)
    return metrics_payload(
        server.settings.node, started=server.started, sent_total=server.replies_sent,
        rate=server.rate, ser=server.handle_us, queue_depth=server.last_batch,
        queue_capacity=queue_capacity,
        dropped_total=counters.malformed + server.ticks_rejected,
        commands_total=counters.commands, malformed_total=counters.malformed,
        duplicates_total=counters.duplicates, rate_limited_total=counters.rate_limited,
        deadline_exceeded_total=counters.deadline_exceeded,
        forbidden_total=counters.forbidden, internal_errors_total=counters.internal_errors,
        ticks_total=server.ticks_total, ticks_rejected=server.ticks_rejected,
        symbols=len(server.broker.latest), events_dropped=server.out.dropped,
        auth_failures=server.access.auth_failures(),
        trading_state=server.broker.trading_state)


def gateway_health(broker: PaperBroker, node: str, feed_silent_s: float | None) -> dict[str, Any]:
    """OK with the trading state; DEGRADED when the feed has been silent too long."""
    status, detail = p.HEALTH_OK, f"trading {broker.trading_state}"
    if broker.incident:
        detail += f" (incident {broker.incident['incident_id']})"
    if feed_silent_s is not None:
        status = p.HEALTH_DEGRADED
        detail += (f"; no ticks from the feed for {feed_silent_s:.0f}s, market orders "
                   f"cannot be priced")
    return health_payload(node, status, detail)
