"""Alerts in the console with a real publisher: killed with -9, then restarted on its port.

What a person sees and hears: the toast, the bell (counted), the badge in
the status bar, the Alerts view; `x` acknowledges and the bell stops; the
alert resolves by itself when ticks flow again.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

from textual.widgets import DataTable

from console.model import FEED_DOWN, FEED_OK
from console.ui.app import TradeConsole
from console.ui.fixtures import FrozenSource, build_frozen_book
from console.ui.screens.alerts import AlertsScreen
from console.watch.observation import Observation
from services.runtime.config import load_config
from tests.conftest import ServiceFactory
from tests.ui.test_app import make_app, pilot_test, status_text, until
from tests.watch.test_engine import feed_row

QUICK_STALE = {"alerts.rules": [{"name": "feed-stale", "for": "1s"}],
               "alerts.bell_repeat_s": 1.0}


def alerts_rows(app: Any) -> list[str]:
    table = app.screen.query_one(DataTable)
    return [" ".join(str(cell) for cell in table.get_row_at(n)) for n in range(table.row_count)]


@pilot_test
async def test_a_killed_publisher_fires_toast_bell_badge_and_resolves_after_restart(
    services: ServiceFactory, tmp_path: Path
) -> None:
    publisher = services.publisher("--symbols", "4", "--rate", "50")
    endpoint = publisher.endpoints["pub"]
    app = make_app([endpoint], tmp_path, **QUICK_STALE)
    async with app.run_test(size=(160, 45)) as pilot:
        await until(pilot, lambda: "feeds 1/1 OK" in status_text(app), what="feed OK")
        assert "ALERT" not in status_text(app)
        publisher.signal(signal.SIGKILL)
        await until(pilot, lambda: "▲ 1 ALERT CRIT" in status_text(app), 20.0,
                    what="the alert badge")
        assert any(f"feed {endpoint} is" in notice for notice in app.notices)  # the toast
        assert app.bells_rung >= 1
        await until(pilot, lambda: app.bells_rung >= 2, 10.0, what="the bell again (unacked)")

        await pilot.press("a")
        assert isinstance(app.screen, AlertsScreen)
        rows = alerts_rows(app)
        assert len(rows) == 1 and rows[0].startswith("CRIT FIRING ")
        assert rows[0].endswith(" feed-stale") and f"feed {endpoint} is DOWN" in rows[0]
        await pilot.press("x")
        await until(pilot, lambda: "FIRING ack" in alerts_rows(app)[0], what="acknowledged")
        assert "▲ 1 ALERT CRIT ack" in status_text(app)
        rung = app.bells_rung
        evaluations = app.alert_watch.engine.evaluations
        await until(pilot, lambda: app.alert_watch.engine.evaluations >= evaluations + 3,
                    what="three more evaluations")
        assert app.bells_rung == rung          # acknowledged: no more bells

        services.start("publisher", "--bind", endpoint, "--symbols", "4", "--rate", "50")
        await until(pilot, lambda: "resolved" in alerts_rows(app)[0], 20.0,
                    what="resolved in the Alerts view")
        assert "ALERT" not in status_text(app)
        await pilot.press("escape")
        assert not isinstance(app.screen, AlertsScreen)


@pilot_test
async def test_quiet_never_rings_and_x_outside_the_view_only_points_to_it(
    services: ServiceFactory, tmp_path: Path
) -> None:
    publisher = services.publisher("--symbols", "2", "--rate", "20")
    app = make_app([publisher.endpoints["pub"]], tmp_path, quiet=True, **QUICK_STALE)
    rung: list[float] = []
    app.bell = lambda: rung.append(1.0)  # type: ignore[method-assign]  # every way to ring
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: "feeds 1/1 OK" in status_text(app), what="feed OK")
        publisher.signal(signal.SIGKILL)
        await until(pilot, lambda: "1 ALERT" in status_text(app), 20.0, what="the badge")
        evaluations = app.alert_watch.engine.evaluations
        await until(pilot, lambda: app.alert_watch.engine.evaluations >= evaluations + 3,
                    what="longer than bell_repeat_s")
        await pilot.press("x")
        await until(pilot, lambda: "Open the Alerts view" in app.notices[-1], what="the hint")
        assert rung == [] and app.bells_rung == 0


@pilot_test
async def test_a_flapping_alert_is_listed_once_per_occurrence(tmp_path: Path) -> None:
    """Fired, resolved, fired again: two rows, the firing one on top, x acks that one."""
    book, clock = build_frozen_book(symbols=4, ticks=40, seed=1)
    config = load_config(use_user_file=False, env={}, overrides={
        "alerts.rules": [{"name": "feed-stale", "for": 0}], "alerts.toast": False})
    app = TradeConsole(config, source=FrozenSource(book), clock_ns=clock.mono_ns,
                       wall_ns=clock.wall_ns, freeze_gc=False)
    async with app.run_test(size=(120, 30)) as pilot:
        start = clock.mono_ns() / 1e9   # the app's own evaluations stay behind these
        for step, state in enumerate((FEED_DOWN, FEED_OK, FEED_DOWN), start=1):
            app.alert_watch.observe(Observation(now_s=start + step / 10,
                                                feeds=[feed_row(state)]))
        await pilot.press("a")
        rows = alerts_rows(app)
        assert [row.split()[:2] for row in rows] == [["CRIT", "FIRING"], ["CRIT", "resolved"]]
        await pilot.press("x")
        await until(pilot, lambda: alerts_rows(app)[0].startswith("CRIT FIRING ack"),
                    what="the firing one acknowledged")
        assert alerts_rows(app)[1].startswith("CRIT resolved")
