"""The merged configuration as typed, read-only records, one per config.toml section.

`load_config` checks every layer against the shipped defaults and then builds
one `Settings` from the merged values, so code reads `settings.console.fps`
(an int, known to exist) instead of looking keys up in dictionaries. The
fields mirror config.toml exactly (tests/cli/test_config.py keeps the two in
step); the defaults themselves live only in that file, so no field has one.
Strings that must be one of a few words keep the case they were written in.
"""

from __future__ import annotations

import msgspec


class _Section(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A config section: immutable, every key required, no key it does not declare."""


class EndpointsSection(_Section):
    """[endpoints]: where the services bind and the console connects."""

    gateway: str
    publisher: str
    gateway_pub: str
    feeds: tuple[str, ...]


class LimitsSection(_Section):
    """[limits]: the decoding limits every socket enforces (see services.protocol.Limits)."""

    max_msg_size: int
    max_str_len: int
    max_container_len: int


class PublisherSection(_Section):
    """[publisher]: the simulated market feed."""

    node: str
    symbols: int
    rate: float
    seed: int
    burst_every_s: float
    burst_size: int
    queue_capacity: int
    sndhwm: int
    telemetry_interval_s: float


class GatewaySection(_Section):
    """[gateway]: the paper-trading gateway."""

    node: str
    state_dir: str
    account_id: str
    currency: str
    starting_balance: float
    reply_cache_size: int
    request_budget_ms: int
    rate_limit_per_s: int
    telemetry_interval_s: float


class ConsoleSection(_Section):
    """[console]: the terminal console, its ingest and its gateway link."""

    fps: int
    ingest: str
    gateway_link: str
    ingest_nice: int
    theme: str
    readonly: bool
    stale_after_s: float
    row_stale_after_s: float
    rcvhwm: int
    history_s: int
    heartbeat_interval_s: float
    heartbeat_late_ms: int
    request_timeout_ms: int
    request_retries: int
    poll_interval_s: float
    max_symbols: int
    diff_output: bool


class NetworkSection(_Section):
    """[network]: heartbeats, timeouts and keepalive (see services.runtime.network)."""

    heartbeat_interval_ms: int
    heartbeat_timeout_ms: int
    connect_timeout_ms: int
    handshake_timeout_ms: int
    tcp_keepalive_idle_s: int
    tcp_keepalive_interval_s: int
    tcp_keepalive_count: int


class GatewayEntry(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One `[gateways.NAME]` table: a gateway the console and the scripts link to by name."""

    endpoint: str
    keys: str = ""          # CURVE key directory for this gateway ("" = --keys or none)
    readonly: bool = False  # refuse kill / resume / orders for this one
    label: str = ""         # a short label for the status bar ("" = the name)


class AlertRuleSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One `[[alerts.rules]]` table as written; console.watch.rules checks what it means.

    Only `name` and `metric` are required, so a user's table that shares a
    shipped rule's name changes just the keys it gives.
    """

    name: str
    metric: str
    op: str = ">"
    threshold: float = 0.0
    for_s: float | str = msgspec.field(default=0.0, name="for")
    severity: str = "warning"
    message: str = ""
    match: str = "*"
    exec: str = ""
    webhook: str = ""
    enabled: bool = True


class AlertsSection(_Section):
    """[alerts]: rules evaluated over the data layer, and how a firing alert is told."""

    enabled: bool
    bell: bool
    bell_repeat_s: float
    toast: bool
    evaluate_every_s: float
    rate_window_s: float
    resolved_kept: int
    exec: str
    webhook: str
    hook_timeout_s: float
    webhook_retries: int
    rules: tuple[AlertRuleSpec, ...]


class LoggingSection(_Section):
    """[logging]: level and directory of every program's log file."""

    level: str
    dir: str


class Settings(_Section):
    """Every section of the merged configuration. `keys` maps command names to key lists."""

    endpoints: EndpointsSection
    limits: LimitsSection
    publisher: PublisherSection
    gateway: GatewaySection
    console: ConsoleSection
    network: NetworkSection
    keys: dict[str, str]
    alerts: AlertsSection
    gateways: dict[str, GatewayEntry]
    logging: LoggingSection
