"""Account, positions and working orders, each with the age of its data.

The data comes from GET_ACCOUNT_INFO / GET_POSITIONS / GET_ORDERS polled every
`poll_interval_s`; when the gateway stops answering the last answer stays on
screen and its age keeps growing, so stale numbers are never mistaken for
live ones.

With several gateways the panel shows, while all are selected, one account
line per gateway and a totals row (equity, uPnL, rPnL, positions, working
orders, each gateway's data age), then the positions and working orders of
every gateway with a gateway column; `g` selects one gateway, and the panel
shows that one alone as it would with a single gateway.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from rich.style import Style
from rich.text import Text

from console.link.fleet import Fleet, LinkedGateway, Totals
from console.link.trading import GatewayData
from console.model import GW_DOWN
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

    def show_fleet(self, fleet: Fleet, now_ns: int) -> None:
        """One gateway (the only one, or the selected one) in full, else every one."""
        if not fleet:
            self.show_data(GatewayData(), now_ns, False)
            return
        shown = fleet.in_view()
        if len(shown) == 1:
            linked = shown[0]
            heading = self._heading(linked, len(fleet)) if fleet.several else ""
            self.show_data(linked.trading.data, now_ns, True, heading)
            return
        ages = [tuple(age_text(p, now_ns) for p in (d.account, d.positions, d.orders))
                for d in (g.trading.data for g in shown)]
        signature = ("fleet", tuple(
            (g.short, g.state, repr(g.trading.data.account.data),
             repr(g.trading.data.positions.data), repr(g.trading.data.orders.data),
             g.trading.data.account.error, g.trading.state) for g in shown), tuple(ages))
        self.show(signature, lambda: self._build_fleet(fleet, shown, ages))

    @staticmethod
    def _heading(linked: LinkedGateway, count: int) -> str:
        trading = linked.trading.state or "trading ?"
        return f"{linked.name} · {linked.state} · {trading}  (g: next of {count})"

    def show_data(self, data: GatewayData, now_ns: int, configured: bool,
                  heading: str = "") -> None:
        ages = tuple(age_text(p, now_ns) for p in (data.account, data.positions, data.orders))
        signature = (configured, heading, repr(data.account.data), repr(data.positions.data),
                     repr(data.orders.data), data.account.error, data.positions.error,
                     data.orders.error, ages)
        self.show(signature, lambda: self._build(data, ages, configured, heading))

    def _build_fleet(self, fleet: Fleet, shown: list[LinkedGateway],
                     ages: list[tuple[str, ...]]) -> Text:
        """Accounts per gateway and their totals; positions and orders with a gateway column."""
        text = Text(no_wrap=True, overflow="ellipsis")
        title, label = self.style_of("gateway--title"), self.style_of("gateway--label")
        bad = self.style_of("gateway--bad")
        width = max(5, *(len(g.short) for g in shown))
        text.append(f"Accounts ({len(shown)} gateways)", title)
        text.append("  g: select one", label)
        text.append(f"\n {'':{width}} {'equity':>14} {'uPnL':>10} {'rPnL':>10} pos ord  age",
                    label)
        for linked, age in zip(shown, ages, strict=True):
            data = linked.trading.data
            account = data.account.data if isinstance(data.account.data, dict) else {}
            text.append(f"\n {linked.short:{width}} ")
            text.append(_row(account.get("equity"), account.get("unrealized_pnl"),
                             account.get("realized_pnl"), len(data.position_list()),
                             len(data.order_list())))
            text.append(f"  {age[0]}", label)
            notes = []
            if linked.state == GW_DOWN:
                notes.append("DOWN")
            if linked.trading.halted:
                notes.append("HALTED")
            if notes:
                text.append(f" {' '.join(notes)}", bad)
        totals = fleet.totals(shown)
        text.append(f"\n {'TOTAL':{width}} ", title)
        text.append(_row(totals.equity, totals.unrealized_pnl, totals.realized_pnl,
                         totals.positions, totals.orders), title)
        text.append(_totals_note(totals, len(shown)), label)
        positions = [(g.short, p) for g in shown for p in g.trading.data.position_list()]
        orders = [(g.short, o) for g in shown for o in g.trading.data.order_list()]
        _append_list(text, "Positions", _oldest([age[1] for age in ages]), positions,
                     lambda item: f"{item[0]:{width}} {describe_position(item[1])}", title, label)
        _append_list(text, "Working orders", _oldest([age[2] for age in ages]), orders,
                     lambda item: f"{item[0]:{width}} {describe_order(item[1])}", title, label)
        for linked in shown:
            self._error(text, linked.trading.data.account.error, f"{linked.name}: ")
        return text

    def _build(self, data: GatewayData, ages: tuple[str, ...], configured: bool,
               heading: str = "") -> Text:
        text = Text(no_wrap=True, overflow="ellipsis")
        title, label = self.style_of("gateway--title"), self.style_of("gateway--label")
        if heading:
            text.append(heading + "\n", title)
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

    def _error(self, text: Text, error: str | None, where: str = "") -> None:
        if error:
            text.append(f"\n ! {where}{error}", self.style_of("gateway--bad"))


def _row(equity: Any, upnl: Any, rpnl: Any, positions: int, orders: int) -> str:
    return (f"{fmt.money(equity):>14} {fmt.money(upnl):>10} {fmt.money(rpnl):>10} "
            f"{positions:>3} {orders:>3}")


def _totals_note(totals: Totals, shown: int) -> str:
    notes = []
    if totals.gateways_counted < shown:
        notes.append(f"{totals.gateways_counted}/{shown} accounts known")
    if len(totals.currencies) > 1:
        notes.append("mixed currencies: " + "/".join(totals.currencies))
    return f"  ({'; '.join(notes)})" if notes else ""


def _oldest(ages: list[str]) -> str:
    """The data age to show for a list merged from several gateways: 'ages vary' or the one."""
    known = [a for a in ages if a != "no data yet"]
    if not known:
        return "no data yet"
    return known[0] if len(set(known)) == 1 else "per gateway: " + ", ".join(known)


def _append_list(text: Text, heading: str, age: str, items: list[Any],
                 describe: Callable[[Any], str], title: Style, label: Style) -> None:
    """A titled list with its data age, cut at MAX_LISTED with a '… N more' line."""
    text.append(f"\n{heading} ({len(items)})", title)
    text.append(f"  ({age})", label)
    for item in items[:MAX_LISTED]:
        text.append(f"\n {describe(item)}")
    if len(items) > MAX_LISTED:
        text.append(f"\n … {len(items) - MAX_LISTED} more", label)
