"""The Textual console: pulls the data layer at a fixed frame rate and shows it.

One `set_interval(1/fps)` timer drains the `TickSource` and applies only what
changed (console.ui.frame_loop); the data layer never posts a message per
tick. Gateway replies (a few per second at most) arrive as messages posted
from the client's thread (console.ui.gateway_view). `TradeConsole` takes its
source and gateway as arguments, so tests and the snapshot suite run it with
real services or with a frozen deterministic feed. This module holds the
layout, the key bindings and the read-only guard.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar
from pathlib import Path
from typing import Any, ClassVar

from textual import on
from textual.actions import ActionParseResult
from textual.actions import parse as parse_action
from textual.app import App, ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical
from textual.dom import DOMNode
from textual.screen import Screen
from textual.widgets import Footer, Tab, Tabs

from console.link.fleet import Fleet, LinkedGateway
from console.link.gateways import GatewaySpec, endpoint_name
from console.link.trading import TradingState
from console.model import GatewayLink, Reply, TickSource
from console.ui.actions import ConsoleActions
from console.ui.alerting import ConsoleAlerting
from console.ui.clustered_compositor import use_clustered_compositor
from console.ui.commands import (
    COMMANDS_BY_NAME,
    STATE_CHANGING,
    RegistryCommands,
    registry_bindings,
    resolve_keymap,
    textual_keymap,
)
from console.ui.diff_driver import diffing
from console.ui.direct_lines import LineWriter
from console.ui.frame_loop import FrameLoop
from console.ui.gateway_view import GatewayView
from console.ui.output_diff import Run
from console.ui.runner import freeze_heap, share_the_gil
from console.ui.widgets import paint_yield
from console.ui.widgets.charts import ChartsPanel
from console.ui.widgets.feeds_panel import FeedsPanel
from console.ui.widgets.filter_bar import FilterBar
from console.ui.widgets.gateway_panel import GatewayPanel
from console.ui.widgets.status_bar import HaltedBanner, StatusBar
from console.ui.widgets.telemetry_pane import TelemetryPane
from console.ui.widgets.tick_table import TickTable
from console.ui.widgets.view_bar import ViewBar
from services.runtime.config import Config
from themes import PROJECT_THEMES, THEME_CSS_PATHS, THEME_VARIABLE_DEFAULTS
from themes.persist import ThemeSaveError, save_theme

log = logging.getLogger(__name__)

NARROW_COLUMNS = 100
NOTICES_KEPT = 50
# The action `run_action` is running in this context (None: Textual is only
# asking `check_action`, e.g. to draw the footer).
_RUNNING_ACTION: ContextVar[str | None] = ContextVar("running_action", default=None)


class TradeConsole(FrameLoop, GatewayView, ConsoleActions, ConsoleAlerting, App[int]):
    """The console application; see the module docstring."""

    CSS_PATH: ClassVar[Any] = [Path(__file__).with_name("app.tcss"), *THEME_CSS_PATHS]
    COMMANDS: ClassVar[Any] = {RegistryCommands}
    BINDINGS: ClassVar[list[BindingType]] = list(registry_bindings())
    TITLE = "tradeconsole"
    ENABLE_COMMAND_PALETTE = True

    def __init__(
        self,
        config: Config,
        *,
        source: TickSource,
        gateway: GatewayLink | None = None,
        gateways: Sequence[LinkedGateway] | None = None,
        clock_ns: Callable[[], int] = time.monotonic_ns,
        wall_ns: Callable[[], int] = time.time_ns,
        data_dir: Path | None = None,
        settings_path: Path | None = None,
        settings_note: str | None = None,
        manage_lifecycle: bool = True,
        freeze_gc: bool = True,
        title: str | None = None,
        driver_class: Any = None,
        quiet: bool = False,
    ) -> None:
        console = config.settings.console
        self.keymap = resolve_keymap(config.settings.keys)
        if driver_class is None and console.diff_output:
            driver_class = diffing(App.get_driver_class(self))
        super().__init__(driver_class=driver_class)
        self.set_keymap(textual_keymap(self.keymap))
        if title:
            self.title = title
        self.config = config
        self.source = source
        if gateways is None:  # one unnamed link: named after its endpoint (then its node)
            endpoint = str(getattr(gateway, "endpoint", "gateway"))
            gateways = [] if gateway is None else [LinkedGateway(
                GatewaySpec(endpoint_name(endpoint), endpoint, readonly=console.readonly),
                gateway)]
        self.fleet = Fleet(gateways)
        self._no_trading = TradingState()
        self.readonly = console.readonly
        self.fps = console.fps
        self._clock_ns = clock_ns
        self._wall_ns = wall_ns
        self._data_dir = data_dir
        self._settings_path = settings_path
        self._settings_note = settings_note
        self._manage_lifecycle = manage_lifecycle
        self._freeze_gc = freeze_gc
        self._stale_after_s = console.row_stale_after_s
        self._poll_interval_s = console.poll_interval_s
        for theme in PROJECT_THEMES.values():
            self.register_theme(theme)
        self.theme = console.theme
        self._theme_ready = False
        self._ui_ready = False
        self._init_frame_state()
        self._view = "ticks"
        self._recording: Path | None = None
        self.last_heartbeat: Reply | None = None
        self.notices: deque[str] = deque(maxlen=NOTICES_KEPT)
        self._init_alerting(quiet, lambda: self._wall_ns() / 1e9)

    # --- the gateways ---------------------------------------------------------------------

    @property
    def gateway(self) -> GatewayLink | None:
        """The selected gateway's link (the first one while all are shown)."""
        current = self.fleet.current
        return current.link if current is not None else None

    @property
    def trading(self) -> TradingState:
        """The selected gateway's trading state (the first one while all are shown)."""
        current = self.fleet.current
        return current.trading if current is not None else self._no_trading

    # --- set-up ---------------------------------------------------------------------------

    def notify(self, message: str, *, title: str = "", severity: Any = "information",
               timeout: float | None = None, markup: bool = False) -> None:
        """Toast, and keep the text: toasts vanish, the log and `notices` do not."""
        self.notices.append(message)
        log.info("notice (%s): %s", severity, message)
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=markup)

    def get_default_screen(self) -> Screen[Any]:
        """The main screen, with a compositor that renders scattered changes in small crops."""
        return use_clustered_compositor(super().get_default_screen(), self._put_cells)

    def _put_cells(self, runs: Sequence[Run]) -> bool:
        """A partial update's cells straight to the terminal's output diff, if it has one."""
        put = getattr(self._driver, "put", None)
        return put is not None and bool(put(runs))

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
        # Rows, panel lines and counters go straight to the terminal where nothing covers them.
        self.line_writer = LineWriter(self.screen, self._put_cells)
        self.table.line_writer = self.line_writer
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
        share_the_gil()
        if self._manage_lifecycle:
            self.source.start()
            for linked in self.fleet:
                linked.link.start()
        # Painting is bulk work: while the UI gets the CPU it needs, the gateway
        # link, the feeds and the fabric's processes preempt it the moment they
        # wake (services.runtime.scheduling).
        paint_yield.start()
        self._ui_ready = True
        self._apply_layout()
        self.table.focus()
        self._frame()
        self._start_frames()
        if self.fleet:
            self._poll_gateway()
            self.set_interval(self._poll_interval_s, self._poll_gateway, name="poll")
        self.theme_changed_signal.subscribe(self, self._on_theme_changed)
        self._theme_ready = True
        if self._freeze_gc:
            self.set_timer(1.0, freeze_heap)

    def on_unmount(self) -> None:
        if self._pace is not None:
            self._pace.stop()
        self.alert_watch.close()  # hooks still running get a moment to finish
        if self._manage_lifecycle:
            for linked in self.fleet:
                linked.link.stop()
            self.source.stop()

    def on_resize(self) -> None:
        self.forget_screen()
        if self._ui_ready:
            self._apply_layout()

    def forget_screen(self) -> None:
        """The terminal's contents are unknown: the next frame is written in full."""
        forget = getattr(self._driver, "forget_screen", None)
        if forget is not None:
            forget()

    # --- read-only ------------------------------------------------------------------------

    async def run_action(self, action: str | ActionParseResult,
                         default_namespace: DOMNode | None = None,
                         namespaces: Mapping[str, DOMNode] | None = None) -> bool:
        """Textual's `run_action`, telling `check_action` which action is about to run."""
        name = parse_action(action)[1] if isinstance(action, str) else action[1]
        token = _RUNNING_ACTION.set(name)
        try:
            return await super().run_action(action, default_namespace, namespaces)
        finally:
            _RUNNING_ACTION.reset(token)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """The one read-only guard: every registry command that changes trading state.

        Textual asks before an action runs (keys, palette, `run_command`) and
        when it draws the footer. The footer keeps the key as it always was
        (the status bar says READ-ONLY); running it is refused, with a notice.
        """
        command = STATE_CHANGING.get(action)
        if command is None or not self.readonly:
            return True
        if _RUNNING_ACTION.get() != action:
            return True
        self.notify(f"{command.title} is disabled: the console is read-only (--readonly or "
                    "[console] readonly = true)", severity="warning", title="Read-only")
        return False

    async def run_command(self, name: str) -> None:
        """Run a registry command by name (palette, tests)."""
        await self.run_action(COMMANDS_BY_NAME[name].action)

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
