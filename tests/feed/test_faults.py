"""Feeds under faults: dead, frozen and restarted publishers, lost and hostile messages.

Real processes over real sockets: the project's publisher (killed with
SIGKILL, frozen with SIGSTOP, restarted on the same port) and
`bench/fault_feed.py`, a stand-in for somebody else's publisher that skips
sequence numbers and mixes in hostile frames. What is checked is what the
console shows: the feed rows and symbol rows that `Ingest` hands the UI.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest

from console.feed.ingest import OVERSIZED_DROP, Ingest
from console.model import (
    CONN_CONNECTED,
    CONN_DISCONNECTED,
    CONN_HEARTBEAT_TIMEOUT,
    CONN_RETRYING,
    FEED_DOWN,
    FEED_OK,
    FEED_STALE,
    FeedRow,
)
from tests.conftest import ServiceFactory, wait_until

FAULT_FEED = Path(__file__).resolve().parents[2] / "bench" / "fault_feed.py"
STALE_AFTER_S = 3.0
# Going stale takes STALE_AFTER_S; the rest is slack for a busy 2-core machine.
STALE_DEADLINE = STALE_AFTER_S + 5.0
DEADLINE = 20.0
# Below the heartbeat timeout (3 s), so a frozen feed is STALE before it is timed out.
FROZEN_STALE_AFTER_S = 1.5


class FaultFeed:
    """`bench/fault_feed.py` as a child process; its JSON report lines are kept."""

    def __init__(self, *args: str) -> None:
        self.popen = subprocess.Popen(
            [sys.executable, str(FAULT_FEED), "--bind", "tcp://127.0.0.1:*", *args],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        assert self.popen.stdout is not None
        self._reader = threading.Thread(target=self._read, args=(self.popen.stdout,),
                                        daemon=True)
        self._reader.start()
        ready = wait_until(lambda: self.last("ready"), DEADLINE, message="fault_feed ready")
        self.endpoint: str = ready["endpoint"]

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            with self._lock:
                self.lines.append(json.loads(line))

    def last(self, event: str | None = None) -> dict[str, Any] | None:
        """The latest report line (of one kind of event, if given)."""
        with self._lock:
            for line in reversed(self.lines):
                if event is None or line["event"] == event:
                    return line
        if self.popen.poll() is not None:
            stderr = self.popen.stderr.read() if self.popen.stderr else ""
            raise AssertionError(f"fault_feed exited with {self.popen.returncode}: {stderr}")
        return None

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(5)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        self._reader.join(2)
        for stream in (self.popen.stdout, self.popen.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def fault_feeds() -> Iterator[list[FaultFeed]]:
    started: list[FaultFeed] = []
    try:
        yield started
    finally:
        for feed in started:
            feed.stop()



def start_ingest(ingests: list[Ingest], endpoint: str) -> Ingest:
    ingest = Ingest([endpoint], stale_after_s=STALE_AFTER_S)
    ingest.start()
    ingests.append(ingest)
    return ingest


def feed_row(ingest: Ingest) -> FeedRow:
    """The one feed row, as the UI sees it on its next frame."""
    return ingest.drain().feeds[0]


def total_ticks(ingest: Ingest) -> int:
    return sum(row.ticks for row in ingest.all_rows().values())


def start_fault_feed(fault_feeds: list[FaultFeed], *args: str) -> FaultFeed:
    feed = FaultFeed(*args)
    fault_feeds.append(feed)
    return feed


# --- the project's publisher: killed, frozen, restarted ---------------------------------


def test_killed_publisher_goes_stale_and_its_restart_is_recognised(
    services: ServiceFactory, ingests: list[Ingest]
) -> None:
    publisher = services.publisher("--rate", "100", "--symbols", "5")
    endpoint = publisher.endpoints["pub"]
    ingest = start_ingest(ingests, endpoint)
    wait_until(lambda: feed_row(ingest).state == FEED_OK and total_ticks(ingest) > 20,
               DEADLINE, message="ticks flowing")
    gaps_before = feed_row(ingest).gaps

    publisher.signal(signal.SIGKILL)
    publisher.popen.wait(5)
    # Silent for stale_after_s with the connection lost: STALE's strong form, DOWN.
    row = wait_until(
        lambda: (r := feed_row(ingest)).state in (FEED_STALE, FEED_DOWN)
        and r.connection in (CONN_RETRYING, CONN_DISCONNECTED) and r,
        STALE_DEADLINE, message="feed stale with its connection lost")
    assert row.connection != CONN_CONNECTED
    assert row.restarts == 0

    # Same port: the SUB reconnects by itself and the new epoch is a restart, not a gap.
    services.start("publisher", "--bind", endpoint, "--rate", "100", "--symbols", "5")
    row = wait_until(
        lambda: (r := feed_row(ingest)).restarts == 1 and r.state == FEED_OK
        and r.connection == CONN_CONNECTED and r,
        DEADLINE, message="restart recognised and feed OK again")
    ticks = total_ticks(ingest)
    wait_until(lambda: total_ticks(ingest) > ticks + 20, DEADLINE, message="new ticks")
    row = feed_row(ingest)
    assert row.gaps == gaps_before
    assert row.restarts == 1
    assert row.duplicates == 0
    assert row.rejected == 0


def test_frozen_publisher_goes_stale_then_times_out_and_recovers_when_continued(
    services: ServiceFactory, ingests: list[Ingest]
) -> None:
    publisher = services.publisher("--rate", "100", "--symbols", "5")
    ingest = Ingest([publisher.endpoints["pub"]], stale_after_s=FROZEN_STALE_AFTER_S)
    ingest.start()
    ingests.append(ingest)
    wait_until(lambda: feed_row(ingest).state == FEED_OK and total_ticks(ingest) > 20,
               DEADLINE, message="ticks flowing")
    try:
        publisher.signal(signal.SIGSTOP)
        # The TCP connection stays up: at first only the silence says something is wrong.
        row = wait_until(lambda: (r := feed_row(ingest)).state == FEED_STALE and r,
                         STALE_DEADLINE, message="feed STALE while frozen")
        assert row.connection == CONN_CONNECTED
        # Then the frozen peer misses its heartbeats: the connection is closed.
        row = wait_until(lambda: (r := feed_row(ingest)).connection == CONN_HEARTBEAT_TIMEOUT
                         and r, STALE_DEADLINE, message="heartbeat timeout while frozen")
        assert row.state == FEED_DOWN
    finally:
        publisher.signal(signal.SIGCONT)
    ticks = total_ticks(ingest)
    wait_until(lambda: feed_row(ingest).state == FEED_OK and total_ticks(ingest) > ticks,
               DEADLINE, message="feed OK after SIGCONT")
    row = feed_row(ingest)
    assert row.connection == CONN_CONNECTED
    assert row.restarts == 0  # same process, same epoch
    # What it sent after SIGCONT before the SUB had reconnected is lost, and
    # counted as gaps by the seq accounting (bench/soak.py checks those books).
    assert row.duplicates == 0


# --- a third-party feed: skips, hostile frames, no envelope ------------------------------


def test_skipped_sequence_numbers_are_counted_exactly(
    fault_feeds: list[FaultFeed], ingests: list[Ingest]
) -> None:
    feed = start_fault_feed(fault_feeds, "--skip-every", "10", "--count", "400",
                            "--rate", "2000", "--wait-subscriber")
    ingest = start_ingest(ingests, feed.endpoint)
    done = wait_until(lambda: feed.last("done"), DEADLINE, message="fault_feed done")
    assert done["skipped"] > 0
    wait_until(lambda: feed_row(ingest).received == done["sent"], DEADLINE,
               message=f"all {done['sent']} ticks received")
    row = feed_row(ingest)
    assert row.gaps == done["skipped"]
    assert done["seq"] == done["sent"] + done["skipped"]
    assert (row.rejected, row.duplicates, row.restarts) == (0, 0, 0)
    assert total_ticks(ingest) == done["sent"]


def test_hostile_payloads_are_each_counted_as_rejected(
    fault_feeds: list[FaultFeed], ingests: list[Ingest]
) -> None:
    feed = start_fault_feed(fault_feeds, "--hostile-every", "3", "--hostile-kinds", "payload",
                            "--count", "300", "--rate", "2000", "--wait-subscriber")
    ingest = start_ingest(ingests, feed.endpoint)
    done = wait_until(lambda: feed.last("done"), DEADLINE, message="fault_feed done")
    assert all(count > 0 for count in done["hostile_by_kind"].values()), done
    wait_until(lambda: feed_row(ingest).received == done["sent"] + done["hostile"], DEADLINE,
               message="every good and hostile frame received")
    row = feed_row(ingest)
    assert row.rejected == done["hostile"]
    assert row.last_problem
    assert total_ticks(ingest) == done["sent"]  # not one good tick lost to a bad neighbour
    assert row.gaps == 0  # hostile frames never use up a sequence number
    assert ingest.alive and ingest.errors == 0


def test_every_hostile_kind_leaves_good_ticks_flowing(
    fault_feeds: list[FaultFeed], ingests: list[Ingest]
) -> None:
    feed = start_fault_feed(fault_feeds, "--hostile-every", "2", "--rate", "400",
                            "--report-every", "0.2")
    ingest = start_ingest(ingests, feed.endpoint)
    wait_until(lambda: total_ticks(ingest) > 0, DEADLINE, message="a first tick")

    def cycles() -> int:
        stats = feed.last()
        return min(stats["hostile_by_kind"].values()) if stats else 0

    # Two full cycles of every kind, oversized frames included, have gone out...
    start = cycles()
    wait_until(lambda: cycles() >= start + 2, DEADLINE, message="two hostile cycles")
    ticks = total_ticks(ingest)
    rejected = feed_row(ingest).rejected
    # ... and ingest still takes good ticks and still counts bad ones.
    # Every oversized frame costs a reconnection, so good ticks come in short
    # bursts, and the reconnections can fall in step with the feed's round-robin
    # over its symbols: one symbol may see nothing for a while. Good ticks of any
    # symbol are the proof, with room for a loaded machine.
    wait_until(lambda: total_ticks(ingest) > ticks + 2
               and feed_row(ingest).rejected > rejected,
               2 * DEADLINE, message="good ticks still updating, rejects still counted")
    assert ingest.alive and ingest.errors == 0


def test_multi_mib_frame_drops_the_connection_which_comes_back(
    fault_feeds: list[FaultFeed], ingests: list[Ingest]
) -> None:
    feed = start_fault_feed(fault_feeds, "--hostile-every", "200", "--hostile-kinds",
                            "oversized", "--rate", "200", "--report-every", "0.2")
    ingest = start_ingest(ingests, feed.endpoint)
    wait_until(lambda: (s := feed.last()) and s["hostile"] >= 1, DEADLINE,
               message="an oversized frame sent")
    # libzmq drops the connection on it; ingest counts that as one rejected frame and
    # reconnects (libzmq itself does not after a protocol error).
    row = wait_until(lambda: (r := feed_row(ingest)).rejected >= 1 and r, DEADLINE,
                     message="the oversized frame counted")
    assert row.last_problem == OVERSIZED_DROP
    ticks = total_ticks(ingest)
    wait_until(lambda: feed_row(ingest).connection == CONN_CONNECTED
               and total_ticks(ingest) > ticks + 20, DEADLINE,
               message="reconnected and ticks flowing again")
    assert feed_row(ingest).received == total_ticks(ingest)  # the big frame never arrived
    assert ingest.alive and ingest.errors == 0


def test_feed_without_envelope_shows_rows_without_latency_or_gaps(
    fault_feeds: list[FaultFeed], ingests: list[Ingest]
) -> None:
    feed = start_fault_feed(fault_feeds, "--no-envelope", "--count", "60", "--rate", "1000",
                            "--symbols", "3", "--wait-subscriber")
    ingest = start_ingest(ingests, feed.endpoint)
    done = wait_until(lambda: feed.last("done"), DEADLINE, message="fault_feed done")
    wait_until(lambda: total_ticks(ingest) == done["sent"], DEADLINE, message="every tick")
    rows = ingest.all_rows()
    assert len(rows) == 3
    for row in rows.values():
        assert row.has_envelope is False
        assert row.latency_us is None
        assert row.gaps == 0
        assert row.last is not None
    row = feed_row(ingest)
    assert (row.gaps, row.restarts, row.rejected) == (0, 0, 0)
    assert row.latency_p50_us is None
