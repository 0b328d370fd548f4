"""What an ingest is tuned by, resolved once for the thread and the child process alike.

Ingest (a thread) and IngestProcess (a child) take the same keywords; an
explicit keyword wins over `[console]`/`[limits]` from the configuration,
which wins over the defaults here (used when there is no configuration, as in
tests and benchmarks). Both classes resolve through `IngestSettings.of`, so
the two cannot read the configuration differently.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

import msgspec

from services.protocol import DEFAULT_LIMITS, Limits
from services.runtime.network import DEFAULT_NETWORK, NetworkOptions

if TYPE_CHECKING:
    from services.runtime.config import Config

DEFAULT_RCVHWM = 1_000_000
DEFAULT_MAX_SYMBOLS = 50_000
DEFAULT_STALE_AFTER_S = 2.5
DEFAULT_HISTORY_S = 120
# The child's niceness: under a flat-out feed it is CPU-bound, and the kernel
# then gives the UI the CPU first (key to frame p50 fell from ~40 ms to ~3 ms
# in bench/run.py's load phase, with the same ingest rate).
DEFAULT_NICE = 10


@dataclass(frozen=True, slots=True)
class IngestSettings:
    """The ingest's tunables (see config.toml's [console], [limits] and [network])."""

    rcvhwm: int = DEFAULT_RCVHWM
    limits: Limits = DEFAULT_LIMITS
    max_symbols: int = DEFAULT_MAX_SYMBOLS
    stale_after_s: float = DEFAULT_STALE_AFTER_S
    history_s: int = DEFAULT_HISTORY_S
    nice: int = DEFAULT_NICE
    network: NetworkOptions = DEFAULT_NETWORK

    @classmethod
    def of(
        cls,
        config: Config | None,
        *,
        rcvhwm: int | None = None,
        limits: Limits | None = None,
        max_symbols: int | None = None,
        stale_after_s: float | None = None,
        history_s: int | None = None,
        network: NetworkOptions | None = None,
    ) -> IngestSettings:
        """The configuration's values (or the defaults), overridden by explicit keywords."""
        base = cls()
        if config is not None:
            console = config.settings.console
            base = cls(
                rcvhwm=console.rcvhwm,
                limits=Limits(**msgspec.structs.asdict(config.settings.limits)),
                max_symbols=console.max_symbols,
                stale_after_s=console.stale_after_s,
                history_s=console.history_s,
                nice=console.ingest_nice,
                network=config.network,
            )
        explicit = {"rcvhwm": rcvhwm, "limits": limits, "max_symbols": max_symbols,
                    "stale_after_s": stale_after_s, "history_s": history_s,
                    "network": network}
        return dataclasses.replace(
            base, **{name: value for name, value in explicit.items() if value is not None})
