"""CURVE security (the Ironhouse pattern) with roles taken from a key allow-list.

Every service socket started with `--keys DIR` is a CURVE server whose
handshakes are checked by one ZAP handler per ZeroMQ context. The handler
accepts a client only if its public key is in `DIR/authorized/<role>/*.key`
and reports the role as the connection's User-Id, so the gateway can
authorise each command by the key that sent it (`role_of_frame`,
`is_allowed`). Refused handshakes are logged and counted (`auth_failures`)
for telemetry, including the ones ZAP never sees (a client without CURVE, or
one that holds the wrong server key), which a socket monitor reports.

Key files are pyzmq/czmq certificates; the layout is described in
docs/security.md and written by `tradeconsole keys generate`.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import queue
import re
import stat
import threading
import time
import weakref
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from itertools import count
from pathlib import Path

import zmq
import zmq.auth
from zmq.auth.base import Authenticator
from zmq.utils import z85
from zmq.utils.monitor import parse_monitor_message

from services.protocol import READ_ACTIONS
from services.runtime.errors import UsageError

log = logging.getLogger("tradeconsole.security")

MIN_LIBZMQ = (4, 3, 5)
ZAP_DOMAIN = "tradeconsole"
ZAP_ENDPOINT = "inproc://zeromq.zap.01"
ZAP_VERSION = b"1.0"

ROLE_TRADER = "trader"
ROLE_MONITOR = "monitor"
ROLE_PUBLISHER = "publisher"
# Allow-list directories, in order of increasing privilege (a key found in two
# places gets the least privileged role).
ROLES = (ROLE_PUBLISHER, ROLE_MONITOR, ROLE_TRADER)

SERVER_NAME = "server"
AUTHORIZED_DIR = "authorized"
PUBLIC_SUFFIX = ".key"
SECRET_SUFFIX = ".key_secret"
CLIENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

# Handshake failures that never reach ZAP; ZAP's own refusals are counted by
# the handler itself, so HANDSHAKE_FAILED_AUTH is deliberately not watched.
_WATCHED_EVENTS = (
    zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
    | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
    | zmq.EVENT_MONITOR_STOPPED
)
_PROTOCOL_REASONS = {
    zmq.PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH: "security mechanism mismatch "
    "(a client without CURVE, or a peer that is not a client)",
    zmq.PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC: "cryptographic error "
    "(the client holds a different server public key)",
}
# A peer that hangs up mid-handshake (a client exiting) is not a refusal.
_PEER_LEFT = frozenset({errno.EPIPE, errno.ECONNRESET, errno.ECONNABORTED})
_POLL_MS = 100
_LOG_EVERY_S = 60.0
_THROTTLE_MAX_KEYS = 1024


@dataclass(frozen=True)
class Keys:
    """The key material one process needs; secrets are z85 text and never printed."""

    dir: Path
    server_public: bytes
    server_secret: bytes | None = field(repr=False)
    client_public: bytes | None
    client_secret: bytes | None = field(repr=False)
    client_name: str | None = None

    @property
    def authorized_dir(self) -> Path:
        return self.dir / AUTHORIZED_DIR


# --- checks and loading --------------------------------------------------------


def require_curve() -> None:
    """Refuse to run with a libzmq that cannot do (or does old) CURVE."""
    version = zmq.zmq_version()
    if zmq.zmq_version_info() < MIN_LIBZMQ:
        wanted = ".".join(map(str, MIN_LIBZMQ))
        raise UsageError(
            f"--keys needs libzmq >= {wanted} with CURVE, but pyzmq {zmq.__version__} uses "
            f"libzmq {version}; upgrade with: pip install --upgrade pyzmq"
        )
    if not zmq.has("curve"):
        raise UsageError(
            f"--keys needs CURVE, but libzmq {version} was built without it (no libsodium); "
            f"install a pyzmq wheel, which bundles it: pip install --force-reinstall pyzmq"
        )


def _check_key(key: bytes, path: Path, what: str) -> bytes:
    try:
        ok = len(key) == 40 and len(z85.decode(key)) == 32
    except (ValueError, KeyError, IndexError):
        ok = False
    if not ok:
        raise UsageError(f"{path}: {what} is not a 40-character z85 CURVE key")
    return key


def _check_private(path: Path) -> None:
    """Like ssh: a secret others can read is refused, with the fix."""
    if os.name != "posix":
        return
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise UsageError(
            f"{path} can be read by other users (mode {mode:04o}); run: chmod 600 {path}"
        )


def _read_certificate(path: Path, *, secret: bool) -> tuple[bytes, bytes | None]:
    try:
        public, secret_key = zmq.auth.load_certificate(path)
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: not a readable CURVE certificate ({exc})") from exc
    _check_key(public, path, "public-key")
    if secret:
        if secret_key is None:
            raise UsageError(f"{path}: no secret-key line (is it a public certificate?)")
        _check_key(secret_key, path, "secret-key")
        _check_private(path)
    return public, secret_key


def load_keys(dir: str | Path, *, client: str = "trader") -> Keys:
    """Load `DIR/server.key` plus whichever secrets this host holds.

    A service host has `server.key_secret`; a client host has
    `<client>.key_secret`. Missing secrets are None here and refused by
    `secure_server` / `secure_client`, so one loader serves both sides.
    """
    require_curve()
    directory = Path(dir).expanduser()
    if not directory.is_dir():
        raise UsageError(
            f"--keys {directory}: no such directory; create one with: "
            f"tradeconsole keys generate {directory}"
        )
    if not CLIENT_NAME.match(client) or client == SERVER_NAME:
        raise UsageError(
            f"client key name {client!r} is not allowed; use a plain name such as "
            f"{ROLE_TRADER} or {ROLE_MONITOR} (the file DIR/NAME{SECRET_SUFFIX})"
        )
    server_file = directory / f"{SERVER_NAME}{PUBLIC_SUFFIX}"
    if not server_file.is_file():
        raise UsageError(
            f"--keys {directory}: {server_file.name} is missing (the server's public "
            f"certificate); copy it from the key directory made by tradeconsole keys generate"
        )
    server_public, _ = _read_certificate(server_file, secret=False)

    server_secret: bytes | None = None
    server_secret_file = directory / f"{SERVER_NAME}{SECRET_SUFFIX}"
    if server_secret_file.is_file():
        public, server_secret = _read_certificate(server_secret_file, secret=True)
        if public != server_public:
            raise UsageError(
                f"{server_secret_file} and {server_file.name} hold different keys; "
                f"regenerate with: tradeconsole keys generate {directory} --force"
            )

    client_public: bytes | None = None
    client_secret: bytes | None = None
    client_file = directory / f"{client}{SECRET_SUFFIX}"
    if client_file.is_file():
        client_public, client_secret = _read_certificate(client_file, secret=True)
    return Keys(directory, server_public, server_secret, client_public, client_secret, client)


def load_allow_list(authorized: Path) -> dict[bytes, str]:
    """Map each allowed z85 public key to its role (the directory it was found in)."""
    if not authorized.is_dir():
        raise UsageError(
            f"{authorized}: no allow-list directory; it should hold "
            f"{', '.join(f'{r}/' for r in ROLES)} with the clients' public .key files"
        )
    roles: dict[bytes, str] = {}
    for entry in sorted(authorized.iterdir()):
        if entry.is_dir() and entry.name not in ROLES:
            log.warning("ignoring %s: roles are %s", entry, ", ".join(ROLES))
    for role in ROLES:  # least privileged first: a duplicate keeps the first role
        role_dir = authorized / role
        if not role_dir.is_dir():
            continue
        for cert in sorted(role_dir.glob(f"*{PUBLIC_SUFFIX}")):
            public, _ = _read_certificate(cert, secret=False)
            if public in roles:
                log.warning("%s is also listed as %s; it keeps role %s", cert, roles[public],
                            roles[public])
                continue
            roles[public] = role
    if not roles:
        log.warning("allow-list %s is empty: every client will be refused", authorized)
    return roles


# --- ZAP ----------------------------------------------------------------------


def _domain_for(roles: Collection[str] | None) -> str:
    """Encode which roles a socket admits in its ZAP domain (stateless for the handler)."""
    if roles is None:
        return ZAP_DOMAIN
    return f"{ZAP_DOMAIN}:{','.join(sorted(roles))}"


def _roles_of_domain(domain: str) -> frozenset[str] | None:
    """None = every role; an empty set = a domain that is not ours (refuse)."""
    if domain == ZAP_DOMAIN:
        return None
    prefix = f"{ZAP_DOMAIN}:"
    if domain.startswith(prefix):
        return frozenset(domain[len(prefix):].split(","))
    return frozenset()


class RoleAuthenticator(Authenticator):
    """ZAP handler: CURVE only, allow-listed keys only, User-Id = role.

    Runs in its own daemon thread. Its sockets are not registered with the
    context, so `ctx.destroy()` leaves them to the thread, and `ctx.term()`
    wakes the thread (ETERM), which closes them and exits: shutting a service
    down never hangs on the authenticator, though `stop_auth` is cleaner.
    """

    def __init__(self, context: zmq.Context, keys: Keys) -> None:
        super().__init__(context=context, log=log)
        self.keys = keys
        self.roles = load_allow_list(keys.authorized_dir)
        self._failures = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._new_monitors: queue.SimpleQueue[zmq.Socket] = queue.SimpleQueue()
        self._monitor_ids = count()
        self._last_logged: dict[str, tuple[float, int]] = {}
        self.thread: threading.Thread | None = None

    # lifecycle

    def start(self) -> None:
        zap = zmq.Socket(self.context, zmq.REP)
        zap.linger = 0
        try:
            zap.bind(ZAP_ENDPOINT)
        except zmq.ZMQError as exc:
            zap.close()
            raise RuntimeError(f"this context already has a ZAP handler: {exc}") from exc
        self.zap_socket = zap
        self.thread = threading.Thread(target=self._run, name="tradeconsole-zap", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self.thread is not None and self.thread is not threading.current_thread():
            self.thread.join(timeout=5)

    def is_alive(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    @property
    def failures(self) -> int:
        with self._lock:
            return self._failures

    def reload(self) -> None:
        """Re-read the allow-list (after adding or revoking a client key)."""
        self.roles = load_allow_list(self.keys.authorized_dir)

    def watch(self, sock: zmq.Socket) -> None:
        """Count and log handshakes on `sock` that fail before ZAP is asked.

        libzmq allows one monitor per socket: a monitor attached later
        replaces this one (nothing breaks, those failures just stop counting).
        """
        address = f"inproc://tradeconsole.handshakes.{id(self)}.{next(self._monitor_ids)}"
        sock.monitor(address, _WATCHED_EVENTS)
        mon = zmq.Socket(self.context, zmq.PAIR)
        mon.linger = 0
        mon.connect(address)
        self._new_monitors.put(mon)

    # the thread

    def _run(self) -> None:
        poller = zmq.Poller()
        poller.register(self.zap_socket, zmq.POLLIN)
        monitors: set[zmq.Socket] = set()
        try:
            while not self._stopping.is_set():
                while not self._new_monitors.empty():
                    mon = self._new_monitors.get_nowait()
                    monitors.add(mon)
                    poller.register(mon, zmq.POLLIN)
                events = dict(poller.poll(_POLL_MS))
                if self.zap_socket in events:
                    self._answer_zap(self.zap_socket.recv_multipart())
                for mon in [m for m in monitors if m in events]:
                    if not self._watch_event(mon):
                        poller.unregister(mon)
                        mon.close()
                        monitors.discard(mon)
        except zmq.ZMQError as exc:  # ETERM: the context is going away
            if exc.errno != zmq.ETERM:
                log.debug("ZAP handler stopped: %s", exc)
        finally:
            for mon in monitors:
                mon.close(linger=0)
            while not self._new_monitors.empty():
                self._new_monitors.get_nowait().close(linger=0)
            self.zap_socket.close(linger=0)

    def _answer_zap(self, frames: list[bytes]) -> None:
        """Every ZAP request gets a reply, even if handling it fails (else libzmq waits)."""
        try:
            self._handle_zap(frames)
        except Exception:
            log.exception("ZAP request could not be handled; refusing it")
            if len(frames) >= 2:
                with contextlib.suppress(zmq.ZMQError):  # unless it was already sent
                    self._send_zap_reply(frames[1], b"500", b"Internal error")

    def _watch_event(self, mon: zmq.Socket) -> bool:
        try:
            return self._handle_monitor(mon)
        except (ValueError, KeyError, IndexError):
            log.exception("unreadable socket monitor event")
            return True

    def _handle_monitor(self, mon: zmq.Socket) -> bool:
        """Count one failed handshake; False once the watched socket has closed."""
        event = parse_monitor_message(mon.recv_multipart())
        if event["event"] == zmq.EVENT_MONITOR_STOPPED:
            return False
        value = int(event["value"])
        where = event["endpoint"].decode(errors="replace")
        if event["event"] == zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL and value in _PEER_LEFT:
            log.debug("a peer left %s during the handshake (%s)", where, os.strerror(value))
            return True
        if event["event"] == zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL:
            reason = _PROTOCOL_REASONS.get(value, f"protocol error 0x{value:08x}")
        else:
            reason = f"handshake failed ({os.strerror(value) if value else 'no detail'})"
        self._refused(f"{where}:{reason}", "refused a connection on %s: %s", where, reason)
        return True

    def _handle_zap(self, frames: list[bytes]) -> None:
        if len(frames) < 6:
            log.error("malformed ZAP request (%d frames)", len(frames))
            if len(frames) >= 2:
                self._send_zap_reply(frames[1], b"400", b"Not enough frames")
            return
        version, request_id, domain_b, address_b, _identity, mechanism = frames[:6]
        credentials = frames[6:]
        if version != ZAP_VERSION:
            self._send_zap_reply(request_id, b"400", b"Invalid version")
            return
        domain = domain_b.decode("utf-8", "replace")
        address = address_b.decode("utf-8", "replace")
        if mechanism != b"CURVE" or len(credentials) != 1:
            mech = mechanism.decode("ascii", "replace")
            self._refused(f"{address}:{mech}", "refused a %s client from %s: CURVE is required",
                          mech, address)
            self._send_zap_reply(request_id, b"400", b"CURVE required")
            return
        if len(credentials[0]) != 32:
            log.error("malformed ZAP request: a CURVE key of %d bytes", len(credentials[0]))
            self._send_zap_reply(request_id, b"400", b"Invalid credentials")
            return
        public = z85.encode(credentials[0])
        role = self.roles.get(public)
        admitted = _roles_of_domain(domain)
        if role is None:
            self._refused(
                public.decode(), "refused CURVE client %s from %s: key not in the allow-list %s",
                public.decode(), address, self.keys.authorized_dir,
            )
            self._send_zap_reply(request_id, b"400", b"Unknown key")
        elif admitted is not None and role not in admitted:
            self._refused(
                f"{public.decode()}:{domain}",
                "refused CURVE client %s (%s) from %s: this socket admits only %s",
                public.decode(), role, address, ", ".join(sorted(admitted)) or "nobody",
            )
            self._send_zap_reply(request_id, b"400", b"Role not admitted")
        else:
            log.debug("admitted CURVE client %s as %s from %s", public.decode(), role, address)
            self._send_zap_reply(request_id, b"200", b"OK", role)

    def _refused(self, what: str, message: str, *args: object) -> None:
        """Count every refusal; log each source at most once a minute (reconnect storms)."""
        with self._lock:
            self._failures += 1
        now = time.monotonic()
        last, suppressed = self._last_logged.get(what, (-_LOG_EVERY_S, 0))
        if now - last < _LOG_EVERY_S:
            self._last_logged[what] = (last, suppressed + 1)
            return
        if len(self._last_logged) >= _THROTTLE_MAX_KEYS:
            self._last_logged.clear()
        self._last_logged[what] = (now, 0)
        if suppressed:
            message += f" ({suppressed} more since the last report)"
        log.warning(message, *args)


_AUTHENTICATORS: weakref.WeakKeyDictionary[zmq.Context, RoleAuthenticator] = (
    weakref.WeakKeyDictionary()
)
_REGISTRY_LOCK = threading.Lock()


def start_auth(ctx: zmq.Context, keys: Keys) -> RoleAuthenticator:
    """Start (once per context) the ZAP handler for `keys`' allow-list."""
    require_curve()
    with _REGISTRY_LOCK:
        auth = _AUTHENTICATORS.get(ctx)
        if auth is not None and auth.is_alive():
            if auth.keys.dir != keys.dir:
                raise RuntimeError(
                    f"this context already authenticates against {auth.keys.dir}, "
                    f"not {keys.dir}"
                )
            return auth
        auth = RoleAuthenticator(ctx, keys)
        auth.start()
        _AUTHENTICATORS[ctx] = auth
        return auth


