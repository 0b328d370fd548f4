"""A silent network partition between the publisher and the console heals in seconds.

The publisher is reached through `PartitionRelay`, which black-holes the path
without closing anything (as a switch or VPN that loses it) and, when the
path is back, lets connections that lived through the partition move again
only after TCP's retransmission backoff (30 s here). Without ZMTP heartbeats
the feed would stay `connected STALE` for those 30 s; with them the dead
connection is closed within the heartbeat timeout and a new one carries
ticks as soon as the path returns.
"""

from __future__ import annotations

import time

from bench.partition_relay import PartitionRelay
from console.feed.ingest import Ingest
from console.model import CONN_CONNECTED, CONN_HEARTBEAT_TIMEOUT, FEED_DOWN, FEED_OK, FEED_STALE
from tests.conftest import ServiceFactory, wait_until
from tests.feed.test_faults import feed_row, total_ticks

STALE_AFTER_S = 2.5
# The goals: STALE within 3 s of the partition, ticks back within 3 s of its end.
STALE_GOAL_S = 3.0
RECOVERY_GOAL_S = 3.0
# Heartbeat timeout (3 s) plus slack for a busy machine.
TIMEOUT_DEADLINE = 8.0
DEADLINE = 20.0


def test_ticks_return_within_seconds_of_a_silent_partition_ending(
    services: ServiceFactory, ingests: list[Ingest], relays: list[PartitionRelay]
) -> None:
    publisher = services.publisher("--rate", "200", "--symbols", "5")
    host, port = publisher.endpoints["pub"].removeprefix("tcp://").rsplit(":", 1)
    relay = PartitionRelay((host, int(port)), backoff_s=30.0)
    relays.append(relay)
    ingest = Ingest([relay.endpoint], stale_after_s=STALE_AFTER_S)
    ingest.start()
    ingests.append(ingest)
    wait_until(lambda: feed_row(ingest).state == FEED_OK and total_ticks(ingest) > 50,
               DEADLINE, message="ticks flowing through the relay")

    relay.partition()
    began = time.monotonic()
    wait_until(lambda: feed_row(ingest).state in (FEED_STALE, FEED_DOWN), STALE_GOAL_S + 0.5,
               message="the feed shown STALE")
    stale_after = time.monotonic() - began
    wait_until(lambda: feed_row(ingest).connection == CONN_HEARTBEAT_TIMEOUT, TIMEOUT_DEADLINE,
               message="disconnected (heartbeat timeout)")
    # libzmq reconnects at once; that attempt goes nowhere while the path is lost.
    accepted = relay.accepted
    wait_until(lambda: relay.accepted > accepted, TIMEOUT_DEADLINE,
               message="a reconnect attempt during the partition")
    assert feed_row(ingest).connection == CONN_HEARTBEAT_TIMEOUT  # TCP alone proves nothing

    ticks_at_heal = total_ticks(ingest)
    relay.heal()
    healed = time.monotonic()
    wait_until(lambda: total_ticks(ingest) > ticks_at_heal + 10, RECOVERY_GOAL_S,
               message=f"ticks back within {RECOVERY_GOAL_S} s of the path returning")
    recovered_after = time.monotonic() - healed
    row = wait_until(lambda: (r := feed_row(ingest)).state == FEED_OK and r, DEADLINE,
                     message="feed OK")
    assert row.connection == CONN_CONNECTED
    # The dead connection's queue died with it: nothing stale arrives as current.
    assert row.late == 0
    print(f"partition: STALE after {stale_after:.2f} s, ticks back {recovered_after:.2f} s "
          f"after the path returned")
