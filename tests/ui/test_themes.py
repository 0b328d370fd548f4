"""Themes, the command palette and the help legend, on the frozen deterministic feed."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from console.ui.app import TradeConsole
from console.ui.commands import COMMANDS, RegistryCommands
from console.ui.fixtures import FrozenGateway, FrozenSource, build_frozen_book
from console.ui.widgets.status_bar import StatusBar
from services.runtime.config import load_config
from tests.ui.test_app import pilot_test, until
from themes import PROJECT_THEMES
from themes.persist import ThemeSaveError, save_theme


def frozen_app(settings: Path | None = None, **console: Any) -> TradeConsole:
    book, clock = build_frozen_book(symbols=8, ticks=80)
    config = load_config(use_user_file=False, env={},
                         overrides={f"console.{k}": v for k, v in console.items()})
    return TradeConsole(config, source=FrozenSource(book),
                        gateway=FrozenGateway(clock_ns=clock.mono_ns), clock_ns=clock.mono_ns,
                        wall_ns=clock.wall_ns, settings_path=settings,
                        settings_note="the user config" if settings else None, freeze_gc=False)


@pilot_test
async def test_t_cycles_themes_and_saves_without_clobbering(tmp_path: Path) -> None:
    settings = tmp_path / "config.toml"
    settings.write_text('[console]\nfps = 30\n\n[keys]\nhelp = "f1"\n')
    app = frozen_app(settings)
    async with app.run_test(size=(100, 30)) as pilot:
        assert app.theme == "tradeconsole-dark"
        await pilot.press("t")
        assert app.theme == "tradeconsole-light"
        await until(pilot, lambda: "tradeconsole-light" in settings.read_text(), what="saved")
        saved = tomllib.loads(settings.read_text())
        assert saved == {"console": {"fps": 30, "theme": "tradeconsole-light"},
                         "keys": {"help": "f1"}}
        assert any(str(settings) in notice for notice in app.notices)
        await pilot.press("t", "t")
        assert app.theme == "tradeconsole-dark"  # dark -> light -> contrast -> dark


def test_a_broken_config_file_is_never_overwritten(tmp_path: Path) -> None:
    settings = tmp_path / "config.toml"
    settings.write_text("[console\nfps = ")
    with pytest.raises(ThemeSaveError, match="cannot be read as TOML"):
        save_theme(settings, "tradeconsole-light")
    assert settings.read_text() == "[console\nfps = "


@pilot_test
async def test_palette_lists_every_command_and_the_themes() -> None:
    app = frozen_app()
    async with app.run_test(size=(100, 30)) as pilot:
        provider = RegistryCommands(app.screen)
        hits = [hit async for hit in provider.discover()]
        titles = [str(hit.display) for hit in hits]
        for command in COMMANDS:
            assert command.title in titles
        for theme in PROJECT_THEMES:
            assert f"Theme: {theme}" in titles
        contrast = next(h for h in hits if str(h.display) == "Theme: tradeconsole-contrast")
        contrast.command()
        await pilot.pause()
        assert app.theme == "tradeconsole-contrast"
        searched = [str(hit.text) async for hit in provider.search("kill")]
        assert "Kill switch" in searched


@pilot_test
async def test_no_color_keeps_meaning_in_text(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    app = frozen_app(readonly=True, row_stale_after_s=1.0)  # the feed spans 2 s
    assert app.no_color  # Textual turns colours into greys (Monochrome filter)
    async with app.run_test(size=(80, 24)) as pilot:
        bar = app.query_one(StatusBar)
        await until(pilot, lambda: "READ-ONLY" in str(bar.query_one("#mode").content),
                    what="READ-ONLY")
        rows = app.table.visible_rows()
        stale = [r.vt_symbol for r in rows if "STALE" in app.table.row_text(r.vt_symbol)]
        assert stale == ["EURUSD.IDEALPRO", "GBPUSD.IDEALPRO"]
        marks = "".join(app.table.row_text(r.vt_symbol) for r in rows)
        assert "▲" in marks and "▼" in marks and "?" in marks
