"""FeedBook: pure state driven frame by frame under injected clocks."""

from __future__ import annotations

import math
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from console.feed.book import OFF_SCREEN_ROWS_NS, RECENT_POINTS, FeedBook
from console.feed.hot_tick import HotTick
from console.model import (
    CONN_CONNECTED,
    CONN_DISCONNECTED,
    FEED_DOWN,
    FEED_OK,
    FEED_STALE,
)
from services.envelope import Envelope
from services.protocol import (
    ENVELOPE_FIELDS,
    HOT_NUM_FIELDS,
    Limits,
    health_topic,
    logs_topic,
    metrics_topic,
    packb,
)

NS = 1_000_000_000
FEED = "tcp://127.0.0.1:1"


class Clock:
    """A clock that only moves when the test says so."""

    def __init__(self, start: int = 1_000 * NS) -> None:
        self.now = start

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += int(seconds * NS)


def make_book(**kwargs: Any) -> tuple[FeedBook, Clock, Clock]:
    clock = Clock()
    wall = Clock(1_700_000_000 * NS)
    kwargs.setdefault("stale_after_s", 3.0)
    book = FeedBook([FEED], clock_ns=clock, wall_ns=wall, **kwargs)
    return book, clock, wall


def tick(vt: str, last: float, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "vt_symbol": vt, "last_price": last, "bid_price_1": last - 0.5,
        "ask_price_1": last + 0.5, "bid_volume_1": 3.0, "ask_volume_1": 4.0, "volume": 10.0,
    }
    body.update(extra)
    return body


def send(book: FeedBook, topic: str, body: dict[str, Any], env: Envelope | None = None,
         wall: Clock | None = None) -> bool:
    if env is not None:
        env.stamp(topic, body)
        if wall is not None:
            body["ts_ns"] = wall.now - 2_000_000  # sent 2 ms before "now"
    return book.on_frame(0, topic.encode(), packb(body))


def test_coalescing_many_ticks_into_one_row_per_symbol() -> None:
    book, _, wall = make_book()
    env = Envelope("pub-1", epoch=1)
    symbols = ["AAA.X", "BBB.Y", "CCC.Z"]
    for i in range(1000):
        send(book, symbols[i % 3], tick(symbols[i % 3], 100.0 + i), env, wall)
    update = book.drain()
    assert sorted(update.rows) == symbols
    assert update.pending == 1000
    assert update.received_total == 1000
    assert sum(row.ticks for row in update.rows.values()) == 1000
    row = update.rows["AAA.X"]
    assert row.last == 100.0 + 999  # the latest tick wins
    assert row.exchange == "X"
    assert row.direction == 1
    assert row.spread == pytest.approx(1.0)
    assert row.has_envelope and row.latency_us == pytest.approx(2000.0)
    assert update.feeds[0].backlog == 1000
    again = book.drain()
    assert again.rows == {} and again.pending == 0 and again.feeds[0].backlog == 0


def test_direction_and_change() -> None:
    book, _, _ = make_book()
    send(book, "A.X", tick("A.X", 10.0))
    send(book, "A.X", tick("A.X", 9.0))
    row = book.drain().rows["A.X"]
    assert row.direction == -1
    assert row.change == pytest.approx(-1.0)  # no pre_close: against the first seen last
    send(book, "A.X", tick("A.X", 9.0, pre_close=8.0))
    row = book.drain().rows["A.X"]
    assert row.direction == 0
    assert row.change == pytest.approx(1.0)


def test_gaps_counted_exactly() -> None:
    book, _, _ = make_book()
    env = Envelope("pub-1", epoch=7)
    for i in range(20):
        body = tick("A.X", 1.0 + i)
        env.stamp("A.X", body)
        if i in (3, 7, 8, 15):
            continue  # lost on the way
        book.on_frame(0, b"A.X", packb(body))
    update = book.drain()
    assert update.feeds[0].gaps == 4
    assert update.rows["A.X"].gaps == 4  # the same messages, seen by tseq
    assert update.feeds[0].received == 16


