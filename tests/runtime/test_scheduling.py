"""Who asks the kernel for which time slice (services.runtime.scheduling), read from the kernel.

Bulk work (the UI thread, the ingest process) asks for a long slice so that
the gateway link and the fabric's services preempt it as soon as they wake;
those keep the kernel's default even when a bulk thread started them. Where
the kernel has no per-thread slice (before Linux 6.12, other systems) the
calls are no-ops and the tests that read the kernel are skipped.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from console.feed.process import IngestProcess
from console.link.process import GatewayProcess
from services.runtime import scheduling
from tests.conftest import ServiceFactory
from tests.ui.test_app import make_app, pilot_test, until

T = TypeVar("T")
BULK_NS = int(scheduling.BULK_SLICE_MS * 1_000_000)


def in_thread(work: Callable[[], T]) -> T:
    """Run `work` in a fresh thread, so the test's own thread keeps its slice."""
    box: list[Any] = []

    def run() -> None:
        try:
            box.append(work())
        except BaseException as exc:  # re-raised in the test's thread
            box.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(60.0)
    assert box, "the thread did not finish"
    if isinstance(box[0], BaseException):
        raise box[0]
    return box[0]


def default_slice_ns() -> int:
    def read() -> int:
        scheduling.use_default_slice()
        value = scheduling.current_slice_ns()
        assert value is not None
        return value
    return in_thread(read)


@pytest.fixture
def needs_slices() -> None:
    if not in_thread(scheduling.prefer_long_slice):
        pytest.skip("this kernel has no per-thread time slice (Linux 6.12+)")


def test_a_thread_switches_between_a_long_and_the_default_slice(needs_slices: None) -> None:
    def switch() -> tuple[int | None, int | None]:
        scheduling.prefer_long_slice()
        long = scheduling.current_slice_ns()
        scheduling.use_default_slice()
        return long, scheduling.current_slice_ns()

    long, default = in_thread(switch)
    assert long == BULK_NS
    assert default == default_slice_ns() != BULK_NS


def test_helpers_started_by_a_bulk_thread_pick_their_own_slice(
    services: ServiceFactory, needs_slices: None,
) -> None:
    gateway = services.gateway()

    def start_both() -> tuple[int | None, int | None]:
        scheduling.prefer_long_slice()  # as the UI thread does
        link = GatewayProcess(str(gateway.endpoints["cmd"]), client_id="slices")
        ingest = IngestProcess([str(gateway.endpoints["pub"])])
        link.start()
        ingest.start()
        try:
            assert link.pid is not None and ingest.pid is not None
            return (scheduling.current_slice_ns(link.pid),
                    scheduling.current_slice_ns(ingest.pid))
        finally:
            link.stop()
            ingest.stop()

    link_slice, ingest_slice = in_thread(start_both)
    assert link_slice == default_slice_ns()   # latency-critical: the kernel's default
    assert ingest_slice == BULK_NS            # bulk: preempted by anything that wakes


def test_a_service_started_by_a_bulk_thread_keeps_the_default(
    tmp_path: Path, needs_slices: None,
) -> None:
    def start_gateway() -> int | None:
        scheduling.prefer_long_slice()
        factory = ServiceFactory(tmp_path)
        gateway = factory.gateway()
        try:
            return scheduling.current_slice_ns(gateway.pid)
        finally:
            gateway.stop()

    assert in_thread(start_gateway) == default_slice_ns()


@pilot_test
async def test_the_ui_thread_paints_with_a_long_slice(tmp_path: Path, needs_slices: None) -> None:
    app = make_app(["tcp://127.0.0.1:1"], tmp_path)
    scheduling.use_default_slice()
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: scheduling.current_slice_ns() == BULK_NS,
                    what="the UI thread's long slice")


def test_a_yielder_gives_the_cpu_away_once_per_interval(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    yields: list[int] = []
    monkeypatch.setattr(os, "sched_yield", lambda: yields.append(1))
    every_call = scheduling.Yielder(every_s=0.0)
    for _ in range(5):
        every_call()
    assert len(yields) == 5
    never = scheduling.Yielder(every_s=3600.0)
    for _ in range(5):
        never()
    assert len(yields) == 5


class FakeThread:
    """A thread's CPU and run delay as the kernel would count them, and its slice."""

    def __init__(self) -> None:
        self.now = 0.0
        self.cpu_ns = 0
        self.delay_ns = 0
        self.slices: list[int] = []

    def stat(self) -> tuple[int, int]:
        return self.cpu_ns, self.delay_ns

    def set_slice(self, ns: int) -> bool:
        self.slices.append(ns)
        return True

    def spend(self, seconds: float, *, running: float, waiting: float) -> None:
        self.now += seconds
        self.cpu_ns += int(seconds * running * 1e9)
        self.delay_ns += int(seconds * waiting * 1e9)


def test_manners_drop_politeness_while_the_ui_waits_for_the_cpu_and_try_again_later(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    yields: list[int] = []
    monkeypatch.setattr(os, "sched_yield", lambda: yields.append(1))
    thread = FakeThread()
    manners = scheduling.Manners(every_s=0.0, read_stat=thread.stat,
                                 set_slice=thread.set_slice, clock=lambda: thread.now)
    manners.start()
    assert manners.polite and thread.slices == [BULK_NS]
    manners()
    assert yields == [1]

    def window(running: float, waiting: float) -> None:
        thread.spend(scheduling.REVIEW_WINDOW_S, running=running, waiting=waiting)
        manners.review()

    window(0.3, 0.08)            # a busy frame, a little wait: still polite
    window(0.3, 0.6)             # one window waiting twice as long as running
    assert manners.polite
    window(0.3, 0.6)             # a second one in a row: a hog shares the core
    assert not manners.polite and thread.slices[-1] == 0
    manners()
    assert yields == [1]         # plain: no more yields
    window(0.3, 0.01)            # the hog seems gone, but the hold is not over
    assert not manners.polite
    thread.spend(scheduling.FIRST_HOLD_S, running=0.3, waiting=0.01)
    manners.review()
    assert manners.polite and thread.slices[-1] == BULK_NS
    window(0.3, 0.6)
    window(0.3, 0.6)             # the hog again: plain, for twice as long this time
    assert not manners.polite
    thread.spend(scheduling.FIRST_HOLD_S, running=0.3, waiting=0.01)
    manners.review()
    assert not manners.polite
    thread.spend(scheduling.FIRST_HOLD_S, running=0.3, waiting=0.01)
    manners.review()
    assert manners.polite


def test_manners_stay_plain_where_the_run_delay_cannot_be_read() -> None:
    slices: list[int] = []
    manners = scheduling.Manners(read_stat=lambda: None, set_slice=slices.append)
    manners.start()
    manners.review()
    assert not manners.polite and slices == []
