"""The guarded kill switch: shows its scope, asks for a mode, a reason and `KILL`.

The scope is the positions and working orders from the latest GET_POSITIONS /
GET_ORDERS (with their age), so the operator sees what will be cancelled or
closed before arming it. With several gateways the scope is one gateway or
ALL of them (console.ui.screens.kill_scope asks first): the preview lists
each gateway's orders and positions, the phrase becomes `KILL ALL`, and every
KILL_SWITCH is sent at once, one outcome line per gateway.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Input, Label, RadioButton, RadioSet, Static

from console.model import GatewayLink, Reply
from console.ui.widgets.gateway_panel import describe_order, describe_position
from services.protocol import FLATTEN, HALT, KILL_SWITCH, new_req_id

from .guarded import GuardedScreen, Target

DEFAULT_REASON = "kill switch fired from the console"
SCOPE_LISTED = 8
ALL_PHRASE = "KILL ALL"


@dataclass(frozen=True, slots=True)
class KillScope:
    """What one gateway's kill would touch, as its latest polls said."""

    name: str
    positions: list[dict[str, Any]]
    orders: list[dict[str, Any]]
    age: str
    note: str = ""   # e.g. "DOWN: last known"


class KillSwitchScreen(GuardedScreen):
    """KILL_SWITCH with mode FLATTEN (cancel and close) or HALT (cancel only)."""

    ACTION: ClassVar[str] = KILL_SWITCH
    PHRASE: ClassVar[str] = "KILL"
    TITLE_TEXT: ClassVar[str] = "KILL SWITCH: halt trading"
    FIRE_LABEL: ClassVar[str] = "Fire"

    def __init__(
        self,
        gateway: GatewayLink | Sequence[Target],
        positions: list[dict[str, Any]] | None = None,
        orders: list[dict[str, Any]] | None = None,
        scope_age: str = "",
        req_id_factory: Callable[[], str] = new_req_id,
        *,
        scopes: Sequence[KillScope] = (),
        all_scope: bool = False,
    ) -> None:
        super().__init__(gateway, req_id_factory, ALL_PHRASE if all_scope else None)
        self._positions = positions or []
        self._orders = orders or []
        self._scope_age = scope_age
        self._scopes = list(scopes)
        self.all_scope = all_scope
        if self._scopes and not all_scope:
            self.title_text = f"KILL SWITCH: halt trading on {self._scopes[0].name}"
        elif all_scope:
            self.title_text = f"KILL SWITCH: halt trading on ALL {len(self.targets)} gateways"

    def compose_body(self) -> ComposeResult:
        if self.all_scope:
            yield Static("\n".join(self._all_lines()), id="scope", markup=False)
            return
        if self._scopes:
            scope = self._scopes[0]
            self._positions, self._orders = scope.positions, scope.orders
            self._scope_age = scope.age + (f"; {scope.note}" if scope.note else "")
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

    def _all_lines(self) -> list[str]:
        """Per gateway: what it will cancel and close, cut to a few lines each."""
        orders = sum(len(s.orders) for s in self._scopes)
        positions = sum(len(s.positions) for s in self._scopes)
        lines = [f"Scope: ALL {len(self._scopes)} gateways, {orders} working order(s) to "
                 f"cancel, {positions} position(s) to close with FLATTEN (kept with HALT)"]
        listed = max(1, SCOPE_LISTED // max(1, len(self._scopes)))
        for scope in self._scopes:
            note = f"; {scope.note}" if scope.note else ""
            lines.append(f"  {scope.name} ({scope.age}{note}): {len(scope.orders)} order(s), "
                         f"{len(scope.positions)} position(s)")
            items = [describe_order(o) for o in scope.orders] + \
                [describe_position(p) for p in scope.positions]
            lines += [f"    {item}" for item in items[:listed]]
            if len(items) > listed:
                lines.append(f"    … {len(items) - listed} more")
        lines.append("Every gateway stays HALTED (even across a restart) until resumed, "
                     "each on its own.")
        return lines

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
