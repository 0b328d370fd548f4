"""A TCP relay the tests control: it can black-hole a path without closing anything.

A switch, VPN or firewall that loses the path drops packets silently: no RST,
no FIN, so neither end's TCP connection closes. The relay models that without
root: while `partitioned`, it stops moving bytes in both directions (connections
stay open, data waits in the kernel buffers as it would in retransmission
queues) and new connections are accepted but go nowhere. When the path comes
back, new connections pass at once, but connections that lived through the
partition (or were opened during it, like a connect whose SYNs were lost) move
again only after `backoff_s` — TCP's retransmission backoff,
which after a 30 s outage is tens of seconds. A client that relies on TCP alone
recovers after that backoff; one with ZMTP heartbeats has dropped the dead
connection and reconnects as soon as the path is back.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from dataclasses import dataclass, field

CHUNK = 65536


@dataclass
class _Pair:
    client: socket.socket
    upstream: socket.socket | None
    # Monotonic time before which this pair must not move bytes.
    held_until: float = 0.0
    pending: dict[int, bytes] = field(default_factory=dict)


class PartitionRelay:
    """Listens on 127.0.0.1:<free port> and forwards to `target` (host, port)."""

    def __init__(self, target: tuple[str, int], *, backoff_s: float = 30.0) -> None:
        self.target = target
        self.backoff_s = backoff_s
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.setblocking(False)
        self.port = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._partitioned = False
        self._partition_ended_at = 0.0
        self._pairs: list[_Pair] = []
        self.accepted = 0  # connections accepted so far (reconnects show here)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="partition-relay", daemon=True)
        self._thread.start()

    @property
    def endpoint(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    def partition(self) -> None:
        """Lose the path: nothing moves, nothing closes."""
        with self._lock:
            self._partitioned = True
            for pair in self._pairs:
                pair.held_until = float("inf")

    def heal(self) -> None:
        """The path is back: new connections pass now, old ones after the backoff."""
        with self._lock:
            self._partitioned = False
            resume = time.monotonic() + self.backoff_s
            for pair in self._pairs:
                pair.held_until = resume

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5.0)
        with self._lock:
            for pair in self._pairs:
                self._close_pair(pair)
            self._pairs.clear()
        self._listener.close()

    # --- the relay thread ----------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            self._accept()
            moved = False
            with self._lock:
                now = time.monotonic()
                for pair in list(self._pairs):
                    if pair.held_until > now:
                        continue
                    if pair.upstream is None and not self._connect(pair):
                        continue
                    moved |= self._pump(pair)
            if not moved:
                self._stop.wait(0.002)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            client.setblocking(False)
            with self._lock:
                self.accepted += 1
                pair = _Pair(client, None)
                if self._partitioned:
                    pair.held_until = float("inf")
                self._pairs.append(pair)

    def _connect(self, pair: _Pair) -> bool:
        try:
            upstream = socket.create_connection(self.target, timeout=1.0)
        except OSError:
            self._drop(pair)
            return False
        upstream.setblocking(False)
        pair.upstream = upstream
        return True

    def _pump(self, pair: _Pair) -> bool:
        assert pair.upstream is not None
        moved = False
        for src, dst in ((pair.client, pair.upstream), (pair.upstream, pair.client)):
            key = src.fileno()
            data = pair.pending.pop(key, b"")
            if not data:
                try:
                    data = src.recv(CHUNK)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    self._drop(pair)
                    return moved
                if not data:  # EOF: the peer closed; close the other side too
                    self._drop(pair)
                    return moved
            try:
                sent = dst.send(data)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError:
                self._drop(pair)
                return moved
            if sent < len(data):
                pair.pending[key] = data[sent:]
            moved = moved or sent > 0
        return moved

    def _drop(self, pair: _Pair) -> None:
        self._close_pair(pair)
        with contextlib.suppress(ValueError):
            self._pairs.remove(pair)

    @staticmethod
    def _close_pair(pair: _Pair) -> None:
        for sock in (pair.client, pair.upstream):
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.close()

