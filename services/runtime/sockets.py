"""Socket set-up shared by every service: limits, binding with clear errors, ready lines.

A service bound to `tcp://127.0.0.1:*` gets a free port from the kernel; it
then prints one READY line on stdout naming the endpoints it really bound, so
that `demo`, the tests and the benchmarks never race for free ports.
"""

from __future__ import annotations

import errno
import json
import sys
from typing import Any

import zmq

from services.protocol import Limits
from services.runtime.errors import UsageError

READY_PREFIX = "TRADECONSOLE-READY "
# ZMQ_EVENTS and POLLIN as plain ints: `int & zmq.POLLIN` builds an enum member on
# every call, and the receive loops and the frame pace ask on every turn.
EVENTS, POLLIN = int(zmq.EVENTS), int(zmq.POLLIN)


def message_waiting(sock: zmq.Socket) -> bool:
    """Whether a receive would get a message now (cheaper than the zmq.Again of a
    receive that finds none; ZMQError if the socket is closed)."""
    return bool(sock.get(EVENTS) & POLLIN)


def apply_limits(sock: zmq.Socket, limits: Limits) -> None:
    """Cap inbound frames so a hostile peer cannot make us allocate more."""
    sock.setsockopt(zmq.MAXMSGSIZE, limits.max_msg_size)


def bind(sock: zmq.Socket, endpoint: str, *, what: str) -> str:
    """Bind or raise UsageError naming the endpoint; return the endpoint really bound."""
    try:
        sock.bind(endpoint)
    except zmq.ZMQError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise UsageError(
                f"{what} endpoint {endpoint} is already in use; stop the other process or "
                f"choose another port (e.g. tcp://127.0.0.1:* for a free one)"
            ) from exc
        raise UsageError(
            f"{what} endpoint {endpoint} cannot be bound: {exc.strerror}; "
            f"expected e.g. tcp://127.0.0.1:5556 or ipc:///tmp/name"
        ) from exc
    return sock.getsockopt_string(zmq.LAST_ENDPOINT)


def connect(sock: zmq.Socket, endpoint: str, *, what: str) -> None:
    try:
        sock.connect(endpoint)
    except zmq.ZMQError as exc:
        raise UsageError(
            f"{what} endpoint {endpoint} is not valid: {exc.strerror}; "
            f"expected e.g. tcp://127.0.0.1:5556"
        ) from exc


def announce_ready(**endpoints: Any) -> None:
    """Tell a parent process (demo, tests) which endpoints are live."""
    sys.stdout.write(READY_PREFIX + json.dumps(endpoints) + "\n")
    sys.stdout.flush()
