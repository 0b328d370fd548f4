"""`tradeconsole publisher`: simulated or replayed ticks on a ZeroMQ PUB socket.

Two threads share a bounded queue (`tick_queue`). The producer (`producers`:
the simulated market or a recording) never waits on the network; the sender
(`sender`) owns the socket and the `Envelope`, stamps each message at send
time, packs it and sends `[topic, payload]`, with telemetry on a fixed
cadence. `settings` checks the configuration; `command_line` wires it all
up. The names are re-exported here.
"""

from __future__ import annotations

from services.publisher.command_line import add_arguments, run
from services.publisher.producers import ProducerStatus, replay, simulate
from services.publisher.sender import Sender
from services.publisher.settings import PublisherSettings, settings_from_args
from services.publisher.tick_queue import Item, TickQueue

__all__ = [
    "Item",
    "ProducerStatus",
    "PublisherSettings",
    "Sender",
    "TickQueue",
    "add_arguments",
    "replay",
    "run",
    "settings_from_args",
    "simulate",
]