def test_gaps_across_topics_and_telemetry_share_seq() -> None:
    book, _, _ = make_book()
    env = Envelope("pub-1", epoch=7)
    send(book, "A.X", tick("A.X", 1.0), env)
    send(book, health_topic("pub-1"), {"node": "pub-1", "status": "OK", "ts_ns": 1}, env)
    env.stamp("B.Y", tick("B.Y", 1.0))  # lost
    send(book, "A.X", tick("A.X", 2.0), env)
    update = book.drain()
    assert update.feeds[0].gaps == 1
    assert update.rows["A.X"].gaps == 0  # nothing lost on A.X itself


def test_epoch_change_is_a_restart_not_gaps() -> None:
    book, _, _ = make_book()
    first = Envelope("pub-1", epoch=1)
    for i in range(50):
        send(book, "A.X", tick("A.X", 1.0 + i), first)
    second = Envelope("pub-1", epoch=2)  # restarted: seq and tseq start over
    for i in range(5):
        send(book, "A.X", tick("A.X", 1.0 + i), second)
    update = book.drain()
    feed = update.feeds[0]
    assert feed.restarts == 1
    assert feed.gaps == 0
    assert update.rows["A.X"].gaps == 0


def test_backwards_seq_is_a_duplicate_not_a_gap() -> None:
    book, _, _ = make_book()
    env = Envelope("pub-1", epoch=1)
    bodies = [env.stamp("A.X", tick("A.X", 1.0 + i)) for i in range(5)]
    for body in [*bodies, bodies[2]]:
        book.on_frame(0, b"A.X", packb(body))
    env2 = [env.stamp("A.X", tick("A.X", 9.0))]
    book.on_frame(0, b"A.X", packb(env2[0]))
    feed = book.drain().feeds[0]
    assert feed.duplicates == 1
    assert feed.gaps == 0


def test_tick_without_envelope_is_shown_without_latency() -> None:
    book, _, _ = make_book()
    assert send(book, "IF2506.CFFEX", tick("IF2506.CFFEX", 3500.0))
    update = book.drain()
    row = update.rows["IF2506.CFFEX"]
    assert row.has_envelope is False
    assert row.latency_us is None
    assert row.gaps == 0
    assert update.feeds[0].gaps == 0
    assert update.feeds[0].latency_p50_us is None


def _deep() -> bytes:
    return b"\x91" * 5000 + b"\x00"


