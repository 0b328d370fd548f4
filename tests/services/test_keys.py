"""`tradeconsole keys generate DIR` through the real command line."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import zmq.auth

from services.security import load_allow_list, load_keys

CLIENTS = {"trader": "trader", "monitor": "monitor", "publisher": "publisher"}


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "console", *args], capture_output=True, text=True, timeout=60,
    )


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def snapshot(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes()
            for p in sorted(directory.rglob("*")) if p.is_file()}


@pytest.fixture
def generated(tmp_path: Path) -> Path:
    directory = tmp_path / "keys"
    result = run_cli("keys", "generate", str(directory))
    assert result.returncode == 0, result.stderr
    return directory


def test_generate_writes_the_certificates_and_the_allow_list(generated: Path) -> None:
    expected = {"server.key", "server.key_secret"}
    for name, role in CLIENTS.items():
        expected |= {f"{name}.key", f"{name}.key_secret", f"authorized/{role}/{name}.key"}
    assert set(snapshot(generated)) == expected


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_secrets_are_0600_and_directories_0700(generated: Path) -> None:
    for path in [generated, *generated.rglob("*")]:
        if path.is_dir():
            assert mode(path) == 0o700, path
        elif path.name.endswith(".key_secret"):
            assert mode(path) == 0o600, path


def test_allow_list_holds_public_certificates_only(generated: Path) -> None:
    for cert in (generated / "authorized").rglob("*"):
        if cert.is_file():
            assert cert.suffix == ".key"
            _, secret = zmq.auth.load_certificate(cert)
            assert secret is None, cert


def test_each_client_is_allow_listed_under_its_role(generated: Path) -> None:
    roles = load_allow_list(generated / "authorized")
    for name, role in CLIENTS.items():
        keys = load_keys(generated, client=name)
        assert keys.client_public is not None and keys.server_secret is not None
        assert roles[keys.client_public] == role
    assert load_keys(generated).server_public not in roles


def test_output_lists_what_was_written(tmp_path: Path) -> None:
    directory = tmp_path / "keys"
    result = run_cli("keys", "generate", str(directory))
    assert result.returncode == 0
    for name in ("server.key_secret", "authorized/trader/trader.key",
                 "authorized/monitor/monitor.key"):
        assert name in result.stdout


def test_generate_refuses_to_overwrite_without_force(generated: Path) -> None:
    before = snapshot(generated)
    result = run_cli("keys", "generate", str(generated))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--force" in lines[0], result.stderr
    assert snapshot(generated) == before


def test_force_replaces_every_key(generated: Path) -> None:
    before = snapshot(generated)
    result = run_cli("keys", "generate", str(generated), "--force")
    assert result.returncode == 0, result.stderr
    after = snapshot(generated)
    assert set(after) == set(before)
    assert all(after[name] != before[name] for name in before)
    assert not [p for p in generated.iterdir() if p.name.startswith(".keys-")]


@pytest.mark.parametrize("args", [("keys",), ("keys", "rotate", "x"), ("keys", "generate")])
def test_bad_keys_commands_give_one_line_and_exit_2(args: tuple[str, ...]) -> None:
    result = run_cli(*args)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr


def test_a_file_in_the_way_is_refused(tmp_path: Path) -> None:
    blocker = tmp_path / "keys"
    blocker.write_text("not a directory")
    result = run_cli("keys", "generate", str(blocker))
    assert result.returncode == 2
    assert "not a directory" in result.stderr


def test_add_gives_a_client_its_own_key_under_its_role(generated: Path) -> None:
    result = run_cli("keys", "add", str(generated), "alice", "--role", "monitor")
    assert result.returncode == 0, result.stderr
    alice = load_keys(generated, client="alice")
    assert load_allow_list(generated / "authorized")[alice.client_public] == "monitor"
    assert mode(generated / "alice.key_secret") == 0o600


def test_add_again_needs_force_and_drops_the_old_entry(generated: Path) -> None:
    assert run_cli("keys", "add", str(generated), "bob", "--role", "trader").returncode == 0
    old = load_keys(generated, client="bob").client_public
    refused = run_cli("keys", "add", str(generated), "bob")
    assert refused.returncode == 2 and "--force" in refused.stderr
    assert run_cli("keys", "add", str(generated), "bob", "--force").returncode == 0
    roles = load_allow_list(generated / "authorized")
    assert old not in roles
    assert roles[load_keys(generated, client="bob").client_public] == "monitor"
    assert not (generated / "authorized" / "trader" / "bob.key").exists()


@pytest.mark.parametrize(
    ("args", "needle"),
    [(("alice", "--role", "admin"), "invalid choice"), (("../x",), "plain name")],
)
def test_add_refuses_bad_names_and_roles(generated: Path, args: tuple[str, ...],
                                         needle: str) -> None:
    result = run_cli("keys", "add", str(generated), *args)
    assert result.returncode == 2
    assert needle in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_add_needs_a_key_directory(tmp_path: Path) -> None:
    result = run_cli("keys", "add", str(tmp_path), "alice")
    assert result.returncode == 2
    assert "keys generate" in result.stderr
