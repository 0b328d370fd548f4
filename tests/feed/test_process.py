"""The console's ingest process: the same counts as the thread, across a real pipe.

Every test starts a real `python -m console.feed.child` behind
`IngestProcess` and reads what it says through the TickSource interface,
the way the UI does, one drain per frame.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from console.cli.run import make_tick_source, validate_console_config
from console.feed.ingest import Ingest
from console.feed.process import NOT_ANSWERING, SILENT_S, IngestProcess
from console.model import CONN_CONNECTED, FEED_DOWN, FEED_OK
from services.recording import read_recording
from services.runtime.config import ConfigError, load_config
from services.runtime.errors import UsageError
from tests.conftest import Feed, wait_until
from tests.feed.test_ingest import DEADLINE, View

FRAME_S = 0.02  # how often these tests drain, like a UI at 50 fps


@pytest.fixture
def sources() -> Iterator[list[IngestProcess]]:
    started: list[IngestProcess] = []
    try:
        yield started
    finally:
        for source in started:
            source.stop()


def start_source(sources: list[IngestProcess], *endpoints: str) -> IngestProcess:
    source = IngestProcess(list(endpoints), stale_after_s=3.0)
    sources.append(source)
    source.start()
    return source


def first_tick(sources: list[IngestProcess], feed: Feed) -> tuple[IngestProcess, View]:
    """A started source that has shown one tick of A.X."""
    source = start_source(sources, feed.endpoint)
    feed.wait_subscribed()
    view = View(source)
    feed.tick("A.X", 1.0)
    wait_until(lambda: "A.X" in view.refresh().rows, DEADLINE, FRAME_S, "first tick")
    return source, view


def process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A zombie still answers kill(0) until its parent reaps it.
    with open(f"/proc/{pid}/stat") as fh:
        return fh.read().rpartition(")")[2].split()[0] == "Z"


def test_every_frame_counted_and_rows_cross_the_pipe(
    feed: Feed, sources: list[IngestProcess]
) -> None:
    source = start_source(sources, feed.endpoint)
    feed.wait_subscribed()
    view = View(source)
    wait_until(lambda: view.refresh().feeds and view.feed.connection == CONN_CONNECTED,
               DEADLINE, FRAME_S, "connected")
    total = 20_000
    symbols = [f"S{i}.EX" for i in range(50)]
    for i in range(total):
        feed.tick(symbols[i % 50], 100.0 + i)
    wait_until(lambda: view.refresh().ingest.received_total >= total, DEADLINE, FRAME_S,
               f"{total} frames")
    view.refresh()
    assert source.received_total == total
    assert view.feed is not None
    assert view.feed.received == total
    assert view.feed.rejected == 0 and view.feed.gaps == 0
    assert view.pending == total
    assert sorted(view.rows) == sorted(symbols)
    assert sum(row.ticks for row in view.rows.values()) == total
    assert view.rows["S49.EX"].last == 100.0 + total - 1
    assert view.feed.state == FEED_OK
    detail = source.detail("S49.EX")
    assert detail is not None and detail.tick["vt_symbol"] == "S49.EX"
    assert detail.row.last == 100.0 + total - 1
    assert sorted(source.all_rows()) == sorted(symbols)
    assert source.detail("NOPE.EX") is None
    # Bulk work at a lower priority than the screen (ingest_nice, default 10).
    assert source.pid is not None
    expected = min(os.getpriority(os.PRIO_PROCESS, 0) + 10, 19)
    assert os.getpriority(os.PRIO_PROCESS, source.pid) == expected


def test_rows_off_screen_arrive_on_their_turn_with_the_latest_values(
    feed: Feed, sources: list[IngestProcess]
) -> None:
    source, view = first_tick(sources, feed)
    symbols = [f"S{i}.EX" for i in range(20)]
    for vt in symbols:
        feed.tick(vt, 1.0)
    wait_until(lambda: set(symbols) <= set(view.refresh().rows), DEADLINE, FRAME_S,
               "every symbol, new ones at once")
    source.show(["S0.EX"])
    for vt in symbols:
        feed.tick(vt, 2.0)
    wait_until(lambda: all(view.refresh().rows[vt].last == 2.0 for vt in symbols), DEADLINE,
               FRAME_S, "off-screen rows on their turn")
    assert sum(row.ticks for row in view.rows.values()) == 1 + 2 * len(symbols)
    source.show(None)  # every row every frame again
    feed.tick("S19.EX", 3.0)
    wait_until(lambda: view.refresh().rows["S19.EX"].last == 3.0, DEADLINE, FRAME_S, "S19")


def test_a_killed_process_is_restarted_and_the_screen_is_told(
    feed: Feed, sources: list[IngestProcess]
) -> None:
    source, view = first_tick(sources, feed)
    first = source.pid
    assert first is not None
    os.kill(first, signal.SIGKILL)
    wait_until(lambda: any("restarting" in m for m in view.refresh().messages), DEADLINE,
               FRAME_S, "a restart notice")
    assert any(str(first) in m for m in view.messages)
    wait_until(lambda: view.refresh().ingest.pid not in (None, first), DEADLINE, FRAME_S,
               "a new process")
    view.rows.clear()

    def ticks_flow_again() -> bool:
        # XPUB may not repeat the new process's subscription (the old one's
        # can still count), so tick until one arrives.
        feed.tick("B.X", 2.0)
        return "B.X" in view.refresh().rows

    wait_until(ticks_flow_again, DEADLINE, FRAME_S, "ticks after the restart")
    assert source.restarts == 1
    second = source.pid
    assert second is not None
    source.stop()
    wait_until(lambda: process_gone(second), DEADLINE, FRAME_S, "the process to exit")


def test_a_silent_process_shows_every_feed_down_until_it_answers(
    feed: Feed, sources: list[IngestProcess]
) -> None:
    source, view = first_tick(sources, feed)
    assert view.feed is not None and view.feed.state == FEED_OK
    pid = source.pid
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    try:
        wait_until(lambda: view.refresh().feeds and view.feed.state == FEED_DOWN,
                   SILENT_S + DEADLINE, FRAME_S, "feeds shown DOWN")
        assert view.feed is not None and view.feed.last_problem == NOT_ANSWERING
    finally:
        os.kill(pid, signal.SIGCONT)
    feed.tick("A.X", 2.0)
    wait_until(lambda: view.refresh().feeds and view.feed.state == FEED_OK,
               DEADLINE, FRAME_S, "feeds OK again")
    assert source.pid == pid and source.restarts == 0


def test_recording_through_the_process(
    feed: Feed, sources: list[IngestProcess], tmp_path: Path
) -> None:
    source = start_source(sources, feed.endpoint)
    feed.wait_subscribed()
    path = tmp_path / "session.rec"
    source.start_recording(path)
    assert source.recording == path
    for i in range(100):
        feed.tick("A.X", float(i))
    wait_until(lambda: source.drain().received_total == 100, DEADLINE, FRAME_S, "100 frames")
    source.stop_recording()
    assert source.recording is None
    assert len(list(read_recording(path))) == 100
    with pytest.raises(OSError, match="does not exist"):
        source.start_recording(tmp_path / "no-such-dir" / "x.rec")
    assert source.recording is None


def test_a_bad_endpoint_is_the_usage_error_of_the_thread(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="feed endpoint") as from_process:
        IngestProcess(["not-an-endpoint"]).start()
    with pytest.raises(UsageError, match="feed endpoint") as from_thread:
        Ingest(["not-an-endpoint"]).start()
    assert str(from_process.value) == str(from_thread.value)


def test_config_chooses_the_ingest() -> None:
    def config(value: str) -> object:
        return load_config(use_user_file=False, env={}, overrides={"console.ingest": value})

    assert isinstance(make_tick_source(["tcp://127.0.0.1:1"], config("process")), IngestProcess)
    assert isinstance(make_tick_source(["tcp://127.0.0.1:1"], config("thread")), Ingest)
    with pytest.raises(ConfigError, match=r"console\.ingest: expected one of PROCESS, THREAD"):
        config("fork")
    too_nice = load_config(use_user_file=False, env={}, overrides={"console.ingest_nice": 25})
    with pytest.raises(UsageError, match=r"ingest_nice .* between 0 and 19, got 25"):
        validate_console_config(too_nice)


def test_an_idle_ui_is_answered_on_news_not_every_frame(
    sources: list[IngestProcess], feed: Feed
) -> None:
    """With `hold`, a drain with nothing new waits in the process: a quiet feed
    costs about one answer a second (the history's), and a tick is answered at once."""
    source, view = first_tick(sources, feed)
    source.hold(1000)
    # Drain like a UI at 50 fps until three answers came: at that pace without
    # holding, three answers take three frames.
    start = source.answers
    frames = 0

    def three_answers() -> bool:
        nonlocal frames
        frames += 1
        view.refresh()
        return source.answers - start >= 3

    wait_until(three_answers, DEADLINE, FRAME_S, "held answers")
    assert frames > 3 * 10, f"answered {source.answers - start} times in {frames} frames"
    answers = source.answers
    feed.tick("B.X", 2.0)
    wait_until(lambda: "B.X" in view.refresh().rows, DEADLINE, FRAME_S, "the tick while held")
    assert source.answers > answers
    source.hold(None)
    answers = source.answers  # a drain already held is answered by its deadline
    wait_until(lambda: view.refresh() and source.answers > answers, DEADLINE, FRAME_S,
               "the last held answer")
    start, frames = source.answers, 0
    wait_until(three_answers, DEADLINE, FRAME_S, "answers without holding")
    assert frames <= 3 + 5, f"not holding: {frames} frames for three answers"
