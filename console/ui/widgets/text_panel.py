"""A Static that re-renders only when the data it shows has changed.

Panels are fed every frame; building Rich text each time would be wasted
work. Each panel computes a cheap signature of what it shows and only
rebuilds on a difference (or after a theme change, which clears it).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable

from rich.style import Style
from rich.text import Text
from textual.strip import Strip
from textual.widgets import Static

from console.ui.widgets import paint_yield


class TextPanel(Static):
    """Static with `show(signature, build)` and theme-aware component styles.

    Lines never wrap (they end in an ellipsis), so the line count of the text
    is the height and a reflow is needed only when it changes.
    """

    DEFAULT_CSS = """
    TextPanel { text-wrap: nowrap; text-overflow: ellipsis; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__("", id=id, classes=classes)
        self._signature: Hashable | None = object()
        self._lines = -1
        self._styles: dict[str, Style] = {}

    def render_line(self, y: int) -> Strip:
        paint_yield()
        return super().render_line(y)

    def show(self, signature: Hashable, build: Callable[[], Text]) -> bool:
        """Rebuild and update when the signature differs; True when it did.

        A new layout (a reflow of the whole screen) is asked for only when the
        number of lines changed: counters ticking every frame must not reflow.
        """
        if signature == self._signature:
            return False
        self._signature = signature
        text = build()
        lines = text.plain.count("\n") + 1
        self.update(text, layout=lines != self._lines)
        self._lines = lines
        return True

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._signature = object()  # styles changed: rebuild on the next frame
        self._styles.clear()

    def style_of(self, component: str) -> Style:
        """A component's style; plain until the stylesheet has reached this widget
        (the style update that follows clears the signature and repaints). Kept
        until the styles change: resolving one walks the DOM."""
        style = self._styles.get(component)
        if style is None:
            style = self._styles[component] = self.get_component_rich_style(
                component, partial=True, default=Style())
        return style
