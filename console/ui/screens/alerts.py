"""The Alerts view: firing alerts, then the recently resolved, with since and duration.

A modal over the console (key `a`), fed by the app's alert watch each time
it evaluates; only cells whose text changed are updated, so an open view
costs a few cells a second. `x` (the registry's `ack_alert`) acknowledges
the selected alert: it stays listed, its bell and toasts stop.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import ClassVar

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label

from console.ui.commands import COMMANDS_BY_NAME, normalize_key, split_keys
from console.watch.engine import FIRING, Alert
from console.watch.rules import duration_text

# The message names the feed, gateway or symbol: it comes before the rule, so
# an 80-column terminal shows what is wrong and the rest scrolls.
COLUMNS = ("Sev", "State", "Since", "For", "Message", "Rule")
SEVERITY_TEXT = {"critical": "CRIT", "warning": "WARN", "info": "INFO"}
SEVERITY_STYLE = {"critical": "bold red", "warning": "bold yellow", "info": ""}


def state_text(alert: Alert) -> str:
    if alert.state == FIRING:
        return "FIRING ack" if alert.acked else "FIRING"
    return "resolved"


def since_text(wall: float | None) -> str:
    return "-" if wall is None else time.strftime("%H:%M:%S", time.localtime(wall))


def duration_cell(seconds: float) -> str:
    return duration_text(round(seconds)) if seconds >= 60 else f"{int(seconds)}s"


def alert_cells(alert: Alert, now_s: float) -> tuple[str | Text, ...]:
    severity = Text(SEVERITY_TEXT.get(alert.severity, alert.severity.upper()),
                    style=SEVERITY_STYLE.get(alert.severity, ""))
    return (severity, state_text(alert), since_text(alert.fired_wall),
            duration_cell(alert.duration_s(now_s)), alert.message, alert.rule.name)


class AlertsScreen(ModalScreen[None]):
    """Firing and recently resolved alerts; Escape or `a` closes, `x` acknowledges."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close_alerts", "Close"),
    ]
    DEFAULT_CSS = """
    AlertsScreen { align: center middle; }
    AlertsScreen > Vertical {
        width: 98%; height: 90%; border: thick $primary; background: $surface;
    }
    AlertsScreen #alerts-title { text-style: bold; padding: 0 1; width: 1fr; }
    AlertsScreen #alerts-empty { padding: 1 2; color: $text-muted; }
    AlertsScreen DataTable { height: 1fr; }
    """

    def __init__(self, alerts: Callable[[], Sequence[Alert]], now_s: Callable[[], float],
                 keymap: Mapping[str, str] | None = None) -> None:
        super().__init__()
        self._alerts = alerts
        self._now_s = now_s
        keys = dict(keymap or {})
        self._ack_key = keys.get("ack_alert", "x")
        # A modal screen hides the app's bindings: the registry's keys for these
        # two commands are taken here, so a remapped key works in the view too.
        self._actions = {normalize_key(key): action
                         for name, action in (("ack_alert", "ack_alert"), ("alerts", "alerts"))
                         for key in split_keys(keys.get(name, COMMANDS_BY_NAME[name].keys))}
        self._shown: dict[str, tuple[str | Text, ...]] = {}
        self._order: list[str] = []              # row keys: the alerts' ids, as text
        self._by_row: dict[str, Alert] = {}

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"Alerts · {self._ack_key} acknowledges the selected · Escape closes",
                        id="alerts-title")
            yield Label("No alerts firing or recently resolved.", id="alerts-empty")
            table: DataTable[str | Text] = DataTable(id="alerts-table", cursor_type="row",
                                                     zebra_stripes=True)
            yield table

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for name in COLUMNS:
            table.add_column(name, key=name)
        self.refresh_alerts()
        table.focus()

    @property
    def selected_key(self) -> str | None:
        """The selected row's key (the alert's id)."""
        table = self.query_one(DataTable)
        if not self._order or table.cursor_row < 0 or table.cursor_row >= len(self._order):
            return None
        return self._order[table.cursor_row]

    @property
    def selected_alert(self) -> Alert | None:
        key = self.selected_key
        return None if key is None else self._by_row.get(key)

    def refresh_alerts(self) -> None:
        """Show the alerts as they are now; unchanged cells are left alone."""
        table = self.query_one(DataTable)
        now = self._now_s()
        alerts = list(self._alerts())
        order = [str(a.id) for a in alerts]   # unique: a flapping rule lists each occurrence
        self._by_row = dict(zip(order, alerts, strict=True))
        self.query_one("#alerts-empty").display = not alerts
        table.display = bool(alerts)
        if order != self._order:
            selected = self.selected_key
            table.clear()
            self._shown = {}
            for key, alert in self._by_row.items():
                cells = alert_cells(alert, now)
                table.add_row(*cells, key=key)
                self._shown[key] = cells
            self._order = order
            if selected in order:
                table.move_cursor(row=order.index(selected), animate=False)
            return
        for key, alert in self._by_row.items():
            cells = alert_cells(alert, now)
            before = self._shown[key]
            for column, (old, new) in enumerate(zip(before, cells, strict=True)):
                if str(old) != str(new):
                    table.update_cell(key, COLUMNS[column], new, update_width=True)
            self._shown[key] = cells

    async def on_key(self, event: events.Key) -> None:
        action = self._actions.get(event.key)
        if action is not None:
            event.stop()
            await self.app.run_action(action)

    def action_close_alerts(self) -> None:
        self.dismiss(None)
