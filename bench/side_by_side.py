"""Two builds of the console side by side: their CPU over the same windows, as a ratio.

On this kind of shared machine one build's CPU at 200 msg/s moves by tens of
percent from one run to the next, far more than most changes save. Two
builds measured at the same time see the same machine: each runs as
`bench.cost` runs it (`tradeconsole --feed EP --gateway none` on a 200x50
pty) on its own feed of the same rate, and their CPU trees are read over the
same windows. The median of the per-window ratios is the answer; two copies
of one build read 1.00 to 1.03 this way.

    python -m bench.side_by_side --base HEAD~1 [--rate 200] [--symbols 50]
                                 [--windows 6] [--seconds 5]

`--base` is any git revision: it is checked out in a temporary worktree
(removed afterwards) and run with this interpreter; the other side is this
checkout as it is, uncommitted changes included.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.cost import FLOW_SETTLE_S, Feed, PtyConsole, _feeder
from bench.first_frame import MARKER
from bench.procs import ROOT

STARTUP_S = 30.0
TICKS = b"BTCUSD"  # a symbol of the simulated market, always among the first rows


def compare(base: Path, rate: float, symbols: int, windows: int, seconds: float,
            workdir: Path) -> list[tuple[float, float]]:
    """(base CPU %, work CPU %) per window, both consoles on feeds of the same rate."""
    feed = Feed(rate, symbols, "side")
    total = windows * seconds + STARTUP_S + FLOW_SETTLE_S
    feeders, consoles = [], []
    try:
        for name, root in (("base", base), ("work", ROOT)):
            feeder, endpoint = _feeder(feed, total, workdir, f"feeder-{name}")
            feeders.append(feeder)
            consoles.append(PtyConsole(endpoint, workdir / f"home-{name}", (MARKER, TICKS),
                                       root=root))
        for console in consoles:
            console.wait_for(MARKER, STARTUP_S)
            if rate:
                console.wait_for(TICKS, STARTUP_S)
        time.sleep(FLOW_SETTLE_S)
        rows = []
        for _ in range(windows):
            before = [c.cpu_s() for c in consoles]
            t0 = time.monotonic()
            time.sleep(seconds)
            elapsed = time.monotonic() - t0
            after = [c.cpu_s() for c in consoles]
            base_pct, work_pct = (100 * (a - b) / elapsed for a, b in zip(after, before,
                                                                            strict=True))
            rows.append((base_pct, work_pct))
            print(f"base {base_pct:5.2f}%  work {work_pct:5.2f}%  "
                  f"ratio {work_pct / base_pct if base_pct else float('nan'):.2f}", flush=True)
        return rows
    finally:
        for console in consoles:
            console.close()
        for feeder in feeders:
            feeder.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.side_by_side", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", required=True, help="git revision to compare against")
    parser.add_argument("--rate", type=float, default=200.0, help="msg/s of each feed")
    parser.add_argument("--symbols", type=int, default=50)
    parser.add_argument("--windows", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=5.0, help="length of a window")
    args = parser.parse_args(argv)
    if args.windows < 1 or args.seconds <= 0 or args.rate < 0 or args.symbols < 1:
        parser.error("--windows and --symbols must be at least 1, --seconds above 0, "
                     "--rate 0 or more")
    with tempfile.TemporaryDirectory(prefix="side-by-side-") as tmp:
        base = Path(tmp) / "base"
        added = subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach",
                                str(base), args.base], capture_output=True, text=True)
        if added.returncode:
            print(f"bench.side_by_side: cannot check out {args.base!r}: "
                  f"{added.stderr.strip()}", file=sys.stderr)
            return 2
        try:
            rows = compare(base, args.rate, args.symbols, args.windows, args.seconds,
                           Path(tmp))
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force",
                            str(base)], capture_output=True)
    base_median = statistics.median(b for b, _ in rows)
    work_median = statistics.median(w for _, w in rows)
    ratios = [w / b for b, w in rows if b]
    print(f"median: base {base_median:.2f}%  work {work_median:.2f}%  "
          f"ratio {statistics.median(ratios) if ratios else float('nan'):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
