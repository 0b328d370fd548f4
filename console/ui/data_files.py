"""Files the console writes into the user data dir: stamped names and the CSV export.

Pure functions over rows and paths, so the export format is tested without
a running app; the app only picks the rows (what the table shows) and the clock.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Sequence
from pathlib import Path

from console.model import SymbolRow
from console.ui.widgets.table_columns import COLUMNS

CSV_HEADER = (*(c.key for c in COLUMNS), "has_envelope", "feed")


def stamped_path(base: Path, prefix: str, suffix: str, wall_ns: int) -> Path:
    """A new file name in `base` (created) stamped with local time, never an existing one."""
    base.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(wall_ns / 1e9))
    path = base / f"{prefix}-{stamp}{suffix}"
    n = 1
    while path.exists():
        n += 1
        path = base / f"{prefix}-{stamp}-{n}{suffix}"
    return path


def write_csv(path: Path, rows: Sequence[SymbolRow], now_ns: int) -> int:
    """Write `rows` in the table's column order to `path`; returns the row count.

    Age is seconds before `now_ns` (the console clock); latency and gaps are
    empty for rows without an envelope, where they are unknown.
    """
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(CSV_HEADER)
        for row in rows:
            writer.writerow([
                row.vt_symbol, row.exchange, row.last, row.change, row.bid, row.ask,
                row.spread, row.bid_size, row.ask_size, row.volume, row.ticks,
                f"{(now_ns - row.updated_ns) / 1e9:.3f}",
                row.latency_us if row.has_envelope else "",
                row.gaps if row.has_envelope else "", row.has_envelope, row.feed,
            ])
    return len(rows)
