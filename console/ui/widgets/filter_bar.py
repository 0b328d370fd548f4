"""The `/` filter bar: an input plus a one-line verdict (matches, or the error).

An invalid regex is reported here and the table keeps its previous filter,
so a half-typed pattern never blanks the screen.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Input, Label

from console.ui.filtering import FilterError, SymbolFilter, parse_filter

PLACEHOLDER = "/ filter: text  *glob?  re:regex  !invert"


class FilterBar(Horizontal):
    """Input + status; posts `FilterBar.Changed` with each valid filter."""

    DEFAULT_CSS = """
    FilterBar { height: 1; background: $surface; }
    FilterBar > Input {
        width: 1fr; height: 1; border: none; padding: 0 1; background: $surface;
    }
    FilterBar > Input:focus { background: $boost; }
    FilterBar > Label { width: auto; max-width: 60%; height: 1; padding: 0 1;
        color: $text-muted; }
    FilterBar > Label.-error { color: $tc-bad; text-style: bold; }
    """

    class Changed(Message):
        """A new valid filter (also the empty one)."""

        def __init__(self, symbol_filter: SymbolFilter) -> None:
            super().__init__()
            self.symbol_filter = symbol_filter

    class Done(Message):
        """The user pressed Enter in the filter: go back to the table."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._error: str | None = None

    def compose(self) -> ComposeResult:
        yield Input(placeholder=PLACEHOLDER, id="filter-input", compact=True)
        yield Label("", id="filter-status")

    @property
    def text(self) -> str:
        return self.query_one(Input).value

    @property
    def error(self) -> str | None:
        """The current input's error (invalid regex), or None."""
        return self._error

    def focus_input(self) -> None:
        self.query_one(Input).focus()

    def clear(self) -> None:
        self.query_one(Input).value = ""

    def set_summary(self, shown: int, total: int) -> None:
        if self._error is None:
            label = self.query_one(Label)
            text = f"{shown:,}/{total:,}"
            old = str(label.content)
            if old != text:
                label.update(text, layout=len(old) != len(text))

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        label = self.query_one(Label)
        try:
            symbol_filter = parse_filter(event.value)
        except FilterError as exc:
            self._error = str(exc)
            label.update(self._error)
            label.add_class("-error")
            return
        self._error = None
        label.remove_class("-error")
        self.post_message(self.Changed(symbol_filter))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.post_message(self.Done())
