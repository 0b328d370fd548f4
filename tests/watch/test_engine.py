"""The alert engine on its own: `for`, resolving, acknowledging, rates and messages.

Pure code under a clock the test moves, so every transition is exact.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from console.model import FEED_DOWN, FEED_OK, FEED_STALE, FeedRow
from console.watch.catalog import METRICS
from console.watch.engine import FIRING, RESOLVED, AlertEngine
from console.watch.observation import GatewayObservation, Observation
from console.watch.rules import check_alert_settings, compile_rule, compile_rules, parse_duration
from console.watch.sampler import RateWindow, Sampler
from services.runtime.config import load_config
from services.runtime.errors import UsageError
from services.runtime.settings import AlertRuleSpec

FEED = "tcp://10.0.0.1:5556"


def rule(**fields: Any) -> Any:
    values = {"name": "r", "metric": "feed.stale", "op": ">=", "threshold": 1.0, **fields}
    return compile_rule(AlertRuleSpec(**values))


def feed_row(state: str = FEED_OK, *, gaps: int = 0, rejected: int = 0,
             telemetry: dict[str, Any] | None = None) -> FeedRow:
    return FeedRow(endpoint=FEED, connection="connected", state=state, received=100,
                   rejected=rejected, gaps=gaps, restarts=0, msgs_per_s=10.0, last_seen_ns=1,
                   latency_p50_us=100.0, latency_p99_us=900.0, backlog=0,
                   publishers={"pub-1": telemetry} if telemetry else {})


def evaluate(engine: AlertEngine, sampler: Sampler, now_s: float, *feeds: FeedRow,
             gateways: list[GatewayObservation] | None = None) -> list[tuple[str, str]]:
    observation = Observation(now_s=now_s, feeds=list(feeds), gateways=gateways or [])
    return [(t.kind, t.alert.key) for t in engine.evaluate(sampler.samples(observation), now_s)]


def test_an_alert_fires_only_after_its_for_and_resolves_when_the_condition_clears() -> None:
    engine, sampler = AlertEngine([rule(for_s="5s")], wall=lambda: 1e9), Sampler(10.0)
    assert evaluate(engine, sampler, 0.0, feed_row(FEED_STALE)) == []
    assert [a.state for a in engine.pending()] == ["pending"]
    assert evaluate(engine, sampler, 4.9, feed_row(FEED_DOWN)) == []
    assert evaluate(engine, sampler, 5.0, feed_row(FEED_DOWN)) == [(FIRING, f"r|{FEED}")]
    assert evaluate(engine, sampler, 6.0, feed_row(FEED_DOWN)) == []  # fires once
    assert [a.key for a in engine.firing()] == [f"r|{FEED}"]
    assert evaluate(engine, sampler, 7.5, feed_row(FEED_OK)) == [(RESOLVED, f"r|{FEED}")]
    assert engine.firing() == []
    resolved = engine.resolved()
    assert len(resolved) == 1 and resolved[0].duration_s(100.0) == pytest.approx(2.5)


def test_a_condition_that_breaks_before_for_starts_again_from_zero() -> None:
    engine, sampler = AlertEngine([rule(for_s=5)]), Sampler(10.0)
    evaluate(engine, sampler, 0.0, feed_row(FEED_STALE))
    evaluate(engine, sampler, 4.0, feed_row(FEED_OK))      # broke: pending dropped, no alert
    assert engine.pending() == [] and engine.resolved() == []
    evaluate(engine, sampler, 5.0, feed_row(FEED_STALE))
    assert evaluate(engine, sampler, 9.0, feed_row(FEED_STALE)) == []
    assert evaluate(engine, sampler, 10.0, feed_row(FEED_STALE))[0][0] == FIRING


def test_a_subject_that_disappears_resolves_its_alert() -> None:
    engine, sampler = AlertEngine([rule()]), Sampler(10.0)
    assert evaluate(engine, sampler, 0.0, feed_row(FEED_DOWN))[0][0] == FIRING
    assert evaluate(engine, sampler, 1.0)[0][0] == RESOLVED


def test_ack_keeps_the_alert_listed_and_only_firing_alerts_can_be_acked() -> None:
    engine, sampler = AlertEngine([rule(for_s=2)]), Sampler(10.0)
    evaluate(engine, sampler, 0.0, feed_row(FEED_DOWN))
    key = f"r|{FEED}"
    [pending] = engine.pending()
    assert not engine.ack(pending.id)         # still pending
    evaluate(engine, sampler, 2.0, feed_row(FEED_DOWN))
    assert engine.ack(pending.id) and not engine.ack(999)
    assert [(a.key, a.acked) for a in engine.listed()] == [(key, True)]
    assert engine.firing_counts() == {("r", "warning"): 1}


def test_a_flapping_condition_lists_each_occurrence_as_its_own_alert() -> None:
    engine, sampler = AlertEngine([rule()]), Sampler(10.0)
    evaluate(engine, sampler, 0.0, feed_row(FEED_DOWN))
    evaluate(engine, sampler, 1.0, feed_row(FEED_OK))
    evaluate(engine, sampler, 2.0, feed_row(FEED_DOWN))
    listed = engine.listed()
    assert [a.state for a in listed] == [FIRING, RESOLVED]
    assert listed[0].key == listed[1].key and listed[0].id != listed[1].id
    assert not listed[0].acked


def test_a_value_not_known_this_time_keeps_the_alert_as_it_was() -> None:
    engine = AlertEngine([rule(name="gaps", metric="feed.gap_rate", op=">", threshold=1.0)])
    sampler = Sampler(10.0)
    evaluate(engine, sampler, 0.0, feed_row(gaps=0))
    assert evaluate(engine, sampler, 2.0, feed_row(gaps=20))[0][0] == FIRING
    # The totals went back (the ingest restarted): no rate yet, the alert stays firing.
    assert evaluate(engine, sampler, 3.0, feed_row(gaps=0)) == []
    assert [a.rule.name for a in engine.firing()] == ["gaps"]
    assert evaluate(engine, sampler, 5.0, feed_row(gaps=0)) == [(RESOLVED, f"gaps|{FEED}")]


def test_stale_publisher_telemetry_is_not_evaluated() -> None:
    engine = AlertEngine([rule(name="q", metric="publisher.queue_fill", op=">", threshold=0.5)])
    sampler = Sampler(10.0)
    full = {"queue_depth": 90, "queue_capacity": 100}
    assert evaluate(engine, sampler, 0.0, feed_row(telemetry=full))[0][0] == FIRING
    # The feed went quiet: its last telemetry says nothing about now.
    assert evaluate(engine, sampler, 1.0, feed_row(FEED_STALE, telemetry=full))[0][0] == \
        RESOLVED


def test_gap_rate_comes_from_the_totals_over_the_window_and_restarts_its_window() -> None:
    engine = AlertEngine([rule(name="gaps", metric="feed.gap_rate", op=">", threshold=1.0)])
    sampler = Sampler(10.0)
    evaluate(engine, sampler, 0.0, feed_row(gaps=0))
    assert evaluate(engine, sampler, 2.0, feed_row(gaps=1)) == []   # 0.5 gaps/s
    fired = evaluate(engine, sampler, 4.0, feed_row(gaps=20))         # 5 gaps/s
    assert fired == [(FIRING, f"gaps|{FEED}")]
    assert engine.firing()[0].value == pytest.approx(5.0)
    window = RateWindow(10.0)
    assert window.add(0.0, 50) is None and window.add(1.0, 60) == pytest.approx(10.0)
    assert window.add(2.0, 3) is None          # the total went back (a restart): start again


def test_messages_name_the_subject_and_the_publisher_and_account_metrics_work() -> None:
    rules = compile_rules([
        AlertRuleSpec(name="queue", metric="publisher.queue_fill", op=">", threshold=0.8,
                      message="{node} on {feed}: queue {value:.0%} full"),
        AlertRuleSpec(name="dd", metric="account.drawdown", op="<", threshold=-100.0,
                      severity="critical", message="{gateway} {account} drawdown {value:g}"),
        AlertRuleSpec(name="big", metric="position.abs_qty", op=">", threshold=10.0,
                      match="BTC*", message="{symbol} |qty| {value:g} on {gateway}"),
        AlertRuleSpec(name="off", metric="feed.stale", enabled=False),
    ])
    engine, sampler = AlertEngine(rules), Sampler(10.0)
    gateway = GatewayObservation(
        name="paper-a", endpoint="tcp://gw:5555", state="UP", trading_state="ACTIVE",
        account={"account_id": "PAPER-1", "currency": "USD", "equity": 1000.0},
        positions=[{"vt_symbol": "BTCUSD.KRAKEN", "qty": -12.0},
                   {"vt_symbol": "ETHUSD.KRAKEN", "qty": 50.0}])
    telemetry = {"queue_depth": 90, "queue_capacity": 100}
    evaluate(engine, sampler, 0.0, feed_row(telemetry=telemetry), gateways=[gateway])
    gateway.account = {"account_id": "PAPER-1", "currency": "USD", "equity": 850.0}
    evaluate(engine, sampler, 1.0, feed_row(telemetry=telemetry), gateways=[gateway])
    messages = sorted(a.message for a in engine.firing())
    assert messages == [
        "BTCUSD.KRAKEN |qty| 12 on paper-a",
        "paper-a PAPER-1 drawdown -150",
        f"pub-1 on {FEED}: queue 90% full",
    ]
    assert engine.firing()[0].severity == "critical"      # the most severe first


@pytest.mark.parametrize(("fields", "problem"), [
    ({"metric": "feed.nope"}, "unknown metric 'feed.nope'"),
    ({"op": "=~"}, "op must be one of"),
    ({"severity": "page"}, "severity must be one of info, warning, critical"),
    ({"for_s": "soon"}, "for: expected seconds or a duration"),
    ({"message": "{symbol} is stale"}, "unknown field {symbol} for a feed metric"),
    ({"message": "{0} is stale"}, "use named fields"),
    ({"message": "{feed.nope} is stale"}, "{feed.nope} is not a field name"),
    ({"message": "{feed[9]} is stale"}, "{feed[9]} is not a field name"),
    ({"webhook": "ftp://x"}, "webhook: expected an http:// or https:// URL"),
])
def test_a_bad_rule_is_refused_naming_the_rule(fields: dict[str, Any], problem: str) -> None:
    spec = AlertRuleSpec(**{"name": "bad-one", "metric": "feed.stale", **fields})
    with pytest.raises(UsageError) as raised:
        compile_rules([spec])
    assert "rule 'bad-one'" in str(raised.value) and problem in str(raised.value)


def test_durations() -> None:
    assert [parse_duration(v) for v in (5, 2.5, "30s", "5m", "500ms", "1h")] == \
        [5.0, 2.5, 30.0, 300.0, 0.5, 3600.0]
    with pytest.raises(ValueError):
        parse_duration(-1)


def test_docs_list_every_metric_and_the_shipped_rules_compile() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "alerts.md").read_text()
    missing = [name for name in METRICS if f"`{name}`" not in docs]
    assert not missing
    alerts = load_config(use_user_file=False, env={}).settings.alerts
    shipped = check_alert_settings(alerts)
    assert len(shipped) == 12
    assert all(f"`{rule.name}`" in docs for rule in shipped)
