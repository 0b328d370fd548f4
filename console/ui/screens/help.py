"""Help: every binding from the command registry, the table keys and the legend."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from console.ui import format as fmt
from console.ui.commands import help_rows

TABLE_KEYS = (
    ("↑ ↓ PgUp PgDn Home End", "move the selection in the tick table"),
    ("click a row / double click", "select / open its detail"),
    ("click a column header", "sort by it; click again to reverse"),
    ("Escape (in dialogs)", "cancel and close"),
)

LEGEND = (
    (f"{fmt.UP_MARK} / {fmt.DOWN_MARK}", "change since the previous close is up / down"),
    ("highlighted Last", "the price just moved (up or down), for about half a second"),
    ("STALE 12s", "no tick for this symbol for longer than row_stale_after_s"),
    (fmt.UNKNOWN, "unknown: the tick has no envelope (third-party publisher), so latency "
                  "and gaps cannot be known"),
    (fmt.MISSING, "the tick does not carry this field"),
    ("Latency", "console receive time minus the publisher's send time (ts_ns)"),
    ("Gaps", "messages missing in this symbol's topic sequence (tseq)"),
    ("connected / retrying / disconnected", "the feed socket's link state"),
    ("OK / STALE / DOWN", "feed freshness: data within stale_after_s / late / never or lost"),
    ("reconnecting", "the feed's socket dropped while its data is still fresh; connecting "
                     "again (an oversized frame reconnects at once)"),
    ("GW UP / LATE / DOWN", "gateway heartbeat answered / slower than heartbeat_late_ms / "
                            "no answer after every retry"),
    ("ACTIVE / HALTED", "gateway trading state; HALTED until resumed with the incident id"),
    ("READ-ONLY", "every state-changing command (*) is disabled"),
    ("PAUSED n pending", "the table is frozen; n updates arrived meanwhile"),
    ("● REC", "the raw feed is being recorded to a file"),
    ("▲ 2 ALERTS CRIT", "alerts firing and the worst severity (a lists them); ack: every "
                        "firing alert is acknowledged"),
)


def help_table(keymap: Mapping[str, str], readonly: bool) -> Table:
    table = Table(box=None, show_header=True, header_style="bold", expand=True, pad_edge=False)
    table.add_column("Keys", no_wrap=True)
    table.add_column("Command", no_wrap=True)
    table.add_column("What it does", ratio=1)
    for keys, command in help_rows(keymap):
        marker = " *" if command.state_changing else ""
        description = command.description
        if command.state_changing and readonly:
            description += " (disabled: read-only)"
        table.add_row(keys.replace(",", ", "), f"{command.name}{marker}", description)
    return table


def pairs_table(rows: tuple[tuple[str, str], ...]) -> Table:
    table = Table(box=None, show_header=False, expand=True, pad_edge=False)
    table.add_column(no_wrap=True)
    table.add_column(ratio=1)
    for left, right in rows:
        table.add_row(Text(left, style="bold"), right)
    return table


class HelpScreen(ModalScreen[None]):
    """Scrollable help; Escape, q or ? closes it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "dismiss_help", "Close"),
    ]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > Vertical {
        width: 95%; max-width: 110; height: 95%;
        border: thick $primary; background: $surface;
    }
    HelpScreen #help-title { text-style: bold; padding: 0 1; width: 1fr; }
    HelpScreen VerticalScroll { padding: 0 1; }
    HelpScreen .section { text-style: bold; color: $accent; margin-top: 1; }
    """

    def __init__(self, keymap: Mapping[str, str], readonly: bool) -> None:
        super().__init__()
        self._keymap = dict(keymap)
        self._readonly = readonly

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("tradeconsole help · Escape closes · * changes trading state",
                        id="help-title")
            with VerticalScroll(id="help-body"):
                yield Static("Commands (remap in config [keys], e.g. heartbeat = \"h,ctrl+h\")",
                             classes="section", markup=False)
                yield Static(help_table(self._keymap, self._readonly), id="help-commands")
                yield Static("Tick table", classes="section")
                yield Static(pairs_table(TABLE_KEYS))
                yield Static("Legend", classes="section")
                yield Static(pairs_table(LEGEND), id="help-legend")
                yield Static("Filter", classes="section")
                yield Static("text = substring (any case) · *.KRAKEN or BTC? = glob · "
                             "re:^(BTC|ETH) = regex · !text = everything except · "
                             "Escape clears", markup=False)

    def on_mount(self) -> None:
        self.query_one("#help-body").focus()

    def action_dismiss_help(self) -> None:
        self.dismiss(None)
