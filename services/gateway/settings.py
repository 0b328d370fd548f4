"""The gateway's [gateway], [limits] and [network] values, checked once at start-up."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from services import protocol as p
from services.runtime.errors import UsageError
from services.runtime.network import DEFAULT_NETWORK, NetworkOptions

if TYPE_CHECKING:
    from services.runtime.config import Config


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    """What the gateway runs with; the defaults let tests build one without a config."""

    node: str = "gw-1"
    account_id: str = "PAPER-1"
    currency: str = "USD"
    starting_balance: float = 1_000_000.0
    reply_cache_size: int = 10_000
    request_budget_ms: int = 2000
    rate_limit_per_s: float = 200.0
    telemetry_interval_s: float = 1.0
    limits: p.Limits = field(default_factory=p.Limits)
    network: NetworkOptions = DEFAULT_NETWORK

    @classmethod
    def from_config(cls, config: Config) -> GatewaySettings:
        """Check the [gateway] values; one line naming the key when one is out of range."""
        gw = config.settings.gateway
        checks = [
            ("node", bool(gw.node.strip()), "a non-empty name (--node)"),
            ("account_id", bool(gw.account_id.strip()), "a non-empty string"),
            ("currency", bool(gw.currency.strip()), "a non-empty string"),
            ("starting_balance", gw.starting_balance > 0, "a number > 0"),
            ("reply_cache_size", gw.reply_cache_size >= 1, "an integer >= 1"),
            ("request_budget_ms", gw.request_budget_ms >= 0, "an integer >= 0 (0 = no budget)"),
            ("rate_limit_per_s", gw.rate_limit_per_s >= 0, "a number >= 0 (0 = no limit)"),
            ("telemetry_interval_s", gw.telemetry_interval_s > 0, "a number > 0"),
        ]
        for key, ok, allowed in checks:
            if not ok:
                raise UsageError(
                    f"gateway.{key} = {getattr(gw, key)!r} is not allowed: expected {allowed}")
        limits = p.Limits.from_settings(config.settings.limits)
        if min(limits.max_msg_size, limits.max_str_len, limits.max_container_len) < 1:
            raise UsageError("[limits] values must be integers >= 1")
        return cls(node=gw.node, account_id=gw.account_id, currency=gw.currency,
                   starting_balance=float(gw.starting_balance),
                   reply_cache_size=gw.reply_cache_size,
                   request_budget_ms=gw.request_budget_ms,
                   rate_limit_per_s=float(gw.rate_limit_per_s),
                   telemetry_interval_s=float(gw.telemetry_interval_s), limits=limits,
                   network=config.network)
