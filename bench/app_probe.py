"""The real console app under load, measured from the inside.

Run as `python -m bench.app_probe SCENARIO --feed EP ...`; prints one
BENCH-RESULT line. The app is the real `TradeConsole` with the real
ingest (a child process, as shipped; `--ingest thread` for the in-process
one) and gateway link (also a child process as shipped, when a gateway is
given; `[console] gateway_link` chooses), run with `App.run`
at 200x50 exactly as `tradeconsole` runs it, except for the terminal: the
driver renders every frame to terminal bytes like a real one and then drops
them (Textual's headless driver skips that rendering step, which would
flatter the numbers). Each `write` of a frame is the paint hook: it counts
frames and closes key-latency measurements. Keys are injected the way the
terminal driver's input thread does it (`Driver.process_message`), from a
scenario thread, and timed from just before injection to the end of the
first painted frame that shows the moved cursor.

Scenarios:
- `load`: a flat-out feed of `--count` frames; ingest rate (first to last
  frame), frames lost, frames per second and key latency during the load.
- `latency`: a paced feed; the console's own per-second latency p50/p99
  from its feeds panel data, and HEARTBEAT round trips through the
  console's gateway client when `--gateway` is given.
- `rss`: resident memory after the feed's `--count` frames are in.
- `cpu`: process CPU over a window of a paced feed, and whether the feeds
  panel's received total equals what was sent.
"""

from __future__ import annotations

import argparse
import re
import resource
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path
from typing import Any

from textual import events
from textual.driver import Driver
from textual.drivers.headless_driver import HeadlessDriver

from bench.procs import emit_result
from bench.raw import HEARTBEAT_GAP_S
from bench.stats import percentile, process_cpu_seconds, summarise_seconds
from console.cli.run import make_tick_source
from console.model import FrameUpdate
from console.ui.app import TradeConsole
from console.ui.widgets.feeds_panel import FeedsPanel
from services.runtime.config import load_config

SIZE = (200, 50)
POLL_S = 0.02           # how often the scenario thread reads the ingest total (takes its lock)
KEY_GAP_S = 0.1         # pause between injected keys (not timed)
KEY_WARMUP_S = 1.0      # keys start this long into the load (steady state, tabs settled)
KEY_TIMEOUT_S = 3.0     # a key whose effect is not painted by then counts as this long
RSS_SETTLE_S = 2.0      # idle time after the feed before memory is read
NO_FEED_S = 60.0        # no first frame by then: the phase fails
STALL_S = 3.0           # no new frame for this long: the feed is over (or lost frames)


class FrameProbe:
    """Counts painted frames and closes key-latency measurements (on the UI thread)."""

    def __init__(self) -> None:
        self.frames: list[float] = []
        self.frame_bytes = 0
        self.key_latencies_ms: list[float] = []
        self.first_frame = threading.Event()
        self._pending: tuple[float, str | None] | None = None
        self._key_done = threading.Event()
        self.selected: Callable[[], str | None] = lambda: None

    def on_paint(self, nbytes: int) -> None:
        now = time.perf_counter()
        self.frames.append(now)
        self.frame_bytes += nbytes
        self.first_frame.set()
        pending = self._pending
        if pending is not None and self.selected() != pending[1]:
            self.key_latencies_ms.append((now - pending[0]) * 1000.0)
            self._pending = None
            self._key_done.set()

    def press(self, driver: Driver, key: str) -> None:
        """Inject a key like the terminal's input thread; wait until its frame is painted."""
        self._key_done.clear()
        self._pending = (time.perf_counter(), self.selected())
        driver.process_message(events.Key(key, None))
        if not self._key_done.wait(KEY_TIMEOUT_S):
            self._pending = None
            self.key_latencies_ms.append(KEY_TIMEOUT_S * 1000.0)

    def stalls(self, start: float, end: float, over_ms: float = 100.0) -> list[list[float]]:
        """[seconds into the window, ms without a painted frame] for each long gap."""
        times = [t for t in self.frames if start <= t <= end]
        return [[round(a - start, 3), round((b - a) * 1000.0, 1)]
                for a, b in pairwise(times) if (b - a) * 1000.0 > over_ms]

    def fps_between(self, start: float, end: float) -> float:
        painted = sum(1 for t in self.frames if start <= t <= end)
        return painted / max(end - start, 1e-9)


