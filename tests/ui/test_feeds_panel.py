"""The feeds panel reads at a glance: a dropped socket with fresh ticks is one state."""

from __future__ import annotations

from collections.abc import Callable

from msgpack import packb
from rich.text import Text
from textual.app import App, ComposeResult
from textual.strip import Strip
from textual.widgets import Static

from console.feed.book import FeedBook
from console.model import (
    CONN_CONNECTED,
    CONN_DISCONNECTED,
    FEED_OK,
    FEED_STALE,
    FrameUpdate,
)
from console.ui.app import TradeConsole
from console.ui.fixtures import FEED_ENDPOINTS, FrozenSource, build_frozen_book
from console.ui.widgets.feeds_panel import FeedsPanel
from services.runtime.config import load_config
from tests.ui.test_app import pilot_test, until
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


class FlowingSource(FrozenSource):
    """The frozen book with one more tick before every drain: the feed never goes quiet,
    so the panels stay on their slower under-load pace."""

    def __init__(self, book: FeedBook) -> None:
        super().__init__(book)
        self.book = book
        self.drains = 0
        self.before_drain: Callable[[], None] | None = None

    def drain(self) -> FrameUpdate:
        self.drains += 1
        if self.before_drain is not None:
            self.before_drain()
        self.book.on_frame(0, b"EURUSD.IDEALPRO", packb({
            "symbol": "EURUSD", "exchange": "IDEALPRO", "vt_symbol": "EURUSD.IDEALPRO",
            "last_price": 1.08 + self.drains / 10_000}))
        return self.book.drain()


def _feed_line(content: str, endpoint: str) -> str:
    return next(line for line in content.splitlines() if endpoint in line)


@pilot_test
async def test_a_feed_that_drops_shows_in_the_next_frame_while_ticks_flow() -> None:
    """Counters repaint at most every PANEL_INTERVAL_NS while ticks flow; a feed's
    connection or state is no counter. The app's clock stands still here, so the
    panels' next slot never comes: only the change itself can bring it on screen."""
    book, _ = build_frozen_book(symbols=6, ticks=60, seed=1)
    source = FlowingSource(book)
    config = load_config(use_user_file=False, env={}, overrides={"console.fps": 20})
    app = TradeConsole(config, source=source, clock_ns=lambda: 10**12, freeze_gc=False)
    dropped = FEED_ENDPOINTS[1]
    async with app.run_test(size=(120, 30)) as pilot:
        panel = app.query_one(FeedsPanel)
        await until(pilot, lambda: source.drains > 3 and dropped in str(panel.content),
                    what="the feeds panel")
        assert _feed_line(str(panel.content), dropped).split()[1] == "connected"
        painted: list[str] = []

        def drop() -> None:
            book.set_connection(1, CONN_DISCONNECTED)
            # The next drain comes after the frame that drained the drop has painted.
            source.before_drain = lambda: painted.append(str(panel.content))

        source.before_drain = drop
        await until(pilot, lambda: painted, what="the frame after the drop")
        assert _feed_line(painted[0], dropped).split()[1] in ("disconnected", "reconnecting")
        assert _feed_line(painted[0], FEED_ENDPOINTS[0]).split()[1] == "connected"
