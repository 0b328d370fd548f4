"""Telemetry: the latest health of every node, and its logs behind a level filter.

Records arrive a few per second at most (health once a second per node, logs
when something happens), so a bounded list re-rendered on change is enough.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from console.model import TelemetryRecord
from console.ui.widgets.text_panel import TextPanel

LEVELS = ("ALL", "INFO", "WARNING", "ERROR")
_RANK = {"DEBUG": 10, "INFO": 20, "EVENT": 20, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}
KEEP_LOGS = 500


def level_passes(level: str, minimum: str) -> bool:
    """Whether a record of `level` is shown under the filter `minimum` (ALL shows all)."""
    if minimum == "ALL":
        return True
    return _RANK.get(level.upper(), 20) >= _RANK[minimum]


def clock_text(ts_ns: int) -> str:
    return time.strftime("%H:%M:%S", time.localtime(ts_ns / 1e9))


class HealthLine(TextPanel):
    COMPONENT_CLASSES: ClassVar[set[str]] = {"health--ok", "health--warn", "health--bad"}
    DEFAULT_CSS = """
    HealthLine { height: auto; }
    HealthLine > .health--ok { color: $tc-ok; text-style: bold; }
    HealthLine > .health--warn { color: $tc-late; text-style: bold; }
    HealthLine > .health--bad { color: $tc-bad; text-style: bold; }
    """

    def show_health(self, health: dict[str, tuple[str, str]]) -> None:
        signature = tuple(sorted(health.items()))
        self.show(signature, lambda: self._build(health))

    def _build(self, health: dict[str, tuple[str, str]]) -> Text:
        """One line per node. The detail is shown only for a problem: it is sent
        with a status change, so for a node that stayed OK it may be old news."""
        text = Text()
        if not health:
            text.append("health: no node has reported yet")
        for n, (node, (status, detail)) in enumerate(sorted(health.items())):
            if n:
                text.append("\n")
            style = {"OK": "health--ok", "DEGRADED": "health--warn"}.get(status, "health--bad")
            text.append(f"{node} ")
            text.append(status, self.style_of(style))
            if detail and status != "OK":
                text.append(f" ({detail})")
        return text


class TelemetryPane(Vertical):
    """Health per node on top, filtered logs and gateway events below."""

    DEFAULT_CSS = """
    TelemetryPane { height: 1fr; min-height: 5; padding: 0 1; }
    TelemetryPane > #log-title { height: 1; text-style: bold; }
    TelemetryPane > #log-lines {
        height: 1fr; color: $text-muted; text-wrap: nowrap; text-overflow: ellipsis;
    }
    """

    def __init__(self, *, id: str | None = None,
                 clock_text: Callable[[int], str] = clock_text) -> None:
        super().__init__(id=id)
        self._records: deque[TelemetryRecord] = deque(maxlen=KEEP_LOGS)
        self._health: dict[str, tuple[str, str]] = {}
        self._level = "ALL"
        self._clock_text = clock_text
        self._dirty = True

    def compose(self) -> ComposeResult:
        yield HealthLine(id="health")
        yield Static("", id="log-title", markup=False)
        yield Static("", id="log-lines", markup=False)

    @property
    def level(self) -> str:
        return self._level

    def cycle_level(self) -> str:
        self._level = LEVELS[(LEVELS.index(self._level) + 1) % len(LEVELS)]
        self._dirty = True
        self.refresh_view()
        return self._level

    def visible_messages(self) -> list[str]:
        """The log lines that pass the current level filter, oldest first."""
        return [self._line(r) for r in self._records if level_passes(r.level, self._level)]

    def add(self, records: Iterable[TelemetryRecord]) -> None:
        for record in records:
            if record.kind == "health":
                self._health[record.node] = (record.level, record.message)
            elif record.kind != "metrics":
                self._records.append(record)
                self._dirty = True

    def add_event(self, topic: str, payload: dict[str, Any], ts_ns: int) -> None:
        summary = ", ".join(f"{k}={v}" for k, v in list(payload.items())[:6]
                            if k not in ("ts_ns", "v"))
        self._records.append(TelemetryRecord(
            node=str(payload.get("node", "gateway")), kind="event", level="EVENT",
            message=f"{topic} {summary}", ts_ns=ts_ns))
        self._dirty = True

    def refresh_view(self) -> None:
        """Repaint after add()/add_event(); cheap when nothing changed."""
        self.query_one(HealthLine).show_health(self._health)
        if not self._dirty:
            return
        self._dirty = False
        lines = self.visible_messages()
        total = len(self._records)
        self.query_one("#log-title", Static).update(
            f"logs [{self._level}] {len(lines)}/{total}  (l: level filter)", layout=False)
        height = max(1, self.query_one("#log-lines").size.height or 20)
        self.query_one("#log-lines", Static).update(
            Text("\n".join(lines[-height:]), no_wrap=True, overflow="ellipsis"), layout=False)

    def on_resize(self) -> None:
        self._dirty = True
        self.refresh_view()

    def _line(self, record: TelemetryRecord) -> str:
        return f"{self._clock_text(record.ts_ns)} {record.level:<7} {record.node} {record.message}"
