"""One alert watch: observations in, transitions out, hooks sent.

The console (console.ui.alerting) and the exporter (console.watch.monitor)
each own one and feed it the same `Observation` of the data layer; what a
person is told (toast, bell, badge) is the console's business, what the
world is told (exec, webhook) is this module's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from console.watch.engine import FIRING, Alert, AlertEngine, Transition
from console.watch.hooks import HookDispatcher
from console.watch.observation import Observation
from console.watch.rules import Rule, check_alert_settings
from console.watch.sampler import Sampler

log = logging.getLogger(__name__)


class AlertWatch:
    """Evaluates the rules at most every `evaluate_every_s` and sends each transition's hooks."""

    def __init__(self, alerts: Any, *, rules: list[Rule] | None = None,
                 hooks: HookDispatcher | None = None,
                 wall: Callable[[], float] | None = None, send_hooks: bool = True) -> None:
        self.settings = alerts
        self.rules = rules if rules is not None else check_alert_settings(alerts)
        self.sampler = Sampler(alerts.rate_window_s)
        engine_options: dict[str, Any] = {"resolved_kept": alerts.resolved_kept}
        if wall is not None:
            engine_options["wall"] = wall
        self.engine = AlertEngine(self.rules, **engine_options)
        self.hooks = hooks or HookDispatcher(timeout_s=alerts.hook_timeout_s,
                                             retries=alerts.webhook_retries)
        self._due_s: float | None = None
        self.send_hooks = send_hooks   # False for a one-shot look (`status`): tell nobody

    @property
    def enabled(self) -> bool:
        return bool(self.rules)

    def due(self, now_s: float) -> bool:
        return self.enabled and (self._due_s is None or now_s >= self._due_s)

    def observe(self, observation: Observation) -> list[Transition]:
        """Evaluate now (whether due or not): the alerts that fired or resolved."""
        now = observation.now_s
        self._due_s = now + self.settings.evaluate_every_s
        transitions = self.engine.evaluate(self.sampler.samples(observation), now)
        for transition in transitions:
            self._tell(transition, now)
        return transitions

    def _tell(self, transition: Transition, now_s: float) -> None:
        alert = transition.alert
        level = logging.WARNING if transition.kind == FIRING else logging.INFO
        log.log(level, "alert %s %s [%s]: %s", alert.rule.name, transition.kind,
                alert.severity, alert.message)
        if not self.send_hooks:
            return
        body = alert.as_json(now_s)
        command = alert.rule.exec or self.settings.exec
        if command:
            self.hooks.run_exec(command, body)
        url = alert.rule.webhook or self.settings.webhook
        if url:
            self.hooks.post_webhook(url, body)

    def firing(self) -> list[Alert]:
        return self.engine.firing()

    def pending(self) -> list[Alert]:
        return self.engine.pending()

    def listed(self) -> list[Alert]:
        return self.engine.listed()

    def ack(self, alert_id: int) -> bool:
        return self.engine.ack(alert_id)

    def close(self, wait_s: float = 0.5) -> None:
        self.hooks.close(wait_s)
