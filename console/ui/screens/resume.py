"""Resume trading: the incident id (prefilled from the status) and a typed `RESUME`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Input, Label, Static

from console.model import GatewayLink, Reply
from services.protocol import RESUME_TRADING, new_req_id

from .guarded import GuardedScreen, Target

DEFAULT_REASON = "resumed from the console"


class ResumeScreen(GuardedScreen):
    """RESUME_TRADING, which only the halt's incident id releases."""

    ACTION: ClassVar[str] = RESUME_TRADING
    PHRASE: ClassVar[str] = "RESUME"
    TITLE_TEXT: ClassVar[str] = "RESUME TRADING"
    FIRE_LABEL: ClassVar[str] = "Resume"

    def __init__(self, gateway: GatewayLink | Sequence[Target], incident_id: str | None,
                 req_id_factory: Callable[[], str] = new_req_id) -> None:
        super().__init__(gateway, req_id_factory)
        self._incident_id = incident_id or ""

    def compose_body(self) -> ComposeResult:
        yield Static("Trading is released only by the incident id of the halt. Check the "
                     "cause is fixed before resuming.", markup=False)

    def compose_fields(self) -> ComposeResult:
        with Horizontal(classes="field"):
            yield Label("Incident")
            yield Input(self._incident_id, placeholder="incident id", id="incident",
                        compact=True)
        with Horizontal(classes="field"):
            yield Label("Reason")
            yield Input(placeholder=f"audit log; default: {DEFAULT_REASON}", id="reason",
                        compact=True)

    @property
    def armed(self) -> bool:
        return super().armed and bool(self.query_one("#incident", Input).value.strip())

    def payload(self) -> dict[str, Any]:
        return {
            "incident_id": self.query_one("#incident", Input).value.strip(),
            "reason": self.query_one("#reason", Input).value.strip() or DEFAULT_REASON,
        }

    def describe_success(self, reply: Reply) -> str:
        data = reply.data if isinstance(reply.data, dict) else {}
        return f"trading {data.get('trading_state', 'ACTIVE')}"