HOSTILE: list[tuple[str, bytes, bytes]] = [
    ("garbage", b"A.X", b"\xc1\xc1\xc1not msgpack"),
    ("non-map", b"A.X", packb([1, 2, 3])),
    ("nan price", b"A.X", packb(tick("A.X", math.nan))),
    ("inf price", b"A.X", packb(tick("A.X", math.inf))),
    ("bool price", b"A.X", packb(tick("A.X", True))),  # type: ignore[arg-type]
    ("string bid", b"A.X", packb({**tick("A.X", 1.0), "bid_price_1": "1.0"})),
    ("seq not int", b"A.X", packb({**tick("A.X", 1.0), "pub": "p", "epoch": 1, "seq": "1",
                                   "tseq": 1, "ts_ns": 1})),
    ("ts_ns float", b"A.X", packb({**tick("A.X", 1.0), "pub": "p", "epoch": 1, "seq": 1,
                                   "tseq": 1, "ts_ns": 1.5})),
    ("pub not str", b"A.X", packb({**tick("A.X", 1.0), "pub": 5, "epoch": 1, "seq": 1,
                                   "tseq": 1, "ts_ns": 1})),
    ("pub unhashable", b"A.X", packb({**tick("A.X", 1.0), "pub": [1], "epoch": 1,
                                      "seq": 1, "tseq": 1, "ts_ns": 1})),
    ("deep nesting", b"A.X", _deep()),
    ("huge map header", b"A.X", b"\xdf\x7f\xff\xff\xff"),
    ("huge str header", b"A.X", b"\x81\xa1k\xdb\x7f\xff\xff\xff"),
    ("ext type in a shown field", b"A.X", packb({"vt_symbol": "A.X",
                                                 "last_price": msgpack.ExtType(5, b"abc")})),
    ("trailing bytes", b"A.X", packb(tick("A.X", 1.0)) + b"\x00"),
    ("bytes key", b"A.X", msgpack.packb({b"last_price": 1.0}, use_bin_type=True)),
    ("invalid utf-8 vt_symbol", b"A.X", b"\x81\xa9vt_symbol\xa2\xff\xfe"),
    ("missing envelope field", b"A.X", packb({**tick("A.X", 1.0), "pub": "p", "epoch": 1,
                                              "seq": 1, "ts_ns": 1})),
    ("map header over the limit", b"A.X", b"\xde\xff\xff" + b"\xa1k\xc0" * 10),
    ("vt mismatch", b"A.X", packb(tick("B.Y", 1.0))),
    ("topic not utf-8", b"\xff\xfe.X", packb(tick("A.X", 1.0))),
    ("empty topic", b"", packb({"last_price": 1.0})),
    ("bad health", health_topic("n").encode(), packb({"node": "n", "status": "FINE"})),
    ("telemetry no node", b"telemetry.health", packb({"status": "OK"})),
    ("event garbage", b"event.order", b"\x01\x02"),
    ("oversized", b"A.X", packb({"vt_symbol": "A.X", "blob": "x" * 3000})),
]


def test_hostile_frames_are_rejected_while_good_ticks_update() -> None:
    book, _, _ = make_book(limits=Limits(max_msg_size=2048))
    env = Envelope("pub-1", epoch=1)
    good = 0
    for i, (name, topic, payload) in enumerate(HOSTILE):
        assert send(book, "A.X", tick("A.X", 100.0 + i), env), name
        good += 1
        assert book.on_frame(0, topic, payload) is False, name
    assert send(book, "A.X", tick("A.X", 999.0), env)
    good += 1
    update = book.drain()
    feed = update.feeds[0]
    assert feed.rejected == len(HOSTILE)
    assert feed.received == len(HOSTILE) + good
    assert feed.last_problem
    assert feed.gaps == 0
    assert sorted(update.rows) == ["A.X"]  # nothing hostile became a symbol
    row = update.rows["A.X"]
    assert row.last == 999.0 and row.ticks == good


def test_ingest_decodes_exactly_the_shown_fields_and_the_envelope() -> None:
    assert set(HotTick.__struct_fields__) == {"vt_symbol", *HOT_NUM_FIELDS, *ENVELOPE_FIELDS}


def test_off_screen_rows_wait_for_their_turn_and_lose_nothing() -> None:
    book, clock, _ = make_book()
    for vt in ("A.X", "B.X"):
        send(book, vt, tick(vt, 1.0))
    assert sorted(book.drain(on_screen={"A.X"}).rows) == ["A.X", "B.X"]  # new: at once
    send(book, "A.X", tick("A.X", 2.0))
    send(book, "B.X", tick("B.X", 2.0))
    send(book, "C.X", tick("C.X", 2.0))
    update = book.drain(on_screen={"A.X"})
    assert sorted(update.rows) == ["A.X", "C.X"]  # on screen, and a symbol never sent
    assert book.drain(on_screen={"A.X"}).rows == {}  # B.X still waits its turn
    send(book, "B.X", tick("B.X", 3.0))
    clock.advance(OFF_SCREEN_ROWS_NS / NS)
    update = book.drain(on_screen={"A.X"})
    assert sorted(update.rows) == ["B.X"]
    assert update.rows["B.X"].last == 3.0 and update.rows["B.X"].ticks == 3
    send(book, "B.X", tick("B.X", 4.0))
    assert book.drain(on_screen={"B.X"}).rows["B.X"].last == 4.0  # scrolled into view
    send(book, "A.X", tick("A.X", 5.0))
    assert book.drain().rows["A.X"].last == 5.0  # no on_screen: every row, every frame


