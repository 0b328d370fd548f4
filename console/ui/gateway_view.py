"""The app's side of the gateway: polls out, replies in, notices for what matters.

A mixin of `TradeConsole` (console.ui.app). Replies come back on the gateway
client's thread and are posted to the app as messages (a few per second at
most); what they mean for the trading state is decided in console.link.trading.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual.message import Message

from console.link.trading import POLLED_ACTIONS, TradingState
from console.model import GatewayLink, Reply
from console.ui.screens.guarded import GuardedReply
from services.protocol import GET_STATUS, HEARTBEAT, KILL_SWITCH, RESUME_TRADING


class PollReplied(Message):
    """A GET_* poll or a heartbeat came back (posted from the gateway client's thread)."""

    def __init__(self, action: str, reply: Reply) -> None:
        super().__init__()
        self.action = action
        self.reply = reply


class GatewayView:
    """Polling the gateway, taking its replies and saying what they mean."""

    # Provided by TradeConsole.
    gateway: GatewayLink | None
    trading: TradingState
    last_heartbeat: Reply | None
    _clock_ns: Callable[[], int]
    post_message: Callable[[Message], bool]
    notify: Callable[..., None]

    @property
    def trading_state(self) -> str | None:
        return self.trading.state

    @property
    def incident_id(self) -> str | None:
        return self.trading.incident_id

    def _poll_gateway(self) -> None:
        for action in POLLED_ACTIONS:
            self._request_poll(action)

    def _request_poll(self, action: str) -> None:
        """Send a read request unless the same one is still in flight."""
        if self.gateway is None or not self.trading.start_poll(action):
            return
        self.gateway.request(action, on_reply=self._reply_poster(action))

    def _send_heartbeat(self) -> None:
        assert self.gateway is not None
        self.gateway.request(HEARTBEAT, on_reply=self._reply_poster(HEARTBEAT))

    def _reply_poster(self, action: str) -> Callable[[Reply], None]:
        def post(reply: Reply) -> None:  # runs on the gateway client's thread
            self.post_message(PollReplied(action, reply))
        return post

    def on_poll_replied(self, message: PollReplied) -> None:
        action, reply = message.action, message.reply
        if action == HEARTBEAT:
            self._show_heartbeat(reply)
            return
        if self.trading.take_poll_reply(action, reply, self._clock_ns()):
            self._request_poll(GET_STATUS)  # fetch the incident id and reason

    def on_guarded_reply(self, message: GuardedReply) -> None:
        reply = message.reply
        if not reply.ok:
            return
        if self.trading.take_guarded_reply(message.action, reply, message.payload):
            self._request_poll(GET_STATUS)
        data: dict[str, Any] = reply.data if isinstance(reply.data, dict) else {}
        if message.action == KILL_SWITCH:
            self.notify(f"Trading HALTED, incident {data.get('incident_id', '?')}",
                        severity="error", timeout=8)
        elif message.action == RESUME_TRADING:
            self.notify("Trading resumed", timeout=5)
        for action in POLLED_ACTIONS:
            self._request_poll(action)

    def _show_heartbeat(self, reply: Reply) -> None:
        self.last_heartbeat = reply
        if reply.ok and reply.rtt_ms is not None:
            data = reply.data if isinstance(reply.data, dict) else {}
            self.notify(f"Heartbeat RTT {reply.rtt_ms:.2f} ms · {data.get('node', '?')} · "
                        f"{data.get('trading_state', '?')}", title="Gateway", timeout=4)
        elif reply.delivered:
            self.notify(f"Heartbeat answered {reply.status}: {reply.error}", severity="warning")
        else:
            self.notify("Heartbeat not answered: the gateway is DOWN", severity="error",
                        title="Gateway")
