"""The alert engine: pending → firing → resolved, per rule and subject.

Like Prometheus: a rule's condition must hold on every evaluation for `for`
seconds before the alert fires, and it resolves by itself on the first
evaluation where it no longer holds (or its subject is gone). A value that
is not known this time (a rate whose window just restarted, a latency with
no sample) leaves an alert as it was. Acknowledging
keeps a firing alert listed but silences its bell and toasts.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from console.watch.rules import SEVERITIES, Rule
from console.watch.sampler import Sample

PENDING = "pending"
FIRING = "firing"
RESOLVED = "resolved"

SEVERITY_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}


@dataclass(slots=True)
class Alert:
    """One rule on one subject; `key` is stable across evaluations."""

    rule: Rule
    subject: str
    labels: dict[str, str]
    value: float
    message: str
    state: str
    id: int                                     # unique per engine: a flapping rule is new alerts
    pending_since_s: float                      # monotonic, when the condition began
    fired_at_s: float | None = None             # monotonic
    fired_wall: float | None = None             # time.time(), for people and hooks
    resolved_at_s: float | None = None
    resolved_wall: float | None = None
    acked: bool = False
    notified_at_s: float | None = None          # last bell or toast (console.ui.alerting)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """Rule and subject: the same for every alert a flapping condition raises."""
        return f"{self.rule.name}|{self.subject}"

    @property
    def severity(self) -> str:
        return self.rule.severity

    def duration_s(self, now_s: float) -> float:
        start = self.fired_at_s if self.fired_at_s is not None else self.pending_since_s
        end = self.resolved_at_s if self.resolved_at_s is not None else now_s
        return max(0.0, end - start)

    def as_json(self, now_s: float) -> dict[str, Any]:
        """The alert as hooks, `status --json` and logs see it."""
        return {
            "v": 1, "rule": self.rule.name, "severity": self.severity, "state": self.state,
            "subject": self.subject, "labels": dict(self.labels), "metric": self.rule.metric.name,
            "value": self.value, "op": self.rule.op, "threshold": self.rule.threshold,
            "for_s": self.rule.for_s, "message": self.message, "acked": self.acked,
            "fired_at": _iso(self.fired_wall), "resolved_at": _iso(self.resolved_wall),
            "duration_s": round(self.duration_s(now_s), 3),
        }


def _iso(wall: float | None) -> str | None:
    if wall is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(wall)) + f".{int(wall % 1 * 1000):03d}Z"


@dataclass(frozen=True, slots=True)
class Transition:
    kind: str                                   # FIRING or RESOLVED
    alert: Alert


class AlertEngine:
    """Evaluates rules over samples; keeps active alerts and the recently resolved."""

    def __init__(self, rules: Iterable[Rule], *, resolved_kept: int = 100,
                 wall: Callable[[], float] = time.time) -> None:
        self.rules = list(rules)
        self._by_metric: dict[str, list[Rule]] = {}
        for rule in self.rules:
            self._by_metric.setdefault(rule.metric.name, []).append(rule)
        self._wall = wall
        self._active: dict[str, Alert] = {}
        self._resolved: deque[Alert] = deque(maxlen=max(resolved_kept, 0) or None)
        self._keep_resolved = resolved_kept > 0
        self.evaluations = 0
        self.fired_total = 0
        self._next_id = 1

    def evaluate(self, samples: Iterable[Sample], now_s: float) -> list[Transition]:
        """One evaluation; the alerts that fired or resolved in it."""
        self.evaluations += 1
        transitions: list[Transition] = []
        held: set[str] = set()
        for sample in samples:
            for rule in self._by_metric.get(sample.metric, ()):
                if not rule.applies_to(sample.subject, sample.labels):
                    continue
                key = f"{rule.name}|{sample.subject}"
                if sample.value is None:  # not known this time (a rate's window restarted)
                    if key in self._active:
                        held.add(key)     # neither a new condition nor a cleared one
                    continue
                if not rule.holds(sample.value):
                    continue
                held.add(key)
                alert = self._active.get(key)
                message = rule.render(sample.subject, sample.labels, sample.value)
                if alert is None:
                    alert = self._active[key] = Alert(
                        rule=rule, subject=sample.subject, labels=dict(sample.labels),
                        value=sample.value, message=message, state=PENDING,
                        id=self._next_id, pending_since_s=now_s)
                    self._next_id += 1
                alert.value, alert.labels, alert.message = \
                    sample.value, dict(sample.labels), message
                if alert.state == PENDING and now_s - alert.pending_since_s >= rule.for_s:
                    alert.state, alert.fired_at_s, alert.fired_wall = FIRING, now_s, self._wall()
                    self.fired_total += 1
                    transitions.append(Transition(FIRING, alert))
        for key in [k for k in self._active if k not in held]:
            alert = self._active.pop(key)
            if alert.state == FIRING:
                alert.state = RESOLVED
                alert.resolved_at_s, alert.resolved_wall = now_s, self._wall()
                if self._keep_resolved:
                    self._resolved.appendleft(alert)
                transitions.append(Transition(RESOLVED, alert))
        return transitions

    def firing(self) -> list[Alert]:
        """Firing alerts, the most severe and then the oldest first."""
        alerts = [a for a in self._active.values() if a.state == FIRING]
        alerts.sort(key=lambda a: (-SEVERITY_RANK[a.severity], a.fired_at_s or 0.0))
        return alerts

    def pending(self) -> list[Alert]:
        return [a for a in self._active.values() if a.state == PENDING]

    def resolved(self) -> list[Alert]:
        """Recently resolved, the latest first."""
        return list(self._resolved)

    def listed(self) -> list[Alert]:
        """What the Alerts view lists: firing, then recently resolved."""
        return self.firing() + self.resolved()

    def ack(self, alert_id: int) -> bool:
        """Acknowledge a firing alert by its id (True), or say it is not firing (False)."""
        for alert in self._active.values():
            if alert.id == alert_id and alert.state == FIRING:
                alert.acked = True
                return True
        return False

    def firing_counts(self) -> dict[tuple[str, str], int]:
        """(rule, severity) -> firing alerts, every rule listed (0 when quiet)."""
        counts = {(rule.name, rule.severity): 0 for rule in self.rules}
        for alert in self.firing():
            counts[(alert.rule.name, alert.severity)] += 1
        return counts
