"""The Textual actions behind the registry's commands (console.ui.commands).

A mixin of `TradeConsole` (console.ui.app). Read-only mode is not checked
here: `TradeConsole.check_action` refuses every state-changing command
before its action runs.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual.widgets import Tab, Tabs

from console.link.fleet import Fleet, LinkedGateway
from console.link.trading import TradingState
from console.model import GW_DOWN, GatewayLink, TickSource
from console.ui import format as fmt
from console.ui.data_files import stamped_path, write_csv
from console.ui.screens.detail import DetailScreen
from console.ui.screens.guarded import Target
from console.ui.screens.help import HelpScreen
from console.ui.screens.kill import KillScope, KillSwitchScreen
from console.ui.screens.kill_scope import ALL, KillScopeScreen
from console.ui.screens.resume import ResumeScreen
from console.ui.trading import kill_scope_age
from console.ui.widgets.filter_bar import FilterBar
from console.ui.widgets.telemetry_pane import TelemetryPane
from console.ui.widgets.tick_table import TickTable
from console.ui.widgets.view_bar import VIEWS, ViewBar
from services.runtime.config import user_data_dir

RECORDING_SUFFIX = ".tcrec"


class ConsoleActions:
    """`action_*` methods: what each command does once it is allowed to run."""

    # Provided by TradeConsole.
    source: TickSource
    gateway: GatewayLink | None
    fleet: Fleet
    trading: TradingState
    keymap: dict[str, str]
    readonly: bool
    table: TickTable
    filter_bar: FilterBar
    telemetry: TelemetryPane
    view_bar: ViewBar
    exchange_tabs: Tabs
    screen: Any
    _view: str
    _recording: Path | None
    _data_dir: Path | None
    _clock_ns: Callable[[], int]
    _wall_ns: Callable[[], int]
    notify: Callable[..., None]
    push_screen: Callable[..., Any]
    set_view: Callable[[str], None]
    toggle_pause: Callable[[], None]
    forget_screen: Callable[[], None]
    _send_heartbeat: Callable[[], None]
    refresh_status: Callable[[], None]
    refresh_gateway_panel: Callable[[], None]

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
        if self._need_gateway():
            self._send_heartbeat()

    def action_kill_switch(self) -> None:
        if not self._need_gateway():
            return
        if not self.fleet.several:
            current = self._writable(self.fleet.current, "The kill switch")
            if current is None:
                return
            data = current.trading.data
            self.push_screen(KillSwitchScreen([Target(current.name, current.link)],
                                              data.position_list(), data.order_list(),
                                              kill_scope_age(current.trading, self._clock_ns())))
            return
        choices = [(g.name, self._gateway_line(g)) for g in self.fleet]
        self.push_screen(KillScopeScreen(choices, self.fleet.selected), self._kill_scope_chosen)

    def _gateway_line(self, linked: LinkedGateway) -> str:
        data = linked.trading.data
        state = linked.trading.state or "trading ?"
        flags = " · read-only" if linked.readonly else ""
        return (f"{linked.state} · {state} · {len(data.order_list())} order(s), "
                f"{len(data.position_list())} position(s){flags}")

    def _kill_scope(self, linked: LinkedGateway) -> KillScope:
        data = linked.trading.data
        notes = []
        if linked.state == GW_DOWN:
            notes.append("DOWN: last known")
        if linked.readonly:
            notes.append("read-only: not sent")
        return KillScope(linked.name, data.position_list(), data.order_list(),
                         kill_scope_age(linked.trading, self._clock_ns()), "; ".join(notes))

    def _kill_scope_chosen(self, choice: str | None) -> None:
        if choice is None:
            return
        if choice == ALL:
            chosen = [g for g in self.fleet if not g.readonly]
            skipped = [g.name for g in self.fleet if g.readonly]
            if not chosen:
                self.notify("Every gateway is read-only: nothing to fire", severity="warning")
                return
            if skipped:
                self.notify(f"Read-only, not part of ALL: {', '.join(skipped)}",
                            severity="warning", title="Read-only")
            self.push_screen(KillSwitchScreen([Target(g.name, g.link) for g in chosen],
                                              scopes=[self._kill_scope(g) for g in chosen],
                                              all_scope=True))
            return
        linked = self._writable(self.fleet.get(choice), "The kill switch")
        if linked is None:
            return
        self.push_screen(KillSwitchScreen([Target(linked.name, linked.link)],
                                          scopes=[self._kill_scope(linked)]))

    def _writable(self, linked: LinkedGateway | None, what: str) -> LinkedGateway | None:
        """`linked`, unless it is missing or read-only (then a notice says why)."""
        if linked is not None and linked.readonly:
            self._refuse_readonly(linked, what)
            return None
        return linked

    def _refuse_readonly(self, linked: LinkedGateway, what: str) -> None:
        self.notify(f"{what} is disabled for {linked.name}: it is read-only "
                    f"([gateways.{linked.name}] readonly = true)", severity="warning",
                    title="Read-only")

    def action_resume(self) -> None:
        if not self._need_gateway():
            return
        if not self.fleet.several:
            current = self._writable(self.fleet.current, "Resume")
            if current is None:
                return
            self.push_screen(ResumeScreen([Target(current.name, current.link)],
                                          current.trading.incident_id))
            return
        linked = self.fleet.get(self.fleet.selected) if self.fleet.selected else None
        if linked is None:
            halted = [g for g in self.fleet if g.trading.halted]
            if len(halted) != 1:
                which = ", ".join(g.name for g in halted) or "none is halted"
                self.notify(f"Resume acts on one gateway: select it first with "
                            f"{self._key_of('select_gateway')} ({which})", severity="warning")
                return
            linked = halted[0]
        if self._writable(linked, "Resume") is None:
            return
        screen = ResumeScreen([Target(linked.name, linked.link)], linked.trading.incident_id)
        screen.title_text = f"RESUME TRADING on {linked.name}"
        self.push_screen(screen)

    def _key_of(self, command: str) -> str:
        keys = self.keymap.get(command, "")
        return keys.split(",")[0] if keys else command

    def action_select_gateway(self) -> None:
        if not self._need_gateway():
            return
        if not self.fleet.several:
            self.notify("Only one gateway is linked", timeout=3)
            return
        chosen = self.fleet.cycle()
        self.notify(f"Gateway panel: {chosen or 'all gateways'}", timeout=2)
        self.refresh_gateway_panel()
        self.refresh_status()

    def action_pause(self) -> None:
        self.toggle_pause()

    def action_redraw(self) -> None:
        self.forget_screen()
        self.screen.refresh()

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
        return stamped_path(base, prefix, suffix, self._wall_ns())

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
        return write_csv(path, self.table.visible_rows(), self._clock_ns())

    def action_export_csv(self) -> None:
        try:
            path = self._data_path("exports", "ticks", ".csv")
            count = self.export_csv(path)
        except OSError as exc:
            self.notify(f"Export failed: {exc}", severity="error")
            return
        self.notify(f"Exported {fmt.count(count)} rows to {path}", timeout=8)
