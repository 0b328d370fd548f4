"""The terminal driver with `OutputDiff` in its write path.

Textual picks a driver class per platform; `diffing(driver_class)` returns a
subclass whose `write` passes each write through the diff, so frames send
only the cells that changed. The model is forgotten when the terminal is
resized or the application mode restarts (after a suspend), since the
terminal's contents then no longer match it.
"""

from __future__ import annotations

from typing import Any

from textual import events
from textual.driver import Driver
from textual.message import Message

from console.ui.output_diff import OutputDiff


class _DiffingDriver:
    """Mixin over a Textual driver; see the module docstring."""

    _output_diff: OutputDiff
    _forget_pending: bool

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._output_diff = OutputDiff()
        self._forget_pending = False

    @property
    def output_diff(self) -> OutputDiff:
        return self._output_diff

    def forget_screen(self) -> None:
        """The terminal's contents are unknown (resize, redraw): write the next frame in full.

        Safe from any thread: the model itself is only touched by `write`.
        """
        self._forget_pending = True

    def write(self, data: str) -> None:
        diff = self._output_diff
        if self._forget_pending:
            self._forget_pending = False
            diff.reset()
        data = diff.feed(data)
        if data:
            super().write(data)  # type: ignore[misc]

    def process_message(self, message: Message) -> None:
        if isinstance(message, events.Resize):
            self.forget_screen()
        super().process_message(message)  # type: ignore[misc]

    def start_application_mode(self) -> None:
        self.forget_screen()
        super().start_application_mode()  # type: ignore[misc]


def diffing(driver_class: type[Driver]) -> type[Driver]:
    """`driver_class` with `OutputDiff` in its write path."""
    return type(f"Diffing{driver_class.__name__}", (_DiffingDriver, driver_class), {})
