"""The console's trading state and its data files, without a running app."""

from __future__ import annotations

import csv
from pathlib import Path

from console.link.trading import EVENT_POLLS, TradingState
from console.model import GW_UP, GatewayStatus, Reply, SymbolRow
from console.ui.data_files import CSV_HEADER, stamped_path, write_csv
from console.ui.trading import kill_scope_age
from services.protocol import GET_ORDERS, GET_POSITIONS, GET_STATUS, KILL_SWITCH, RESUME_TRADING

SECOND = 1_000_000_000


def ok(action: str, data: object) -> Reply:
    return Reply(action, "r1", delivered=True, status="SUCCESS", data=data)


def status(trading_state: str | None, incident_id: str | None = None) -> GatewayStatus:
    return GatewayStatus("tcp://gw", GW_UP, 1.0, trading_state, incident_id, None)


def test_only_a_new_halt_asks_for_its_incident() -> None:
    trading = TradingState()
    assert not trading.set_trading("ACTIVE", None)
    assert trading.set_trading("HALTED", "INC-1", "fat finger")
    assert not trading.set_trading("HALTED", None)  # already known: the incident stays
    assert (trading.incident_id, trading.halt_reason) == ("INC-1", "fat finger")
    assert not trading.set_trading("ACTIVE", None)
    assert trading.incident_id is None and trading.halt_reason is None
    assert not trading.set_trading(None, "INC-2")  # no state: nothing learnt
    assert trading.state == "ACTIVE"


def test_the_heartbeat_state_counts_only_when_it_changes() -> None:
    trading = TradingState()
    assert not trading.note_status(status("ACTIVE"))
    trading.set_trading("HALTED", None)  # e.g. from a kill switch reply
    assert not trading.note_status(status("ACTIVE"))  # same heartbeat news: ignored
    assert trading.halted
    assert not trading.note_status(status("HALTED"))  # news, but not a new halt here...
    assert trading.incident_id is None
    trading.note_status(status("HALTED", "INC-7"))  # ...and a later incident id fills in
    assert trading.incident_id == "INC-7"


def test_a_poll_in_flight_is_not_sent_again() -> None:
    trading = TradingState()
    assert trading.start_poll(GET_ORDERS)
    assert not trading.start_poll(GET_ORDERS)
    assert not trading.take_poll_reply(GET_ORDERS, ok(GET_ORDERS, [{"id": 1}]), 5 * SECOND)
    assert trading.data.orders.data == [{"id": 1}] and trading.data.orders.at_ns == 5 * SECOND
    assert trading.start_poll(GET_ORDERS)


def test_poll_failures_keep_the_last_answer_and_say_why() -> None:
    trading = TradingState()
    trading.take_poll_reply(GET_POSITIONS, ok(GET_POSITIONS, [{"vt_symbol": "X"}]), SECOND)
    rejected = Reply(GET_POSITIONS, "r2", delivered=True, status="REJECTED",
                     error={"code": "RATE_LIMITED", "message": "slow down"})
    trading.take_poll_reply(GET_POSITIONS, rejected, 2 * SECOND)
    assert trading.data.positions.error == "REJECTED RATE_LIMITED: slow down"
    trading.take_poll_reply(GET_POSITIONS, Reply(GET_POSITIONS, "r3", False, None), 3 * SECOND)
    assert "no answer" in (trading.data.positions.error or "")
    assert trading.data.position_list() == [{"vt_symbol": "X"}]
    assert "the scope may be out of date" in kill_scope_age(trading, 61 * SECOND)


def test_status_polls_and_guarded_replies_set_the_trading_state() -> None:
    trading = TradingState()
    halted = ok(GET_STATUS, {"trading_state": "HALTED", "incident_id": "INC-3",
                             "reason": "drill"})
    assert trading.take_poll_reply(GET_STATUS, halted, SECOND)
    assert (trading.incident_id, trading.halt_reason) == ("INC-3", "drill")
    assert not trading.take_guarded_reply(RESUME_TRADING, ok(RESUME_TRADING, {}), {})
    assert trading.state == "ACTIVE"
    assert trading.take_guarded_reply(KILL_SWITCH, ok(KILL_SWITCH, {"incident_id": "INC-4"}),
                                      {"reason": "from the console"})
    assert (trading.state, trading.incident_id) == ("HALTED", "INC-4")
    assert trading.halt_reason == "from the console"


def test_events_name_the_polls_they_make_stale() -> None:
    assert EVENT_POLLS["event.kill"] == (GET_STATUS,)
    assert GET_ORDERS in EVENT_POLLS["event.trade"]
    assert "event.telemetry" not in EVENT_POLLS


def row(symbol: str, *, envelope: bool) -> SymbolRow:
    return SymbolRow(symbol, "KRAKEN", 10.0, 0.5, 9.9, 10.1, 0.2, 1.0, 2.0, 100.0, 3,
                     updated_ns=SECOND, latency_us=42.0, direction=1, has_envelope=envelope,
                     gaps=1, feed="tcp://pub")


def test_csv_has_the_table_columns_and_blanks_what_is_unknown(tmp_path: Path) -> None:
    path = tmp_path / "ticks.csv"
    assert write_csv(path, [row("A.KRAKEN", envelope=True), row("B.KRAKEN", envelope=False)],
                     now_ns=3 * SECOND + SECOND // 2) == 2
    with path.open(newline="") as fh:
        rows = list(csv.reader(fh))
    assert tuple(rows[0]) == CSV_HEADER and rows[0][0] == "symbol"
    first, second = (dict(zip(rows[0], r, strict=True)) for r in rows[1:])
    assert first["age"] == "2.500" and first["latency"] == "42.0" and first["gaps"] == "1"
    assert first["has_envelope"] == "True" and first["feed"] == "tcp://pub"
    assert second["has_envelope"] == "False"
    assert second["latency"] == second["gaps"] == ""  # unknown without an envelope


def test_stamped_paths_never_overwrite(tmp_path: Path) -> None:
    base = tmp_path / "exports"
    first = stamped_path(base, "ticks", ".csv", 1_700_000_000 * SECOND)
    first.write_text("x")
    second = stamped_path(base, "ticks", ".csv", 1_700_000_000 * SECOND)
    assert base.is_dir() and first != second and second.name.endswith("-2.csv")
