"""What the console costs the machine it runs on: CPU and terminal bytes, per feed.

For each feed, alone: `tradeconsole --feed EP --gateway none` exactly as a
user starts it, on a real pseudo-terminal of 200x50 (its own config, data
and cache folders, TERM=xterm-256color, COLORTERM=truecolor, the shipped
frame rate), fed by `bench.feeder`. Over a window that opens once the first
frame is painted and the feed has flowed for 2 s, it takes

- the CPU of the console and every process under it (its ingest child), as
  a percentage of one core;
- the bytes the console wrote to the terminal, per second: what an ssh
  session or a slow terminal emulator has to carry.

The pty is read all the time (a thread), so the console never blocks on a
full terminal; only bytes read inside the window count. Then, in the same
run, the plain pyzmq subscriber (`bench.raw sub`: `recv()` + `recv()` +
`msgpack.unpackb`) on a fresh feed of the same rate and symbols, same window:
the floor libzmq and the interpreter set, so the console is read as a ratio.
The idle row is a feed that is connected and sends nothing (a feeder that
waits an hour after the subscription): what the console costs doing nothing.
The 5 msg/s row is a quiet feed: a table whose rows tick now and then, every
age on screen still turning over once a second.

    .venv/bin/python -m bench.cost [--quick] [--only RATE[,RATE...]] [--seconds S]

Part of `bench/run.py` (the "cost" phase; `--cost-only` runs just this).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pty
import re
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.feeder import DONE_PREFIX
from bench.first_frame import COLUMNS, MARKER, ROWS, _set_winsize, console_env
from bench.procs import ROOT, Child
from bench.stats import descendants, tree_cpu_s

# The feed starts this long after the subscription (as in run.py's console
# phases): the console's start-up work is done before the first tick.
APP_SETTLE_S = 2.0
# The feed flows this long before the window opens, and this long after it
# closes, so the window sits in the steady part of the feed.
FLOW_SETTLE_S = 2.0
MARGIN_S = 2.0
# A plain subscriber is connected this soon after its spawn (interpreter start).
RAW_START_S = 0.5
# The idle feeder waits this long after the subscription before its only tick.
IDLE_DELAY_S = 3600.0
STARTUP_TIMEOUT_S = 30.0
TAIL_BYTES = 64 * 1024
FULL_SECONDS, QUICK_SECONDS = 10.0, 4.0


@dataclass(frozen=True)
class Feed:
    """One row of the table: a rate (0 = idle) over a number of symbols."""

    rate: float
    symbols: int
    tag: str  # the suffix of the row's published keys

    @property
    def label(self) -> str:
        if not self.rate:
            return "idle (connected, no ticks)"
        return f"{self.rate:,.0f} msg/s over {self.symbols:,} symbols"


FEEDS: tuple[Feed, ...] = (
    Feed(0.0, 0, "idle"),
    # A quiet feed: ticks now and then, every row's age turning over each second.
    Feed(5.0, 10, "5"),
    Feed(200.0, 50, "200"),
    Feed(1000.0, 200, "1k"),
    Feed(10_000.0, 2000, "10k"),
    Feed(30_000.0, 2000, "30k"),
)


def feed_for(rate: float) -> Feed:
    """The table's row for `rate` (0 for idle); ValueError for any other rate."""
    for feed in FEEDS:
        if feed.rate == rate:
            return feed
    known = ", ".join(f"{f.rate:g}" for f in FEEDS)
    raise ValueError(f"no cost row for {rate:g} msg/s (one of {known})")


# --- the console on a pty --------------------------------------------------------------


# CSI, OSC, charset and keypad sequences: what Textual writes besides text.
_ESCAPES = re.compile(rb"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)"
                      rb"|\x1b[()][0-9A-Za-z]|\x1b[=>78]")


def _readable(tail: bytes, limit: int = 600) -> str:
    """The end of the terminal output without escape sequences (for error messages)."""
    text = _ESCAPES.sub(b" ", tail).decode(errors="replace")
    return " ".join(text.split())[-limit:]


