"""The publisher as a real process: tick shape, envelope, telemetry, signals, bad input.

Plus the pure pieces it is built from: the simulated market and the bounded queue.
"""

from __future__ import annotations

import itertools
import signal
import subprocess
import sys
import time
from typing import Any

import msgpack
import pytest
import zmq

from services.market import INSTRUMENTS, Market
from services.protocol import (
    HEALTH_STATES,
    METRICS_FIELDS,
    TICK_NUM_FIELDS,
    TICK_STR_FIELDS,
    datetime_to_ns,
    exchange_of,
    tick_field_problem,
    tick_problem,
    topic_kind,
)
from services.publisher import TickQueue

Message = tuple[str, dict[str, Any]]


def subscriber(ctx: zmq.Context, endpoint: str, prefix: bytes = b"") -> zmq.Socket:
    sock = ctx.socket(zmq.SUB)
    sock.setsockopt(zmq.RCVHWM, 1_000_000)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SUBSCRIBE, prefix)
    sock.connect(endpoint)
    return sock


def collect(sock: zmq.Socket, done: Any, timeout: float = 15.0) -> list[Message]:
    """Receive until `done(messages)` is true; fail after `timeout` seconds."""
    messages: list[Message] = []
    deadline = time.monotonic() + timeout
    while not done(messages):
        assert time.monotonic() < deadline, f"only {len(messages)} messages before deadline"
        if sock.poll(100):
            topic, payload = sock.recv_multipart()
            messages.append((topic.decode(), msgpack.unpackb(payload)))
    return messages


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "console", *args], capture_output=True,
                          text=True, timeout=30)


# --- the process ----------------------------------------------------------------------


def test_ticks_have_all_fields_typed_and_an_envelope(services, zctx) -> None:
    pub = services.publisher("--symbols", "12", "--rate", "400", "--node", "shape-1",
                             "--seed", "7")
    assert pub.endpoints["service"] == "publisher"
    sock = subscriber(zctx, pub.endpoints["pub"])
    messages = collect(sock, lambda m: sum(topic_kind(t) == "tick" for t, _ in m) >= 200)
    ticks = [(t, p) for t, p in messages if topic_kind(t) == "tick"]
    exchanges = set()
    for topic, tick in ticks:
        assert tick["vt_symbol"] == topic
        assert tick["exchange"] == exchange_of(topic)
        assert f"{tick['symbol']}.{tick['exchange']}" == topic
        exchanges.add(tick["exchange"])
        for name in TICK_NUM_FIELDS:
            assert type(tick[name]) is float, name
        for name in TICK_STR_FIELDS:
            assert isinstance(tick[name], str) and tick[name], name
        for level in range(1, 6):
            assert tick[f"bid_price_{level}"] > 0
            assert tick[f"bid_price_{level}"] < tick[f"ask_price_{level}"]
        assert tick["bid_price_1"] < tick["ask_price_1"]
        assert tick["limit_down"] <= tick["last_price"] <= tick["limit_up"]
        assert datetime_to_ns(tick["datetime"]) is not None
        assert datetime_to_ns(tick["localtime"]) is not None
        assert tick["pub"] == "shape-1"
        assert tick["epoch"] == pub.endpoints["epoch"]
        for name in ("epoch", "seq", "tseq", "ts_ns"):
            assert type(tick[name]) is int, name
        assert tick_problem(tick, topic) is None
        assert tick_field_problem(tick) is None
    assert len(exchanges) >= 5


def test_seq_is_contiguous_over_all_topics_and_tseq_per_topic(services, zctx) -> None:
    pub = services.publisher("--symbols", "8", "--rate", "1000", "--node", "seq-1")
    sock = subscriber(zctx, pub.endpoints["pub"])
    # Enough to span two telemetry rounds, so telemetry shares the seq stream.
    messages = collect(sock, lambda m: sum(t.startswith("telemetry.metrics") for t, _ in m) >= 2)
    seqs = [p["seq"] for _, p in messages]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    last_tseq: dict[str, int] = {}
    for topic, payload in messages:
        if topic in last_tseq:
            assert payload["tseq"] == last_tseq[topic] + 1, topic
        last_tseq[topic] = payload["tseq"]
    assert {"telemetry.metrics.seq-1", "telemetry.health.seq-1"} <= set(last_tseq)
    assert len([t for t in last_tseq if topic_kind(t) == "tick"]) == 8


def test_telemetry_arrives_every_second_even_when_idle(services, zctx) -> None:
    pub = services.publisher("--rate", "0.0001", "--node", "idle-1")
    sock = subscriber(zctx, pub.endpoints["pub"], b"telemetry.")
    messages = collect(sock, lambda m: sum(t.startswith("telemetry.health") for t, _ in m) >= 4)
    metrics = [p for t, p in messages if t == "telemetry.metrics.idle-1"]
    health = [p for t, p in messages if t == "telemetry.health.idle-1"]
    assert len(metrics) >= 3
    for payload in metrics:
        assert set(METRICS_FIELDS) <= set(payload)
        assert payload["node"] == "idle-1"
        assert payload["queue_capacity"] == 100000
        assert payload["dropped_total"] == 0
    for payload in health:
        assert payload["status"] in HEALTH_STATES
        assert payload["status"] == "OK"
        assert isinstance(payload["detail"], str)
    # About one a second: generous bounds, this is a cadence check, not a benchmark.
    stamps = [p["ts_ns"] for p in health]
    for earlier, later in itertools.pairwise(stamps):
        assert 0.5e9 < later - earlier < 2.5e9


