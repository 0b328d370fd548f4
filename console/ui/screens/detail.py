"""The detail pane of one symbol: depth ladder, last ticks and a price sparkline.

Refreshed by the app's frame loop only when that symbol changed; asking the
source for `detail()` is also what keeps its short history collecting.
"""

from __future__ import annotations

from typing import Any, ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, Sparkline, Static

from console.model import SymbolDetail
from console.ui import format as fmt

RECENT_SHOWN = 8
DEPTH_LEVELS = 5  # bid/ask_price_1..5 in the tick payload


def _num(tick: dict[str, Any], key: str) -> float | None:
    value = tick.get(key)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) \
        else None


def depth_table(tick: dict[str, Any]) -> Table:
    """Five levels: bid size, bid | ask, ask size."""
    table = Table(box=None, expand=False, pad_edge=False, header_style="bold")
    for title in ("BidSz", "Bid", "Ask", "AskSz"):
        table.add_column(title, justify="right" if title.startswith("Bid") else "left",
                         min_width=9)
    for level in range(1, DEPTH_LEVELS + 1):
        table.add_row(
            fmt.quantity(_num(tick, f"bid_volume_{level}")),
            Text(fmt.price(_num(tick, f"bid_price_{level}")), style="bold"),
            Text(fmt.price(_num(tick, f"ask_price_{level}")), style="bold"),
            fmt.quantity(_num(tick, f"ask_volume_{level}")),
        )
    return table


def summary_text(detail: SymbolDetail, now_ns: int) -> str:
    row, tick = detail.row, detail.tick
    lines = [
        f"{tick.get('name') or row.vt_symbol}  ·  feed {row.feed}",
        f"last {fmt.price(row.last)}  chg {fmt.change(row.change)}  "
        f"vol {fmt.quantity(row.volume)}  ticks {fmt.count(row.ticks)}",
        f"open {fmt.price(_num(tick, 'open_price'))}  high {fmt.price(_num(tick, 'high_price'))}"
        f"  low {fmt.price(_num(tick, 'low_price'))}  "
        f"prev close {fmt.price(_num(tick, 'pre_close'))}",
        f"latency {fmt.latency_us(row.latency_us if row.has_envelope else None)}  "
        f"gaps {fmt.count(row.gaps) if row.has_envelope else fmt.UNKNOWN}  "
        f"age {fmt.age(now_ns - row.updated_ns)}  exchange time {tick.get('datetime', '—')}",
    ]
    if not row.has_envelope:
        lines.append("no envelope (third-party publisher): latency and gaps unknown")
    if detail.problem:
        lines.append(f"field problem: {detail.problem}")
    return "\n".join(lines)


def recent_text(detail: SymbolDetail, now_ns: int) -> str:
    recent = detail.recent[-RECENT_SHOWN:]
    if not recent:
        return "no ticks collected yet"
    return "\n".join(f"-{fmt.age(now_ns - ts)} {fmt.price(price)}"
                     for ts, price in reversed(recent))


class DetailScreen(ModalScreen[None]):
    """Modal pane for one symbol; Escape or Enter closes it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,enter,q", "close", "Close"),
    ]
    DEFAULT_CSS = """
    DetailScreen { align: center middle; }
    DetailScreen > Vertical {
        width: 95%; max-width: 100; height: auto; max-height: 95%;
        border: thick $primary; background: $surface; padding: 0 1;
    }
    DetailScreen #detail-title { text-style: bold; width: 1fr; }
    DetailScreen #detail-body { height: auto; }
    DetailScreen #detail-depth { width: auto; height: auto; margin: 0 2 0 0; }
    DetailScreen #detail-recent { width: 1fr; height: auto; }
    DetailScreen Sparkline { height: 3; margin: 1 0 0 0; }
    """

    def __init__(self, vt_symbol: str) -> None:
        super().__init__()
        self.vt_symbol = vt_symbol

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"{self.vt_symbol} · Escape closes", id="detail-title")
            yield Static("waiting for data…", id="detail-summary", markup=False)
            with Horizontal(id="detail-body"):
                yield Static("", id="detail-depth")
                yield Static("", id="detail-recent", markup=False)
            yield Sparkline([], id="detail-spark")

    def show_detail(self, detail: SymbolDetail | None, now_ns: int) -> None:
        if detail is None:
            self.query_one("#detail-summary", Static).update(
                f"{self.vt_symbol} is no longer tracked")
            return
        self.query_one("#detail-summary", Static).update(summary_text(detail, now_ns))
        self.query_one("#detail-depth", Static).update(depth_table(detail.tick))
        self.query_one("#detail-recent", Static).update(
            "last ticks\n" + recent_text(detail, now_ns))
        self.query_one("#detail-spark", Sparkline).data = [p for _, p in detail.recent]

    def action_close(self) -> None:
        self.dismiss(None)
