"""Regenerate docs/screenshot.svg and the README key table from the real app.

Uses the same frozen, deterministic feed as the snapshot tests, so the picture
is reproducible: `.venv/bin/python docs/screenshot.py`.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from console.ui.app import TradeConsole
from console.ui.commands import COMMANDS
from console.ui.fixtures import FrozenGateway, FrozenSource, build_frozen_book
from services.runtime.config import load_config

DOCS = Path(__file__).resolve().parent


async def screenshot(path: Path, size: tuple[int, int] = (160, 45)) -> None:
    book, clock = build_frozen_book(symbols=24, ticks=600, seed=42)
    config = load_config(use_user_file=False, env={})
    app = TradeConsole(
        config, source=FrozenSource(book), gateway=FrozenGateway(clock_ns=clock.mono_ns),
        clock_ns=clock.mono_ns, wall_ns=clock.wall_ns, freeze_gc=False,
    )
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        await pilot.pause()
        path.write_text(app.export_screenshot(title="tradeconsole"))


def key_table() -> str:
    """Markdown table of every command, straight from the registry."""
    rows = ["| key | command | what it does |", "|---|---|---|"]
    for command in COMMANDS:
        if command.name.startswith("tab_") and command.name != "tab_1":
            continue
        keys = "`1`..`9`" if command.name == "tab_1" else f"`{command.keys}`"
        title = "Exchange tab" if command.name == "tab_1" else command.title
        rows.append(f"| {keys} | {title} | {command.description} |")
    return "\n".join(rows)


if __name__ == "__main__":
    os.environ["TZ"] = "UTC"
    time.tzset()
    asyncio.run(screenshot(DOCS / "screenshot.svg"))
    print(key_table())
