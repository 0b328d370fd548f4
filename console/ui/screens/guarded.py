"""A modal for a dangerous gateway command, armed only by typing a phrase.

The action button stays disabled until the confirmation input holds exactly
the phrase (`KILL`, `RESUME`); Enter with anything else does nothing; Escape
cancels. The request id is made once per dialog and gateway, so Retry after
a lost reply re-sends the *same* request and the gateway acts on it at most
once. A dialog may act on several gateways at once (the kill switch's ALL
scope): each gets its own request, all are sent together, each outcome is
shown on its own line, and Retry re-sends only those that were not delivered.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
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
    """Posted to the app when a guarded command got its final answer from one gateway."""

    def __init__(self, action: str, reply: Reply, payload: dict[str, Any],
                 gateway: str = "") -> None:
        super().__init__()
        self.action = action
        self.reply = reply
        self.payload = payload
        self.gateway = gateway


@dataclass(eq=False, slots=True)
class Target:
    """One gateway a guarded dialog acts on, its request id and its outcome so far."""

    name: str
    link: GatewayLink
    req_id: str = ""
    state: str = IDLE
    reply: Reply | None = None


class GuardedScreen(ModalScreen[None]):
    """Base dialog: subclasses supply the title, body, payload and outcome text."""

    ACTION: ClassVar[str] = ""
    PHRASE: ClassVar[str] = ""
    TITLE_TEXT: ClassVar[str] = ""
    FIRE_LABEL: ClassVar[str] = "Fire"

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    class ReplyArrived(Message):
        """The gateway client delivered the outcome (from its own thread)."""

        def __init__(self, reply: Reply, gateway: str = "") -> None:
            super().__init__()
            self.reply = reply
            self.gateway = gateway

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

    def __init__(self, gateway: GatewayLink | Sequence[Target],
                 req_id_factory: Callable[[], str] = new_req_id,
                 phrase: str | None = None) -> None:
        super().__init__()
        targets = [Target("", gateway)] if not isinstance(gateway, Sequence) else list(gateway)
        for target in targets:
            target.req_id = target.req_id or req_id_factory()
        self.targets = targets
        self.phrase = phrase or self.PHRASE
        self.title_text = self.TITLE_TEXT
        self.last_reply: Reply | None = None
        self._sent_payload: dict[str, Any] | None = None
        self._started = False

    @property
    def req_id(self) -> str:
        """The (first) request's id: a retry re-sends it."""
        return self.targets[0].req_id

    @property
    def state(self) -> str:
        """IDLE, SENDING until every gateway answered, then UNDELIVERED if any did not,
        REFUSED if any refused, else DONE."""
        states = {t.state for t in self.targets}
        if not self._started:
            return IDLE
        for state in (SENDING, UNDELIVERED, REFUSED):
            if state in states:
                return state
        return DONE

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
            yield Label(self.title_text, id="title")
            with Vertical(id="dialog-body"):
                yield from self.compose_body()
            yield from self.compose_fields()
            with Horizontal(classes="field"):
                yield Label("Confirm")
                yield Input(placeholder=f"type {self.phrase} to arm", id="confirm",
                            compact=True)
            yield Static(f"Type {self.phrase} exactly to enable {self.FIRE_LABEL}; "
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
        return self.query_one("#confirm", Input).value == self.phrase and self.state == IDLE

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
        """Send to every gateway not yet answered (all of them the first time), at once."""
        if self._sent_payload is None:
            self._sent_payload = self.payload()
        payload = self._sent_payload
        first = not self._started
        self._started = True
        self.query_one("#fire", Button).disabled = True
        self.query_one("#retry", Button).set_class(False, "-shown")
        for field in self.query(Input):
            field.disabled = True
        app = self.app
        screen = self
        action = self.ACTION
        for target in self.targets:
            if not first and target.state != UNDELIVERED:
                continue
            target.state = SENDING

            def on_reply(reply: Reply, name: str = target.name) -> None:  # link's thread
                screen.post_message(GuardedScreen.ReplyArrived(reply, name))
                app.post_message(GuardedReply(action, reply, payload, name))

            target.link.request(self.ACTION, payload, req_id=target.req_id, on_reply=on_reply,
                                urgent=True)
        self._show_outcomes()

    def on_guarded_screen_reply_arrived(self, message: GuardedScreen.ReplyArrived) -> None:
        reply = message.reply
        target = next((t for t in self.targets if t.name == message.gateway), self.targets[0])
        target.reply = reply
        self.last_reply = reply
        if not reply.delivered:
            target.state = UNDELIVERED
        else:
            target.state = DONE if reply.ok else REFUSED
        self._show_outcomes()
        state = self.state
        if state == SENDING:
            return
        if state == UNDELIVERED:
            retry = self.query_one("#retry", Button)
            retry.set_class(True, "-shown")
            retry.focus()
            return
        cancel = self.query_one("#cancel", Button)
        cancel.label = "Close"
        cancel.focus()

    def _show_outcomes(self) -> None:
        """One gateway: its outcome as before; several: one line each."""
        if len(self.targets) == 1:
            text, css = self._outcome(self.targets[0])
            self._set_status(text, css)
            return
        lines = []
        for target in self.targets:
            first, *rest = self._outcome(target)[0].splitlines() or [""]
            lines += [f"{target.name}: {first}", *(f"    {line}" for line in rest)]
        state = self.state
        css = None if state == SENDING else ("-ok" if state == DONE else "-bad")
        self._set_status("\n".join(lines), css)

    def _outcome(self, target: Target) -> tuple[str, str | None]:
        reply = target.reply
        if target.state == SENDING or reply is None:
            return f"sending… (request {target.req_id[:8]})", None
        if not reply.delivered and len(self.targets) > 1:
            return (f"NOT DELIVERED (no answer: down?). Retry re-sends request "
                    f"{target.req_id[:8]}; it can never act twice.", "-bad")
        if not reply.delivered:
            return ("NOT DELIVERED: the gateway did not answer (is it down?). Retry re-sends "
                    f"the same request (id {target.req_id[:8]}), so it can never act twice.",
                    "-bad")
        if reply.ok:
            return self.describe_success(reply), "-ok"
        error = reply.error or {}
        return (f"{reply.status}: {error.get('code', '?')} {error.get('message', '')}".strip(),
                "-bad")

    def _set_status(self, text: str, css: str | None) -> None:
        status = self.query_one("#status", Static)
        status.update(text)
        status.set_class(css == "-bad", "-bad")
        status.set_class(css == "-ok", "-ok")

    @property
    def status_text(self) -> str:
        return str(self.query_one("#status", Static).content)