class PtyConsole:
    """`python -m console --feed EP --gateway none` on a 200x50 pty, read continuously.

    A reader thread drains the pty master the whole time (a console writing
    to a full pty would stall and look cheap), counts every byte and notes
    when each watched string first appeared.
    """

    def __init__(self, feed: str, home: Path, watch: tuple[bytes, ...],
                 fps: int | None = None, root: Path = ROOT) -> None:
        self._watch = watch
        self._seen: dict[bytes, float] = {}
        self._total = 0
        self._tail = b""
        self._eof = False
        self._cond = threading.Condition()
        master, slave = pty.openpty()
        _set_winsize(slave, ROWS, COLUMNS)
        env = console_env(home)
        args = [sys.executable, "-m", "console", "--feed", feed, "--gateway", "none"]
        if fps is not None:
            args += ["--fps", str(fps)]
        try:
            self.proc = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave,
                                         env=env, cwd=root, start_new_session=True)
        finally:
            os.close(slave)
        self._master = master
        self._reader = threading.Thread(target=self._read, name="pty-reader", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        carry = max((len(w) for w in self._watch), default=1) - 1
        while True:
            ready, _, _ = select.select([self._master], [], [], 0.1)
            if not ready:
                continue
            try:
                chunk = os.read(self._master, 65536)
            except OSError:  # EIO: every process holding the terminal has gone
                chunk = b""
            now = time.monotonic()
            with self._cond:
                if not chunk:
                    self._eof = True
                    self._cond.notify_all()
                    return
                window = self._tail[-carry:] + chunk if carry else chunk
                self._total += len(chunk)
                self._tail = (self._tail + chunk)[-TAIL_BYTES:]
                for marker in self._watch:
                    if marker not in self._seen and marker in window:
                        self._seen[marker] = now
                        self._cond.notify_all()

    @property
    def bytes_written(self) -> int:
        """Bytes the console has written to the terminal so far."""
        with self._cond:
            return self._total

    def cpu_s(self) -> float:
        return tree_cpu_s(self.proc.pid)

    def processes(self) -> int:
        return 1 + len(descendants(self.proc.pid))

    def wait_for(self, marker: bytes, timeout: float) -> float:
        """The monotonic time `marker` first appeared on the terminal; raises if it never does."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while marker not in self._seen:
                remaining = deadline - time.monotonic()
                if self._eof or self.proc.poll() is not None or remaining <= 0:
                    break
                self._cond.wait(min(remaining, 0.2))
            if marker in self._seen:
                return self._seen[marker]
        self.check_alive()
        raise RuntimeError(f"{marker.decode()!r} not on the terminal within {timeout:.0f}s; "
                           f"last output: {self.last_output()}")

    def last_output(self) -> str:
        with self._cond:
            return _readable(self._tail)

    def check_alive(self) -> None:
        """Raise with the console's last output if it has exited."""
        code = self.proc.poll()
        if code is not None or self._eof:
            self._reader.join(1.0)
            raise RuntimeError(f"the console exited early (code {code}); last output: "
                               f"{self.last_output()}")

    def close(self) -> None:
        """SIGTERM, keep draining the pty while it shuts down, then kill what is left."""
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10.0)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5.0)
        # The console's own session: an ingest child left behind goes with it.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self._reader.join(5.0)
        os.close(self._master)


# --- one row -------------------------------------------------------------------------------


def _count(feed: Feed, seconds: float) -> int:
    """Frames for the feed to keep flowing through the window and past it."""
    return max(1, int(feed.rate * (FLOW_SETTLE_S + seconds + MARGIN_S + 0.5)))


def _feeder(feed: Feed, seconds: float, workdir: Path, name: str) -> tuple[Child, str]:
    """A feeder for the row; idle is a feeder that subscribes its peer and then waits."""
    if feed.rate:
        args = ["--count", str(_count(feed, seconds)), "--symbols", str(feed.symbols),
                "--rate", str(feed.rate), "--delay", str(APP_SETTLE_S)]
    else:
        args = ["--count", "1", "--symbols", "1", "--delay", str(IDLE_DELAY_S)]
    child = Child("bench.feeder", args, log=workdir / f"{name}.log")
    return child, str(child.ready()["pub"])


def _flow(feeder: Child, feed: Feed, window: tuple[int, int]) -> dict[str, Any] | None:
    """The feeder's DONE line, checked: the feed flowed before, through and after the window."""
    if not feed.rate:
        return None
    done = feeder.line(DONE_PREFIX, MARGIN_S + 60.0)
    start_ns = done["start_ns"]
    end_ns = start_ns + int(done["seconds"] * 1e9)
    before = (window[0] - start_ns) / 1e9
    after = (end_ns - window[1]) / 1e9
    if before < 1.0 or after < 0:
        raise RuntimeError(f"the feed did not cover the window ({before:.1f} s of flow before "
                           f"it, {after:.1f} s after)")
    return {"flowed_before_window_s": round(before, 2), "flowed_after_window_s": round(after, 2)}


@dataclass
class Window:
    """CPU seconds (and terminal bytes) at the two ends of a measuring window."""

    wall_ns: tuple[int, int] = (0, 0)
    seconds: float = 0.0
    cpu_s: float = 0.0
    nbytes: int = 0

    @property
    def cpu_pct(self) -> float:
        return 100.0 * self.cpu_s / max(self.seconds, 1e-9)


