"""The console's data layer without a screen: what `tradeconsole exporter` serves.

The same tick source (console.cli.run.make_tick_source) and gateway links
(make_gateway_client, one per gateway) as the console, each a
console.link.fleet `LinkedGateway` with its polls kept in its `TradingState`,
the same `AlertWatch`. One thread drains the source and takes the links'
replies every `interval_s`; a scrape reads the latest
`Snapshot` under a lock and never waits on a socket.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from console.link.fleet import LinkedGateway
from console.link.gateways import GatewaySpec
from console.link.trading import EVENT_POLLS, POLLED_ACTIONS
from console.model import FeedRow, GatewayLink, Reply, TickSource
from console.watch.engine import Alert
from console.watch.observation import GatewayObservation, Observation, observe_gateway
from console.watch.watcher import AlertWatch
from services.protocol import GET_STATUS

log = logging.getLogger(__name__)

DRAIN_INTERVAL_S = 0.25


@dataclass(eq=False, slots=True)
class WatchedGateway(LinkedGateway):
    """A console.link.fleet gateway whose poll replies wait in a queue for the next cycle."""

    replies: queue.SimpleQueue[tuple[str, Reply]] = field(default_factory=queue.SimpleQueue)

    def poll(self, action: str) -> None:
        if self.trading.start_poll(action):
            replies = self.replies
            self.link.request(action, on_reply=lambda reply: replies.put((action, reply)))


@dataclass(slots=True)
class Snapshot:
    """One moment of the data layer, as a scrape and `status` read it."""

    at_s: float = 0.0
    feeds: list[FeedRow] = field(default_factory=list)
    gateways: list[GatewayObservation] = field(default_factory=list)
    firing: list[Alert] = field(default_factory=list)
    rule_counts: dict[tuple[str, str], int] = field(default_factory=dict)
    hooks_sent: dict[str, int] = field(default_factory=dict)
    hook_failures: dict[str, int] = field(default_factory=dict)
    evaluations: int = 0


class Monitor:
    """Drains the feeds, polls the gateways and evaluates alerts on a thread of its own."""

    def __init__(self, source: TickSource, gateways: Sequence[tuple[str, GatewayLink]],
                 watch: AlertWatch, *, poll_interval_s: float,
                 interval_s: float = DRAIN_INTERVAL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.source = source
        self.gateways = [
            WatchedGateway(GatewaySpec(name, str(getattr(link, "endpoint", name))), link)
            for name, link in gateways]
        self.watch = watch
        self.poll_interval_s = poll_interval_s
        self.interval_s = interval_s
        self._clock = clock
        self._lock = threading.Lock()
        self._snapshot = Snapshot()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_poll_s = 0.0
        self.started = threading.Event()   # set after the first cycle

    def start(self) -> None:
        """Start the source and the links (a bad endpoint raises UsageError here), then watch."""
        self.source.start()
        self.source.show([])  # nobody looks at rows: send them as seldom as the source may
        for gateway in self.gateways:
            gateway.link.start()
        self._thread = threading.Thread(target=self._run, name="monitor", daemon=True)
        self._thread.start()

    def stop(self, hooks_wait_s: float = 0.2) -> None:
        """Stop watching, then the links and the source; hooks get `hooks_wait_s` to finish."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            if self._thread.is_alive():
                log.warning("monitor cycle still running at stop; stopping its sources anyway")
        self.watch.close(hooks_wait_s)
        for gateway in self.gateways:
            gateway.link.stop()
        self.source.stop()

    def snapshot(self) -> Snapshot:
        with self._lock:
            return self._snapshot

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.cycle()
            except Exception:  # keep serving the last snapshot; say why in the log
                log.exception("monitor cycle failed")
            self.started.set()
            self._stop.wait(self.interval_s)

    def cycle(self) -> None:
        """One drain, the replies that came in, the polls that are due, alerts if due."""
        now = self._clock()
        update = self.source.drain()
        for topic, _payload in update.events:
            for action in EVENT_POLLS.get(topic, ()):
                for gateway in self.gateways:
                    gateway.poll(action)
        poll_all = now >= self._next_poll_s
        if poll_all:
            self._next_poll_s = now + self.poll_interval_s
        now_ns = time.monotonic_ns()
        observed = []
        for gateway in self.gateways:
            self._take_replies(gateway, now_ns)
            status = gateway.refresh()
            if gateway.trading.note_status(status):
                gateway.poll(GET_STATUS)
            if poll_all:
                for action in POLLED_ACTIONS:
                    gateway.poll(action)
            observed.append(observe_gateway(gateway.name, status, gateway.trading))
        observation = Observation(now_s=now, feeds=update.feeds, gateways=observed)
        if self.watch.due(now):
            self.watch.observe(observation)
        engine = self.watch.engine
        snapshot = Snapshot(
            at_s=now, feeds=update.feeds, gateways=observed, firing=engine.firing(),
            rule_counts=engine.firing_counts(), hooks_sent=self.watch.hooks.sent(),
            hook_failures=self.watch.hooks.failures(), evaluations=engine.evaluations)
        with self._lock:
            self._snapshot = snapshot

    @staticmethod
    def _take_replies(gateway: WatchedGateway, now_ns: int) -> None:
        while True:
            try:
                action, reply = gateway.replies.get_nowait()
            except queue.Empty:
                return
            if gateway.trading.take_poll_reply(action, reply, now_ns):
                gateway.poll(GET_STATUS)

