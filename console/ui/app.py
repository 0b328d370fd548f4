"""The Textual console: pulls the data layer at a fixed frame rate and shows it.

One `set_interval(1/fps)` timer drains the `TickSource` and applies only what
changed; the data layer never posts a message per tick. Gateway replies (a
few per second at most) arrive as messages posted from the client's thread.
`TradeConsole` takes its source and gateway as arguments, so tests and the
snapshot suite run it with real services or with a frozen deterministic feed.
"""

from __future__ import annotations

import asyncio
import csv
import gc
import logging
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from textual import messages, on
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Footer, Tab, Tabs

from console.model import FrameUpdate, GatewayLink, GatewayStatus, Reply, TickSource
from console.ui import format as fmt
from console.ui.commands import (
    COMMANDS_BY_NAME,
    RegistryCommands,
    bindings_for,
    normalize_key,
    resolve_keymap,
    split_keys,
)
from console.ui.screens.detail import DetailScreen
from console.ui.screens.guarded import GuardedReply
from console.ui.screens.help import HelpScreen
from console.ui.screens.kill import KillSwitchScreen
from console.ui.screens.resume import ResumeScreen
from console.ui.widgets import paint_yield
from console.ui.widgets.charts import ChartsPanel
from console.ui.widgets.feeds_panel import FeedsPanel
from console.ui.widgets.filter_bar import FilterBar
from console.ui.widgets.gateway_panel import GatewayData, GatewayPanel, Polled, age_text
from console.ui.widgets.status_bar import HaltedBanner, HaltView, StatusBar, StatusView, feeds_ok
from console.ui.widgets.telemetry_pane import TelemetryPane
from console.ui.widgets.tick_table import COLUMNS, TickTable
from console.ui.widgets.view_bar import VIEWS, ViewBar
from services.protocol import (
    GET_ACCOUNT_INFO,
    GET_ORDERS,
    GET_POSITIONS,
    GET_STATUS,
    HALTED,
    HEARTBEAT,
    KILL_SWITCH,
    RESUME_TRADING,
)
from services.runtime.config import Config, user_data_dir
from themes import PROJECT_THEMES, THEME_CSS_PATHS, THEME_VARIABLE_DEFAULTS
from themes.persist import ThemeSaveError, save_theme

log = logging.getLogger(__name__)

NARROW_COLUMNS = 100
# After a hangup, how long a clean shutdown may take before the process ends hard.
HANGUP_GRACE_S = 1.2
HANGUP_EXIT_CODE = 129
NOTICES_KEPT = 50
POLLED_ACTIONS = (GET_STATUS, GET_POSITIONS, GET_ORDERS, GET_ACCOUNT_INFO)
RECORDING_SUFFIX = ".tcrec"
# Under load, the panels and the status bar repaint at most this often (the table
# repaints every frame); see _frame.
PANEL_INTERVAL_NS = 250_000_000
# The UI and the gateway client thread (and ingest, when `[console] ingest` is
# "thread") share one GIL. A thread woken by its socket (a heartbeat reply, a
# tick) waits for the GIL at most this long while the UI draws, instead of
# CPython's default 5 ms.
GIL_SWITCH_INTERVAL_S = 0.001


def _end_process_now() -> None:
    log.warning("terminal gone and the UI did not stop within %.1f s: exiting now",
                HANGUP_GRACE_S)
    logging.shutdown()
    os._exit(HANGUP_EXIT_CODE)


class PollReplied(Message):
    """A GET_* poll or a heartbeat came back (posted from the gateway client's thread)."""

    def __init__(self, action: str, reply: Reply) -> None:
        super().__init__()
        self.action = action
        self.reply = reply


