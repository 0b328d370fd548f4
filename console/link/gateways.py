"""Which gateways a command talks to, each with a name: `[gateways.NAME]` and `--gateway`.

A desk links to several gateways (a futures account, a crypto account, a
paper one), and a person halts one of them, or all, by name. The names come
from `[gateways.NAME]` tables, or from `--gateway NAME=EP` on the command line
(repeatable); a bare `--gateway EP` keeps working and is named after its
endpoint until its node answers; `--gateway NAME` picks a configured gateway.
With no `--gateway` the configured tables are used, and without tables the
single `[endpoints] gateway`. Bad input is one line and exit 2: two gateways
with one name, `NAME=` with no endpoint, a name the config does not have.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from services.runtime.config import NAME_CHARS, Config
from services.runtime.errors import UsageError

NONE = "none"


@dataclass(frozen=True, slots=True)
class GatewaySpec:
    """One gateway: its name, command endpoint, keys, and whether it is read-only."""

    name: str
    endpoint: str
    keys_dir: str | None = None
    readonly: bool = False
    label: str = ""

    @property
    def short(self) -> str:
        """What the status bar shows: the label, else the name."""
        return self.label or self.name


def endpoint_name(endpoint: str) -> str:
    """A bare endpoint's name until its node is known: 'tcp://10.0.0.5:5555' -> '10.0.0.5:5555'."""
    return endpoint.split("://", 1)[-1] or endpoint


def resolve_gateways(config: Config, values: Sequence[str] | None, *,
                     keys_dir: str | None = None) -> list[GatewaySpec]:
    """The gateways `--gateway` VALUES name (None: the config's); [] for 'none'."""
    configured = _configured(config, keys_dir)
    if not values:
        if configured:
            return list(configured.values())
        endpoint = config.settings.endpoints.gateway.strip()
        if endpoint.lower() in ("", NONE):
            return []
        return [GatewaySpec(endpoint_name(endpoint), endpoint, keys_dir,
                            config.settings.console.readonly)]
    if len(values) == 1 and values[0].strip().lower() == NONE:
        return []
    chosen: list[GatewaySpec] = []
    for value in values:
        spec = _one(value.strip(), configured, keys_dir, config.settings.console.readonly)
        clash = next((g for g in chosen if g.name == spec.name), None)
        if clash is not None:
            raise UsageError(f"--gateway: two gateways named {spec.name!r} ({clash.endpoint} and "
                             f"{spec.endpoint}); give each its own NAME=EP")
        chosen.append(spec)
    return chosen


def pick(gateways: Sequence[GatewaySpec], name: str) -> GatewaySpec:
    """The gateway called `name` (UsageError naming the known ones otherwise)."""
    for gateway in gateways:
        if gateway.name == name:
            return gateway
    known = ", ".join(g.name for g in gateways) or "none"
    raise UsageError(f"no gateway named {name!r} (known: {known})")


def _configured(config: Config, keys_dir: str | None) -> dict[str, GatewaySpec]:
    readonly = config.settings.console.readonly
    return {
        name: GatewaySpec(name, entry.endpoint.strip(), entry.keys or keys_dir,
                          entry.readonly or readonly, entry.label)
        for name, entry in config.settings.gateways.items()
    }


def _one(value: str, configured: dict[str, GatewaySpec], keys_dir: str | None,
         readonly: bool) -> GatewaySpec:
    if "=" in value and "://" not in value.split("=", 1)[0]:
        name, _, endpoint = value.partition("=")
        name, endpoint = name.strip(), endpoint.strip()
        if not name or not set(name) <= NAME_CHARS:
            raise UsageError(f"--gateway {value}: NAME may use letters, digits, '_', '.' and "
                             f"'-' only, e.g. paper-a=tcp://127.0.0.1:5555")
        if not endpoint:
            raise UsageError(f"--gateway {value}: no endpoint after '='; give "
                             f"{name}=tcp://HOST:PORT")
        known = configured.get(name)
        if known is not None:  # a configured gateway moved: keep its keys and flags
            return GatewaySpec(name, endpoint, known.keys_dir, known.readonly, known.label)
        return GatewaySpec(name, endpoint, keys_dir, readonly)
    if "://" in value or value.startswith(("ipc:", "inproc:")):
        return GatewaySpec(endpoint_name(value), value, keys_dir, readonly)
    if not value:
        raise UsageError("--gateway needs a NAME, NAME=EP or an endpoint such as "
                         "tcp://127.0.0.1:5555")
    if value in configured:
        return configured[value]
    known = ", ".join(configured) or "none configured"
    raise UsageError(f"--gateway {value}: no gateway named {value!r} in the config "
                     f"(known: {known}); give NAME=EP or an endpoint")
