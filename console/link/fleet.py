"""The console's gateways: one link each, with what its replies have told.

A desk watches several gateways at once. Each `LinkedGateway` pairs a named
gateway (console.link.gateways.GatewaySpec) with its own link (one link
process per gateway, so a dead or slow one never delays another's heartbeat
or kill) and its own `TradingState`. `Fleet` is the list in the order given,
which gateway is selected (None: all of them), and the sums the gateway
panel's totals row shows.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from console.link.gateways import GatewaySpec, endpoint_name
from console.link.trading import TradingState
from console.model import GW_DOWN, GW_LATE, GW_UNKNOWN, GW_UP, GatewayLink, GatewayStatus

__all__ = ["Fleet", "LinkedGateway", "Totals"]


@dataclass(eq=False, slots=True)
class LinkedGateway:
    """One gateway: its name and flags, its link, its trading state and latest status."""

    spec: GatewaySpec
    link: GatewayLink
    trading: TradingState = field(default_factory=TradingState)
    status: GatewayStatus | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def readonly(self) -> bool:
        return self.spec.readonly

    @property
    def short(self) -> str:
        """What a badge shows: the label, else the name, else (a bare endpoint) its node."""
        if self.spec.label:
            return self.spec.label
        node = self.status.node if self.status is not None else None
        if node and self.spec.name == endpoint_name(self.spec.endpoint):
            return node
        return self.spec.name

    @property
    def state(self) -> str:
        return self.status.state if self.status is not None else GW_UNKNOWN

    def refresh(self) -> GatewayStatus:
        """Read the link's status now (every frame); returns it."""
        self.status = self.link.status()
        return self.status


@dataclass(frozen=True, slots=True)
class Totals:
    """The sums over every gateway that answered: the totals row of the gateway panel."""

    equity: float | None
    unrealized_pnl: float | None
    realized_pnl: float | None
    positions: int
    orders: int
    gateways_counted: int
    currencies: tuple[str, ...] = ()   # more than one: the money sums mix currencies


class Fleet:
    """The linked gateways, in order, and which one is selected."""

    def __init__(self, gateways: Sequence[LinkedGateway] = ()) -> None:
        self.gateways = list(gateways)
        names = [g.name for g in self.gateways]
        if len(set(names)) != len(names):
            raise ValueError(f"two gateways with one name: {names}")
        # With one gateway it is always the selected one; with several, None = all.
        self.selected: str | None = names[0] if len(names) == 1 else None

    def __iter__(self) -> Iterator[LinkedGateway]:
        return iter(self.gateways)

    def __len__(self) -> int:
        return len(self.gateways)

    def __bool__(self) -> bool:
        return bool(self.gateways)

    @property
    def several(self) -> bool:
        return len(self.gateways) > 1

    def get(self, name: str) -> LinkedGateway | None:
        return next((g for g in self.gateways if g.name == name), None)

    @property
    def current(self) -> LinkedGateway | None:
        """The selected gateway, else the first (what one-gateway views show)."""
        chosen = self.get(self.selected) if self.selected is not None else None
        return chosen or (self.gateways[0] if self.gateways else None)

    def in_view(self) -> list[LinkedGateway]:
        """The gateways the panel shows: the selected one, or all."""
        chosen = self.get(self.selected) if self.selected is not None else None
        return [chosen] if chosen is not None else list(self.gateways)

    def cycle(self) -> str | None:
        """Select the next gateway: all → first → … → last → all. Returns the new choice."""
        if not self.several:
            return self.selected
        names: list[str | None] = [None, *(g.name for g in self.gateways)]
        self.selected = names[(names.index(self.selected) + 1) % len(names)]
        return self.selected

    def counts(self) -> tuple[int, int]:
        """(gateways UP or LATE, gateways HALTED) for the folded status bar."""
        up = sum(1 for g in self.gateways if g.state in (GW_UP, GW_LATE))
        halted = sum(1 for g in self.gateways if g.trading.halted)
        return up, halted

    def down(self) -> list[LinkedGateway]:
        return [g for g in self.gateways if g.state == GW_DOWN]

    def totals(self, gateways: Sequence[LinkedGateway] | None = None) -> Totals:
        """Equity, PnL, positions and working orders summed over `gateways` (default all)."""
        chosen = self.gateways if gateways is None else gateways
        equity = upnl = rpnl = None
        positions = orders = counted = 0
        currencies: list[str] = []
        for gateway in chosen:
            data = gateway.trading.data
            account = data.account.data if isinstance(data.account.data, dict) else None
            if account:
                counted += 1
                equity = _add(equity, account.get("equity"))
                upnl = _add(upnl, account.get("unrealized_pnl"))
                rpnl = _add(rpnl, account.get("realized_pnl"))
                currency = account.get("currency")
                if isinstance(currency, str) and currency and currency not in currencies:
                    currencies.append(currency)
            positions += len(data.position_list())
            orders += len(data.order_list())
        return Totals(equity, upnl, rpnl, positions, orders, counted, tuple(currencies))


def _add(total: float | None, value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return total
    return (total or 0.0) + float(value)
