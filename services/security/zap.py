"""The ZAP handler: one per ZeroMQ context, admitting allow-listed CURVE keys only.

It reports the key's role as the connection's User-Id, and counts (and
logs, throttled) every refused handshake, including those a socket monitor
sees before ZAP is ever asked.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import queue
import threading
import time
import weakref
from collections.abc import Collection
from itertools import count

import zmq
from zmq.auth.base import Authenticator
from zmq.utils import z85
from zmq.utils.monitor import parse_monitor_message

from services.security.keyfiles import Keys, load_allow_list, require_curve

log = logging.getLogger("tradeconsole.security")

ZAP_DOMAIN = "tradeconsole"
ZAP_ENDPOINT = "inproc://zeromq.zap.01"
ZAP_VERSION = b"1.0"

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


def domain_for(roles: Collection[str] | None) -> str:
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
