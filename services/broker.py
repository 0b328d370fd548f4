"""Paper broker: an account, positions and orders filled against the latest feed prices.

Pure logic: no sockets, no files and no clock of its own (callers pass `now_ns`),
so the gateway drives it from one thread and tests can drive it directly.

Pricing rules (see docs/gateway.md):
- a MARKET order fills at once at the ask (BUY) or bid (SELL), falling back
  to the last price; with no price known yet it is refused (NOT_FOUND);
- a LIMIT order that is marketable on arrival fills at once at the ask/bid;
  otherwise it rests (WORKING) and fills at its own limit price as soon as a
  tick crosses it;
- positions are marked at the price that would close them (bid for a long,
  ask for a short), so unrealised P&L is what CLOSE_POSITION would realise.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from services.broker_records import (
    CANCELLED,
    FILLED,
    QTY_EPSILON,
    WORKING,
    Order,
    Position,
    apply_fill,
    usable_price,
)
from services.protocol import (
    ACTIVE,
    BUY,
    FLATTEN,
    HALTED,
    LIMIT,
    MARKET,
    NOT_FOUND,
    SELL,
    TRADING_HALTED,
    packb,
)

STATE_VERSION = 1
# Kill replies and events list at most this many order ids / positions (counts are exact).
KILL_LISTED = 1000
# Latest ticks kept for pricing and GET_SNAPSHOT; new symbols beyond it are ignored
# (and counted) so a hostile feed cannot grow memory without bound.
MAX_SYMBOLS = 100_000


class Rejection(Exception):
    """A valid request refused by the broker's state or rules (reply status REJECTED)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class PaperBroker:
    """Account, positions and working orders; every change marks the broker `dirty`.

    `events` collects `(kind, payload)` pairs (order, trade, kill, resume) for
    the caller to publish after it has persisted the new state.
    """

    def __init__(self, *, account_id: str, currency: str, starting_balance: float) -> None:
        self.account_id = account_id
        self.currency = currency
        self.starting_balance = float(starting_balance)
        self.realized_pnl = 0.0
        self.latest: dict[str, dict[str, Any]] = {}
        self.ignored_symbols = 0
        self.positions: dict[str, Position] = {}
        self.orders: dict[str, Order] = {}              # working orders only
        # vt_symbol -> {order_id: order}: O(1) to unrest, so a kill is linear in orders.
        self._working_by_symbol: dict[str, dict[str, Order]] = {}
        self.trading_state = ACTIVE
        self.incident: dict[str, Any] | None = None
        self.last_incident: dict[str, Any] | None = None
        self.next_order = 1
        self.next_trade = 1
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.dirty = False

    # --- market data ---------------------------------------------------------

    def on_tick(self, vt_symbol: str, tick: dict[str, Any], now_ns: int) -> None:
        """Remember the latest tick; fill resting limit orders it crosses."""
        if vt_symbol not in self.latest and len(self.latest) >= MAX_SYMBOLS:
            self.ignored_symbols += 1
            return
        self.latest[vt_symbol] = tick
        resting = self._working_by_symbol.get(vt_symbol)
        if resting:
            self._match(vt_symbol, resting, now_ns)

    def _match(self, vt_symbol: str, resting: dict[str, Order], now_ns: int) -> None:
        if self.trading_state == HALTED:  # none should rest while halted; never fill one
            return
        tick = self.latest.get(vt_symbol)
        bid, ask = usable_price(tick, "bid_price_1"), usable_price(tick, "ask_price_1")
        for order in list(resting.values()):
            assert order.price is not None
            crossed = (order.side == BUY and ask is not None and ask <= order.price) or \
                (order.side == SELL and bid is not None and bid >= order.price)
            if crossed:
                self._unrest(order)
                self._fill(order, order.price, now_ns)

    def execution_price(self, vt_symbol: str, side: str) -> float | None:
        """Where a market order would trade now: ask for BUY, bid for SELL, else last."""
        tick = self.latest.get(vt_symbol)
        quoted = usable_price(tick, "ask_price_1" if side == BUY else "bid_price_1")
        return quoted if quoted is not None else usable_price(tick, "last_price")

    def mark_price(self, position: Position) -> float | None:
        """Price that would close the position now (bid for long, ask for short)."""
        return self.execution_price(position.vt_symbol, SELL if position.qty > 0 else BUY)

    # --- commands ------------------------------------------------------------

    def open_order(
        self, *, client_id: str, vt_symbol: str, side: str, qty: float, order_type: str,
        price: float | None, now_ns: int,
    ) -> dict[str, Any]:
        if self.trading_state == HALTED:
            raise Rejection(TRADING_HALTED, self._halted_message())
        market_price = self.execution_price(vt_symbol, side)
        if order_type == MARKET and market_price is None:
            raise Rejection(NOT_FOUND, f"no price known yet for {vt_symbol}")
        order = self._new_order(client_id, vt_symbol, side, qty, order_type, price, now_ns)
        if order_type == LIMIT:
            assert price is not None
            marketable = market_price is not None and (
                market_price <= price if side == BUY else market_price >= price)
            if not marketable:
                self.orders[order.order_id] = order
                self._working_by_symbol.setdefault(vt_symbol, {})[order.order_id] = order
                self._emit_order(order)
                self.dirty = True
                return self._order_reply(order)
        assert market_price is not None
        self._fill(order, market_price, now_ns)
        return self._order_reply(order)

    def cancel_order(self, order_id: str, now_ns: int) -> dict[str, Any]:
        order = self.orders.get(order_id)
        if order is None:
            raise Rejection(NOT_FOUND, f"no working order {order_id!r}")
        self._cancel(order, now_ns)
        return {"order_id": order_id, "status": CANCELLED}

    def close_position(self, vt_symbol: str, *, client_id: str, now_ns: int) -> dict[str, Any]:
        position = self.positions.get(vt_symbol)
        if position is None or abs(position.qty) < QTY_EPSILON:
            raise Rejection(NOT_FOUND, f"no open position in {vt_symbol}")
        price = self.mark_price(position)
        if price is None:
            raise Rejection(NOT_FOUND, f"no price known for {vt_symbol}; cannot close yet")
        closed_qty = position.qty
        side = SELL if closed_qty > 0 else BUY
        order = self._new_order(client_id, vt_symbol, side, abs(closed_qty), MARKET, None, now_ns)
        realized = self._fill(order, price, now_ns)
        return {"vt_symbol": vt_symbol, "closed_qty": closed_qty, "fill_price": price,
                "realized_pnl": realized, "order_id": order.order_id}

    def kill(self, *, reason: str, mode: str, client_id: str, now_ns: int) -> dict[str, Any]:
        """Latch HALTED, cancel every working order and (FLATTEN) close every position.

        A repeat while halted changes nothing and returns the same incident id.
        A position with no price known (e.g. just after a restart, before the
        feed ticks) cannot be closed: it is listed in `unclosed_positions`.
        """
        if self.trading_state == HALTED and self.incident is not None:
            return {"incident_id": self.incident["incident_id"], "trading_state": HALTED,
                    "cancelled_orders": [], "cancelled_count": 0, "closed_positions": [],
                    "closed_count": 0, "unclosed_positions": [], "unclosed_count": 0,
                    "truncated": False, "already_halted": True}
        incident_id = f"INC-{uuid.uuid4().hex[:16]}"
        self.trading_state = HALTED
        self.incident = {"incident_id": incident_id, "halted_at_ns": now_ns, "reason": reason,
                         "mode": mode, "client_id": client_id}
        self.dirty = True
        cancelled = []
        for order in list(self.orders.values()):
            self._cancel(order, now_ns)
            cancelled.append(order.order_id)
        closed: list[dict[str, Any]] = []
        unclosed: list[dict[str, Any]] = []
        if mode == FLATTEN:
            for vt_symbol, position in list(self.positions.items()):
                if abs(position.qty) < QTY_EPSILON:
                    continue
                try:
                    closed.append(self.close_position(vt_symbol, client_id=client_id,
                                                      now_ns=now_ns))
                except Rejection as exc:
                    unclosed.append({"vt_symbol": vt_symbol, "qty": position.qty,
                                     "reason": exc.message})
        # The reply lists at most KILL_LISTED of each, with the full counts, so that a
        # kill over thousands of resting orders still fits the receivers' msgpack and
        # frame limits (a reply the console cannot decode would look undelivered).
        listed = {
            "cancelled_orders": cancelled[:KILL_LISTED], "cancelled_count": len(cancelled),
            "closed_positions": closed[:KILL_LISTED], "closed_count": len(closed),
            "unclosed_positions": unclosed[:KILL_LISTED], "unclosed_count": len(unclosed),
            "truncated": max(len(cancelled), len(closed), len(unclosed)) > KILL_LISTED,
        }
        self.events.append(("kill", {**self.incident, "trading_state": HALTED, **listed}))
        return {"incident_id": incident_id, "trading_state": HALTED, **listed,
                "already_halted": False}

    def resume(self, *, incident_id: str, reason: str, client_id: str,
               now_ns: int) -> dict[str, Any]:
        if self.trading_state != HALTED or self.incident is None:
            raise Rejection(NOT_FOUND, "trading is not halted; there is no incident to resume")
        if incident_id != self.incident["incident_id"]:
            raise Rejection(NOT_FOUND, f"{incident_id!r} is not the open incident")
        self.last_incident = {**self.incident, "resumed_at_ns": now_ns, "resume_reason": reason,
                              "resumed_by": client_id}
        self.incident = None
        self.trading_state = ACTIVE
        self.dirty = True
        self.events.append(("resume", {**self.last_incident, "trading_state": ACTIVE}))
        return {"trading_state": ACTIVE, "incident_id": incident_id}

    # --- queries -------------------------------------------------------------

    def account(self) -> dict[str, Any]:
        unrealized = 0.0
        margin = 0.0
        for position in self._open_positions():
            mark = self.mark_price(position)
            if mark is None:
                mark = position.avg_price
            unrealized += (mark - position.avg_price) * position.qty
            margin += abs(position.qty) * mark
        balance = self.starting_balance + self.realized_pnl
        return {"account_id": self.account_id, "currency": self.currency, "balance": balance,
                "equity": balance + unrealized, "unrealized_pnl": unrealized,
                "realized_pnl": self.realized_pnl, "margin_used": margin}

    def position_rows(self) -> list[dict[str, Any]]:
        rows = []
        for position in self._open_positions():
            mark = self.mark_price(position)
            last = usable_price(self.latest.get(position.vt_symbol), "last_price")
            rows.append({
                "vt_symbol": position.vt_symbol, "qty": position.qty,
                "avg_price": position.avg_price, "last_price": last, "mark_price": mark,
                "unrealized_pnl": None if mark is None else (mark - position.avg_price)
                * position.qty,
                "realized_pnl": position.realized_pnl,
            })
        return rows

    def order_rows(self) -> list[dict[str, Any]]:
        return [order.to_dict() for order in self.orders.values()]

    def status(self) -> dict[str, Any]:
        incident = self.incident or {}
        return {"trading_state": self.trading_state,
                "incident_id": incident.get("incident_id"),
                "halted_at_ns": incident.get("halted_at_ns"),
                "reason": incident.get("reason"),
                "mode": incident.get("mode"),
                "positions": sum(1 for _ in self._open_positions()),
                "working_orders": len(self.orders),
                "last_incident": self.last_incident}

    def snapshot(self, symbols: Iterable[str] | None, *, max_bytes: int,
                 max_entries: int) -> dict[str, Any]:
        """Latest tick per vt_symbol (envelope seq/tseq included), capped to fit one reply."""
        wanted = list(self.latest) if symbols is None else [s for s in symbols if s in self.latest]
        ticks: dict[str, dict[str, Any]] = {}
        size = 0
        for vt_symbol in wanted:
            tick = self.latest[vt_symbol]
            size += len(packb(tick)) + len(vt_symbol) + 8
            if size > max_bytes or len(ticks) >= max_entries:
                break
            ticks[vt_symbol] = tick
        return {"ticks": ticks, "count": len(ticks), "total": len(wanted),
                "truncated": len(ticks) < len(wanted)}

    # --- persistence -----------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "account": {"account_id": self.account_id, "currency": self.currency,
                        "starting_balance": self.starting_balance,
                        "realized_pnl": self.realized_pnl},
            "positions": [{"vt_symbol": p.vt_symbol, "qty": p.qty, "avg_price": p.avg_price,
                           "realized_pnl": p.realized_pnl} for p in self._open_positions()],
            "orders": self.order_rows(),
            "trading_state": self.trading_state,
            "incident": self.incident,
            "last_incident": self.last_incident,
            "next_order": self.next_order,
            "next_trade": self.next_trade,
        }

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Restore from `to_state()` output; raise ValueError naming what is wrong."""
        try:
            if state.get("version") != STATE_VERSION:
                raise ValueError(f"version must be {STATE_VERSION}")
            account = state["account"]
            self.account_id = str(account["account_id"])
            self.currency = str(account["currency"])
            self.starting_balance = float(account["starting_balance"])
            self.realized_pnl = float(account["realized_pnl"])
            self.positions = {p["vt_symbol"]: Position(**p) for p in state["positions"]}
            self.orders = {}
            self._working_by_symbol = {}
            for row in state["orders"]:
                order = Order(**row)
                self.orders[order.order_id] = order
                self._working_by_symbol.setdefault(order.vt_symbol, {})[order.order_id] = order
            if state["trading_state"] not in (ACTIVE, HALTED):
                raise ValueError("trading_state must be ACTIVE or HALTED")
            self.trading_state = state["trading_state"]
            self.incident = state.get("incident")
            self.last_incident = state.get("last_incident")
            if self.trading_state == HALTED and not self.incident:
                raise ValueError("HALTED without an incident")
            self.next_order = int(state["next_order"])
            self.next_trade = int(state["next_trade"])
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"missing or malformed field ({exc})") from exc

    # --- internals -------------------------------------------------------------

    def _open_positions(self) -> Iterable[Position]:
        return (p for p in self.positions.values() if abs(p.qty) >= QTY_EPSILON)

    def _halted_message(self) -> str:
        incident_id = (self.incident or {}).get("incident_id")
        return f"trading is halted (incident {incident_id}); RESUME_TRADING releases it"

    def _new_order(self, client_id: str, vt_symbol: str, side: str, qty: float,
                   order_type: str, price: float | None, now_ns: int) -> Order:
        order_id = f"ORD-{self.next_order:08d}"
        self.next_order += 1
        return Order(order_id=order_id, client_id=client_id, vt_symbol=vt_symbol, side=side,
                     qty=qty, type=order_type, price=price, status=WORKING, created_ns=now_ns,
                     updated_ns=now_ns)

    def _order_reply(self, order: Order) -> dict[str, Any]:
        reply = {"order_id": order.order_id, "status": order.status,
                 "vt_symbol": order.vt_symbol, "side": order.side, "qty": order.qty,
                 "type": order.type, "price": order.price}
        if order.fill_price is not None:
            reply["fill_price"] = order.fill_price
        return reply

    def _emit_order(self, order: Order) -> None:
        self.events.append(("order", order.to_dict()))

    def _unrest(self, order: Order) -> None:
        self.orders.pop(order.order_id, None)
        resting = self._working_by_symbol.get(order.vt_symbol)
        if resting is not None:
            resting.pop(order.order_id, None)
            if not resting:
                del self._working_by_symbol[order.vt_symbol]

    def _cancel(self, order: Order, now_ns: int) -> None:
        self._unrest(order)
        order.status = CANCELLED
        order.updated_ns = now_ns
        self.dirty = True
        self._emit_order(order)

    def _fill(self, order: Order, price: float, now_ns: int) -> float:
        """Book a fill into the position; return the P&L it realised."""
        order.status = FILLED
        order.fill_price = price
        order.updated_ns = now_ns
        position = self.positions.setdefault(order.vt_symbol, Position(order.vt_symbol))
        realized = apply_fill(position, order.qty if order.side == BUY else -order.qty, price)
        self.realized_pnl += realized
        trade_id = f"TRD-{self.next_trade:08d}"
        self.next_trade += 1
        self.dirty = True
        self._emit_order(order)
        self.events.append(("trade", {
            "trade_id": trade_id, "order_id": order.order_id, "client_id": order.client_id,
            "vt_symbol": order.vt_symbol, "side": order.side, "qty": order.qty, "price": price,
            "realized_pnl": realized, "position_qty": position.qty, "ts_ns": now_ns}))
        if abs(position.qty) < QTY_EPSILON:
            del self.positions[order.vt_symbol]
        return realized
