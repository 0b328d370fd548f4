"""The console's side of alerts: evaluate from the frame, tell the person at the screen.

A mixin of `TradeConsole` (console.ui.app). The frame loop hands it the
frame's feeds and every gateway's status; at most every `evaluate_every_s` it builds
an `Observation` of them and the trading state and lets the `AlertWatch`
(console.watch, shared with the exporter) decide. Firing and resolving
alerts become toasts, critical ones ring the terminal bell (again every
`bell_repeat_s` until acknowledged), and the status bar shows the count.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from console.link.fleet import Fleet
from console.model import FeedRow
from console.ui.screens.alerts import AlertsScreen
from console.watch.engine import FIRING, SEVERITY_RANK, Transition
from console.watch.observation import Observation, observe_gateway
from console.watch.watcher import AlertWatch

TOAST_SEVERITY = {"critical": "error", "warning": "warning", "info": "information"}
TOAST_TIMEOUT_S = {"critical": 15.0, "warning": 8.0, "info": 5.0}
# More transitions than this in one evaluation become one summary toast.
TOASTS_PER_EVALUATION = 3


class ConsoleAlerting:
    """Alert state of the console: the watch, the bell and what the badge shows."""

    # Provided by TradeConsole.
    config: Any
    fleet: Fleet
    keymap: dict[str, str]
    screen: Any
    _clock_ns: Callable[[], int]
    notify: Callable[..., None]
    bell: Callable[[], None]
    push_screen: Callable[..., Any]
    refresh_status: Callable[[], None]              # console.ui.frame_loop

    def _init_alerting(self, quiet: bool, wall_s: Callable[[], float]) -> None:
        alerts = self.config.settings.alerts
        self.alert_watch = AlertWatch(alerts, wall=wall_s)
        self._bell_on = alerts.bell and not quiet
        self._bell_repeat_s = alerts.bell_repeat_s
        self._toasts_on = alerts.toast
        self.bells_rung = 0
        self._badge: tuple[int, int, str | None] = (0, 0, None)

    def _now_s(self) -> float:
        return self._clock_ns() / 1e9

    def _evaluate_alerts(self, feeds: list[FeedRow]) -> bool:
        """Evaluate if due; True when the badge changed (the status bar must repaint)."""
        watch = self.alert_watch
        now = self._now_s()
        if not watch.due(now):
            return False
        gateways = [observe_gateway(g.name, g.status, g.trading)
                    for g in self.fleet if g.status is not None]
        transitions = watch.observe(Observation(now_s=now, feeds=feeds, gateways=gateways))
        self._tell(transitions, now)
        screen = self.screen
        if isinstance(screen, AlertsScreen):
            screen.refresh_alerts()
        return self._update_badge()

    def _tell(self, transitions: list[Transition], now_s: float) -> None:
        """At most one bell per evaluation; a burst of transitions is one toast."""
        ring = [t.alert for t in transitions if t.kind == FIRING and t.alert.severity == "critical"]
        if self._bell_repeat_s:
            ring += [a for a in self.alert_watch.firing()
                     if a.severity == "critical" and not a.acked and a.notified_at_s is not None
                     and now_s - a.notified_at_s >= self._bell_repeat_s]
        if ring:
            for alert in ring:
                alert.notified_at_s = now_s
            if self._bell_on:
                self.bells_rung += 1
                self.bell()
        told = [t for t in transitions if not t.alert.acked]
        if not self._toasts_on or not told:
            return
        if len(told) > TOASTS_PER_EVALUATION:
            firing = [t.alert for t in told if t.kind == FIRING]
            worst = max((a.severity for a in firing), key=SEVERITY_RANK.__getitem__,
                        default="info")
            self.notify(f"{len(firing)} alert(s) fired, {len(told) - len(firing)} resolved: "
                        f"press a to see them", title="Alerts",
                        severity=TOAST_SEVERITY[worst], timeout=TOAST_TIMEOUT_S[worst])
            return
        for transition in told:
            alert = transition.alert
            firing_now = transition.kind == FIRING
            title = f"Alert {'firing' if firing_now else 'resolved'} · {alert.severity}"
            self.notify(alert.message, title=title,
                        severity=TOAST_SEVERITY[alert.severity] if firing_now
                        else "information",
                        timeout=TOAST_TIMEOUT_S[alert.severity] if firing_now else 5.0)

    def _update_badge(self) -> bool:
        firing = self.alert_watch.firing()
        badge: tuple[int, int, str | None] = (0, 0, None)
        if firing:
            worst = max(firing, key=lambda a: SEVERITY_RANK[a.severity]).severity
            badge = (len(firing), sum(1 for a in firing if not a.acked), worst)
        changed = badge != self._badge
        self._badge = badge
        return changed

    def alert_badge(self) -> tuple[int, int, str | None]:
        """(firing, not acknowledged, worst severity) for the status bar, as last evaluated."""
        return self._badge

    def action_alerts(self) -> None:
        if isinstance(self.screen, AlertsScreen):
            self.screen.dismiss(None)
            return
        self.push_screen(AlertsScreen(self.alert_watch.listed, self._now_s, self.keymap))

    def action_ack_alert(self) -> None:
        screen = self.screen
        if not isinstance(screen, AlertsScreen):
            if self.alert_watch.firing():
                self.notify("Open the Alerts view (a) and select the alert to acknowledge",
                            timeout=4)
            return
        alert = screen.selected_alert
        if alert is None or not self.alert_watch.ack(alert.id):
            self.notify("Select a firing alert to acknowledge", severity="warning", timeout=4)
            return
        screen.refresh_alerts()
        self._update_badge()
        self.refresh_status()
        self.notify(f"Acknowledged {alert.rule.name} on {alert.subject}", timeout=3)
