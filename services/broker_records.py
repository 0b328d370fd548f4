"""The paper broker's records: orders and positions, and the arithmetic of a fill.

Kept apart from `PaperBroker` so the position maths (average price, realised
P&L, crossing through flat) can be read and tested on its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from services.protocol import is_finite_number

WORKING = "WORKING"
FILLED = "FILLED"
CANCELLED = "CANCELLED"
# Quantities closer to zero than this are flat (float residue of partial closes).
QTY_EPSILON = 1e-9


@dataclass(slots=True)
class Order:
    """One order, working or done; `fill_price` is set once it fills."""

    order_id: str
    client_id: str
    vt_symbol: str
    side: str
    qty: float
    type: str
    price: float | None
    status: str
    created_ns: int
    updated_ns: int
    fill_price: float | None = None

    def to_dict(self) -> dict[str, Any]:
        # Explicit rather than dataclasses.asdict: this runs per order on every commit.
        return {"order_id": self.order_id, "client_id": self.client_id,
                "vt_symbol": self.vt_symbol, "side": self.side, "qty": self.qty,
                "type": self.type, "price": self.price, "status": self.status,
                "created_ns": self.created_ns, "updated_ns": self.updated_ns,
                "fill_price": self.fill_price}


@dataclass(slots=True)
class Position:
    """Net holding in one symbol, with the P&L its closes have realised."""

    vt_symbol: str
    qty: float = 0.0           # signed: > 0 long, < 0 short
    avg_price: float = 0.0
    realized_pnl: float = 0.0


def usable_price(tick: Mapping[str, Any] | None, key: str) -> float | None:
    """A usable price from a tick: finite and > 0 (0 means no quote on many feeds)."""
    if tick is None:
        return None
    value = tick.get(key)
    if is_finite_number(value) and value > 0:
        return float(value)
    return None


def apply_fill(position: Position, signed_qty: float, price: float) -> float:
    """Update signed qty and average price; return realised P&L of the part that closed."""
    qty = position.qty
    if abs(qty) < QTY_EPSILON or (qty > 0) == (signed_qty > 0):
        total = abs(qty) + abs(signed_qty)
        position.avg_price = (abs(qty) * position.avg_price + abs(signed_qty) * price) / total
        position.qty = qty + signed_qty
        return 0.0
    closing = min(abs(qty), abs(signed_qty))
    realized = closing * (price - position.avg_price) * (1.0 if qty > 0 else -1.0)
    position.realized_pnl += realized
    position.qty = qty + signed_qty
    if abs(position.qty) < QTY_EPSILON:
        position.qty = 0.0
        position.avg_price = 0.0
    elif (position.qty > 0) != (qty > 0):  # crossed through flat: the rest opens at price
        position.avg_price = price
    return realized
