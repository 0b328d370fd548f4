"""What the alert engine and the exporter look at: one moment of the data layer.

The console builds one from its frame (feeds drained, the gateway link's
status, the trading state it keeps); the headless monitor builds the same from
the same objects. Neither copies the data layer: these are views of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from console.link.trading import TradingState
from console.model import FeedRow, GatewayStatus


@dataclass(slots=True)
class GatewayObservation:
    """One gateway: its link health and, when polled, account and positions."""

    name: str
    endpoint: str
    state: str                          # GW_*
    rtt_ms: float | None = None
    trading_state: str | None = None
    incident_id: str | None = None
    account: dict[str, Any] | None = None
    positions: list[dict[str, Any]] | None = None


@dataclass(slots=True)
class Observation:
    now_s: float                        # monotonic seconds
    feeds: list[FeedRow] = field(default_factory=list)
    gateways: list[GatewayObservation] = field(default_factory=list)


def observe_gateway(name: str, status: GatewayStatus,
                    trading: TradingState | None = None) -> GatewayObservation:
    """A gateway as its link and (if kept) its trading state know it."""
    observed = GatewayObservation(name=name, endpoint=status.endpoint, state=status.state,
                                  rtt_ms=status.rtt_ms, trading_state=status.trading_state,
                                  incident_id=status.incident_id)
    if trading is not None:
        observed.trading_state = trading.state or observed.trading_state
        observed.incident_id = trading.incident_id or observed.incident_id
        account = trading.data.account.data
        observed.account = account if isinstance(account, dict) else None
        if trading.data.positions.at_ns is not None:
            observed.positions = trading.data.position_list()
    return observed
