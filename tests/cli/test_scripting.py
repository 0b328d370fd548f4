"""`tradeconsole status | heartbeat | kill | resume` against real services, as a script would.

The commands run as subprocesses (`python -m console ...`) with XDG dirs in a
temporary directory, so no user config leaks in. Read-only checks share one
publisher + gateway; the kill switch gets a gateway of its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq

from console.link.gateways import endpoint_name
from services import protocol as p
from services.runtime.launcher import ServiceProcess
from tests.conftest import ServiceFactory
from tests.services.test_gateway import CommandClient

# Nobody listens on port 1: connections are refused at once.
DEAD = "tcp://127.0.0.1:1"
FAST_GIVE_UP = ("--timeout-ms", "300", "--retries", "2")


def write_services_config(directory: Path) -> Path:
    """Logs in the temp dir and telemetry every 0.2 s, so feeds are heard quickly."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "services.toml"
    path.write_text(
        "[publisher]\nrate = 100.0\nsymbols = 5\ntelemetry_interval_s = 0.2\n"
        "[gateway]\ntelemetry_interval_s = 0.2\n"
        f"[logging]\ndir = {json.dumps(str(directory / 'logs'))}\n"
    )
    return path


def cli_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADECONSOLE_")}
    for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        env[var] = str(home / var.lower())
    return env


class Cli:
    """Runs `python -m console ...` with an isolated environment."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.env = cli_env(home)

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "console", *args], capture_output=True,
                              text=True, timeout=60, env=self.env)

    def json(self, *args: str) -> tuple[int, dict[str, Any]]:
        result = self(*args, "--json")
        assert result.stdout.strip(), result.stderr
        return result.returncode, json.loads(result.stdout)

    def user_config(self, text: str) -> None:
        path = Path(self.env["XDG_CONFIG_HOME"]) / "tradeconsole" / "config.toml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


class Fabric:
    """A publisher and a gateway priced by it."""

    def __init__(self, factory: ServiceFactory, config: Path,
                 state_dir: Path | None = None) -> None:
        self.publisher = factory.publisher("--config", str(config))
        self.gateway: ServiceProcess = factory.gateway(
            "--config", str(config), "--feed", self.pub, state_dir=state_dir)

    @property
    def pub(self) -> str:
        return str(self.publisher.endpoints["pub"])

    @property
    def cmd(self) -> str:
        return str(self.gateway.endpoints["cmd"])

    @property
    def gw_pub(self) -> str:
        return str(self.gateway.endpoints["pub"])


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Fabric, Cli]]:
    """One read-only fabric for the checks that do not change the gateway's state."""
    root = tmp_path_factory.mktemp("scripting")
    factory = ServiceFactory(root)
    try:
        yield Fabric(factory, write_services_config(root)), Cli(root)
    finally:
        factory.stop_all()


def trading_state(zctx: zmq.Context, endpoint: str) -> str:
    return str(CommandClient(zctx, endpoint).ok(p.GET_STATUS)["trading_state"])


# --- status --------------------------------------------------------------------------------


def test_status_json_is_healthy_against_live_services(shared: tuple[Fabric, Cli]) -> None:
    fabric, cli = shared
    code, report = cli.json("status", "--feed", fabric.pub, "--feed", fabric.gw_pub,
                            "--gateway", fabric.cmd, "--seconds", "10")
    assert code == 0, report
    assert (report["v"], report["health"], report["exit_code"], report["problems"]) == \
        (1, "OK", 0, [])
    assert report["listened_s"] < 10  # ended as soon as every feed was heard
    by_endpoint = {feed["endpoint"]: feed for feed in report["feeds"]}
    assert set(by_endpoint) == {fabric.pub, fabric.gw_pub}
    for feed in by_endpoint.values():
        assert feed["state"] == "OK" and feed["connection"] == "connected"
        assert feed["received"] > 0 and feed["msgs_per_s"] > 0
        assert feed["last_seen_ago_s"] is not None and feed["gaps"] == 0
    assert by_endpoint[fabric.pub]["nodes"] == {"pub-1": "OK"}
    gateway = report["gateway"]
    assert (gateway["endpoint"], gateway["state"], gateway["node"], gateway["trading_state"]) \
        == (fabric.cmd, "UP", "gw-1", "ACTIVE")
    assert gateway["rtt_ms"] > 0 and gateway["incident_id"] is None


