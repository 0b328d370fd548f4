"""The console's command line and its key registry: bad input is one line and exit 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from textual.binding import BindingsMap

from console.ui.commands import (
    COMMANDS,
    normalize_key,
    registry_bindings,
    resolve_keymap,
    textual_keymap,
)
from services.runtime.errors import UsageError


def run_console(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "cfg"),
               XDG_DATA_HOME=str(tmp_path / "data"), XDG_STATE_HOME=str(tmp_path / "state"))
    env = {k: v for k, v in env.items() if not k.startswith("TRADECONSOLE_")}
    return subprocess.run([sys.executable, "-m", "console", *args], capture_output=True,
                          text=True, timeout=30, env=env, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("fps", ["0", "-3", "121"])
def test_fps_out_of_range_is_one_line_exit_2(tmp_path: Path, fps: str) -> None:
    result = run_console(tmp_path, "--fps", fps)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "--fps must be between 1 and 120" in lines[0]
    assert "Traceback" not in result.stderr


def test_unknown_theme_lists_the_available_ones(tmp_path: Path) -> None:
    result = run_console(tmp_path, "--theme", "solarized-purple")
    assert result.returncode == 2
    line = result.stderr.strip()
    assert "\n" not in line
    assert "unknown theme 'solarized-purple'" in line
    for name in ("tradeconsole-dark", "tradeconsole-light", "tradeconsole-contrast"):
        assert name in line


def test_unknown_command_in_keys_section_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "console.toml"
    config.write_text('[keys]\nheartbaet = "h,ctrl+h"\n')
    result = run_console(tmp_path, "--config", str(config))
    assert result.returncode == 2
    line = result.stderr.strip()
    assert "\n" not in line
    assert "[keys] heartbaet: unknown command" in line
    assert "heartbeat" in line  # the known names are listed


def test_fps_from_the_config_file_names_the_key(tmp_path: Path) -> None:
    config = tmp_path / "console.toml"
    config.write_text("[console]\nfps = 500\n")
    result = run_console(tmp_path, "--config", str(config))
    assert result.returncode == 2
    assert "console.fps" in result.stderr and str(config) in result.stderr


def test_keymap_applies_overrides_and_keeps_defaults() -> None:
    keymap = resolve_keymap({"heartbeat": "h, ctrl+h", "help": "f1"})
    assert keymap["heartbeat"] == "h,ctrl+h"
    assert keymap["help"] == "f1"
    assert keymap["kill_switch"] == "k"
    assert set(keymap) == {c.name for c in COMMANDS}


@pytest.mark.parametrize("bad", [{"nope": "x"}, {"heartbeat": ""}, {"heartbeat": "ctrl+"},
                                 {"heartbeat": "two words"}])
def test_bad_keymap_entries_raise_usage_errors(bad: dict[str, str]) -> None:
    with pytest.raises(UsageError, match=r"\[keys\]"):
        resolve_keymap(bad)


def test_bindings_use_textual_key_names() -> None:
    assert normalize_key("?") == "question_mark"
    assert normalize_key("/") == "slash"
    assert normalize_key("ctrl+h") == "ctrl+h"
    keys = BindingsMap(registry_bindings()).key_to_bindings
    assert [b.action for b in keys["question_mark"]] == ["help"]
    assert [b.action for b in keys["R"]] == ["resume"]
    assert [(b.action, b.id) for b in keys["h"]] == [("heartbeat", "heartbeat")]
    # [keys] overrides reach Textual's keymap by binding id, in Textual's key names.
    overrides = textual_keymap(resolve_keymap({"heartbeat": "h,ctrl+h", "help": "?,f1"}))
    assert overrides == {"heartbeat": "h,ctrl+h", "help": "question_mark,f1"}


def test_every_state_changing_action_is_flagged() -> None:
    flagged = {c.name for c in COMMANDS if c.state_changing}
    assert flagged == {"kill_switch", "resume"}


def test_bad_feed_endpoint_fails_before_the_terminal_is_taken(tmp_path: Path) -> None:
    result = run_console(tmp_path, "--feed", "garbage", "--gateway", "none")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "feed endpoint garbage is not valid" in lines[0]
    assert "\x1b[" not in result.stderr + result.stdout  # no screen was drawn
