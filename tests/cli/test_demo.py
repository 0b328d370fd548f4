"""`tradeconsole demo` starts its services (a publisher, two gateways) and leaves no orphans."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import msgpack
import zmq

from tests.conftest import wait_until


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); read its state to be sure.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.split(")")[-1].split()[0] != "Z"


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def test_demo_serves_ticks_and_stops_its_children(tmp_path: Path) -> None:
    env = dict(os.environ, XDG_DATA_HOME=str(tmp_path / "data"),
               XDG_STATE_HOME=str(tmp_path / "state"), XDG_CONFIG_HOME=str(tmp_path / "cfg"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "console", "demo", "--no-console", "--rate", "200"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        endpoints: dict[str, str] = {}
        assert proc.stdout is not None
        while "state_dir" not in endpoints:
            line = proc.stdout.readline()
            assert line, f"demo exited early: {proc.stderr.read() if proc.stderr else ''}"
            name, _, value = line.strip().partition(" ")
            endpoints[name] = value.strip()
        assert {"gateway", "gateway_pub", "gateway2", "gateway2_pub"} <= set(endpoints)
        children = wait_until(lambda: len(_children(proc.pid)) == 3 and _children(proc.pid),
                              message="three child services (publisher, paper-a, paper-b)")

        ctx = zmq.Context()
        try:
            sub = ctx.socket(zmq.SUB)
            sub.setsockopt(zmq.SUBSCRIBE, b"")
            sub.setsockopt(zmq.RCVTIMEO, 10000)
            sub.connect(endpoints["publisher"])
            _topic, payload = sub.recv_multipart()
            assert msgpack.unpackb(payload)["pub"] == "demo-pub"
            req = ctx.socket(zmq.REQ)
            req.setsockopt(zmq.RCVTIMEO, 10000)
            req.connect(endpoints["gateway"])
            req.send(msgpack.packb({"v": 1, "action": "HEARTBEAT", "req_id": "r1",
                                    "client_id": "test", "ts_ns": 1, "payload": {}}))
            assert msgpack.unpackb(req.recv())["status"] == "SUCCESS"
        finally:
            ctx.destroy(linger=0)

        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)
        wait_until(lambda: not any(_alive(pid) for pid in children), timeout=10,
                   message="children to exit")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_demo_children_die_when_the_demo_is_killed(tmp_path: Path) -> None:
    env = dict(os.environ, XDG_DATA_HOME=str(tmp_path / "data"),
               XDG_STATE_HOME=str(tmp_path / "state"), XDG_CONFIG_HOME=str(tmp_path / "cfg"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "console", "demo", "--no-console"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
    )
    try:
        children = wait_until(lambda: len(_children(proc.pid)) == 3 and _children(proc.pid),
                              timeout=30, message="three child services")
        proc.kill()  # SIGKILL: no cleanup code runs in the demo itself
        proc.wait(timeout=10)
        wait_until(lambda: not any(_alive(pid) for pid in children), timeout=10,
                   message="orphaned services to exit")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
