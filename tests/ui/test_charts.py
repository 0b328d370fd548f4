"""Spark rows mounted as feeds appear survive a shutdown that overtakes them."""

from __future__ import annotations

import random

from textual.app import App, ComposeResult

from console.model import History
from console.ui import format as fmt
from console.ui.widgets.charts import ChartsPanel, SparkRow
from console.ui.widgets.spark_bars import BARS, bar_heights
from tests.ui.test_app import pilot_test
from themes import THEME_VARIABLE_DEFAULTS


class ExitingApp(App[None]):
    """Mounts rows and exits in the same handler, so pruning meets queued Mount events."""

    def get_theme_variable_defaults(self) -> dict[str, str]:
        return dict(THEME_VARIABLE_DEFAULTS)

    def on_mount(self) -> None:
        for index in range(40):
            self.mount(SparkRow(f"row {index}", fmt.rate, id=f"row-{index}"))
        self.exit()


@pilot_test
async def test_rows_mounted_as_the_app_exits_do_not_crash_it() -> None:
    for _ in range(5):
        app = ExitingApp()
        async with app.run_test(size=(80, 24)):
            pass
        assert app.return_code == 0


class ChartsApp(App[None]):
    def get_theme_variable_defaults(self) -> dict[str, str]:
        return dict(THEME_VARIABLE_DEFAULTS)

    def compose(self) -> ComposeResult:
        yield ChartsPanel()


@pilot_test
async def test_a_row_per_feed_appears_with_its_latest_rate() -> None:
    app = ChartsApp()
    async with app.run_test(size=(80, 24)) as pilot:
        history = History()
        history.rate_total = [10.0, 30.0]
        history.rate_by_feed = {"tcp://127.0.0.1:5556": [10.0, 30.0]}
        app.query_one(ChartsPanel).show_history(history)
        await pilot.pause()
        row = app.query_one("#spark-feed-0", SparkRow)
        assert row.values == (10.0, 30.0)
        assert ":5556" in str(row.query_one("Label").render())


def _bars_from_textuals_buckets(data: list[float], width: int) -> tuple[int, ...]:
    """Heights over the buckets Textual's Sparkline partitions `data` into (Fractions)."""
    from textual.renderables.sparkline import Sparkline

    buckets = tuple(Sparkline._buckets(list(data), num_buckets=width))
    low, extent = min(data), (max(data) - min(data)) or 1
    step = len(buckets) / width
    return tuple(int((max(buckets[int(column * step)]) - low) / extent * (len(BARS) - 1))
                 for column in range(width))


def test_spark_bars_use_the_buckets_of_textuals_sparkline() -> None:
    """Integer buckets equal Textual's Fraction ones, for data longer, shorter and as
    long as the line."""
    rng = random.Random(7)
    for n in (2, 3, 7, 59, 60, 61, 119, 120, 121, 500):
        for width in (1, 5, 29, 60, 61, 97):
            data = [rng.uniform(0, 1e4) for _ in range(n)]
            if n == 7:  # a flat stretch and integers: ties between buckets
                data = [5.0, 5.0, 1.0, 5.0, 9.0, 9.0, 0.0]
            assert bar_heights(data, width) == _bars_from_textuals_buckets(data, width), \
                (n, width)