def test_a_rejected_tick_does_not_replace_the_good_one() -> None:
    book, _, _ = make_book()
    send(book, "A.X", tick("A.X", 5.0))
    book.drain()
    book.on_frame(0, b"A.X", packb(tick("A.X", math.nan)))
    update = book.drain()
    assert update.rows == {}
    assert book.all_rows()["A.X"].last == 5.0


def test_malformed_message_counts_as_received_and_rejected() -> None:
    book, _, _ = make_book()
    book.on_malformed(0, "message has 1 frame, expected 2")
    feed = book.drain().feeds[0]
    assert (feed.received, feed.rejected) == (1, 1)
    assert feed.last_problem == "message has 1 frame, expected 2"


def test_freshness_ok_stale_down() -> None:
    book, clock, _ = make_book(stale_after_s=3.0)
    assert book.drain().feeds[0].state == FEED_DOWN  # never received anything
    book.set_connection(0, CONN_CONNECTED)
    send(book, "A.X", tick("A.X", 1.0))
    assert book.drain().feeds[0].state == FEED_OK
    clock.advance(2.9)
    assert book.drain().feeds[0].state == FEED_OK
    clock.advance(0.2)
    feed = book.drain().feeds[0]
    assert feed.state == FEED_STALE and feed.connection == CONN_CONNECTED
    # Health alone keeps a feed fresh: silence, not a lack of ticks, means dead.
    send(book, health_topic("pub-1"), {"node": "pub-1", "status": "OK", "ts_ns": 1})
    assert book.drain().feeds[0].state == FEED_OK
    clock.advance(5)
    book.set_connection(0, CONN_DISCONNECTED)
    assert book.drain().feeds[0].state == FEED_DOWN


def send_aged(book: FeedBook, env: Envelope, wall: Clock, vt: str, age_s: float) -> None:
    """A tick stamped `age_s` before the console's wall clock."""
    body = tick(vt, 1.0)
    env.stamp(vt, body)
    body["ts_ns"] = wall.now - int(age_s * NS)
    book.on_frame(0, vt.encode(), packb(body))


def test_a_backlog_older_than_the_stale_threshold_is_late_not_fresh() -> None:
    book, clock, wall = make_book(stale_after_s=3.0)
    env = Envelope("pub-1", epoch=1)
    book.set_connection(0, CONN_CONNECTED)
    send_aged(book, env, wall, "A.X", 0.002)
    clock.advance(1.0)
    wall.advance(1.0)
    assert book.drain().feeds[0].state == FEED_OK  # first sample: the latency baseline
    clock.advance(9.0)  # a partition: nothing for 9 s
    wall.advance(9.0)
    assert book.drain().feeds[0].state == FEED_STALE
    for age in (9.0, 8.0, 7.0):  # the backlog of the partition arrives in a burst
        send_aged(book, env, wall, "A.X", age)
    feed = book.drain().feeds[0]
    assert feed.late == 3 and feed.received == 4
    assert feed.state == FEED_STALE  # old news does not make the feed look healthy
    assert book.all_rows()["A.X"].ticks == 4  # but every tick is still applied
    send_aged(book, env, wall, "A.X", 0.002)  # current data again
    feed = book.drain().feeds[0]
    assert feed.state == FEED_OK and feed.late == 3
    clock.advance(1.0)
    wall.advance(1.0)
    history = book.drain().history
    assert history is not None and history.late_per_s[-1] == 3  # the burst, marked


