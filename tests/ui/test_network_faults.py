"""What the screen shows when the network misbehaves: a silent partition, a late backlog.

Real services and real sockets: the partition goes through `PartitionRelay`
(packets black-holed, nothing closed), the late backlog comes from a PUB in
the test that stamps its ticks seconds in the past.
"""

from __future__ import annotations

from pathlib import Path

from bench.partition_relay import PartitionRelay
from console.model import CONN_HEARTBEAT_TIMEOUT
from console.ui.widgets.charts import SparkRow
from console.ui.widgets.feeds_panel import FeedsPanel
from console.ui.widgets.tick_table import TickTable
from tests.conftest import Feed, ServiceFactory
from tests.ui.test_app import make_app, pilot_test, status_text, until


def feeds_text(app: object) -> str:
    return str(app.query_one(FeedsPanel).content)  # type: ignore[attr-defined]


@pilot_test
async def test_a_partition_shows_heartbeat_timeout_then_heals(
    services: ServiceFactory, relays: list[PartitionRelay], tmp_path: Path
) -> None:
    publisher = services.publisher("--symbols", "4", "--rate", "100")
    host, port = publisher.endpoints["pub"].removeprefix("tcp://").rsplit(":", 1)
    relay = PartitionRelay((host, int(port)), backoff_s=60.0)
    relays.append(relay)
    app = make_app([relay.endpoint], tmp_path)
    async with app.run_test(size=(160, 45)) as pilot:
        await until(pilot, lambda: "feeds 1/1 OK" in status_text(app), what="feed OK")
        relay.partition()
        await until(pilot, lambda: CONN_HEARTBEAT_TIMEOUT in feeds_text(app), 10.0,
                    what="disconnected (heartbeat timeout) on screen")
        assert "feeds 0/1 OK" in status_text(app)
        relay.heal()
        # The old connection would move again only after 60 s: back within
        # seconds means the heartbeat replaced it.
        await until(pilot, lambda: "feeds 1/1 OK" in status_text(app), 5.0,
                    what="feed OK again")
        assert CONN_HEARTBEAT_TIMEOUT not in feeds_text(app)
        assert "connected" in feeds_text(app)


@pilot_test
async def test_a_late_backlog_is_counted_and_marked_not_shown_as_fresh(
    feed: Feed, tmp_path: Path
) -> None:
    app = make_app([feed.endpoint], tmp_path)
    async with app.run_test(size=(160, 45)) as pilot:
        feed.wait_subscribed()
        table = app.query_one(TickTable)
        p50 = app.query_one("#spark-p50", SparkRow)

        def fresh_tick() -> bool:
            feed.tick("AAA.X", 1.0)
            return bool(p50.values)  # a per-second sample: the feed's latency baseline

        await until(pilot, fresh_tick, what="a latency sample")
        assert not app.query("#spark-late")
        for n in range(5):
            feed.tick("BBB.X", 2.0 + n, age_s=30.0)
        await until(pilot, lambda: "late 5" in feeds_text(app), what="late 5 in the feeds panel")
        await until(pilot, lambda: table.row_count == 2, what="the late symbol's row")
        await until(pilot, lambda: app.query("#spark-late"), what="the late row under latency")
        late = app.query_one("#spark-late", SparkRow)
        assert sum(late.values) == 5
