"""The kill switch's first question when several gateways are linked: which one, or ALL.

Nothing is armed here: choosing a scope only opens the guarded dialog for it
(console.ui.screens.kill), which still wants its typed phrase. The selected
gateway is highlighted first, ALL when every gateway is shown.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList, Static
from textual.widgets.option_list import Option

ALL = "*all*"


class KillScopeScreen(ModalScreen[str | None]):
    """Pick the kill switch's scope; dismisses with a gateway name, ALL, or None."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]
    DEFAULT_CSS = """
    KillScopeScreen { align: center middle; }
    KillScopeScreen > #scope-dialog {
        width: 94%; max-width: 96; height: auto; max-height: 100%;
        border: thick $error; background: $surface; padding: 0 1;
    }
    KillScopeScreen #scope-title { text-style: bold; color: $error; }
    KillScopeScreen OptionList { height: auto; max-height: 12; margin: 1 0; }
    """

    def __init__(self, choices: Sequence[tuple[str, str]], selected: str | None) -> None:
        """`choices`: (gateway name, one line about it), in order."""
        super().__init__()
        self._choices = list(choices)
        self._selected = selected

    def compose(self) -> ComposeResult:
        options = [Option(f"{name}  {about}", id=name) for name, about in self._choices]
        options.append(Option(f"ALL {len(self._choices)} gateways", id=ALL))
        with Vertical(id="scope-dialog"):
            yield Label("KILL SWITCH: which gateway?", id="scope-title")
            yield OptionList(*options, id="scopes")
            yield Static("Enter chooses (you confirm on the next screen); Escape cancels.",
                         markup=False)

    def on_mount(self) -> None:
        scopes = self.query_one(OptionList)
        names = [name for name, _ in self._choices]
        scopes.highlighted = names.index(self._selected) if self._selected in names \
            else len(names)
        scopes.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)
