"""`bench/partition.py`: a silent 30 s partition of the publisher's and the gateway's paths.

    python -m bench.partition [--partition-s 30] [--backoff-s 30] [--json OUT]

A publisher and a gateway run as the project ships them; the console's data
layer exactly as the console runs it (the ingest process and the gateway link
process, with the defaults of config.toml) reaches both through a
`PartitionRelay` each. Once ticks flow and the gateway is UP, both relays
black-hole their path at once (no RST, no FIN:
what a switch, VPN or firewall that loses the path does) for `--partition-s`,
then restore it. Connections that lived through the partition move again only
after `--backoff-s`, as TCP's retransmission backoff would have them.

Measured, from the console's side (what the screen shows each frame):
- feed STALE after the partition began, gateway DOWN after it began;
- gateway UP again and ticks on screen again after the path returned;
- the `late` ticks and the latency p50 of the first second back (a stale
  backlog shown as current would show here).

Prints one table and, with `--json`, writes the figures. Exit 0 when every
goal of the partition row in docs/reliability.md was met, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.partition_relay import PartitionRelay
from console.feed.process import IngestProcess
from console.model import (
    CONN_HEARTBEAT_TIMEOUT,
    FEED_DOWN,
    FEED_OK,
    FEED_STALE,
    GW_DOWN,
    GW_UP,
)
from services.runtime.config import load_config
from services.runtime.launcher import ServiceProcess, spawn

ANY_PORT = "tcp://127.0.0.1:*"
FRAME_S = 0.05  # the console's frame period at 20 fps
GOALS = {"stale_s": 3.0, "down_s": 3.0, "up_again_s": 1.0, "ticks_again_s": 3.0}


def host_port(endpoint: str) -> tuple[str, int]:
    host, port = endpoint.removeprefix("tcp://").rsplit(":", 1)
    return host, int(port)


class Screen:
    """What the console would paint each frame: feed row, tick count, gateway state."""

    def __init__(self, ingest: IngestProcess, link: Any) -> None:
        self.ingest = ingest
        self.link = link
        self.ticks = 0
        self.feed: Any = None
        self.late = 0
        self.p50_us: float | None = None

    def frame(self) -> None:
        update = self.ingest.drain()
        self.ticks += update.pending
        if update.feeds:
            self.feed = update.feeds[0]
            self.late = self.feed.late
            self.p50_us = self.feed.latency_p50_us

    def gateway(self) -> str:
        return str(self.link.status().state)


def watch(screen: Screen, checks: dict[str, Callable[[], bool]], timeout: float,
          *, until_all: bool = True) -> dict[str, float | None]:
    """Paint frames for up to `timeout` s; the first time (s from now) each check held."""
    start = time.monotonic()
    seen: dict[str, float | None] = dict.fromkeys(checks)
    while time.monotonic() - start < timeout:
        screen.frame()
        now = time.monotonic() - start
        for name, check in checks.items():
            if seen[name] is None and check():
                seen[name] = now
        if until_all and all(value is not None for value in seen.values()):
            break
        time.sleep(FRAME_S)
    return seen


def run(partition_s: float, backoff_s: float, workdir: Path) -> dict[str, Any]:
    from console.cli.run import make_gateway_client

    config = load_config(use_user_file=False)
    services: list[ServiceProcess] = []
    relays: list[PartitionRelay] = []
    ingest: IngestProcess | None = None
    link: Any = None
    try:
        publisher = spawn("publisher", ["publisher", "--bind", ANY_PORT, "--rate", "200"],
                          log_path=workdir / "publisher.log", timeout=30)
        services.append(publisher)
        gateway = spawn("gateway", ["gateway", "--bind", ANY_PORT, "--pub-bind", ANY_PORT,
                                    "--state-dir", str(workdir / "gw")],
                        log_path=workdir / "gateway.log", timeout=30)
        services.append(gateway)
        feed_relay = PartitionRelay(host_port(publisher.endpoints["pub"]), backoff_s=backoff_s)
        gw_relay = PartitionRelay(host_port(gateway.endpoints["cmd"]), backoff_s=backoff_s)
        relays += [feed_relay, gw_relay]
        ingest = IngestProcess([feed_relay.endpoint], config=config)
        ingest.start()
        link = make_gateway_client(gw_relay.endpoint, config)
        link.start()
        screen = Screen(ingest, link)
        calm = watch(screen, {"calm": lambda: screen.feed is not None
                              and screen.feed.state == FEED_OK and screen.gateway() == GW_UP
                              and screen.ticks > 100}, 60)
        if calm["calm"] is None:
            raise RuntimeError("no ticks or no gateway before the partition")

        for relay in relays:
            relay.partition()
        lost = watch(screen, {
            "stale_s": lambda: screen.feed.state in (FEED_STALE, FEED_DOWN),
            "down_s": lambda: screen.gateway() == GW_DOWN,
            "heartbeat_timeout_s": lambda: screen.feed.connection == CONN_HEARTBEAT_TIMEOUT,
        }, partition_s, until_all=False)
        shown = screen.feed.connection
        ticks_at_heal = screen.ticks
        late_at_heal = screen.late
        for relay in relays:
            relay.heal()
        back = watch(screen, {
            "up_again_s": lambda: screen.gateway() == GW_UP,
            "ticks_again_s": lambda: screen.ticks > ticks_at_heal,
            "feed_ok_s": lambda: screen.feed.state == FEED_OK,
        }, backoff_s + 10)
        watch(screen, {}, 1.5, until_all=False)  # the first per-second sample after the return
        return {
            "partition_s": partition_s,
            "backoff_s": backoff_s,
            **lost,
            "connection_at_heal": shown,
            **back,
            "late_after_return": screen.late - late_at_heal,
            "latency_p50_us_after_return": screen.p50_us,
        }
    finally:
        if link is not None:
            link.stop()
        if ingest is not None:
            ingest.stop()
        for relay in relays:
            relay.close()
        for service in services:
            service.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--partition-s", type=float, default=30.0)
    parser.add_argument("--backoff-s", type=float, default=30.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if args.partition_s <= 0 or args.backoff_s < 0:
        parser.error("--partition-s must be > 0 and --backoff-s >= 0")
    with tempfile.TemporaryDirectory(prefix="tc-partition-") as tmp:
        result = run(args.partition_s, args.backoff_s, Path(tmp))
    met = all(result[key] is not None and result[key] <= goal for key, goal in GOALS.items())
    result["goals_met"] = met
    for key, value in result.items():
        goal = GOALS.get(key)
        shown = f"{value:.2f}" if isinstance(value, float) else str(value)
        print(f"{key:30} {shown:>12}" + (f"   goal <= {goal:.1f}" if goal else ""))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