def test_status_text_is_a_table_of_feeds_and_gateway(shared: tuple[Fabric, Cli]) -> None:
    fabric, cli = shared
    result = cli("status", "--feed", fabric.pub, "--gateway", fabric.cmd, "--seconds", "10")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:3] == ["FEED", "STATE", "MSGS/S"]
    assert lines[1].split()[:2] == [fabric.pub, "OK"]
    header = next(line for line in lines if line.startswith("GATEWAY"))
    assert header.split()[:3] == ["GATEWAY", "ENDPOINT", "STATE"]
    [gw_line] = [line for line in lines if fabric.cmd in line]
    name, endpoint, state = gw_line.split()[:3]
    assert (name, endpoint, state) == (endpoint_name(fabric.cmd), fabric.cmd, "UP")
    assert "ACTIVE" in gw_line
    assert "health: OK" in lines


def test_status_exits_1_for_a_feed_nobody_publishes_on(shared: tuple[Fabric, Cli]) -> None:
    fabric, cli = shared
    code, report = cli.json("status", "--feed", fabric.pub, "--feed", DEAD,
                            "--gateway", fabric.cmd, "--seconds", "1.5")
    assert code == 1, report
    assert report["health"] == "DEGRADED"
    states = {feed["endpoint"]: feed["state"] for feed in report["feeds"]}
    assert states == {fabric.pub: "OK", DEAD: "DOWN"}
    assert any(DEAD in problem for problem in report["problems"])
    assert report["gateway"]["state"] == "UP"


def test_status_json_lists_firing_alerts_and_keeps_its_exit_code(
    shared: tuple[Fabric, Cli], tmp_path: Path
) -> None:
    fabric, cli = shared
    config = tmp_path / "alerts.toml"
    config.write_text(
        '[[alerts.rules]]\nname = "feed-stale"\nfor = 0\n'
        '[[alerts.rules]]\nname = "feed-busy"\nmetric = "feed.msgs_per_s"\nop = ">="\n'
        'threshold = 0.0\nfor = 0\nseverity = "info"\nmessage = "{feed} carries {value:.0f}/s"\n'
        '[[alerts.rules]]\nname = "feed-busy-long"\nmetric = "feed.msgs_per_s"\nop = ">="\n'
        'threshold = 0.0\nfor = "1h"\n')
    code, report = cli.json("status", "--config", str(config), "--feed", fabric.pub,
                            "--gateway", fabric.cmd, "--seconds", "10")
    assert code == 0, report                      # firing alerts never change the exit code
    by_rule = {alert["rule"]: alert for alert in report["alerts"]}
    assert {"feed-busy", "feed-busy-long"} <= set(by_rule), report["alerts"]
    assert "feed-stale" not in by_rule           # the feed is fresh
    assert by_rule["feed-busy"]["state"] == "firing"
    assert by_rule["feed-busy"]["message"].startswith(f"{fabric.pub} carries ")
    assert by_rule["feed-busy-long"]["state"] == "pending"   # holds, but not for an hour yet
    code, report = cli.json("status", "--config", str(config), "--feed", DEAD,
                            "--gateway", "none", "--seconds", "1")
    assert code == 1
    [alert] = [a for a in report["alerts"] if a["rule"] == "feed-stale"]
    assert (alert["state"], alert["severity"], alert["subject"]) == ("firing", "critical", DEAD)


def test_status_exits_3_when_the_gateway_is_down(shared: tuple[Fabric, Cli]) -> None:
    fabric, cli = shared
    code, report = cli.json("status", "--feed", fabric.pub, "--gateway", DEAD,
                            "--seconds", "1.5", *FAST_GIVE_UP)
    assert code == 3, report
    assert report["health"] == "GATEWAY_DOWN"
    assert report["gateway"]["state"] == "DOWN" and report["gateway"]["rtt_ms"] is None
    assert report["feeds"][0]["state"] == "OK"