def _window(seconds: float, cpu: Callable[[], float],
            nbytes: Callable[[], int] = lambda: 0) -> Window:
    """Read `cpu()` and `nbytes()` at the start and the end of `seconds`."""
    w0, t0, c0, b0 = time.time_ns(), time.monotonic(), cpu(), nbytes()
    time.sleep(seconds)
    w1, t1, c1, b1 = time.time_ns(), time.monotonic(), cpu(), nbytes()
    return Window((w0, w1), t1 - t0, c1 - c0, b1 - b0)


def _sleep_until(at: float) -> None:
    time.sleep(max(0.0, at - time.monotonic()))


def console_cost(feed: Feed, seconds: float, workdir: Path,
                 fps: int | None = None) -> dict[str, Any]:
    """The console on a pty beside its feed: CPU of its tree and terminal bytes, one window."""
    feeder, endpoint = _feeder(feed, seconds, workdir, f"cost-feeder-{feed.tag}")
    try:
        # A tick on screen: the first symbol's name (the table sorts, but the
        # first few names of the simulated market are always among the rows).
        ticks = b"BTCUSD"
        console = PtyConsole(endpoint, workdir / f"cost-home-{feed.tag}", (MARKER, ticks), fps)
        try:
            painted = console.wait_for(MARKER, STARTUP_TIMEOUT_S)
            if feed.rate:
                flowing = console.wait_for(ticks, APP_SETTLE_S + STARTUP_TIMEOUT_S)
            else:
                flowing = painted + APP_SETTLE_S
            _sleep_until(flowing + FLOW_SETTLE_S)
            console.check_alive()
            processes = console.processes()
            window = _window(seconds, console.cpu_s, lambda: console.bytes_written)
            console.check_alive()
        finally:
            console.close()
        flow = _flow(feeder, feed, window.wall_ns)
    finally:
        feeder.stop()
    return {"cpu_pct": window.cpu_pct, "kib_per_s": window.nbytes / 1024 / window.seconds,
            "bytes": window.nbytes, "seconds": window.seconds, "processes": processes,
            "ticks_on_screen_s_after_frame": round(flowing - painted, 2) if feed.rate else None,
            "flow": flow}


def raw_cost(feed: Feed, seconds: float, workdir: Path) -> dict[str, Any]:
    """The plain pyzmq subscriber on a fresh feed of the same rate and symbols, same window."""
    feeder, endpoint = _feeder(feed, seconds, workdir, f"cost-raw-feeder-{feed.tag}")
    try:
        raw = Child("bench.raw", ["sub", "--feed", endpoint,
                                  "--count", str(_count(feed, seconds))],
                    log=workdir / f"cost-raw-{feed.tag}.log")
        spawned = time.monotonic()
        try:
            # Its feed starts APP_SETTLE_S after it subscribed; the window
            # opens after FLOW_SETTLE_S of flow, like the console's.
            _sleep_until(spawned + RAW_START_S + APP_SETTLE_S + FLOW_SETTLE_S)
            window = _window(seconds, lambda: tree_cpu_s(raw.pid))
            if feed.rate:
                received = raw.result(MARGIN_S + 60.0)
            else:  # it waits for a first tick that never comes
                raw.popen.terminate()
                received = None
        finally:
            raw.stop()
        flow = _flow(feeder, feed, window.wall_ns)
    finally:
        feeder.stop()
    return {"cpu_pct": window.cpu_pct, "seconds": window.seconds, "flow": flow,
            "gaps": None if received is None else received["gaps"]}


def measure_cost(rate: float, symbols: int, seconds: float, workdir: Path,
                 fps: int | None = None) -> dict[str, Any]:
    """One row: the console's CPU % and terminal KiB/s, the raw subscriber's CPU %.

    `rate` 0 is the idle feed (`symbols` is then ignored); `fps` None runs
    the console at its shipped frame rate.
    """
    tag = next((f.tag for f in FEEDS if f.rate == rate), f"{rate:g}")
    feed = Feed(rate, symbols if rate else 0, tag)
    console = console_cost(feed, seconds, workdir, fps)
    raw = raw_cost(feed, seconds, workdir)
    return {"tag": feed.tag, "label": feed.label, "rate": rate, "symbols": feed.symbols,
            "seconds": seconds, "cpu_pct": console["cpu_pct"],
            "kib_per_s": console["kib_per_s"], "raw_cpu_pct": raw["cpu_pct"],
            "ratio": _ratio(console["cpu_pct"], raw["cpu_pct"]),
            "console": console, "raw": raw}


