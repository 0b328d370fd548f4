"""The guarded kill switch: shows its scope, asks for a mode, a reason and `KILL`.

The scope is the positions and working orders from the latest GET_POSITIONS /
GET_ORDERS (with their age), so the operator sees what will be cancelled or
closed before arming it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Input, Label, RadioButton, RadioSet, Static

from console.model import GatewayLink, Reply
from console.ui.widgets.gateway_panel import describe_order, describe_position
from services.protocol import FLATTEN, HALT, KILL_SWITCH, new_req_id

from .guarded import GuardedScreen

DEFAULT_REASON = "kill switch fired from the console"
SCOPE_LISTED = 8


class KillSwitchScreen(GuardedScreen):
    """KILL_SWITCH with mode FLATTEN (cancel and close) or HALT (cancel only)."""

    ACTION: ClassVar[str] = KILL_SWITCH
    PHRASE: ClassVar[str] = "KILL"
    TITLE_TEXT: ClassVar[str] = "KILL SWITCH: halt trading"
    FIRE_LABEL: ClassVar[str] = "Fire"

    def __init__(
        self,
        gateway: GatewayLink,
        positions: list[dict[str, Any]],
        orders: list[dict[str, Any]],
        scope_age: str,
        req_id_factory: Callable[[], str] = new_req_id,
    ) -> None:
        super().__init__(gateway, req_id_factory)
        self._positions = positions
        self._orders = orders
        self._scope_age = scope_age

    def compose_body(self) -> ComposeResult:
        lines = [f"Scope (from the gateway, {self._scope_age}):",
                 f"  {len(self._orders)} working order(s) will be cancelled"]
        lines += [f"    {describe_order(o)}" for o in self._orders[:SCOPE_LISTED]]
        if len(self._orders) > SCOPE_LISTED:
            lines.append(f"    … {len(self._orders) - SCOPE_LISTED} more")
        lines.append(f"  {len(self._positions)} position(s) will be closed with FLATTEN "
                     "(kept with HALT)")
        lines += [f"    {describe_position(p)}" for p in self._positions[:SCOPE_LISTED]]
        if len(self._positions) > SCOPE_LISTED:
            lines.append(f"    … {len(self._positions) - SCOPE_LISTED} more")
        lines.append("Trading stays HALTED (even across a gateway restart) until resumed.")
        yield Static("\n".join(lines), id="scope", markup=False)

    def compose_fields(self) -> ComposeResult:
        with Horizontal(classes="field"):
            yield Label("Mode")
            with RadioSet(id="mode", compact=True):
                yield RadioButton(mode_label(FLATTEN, True), value=True, id="mode-flatten")
                yield RadioButton(mode_label(HALT, False), id="mode-halt")
        with Horizontal(classes="field"):
            yield Label("Reason")
            yield Input(placeholder=f"audit log; default: {DEFAULT_REASON}", id="reason",
                        compact=True)

    @property
    def mode(self) -> str:
        return HALT if self.query_one("#mode-halt", RadioButton).value else FLATTEN

    def on_radio_set_changed(self, event: RadioSet.Changed) -> None:
        """Spell the choice out: under NO_COLOR both radio glyphs look the same."""
        selected = self.mode
        for mode, button_id in ((FLATTEN, "#mode-flatten"), (HALT, "#mode-halt")):
            self.query_one(button_id, RadioButton).label = mode_label(mode, mode == selected)

    def payload(self) -> dict[str, Any]:
        reason = self.query_one("#reason", Input).value.strip() or DEFAULT_REASON
        return {"reason": reason, "mode": self.mode}

    def describe_success(self, reply: Reply) -> str:
        data = reply.data if isinstance(reply.data, dict) else {}
        cancelled = data.get("cancelled_orders") or []
        closed = data.get("closed_positions") or []
        rtt = f" in {reply.rtt_ms:.1f} ms" if reply.rtt_ms is not None else ""
        parts = [f"HALTED · incident {data.get('incident_id', '?')}{rtt}",
                 f"cancelled {data.get('cancelled_count', _count(cancelled))} order(s)"
                 f"{_names(cancelled, 'order_id')}",
                 f"closed {data.get('closed_count', _count(closed))} position(s)"
                 f"{_names(closed, 'vt_symbol')}"]
        return "\n".join(parts)


MODE_TEXT = {FLATTEN: "FLATTEN: cancel orders and close every position",
             HALT: "HALT: cancel orders, keep positions"}


def mode_label(mode: str, selected: bool) -> str:
    """`(●) FLATTEN: …` or `( ) HALT: …`: which one fires, readable without colour."""
    return f"{'(●)' if selected else '( )'} {MODE_TEXT[mode]}"


def _count(items: Any) -> int:
    return len(items) if isinstance(items, list) else int(items or 0)


def _names(items: Any, key: str) -> str:
    if not isinstance(items, list) or not items:
        return ""
    names = [str(i.get(key, i)) if isinstance(i, dict) else str(i) for i in items[:6]]
    more = f" … +{len(items) - 6}" if len(items) > 6 else ""
    return ": " + ", ".join(names) + more
