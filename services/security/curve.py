"""CURVE on a socket (server or client side) and who may do what once connected."""

from __future__ import annotations

from collections.abc import Iterable

import zmq

from services.protocol import READ_ACTIONS
from services.runtime.errors import UsageError
from services.security.keyfiles import ROLE_TRADER, ROLES, SECRET_SUFFIX, SERVER_NAME, Keys
from services.security.zap import domain_for, start_auth


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
    sock.zap_domain = domain_for(wanted).encode()
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