def test_a_publisher_clock_seconds_off_is_not_late() -> None:
    book, clock, wall = make_book(stale_after_s=3.0)
    env = Envelope("pub-1", epoch=1)
    for second in range(3):  # the publisher's clock is 5 s behind the console's
        send_aged(book, env, wall, "A.X", 5.0 + second * 0.001)
        clock.advance(1.0)
        wall.advance(1.0)
        feed = book.drain().feeds[0]
    assert feed.late == 0 and feed.state == FEED_OK


def test_eviction_of_least_recently_updated_at_max_symbols() -> None:
    book, clock, _ = make_book(max_symbols=3)
    for vt in ("A.X", "B.X", "C.X"):
        send(book, vt, tick(vt, 1.0))
        clock.advance(0.01)
        book.drain()
    send(book, "A.X", tick("A.X", 2.0))  # A is now the most recent
    book.drain()
    send(book, "D.X", tick("D.X", 1.0))
    send(book, "E.X", tick("E.X", 1.0))
    update = book.drain()
    assert sorted(update.removed) == ["B.X", "C.X"]
    assert sorted(update.rows) == ["D.X", "E.X"]
    assert sorted(book.all_rows()) == ["A.X", "D.X", "E.X"]
    assert book.detail("B.X") is None


def test_evicted_then_readmitted_symbol_is_not_reported_removed() -> None:
    book, _, _ = make_book(max_symbols=1)
    send(book, "A.X", tick("A.X", 1.0))
    send(book, "B.X", tick("B.X", 1.0))  # evicts A
    send(book, "A.X", tick("A.X", 2.0))  # evicts B, A is back
    update = book.drain()
    assert update.removed == ["B.X"]
    assert sorted(update.rows) == ["A.X"]


def test_history_sampled_once_per_second() -> None:
    book, clock, wall = make_book(history_s=5)
    env = Envelope("pub-1", epoch=1)
    for i in range(10):
        send(book, "A.X", tick("A.X", 1.0 + i), env, wall)
    assert book.drain().history is None  # less than a second so far
    clock.advance(1.0)
    update = book.drain()
    assert update.history is not None
    assert update.history.rate_total == [10.0]
    assert update.history.rate_by_feed == {FEED: [10.0]}
    assert update.history.latency_p50_us == [pytest.approx(2000.0)]
    assert update.feeds[0].msgs_per_s == 10.0
    assert update.feeds[0].latency_p99_us == pytest.approx(2000.0)
    assert book.drain().history is None  # not again within the same second
    clock.advance(3.0)  # nobody drained for 3 s: every second gets a sample
    history = book.drain().history
    assert history is not None and history.rate_total == [10.0, 0.0, 0.0, 0.0]
    clock.advance(10.0)
    history = book.drain().history
    assert history is not None and len(history.rate_total) == 5  # bounded to history_s


def test_telemetry_metrics_health_logs_and_events() -> None:
    book, _, _ = make_book()
    env = Envelope("pub-1", epoch=1)
    metrics = {"node": "pub-1", "ts_ns": 5, "queue_depth": 3, "queue_capacity": 100,
               "dropped_total": 0}
    send(book, metrics_topic("pub-1"), metrics, env)
    send(book, health_topic("pub-1"), {"node": "pub-1", "ts_ns": 6, "status": "OK",
                                       "detail": ""}, env)
    send(book, health_topic("pub-1"), {"node": "pub-1", "ts_ns": 7, "status": "OK",
                                       "detail": ""}, env)
    send(book, health_topic("pub-1"), {"node": "pub-1", "ts_ns": 8, "status": "DEGRADED",
                                       "detail": "queue full"}, env)
    send(book, logs_topic("pub-1"), {"node": "pub-1", "ts_ns": 9, "level": "WARNING",
                                     "message": "slow"}, env)
    send(book, "event.order", {"order_id": "o1"}, env)
    update = book.drain()
    feed = update.feeds[0]
    assert feed.publishers["pub-1"]["queue_depth"] == 3
    assert feed.health == {"pub-1": "DEGRADED"}
    kinds = [(r.kind, r.level, r.message) for r in update.telemetry]
    assert kinds == [("health", "OK", ""), ("health", "DEGRADED", "queue full"),
                     ("logs", "WARNING", "slow")]  # repeated OK health recorded once
    assert [topic for topic, _ in update.events] == ["event.order"]
    assert update.events[0][1]["order_id"] == "o1"
    assert update.rows == {} and update.pending == 0
    assert feed.gaps == 0 and feed.rejected == 0
    assert book.drain().telemetry == []


