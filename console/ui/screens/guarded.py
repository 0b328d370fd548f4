"""A modal for a dangerous gateway command, armed only by typing a phrase.

The action button stays disabled until the confirmation input holds exactly
the phrase (`KILL`, `RESUME`); Enter with anything else does nothing; Escape
cancels. The request id is made once per dialog, so Retry after a lost
reply re-sends the *same* request and the gateway acts on it at most once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from console.model import GatewayLink, Reply
from services.protocol import new_req_id

IDLE, SENDING, DONE, UNDELIVERED, REFUSED = "idle", "sending", "done", "undelivered", "refused"


class GuardedReply(Message):
    """Posted to the app when a guarded command got its final answer."""

    def __init__(self, action: str, reply: Reply, payload: dict[str, Any]) -> None:
        super().__init__()
        self.action = action
        self.reply = reply
        self.payload = payload


class GuardedScreen(ModalScreen[None]):
    """Base dialog: subclasses supply the title, body, payload and outcome text."""

    ACTION: ClassVar[str] = ""
    PHRASE: ClassVar[str] = ""
    TITLE_TEXT: ClassVar[str] = ""
    FIRE_LABEL: ClassVar[str] = "Fire"

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    class ReplyArrived(Message):
        """The gateway client delivered the outcome (from its own thread)."""

        def __init__(self, reply: Reply) -> None:
            super().__init__()
            self.reply = reply

    DEFAULT_CSS = """
    GuardedScreen { align: center middle; }
    GuardedScreen > #dialog {
        width: 94%; max-width: 96; height: auto; max-height: 100%;
        border: thick $error; background: $surface; padding: 0 1;
    }
    GuardedScreen #title { width: 1fr; text-style: bold; color: $error; }
    GuardedScreen #dialog-body { height: auto; max-height: 12; margin: 0 0 1 0; }
    GuardedScreen .field { height: auto; margin: 0 0 1 0; }
    GuardedScreen .field > Label { width: 10; text-style: bold; }
    GuardedScreen .field > Input { width: 1fr; background: $boost; }
    GuardedScreen .field > RadioSet { width: 1fr; background: $surface; }
    GuardedScreen #status { height: auto; min-height: 1; margin: 0 0 1 0; }
    GuardedScreen #status.-bad { color: $tc-bad; text-style: bold; }
    GuardedScreen #status.-ok { color: $tc-ok; text-style: bold; }
    GuardedScreen #buttons { height: auto; align-horizontal: right; }
    GuardedScreen #buttons Button { margin: 0 0 0 2; }
    GuardedScreen #retry { display: none; }
    GuardedScreen #retry.-shown { display: block; }
    """

    def __init__(self, gateway: GatewayLink,
                 req_id_factory: Callable[[], str] = new_req_id) -> None:
        super().__init__()
        self._gateway = gateway
        self.req_id = req_id_factory()
        self.state = IDLE
        self.last_reply: Reply | None = None
        self._sent_payload: dict[str, Any] | None = None

    # --- for subclasses --------------------------------------------------------------

    def compose_body(self) -> ComposeResult:
        yield from ()

    def compose_fields(self) -> ComposeResult:
        yield from ()

    def payload(self) -> dict[str, Any]:
        raise NotImplementedError

    def describe_success(self, reply: Reply) -> str:
        return f"{self.ACTION} done"

    # --- layout -------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(self.TITLE_TEXT, id="title")
            with Vertical(id="dialog-body"):
                yield from self.compose_body()
            yield from self.compose_fields()
            with Horizontal(classes="field"):
                yield Label("Confirm")
                yield Input(placeholder=f"type {self.PHRASE} to arm", id="confirm",
                            compact=True)
            yield Static(f"Type {self.PHRASE} exactly to enable {self.FIRE_LABEL}; "
                         "Escape cancels.", id="status", markup=False)
            with Horizontal(id="buttons"):
                yield Button(self.FIRE_LABEL, id="fire", variant="error", disabled=True,
                             compact=True)
                yield Button("Retry", id="retry", variant="warning", compact=True)
                yield Button("Cancel", id="cancel", compact=True)

    def on_mount(self) -> None:
        self.query_one("#confirm", Input).focus()

    @property
    def armed(self) -> bool:
        return self.query_one("#confirm", Input).value == self.PHRASE and self.state == IDLE

    # --- events -------------------------------------------------------------------------

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "confirm":
            self.query_one("#fire", Button).disabled = not self.armed

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.input.id == "confirm":
            if self.armed:
                self._send()
            return
        # Enter in another field moves on to the confirmation, never fires.
        self.query_one("#confirm", Input).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        fire = event.button.id == "fire" and self.armed
        retry = event.button.id == "retry" and self.state == UNDELIVERED
        if fire or retry:
            self._send()
        elif event.button.id == "cancel":
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)

    # --- sending ------------------------------------------------------------------------

    def _send(self) -> None:
        if self._sent_payload is None:
            self._sent_payload = self.payload()
        payload = self._sent_payload
        self.state = SENDING
        self.query_one("#fire", Button).disabled = True
        self.query_one("#retry", Button).set_class(False, "-shown")
        for field in self.query(Input):
            field.disabled = True
        self._set_status(f"sending… (request {self.req_id[:8]})", None)
        app = self.app
        screen = self
        action = self.ACTION

        def on_reply(reply: Reply) -> None:  # runs on the gateway client's thread
            screen.post_message(GuardedScreen.ReplyArrived(reply))
            app.post_message(GuardedReply(action, reply, payload))

        self._gateway.request(self.ACTION, payload, req_id=self.req_id, on_reply=on_reply,
                              urgent=True)

    def on_guarded_screen_reply_arrived(self, message: GuardedScreen.ReplyArrived) -> None:
        reply = message.reply
        self.last_reply = reply
        retry = self.query_one("#retry", Button)
        cancel = self.query_one("#cancel", Button)
        if not reply.delivered:
            self.state = UNDELIVERED
            self._set_status(
                "NOT DELIVERED: the gateway did not answer (is it down?). Retry re-sends the "
                f"same request (id {self.req_id[:8]}), so it can never act twice.", "-bad")
            retry.set_class(True, "-shown")
            retry.focus()
            return
        cancel.label = "Close"
        if reply.ok:
            self.state = DONE
            self._set_status(self.describe_success(reply), "-ok")
        else:
            self.state = REFUSED
            error = reply.error or {}
            self._set_status(
                f"{reply.status}: {error.get('code', '?')} {error.get('message', '')}".strip(),
                "-bad")
        cancel.focus()

    def _set_status(self, text: str, css: str | None) -> None:
        status = self.query_one("#status", Static)
        status.update(text)
        status.set_class(css == "-bad", "-bad")
        status.set_class(css == "-ok", "-ok")

    @property
    def status_text(self) -> str:
        return str(self.query_one("#status", Static).content)