@pytest.mark.parametrize("args", [
    ("status", "--seconds", "0"),
    ("status", "--seconds", "inf", "--gateway", "none"),
    ("status", "--feed", "not-an-endpoint", "--gateway", "none"),
    ("heartbeat", "--count", "0"),
    ("heartbeat", "--timeout-ms", "-5"),
    ("kill", "--yes"),                       # --reason is required
    ("kill", "--reason", "x", "--mode", "PANIC", "--yes"),
    ("resume", "--yes"),                     # --incident is required
])
def test_bad_input_is_one_line_and_exit_2(shared: tuple[Fabric, Cli],
                                           args: tuple[str, ...]) -> None:
    _, cli = shared
    result = cli(*args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


# --- heartbeat -----------------------------------------------------------------------------


def test_heartbeat_prints_rtt_node_and_trading_state(shared: tuple[Fabric, Cli]) -> None:
    fabric, cli = shared
    result = cli("heartbeat", "--gateway", fabric.cmd, "--count", "2", "--interval", "0")
    assert result.returncode == 0, result.stdout + result.stderr
    beats = result.stdout.splitlines()[:2]
    for line in beats:
        assert line.startswith(f"gw-1 at {fabric.cmd}: rtt ") and line.endswith("trading ACTIVE")
        rtt = line.split("rtt ")[1].split(" ms")[0]
        assert float(rtt) > 0 and len(rtt.split(".")[1]) == 3
    assert result.stdout.splitlines()[2].startswith("2 sent, 2 answered")


def test_heartbeat_exits_3_when_nobody_answers(shared: tuple[Fabric, Cli]) -> None:
    _, cli = shared
    result = cli("heartbeat", "--gateway", DEAD, *FAST_GIVE_UP)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "no reply" in result.stdout and DEAD in result.stdout


# --- kill and resume ---------------------------------------------------------------------------


def test_kill_without_yes_sends_nothing(shared: tuple[Fabric, Cli], zctx: zmq.Context) -> None:
    fabric, cli = shared
    result = cli("kill", "--reason", "drill", "--gateway", fabric.cmd)
    assert result.returncode == 2
    assert "--yes" in result.stderr and "nothing was sent" in result.stderr
    assert trading_state(zctx, fabric.cmd) == p.ACTIVE


def test_readonly_config_refuses_kill_and_resume(shared: tuple[Fabric, Cli],
                                                  zctx: zmq.Context) -> None:
    fabric, _ = shared
    cli = Cli(shared[1].home / "readonly")
    cli.user_config("[console]\nreadonly = true\n")
    for args in (("kill", "--reason", "drill"), ("resume", "--incident", "INC-x")):
        result = cli(*args, "--yes", "--gateway", fabric.cmd)
        assert result.returncode == 2, result.stdout + result.stderr
        assert "readonly" in result.stderr and "nothing was sent" in result.stderr
    assert trading_state(zctx, fabric.cmd) == p.ACTIVE


def test_kill_halts_and_resume_with_its_incident_releases(
        services: ServiceFactory, zctx: zmq.Context, tmp_path: Path) -> None:
    fabric = Fabric(services, write_services_config(tmp_path / "svc"),
                    state_dir=tmp_path / "gw-state")
    cli = Cli(tmp_path)
    gateway = ("--gateway", fabric.cmd)

    killed = cli("kill", "--reason", "runaway strategy", "--mode", "HALT", "--yes", *gateway)
    assert killed.returncode == 0, killed.stdout + killed.stderr
    status = CommandClient(zctx, fabric.cmd).ok(p.GET_STATUS)
    assert (status["trading_state"], status["reason"]) == (p.HALTED, "runaway strategy")
    incident = status["incident_id"]
    assert f"incident {incident}" in killed.stdout
    assert "cancelled orders: 0" in killed.stdout

    code, report = cli.json("status", "--feed", fabric.pub, *gateway, "--seconds", "10")
    assert code == 0, report  # HALTED is a trading state, not degraded health
    assert (report["gateway"]["trading_state"], report["gateway"]["incident_id"]) == \
        (p.HALTED, incident)

    code, wrong = cli.json("resume", "--incident", "INC-wrong", "--yes", *gateway)
    assert code == 1 and wrong["status"] == p.REJECTED
    assert wrong["error"]["code"] == p.NOT_FOUND
    assert trading_state(zctx, fabric.cmd) == p.HALTED

    resumed = cli("resume", "--incident", incident, "--reason", "fixed", "--yes", *gateway)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"incident {incident} released: trading ACTIVE" in resumed.stdout
    assert trading_state(zctx, fabric.cmd) == p.ACTIVE


def test_kill_that_is_not_delivered_says_so_and_exits_3(shared: tuple[Fabric, Cli]) -> None:
    _, cli = shared
    result = cli("kill", "--reason", "drill", "--yes", "--gateway", DEAD, *FAST_GIVE_UP)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "KILL_SWITCH NOT delivered" in result.stderr
