"""Spark rows mounted as feeds appear survive a shutdown that overtakes them."""

from __future__ import annotations

from textual.app import App, ComposeResult

from console.model import History
from console.ui import format as fmt
from console.ui.widgets.charts import ChartsPanel, SparkRow
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
