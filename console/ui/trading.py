"""How old what the console knows about the gateway is, in words for the screen."""

from __future__ import annotations

from console.link.trading import Polled, TradingState
from console.ui import format as fmt


def age_text(polled: Polled, now_ns: int) -> str:
    if polled.at_ns is None:
        return "no data yet"
    return f"{fmt.age(now_ns - polled.at_ns, coarse=True)} ago"


def kill_scope_age(trading: TradingState, now_ns: int) -> str:
    """How old the positions and orders a kill switch would act on are."""
    data = trading.data
    scope_at = min((p.at_ns for p in (data.positions, data.orders) if p.at_ns is not None),
                   default=None)
    text = age_text(Polled(at_ns=scope_at), now_ns)
    if data.positions.error or data.orders.error:
        text += "; the latest poll failed, the scope may be out of date"
    return text