def test_sigterm_stops_it_promptly_with_code_zero(services, zctx) -> None:
    pub = services.publisher("--rate", "5000", "--node", "term-1")
    sock = subscriber(zctx, pub.endpoints["pub"], b"telemetry.health")
    collect(sock, lambda m: len(m) >= 1)
    pub.signal(signal.SIGTERM)
    assert pub.popen.wait(timeout=5) == 0
    # Its last word is health DOWN, so consoles learn of the stop at once.
    last = collect(sock, lambda m: any(p["status"] == "DOWN" for _, p in m), timeout=5)
    assert last[-1][1]["detail"] == "stopping"


@pytest.mark.parametrize(("flags", "named"), [
    (["--rate", "-1"], "--rate"),
    (["--rate", "nan"], "rate"),
    (["--symbols", "0"], "--symbols"),
    (["--bind", "tcp://127.0.0.1:*", "--connect", "tcp://127.0.0.1:1"], "--connect"),
    (["--speed", "2"], "--replay"),
    (["--replay", "/nonexistent/file.rec"], "--replay"),
    (["--rate", "many"], "--rate"),
    (["--bind", "nonsense"], "nonsense"),
])
def test_bad_flags_exit_2_with_one_line(flags: list[str], named: str) -> None:
    result = run_cli("publisher", *flags)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert named in lines[0]
    assert "Traceback" not in result.stderr


def test_replay_of_a_file_that_is_not_a_recording_is_refused(tmp_path) -> None:
    bogus = tmp_path / "notes.txt"
    bogus.write_text("hello, not a recording\n")
    result = run_cli("publisher", "--bind", "tcp://127.0.0.1:*", "--replay", str(bogus))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "not a tradeconsole recording" in result.stderr


def test_port_in_use_exits_2_naming_the_endpoint(services) -> None:
    first = services.publisher("--rate", "1")
    taken = first.endpoints["pub"]
    result = run_cli("publisher", "--bind", taken)
    assert result.returncode == 2
    assert taken in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1


# --- the simulated market -------------------------------------------------------------


def fixed_clock() -> float:
    return 1_750_000_000.0


def test_market_is_deterministic_for_a_seed() -> None:
    a = Market(30, seed=42, clock=fixed_clock)
    b = Market(30, seed=42, clock=fixed_clock)
    c = Market(30, seed=43, clock=fixed_clock)
    first = [a.next_tick() for _ in range(500)]
    assert first == [b.next_tick() for _ in range(500)]
    assert first != [c.next_tick() for _ in range(500)]


def test_market_prices_stay_positive_and_books_uncrossed() -> None:
    market = Market(len(INSTRUMENTS) + 6, seed=1)
    seen = set()
    for _ in range(30_000):
        topic, tick = market.next_tick()
        seen.add(topic)
        assert tick["last_price"] > 0
        assert 0 < tick["bid_price_5"] < tick["bid_price_1"] < tick["ask_price_1"] \
            < tick["ask_price_5"]
        assert tick["low_price"] <= tick["last_price"] <= tick["high_price"]
        assert tick["limit_down"] <= tick["last_price"] <= tick["limit_up"]
    assert seen == set(market.vt_symbols)


def test_market_names_symbols_beyond_the_fixed_list() -> None:
    market = Market(5000, seed=3)
    names = market.vt_symbols
    assert len(set(names)) == 5000
    assert names[0] == "BTCUSD.KRAKEN"
    assert "SYM4999.NYSE" in names
    assert {exchange_of(n) for n in names} >= {"KRAKEN", "CFFEX", "SHFE", "NASDAQ", "CME"}


def test_market_ticks_are_independent_copies() -> None:
    market = Market(1, seed=5, clock=fixed_clock)
    _, first = market.next_tick()
    snapshot = dict(first)
    for _ in range(10):
        market.next_tick()
    assert first == snapshot


# --- the bounded queue ----------------------------------------------------------------


def test_queue_drops_and_counts_overflow_without_blocking() -> None:
    queue = TickQueue(capacity=3)
    items = [(f"S{i}.X", {"i": i}) for i in range(5)]
    assert queue.put_many(items) == 3
    assert queue.dropped == 2
    assert queue.put_many(items[:1]) == 0
    assert queue.dropped == 3
    assert [p["i"] for _, p in queue.take(10)] == [0, 1, 2]
    assert len(queue) == 0
    queue.wait(0.01)  # returns on its own when nothing comes
    assert queue.put_many(items[3:]) == 2
    assert [p["i"] for _, p in queue.take(1)] == [3]