class TradeConsole(App[int]):
    """The console application; see the module docstring."""

    CSS_PATH: ClassVar[Any] = [Path(__file__).with_name("app.tcss"), *THEME_CSS_PATHS]
    COMMANDS: ClassVar[Any] = {RegistryCommands}
    TITLE = "tradeconsole"
    ENABLE_COMMAND_PALETTE = True

    def __init__(
        self,
        config: Config,
        *,
        source: TickSource,
        gateway: GatewayLink | None = None,
        clock_ns: Callable[[], int] = time.monotonic_ns,
        wall_ns: Callable[[], int] = time.time_ns,
        data_dir: Path | None = None,
        settings_path: Path | None = None,
        settings_note: str | None = None,
        manage_lifecycle: bool = True,
        handle_hangup: bool = False,
        freeze_gc: bool = True,
        title: str | None = None,
        driver_class: Any = None,
    ) -> None:
        console = config.section("console")
        self.keymap = resolve_keymap(config.values.get("keys", {}))
        super().__init__(driver_class=driver_class)
        if title:
            self.title = title
        self.config = config
        self.source = source
        self.gateway = gateway
        self.readonly = bool(console["readonly"])
        self.fps = int(console["fps"])
        self._clock_ns = clock_ns
        self._wall_ns = wall_ns
        self._data_dir = data_dir
        self._settings_path = settings_path
        self._settings_note = settings_note
        self._manage_lifecycle = manage_lifecycle
        self._handle_hangup = handle_hangup
        self._freeze_gc = freeze_gc
        self._stale_after_s = float(console["row_stale_after_s"])
        self._poll_interval_s = float(console["poll_interval_s"])
        self._install_bindings()
        for theme in PROJECT_THEMES.values():
            self.register_theme(theme)
        self.theme = str(console["theme"])
        self._theme_ready = False
        self._ui_ready = False
        # Frame state.
        self._paused = False
        self._pending = 0
        self._panels_due_ns = 0
        self._held_rows: dict[str, Any] = {}
        self._held_removed: list[str] = []
        self._received_total = 0
        self._feed_states: list[str] = []
        self._exchange_tabs: dict[str, str] = {}     # tab id -> exchange
        self._exchanges_seen: set[str] = set()
        self._view = "ticks"
        self._recording: Path | None = None
        # Gateway state.
        self.gateway_data = GatewayData()
        self._outstanding: set[str] = set()
        self._trading_state: str | None = None
        self._incident_id: str | None = None
        self._halt_reason: str | None = None
        self._heartbeat_state: str | None = None
        self.last_heartbeat: Reply | None = None
        self.notices: deque[str] = deque(maxlen=NOTICES_KEPT)
        self.hung_up = False
        self._hangup_watchdog: threading.Timer | None = None

    # --- set-up ---------------------------------------------------------------------------

    def notify(self, message: str, *, title: str = "", severity: Any = "information",
               timeout: float | None = None, markup: bool = False) -> None:
        """Toast, and keep the text: toasts vanish, the log and `notices` do not."""
        self.notices.append(message)
        log.info("notice (%s): %s", severity, message)
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=markup)

    def _install_bindings(self) -> None:
        """Registry bindings (with the user's [keys]) on top of Textual's defaults."""
        keymap = self.keymap
        table = self._bindings.key_to_bindings
        for key in [k for k, bs in table.items() if any(b.action == "command_palette"
                                                          for b in bs)]:
            del table[key]
        for key in split_keys(keymap["palette"]):
            table.setdefault(normalize_key(key), []).append(Binding(
                normalize_key(key), "command_palette", "Palette", show=False, priority=True,
                id="palette"))
        for key, bindings in bindings_for(keymap).key_to_bindings.items():
            table.setdefault(key, []).extend(bindings)

    def get_theme_variable_defaults(self) -> dict[str, str]:
        return dict(THEME_VARIABLE_DEFAULTS)

    def compose(self) -> ComposeResult:
        yield StatusBar(id="status")
        yield HaltedBanner(id="halted")
        yield ViewBar(id="views")
        with Horizontal(id="main"):
            with Vertical(id="ticks-pane"):
                yield Tabs(Tab("All", id="ex-all"), id="exchanges")
                yield FilterBar(id="filter")
                yield TickTable(id="ticks", stale_after_s=self._stale_after_s,
                                clock_ns=self._clock_ns)
            with Vertical(id="side"):
                yield FeedsPanel(id="feeds", classes="panel")
                yield ChartsPanel(id="charts", classes="panel")
                yield GatewayPanel(id="gateway", classes="panel")
                yield TelemetryPane(id="telemetry")
        yield Footer()

    def on_mount(self) -> None:
        self.table = self.query_one(TickTable)
        self.status_bar = self.query_one(StatusBar)
        self.banner = self.query_one(HaltedBanner)
        self.filter_bar = self.query_one(FilterBar)
        self.feeds_panel = self.query_one(FeedsPanel)
        self.charts = self.query_one(ChartsPanel)
        self.gateway_panel = self.query_one(GatewayPanel)
        self.telemetry = self.query_one(TelemetryPane)
        self.view_bar = self.query_one(ViewBar)
        self.exchange_tabs = self.query_one("#exchanges", Tabs)
        self.feeds_panel.border_title = "Feeds"
        self.charts.border_title = "Rates · latency · RTT (2 min)"
        self.gateway_panel.border_title = "Gateway · account"
        self.telemetry.border_title = "Telemetry"
        sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
        if self._manage_lifecycle:
            self.source.start()
            if self.gateway is not None:
                self.gateway.start()
        # Painting is bulk work: while the UI gets the CPU it needs, the gateway
        # link, the feeds and the fabric's processes preempt it the moment they
        # wake (services.runtime.scheduling).
        paint_yield.start()
        if self._handle_hangup:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGHUP, signal.SIGTERM):
                loop.add_signal_handler(sig, self.hang_up)
        self._ui_ready = True
        self._apply_layout()
        self.table.focus()
        self._frame()
        self.set_interval(1.0 / self.fps, self._frame, name="frame")
        if self.gateway is not None:
            self._poll_gateway()
            self.set_interval(self._poll_interval_s, self._poll_gateway, name="poll")
        self.theme_changed_signal.subscribe(self, self._on_theme_changed)
        self._theme_ready = True
        if self._freeze_gc:
            # Start-up garbage is collected once; later GC passes then skip it
            # (pauses of 25-160 ms were seen under widget churn otherwise).
            self.set_timer(1.0, self._freeze_heap)

    def hang_up(self) -> None:
        """The terminal is gone (or we were told to stop): exit within ~2 s, whatever happens.

        Safe from any thread. A clean shutdown is tried first; but Textual's
        output thread dies on a vanished tty and then blocks the shutdown,
        so after HANGUP_GRACE_S the process ends hard (the recording format
        and the gateway's idempotent requests are built to survive that).
        """
        self.hung_up = True
        if self._hangup_watchdog is None:
            watchdog = threading.Timer(HANGUP_GRACE_S, _end_process_now)
            watchdog.daemon = True
            self._hangup_watchdog = watchdog
            watchdog.start()
        self.post_message(messages.ExitApp())

    def cancel_hangup_watchdog(self) -> None:
        """The UI did stop in time: let the caller finish its own clean-up."""
        if self._hangup_watchdog is not None:
            self._hangup_watchdog.cancel()

    @staticmethod
    def _freeze_heap() -> None:
        gc.collect()
        gc.freeze()

    def on_unmount(self) -> None:
        if self._manage_lifecycle:
            if self.gateway is not None:
                self.gateway.stop()
            self.source.stop()

    def on_resize(self) -> None:
        if self._ui_ready:
            self._apply_layout()

    # --- the frame loop -------------------------------------------------------------------

    def _frame(self) -> None:
        """Drain the source once and apply only what changed."""
        if not self._ui_ready or not self.is_running:
            return  # shutting down: the widgets are being removed
        paint_yield.review()
        self._show_on_screen()
        update = self.source.drain()
        self._apply_rows(update)
        self._received_total = update.received_total
        self._feed_states = [f.state for f in update.feeds]
        now = self._clock_ns()
        # While ticks flow, counters change every frame. Repainting the panels and
        # the status bar in the same frame as the table makes Textual re-render
        # nearly the whole screen (it updates one rectangle around all changes),
        # so under load they repaint at most every PANEL_INTERVAL_NS.
        panels = update.pending == 0 or now >= self._panels_due_ns
        if panels:
            self._panels_due_ns = now + PANEL_INTERVAL_NS
            self.feeds_panel.show_feeds(update.feeds)
        if update.history is not None:
            self.charts.show_history(update.history)
        if update.telemetry or update.events:
            self._apply_telemetry(update)
        status = self.gateway.status() if self.gateway is not None else None
        if status is not None:
            self._note_gateway_status(status)
            self.charts.show_rtt(status.rtt_history_ms)
        if panels:
            if self._recording is not None and getattr(self.source, "recording", None) is None:
                self._recording = None  # stopped by a write error or an ingest restart
            self._show_status(status)
            self.gateway_panel.show_data(self.gateway_data, now, self.gateway is not None)
            self.filter_bar.set_summary(self.table.row_count, self.table.total_rows)
        screen = self.screen
        if isinstance(screen, DetailScreen) and screen.vt_symbol in update.rows:
            screen.show_detail(self.source.detail(screen.vt_symbol), now)

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
            if topic in ("event.kill", "event.resume"):
                self._request_poll(GET_STATUS)
            elif topic in ("event.order", "event.trade"):
                self._request_poll(GET_ORDERS)
                self._request_poll(GET_POSITIONS)
                self._request_poll(GET_ACCOUNT_INFO)
        self.telemetry.refresh_view()

    def _show_status(self, status: GatewayStatus | None) -> None:
        self.status_bar.show(StatusView(
            gateway_state=status.state if status is not None else None,
            rtt_ms=status.rtt_ms if status is not None else None,
            trading_state=self._trading_state,
            feeds_ok=feeds_ok(self._feed_states),
            feeds_total=len(self._feed_states),
            received_total=self._received_total,
            readonly=self.readonly,
            paused=self._paused,
            pending=self._pending,
            recording=self._recording is not None,
        ))
        halted = self._trading_state == HALTED
        self.banner.show(HaltView(self._incident_id, self._halt_reason) if halted else None)

    # --- gateway --------------------------------------------------------------------------

    def _note_gateway_status(self, status: GatewayStatus) -> None:
        """Take the heartbeat's trading state when it changes (it is news then)."""
        if status.trading_state is not None and status.trading_state != self._heartbeat_state:
            self._heartbeat_state = status.trading_state
            self._set_trading(status.trading_state, status.incident_id)
        elif status.incident_id and self._trading_state == HALTED and not self._incident_id:
            self._incident_id = status.incident_id

    def _set_trading(self, state: str | None, incident: str | None,
                     reason: str | None = None) -> None:
        if state is None:
            return
        if state != self._trading_state and state == HALTED:
            self._request_poll(GET_STATUS)  # fetch the incident id and reason
        self._trading_state = state
        if state == HALTED:
            self._incident_id = incident or self._incident_id
            self._halt_reason = reason or self._halt_reason
        else:
            self._incident_id = self._halt_reason = None

    def _poll_gateway(self) -> None:
        for action in POLLED_ACTIONS:
            self._request_poll(action)

    def _request_poll(self, action: str) -> None:
        """Send a read request unless the same one is still in flight."""
        if self.gateway is None or action in self._outstanding:
            return
        self._outstanding.add(action)
        self.gateway.request(action, on_reply=self._reply_poster(action))

    def _reply_poster(self, action: str) -> Callable[[Reply], None]:
        def post(reply: Reply) -> None:  # runs on the gateway client's thread
            self.post_message(PollReplied(action, reply))
        return post

    def on_poll_replied(self, message: PollReplied) -> None:
        action, reply = message.action, message.reply
        if action == HEARTBEAT:
            self._show_heartbeat(reply)
            return
        self._outstanding.discard(action)
        polled: Polled = {
            GET_STATUS: self.gateway_data.status, GET_POSITIONS: self.gateway_data.positions,
            GET_ORDERS: self.gateway_data.orders, GET_ACCOUNT_INFO: self.gateway_data.account,
        }[action]
        if reply.ok:
            polled.data, polled.at_ns, polled.error = reply.data, self._clock_ns(), None
            if action == GET_STATUS and isinstance(reply.data, dict):
                data = reply.data
                self._set_trading(data.get("trading_state"), data.get("incident_id"),
                                  data.get("reason"))
        elif reply.delivered:
            error = reply.error or {}
            polled.error = f"{reply.status} {error.get('code', '')}: {error.get('message', '')}"
        else:
            polled.error = "no answer (gateway down?); showing the last answer"

    def on_guarded_reply(self, message: GuardedReply) -> None:
        reply = message.reply
        if not reply.ok:
            return
        data = reply.data if isinstance(reply.data, dict) else {}
        if message.action == KILL_SWITCH:
            self._set_trading(data.get("trading_state") or HALTED, data.get("incident_id"),
                              message.payload.get("reason"))
            self.notify(f"Trading HALTED, incident {data.get('incident_id', '?')}",
                        severity="error", timeout=8)
        elif message.action == RESUME_TRADING:
            self._set_trading(data.get("trading_state") or "ACTIVE", None)
            self.notify("Trading resumed", timeout=5)
        for action in POLLED_ACTIONS:
            self._request_poll(action)

    def _show_heartbeat(self, reply: Reply) -> None:
        self.last_heartbeat = reply
        if reply.ok and reply.rtt_ms is not None:
            data = reply.data if isinstance(reply.data, dict) else {}
            self.notify(f"Heartbeat RTT {reply.rtt_ms:.2f} ms · {data.get('node', '?')} · "
                        f"{data.get('trading_state', '?')}", title="Gateway", timeout=4)
        elif reply.delivered:
            self.notify(f"Heartbeat answered {reply.status}: {reply.error}", severity="warning")
        else:
            self.notify("Heartbeat not answered: the gateway is DOWN", severity="error",
                        title="Gateway")

    # --- layout ---------------------------------------------------------------------------

    def _apply_layout(self) -> None:
        """Side by side when wide; below NARROW_COLUMNS one view at a time (ViewBar)."""
        narrow = self.size.width < NARROW_COLUMNS
        view = self._view if narrow else None
        self.view_bar.set_class(narrow, "-shown")
        self.query_one("#ticks-pane").display = not narrow or view == "ticks"
        side = self.query_one("#side")
        side.display = not narrow or view != "ticks"
        side.set_class(narrow, "-narrow")
        for name, widget in (("feeds", self.feeds_panel), ("charts", self.charts),
                             ("gateway", self.gateway_panel), ("telemetry", self.telemetry)):
            widget.display = not narrow or view == name

    def set_view(self, view: str) -> None:
        """Small terminals: show one of ticks/feeds/gateway/telemetry/charts."""
        self._view = view
        self.view_bar.set_active(view)
        self._apply_layout()
        if view == "ticks":
            self.table.focus()

    def on_view_bar_selected(self, message: ViewBar.Selected) -> None:
        self.set_view(message.view)

    # --- table events ---------------------------------------------------------------------

    @on(Tabs.TabActivated, "#exchanges")
    def _exchange_chosen(self, event: Tabs.TabActivated) -> None:
        tab_id = event.tab.id or ""
        self.table.set_exchange(self._exchange_tabs.get(tab_id))

    def on_filter_bar_changed(self, message: FilterBar.Changed) -> None:
        self.table.set_filter(message.symbol_filter)
        self.filter_bar.set_summary(self.table.row_count, self.table.total_rows)

    def on_filter_bar_done(self, message: FilterBar.Done) -> None:
        self.table.focus()

    def on_tick_table_detail_requested(self, message: TickTable.DetailRequested) -> None:
        self._open_detail(message.vt_symbol)

    # --- commands -------------------------------------------------------------------------

    async def run_command(self, name: str) -> None:
        """Run a registry command by name (palette, tests)."""
        await self.run_action(COMMANDS_BY_NAME[name].action)

    def _refused_readonly(self, name: str) -> bool:
        if not self.readonly:
            return False
        title = COMMANDS_BY_NAME[name].title
        self.notify(f"{title} is disabled: the console is read-only (--readonly or "
                    "[console] readonly = true)", severity="warning", title="Read-only")
        return True

    def _need_gateway(self) -> bool:
        if self.gateway is None:
            self.notify("No gateway configured (--gateway or [endpoints] gateway)",
                        severity="warning")
            return False
        return True

    def action_focus_filter(self) -> None:
        if self._view != "ticks" and self.view_bar.has_class("-shown"):
            self.set_view("ticks")
        self.filter_bar.focus_input()

    def action_clear_filter(self) -> None:
        self.filter_bar.clear()
        self.table.focus()

    def action_open_detail(self) -> None:
        symbol = self.table.selected_symbol
        if symbol is None:
            self.notify("No symbol selected", severity="warning")
            return
        self._open_detail(symbol)

    def _open_detail(self, vt_symbol: str) -> None:
        screen = DetailScreen(vt_symbol)
        self.push_screen(screen)
        screen.call_after_refresh(screen.show_detail, self.source.detail(vt_symbol),
                                  self._clock_ns())

    def action_heartbeat(self) -> None:
        if not self._need_gateway():
            return
        assert self.gateway is not None
        self.gateway.request(HEARTBEAT, on_reply=self._reply_poster(HEARTBEAT))

    def action_kill_switch(self) -> None:
        if self._refused_readonly("kill_switch") or not self._need_gateway():
            return
        assert self.gateway is not None
        data = self.gateway_data
        scope_at = min((p.at_ns for p in (data.positions, data.orders) if p.at_ns is not None),
                       default=None)
        scope_age = age_text(Polled(at_ns=scope_at), self._clock_ns())
        if data.positions.error or data.orders.error:
            scope_age += "; the latest poll failed, the scope may be out of date"
        self.push_screen(KillSwitchScreen(self.gateway, data.position_list(), data.order_list(),
                                          scope_age))

    def action_resume(self) -> None:
        if self._refused_readonly("resume") or not self._need_gateway():
            return
        assert self.gateway is not None
        self.push_screen(ResumeScreen(self.gateway, self._incident_id))

    def action_pause(self) -> None:
        self._paused = not self._paused
        if not self._paused:
            self.table.apply(self._held_rows, self._held_removed)
            self._held_rows, self._held_removed, self._pending = {}, [], 0
        self._show_status(self.gateway.status() if self.gateway is not None else None)

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

    @property
    def trading_state(self) -> str | None:
        return self._trading_state

    @property
    def incident_id(self) -> str | None:
        return self._incident_id

    def action_cycle_sort(self) -> None:
        self.table.cycle_sort()

    def action_reverse_sort(self) -> None:
        self.table.reverse_sort()

    def action_cycle_log_level(self) -> None:
        level = self.telemetry.cycle_level()
        self.notify(f"Telemetry logs: {level}", timeout=2)

    def action_cycle_view(self) -> None:
        keys = [key for key, _ in VIEWS]
        self.set_view(keys[(keys.index(self._view) + 1) % len(keys)])

    def action_switch_tab(self, number: int) -> None:
        tabs = list(self.exchange_tabs.query(Tab))
        if 1 <= number <= len(tabs) and tabs[number - 1].id:
            self.exchange_tabs.active = tabs[number - 1].id or ""

    def action_prev_tab(self) -> None:
        self.exchange_tabs.action_previous_tab()

    def action_next_tab(self) -> None:
        self.exchange_tabs.action_next_tab()

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.keymap, self.readonly))

    def _data_path(self, folder: str, prefix: str, suffix: str) -> Path:
        base = (self._data_dir or user_data_dir()) / folder
        base.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(self._wall_ns() / 1e9))
        path = base / f"{prefix}-{stamp}{suffix}"
        n = 1
        while path.exists():
            n += 1
            path = base / f"{prefix}-{stamp}-{n}{suffix}"
        return path

    def action_toggle_recording(self) -> None:
        start = getattr(self.source, "start_recording", None)
        stop = getattr(self.source, "stop_recording", None)
        if start is None or stop is None:
            self.notify("This feed source cannot record", severity="warning")
            return
        if self._recording is not None:
            stop()
            self.notify(f"Recording stopped: {self._recording}", timeout=6)
            self._recording = None
            return
        try:
            path = self._data_path("recordings", "feed", RECORDING_SUFFIX)
            start(path)
        except OSError as exc:
            self.notify(f"Cannot record: {exc}", severity="error")
            return
        self._recording = path
        self.notify(f"Recording to {path}", timeout=6)

    def export_csv(self, path: Path) -> int:
        """Write the shown rows (filtered, sorted) to `path`; returns the row count."""
        rows = self.table.visible_rows()
        now = self._clock_ns()
        with path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow([*(c.key for c in COLUMNS), "has_envelope", "feed"])
            for row in rows:
                writer.writerow([
                    row.vt_symbol, row.exchange, row.last, row.change, row.bid, row.ask,
                    row.spread, row.bid_size, row.ask_size, row.volume, row.ticks,
                    f"{(now - row.updated_ns) / 1e9:.3f}",
                    row.latency_us if row.has_envelope else "",
                    row.gaps if row.has_envelope else "", row.has_envelope, row.feed,
                ])
        return len(rows)

    def action_export_csv(self) -> None:
        try:
            path = self._data_path("exports", "ticks", ".csv")
            count = self.export_csv(path)
        except OSError as exc:
            self.notify(f"Export failed: {exc}", severity="error")
            return
        self.notify(f"Exported {fmt.count(count)} rows to {path}", timeout=8)

    # --- themes ---------------------------------------------------------------------------

    def theme_names(self) -> list[str]:
        return list(PROJECT_THEMES)

    def select_theme(self, name: str) -> None:
        self.theme = name

    def action_cycle_theme(self) -> None:
        names = self.theme_names()
        current = names.index(self.theme) if self.theme in names else -1
        self.theme = names[(current + 1) % len(names)]

    def _on_theme_changed(self, theme: Any) -> None:
        if not self._theme_ready or self._settings_path is None:
            return
        try:
            save_theme(self._settings_path, theme.name)
        except ThemeSaveError as exc:
            self.notify(str(exc), severity="warning", title="Theme")
            return
        note = f" ({self._settings_note})" if self._settings_note else ""
        self.notify(f"Theme {theme.name} saved to {self._settings_path}{note}", timeout=4,
                    title="Theme")