# Fields the table does not show are walked, not checked, on every tick; the
# detail view decodes the whole frame and reports what is wrong with them.
UNSHOWN_FIELD_PROBLEMS = [
    ("ext type", packb({"vt_symbol": "A.X", "last_price": 3.0,
                        "x": msgpack.ExtType(5, b"abc")}), "ext type 5"),
    ("invalid utf-8 key", b"\x82\xaalast_price\x03\xa2\xff\xfe\x01", "not a msgpack map"),
    ("invalid utf-8 value", b"\x82\xaalast_price\x03\xa1a\xa2\xff\xfe", "not a msgpack map"),
]


@pytest.mark.parametrize(("name", "payload", "problem"), UNSHOWN_FIELD_PROBLEMS,
                         ids=[c[0] for c in UNSHOWN_FIELD_PROBLEMS])
def test_a_bad_field_the_table_does_not_show_is_reported_by_the_detail(
        name: str, payload: bytes, problem: str) -> None:
    book, _, _ = make_book()
    send(book, "A.X", tick("A.X", 1.0))
    assert book.on_frame(0, b"A.X", payload) is True, name
    update = book.drain()
    assert update.feeds[0].rejected == 0
    assert update.rows["A.X"].last == 3.0
    detail = book.detail("A.X")
    assert detail is not None
    assert detail.problem is not None and problem in detail.problem
    assert detail.tick["last_price"] == 3.0  # the fields ingest did read


def test_detail_has_tick_history_and_field_problem() -> None:
    book, clock, _ = make_book()
    send(book, "A.X", tick("A.X", 1.0, open_price=math.nan))  # not a hot field: kept
    detail = book.detail("A.X")
    assert detail is not None
    assert detail.tick["last_price"] == 1.0
    assert detail.problem == "open_price is not a finite number"
    assert detail.recent == [(clock.now, 1.0)]
    for i in range(100):
        clock.advance(0.001)
        send(book, "A.X", tick("A.X", 2.0 + i))
    detail = book.detail("A.X")
    assert detail is not None
    assert len(detail.recent) == RECENT_POINTS
    assert detail.recent[-1] == (clock.now, 101.0)
    assert book.detail("NOPE.X") is None


@settings(max_examples=300, deadline=None)
@given(
    topic=st.sampled_from([b"A.X", b"telemetry.health.n", b"telemetry.metrics.n",
                           b"telemetry.logs.n", b"event.order", b"\xff"]),
    payload=st.one_of(
        st.binary(max_size=64),
        st.recursive(
            st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats()
            | st.text(max_size=8) | st.binary(max_size=8),
            lambda inner: st.lists(inner, max_size=4)
            | st.dictionaries(st.text(max_size=8) | st.integers(-100, 100), inner, max_size=4),
            max_leaves=12,
        ).map(lambda obj: msgpack.packb(obj, use_bin_type=True)),
    ),
)
def test_any_frame_is_counted_and_never_raises(topic: bytes, payload: bytes) -> None:
    book, _, _ = make_book()
    accepted = book.on_frame(0, topic, payload)
    assert isinstance(accepted, bool)
    send(book, "A.X", tick("A.X", 1.0))  # a good tick still lands afterwards
    feed = book.drain().feeds[0]
    assert feed.received == 2
    assert feed.rejected == (0 if accepted else 1)
    assert book.all_rows()["A.X"].last == 1.0