def null_terminal(probe: FrameProbe) -> type[Driver]:
    """A driver that renders frames like a terminal driver and then drops the bytes."""

    class NullTerminalDriver(HeadlessDriver):
        @property
        def is_headless(self) -> bool:
            return False  # so App._display renders segments to terminal sequences

        def write(self, data: str) -> None:
            if data:
                probe.on_paint(len(data))

    return NullTerminalDriver


class SampledSource:
    """The real Ingest, passed through; remembers what the per-second samples said."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.latency_seconds: list[tuple[float, float, float]] = []  # (when, p50, p99)
        self.last_update: FrameUpdate | None = None

    def show(self, on_screen: Any) -> None:
        self.inner.show(on_screen)

    def drain(self) -> FrameUpdate:
        update = self.inner.drain()
        self.last_update = update
        if update.history is not None:  # a per-second sample was taken
            for feed in update.feeds:
                if feed.latency_p50_us is not None and feed.latency_p99_us is not None:
                    self.latency_seconds.append(
                        (time.perf_counter(), feed.latency_p50_us, feed.latency_p99_us))
        return update

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def _pids(source: Any) -> list[int | None]:
    """This process, plus the console's ingest process when it has one."""
    child = getattr(source, "pid", None)
    return [None] if child is None else [None, child]


def _status_kb(pid: int | None, field: str) -> float:
    try:
        text = Path(f"/proc/{pid or 'self'}/status").read_text()
    except OSError:
        return 0.0
    for line in text.splitlines():
        if line.startswith(field):
            return float(line.split()[1])
    return 0.0


def rss_mb(source: Any) -> float:
    """Resident memory of the console: the app process and its ingest process."""
    return sum(_status_kb(pid, "VmRSS:") for pid in _pids(source)) / 1024.0


def cpu_seconds(source: Any) -> list[float]:
    """CPU time (user + system) of the app process and of its ingest process if any."""
    times = []
    for pid in _pids(source):
        if pid is None:
            usage = resource.getrusage(resource.RUSAGE_SELF)
            times.append(usage.ru_utime + usage.ru_stime)
        else:
            times.append(process_cpu_seconds(pid))
    return times


