"""The feeds panel reads at a glance: a dropped socket with fresh ticks is one state."""

from __future__ import annotations

from rich.text import Text
from textual.app import App, ComposeResult
from textual.strip import Strip
from textual.widgets import Static

from console.model import CONN_CONNECTED, CONN_DISCONNECTED, FEED_OK, FEED_STALE
from console.ui.widgets.feeds_panel import FeedsPanel
from tests.ui.test_app import pilot_test
from tests.watch.test_engine import feed_row
from themes import THEME_VARIABLE_DEFAULTS


class PanelApp(App[None]):
    def get_theme_variable_defaults(self) -> dict[str, str]:
        return dict(THEME_VARIABLE_DEFAULTS)   # the console's own colour variables

    def compose(self) -> ComposeResult:
        yield FeedsPanel(id="feeds")


@pilot_test
async def test_a_dropped_socket_with_fresh_ticks_reads_reconnecting() -> None:
    app = PanelApp()
    async with app.run_test(size=(100, 10)) as pilot:
        panel = app.query_one(FeedsPanel)
        row = feed_row(FEED_OK)
        row.connection = CONN_DISCONNECTED
        panel.show_feeds([row])
        await pilot.pause()
        first_line = str(panel.content).splitlines()[0]
        assert first_line.split()[1:] == ["reconnecting"]
        row.connection, row.state = CONN_CONNECTED, FEED_OK
        panel.show_feeds([row])
        await pilot.pause()
        assert str(panel.content).splitlines()[0].split()[1:] == ["connected", "OK"]
        row.connection, row.state = CONN_DISCONNECTED, FEED_STALE
        panel.show_feeds([row])
        await pilot.pause()
        assert str(panel.content).splitlines()[0].split()[1:] == ["disconnected", "STALE"]


def _static_lines(panel: FeedsPanel) -> list[list[tuple[str, object]]]:
    """The panel's lines as Static itself renders the whole text."""
    return [[(seg.text, seg.style) for seg in Static.render_line(panel, y)]
            for y in range(panel.size.height)]


@pilot_test
async def test_panel_lines_render_as_static_does_and_only_changed_lines_again() -> None:
    app = PanelApp()
    async with app.run_test(size=(60, 10)) as pilot:
        panel = app.query_one(FeedsPanel)
        row = feed_row(FEED_OK, telemetry={"queue_depth": 3, "queue_capacity": 10,
                                           "dropped_total": 0})
        row.endpoint = "tcp://a-very-long-endpoint-name.example.net:5555"  # cut with an ellipsis
        panel.show_feeds([row])
        await pilot.pause()
        before = [panel.render_line(y) for y in range(panel.size.height)]
        assert [[(seg.text, seg.style) for seg in strip] for strip in before] \
            == _static_lines(panel)
        asked: list[int] = []
        render_line = panel.render_line

        def spy(y: int) -> Strip:
            asked.append(y)
            return render_line(y)

        panel.render_line = spy  # type: ignore[method-assign]
        row.received += 1  # the counter line changes, the others do not
        panel.show_feeds([row])
        await pilot.pause()
        assert asked == [1], "the screen asked for more than the changed line"
        del panel.render_line
        after = [panel.render_line(y) for y in range(panel.size.height)]
        assert [[(seg.text, seg.style) for seg in strip] for strip in after] \
            == _static_lines(panel)
        changed = [y for y, (old, new) in enumerate(zip(before, after, strict=True))
                   if old is not new]
        assert changed == [1]
        assert "rx 101" in after[1].text


@pilot_test
async def test_a_line_whose_only_change_is_its_style_is_repainted() -> None:
    app = PanelApp()
    async with app.run_test(size=(40, 6)) as pilot:
        panel = app.query_one(FeedsPanel)
        panel.update(Text("same words", style="red"))
        await pilot.pause()
        panel.update(Text("same words", style="green"))  # Text's == ignores its style
        await pilot.pause()
        colours = {seg.style.color.name for seg in panel.render_line(0)
                   if seg.text.strip() and seg.style is not None and seg.style.color}
        assert colours == {"#008000"}  # green, as Textual resolves it
