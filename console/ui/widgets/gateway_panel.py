"""Account, positions and working orders, each with the age of its data.

The data comes from GET_ACCOUNT_INFO / GET_POSITIONS / GET_ORDERS polled every
`poll_interval_s`; when the gateway stops answering the last answer stays on
screen and its age keeps growing, so stale numbers are never mistaken for
live ones.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from rich.style import Style
from rich.text import Text

from console.link.trading import GatewayData
from console.ui import format as fmt
from console.ui.trading import age_text
from console.ui.widgets.text_panel import TextPanel

MAX_LISTED = 12


def describe_position(position: dict[str, Any]) -> str:
    qty = position.get("qty")
    qty_text = f"{qty:+,g}" if isinstance(qty, int | float) else fmt.MISSING
    return (f"{position.get('vt_symbol', '?')}  {qty_text} @ {fmt.money(position.get('avg_price'))}"
            f"  uPnL {fmt.money(position.get('unrealized_pnl'))}")


def describe_order(order: dict[str, Any]) -> str:
    price = order.get("price")
    price_text = f" @ {fmt.money(price)}" if price is not None else ""
    qty = order.get("qty")
    qty_text = f"{qty:,g}" if isinstance(qty, int | float) else "?"
    return (f"{order.get('order_id', '?')}  {order.get('side', '?')} {qty_text} "
            f"{order.get('vt_symbol', '?')} {order.get('type', '')}{price_text}").rstrip()


class GatewayPanel(TextPanel):
    """The account section of the side panel."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {"gateway--title", "gateway--label", "gateway--bad"}
    DEFAULT_CSS = """
    GatewayPanel { height: auto; padding: 0 1; }
    GatewayPanel > .gateway--title { text-style: bold; }
    GatewayPanel > .gateway--label { color: $text-muted; }
    GatewayPanel > .gateway--bad { color: $tc-bad; }
    """

    def show_data(self, data: GatewayData, now_ns: int, configured: bool) -> None:
        ages = tuple(age_text(p, now_ns) for p in (data.account, data.positions, data.orders))
        signature = (configured, repr(data.account.data), repr(data.positions.data),
                     repr(data.orders.data), data.account.error, data.positions.error,
                     data.orders.error, ages)
        self.show(signature, lambda: self._build(data, ages, configured))

    def _build(self, data: GatewayData, ages: tuple[str, ...], configured: bool) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis")
        title, label = self.style_of("gateway--title"), self.style_of("gateway--label")
        if not configured:
            text.append("no gateway configured", label)
            return text
        account = data.account.data if isinstance(data.account.data, dict) else None
        text.append("Account ", title)
        if account:
            text.append(f"{account.get('account_id', '?')} {account.get('currency', '')}")
        text.append(f"  ({ages[0]})", label)
        if account:
            text.append("\n balance ", label)
            text.append(fmt.money(account.get("balance")))
            text.append("  equity ", label)
            text.append(fmt.money(account.get("equity")))
            text.append("\n uPnL ", label)
            text.append(fmt.money(account.get("unrealized_pnl")))
            text.append("  rPnL ", label)
            text.append(fmt.money(account.get("realized_pnl")))
            text.append("  margin ", label)
            text.append(fmt.money(account.get("margin_used")))
        self._error(text, data.account.error)
        _append_list(text, "Positions", ages[1], data.position_list(), describe_position,
                     title, label)
        self._error(text, data.positions.error)
        _append_list(text, "Working orders", ages[2], data.order_list(), describe_order,
                     title, label)
        self._error(text, data.orders.error)
        return text

    def _error(self, text: Text, error: str | None) -> None:
        if error:
            text.append(f"\n ! {error}", self.style_of("gateway--bad"))


def _append_list(text: Text, heading: str, age: str, items: list[Any],
                 describe: Callable[[Any], str], title: Style, label: Style) -> None:
    """A titled list with its data age, cut at MAX_LISTED with a '… N more' line."""
    text.append(f"\n{heading} ({len(items)})", title)
    text.append(f"  ({age})", label)
    for item in items[:MAX_LISTED]:
        text.append(f"\n {describe(item)}")
    if len(items) > MAX_LISTED:
        text.append(f"\n … {len(items) - MAX_LISTED} more", label)