class Probe:
    """One app run with one scenario executed from a side thread."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.frames = FrameProbe()
        overrides: dict[str, Any] = {"console.fps": args.fps, "console.ingest": args.ingest}
        self.config = load_config(use_user_file=False, env={}, overrides=overrides)
        self.ingest = make_tick_source([args.feed], self.config,
                                       latency_ring=args.latency_ring)
        self.source = SampledSource(self.ingest)
        self.gateway: Any = None
        if args.gateway:
            from console.cli.run import make_gateway_client

            self.gateway = make_gateway_client(args.gateway, self.config,
                                               client_id="bench-console")
        self.data_dir = Path(tempfile.mkdtemp(prefix="tc-bench-probe-"))
        self.app = TradeConsole(self.config, source=self.source, gateway=self.gateway,
                                data_dir=self.data_dir, driver_class=null_terminal(self.frames))
        self.result: dict[str, Any] = {}
        self.error: BaseException | None = None

    def run(self) -> dict[str, Any]:
        scenario = getattr(self, f"scenario_{self.args.scenario}")
        thread = threading.Thread(target=self._guarded, args=(scenario,), daemon=True)
        thread.start()
        try:
            self.app.run(size=SIZE)
        finally:
            shutil.rmtree(self.data_dir, ignore_errors=True)
        thread.join(5.0)
        if self.error is not None:
            raise self.error
        return self.result

    def _guarded(self, scenario: Callable[[], None]) -> None:
        try:
            if not self.frames.first_frame.wait(60.0):
                raise RuntimeError("the app painted no frame within 60 s")
            self.frames.selected = lambda: self.app.table.selected_symbol
            scenario()
        except BaseException as exc:  # reported by run() on the main thread
            self.error = exc
        finally:
            self.app.call_from_thread(self.app.exit)

    # --- helpers ---------------------------------------------------------------

    def _follow_ingest(self, count: int, on_poll: Callable[[], None] | None = None,
                       ) -> tuple[float, float, int]:
        """Poll the ingest total until `count` frames are in or the feed stalls.

        Returns (first frame time, last frame time, frames received).
        """
        started = time.perf_counter()
        first = last = 0.0
        seen = 0
        while True:
            now = time.perf_counter()
            total = self.ingest.received_total
            if total != seen:
                if seen == 0:
                    first = now
                seen, last = total, now
                if total >= count:
                    break
            elif seen and now - last > STALL_S:
                break
            elif not seen and now - started > NO_FEED_S:
                raise RuntimeError(f"no frame arrived within {NO_FEED_S:.0f} s")
            if on_poll is not None:
                on_poll()
            time.sleep(POLL_S)
        return first, last, seen

    def _feeds_panel_total(self) -> int | None:
        def read() -> str:
            return str(self.app.query_one(FeedsPanel).content)

        text = self.app.call_from_thread(read)
        match = re.search(r"rx ([\d,]+)", text)
        return int(match.group(1).replace(",", "")) if match else None

    def _wait_painted(self, frames: int = 3) -> None:
        target = len(self.frames.frames) + frames
        deadline = time.monotonic() + 10.0
        while len(self.frames.frames) < target and time.monotonic() < deadline:
            time.sleep(0.01)

    # --- scenarios ---------------------------------------------------------------

    def scenario_load(self) -> None:
        count = self.args.count
        driver = self.app._driver
        assert driver is not None
        presser_stop = threading.Event()
        flowing_since: list[float | None] = [None]

        def on_poll() -> None:
            if flowing_since[0] is None and self.ingest.received_total:
                flowing_since[0] = time.perf_counter()

        def presser() -> None:
            # Keys are injected while the feed flows, from their own thread. The key
            # always has a visible effect: down from the top row, up otherwise.
            while not presser_stop.wait(KEY_GAP_S):
                if self.app.table.row_count < 2 or flowing_since[0] is None or \
                        time.perf_counter() - flowing_since[0] < KEY_WARMUP_S:
                    continue
                row = self.app.table.cursor_row
                self.frames.press(driver, "down" if not row else "up")

        thread = threading.Thread(target=presser, daemon=True)
        thread.start()
        first, last, received = self._follow_ingest(count, on_poll)
        presser_stop.set()
        thread.join(KEY_TIMEOUT_S + 1)
        seconds = max(last - first, 1e-9)
        update = self.source.last_update
        lat = sorted(self.frames.key_latencies_ms)
        self.result = {
            "sent": count, "received": received, "lost": count - received,
            "seq_gaps": sum(f.gaps for f in update.feeds) if update else None,
            "seconds": seconds, "msgs_per_s": (received - 1) / seconds,
            "fps": self.frames.fps_between(first, last),
            "fps_target": self.args.fps,
            "key_samples": len(lat),
            "key_latency_ms_p50": percentile(lat, 0.50),
            "key_latency_ms_p99": percentile(lat, 0.99),
            "key_latency_ms_max": lat[-1] if lat else None,
            "stalls": self.frames.stalls(first, last),
        }

    def scenario_latency(self) -> None:
        count = self.args.count
        rtts: list[float] = []
        waits: list[float] = []  # request() to on_reply, as the UI sees it
        flowing = threading.Event()
        heartbeat_thread: threading.Thread | None = None
        if self.gateway is not None:
            self._heartbeats([], 20)  # warm-up, not kept

            def beat() -> None:
                flowing.wait(60.0)
                self._heartbeats(rtts, self.args.rtts, waits)

            heartbeat_thread = threading.Thread(target=beat, daemon=True)
            heartbeat_thread.start()

        def on_poll() -> None:
            if not flowing.is_set() and self.ingest.received_total:
                flowing.set()  # heartbeats are timed while the feed flows

        first, last, received = self._follow_ingest(count, on_poll)
        wall_offset_ns = time.time_ns() - time.perf_counter_ns()
        if heartbeat_thread is not None:
            heartbeat_thread.join(30.0)
        window = [s for s in self.source.latency_seconds if first + 1.0 <= s[0] <= last]
        p50, p99 = summarise_seconds([s[1] for s in window], [s[2] for s in window])
        rtts.sort()
        waits.sort()
        self.result = {
            "sent": count, "received": received, "seconds_sampled": len(window),
            "p50_us": p50, "p99_us": p99,
            "first_wall_ns": int(first * 1e9) + wall_offset_ns,
            "last_wall_ns": int(last * 1e9) + wall_offset_ns,
            "rtt_samples": len(rtts),
            "rtt_p50_us": percentile(rtts, 0.50), "rtt_p99_us": percentile(rtts, 0.99),
            "ui_wait_p50_us": percentile(waits, 0.50), "ui_wait_p99_us": percentile(waits, 0.99),
        }

    def _heartbeats(self, rtts: list[float], count: int,
                    waits: list[float] | None = None) -> None:
        """HEARTBEATs one after another through the console's gateway link.

        `rtts` gets the link's own round trips (what the status bar shows);
        `waits`, from request() to the reply callback: the pipe to the link
        process and back included.
        """
        from services.protocol import HEARTBEAT

        replied = threading.Event()
        box: list[Any] = []

        def on_reply(reply: Any) -> None:
            box.append((time.perf_counter(), reply))
            replied.set()

        for _ in range(count):
            replied.clear()
            box.clear()
            asked = time.perf_counter()
            self.gateway.request(HEARTBEAT, on_reply=on_reply)
            if not replied.wait(10.0):
                raise RuntimeError("the gateway link delivered no heartbeat reply in 10 s")
            answered, reply = box[0]
            if reply.ok and reply.rtt_ms is not None:
                rtts.append(reply.rtt_ms * 1000.0)
                if waits is not None:
                    waits.append((answered - asked) * 1e6)
            time.sleep(HEARTBEAT_GAP_S)

    def scenario_rss(self) -> None:
        count = self.args.count
        before = rss_mb(self.ingest)
        first, last, received = self._follow_ingest(count)
        at_end = rss_mb(self.ingest)
        # The feed is over: the console goes idle as a user's would, and idle
        # housekeeping (the ingest hands freed socket buffers back) may run.
        time.sleep(RSS_SETTLE_S)
        self._wait_painted()
        self.result = {"sent": count, "received": received, "rss_mb": rss_mb(self.ingest),
                       "rss_mb_at_end_of_feed": at_end, "rss_mb_before_feed": before,
                       "settle_s": RSS_SETTLE_S, "seconds": last - first,
                       "symbols": self.app.table.total_rows}

    def scenario_cpu(self) -> None:
        count = self.args.count
        marks: dict[str, tuple[float, list[float]]] = {}

        def on_poll() -> None:
            total = self.ingest.received_total
            now = time.perf_counter()
            # Window: from 1 s of flow until 0.5 s before the end (steady state only).
            if "start" not in marks and total >= self.args.rate * 1.0:
                marks["start"] = (now, cpu_seconds(self.ingest))
            if "start" in marks and "end" not in marks and \
                    total >= count - self.args.rate * 0.5:
                marks["end"] = (now, cpu_seconds(self.ingest))

        first, last, received = self._follow_ingest(count, on_poll)
        self._wait_painted(max(3, self.args.fps // 2))
        shown = self._feeds_panel_total()
        by_process: list[float] = []
        if "start" in marks and "end" in marks:
            (t0, c0), (t1, c1) = marks["start"], marks["end"]
            by_process = [(b - a) / max(t1 - t0, 1e-9) * 100.0 for a, b in zip(c0, c1, strict=True)]
        self.result = {"sent": count, "received": received, "panel_total": shown,
                       "counted_all": shown == count,
                       "cpu_pct": sum(by_process) if by_process else None,
                       "cpu_pct_ui": by_process[0] if by_process else None,
                       "cpu_pct_ingest": by_process[1] if len(by_process) > 1 else None,
                       "rate": self.args.rate, "fps": self.frames.fps_between(first, last)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.app_probe", description=__doc__)
    parser.add_argument("scenario", choices=("load", "latency", "rss", "cpu"))
    parser.add_argument("--feed", required=True)
    parser.add_argument("--gateway")
    parser.add_argument("--count", type=int, required=True, help="frames the feeder sends")
    parser.add_argument("--rate", type=float, default=0.0, help="the feeder's rate (cpu)")
    parser.add_argument("--rtts", type=int, default=300, help="heartbeats (latency)")
    parser.add_argument("--fps", type=int, default=20)
    parser.add_argument("--ingest", choices=("process", "thread"), default="process",
                        help="where the console receives ticks (default: as shipped)")
    parser.add_argument("--latency-ring", type=int, default=65536,
                        help="latency samples kept per second, so percentiles see them all")
    args = parser.parse_args(argv)
    emit_result(Probe(args).run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
