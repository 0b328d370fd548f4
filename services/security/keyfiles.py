"""CURVE key material: the certificate layout of a key directory, loaded and checked.

Every refusal names the file and the fix (a missing secret, a world-readable
one, a key that is not z85), so a bad deployment stops with one line.
"""

from __future__ import annotations

import logging
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

import zmq
import zmq.auth
from zmq.utils import z85

from services.runtime.errors import UsageError

log = logging.getLogger("tradeconsole.security")

MIN_LIBZMQ = (4, 3, 5)

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

