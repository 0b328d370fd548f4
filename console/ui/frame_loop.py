"""The frame loop: once per frame, drain the tick source and apply only what changed.

A mixin of `TradeConsole` (console.ui.app), which composes the widgets this
reads and runs `_frame` from one `set_interval(1/fps)` timer; the data layer
never posts a message per tick.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual.widgets import Tab, Tabs

from console.link.fleet import Fleet, LinkedGateway
from console.link.trading import EVENT_POLLS, TradingState
from console.model import FrameUpdate, TickSource
from console.ui.frame_pace import FramePace
from console.ui.screens.detail import DetailScreen
from console.ui.widgets import paint_yield
from console.ui.widgets.charts import ChartsPanel
from console.ui.widgets.feeds_panel import FeedsPanel
from console.ui.widgets.filter_bar import FilterBar
from console.ui.widgets.gateway_panel import GatewayPanel
from console.ui.widgets.status_bar import (
    GatewayBadge,
    HaltedBanner,
    HaltView,
    StatusBar,
    StatusView,
    feeds_ok,
)
from console.ui.widgets.table_paint import NEVER_NS
from console.ui.widgets.telemetry_pane import TelemetryPane
from console.ui.widgets.tick_table import TickTable
from services.protocol import GET_STATUS

# Under load, the panels and the status bar repaint at most this often (the table
# repaints every frame); see _frame.
PANEL_INTERVAL_NS = 250_000_000


class FrameLoop:
    """Frame state (paused rows, counters, exchange tabs) and what one frame does."""

    # Provided by TradeConsole.
    source: TickSource
    fleet: Fleet
    fps: int
    readonly: bool
    trading: TradingState
    table: TickTable
    status_bar: StatusBar
    banner: HaltedBanner
    filter_bar: FilterBar
    feeds_panel: FeedsPanel
    charts: ChartsPanel
    gateway_panel: GatewayPanel
    telemetry: TelemetryPane
    exchange_tabs: Tabs
    screen: Any
    is_running: bool
    _ui_ready: bool
    _recording: Any
    _clock_ns: Callable[[], int]
    _request_poll: Callable[..., None]              # console.ui.gateway_view
    notify: Callable[..., None]
    _evaluate_alerts: Callable[[list[Any]], bool]   # console.ui.alerting
    alert_badge: Callable[[], tuple[int, int, str | None]]

    def _init_frame_state(self) -> None:
        self._paused = False
        self._pending = 0
        self._panels_due_ns = 0
        self._held_rows: dict[str, Any] = {}
        self._held_removed: list[str] = []
        self._received_total = 0
        self._feed_looks: list[tuple[str, str]] = []   # (connection, state) per feed
        self._exchange_tabs: dict[str, str] = {}     # tab id -> exchange
        self._exchanges_seen: set[str] = set()
        self._gateway_seen: list[tuple[str, str | None]] = []
        self._pace: FramePace | None = None

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def pending(self) -> int:
        return self._pending

    @property
    def received_total(self) -> int:
        """Frames received on every feed, as of the latest frame."""
        return self._received_total

    def _frame(self) -> None:
        """Drain the source once and apply only what changed."""
        if not self._ui_ready or not self.is_running:
            return  # shutting down: the widgets are being removed
        paint_yield.review()
        self._show_on_screen()
        update = self.source.drain()
        self._apply_rows(update)
        self._received_total = update.received_total
        feed_looks = [(f.connection, f.state) for f in update.feeds]
        feeds_moved = feed_looks != self._feed_looks
        news = bool(update.rows or update.removed or update.telemetry or update.events) \
            or feeds_moved
        self._feed_looks = feed_looks
        now = self._clock_ns()
        # While ticks flow, counters change every frame. Repainting the panels and
        # the status bar in the same frame as the table makes Textual re-render
        # nearly the whole screen (it updates one rectangle around all changes),
        # so under load they repaint at most every PANEL_INTERVAL_NS; a feed whose
        # connection or state moved shows in this frame all the same.
        panels = update.pending == 0 or now >= self._panels_due_ns or feeds_moved
        if panels:
            self._panels_due_ns = now + PANEL_INTERVAL_NS
            self.feeds_panel.show_feeds(update.feeds)
        if update.history is not None:
            self.charts.show_history(update.history)
        if update.telemetry or update.events:
            self._apply_telemetry(update)
        news = self._refresh_gateways() or news
        if self._evaluate_alerts(update.feeds) and not panels:
            self._show_status()  # a new alert shows in this frame, not the next panel one
        if panels:
            if self._recording is not None and getattr(self.source, "recording", None) is None:
                self._recording = None  # stopped by a write error or an ingest restart
            self._show_status()
            self.gateway_panel.show_fleet(self.fleet, now)
            self.filter_bar.set_summary(self.table.row_count, self.table.total_rows)
        screen = self.screen
        if isinstance(screen, DetailScreen) and screen.vt_symbol in update.rows:
            screen.show_detail(self.source.detail(screen.vt_symbol), now)
        if self._pace is not None:
            self._pace.after_frame(news)

    def _refresh_gateways(self) -> bool:
        """Every link's status, read once a frame; True when one's state changed."""
        seen = []
        for linked in self.fleet:
            node = linked.status.node if linked.status is not None else None
            status = linked.refresh()
            seen.append((status.state, status.trading_state))
            if node and status.node and status.node != node:  # the link logged it too
                self.notify(f"Gateway {linked.name} at {status.endpoint}: node changed from "
                            f"{node} to {status.node}", severity="warning", timeout=10)
            if linked.trading.note_status(status):
                self._request_poll(GET_STATUS, linked)
        current = self.fleet.current
        if current is not None and current.status is not None:
            self.charts.show_rtt(current.status.rtt_history_ms)
        changed = seen != self._gateway_seen
        self._gateway_seen = seen
        return changed

    def refresh_gateway_panel(self) -> None:
        """Repaint the gateway panel now (after the selection changed)."""
        self.gateway_panel.show_fleet(self.fleet, self._clock_ns())

    def _start_frames(self) -> None:
        """Frames at `fps` from now on, slower while idle (console.ui.frame_pace)."""
        self._pace = FramePace(self, self._frame, self.fps, self.source, self._clock_ns,
                               due_ns=self._next_change_ns)

    def _next_change_ns(self) -> int:
        """When time alone next changes the table; never while it is paused (frozen)."""
        return NEVER_NS if self._paused else self.table.next_change_ns()

    @property
    def idle(self) -> bool:
        """Whether frames run at the idle pace (nothing new for a while)."""
        return self._pace is not None and self._pace.idle

    @property
    def frame_pace(self) -> FramePace | None:
        return self._pace

    def _show_on_screen(self) -> None:
        """Tell the source which symbols are on screen: their rows come every frame."""
        on_screen = self.table.on_screen_symbols()
        screen = self.screen
        if isinstance(screen, DetailScreen):
            on_screen.append(screen.vt_symbol)  # its detail follows every tick
        self.source.show(on_screen)

    def _apply_rows(self, update: FrameUpdate) -> None:
        if update.rows:
            self._note_exchanges(update)
        if self._paused:
            self._pending += update.pending
            for key in update.removed:
                self._held_rows.pop(key, None)
            self._held_rows.update(update.rows)
            self._held_removed.extend(update.removed)
            return
        if update.rows or update.removed:
            self.table.apply(update.rows, update.removed)
        else:
            self.table.advance_frame()

    def toggle_pause(self) -> None:
        """Freeze the table (rows are held and counted) or apply what was held."""
        self._paused = not self._paused
        if not self._paused:
            self.table.apply(self._held_rows, self._held_removed)
            self._held_rows, self._held_removed, self._pending = {}, [], 0
        self.refresh_status()

    def refresh_status(self) -> None:
        """Repaint the status bar now (after a pause or an acknowledgement)."""
        self._show_status()

    def _note_exchanges(self, update: FrameUpdate) -> None:
        known = self._exchanges_seen
        for row in update.rows.values():
            exchange = row.exchange
            if exchange not in known:
                known.add(exchange)
                if exchange:
                    tab_id = f"ex-{len(self._exchange_tabs)}"
                    self._exchange_tabs[tab_id] = exchange
                    self.exchange_tabs.add_tab(Tab(exchange, id=tab_id))

    def _apply_telemetry(self, update: FrameUpdate) -> None:
        self.telemetry.add(update.telemetry)
        for topic, payload in update.events:
            ts = payload.get("ts_ns")
            self.telemetry.add_event(topic, payload, ts if isinstance(ts, int) else 0)
            for action in EVENT_POLLS.get(topic, ()):
                self._request_poll(action)
        self.telemetry.refresh_view()

    def _show_status(self) -> None:
        current = self.fleet.current
        status = current.status if current is not None else None
        trading = current.trading if current is not None else None
        firing, unacked, worst = self.alert_badge()
        badges = tuple(
            GatewayBadge(g.short, g.state, g.status.rtt_ms if g.status else None, g.trading.state)
            for g in self.fleet) if self.fleet.several else ()
        self.status_bar.show(StatusView(
            gateway_state=status.state if status is not None else None,
            rtt_ms=status.rtt_ms if status is not None else None,
            trading_state=trading.state if trading is not None else None,
            feeds_ok=feeds_ok([state for _, state in self._feed_looks]),
            feeds_total=len(self._feed_looks),
            received_total=self._received_total,
            readonly=self.readonly,
            paused=self._paused,
            pending=self._pending,
            recording=self._recording is not None,
            alerts_firing=firing,
            alerts_unacked=unacked,
            alerts_worst=worst,
            badges=badges,
        ))
        self.banner.show(self._halt_view())

    def _halt_view(self) -> HaltView | None:
        """The banner: the halted gateway (the selected one first), naming any others."""
        halted: list[LinkedGateway] = [g for g in self.fleet if g.trading.halted]
        if not halted:
            return None
        current = self.fleet.current
        first = current if current in halted else halted[0]
        trading = first.trading
        if not self.fleet.several:
            return HaltView(trading.incident_id, trading.halt_reason)
        others = tuple(g.name for g in halted if g is not first)
        return HaltView(trading.incident_id, trading.halt_reason, first.name, others)
