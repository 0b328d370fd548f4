"""Small terminals: one line of view names that replaces the side-by-side panels.

Below ~100 columns the feeds, gateway, telemetry and chart panels do not fit
next to the ticks; they become views chosen here (click a name, or `v`).
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import events
from textual.message import Message

from console.ui.widgets.text_panel import TextPanel

VIEWS: tuple[tuple[str, str], ...] = (
    ("ticks", "Ticks"), ("feeds", "Feeds"), ("gateway", "Gateway"),
    ("telemetry", "Telemetry"), ("charts", "Charts"),
)


class ViewBar(TextPanel):
    """`Ticks | Feeds | Gateway | Telemetry | Charts`, the active one highlighted."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {"view-bar--active", "view-bar--key"}
    DEFAULT_CSS = """
    ViewBar { height: 1; background: $panel; display: none; }
    ViewBar.-shown { display: block; }
    ViewBar > .view-bar--active { background: $primary; color: $background; text-style: bold; }
    ViewBar > .view-bar--key { color: $text-muted; }
    """

    class Selected(Message):
        def __init__(self, view: str) -> None:
            super().__init__()
            self.view = view

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._active = "ticks"
        self._spans: list[tuple[int, int, str]] = []

    @property
    def active(self) -> str:
        return self._active

    def set_active(self, view: str) -> None:
        self._active = view
        self.paint()

    def paint(self) -> None:
        self.show(self._active, self._build)

    def _build(self) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis")
        self._spans = []
        for n, (key, title) in enumerate(VIEWS):
            if n:
                text.append("│", self.style_of("view-bar--key"))
            start = text.cell_len
            text.append(f" {title} ",
                        self.style_of("view-bar--active") if key == self._active else "")
            self._spans.append((start, text.cell_len, key))
        text.append("  v: next view", self.style_of("view-bar--key"))
        return text

    def on_mount(self) -> None:
        self.paint()

    def on_click(self, event: events.Click) -> None:
        for start, end, key in self._spans:
            if start <= event.x < end:
                self.post_message(self.Selected(key))
                return
