"""What is known about a gateway's account and trading state, from its replies.

Plain state with no Textual in it, so the rules (which answer wins, when a
halt needs its incident fetched, which polls an event calls for) are tested
on their own. The console and the headless monitor (console.watch.monitor)
both keep one: they send the polls these methods ask for and show or export
the result.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from console.model import GatewayStatus, Reply
from services.protocol import (
    GET_ACCOUNT_INFO,
    GET_ORDERS,
    GET_POSITIONS,
    GET_STATUS,
    HALTED,
    KILL_SWITCH,
    RESUME_TRADING,
)

POLLED_ACTIONS = (GET_STATUS, GET_POSITIONS, GET_ORDERS, GET_ACCOUNT_INFO)
# Gateway events that make some polled data out of date, and the polls that refresh it.
EVENT_POLLS: dict[str, tuple[str, ...]] = {
    "event.kill": (GET_STATUS,),
    "event.resume": (GET_STATUS,),
    "event.order": (GET_ORDERS, GET_POSITIONS, GET_ACCOUNT_INFO),
    "event.trade": (GET_ORDERS, GET_POSITIONS, GET_ACCOUNT_INFO),
}


@dataclass(slots=True)
class Polled:
    """The latest answer to one GET_* poll and when it arrived (console clock)."""

    data: Any = None
    at_ns: int | None = None
    error: str | None = None


@dataclass(slots=True)
class GatewayData:
    """What the gateway panel (and the kill switch scope) knows about the account."""

    account: Polled = field(default_factory=Polled)
    positions: Polled = field(default_factory=Polled)
    orders: Polled = field(default_factory=Polled)
    status: Polled = field(default_factory=Polled)

    def position_list(self) -> list[dict[str, Any]]:
        data = self.positions.data
        return [p for p in data if isinstance(p, dict)] if isinstance(data, list) else []

    def order_list(self) -> list[dict[str, Any]]:
        data = self.orders.data
        return [o for o in data if isinstance(o, dict)] if isinstance(data, list) else []

    def polled(self, action: str) -> Polled:
        return {GET_STATUS: self.status, GET_POSITIONS: self.positions,
                GET_ORDERS: self.orders, GET_ACCOUNT_INFO: self.account}[action]


def _dict(data: Any) -> dict[str, Any]:
    return data if isinstance(data, dict) else {}


class TradingState:
    """Trading state (ACTIVE/HALTED, incident, reason), polled data and polls in flight.

    Methods that can learn of a new halt return True when it is news: the
    caller then polls GET_STATUS for the incident id and reason.
    """

    def __init__(self) -> None:
        self.data = GatewayData()
        self.state: str | None = None
        self.incident_id: str | None = None
        self.halt_reason: str | None = None
        self._heartbeat_state: str | None = None
        self._outstanding: set[str] = set()

    @property
    def halted(self) -> bool:
        return self.state == HALTED

    def set_trading(self, state: str | None, incident: str | None,
                    reason: str | None = None) -> bool:
        """Take a trading state; True when it has just become HALTED."""
        if state is None:
            return False
        newly_halted = state != self.state and state == HALTED
        self.state = state
        if state == HALTED:
            self.incident_id = incident or self.incident_id
            self.halt_reason = reason or self.halt_reason
        else:
            self.incident_id = self.halt_reason = None
        return newly_halted

    def note_status(self, status: GatewayStatus) -> bool:
        """Take the heartbeat's trading state when it changes (it is news then)."""
        if status.trading_state is not None and status.trading_state != self._heartbeat_state:
            self._heartbeat_state = status.trading_state
            return self.set_trading(status.trading_state, status.incident_id)
        if status.incident_id and self.halted and not self.incident_id:
            self.incident_id = status.incident_id
        return False

    def start_poll(self, action: str) -> bool:
        """True if `action` may be sent: the same read is not still in flight."""
        if action in self._outstanding:
            return False
        self._outstanding.add(action)
        return True

    def take_poll_reply(self, action: str, reply: Reply, now_ns: int) -> bool:
        """Store a GET_* answer (or why there is none); True on news of a halt."""
        self._outstanding.discard(action)
        polled = self.data.polled(action)
        if reply.ok:
            polled.data, polled.at_ns, polled.error = reply.data, now_ns, None
            if action == GET_STATUS and isinstance(reply.data, dict):
                data = reply.data
                return self.set_trading(data.get("trading_state"), data.get("incident_id"),
                                        data.get("reason"))
        elif reply.delivered:
            error = reply.error or {}
            polled.error = f"{reply.status} {error.get('code', '')}: {error.get('message', '')}"
        else:
            polled.error = "no answer (gateway down?); showing the last answer"
        return False

    def take_guarded_reply(self, action: str, reply: Reply, payload: dict[str, Any]) -> bool:
        """A kill switch or resume succeeded: take its outcome; True on news of a halt."""
        data = _dict(reply.data)
        if action == KILL_SWITCH:
            return self.set_trading(data.get("trading_state") or HALTED, data.get("incident_id"),
                                    payload.get("reason"))
        if action == RESUME_TRADING:
            return self.set_trading(data.get("trading_state") or "ACTIVE", None)
        return False
