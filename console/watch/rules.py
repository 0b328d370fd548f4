"""Alert rules as the engine runs them: checked once, when the config is loaded.

The config loader has already checked each `[[alerts.rules]]` table's keys and
types (services.runtime.settings.AlertRuleSpec); this checks what they mean
(a known metric, operator and severity, a duration, a message whose fields
exist) so a mistake ends with one line naming the rule, not a silent rule.
"""

from __future__ import annotations

import fnmatch
import operator
import re
import string
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from console.watch.catalog import COMMON_FIELDS, METRICS, SUBJECT_LABELS, MetricDef
from services.runtime.errors import UsageError
from services.runtime.settings import AlertRuleSpec

SEVERITIES = ("info", "warning", "critical")
OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le,
    "==": operator.eq, "!=": operator.ne,
}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(value: float | str) -> float:
    """5, 2.5, "30s", "5m", "500ms", "1h" -> seconds; ValueError otherwise."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if match is None:
            raise ValueError(f"expected seconds or a duration like 30s, 5m, got {value!r}")
        seconds = float(match.group(1)) * _UNIT_S[match.group(2)]
    if seconds < 0:
        raise ValueError(f"must be 0 or more, got {value!r}")
    return seconds


def duration_text(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:g}h"
    if seconds >= 60:
        return f"{seconds / 60:g}m"
    return f"{seconds:g}s"


@dataclass(frozen=True, slots=True)
class Rule:
    """One alert rule: `metric op threshold` held for `for_s` on one subject."""

    name: str
    metric: MetricDef
    op: str
    threshold: float
    for_s: float
    severity: str
    message: str
    match: str = "*"
    exec: str = ""
    webhook: str = ""

    def holds(self, value: float) -> bool:
        return OPERATORS[self.op](value, self.threshold)

    def applies_to(self, subject: str, labels: Mapping[str, str]) -> bool:
        """`match` against the subject, or the feed, gateway, node or symbol it names."""
        if self.match == "*":
            return True
        names = [subject, *(labels.get(k, "") for k in ("feed", "gateway", "node", "symbol"))]
        return any(name and fnmatch.fnmatchcase(name, self.match) for name in names)

    def render(self, subject: str, labels: Mapping[str, str], value: float) -> str:
        """The one-line message, naming the feed / gateway / symbol."""
        fields: dict[str, Any] = {label: "?" for label in SUBJECT_LABELS[self.metric.subject]}
        fields.update(labels)
        fields.update(rule=self.name, severity=self.severity, subject=subject, value=value,
                      threshold=self.threshold, op=self.op)
        fields["for"] = duration_text(self.for_s)
        try:
            return self.message.format_map(fields)
        except Exception:  # a format spec that does not suit the value: never lose the alert
            return f"{self.name}: {self.metric.name} {value:g} {self.op} {self.threshold:g} " \
                   f"on {subject}"


def default_message(metric: MetricDef) -> str:
    return f"{{rule}}: {metric.name} = {{value:g}} ({{op}} {{threshold:g}}) on {{subject}}"


def _fields_of(template: str) -> set[str]:
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"message is not a valid template ({exc})") from exc
    names = set()
    for _, field_name, _, _ in parsed:
        if field_name is None:
            continue
        if not field_name or field_name.isdigit():
            raise ValueError(f"message: use named fields like {{feed}}, not {{{field_name}}}")
        if not field_name.isidentifier():
            raise ValueError(f"message: {{{field_name}}} is not a field name (no . or [ ]: "
                             f"use {{feed}}, {{value:.2f}})")
        names.add(field_name)
    return names


def compile_rule(spec: AlertRuleSpec) -> Rule:
    """One rule, or ValueError saying what is wrong with it."""
    metric = METRICS.get(spec.metric)
    if metric is None:
        raise ValueError(f"unknown metric {spec.metric!r} (known: {', '.join(METRICS)})")
    if spec.op not in OPERATORS:
        raise ValueError(f"op must be one of {' '.join(OPERATORS)}, got {spec.op!r}")
    severity = spec.severity.lower()
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {', '.join(SEVERITIES)}, got {spec.severity!r}")
    try:
        for_s = parse_duration(spec.for_s)
    except ValueError as exc:
        raise ValueError(f"for: {exc}") from exc
    message = spec.message or default_message(metric)
    allowed = set(SUBJECT_LABELS[metric.subject]) | set(COMMON_FIELDS)
    unknown = sorted(_fields_of(message) - allowed)
    if unknown:
        raise ValueError(f"message: unknown field {{{unknown[0]}}} for a {metric.subject} "
                         f"metric (known: {', '.join(sorted(allowed))})")
    for kind, url in (("webhook", spec.webhook),):
        if url and not url.startswith(("http://", "https://")):
            raise ValueError(f"{kind}: expected an http:// or https:// URL, got {url!r}")
    return Rule(name=spec.name, metric=metric, op=spec.op, threshold=spec.threshold,
                for_s=for_s, severity=severity, message=message, match=spec.match or "*",
                exec=spec.exec, webhook=spec.webhook)


def compile_rules(specs: Iterable[AlertRuleSpec], where: str = "[alerts]") -> list[Rule]:
    """The enabled rules; UsageError (exit 2) naming the first bad one."""
    rules = []
    for spec in specs:
        if not spec.enabled:
            continue
        try:
            rules.append(compile_rule(spec))
        except ValueError as exc:
            raise UsageError(f"{where} rule {spec.name!r}: {exc}") from exc
    return rules


def check_alert_settings(alerts: Any, where: str = "[alerts]") -> list[Rule]:
    """[alerts] as a whole: its numbers, its global webhook, then every rule."""
    for key in ("evaluate_every_s", "rate_window_s", "hook_timeout_s"):
        if getattr(alerts, key) <= 0:
            raise UsageError(f"alerts.{key} must be > 0, got {getattr(alerts, key)}")
    for key in ("bell_repeat_s", "resolved_kept", "webhook_retries"):
        if getattr(alerts, key) < 0:
            raise UsageError(f"alerts.{key} must be 0 or more, got {getattr(alerts, key)}")
    if alerts.webhook and not alerts.webhook.startswith(("http://", "https://")):
        raise UsageError(f"alerts.webhook: expected an http:// or https:// URL, "
                         f"got {alerts.webhook!r}")
    return compile_rules(alerts.rules, where) if alerts.enabled else []
