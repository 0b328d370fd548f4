"""Sparklines over the last two minutes: message rates, latency, heartbeat RTT.

Fed once per second (when `FrameUpdate.history` is set) and on each new
heartbeat, never per tick. When ticks arrived late (a backlog after a
partition), a "late" row appears under the latency rows and marks the burst
in the same seconds; it goes again once the burst has left the window.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical

from console.model import History
from console.ui import format as fmt
from console.ui.direct_lines import DirectLabel
from console.ui.widgets.spark_bars import SparkBars


def short_endpoint(endpoint: str) -> str:
    """'tcp://127.0.0.1:5556' -> ':5556'; other forms keep their tail."""
    if endpoint.startswith("tcp://") and ":" in endpoint[6:]:
        return ":" + endpoint.rsplit(":", 1)[1]
    return endpoint[-12:]


class SparkRow(Horizontal):
    """A label with the latest value, then the sparkline.

    The row holds its two children rather than querying for them: a row
    mounted as a feed appears can get its Mount event after shutdown has
    already pruned its children, and painting must not depend on them being
    in the DOM.
    """

    DEFAULT_CSS = """
    SparkRow { height: 1; }
    SparkRow > Label { width: 20; height: 1; color: $text-muted; }
    SparkRow > SparkBars { width: 1fr; height: 1; }
    """

    def __init__(self, title: str, formatter: Callable[[float | None], str],
                 *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._title = title
        self._formatter = formatter
        self._data: tuple[float, ...] = ()
        self._label = ""
        self._label_widget = DirectLabel(f"{title} {fmt.MISSING}")
        self._bars = SparkBars()

    def compose(self) -> ComposeResult:
        yield self._label_widget
        yield self._bars

    @property
    def values(self) -> tuple[float, ...]:
        return self._data

    def set_data(self, data: Sequence[float]) -> None:
        values = tuple(data)
        if values == self._data:
            return
        self._data = values
        if self.is_mounted:
            self._paint()

    def on_mount(self) -> None:
        self._paint()

    def _paint(self) -> None:
        """Repaint what changed: the label's text, the bars (SparkBars decides)."""
        latest = self._data[-1] if self._data else None
        label = f"{self._title} {self._formatter(latest)}"
        if label != self._label:
            self._label = label
            self._label_widget.update(label, layout=False)
        self._bars.set_data(self._data)


class ChartsPanel(Vertical):
    """Rate (total and per feed), latency p50/p99 and gateway RTT sparklines."""

    DEFAULT_CSS = """
    ChartsPanel { height: auto; padding: 0 1; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        # The rows held, not queried: a query walks the DOM and parses a selector,
        # and show_history runs every second (six queries were 0.4 ms of its 1.4 ms).
        self._rate = SparkRow("rate", fmt.rate, id="spark-rate")
        self._p50 = SparkRow("lat p50", fmt.latency_us, id="spark-p50")
        self._p99 = SparkRow("lat p99", fmt.latency_us, id="spark-p99")
        self._rtt = SparkRow("gw rtt", fmt.milliseconds, id="spark-rtt")
        self._feed_rows: list[SparkRow] = []
        self._late: SparkRow | None = None

    def compose(self) -> ComposeResult:
        yield self._rate
        yield self._p50
        yield self._p99
        yield self._rtt

    def show_history(self, history: History) -> None:
        self._rate.set_data(history.rate_total)
        for index, (endpoint, rates) in enumerate(sorted(history.rate_by_feed.items())):
            if index < len(self._feed_rows):
                row = self._feed_rows[index]
            else:
                row = SparkRow(f" {short_endpoint(endpoint)}", fmt.rate,
                               id=f"spark-feed-{index}")
                self.mount(row, after=self._feed_rows[-1] if self._feed_rows else self._rate)
                self._feed_rows.append(row)
            row.set_data(rates)
        self._p50.set_data(history.latency_p50_us)
        self._p99.set_data(history.latency_p99_us)
        self._show_late(history.late_per_s)

    def _show_late(self, late_per_s: Sequence[int]) -> None:
        row = self._late
        if not any(late_per_s):
            if row is not None:
                self._late = None
                row.remove()
            return
        if row is None:
            row = self._late = SparkRow("late/s", fmt.rate, id="spark-late")
            self.mount(row, after=self._p99)
        row.set_data([float(n) for n in late_per_s])

    def show_rtt(self, rtt_history_ms: Sequence[float]) -> None:
        self._rtt.set_data(rtt_history_ms)
