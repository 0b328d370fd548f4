"""CURVE with a role allow-list, over real ZeroMQ sockets on 127.0.0.1 in this process.

A client is admitted only with an allow-listed key, gets the role of the
directory its key is in, and every refusal is logged and counted.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import zmq
import zmq.auth

from services import security
from services.keys import generate_keys
from services.protocol import KILL_SWITCH, READ_ACTIONS, STATE_CHANGING_ACTIONS
from services.runtime.errors import UsageError
from services.security import (
    Keys,
    auth_failures,
    is_allowed,
    load_keys,
    require_curve,
    role_of_frame,
    secure_client,
    secure_server,
    start_auth,
    stop_auth,
)
from tests.conftest import wait_until

QUIET_S = 0.3  # how long "nothing arrived" is checked once the refusal is known


@pytest.fixture
def keydir(tmp_path: Path) -> Path:
    directory = tmp_path / "keys"
    generate_keys(directory)
    return directory


@dataclass
class Server:
    ctx: zmq.Context
    sock: zmq.Socket
    endpoint: str
    keys: Keys

    def client(self, keys: Keys | None = None, kind: int = zmq.REQ) -> zmq.Socket:
        sock = self.ctx.socket(kind)
        sock.linger = 0
        if keys is not None:
            secure_client(sock, keys)
        sock.connect(self.endpoint)
        return sock


def _serve(ctx: zmq.Context, keydir: Path, kind: int = zmq.REP, **kwargs: object) -> Server:
    keys = load_keys(keydir)
    sock = ctx.socket(kind)
    sock.linger = 0
    secure_server(sock, keys, **kwargs)  # type: ignore[arg-type]
    sock.bind("tcp://127.0.0.1:*")
    return Server(ctx, sock, sock.getsockopt_string(zmq.LAST_ENDPOINT), keys)


@pytest.fixture
def server(zctx: zmq.Context, keydir: Path) -> Iterator[Server]:
    srv = _serve(zctx, keydir)
    try:
        yield srv
    finally:
        stop_auth(zctx)


def _round_trip(srv: Server, client: zmq.Socket) -> zmq.Frame:
    """Send one request, return the frame the server got (after replying to it)."""
    client.send(b"ping")
    assert srv.sock.poll(15_000), "the server received nothing"
    frame = srv.sock.recv(copy=False)
    srv.sock.send(b"pong")
    assert client.poll(15_000)
    assert client.recv() == b"pong"
    return frame


def _assert_refused(srv: Server, client: zmq.Socket, before: int) -> None:
    """Wait until the refusal is counted, then check nothing got through either way."""
    wait_until(lambda: auth_failures(srv.ctx) > before, timeout=15, message="a refusal")
    assert srv.sock.poll(int(QUIET_S * 1000)) == 0
    assert client.poll(0) == 0


# --- libzmq ---------------------------------------------------------------------


def test_require_curve_passes_with_this_libzmq() -> None:
    require_curve()


def test_require_curve_names_the_missing_version(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(zmq, "zmq_version_info", lambda: (4, 3, 4))
    with pytest.raises(UsageError, match=r"libzmq >= 4\.3\.5"):
        require_curve()


def test_require_curve_names_missing_curve(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(zmq, "has", lambda capability: False)
    with pytest.raises(UsageError, match="without it"):
        require_curve()


# --- who gets in, and as what -------------------------------------------------------


def test_trader_key_is_admitted_with_role_trader(server: Server, keydir: Path) -> None:
    client = server.client(load_keys(keydir, client="trader"))
    role = role_of_frame(_round_trip(server, client))
    assert role == "trader"
    assert all(is_allowed(role, action) for action in READ_ACTIONS | STATE_CHANGING_ACTIONS)


def test_monitor_key_has_role_monitor_and_may_only_read(server: Server, keydir: Path) -> None:
    client = server.client(load_keys(keydir, client="monitor"))
    role = role_of_frame(_round_trip(server, client))
    assert role == "monitor"
    assert not is_allowed(role, KILL_SWITCH)
    assert not any(is_allowed(role, action) for action in STATE_CHANGING_ACTIONS)
    assert all(is_allowed(role, action) for action in READ_ACTIONS)


def test_unknown_key_gets_nothing_and_is_logged(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="tradeconsole.security")
    public, secret = zmq.curve_keypair()
    stranger = Keys(server.keys.dir, server.keys.server_public, None, public, secret)
    before = auth_failures(server.ctx)
    client = server.client(stranger)
    client.send(b"ping")
    _assert_refused(server, client, before)
    wait_until(lambda: any(public.decode() in r.getMessage() for r in caplog.records),
               timeout=15, message="a log line naming the refused key")


def test_client_without_curve_gets_nothing(server: Server) -> None:
    before = auth_failures(server.ctx)
    client = server.client(None)
    client.send(b"ping")
    _assert_refused(server, client, before)


def test_client_with_another_server_key_gets_nothing(server: Server, keydir: Path) -> None:
    trader = load_keys(keydir)
    other_server, _ = zmq.curve_keypair()
    impostor = Keys(keydir, other_server, None, trader.client_public, trader.client_secret)
    before = auth_failures(server.ctx)
    client = server.client(impostor)
    client.send(b"ping")
    _assert_refused(server, client, before)


def test_ticks_need_curve_too(zctx: zmq.Context, keydir: Path) -> None:
    pub = _serve(zctx, keydir, zmq.PUB)
    try:
        admitted = pub.client(load_keys(keydir, client="monitor"), zmq.SUB)
        plain = pub.client(None, zmq.SUB)
        for sub in (admitted, plain):
            sub.subscribe(b"")

        def delivered() -> bool:
            pub.sock.send_multipart([b"BTCUSD.KRAKEN", b"tick"])
            return bool(admitted.poll(50))

        wait_until(delivered, timeout=15, message="a tick over CURVE")
        assert admitted.recv_multipart() == [b"BTCUSD.KRAKEN", b"tick"]
        wait_until(lambda: auth_failures(zctx) > 0, timeout=15, message="the plain SUB refused")
        pub.sock.send_multipart([b"BTCUSD.KRAKEN", b"tick"])
        assert plain.poll(int(QUIET_S * 1000)) == 0
    finally:
        stop_auth(zctx)


def test_a_socket_can_admit_only_some_roles(zctx: zmq.Context, keydir: Path) -> None:
    srv = _serve(zctx, keydir, roles=["publisher"])
    try:
        publisher = srv.client(load_keys(keydir, client="publisher"))
        assert role_of_frame(_round_trip(srv, publisher)) == "publisher"
        before = auth_failures(zctx)
        trader = srv.client(load_keys(keydir, client="trader"))
        trader.send(b"ping")
        _assert_refused(srv, trader, before)
    finally:
        stop_auth(zctx)


def test_reload_admits_a_key_added_to_the_allow_list(server: Server, keydir: Path) -> None:
    extra = keydir / "extra"
    extra.mkdir()
    public_file, secret_file = zmq.auth.create_certificates(extra, "alice")
    os.chmod(secret_file, 0o600)
    shutil.copy(public_file, keydir / "authorized" / "monitor" / "alice.key")
    shutil.copy(secret_file, keydir / "alice.key_secret")
    start_auth(server.ctx, server.keys).reload()
    client = server.client(load_keys(keydir, client="alice"))
    assert role_of_frame(_round_trip(server, client)) == "monitor"


def test_without_curve_there_is_no_role_and_no_restriction(zctx: zmq.Context) -> None:
    rep = zctx.socket(zmq.REP)
    rep.linger = 0
    rep.bind("tcp://127.0.0.1:*")
    req = zctx.socket(zmq.REQ)
    req.linger = 0
    req.connect(rep.getsockopt_string(zmq.LAST_ENDPOINT))
    req.send(b"ping")
    assert rep.poll(15_000)
    role = role_of_frame(rep.recv(copy=False))
    assert role is None
    assert is_allowed(role, KILL_SWITCH)


def test_malformed_zap_requests_are_refused_and_the_handler_survives(
    server: Server, keydir: Path
) -> None:
    zap = server.ctx.socket(zmq.REQ)
    zap.linger = 0
    zap.connect(security.ZAP_ENDPOINT)
    requests = [
        [b"1.0", b"r1"],
        [b"9.9", b"r2", b"", b"", b"", b"CURVE", b"k" * 32],
        [b"1.0", b"r3", b"tradeconsole", b"", b"", b"CURVE", b"short"],
        [b"1.0", b"r4", b"tradeconsole", b"", b"", b"NULL"],
    ]
    for request in requests:
        zap.send_multipart(request)
        assert zap.poll(15_000), request
        reply = zap.recv_multipart()
        assert reply[1] == request[1] and reply[2] != b"200", reply
    client = server.client(load_keys(keydir))
    assert role_of_frame(_round_trip(server, client)) == "trader"


# --- the authenticator's lifecycle -------------------------------------------------------


def test_start_auth_is_idempotent_per_context(zctx: zmq.Context, keydir: Path) -> None:
    keys = load_keys(keydir)
    try:
        assert start_auth(zctx, keys) is start_auth(zctx, keys)
    finally:
        stop_auth(zctx)


def test_auth_failures_of_a_context_without_auth_is_zero(zctx: zmq.Context) -> None:
    assert auth_failures(zctx) == 0


def test_terminating_the_context_stops_the_authenticator(keydir: Path) -> None:
    ctx = zmq.Context()
    srv = _serve(ctx, keydir)
    auth = start_auth(ctx, srv.keys)
    srv.sock.close()
    done = threading.Event()
    terminator = threading.Thread(target=lambda: (ctx.term(), done.set()), daemon=True)
    terminator.start()
    assert done.wait(15), "ctx.term() hung on the authenticator"
    wait_until(lambda: not auth.is_alive(), timeout=15, message="the ZAP thread to exit")
    stop_auth(ctx)


# --- loading keys --------------------------------------------------------------------


def test_keys_repr_hides_secrets(keydir: Path) -> None:
    keys = load_keys(keydir)
    assert keys.server_secret is not None and keys.client_secret is not None
    text = repr(keys)
    assert keys.server_secret.decode() not in text
    assert keys.client_secret.decode() not in text


def test_a_client_host_needs_no_server_secret(keydir: Path, zctx: zmq.Context) -> None:
    (keydir / "server.key_secret").unlink()
    keys = load_keys(keydir, client="monitor")
    assert keys.server_secret is None
    secure_client(zctx.socket(zmq.REQ), keys)
    with pytest.raises(UsageError, match=r"server\.key_secret"):
        secure_server(zctx.socket(zmq.REP), keys)


def test_a_service_host_needs_no_client_secret(keydir: Path, zctx: zmq.Context) -> None:
    (keydir / "trader.key_secret").unlink()
    keys = load_keys(keydir)
    assert keys.client_secret is None
    with pytest.raises(UsageError, match=r"trader\.key_secret"):
        secure_client(zctx.socket(zmq.REQ), keys)


@pytest.mark.parametrize(
    ("damage", "client", "expected"),
    [
        (lambda d: shutil.rmtree(d), "trader", "no such directory"),
        (lambda d: (d / "server.key").unlink(), "trader", r"server\.key is missing"),
        (lambda d: (d / "server.key").write_text("curve\n  public-key = \"short\"\n"),
         "trader", "not a 40-character z85"),
        (lambda d: (d / "trader.key_secret").chmod(0o644), "trader", "chmod 600"),
        (lambda d: None, "../server", "not allowed"),
        (lambda d: (d / "server.key").write_bytes(
            (d / "monitor.key").read_bytes()), "trader", "different keys"),
    ],
    ids=["no-dir", "no-server-key", "bad-key", "secret-readable", "bad-name", "mismatch"],
)
def test_bad_key_directories_are_refused_with_the_reason(
    keydir: Path, damage: object, client: str, expected: str
) -> None:
    damage(keydir)  # type: ignore[operator]
    with pytest.raises(UsageError, match=expected):
        load_keys(keydir, client=client)


def test_allow_list_roles_come_from_directories(keydir: Path) -> None:
    roles = security.load_allow_list(keydir / "authorized")
    trader = load_keys(keydir, client="trader").client_public
    monitor = load_keys(keydir, client="monitor").client_public
    assert roles[trader] == "trader"
    assert roles[monitor] == "monitor"


def test_a_key_listed_twice_gets_the_lesser_role(keydir: Path) -> None:
    shutil.copy(keydir / "trader.key", keydir / "authorized" / "monitor" / "trader.key")
    trader = load_keys(keydir).client_public
    assert security.load_allow_list(keydir / "authorized")[trader] == "monitor"
