"""The command line's contract: bad input is one line and exit code 2."""

from __future__ import annotations

import subprocess
import sys

import pytest


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "console", *args],
        capture_output=True, text=True, timeout=60, env=env,
    )


@pytest.mark.parametrize(
    "args",
    [
        ("--no-such-flag",),
        ("publisher", "--rate", "fast"),
        ("gateway", "--bogus"),
        ("demo", "--symbols", "0"),
        ("web", "--port", "70000"),
    ],
)
def test_bad_arguments_give_one_line_and_exit_2(args: tuple[str, ...]) -> None:
    result = run_cli(*args)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "error" in lines[0]
    assert "Traceback" not in result.stderr


def test_help_lists_every_command() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    for name in ("demo", "publisher", "gateway", "proxy", "status", "kill", "keys", "config"):
        assert name in result.stdout


def test_version_comes_from_the_package_metadata() -> None:
    from importlib.metadata import version

    for flag in ("--version", "-V"):
        result = run_cli(flag)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == f"tradeconsole {version('tradeconsole')}"
