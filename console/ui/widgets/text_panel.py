"""A Static that re-renders only when the data it shows has changed, and then
only the lines that changed.

Panels are fed every frame; building Rich text each time would be wasted
work. Each panel computes a cheap signature of what it shows and only
rebuilds on a difference (or after a theme change, which clears it). A new
text with as many lines as before repaints only the lines that differ: a
counter ticking in one line of the feeds panel used to send every line
through Textual's content pipeline and its per-line style pass (about 0.5 ms
for the four lines of one feed).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.geometry import Region
from textual.strip import Strip
from textual.visual import Visual, visualize
from textual.widgets import Static

from console.ui.direct_lines import WritesDirectly
from console.ui.widgets import paint_yield


class TextPanel(WritesDirectly, Static):
    """Static with `show(signature, build)` and theme-aware component styles.

    Lines never wrap (they end in an ellipsis), so the line count of the text
    is the height and a reflow is needed only when it changes; and each line
    renders alone exactly as it would within the whole text.
    """

    DEFAULT_CSS = """
    TextPanel { text-wrap: nowrap; text-overflow: ellipsis; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__("", id=id, classes=classes)
        self._signature: Hashable | None = object()
        self._styles: dict[str, Style] = {}
        self._text: Text | None = None
        self._text_visual: Visual | None = None
        self._line_texts: list[Text] = []
        self._line_strips: dict[int, tuple[Text, int, Strip]] = {}

    @property
    def content(self) -> Any:
        """The text shown (what `show` built last)."""
        return self._text if self._text is not None else super().content

    @content.setter
    def content(self, content: Any) -> None:
        self.update(content)

    @property
    def visual(self) -> Visual:
        if self._text is None:
            return super().visual
        if self._text_visual is None:
            self._text_visual = visualize(self, self._text, markup=False)
        return self._text_visual

    def show(self, signature: Hashable, build: Callable[[], Text]) -> bool:
        """Rebuild and update when the signature differs; True when it did."""
        if signature == self._signature:
            return False
        self._signature = signature
        self.update(build())
        return True

    def update(self, content: Any = "", *, layout: bool = True) -> None:
        """Show `content`. A Text with as many lines as the one shown repaints only
        the lines that changed and asks for no new layout: counters ticking every
        frame must not reflow the screen."""
        if not isinstance(content, Text):
            self._text = None
            self._line_texts = []
            super().update(content, layout=layout)
            return
        old = self._line_texts
        new = list(content.split("\n", allow_blank=True))
        # A line that did not change stays the same object: its strip stays cached.
        self._line_texts = [old[y] if y < len(old) and _same(old[y], line) else line
                            for y, line in enumerate(new)]
        first = self._text is None
        self._text, self._text_visual = content, None
        if first or len(new) != len(old):
            self.refresh(layout=True)
            return
        width = self.size.width
        changed = [Region(0, y, width, 1) for y, line in enumerate(self._line_texts)
                   if line is not old[y]]
        if changed and width:
            self.refresh(*changed)
        elif changed:
            self.refresh()

    def render_line(self, y: int) -> Strip:
        """Line `y` as Textual renders it, rendered again only when its text or the
        width changed. With a text selection, or content aligned other than to the
        top left (a line alone would be placed differently), the whole text renders,
        as Static does."""
        paint_yield()
        lines = self._line_texts
        styles = self.styles
        if self._text is None or self.text_selection is not None \
                or styles.content_align_horizontal != "left" \
                or styles.content_align_vertical != "top":
            return super().render_line(y)
        width = self.size.width
        if y >= len(lines):
            return Strip.blank(width, self.visual_style.rich_style)
        line = lines[y]
        cached = self._line_strips.get(y)
        if cached is not None and cached[0] is line and cached[1] == width:
            return cached[2]
        strips = Visual.to_strips(self, visualize(self, line, markup=False), width, 1,
                                  self.visual_style)
        strip = _at_line(strips[0], y) if strips else \
            Strip.blank(width, self.visual_style.rich_style)
        self._line_strips[y] = (line, width, strip)
        return strip

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._signature = object()  # styles changed: rebuild on the next frame
        self._styles.clear()
        self._line_strips = {}

    def style_of(self, component: str) -> Style:
        """A component's style; plain until the stylesheet has reached this widget
        (the style update that follows clears the signature and repaints). Kept
        until the styles change: resolving one walks the DOM."""
        style = self._styles.get(component)
        if style is None:
            style = self._styles[component] = self.get_component_rich_style(
                component, partial=True, default=Style())
        return style


def _same(old: Text, new: Text) -> bool:
    """Whether two lines render alike (Text's own == ignores its base style)."""
    return (old == new and old.style == new.style and old.justify == new.justify
            and old.overflow == new.overflow and old.no_wrap == new.no_wrap)


def _at_line(strip: Strip, y: int) -> Strip:
    """A line rendered alone, its cells' offsets (for text selection) moved to line `y`."""
    if not y:
        return strip
    segments = []
    for segment in strip:
        style = segment.style
        offset = style.meta.get("offset") if style is not None else None
        if offset is not None:
            style = style + Style.from_meta({"offset": (offset[0], y)})
            segment = Segment(segment.text, style, segment.control)
        segments.append(segment)
    return Strip(segments, strip.cell_length)
