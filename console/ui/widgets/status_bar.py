"""The always-visible status bar and the HALTED banner.

Meaning never relies on colour alone (16-colour and NO_COLOR terminals): every
state is spelled out (UP / LATE / DOWN, ACTIVE / HALTED, READ-ONLY, PAUSED,
▲ 2 ALERTS CRIT).
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Label, Static

from console.model import FEED_OK, GW_DOWN, GW_LATE, GW_UP
from console.ui import format as fmt

ACTIVE = "ACTIVE"
HALTED = "HALTED"


@dataclass(frozen=True, slots=True)
class StatusView:
    """Everything the status bar shows, compared frame to frame."""

    gateway_state: str | None          # GW_* or None when no gateway is configured
    rtt_ms: float | None
    trading_state: str | None
    feeds_ok: int
    feeds_total: int
    received_total: int
    readonly: bool
    paused: bool
    pending: int
    recording: bool
    alerts_firing: int = 0
    alerts_unacked: int = 0
    alerts_worst: str | None = None     # severity of the worst firing alert


@dataclass(frozen=True, slots=True)
class HaltView:
    incident_id: str | None
    reason: str | None


ALERT_CLASSES = {"critical": "-bad", "warning": "-late", "info": "-unknown"}
ALERT_WORDS = {"critical": "CRIT", "warning": "WARN", "info": "INFO"}


def alerts_text(firing: int, unacked: int, worst: str | None) -> tuple[str, str]:
    """(text, css class) for the alert badge: how many fire, the worst, whether seen."""
    if firing == 0 or worst is None:
        return "", "-hidden"
    noun = "ALERT" if firing == 1 else "ALERTS"
    seen = "" if unacked else " ack"
    return f"▲ {firing} {noun} {ALERT_WORDS.get(worst, worst.upper())}{seen}", \
        ALERT_CLASSES.get(worst, "-unknown")


def gateway_text(state: str | None, rtt_ms: float | None) -> tuple[str, str]:
    """(text, css class) for the gateway cell."""
    if state is None:
        return "GW none", "-unknown"
    if state == GW_UP:
        return f"GW UP {fmt.milliseconds(rtt_ms)}", "-ok"
    if state == GW_LATE:
        return f"GW LATE {fmt.milliseconds(rtt_ms)}", "-late"
    if state == GW_DOWN:
        return "GW DOWN", "-bad"
    return "GW …", "-unknown"


class StatusBar(Horizontal):
    """One line at the top: trading state, gateway link, mode, feeds, totals."""

    DEFAULT_CSS = """
    StatusBar { height: 1; background: $panel; color: $foreground; }
    StatusBar > Label { padding: 0 1; height: 1; }
    StatusBar > Label.-ok { color: $tc-ok; }
    StatusBar > Label.-late { color: $tc-late; text-style: bold; }
    StatusBar > Label.-bad { color: $tc-bad; text-style: bold; }
    StatusBar > Label.-unknown { color: $tc-stale; }
    StatusBar > Label.-hidden { display: none; }
    StatusBar > #trading.-ok { color: $tc-ok; text-style: bold; }
    StatusBar > #trading.-halted {
        background: $tc-halted-bg; color: $tc-halted-fg; text-style: bold;
    }
    StatusBar > #mode { background: $warning; color: $background; text-style: bold; }
    StatusBar > #paused { background: $accent; color: $background; text-style: bold; }
    StatusBar > #rec { color: $tc-bad; text-style: bold; }
    StatusBar > #rx { color: $text-muted; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._view: StatusView | None = None
        self._shown: dict[str, tuple[str, str | None]] = {}

    def compose(self) -> ComposeResult:
        yield Label("TRADING ?", id="trading", classes="-unknown")
        yield Label("GW …", id="gw", classes="-unknown")
        yield Label("", id="alerts", classes="-hidden")
        yield Label("READ-ONLY", id="mode", classes="-hidden")
        yield Label("", id="paused", classes="-hidden")
        yield Label("● REC", id="rec", classes="-hidden")
        yield Label("", id="feeds")
        yield Label("", id="rx")

    def _set(self, label_id: str, text: str, css: str | None = None) -> None:
        """Update one label, only if its text or state class changed."""
        previous = self._shown.get(label_id)
        if previous == (text, css):
            return
        self._shown[label_id] = (text, css)
        label = self.query_one(f"#{label_id}", Label)
        # Same length, same width: no need to reflow the screen (rx changes every frame).
        label.update(text, layout=previous is None or len(previous[0]) != len(text))
        for name in ("-ok", "-late", "-bad", "-unknown", "-halted", "-hidden"):
            label.set_class(name == css, name)

    def show(self, view: StatusView) -> None:
        """Update the labels; a no-op when nothing changed since the last frame."""
        if view == self._view:
            return
        self._view = view
        # With the gateway down the trading state is only the last one known: say so.
        stale = " (last known)" if view.gateway_state == GW_DOWN else ""
        if view.trading_state == HALTED:
            self._set("trading", f"■ HALTED ■{stale}", "-halted")
        elif view.trading_state == ACTIVE:
            self._set("trading", f"ACTIVE{stale}", "-unknown" if stale else "-ok")
        else:
            self._set("trading", "TRADING ?", "-unknown")
        self._set("gw", *gateway_text(view.gateway_state, view.rtt_ms))
        self._set("alerts", *alerts_text(view.alerts_firing, view.alerts_unacked,
                                         view.alerts_worst))
        self._set("mode", "READ-ONLY", None if view.readonly else "-hidden")
        self._set("paused", f"PAUSED {fmt.count(view.pending)} pending",
                  None if view.paused else "-hidden")
        self._set("rec", "● REC", None if view.recording else "-hidden")
        if view.feeds_total:
            ok = view.feeds_ok == view.feeds_total
            self._set("feeds", f"feeds {view.feeds_ok}/{view.feeds_total} OK",
                      "-ok" if ok else "-bad")
        else:
            self._set("feeds", "no feeds", "-unknown")
        self._set("rx", f"rx {fmt.count(view.received_total)}")


def feeds_ok(states: list[str]) -> int:
    return sum(1 for s in states if s == FEED_OK)


class HaltedBanner(Static):
    """A loud full-width banner while trading is halted, naming the incident."""

    DEFAULT_CSS = """
    HaltedBanner {
        display: none;
        height: auto;
        background: $tc-halted-bg;
        color: $tc-halted-fg;
        text-style: bold;
        text-align: center;
        padding: 0 1;
    }
    HaltedBanner.-shown { display: block; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id, markup=False)
        self._view: HaltView | None = None

    def show(self, view: HaltView | None) -> None:
        """Show the banner for a halt, or hide it (None)."""
        if view == self._view:
            return
        self._view = view
        self.set_class(view is not None, "-shown")
        if view is not None:
            incident = view.incident_id or "unknown incident"
            reason = f" · reason: {view.reason}" if view.reason else ""
            self.update(f"■■ TRADING HALTED ■■ incident {incident}{reason} · R resumes")
