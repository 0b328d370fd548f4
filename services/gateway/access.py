"""CURVE roles for the gateway's sockets (only with --keys); without keys everyone may act."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import zmq


class Access:
    """May the sender of this frame do this action? Everyone may, without --keys."""

    def __init__(self, security: Any = None, auth: Any = None) -> None:
        self._security = security
        self._auth = auth

    def allowed(self, frame: zmq.Frame, action: str) -> bool:
        if self._security is None:
            return True
        return bool(self._security.is_allowed(self._security.role_of_frame(frame), action))

    def auth_failures(self) -> int | None:
        if self._security is None:
            return None
        return int(self._security.auth_failures(self._auth))

    def stop(self) -> None:
        if self._auth is not None:
            self._auth.stop()


def secure_sockets(ctx: zmq.Context, keys_dir: str | None, *, servers: Sequence[zmq.Socket],
                   clients: Sequence[zmq.Socket]) -> Access:
    """With --keys: ZAP authenticator, CURVE on every socket (before bind/connect)."""
    if not keys_dir:
        return Access()
    from services import security  # lazy: only deployments with keys need it

    keys = security.load_keys(keys_dir)
    auth = security.start_auth(ctx, keys)
    for sock in servers:
        security.secure_server(sock, keys)
    if keys.client_secret is not None:  # the feed may be a CURVE publisher too
        for sock in clients:
            security.secure_client(sock, keys)
    return Access(security, auth)
