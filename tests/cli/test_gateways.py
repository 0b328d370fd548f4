"""Several gateways by name, from a script: `[gateways.NAME]`, `--gateway NAME=EP`, `kill --all`.

Three real gateways (processes) priced by one publisher; the third is killed
with -9 where a test needs a gateway that does not answer. What each gateway
says is asked of the gateway itself, never of the command's output alone.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
import zmq

from services import protocol as p
from services.runtime.launcher import ServiceProcess
from tests.cli.test_scripting import FAST_GIVE_UP, Cli, write_services_config
from tests.conftest import ServiceFactory
from tests.services.test_gateway import CommandClient

NAMES = ("paper-a", "paper-b", "paper-c")


class Desk:
    """One publisher and three gateways, named in the user config."""

    def __init__(self, factory: ServiceFactory, root: Path) -> None:
        config = write_services_config(root / "svc")
        self.publisher = factory.publisher("--config", str(config))
        pub = str(self.publisher.endpoints["pub"])
        self.gateways: dict[str, ServiceProcess] = {
            name: factory.gateway("--config", str(config), "--feed", pub, "--node", f"gw-{name}",
                                  state_dir=root / f"state-{name}")
            for name in NAMES
        }
        self.pub = pub
        self.cli = Cli(root)
        self.cli.user_config("".join(
            f'[gateways.{name}]\nendpoint = "{self.cmd(name)}"\n' for name in NAMES))

    def cmd(self, name: str) -> str:
        return str(self.gateways[name].endpoints["cmd"])

    def trading_state(self, zctx: zmq.Context, name: str) -> str:
        return str(CommandClient(zctx, self.cmd(name)).ok(p.GET_STATUS)["trading_state"])


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[Desk]:
    factory = ServiceFactory(tmp_path)
    try:
        yield Desk(factory, tmp_path)
    finally:
        factory.stop_all()


def test_status_lists_every_gateway_and_exits_with_the_worst(desk: Desk) -> None:
    code, report = desk.cli.json("status", "--feed", desk.pub, "--seconds", "5")
    assert code == 0, report
    assert [g["name"] for g in report["gateways"]] == list(NAMES)
    assert all(g["state"] == "UP" and g["trading_state"] == p.ACTIVE
               for g in report["gateways"])
    assert report["gateway"]["name"] == "paper-a"  # the first, as before
    assert [g["node"] for g in report["gateways"]] == [f"gw-{n}" for n in NAMES]

    desk.gateways["paper-c"].signal(signal.SIGKILL)
    code, report = desk.cli.json("status", "--feed", desk.pub, "--seconds", "5",
                                 *FAST_GIVE_UP)
    assert code == 3, report
    states = {g["name"]: g["state"] for g in report["gateways"]}
    assert states == {"paper-a": "UP", "paper-b": "UP", "paper-c": "DOWN"}
    assert any("paper-c" in problem for problem in report["problems"])


def test_kill_of_one_gateway_leaves_the_others_active(desk: Desk, zctx: zmq.Context) -> None:
    result = desk.cli("kill", "--gateway", "paper-b", "--reason", "drill", "--yes")
    assert result.returncode == 0, result.stdout + result.stderr
    assert [desk.trading_state(zctx, n) for n in NAMES] == [p.ACTIVE, p.HALTED, p.ACTIVE]
    # Several gateways and no choice: nothing is sent.
    refused = desk.cli("kill", "--reason", "drill", "--yes")
    assert refused.returncode == 2 and "--gateway NAME" in refused.stderr
    assert [desk.trading_state(zctx, n) for n in NAMES] == [p.ACTIVE, p.HALTED, p.ACTIVE]


def test_kill_all_halts_the_live_ones_and_reports_the_dead_one_not_delivered(
        desk: Desk, zctx: zmq.Context) -> None:
    desk.gateways["paper-c"].signal(signal.SIGKILL)
    code, report = desk.cli.json("kill", "--all", "--reason", "desk-wide drill", "--yes",
                                 *FAST_GIVE_UP)
    assert code == 3, report
    by_name = {g["name"]: g for g in report["gateways"]}
    assert list(by_name) == list(NAMES)
    for name in ("paper-a", "paper-b"):
        assert by_name[name]["delivered"] and by_name[name]["status"] == p.SUCCESS
        assert by_name[name]["data"]["incident_id"]
        assert desk.trading_state(zctx, name) == p.HALTED
    assert by_name["paper-c"]["delivered"] is False
    assert by_name["paper-c"]["exit_code"] == 3

    text = desk.cli("kill", "--all", "--reason", "again", "--yes", *FAST_GIVE_UP)
    assert text.returncode == 3
    assert "paper-a: already halted" in text.stdout
    assert "paper-c: KILL_SWITCH NOT delivered" in text.stdout


def test_heartbeat_and_resume_take_a_name(desk: Desk, zctx: zmq.Context) -> None:
    beat = desk.cli("heartbeat", "--gateway", "paper-a")
    assert beat.returncode == 0 and beat.stdout.startswith("gw-paper-a at "), beat.stdout
    code, killed = desk.cli.json("kill", "--gateway", "paper-a", "--reason", "x", "--yes")
    assert code == 0 and killed["name"] == "paper-a"
    incident = killed["data"]["incident_id"]
    resumed = desk.cli("resume", "--gateway", "paper-a", "--incident", incident, "--yes")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert desk.trading_state(zctx, "paper-a") == p.ACTIVE


def test_a_read_only_gateway_is_refused_and_skipped_by_kill_all(
        desk: Desk, zctx: zmq.Context) -> None:
    desk.cli.user_config("".join(
        f'[gateways.{name}]\nendpoint = "{desk.cmd(name)}"\n'
        + ("readonly = true\n" if name == "paper-b" else "") for name in NAMES))
    refused = desk.cli("kill", "--gateway", "paper-b", "--reason", "x", "--yes")
    assert refused.returncode == 2 and "read-only" in refused.stderr
    code, report = desk.cli.json("kill", "--all", "--reason", "x", "--yes")
    assert code == 1, report
    assert [desk.trading_state(zctx, n) for n in NAMES] == [p.HALTED, p.ACTIVE, p.HALTED]


@pytest.mark.parametrize(("args", "says"), [
    (("--gateway", "a=tcp://127.0.0.1:5555", "--gateway", "a=tcp://127.0.0.1:5556"),
     "two gateways named 'a'"),
    (("--gateway", "a="), "no endpoint after '='"),
    (("--gateway", "nope"), "no gateway named 'nope'"),
])
def test_bad_gateway_arguments_are_one_line_and_exit_2(
        tmp_path: Path, args: tuple[str, ...], says: str) -> None:
    cli = Cli(tmp_path)
    result = cli("kill", "--reason", "x", "--yes", *args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and says in result.stderr
    status = cli("status", "--feed", "tcp://127.0.0.1:1", *args)
    assert status.returncode == 2 and says in status.stderr


def test_a_bad_gateways_table_is_one_line_and_exit_2(tmp_path: Path) -> None:
    cli = Cli(tmp_path)
    for text, says in (('[gateways.a]\nendpoint = 5\n', "gateways.a: endpoint"),
                       ('[gateways.a]\nendpoint = "tcp://x:1"\nport = 1\n', "unknown field"),
                       ('[gateways."a b"]\nendpoint = "tcp://x:1"\n', "a name may use")):
        cli.user_config(text)
        result = cli("heartbeat")
        assert result.returncode == 2 and says in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
