"""The always-visible status bar and the HALTED banner.

Meaning never relies on colour alone (16-colour and NO_COLOR terminals): every
state is spelled out (UP / LATE / DOWN, ACTIVE / HALTED, READ-ONLY, PAUSED,
▲ 2 ALERTS CRIT). With several gateways each gets a badge (name, UP with RTT /
LATE / DOWN, ACTIVE / HALTED); when they do not fit the badges drop the RTT,
then shorten, then fold into one count ("GW 3/4 UP · 1 HALTED").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Label, Static

from console.model import FEED_OK, GW_DOWN, GW_LATE, GW_UP
from console.ui import format as fmt
from console.ui.direct_lines import DirectLabel

ACTIVE = "ACTIVE"
HALTED = "HALTED"


@dataclass(frozen=True, slots=True)
class GatewayBadge:
    """One gateway in the status bar."""

    name: str
    state: str                         # GW_*
    rtt_ms: float | None
    trading_state: str | None


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
    badges: tuple[GatewayBadge, ...] = ()   # several gateways: one each (else empty)


@dataclass(frozen=True, slots=True)
class HaltView:
    incident_id: str | None
    reason: str | None
    gateway: str = ""                   # several gateways: which one is halted
    others: tuple[str, ...] = ()        # several halted: the rest, by name


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


BADGE_CLASS = {GW_UP: "ok", GW_LATE: "late", GW_DOWN: "bad"}
BADGE_GAP = "  "
SHORT_NAME = 8   # the third form cuts names to this many characters


def badge_parts(badge: GatewayBadge, form: int) -> list[tuple[str, str]]:
    """(text, style name) pieces of one badge: form 0 full, 1 without RTT and ACTIVE,
    2 also with the name cut to SHORT_NAME."""
    name = badge.name if form < 2 else badge.name[:SHORT_NAME]
    parts = [(name, "name")]
    state = badge.state if badge.state in BADGE_CLASS else "…"
    word = state
    if form == 0 and badge.state in (GW_UP, GW_LATE):
        word += f" {fmt.milliseconds(badge.rtt_ms)}"
    parts.append((f" {word}", BADGE_CLASS.get(badge.state, "unknown")))
    if badge.trading_state == HALTED:
        parts.append((" ", "name"))
        parts.append(("HALTED", "halted"))
    elif badge.trading_state == ACTIVE and form == 0 and badge.state != GW_DOWN:
        parts.append((" ACTIVE", "ok"))
    return parts


def badges_plain(badges: Sequence[GatewayBadge], form: int) -> str:
    """The badges' text in one form (3: folded into counts)."""
    if form >= 3:
        return folded_text(badges)
    return BADGE_GAP.join("".join(text for text, _ in badge_parts(b, form)) for b in badges)


def folded_text(badges: Sequence[GatewayBadge]) -> str:
    up = sum(1 for b in badges if b.state in (GW_UP, GW_LATE))
    halted = sum(1 for b in badges if b.trading_state == HALTED)
    text = f"GW {up}/{len(badges)} UP"
    return text + (f" · {halted} HALTED" if halted else "")


