"""The independent protocol client against the real publisher and gateway processes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.acceptance.protocol_client import run_scenario
from tests.conftest import ServiceFactory
from tests.services.test_gateway import write_config

CLIENT = Path(__file__).parent / "protocol_client.py"


def test_protocol_scenario_with_a_gateway_restart(services: ServiceFactory,
                                                  tmp_path: Path) -> None:
    publisher = services.publisher("--symbols", "8", "--rate", "300", "--seed", "11")
    feed = publisher.endpoints["pub"]
    args = ("--config", str(write_config(tmp_path)), "--feed", feed)
    state = tmp_path / "state"
    gateways = [services.gateway(*args, state_dir=state)]

    def restart() -> str:
        gateways[-1].stop()
        gateways.append(services.gateway(*args, state_dir=state))
        return gateways[-1].endpoints["cmd"]

    report = run_scenario(gateways[0].endpoints["cmd"], feed,
                          events=gateways[0].endpoints["pub"], restart=restart)
    assert report.ok, report.text()
    assert any(step.startswith("restart") for step in report.passed)
    assert len(gateways) == 2


def test_protocol_client_as_a_script(services: ServiceFactory, tmp_path: Path) -> None:
    publisher = services.publisher("--symbols", "4", "--rate", "300", "--seed", "3")
    gateway = services.gateway("--config", str(write_config(tmp_path)),
                               "--feed", publisher.endpoints["pub"])
    result = subprocess.run(
        [sys.executable, str(CLIENT), "--gateway", gateway.endpoints["cmd"],
         "--feed", publisher.endpoints["pub"], "--events", gateway.endpoints["pub"]],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "FAIL" not in result.stdout and "PASS resume" in result.stdout
