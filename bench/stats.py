"""Percentiles the same way for the console and for the reference loops.

The console reports latency as per-second p50/p99 (its feeds panel); the
reference loops are summarised identically, so a ratio compares like with
like: the median over seconds of each second's percentile.
"""

from __future__ import annotations

import json
import os
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

NS_PER_S = 1_000_000_000


def percentile(ordered: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile of an already sorted sequence; None when empty."""
    if not ordered:
        return None
    return float(ordered[min(len(ordered) - 1, int(q * len(ordered)))])


def per_second_percentiles(samples: Sequence[tuple[int, int]]) -> tuple[float | None,
                                                                      float | None]:
    """(p50, p99) in µs of (receive ns, latency ns) samples, per second then median.

    Partial first and last seconds are dropped when there are full ones.
    """
    buckets: dict[int, list[int]] = {}
    for at_ns, latency_ns in samples:
        buckets.setdefault(at_ns // NS_PER_S, []).append(latency_ns)
    seconds = sorted(buckets)
    if len(seconds) > 2:
        seconds = seconds[1:-1]
    p50s: list[float] = []
    p99s: list[float] = []
    for second in seconds:
        ordered = sorted(buckets[second])
        p50s.append(ordered[int(0.50 * len(ordered))] / 1000.0)
        p99s.append(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] / 1000.0)
    return summarise_seconds(p50s, p99s)


def summarise_seconds(p50s: Sequence[float], p99s: Sequence[float]) -> tuple[float | None,
                                                                           float | None]:
    """Median over seconds of the per-second p50 and p99."""
    return (statistics.median(p50s) if p50s else None,
            statistics.median(p99s) if p99s else None)


def write_result(result: dict[str, Any], path: Path | None) -> None:
    """Write a benchmark's JSON (--json OUT), creating the folder; say where."""
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwritten to {path}")


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a running process so far (Linux /proc); 0 if gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def descendants(pid: int) -> list[int]:
    """Every live process under `pid` (Linux /proc/PID/task/TID/children)."""
    out: list[int] = []
    todo = [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                kids = [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
            out += kids
            todo += kids
    return out


def tree_cpu_s(pid: int) -> float:
    """User + system seconds of `pid` and every live process under it.

    The console and the exporter each start an ingest child: what they cost
    is the whole tree, not the process that was spawned.
    """
    return sum(process_cpu_seconds(each) for each in [pid, *descendants(pid)])
