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

The package is split by job: `keyfiles` (loading and checking keys),
`zap` (the handler and its registry) and `curve` (securing sockets,
authorising by role); every name is re-exported here.
"""

from __future__ import annotations

from services.security.curve import is_allowed, role_of_frame, secure_client, secure_server
from services.security.keyfiles import (
    AUTHORIZED_DIR,
    CLIENT_NAME,
    MIN_LIBZMQ,
    PUBLIC_SUFFIX,
    ROLE_MONITOR,
    ROLE_PUBLISHER,
    ROLE_TRADER,
    ROLES,
    SECRET_SUFFIX,
    SERVER_NAME,
    Keys,
    load_allow_list,
    load_keys,
    require_curve,
)
from services.security.zap import (
    ZAP_DOMAIN,
    ZAP_ENDPOINT,
    ZAP_VERSION,
    RoleAuthenticator,
    auth_failures,
    start_auth,
    stop_auth,
)

__all__ = [
    "AUTHORIZED_DIR",
    "CLIENT_NAME",
    "MIN_LIBZMQ",
    "PUBLIC_SUFFIX",
    "ROLES",
    "ROLE_MONITOR",
    "ROLE_PUBLISHER",
    "ROLE_TRADER",
    "SECRET_SUFFIX",
    "SERVER_NAME",
    "ZAP_DOMAIN",
    "ZAP_ENDPOINT",
    "ZAP_VERSION",
    "Keys",
    "RoleAuthenticator",
    "auth_failures",
    "is_allowed",
    "load_allow_list",
    "load_keys",
    "require_curve",
    "role_of_frame",
    "secure_client",
    "secure_server",
    "start_auth",
    "stop_auth",
]