def badge_form(badges: Sequence[GatewayBadge], room: int) -> int:
    """The fullest form whose text fits in `room` cells (3, folded, always fits)."""
    for form in (0, 1, 2):
        if len(badges_plain(badges, form)) <= room:
            return form
    # Nothing fits: the shorter of the shortened badges and the fold.
    return 3 if len(badges_plain(badges, 3)) <= len(badges_plain(badges, 2)) else 2


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
    """One line at the top: trading state, gateway link(s), mode, feeds, totals."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "status--name", "status--ok", "status--late", "status--bad", "status--unknown",
        "status--halted",
    }

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
    StatusBar > .status--name { color: $foreground; }
    StatusBar > .status--ok { color: $tc-ok; }
    StatusBar > .status--late { color: $tc-late; text-style: bold; }
    StatusBar > .status--bad { color: $tc-bad; text-style: bold; }
    StatusBar > .status--unknown { color: $tc-stale; }
    StatusBar > .status--halted {
        background: $tc-halted-bg; color: $tc-halted-fg; text-style: bold;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._view: StatusView | None = None
        self._shown: dict[str, tuple[str, str | None]] = {}

    def compose(self) -> ComposeResult:
        yield DirectLabel("TRADING ?", id="trading", classes="-unknown")
        yield DirectLabel("GW …", id="gw", classes="-unknown")
        yield DirectLabel("", id="alerts", classes="-hidden")
        yield DirectLabel("READ-ONLY", id="mode", classes="-hidden")
        yield DirectLabel("", id="paused", classes="-hidden")
        yield DirectLabel("● REC", id="rec", classes="-hidden")
        yield DirectLabel("", id="feeds")
        yield DirectLabel("", id="rx")

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
        halted = sum(1 for b in view.badges if b.trading_state == HALTED)
        if view.badges and halted:
            self._set("trading", f"■ {halted}/{len(view.badges)} HALTED ■", "-halted")
        elif view.badges and all(b.trading_state == ACTIVE for b in view.badges):
            self._set("trading", "ACTIVE", "-ok")
        elif view.badges:
            self._set("trading", "TRADING ?", "-unknown")
        elif view.trading_state == HALTED:
            self._set("trading", f"■ HALTED ■{stale}", "-halted")
        elif view.trading_state == ACTIVE:
            self._set("trading", f"ACTIVE{stale}", "-unknown" if stale else "-ok")
        else:
            self._set("trading", "TRADING ?", "-unknown")
        if not view.badges:
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
        if view.badges:
            self._show_badges(view.badges)

    def _show_badges(self, badges: Sequence[GatewayBadge]) -> None:
        """The gateway badges in the fullest form the rest of the bar leaves room for."""
        used = sum(len(text) + 2 for label_id, (text, css) in self._shown.items()
                   if label_id != "gw" and css != "-hidden")
        room = max(0, (self.size.width or 200) - used - 2)
        form = badge_form(badges, room)
        key = (badges_plain(badges, form), f"badges-{form}-{badges!r}")
        if self._shown.get("gw") == key:
            return
        previous = self._shown.get("gw")
        self._shown["gw"] = key
        label = self.query_one("#gw", Label)
        label.update(self._badges_text(badges, form),
                     layout=previous is None or len(previous[0]) != len(key[0]))
        for name in ("-ok", "-late", "-bad", "-unknown", "-halted", "-hidden"):
            label.set_class(False, name)

    def _badges_text(self, badges: Sequence[GatewayBadge], form: int) -> Text:
        if form >= 3:
            up = sum(1 for b in badges if b.state in (GW_UP, GW_LATE))
            style = "ok" if up == len(badges) else "bad"
            text = Text(f"GW {up}/{len(badges)} UP", self._style(style))
            halted = sum(1 for b in badges if b.trading_state == HALTED)
            if halted:
                text.append(" · ", self._style("name"))
                text.append(f"{halted} HALTED", self._style("halted"))
            return text
        text = Text()
        for index, badge in enumerate(badges):
            if index:
                text.append(BADGE_GAP)
            for part, style in badge_parts(badge, form):
                text.append(part, self._style(style))
        return text

    def _style(self, name: str) -> Style:
        return self.get_component_rich_style(f"status--{name}", partial=True)

    def on_resize(self) -> None:
        """A new width may fit more (or fewer) badges: show them again."""
        view, self._view = self._view, None
        if view is not None and view.badges:
            self._shown.pop("gw", None)
            self.show(view)


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
            where = f" on {view.gateway}" if view.gateway else ""
            others = f" · also halted: {', '.join(view.others)}" if view.others else ""
            self.update(f"■■ TRADING HALTED{where} ■■ incident {incident}{reason}{others}"
                        " · R resumes")
