"""A mistake in [alerts] ends every command that evaluates rules with one line and exit 2.

The console, the exporter and `status` check the rules before they open a
terminal, a port or a socket; `config show` reads them like any setting.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from tests.cli.test_config import assert_one_line_error, run_cli, write

BAD_RULES = [
    pytest.param('[[alerts.rules]]\nname = "x"\nmetric = "feed.nope"\n',
                 ("rule 'x'", "unknown metric 'feed.nope'", "feed.stale"), id="unknown-metric"),
    pytest.param('[[alerts.rules]]\nname = "x"\nmetric = "feed.stale"\nlevel = 3\n',
                 ("alerts.rules 'x'", "level"), id="unknown-field"),
    pytest.param('[[alerts.rules]]\nname = "feed-stale"\nthreshold = "high"\n',
                 ("alerts.rules 'feed-stale'", "threshold", "expected"), id="threshold-type"),
    pytest.param('[[alerts.rules]]\nname = "feed-stale"\nmessage = "{symbol} quiet"\n',
                 ("rule 'feed-stale'", "unknown field {symbol}"), id="message-field"),
    pytest.param('[[alerts.rules]]\nname = "feed-stale"\nfor = "a while"\n',
                 ("rule 'feed-stale'", "for:"), id="duration"),
    pytest.param('[[alerts.rules]]\nmetric = "feed.stale"\n',
                 ("alerts.rules[0]", "name"), id="no-name"),
    pytest.param('[alerts]\nwebhook = "localhost:9000"\n',
                 ("alerts.webhook", "http://"), id="webhook-url"),
    pytest.param('[alerts]\nevaluate_every_s = 0\n', ("alerts.evaluate_every_s", "> 0"),
                 id="evaluate-every"),
]
COMMANDS = [
    pytest.param(("--feed", "tcp://127.0.0.1:1", "--gateway", "none"), id="console"),
    pytest.param(("exporter", "--feed", "tcp://127.0.0.1:1", "--gateway", "none",
                  "--listen", "127.0.0.1:0"), id="exporter"),
    pytest.param(("status", "--feed", "tcp://127.0.0.1:1", "--gateway", "none"), id="status"),
]


@pytest.mark.parametrize(("text", "needles"), BAD_RULES)
@pytest.mark.parametrize("command", COMMANDS)
def test_a_bad_rule_is_one_line_and_exit_2(tmp_path: Path, text: str, needles: tuple[str, ...],
                                           command: tuple[str, ...]) -> None:
    config = write(tmp_path / "bad.toml", text)
    name, *rest = command
    args = [name, "--config", str(config), *rest] if not name.startswith("-") \
        else ["--config", str(config), *command]
    assert_one_line_error(run_cli(tmp_path / "xdg", *args), *needles)


def test_a_user_rule_changes_only_the_keys_it_gives_and_can_switch_one_off(
    tmp_path: Path
) -> None:
    config = write(tmp_path / "c.toml", '[[alerts.rules]]\nname = "feed-stale"\nfor = "30s"\n'
                   '[[alerts.rules]]\nname = "feed-gaps"\nenabled = false\n')
    result = run_cli(tmp_path / "xdg", "config", "show", "--json", "--config", str(config))
    assert result.returncode == 0, result.stderr
    rules = {r["name"]: r for r in
             json.loads(result.stdout)["settings"]["alerts"]["rules"]["value"]}
    assert rules["feed-stale"]["for"] == "30s"
    assert rules["feed-stale"]["metric"] == "feed.stale"       # from the shipped rule
    assert rules["feed-stale"]["severity"] == "critical"
    assert rules["feed-gaps"]["enabled"] is False


def test_a_port_in_use_is_one_line_and_exit_2(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli(tmp_path / "xdg", "exporter", "--feed", "tcp://127.0.0.1:1",
                         "--gateway", "none", "--listen", f"127.0.0.1:{port}")
    assert_one_line_error(result, f"--listen 127.0.0.1:{port}", "cannot listen")
    assert_one_line_error(run_cli(tmp_path / "xdg", "exporter", "--listen", "nowhere"),
                          "--listen 'nowhere'", "HOST:PORT")
