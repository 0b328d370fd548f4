"""`tradeconsole web` answers on localhost and is read-only unless told otherwise."""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

from console.cli.web import console_command
from tests.conftest import wait_until


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _fetch(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.read().decode(errors="replace")
    except OSError:
        return None


def test_web_serves_the_console_page_on_localhost(tmp_path: Path) -> None:
    port = _free_port()
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path))
    proc = subprocess.Popen(
        [sys.executable, "-m", "console", "web", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=tmp_path,
    )
    try:
        page = wait_until(lambda: _fetch(f"http://127.0.0.1:{port}/"), timeout=30,
                          message="the web page")
        assert "tradeconsole" in page
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_web_console_is_readonly_unless_control_is_allowed() -> None:
    base = dict(config=None, profile=None, gateway=None, keys=None, feed=["tcp://127.0.0.1:1"])
    readonly = console_command(argparse.Namespace(**base, allow_control=False))
    control = console_command(argparse.Namespace(**base, allow_control=True))
    assert "--readonly" in readonly
    assert "--readonly" not in control