def stop_auth(ctx: zmq.Context) -> None:
    """Stop the context's ZAP handler, if any (before closing the context)."""
    with _REGISTRY_LOCK:
        auth = _AUTHENTICATORS.pop(ctx, None)
    if auth is not None:
        auth.stop()


def auth_failures(ctx_or_auth: zmq.Context | RoleAuthenticator) -> int:
    """Refused handshakes so far (ZAP refusals plus pre-ZAP failures on watched sockets)."""
    if isinstance(ctx_or_auth, RoleAuthenticator):
        return ctx_or_auth.failures
    with _REGISTRY_LOCK:
        auth = _AUTHENTICATORS.get(ctx_or_auth)
    return auth.failures if auth is not None else 0


# --- sockets --------------------------------------------------------------------


def secure_server(
    sock: zmq.Socket, keys: Keys, *, roles: Iterable[str] | None = None
) -> None:
    """Make `sock` a CURVE server checked by the context's ZAP handler. Call before bind.

    `roles` narrows who may connect at all (e.g. only "publisher" keys on a
    proxy's XSUB); by default every allow-listed role may.
    """
    if keys.server_secret is None:
        raise UsageError(
            f"--keys {keys.dir}: {SERVER_NAME}{SECRET_SUFFIX} is missing; a service needs the "
            f"server's secret certificate (only clients can run without it)"
        )
    wanted = None if roles is None else frozenset(roles)
    if wanted is not None and not wanted <= set(ROLES):
        raise ValueError(f"unknown roles {sorted(wanted - set(ROLES))}; roles are {ROLES}")
    auth = start_auth(sock.context, keys)
    sock.curve_secretkey = keys.server_secret
    sock.curve_publickey = keys.server_public
    sock.curve_server = True
    sock.zap_domain = _domain_for(wanted).encode()
    # Without a ZAP handler libzmq would admit any key; with this it refuses.
    sock.setsockopt(zmq.ZAP_ENFORCE_DOMAIN, 1)
    auth.watch(sock)


def secure_client(sock: zmq.Socket, keys: Keys) -> None:
    """Give `sock` the client's key pair and the server's public key. Call before connect."""
    if keys.client_secret is None or keys.client_public is None:
        name = keys.client_name or ROLE_TRADER
        raise UsageError(
            f"--keys {keys.dir}: {name}{SECRET_SUFFIX} is missing; a client needs its own "
            f"secret certificate (see tradeconsole keys generate)"
        )
    sock.curve_secretkey = keys.client_secret
    sock.curve_publickey = keys.client_public
    sock.curve_serverkey = keys.server_public


# --- authorisation ---------------------------------------------------------------


def role_of_frame(frame: zmq.Frame) -> str | None:
    """The role ZAP gave the sender (receive with copy=False); None without CURVE."""
    try:
        user = frame.get("User-Id")
    except zmq.ZMQError:
        return None
    if isinstance(user, bytes):
        user = user.decode("utf-8", "replace")
    return user or None


def is_allowed(role: str | None, action: str) -> bool:
    """Traders may do anything; every other role may only read.

    None means the socket does not use CURVE (no `--keys`), where there is no
    identity to check and every action is allowed, as without security.
    """
    if role is None or role == ROLE_TRADER:
        return True
    return action in READ_ACTIONS
