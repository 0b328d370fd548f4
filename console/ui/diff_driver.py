"""The terminal driver with `OutputDiff` in its write path.

Textual picks a driver class per platform; `diffing(driver_class)` returns a
subclass whose `write` passes each write through the diff, so frames send
only the cells that changed; `put` takes a partial update's cells without
their ANSI (console.ui.clustered_compositor). The model is forgotten when
the terminal is resized or the application mode restarts (after a suspend),
since the terminal's contents then no longer match it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from textual import events
from textual.driver import Driver
from textual.message import Message

from console.ui.output_diff import OutputDiff, Run


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

    def put(self, runs: Sequence[Run]) -> bool:
        """Cells for the next write, put in the model without their ANSI (see
        `OutputDiff.put`). Called where `write` is, on the app's thread."""
        head = self._forget_if_due()
        if head:
            super().write(head)  # type: ignore[misc]
        return self._output_diff.put(runs)

    def write(self, data: str) -> None:
        data = self._forget_if_due() + self._output_diff.feed(data)
        if data:
            super().write(data)  # type: ignore[misc]

    def _forget_if_due(self) -> str:
        """Forget the model if asked to; what was put but not yet written comes first."""
        if not self._forget_pending:
            return ""
        self._forget_pending = False
        diff = self._output_diff
        head = diff.flush()
        diff.reset()
        return head

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
