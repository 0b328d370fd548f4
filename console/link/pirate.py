"""Lazy Pirate: one REQ socket, a timeout per attempt, the same request on every retry.

The ZeroMQ Guide's pattern: send on a REQ socket, poll for the reply up to a
timeout; on timeout the socket is closed (LINGER 0, so nothing stale is
delivered later), reopened, and **the same request with the same req_id** is
sent again, up to `attempts` times. The gateway answers a repeated
(client_id, req_id) from its reply cache without acting twice, so a retry is
always safe, even for KILL_SWITCH. `request_once` is the same without a
thread, for the scripting commands.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import zmq

from console.link.replies import NO_REPLY, to_reply, undelivered
from console.model import Reply
from services.protocol import (
    DEFAULT_LIMITS,
    DecodeError,
    Limits,
    decode_reply,
    encode_request,
    make_request,
)
from services.runtime.network import DEFAULT_NETWORK, NetworkOptions, apply_network
from services.runtime.sockets import apply_limits, connect

# The gateway link logs under one name, whichever of its modules speaks.
log = logging.getLogger("console.link.client")

# Longest single wait, so a stop is noticed quickly even mid-request.
SLICE_MS = 50


class LazyPirate:
    """One REQ socket with Lazy Pirate retries; used by one thread at a time."""

    def __init__(
        self,
        context: zmq.Context,
        endpoint: str,
        *,
        timeout_ms: int,
        limits: Limits = DEFAULT_LIMITS,
        keys: Any = None,
        network: NetworkOptions = DEFAULT_NETWORK,
    ) -> None:
        self.context = context
        self.network = network
        self.endpoint = endpoint
        self.timeout_ms = timeout_ms
        self.limits = limits
        self.keys = keys
        self._sock: zmq.Socket | None = None

    def open(self) -> None:
        """(Re)open the REQ socket; a bad endpoint raises UsageError."""
        self.close()
        sock = self.context.socket(zmq.REQ)
        try:
            sock.setsockopt(zmq.LINGER, 0)
            apply_limits(sock, self.limits)
            apply_network(sock, self.network)
            if self.keys is not None:
                from services import security

                security.secure_client(sock, self.keys)
            connect(sock, self.endpoint, what="gateway")
        except BaseException:
            sock.close(linger=0)
            raise
        self._sock = sock

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close(linger=0)
            self._sock = None

    def exchange(
        self,
        request: dict[str, Any],
        attempts: int,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> tuple[dict[str, Any] | None, float | None, int]:
        """Send `request` until a matching reply comes; (reply, rtt_ms, attempts used).

        reply is None when every attempt timed out (or `should_stop` said so).
        A reply for another req_id, or one that does not decode, is discarded
        and counts as a failed attempt (REQ cannot wait for a second reply).
        """
        frame = encode_request(request)
        req_id = request["req_id"]
        used = 0
        for _ in range(max(1, attempts)):
            if should_stop():
                break
            used += 1
            if self._sock is None:
                self.open()
            sock = self._sock
            assert sock is not None
            started = time.perf_counter_ns()
            deadline = started + self.timeout_ms * 1_000_000
            try:
                sock.send(frame, zmq.NOBLOCK)
            except zmq.Again:
                self.close()
                continue
            while not should_stop():
                remaining_ms = (deadline - time.perf_counter_ns()) / 1e6
                if remaining_ms <= 0:
                    break
                if not sock.poll(max(1, int(min(remaining_ms, SLICE_MS))), zmq.POLLIN):
                    continue
                data = sock.recv()
                rtt_ms = (time.perf_counter_ns() - started) / 1e6
                try:
                    reply = decode_reply(data, self.limits)
                except DecodeError as exc:
                    log.warning("gateway %s: undecodable reply discarded (%s)",
                                self.endpoint, exc.reason)
                    break
                if reply.get("req_id") != req_id:
                    log.warning("gateway %s: reply for req_id %r discarded (waiting for %s)",
                                self.endpoint, reply.get("req_id"), req_id)
                    break
                return reply, rtt_ms, used
            # No usable reply: drop the socket so a late reply can never be read.
            self.close()
        return None, None, used


def load_keys(keys_dir: str | Path | None) -> Any:
    """The CURVE client keys in `keys_dir`, or None for a plain socket."""
    if keys_dir is None:
        return None
    from services import security  # optional: only with --keys

    return security.load_keys(keys_dir)


def request_once(
    endpoint: str,
    action: str,
    payload: dict[str, Any] | None = None,
    *,
    client_id: str,
    timeout_ms: int = 1000,
    retries: int = 3,
    keys_dir: str | Path | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> Reply:
    """Send one request synchronously with Lazy Pirate retries (for scripts).

    Returns the Reply; `delivered` is False when no attempt got an answer.
    A bad endpoint raises services.runtime.errors.UsageError.
    """
    context = zmq.Context()
    pirate = LazyPirate(context, endpoint, timeout_ms=timeout_ms, limits=limits,
                        keys=load_keys(keys_dir))
    try:
        request = make_request(action, payload, client_id=client_id)
        reply, rtt_ms, used = pirate.exchange(request, retries)
    finally:
        pirate.close()
        context.term()
    if reply is None:
        return undelivered(action, request["req_id"], NO_REPLY,
                           f"no reply from {endpoint} after {used} attempt(s)")
    return to_reply(action, request["req_id"], reply, rtt_ms)