def _ratio(a: float, b: float) -> float | None:
    # Below a tenth of a percent the raw loop is asleep: a ratio would be noise.
    return a / b if b >= 0.1 else None


# --- the published keys, goals and table --------------------------------------------------


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Flat keys per row: cost_cpu_pct_TAG, cost_raw_cpu_pct_TAG, cost_ratio_TAG, ..."""
    out: dict[str, Any] = {}
    for row in rows:
        tag = row["tag"]
        out[f"cost_cpu_pct_{tag}"] = row["cpu_pct"]
        out[f"cost_raw_cpu_pct_{tag}"] = row["raw_cpu_pct"]
        out[f"cost_ratio_{tag}"] = row["ratio"]
        out[f"cost_kib_per_s_{tag}"] = row["kib_per_s"]
    return out


# (published key, limit): the console's budget per feed.
GOALS: tuple[tuple[str, float], ...] = (
    ("cost_cpu_pct_idle", 1.0),
    ("cost_kib_per_s_idle", 0.5),
    ("cost_cpu_pct_200", 5.0),
    ("cost_kib_per_s_200", 15.0),
    ("cost_cpu_pct_1k", 8.0),
    ("cost_kib_per_s_1k", 25.0),
    ("cost_cpu_pct_30k", 60.0),
)


def check_goals(r: dict[str, Any]) -> dict[str, bool | None]:
    """Each cost goal: True met, False missed, None not measured."""
    return {f"{key} <= {limit:g}": None if r.get(key) is None else r[key] <= limit
            for key, limit in GOALS}


def _fmt(value: float | None, digits: int = 1, suffix: str = "") -> str:
    return "-" if value is None else f"{value:,.{digits}f}{suffix}"


def table(r: dict[str, Any]) -> str:
    """The measured rows of `summarise()`'s keys as a Markdown table."""
    lines = ["| feed | console CPU, % of a core | raw pyzmq SUB CPU, % | ratio "
             "| terminal KiB/s |", "|---|---:|---:|---:|---:|"]
    for feed in FEEDS:
        if f"cost_cpu_pct_{feed.tag}" not in r:
            continue
        lines.append(f"| {feed.label} | {_fmt(r[f'cost_cpu_pct_{feed.tag}'])} | "
                     f"{_fmt(r[f'cost_raw_cpu_pct_{feed.tag}'])} | "
                     f"{_fmt(r[f'cost_ratio_{feed.tag}'], 1, 'x')} | "
                     f"{_fmt(r[f'cost_kib_per_s_{feed.tag}'])} |")
    return "\n".join(lines)


def goals_table(goals: dict[str, bool | None]) -> str:
    lines = ["| goal | met |", "|---|---|"]
    lines += [f"| {goal} | {'-' if met is None else 'yes' if met else 'no'} |"
              for goal, met in goals.items()]
    return "\n".join(lines)


def run_rows(feeds: tuple[Feed, ...], seconds: float, workdir: Path, fps: int | None = None,
             say: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """Measure `feeds` one after another (each alone on the machine)."""
    rows = []
    for feed in feeds:
        if say is not None:
            say(f"cost: {feed.label} ...")
        rows.append(measure_cost(feed.rate, feed.symbols, seconds, workdir, fps))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.cost", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK_SECONDS:g} s windows instead of {FULL_SECONDS:g} s")
    parser.add_argument("--only", metavar="RATE[,RATE]",
                        help="run these rows only: " + ", ".join(f"{f.rate:g}" for f in FEEDS)
                        + " (0 = idle)")
    parser.add_argument("--seconds", type=float, help="the window, overriding --quick")
    parser.add_argument("--fps", type=int, help="run the console at this frame rate "
                        "(default: its own, 20 as shipped)")
    args = parser.parse_args(argv)
    try:
        feeds = (FEEDS if args.only is None else
                 tuple(feed_for(float(rate)) for rate in args.only.split(",")))
    except ValueError as exc:
        parser.error(str(exc))
    seconds = args.seconds or (QUICK_SECONDS if args.quick else FULL_SECONDS)
    started = time.monotonic()

    def say(text: str) -> None:
        print(f"[{time.monotonic() - started:5.1f}s] {text}", file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="tc-bench-cost-") as tmp:
        try:
            rows = run_rows(feeds, seconds, Path(tmp), args.fps, say)
        except Exception as exc:
            print(f"bench failed: {exc}", file=sys.stderr)
            return 1
    result = summarise(rows)
    print(table(result))
    print()
    print(goals_table(check_goals(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
