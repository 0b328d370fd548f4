"""The app's side of the gateway: polls out, replies in, notices for what matters.

A mixin of `TradeConsole` (console.ui.app). Replies come back on the gateway
client's thread and are posted to the app as messages (a few per second at
most), each naming its gateway; what they mean for that gateway's trading
state is decided in console.link.trading.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual.message import Message

from console.link.fleet import Fleet, LinkedGateway
from console.link.trading import POLLED_ACTIONS, TradingState
from console.model import Reply
from console.ui.screens.guarded import GuardedReply
from services.protocol import GET_STATUS, HEARTBEAT, KILL_SWITCH, RESUME_TRADING


class PollReplied(Message):
    """A GET_* poll or a heartbeat came back (posted from the gateway client's thread)."""

    def __init__(self, gateway: str, action: str, reply: Reply) -> None:
        super().__init__()
        self.gateway = gateway
        self.action = action
        self.reply = reply


class GatewayView:
    """Polling every gateway, taking their replies and saying what they mean."""

    # Provided by TradeConsole.
    fleet: Fleet
    trading: TradingState
    last_heartbeat: Reply | None
    _clock_ns: Callable[[], int]
    post_message: Callable[[Message], bool]
    notify: Callable[..., None]
    refresh_status: Callable[[], None]           # console.ui.frame_loop
    refresh_gateway_panel: Callable[[], None]

    @property
    def trading_state(self) -> str | None:
        return self.trading.state

    @property
    def incident_id(self) -> str | None:
        return self.trading.incident_id

    def _poll_gateway(self) -> None:
        for action in POLLED_ACTIONS:
            self._request_poll(action)

    def _request_poll(self, action: str, gateway: LinkedGateway | None = None) -> None:
        """Send a read request to `gateway` (None: every one) unless it is still in flight."""
        for linked in (self.fleet if gateway is None else (gateway,)):
            if linked.trading.start_poll(action):
                linked.link.request(action, on_reply=self._reply_poster(linked.name, action))

    def _send_heartbeat(self) -> None:
        """A heartbeat to the selected gateway, or to every one while all are shown."""
        for linked in self.fleet.in_view():
            linked.link.request(HEARTBEAT, on_reply=self._reply_poster(linked.name, HEARTBEAT))

    def _reply_poster(self, gateway: str, action: str) -> Callable[[Reply], None]:
        def post(reply: Reply) -> None:  # runs on the gateway client's thread
            self.post_message(PollReplied(gateway, action, reply))
        return post

    def on_poll_replied(self, message: PollReplied) -> None:
        linked = self.fleet.get(message.gateway)
        if linked is None:
            return
        action, reply = message.action, message.reply
        if action == HEARTBEAT:
            self._show_heartbeat(linked, reply)
            return
        if linked.trading.take_poll_reply(action, reply, self._clock_ns()):
            self._request_poll(GET_STATUS, linked)  # fetch the incident id and reason
        self._show_reply()

    def on_guarded_reply(self, message: GuardedReply) -> None:
        reply = message.reply
        linked = self.fleet.get(message.gateway) if message.gateway else self.fleet.current
        if not reply.ok or linked is None:
            return
        if linked.trading.take_guarded_reply(message.action, reply, message.payload):
            self._request_poll(GET_STATUS, linked)
        self._show_reply()
        data: dict[str, Any] = reply.data if isinstance(reply.data, dict) else {}
        where = f"{linked.name}: " if self.fleet.several else ""
        if message.action == KILL_SWITCH:
            self.notify(f"{where}Trading HALTED, incident {data.get('incident_id', '?')}",
                        severity="error", timeout=8)
        elif message.action == RESUME_TRADING:
            self.notify(f"{where}Trading resumed", timeout=5)
        for action in POLLED_ACTIONS:
            self._request_poll(action, linked)

    def _show_reply(self) -> None:
        """What a reply changed (trading state, the banner, positions) shows now: a quiet
        feed's next frame may be half a second away (console.ui.frame_pace)."""
        self.refresh_status()
        self.refresh_gateway_panel()

    def _show_heartbeat(self, linked: LinkedGateway, reply: Reply) -> None:
        self.last_heartbeat = reply
        title = f"Gateway {linked.name}" if self.fleet.several else "Gateway"
        if reply.ok and reply.rtt_ms is not None:
            data = reply.data if isinstance(reply.data, dict) else {}
            self.notify(f"Heartbeat RTT {reply.rtt_ms:.2f} ms · {data.get('node', '?')} · "
                        f"{data.get('trading_state', '?')}", title=title, timeout=4)
        elif reply.delivered:
            self.notify(f"Heartbeat answered {reply.status}: {reply.error}", severity="warning",
                        title=title)
        else:
            self.notify("Heartbeat not answered: the gateway is DOWN", severity="error",
                        title=title)
