"""Liveness options for every socket that crosses a network: ZMTP heartbeats and TCP keepalive.

A path that dies silently (a switch, VPN or firewall drops packets; no RST,
no FIN) leaves TCP connections open: a SUB socket then never reconnects and
waits for TCP's retransmission backoff, tens of seconds after the path is
back. ZMTP heartbeats close a connection whose peer has not been heard from
within `heartbeat_timeout_ms`; libzmq then reconnects on its own, and the
connect and handshake timeouts keep a reconnect attempt that goes nowhere
from hanging. Closing the dead connection also discards the publisher's
queue for it, so no stale backlog arrives after the path returns. TCP
keepalive is the second line for peers that do not speak ZMTP 3.1 heartbeats.

Every value is in `[network]` of the config; 0 turns a mechanism off.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # config.py imports this module: `--help` must not load zmq
    import zmq


@dataclass(frozen=True)
class NetworkOptions:
    """What `apply_network` sets on a socket (defaults are the documented ones)."""

    heartbeat_interval_ms: int = 1000
    heartbeat_timeout_ms: int = 3000
    connect_timeout_ms: int = 1000
    handshake_timeout_ms: int = 2000
    tcp_keepalive_idle_s: int = 10
    tcp_keepalive_interval_s: int = 2
    tcp_keepalive_count: int = 3

    def problems(self) -> list[str]:
        """Why these values cannot work together (empty when they can)."""
        found = [f"{name} must be >= 0, not {value}"
                 for name, value in vars(self).items() if value < 0]
        if self.heartbeat_interval_ms and self.heartbeat_timeout_ms < self.heartbeat_interval_ms:
            found.append(
                f"heartbeat_timeout_ms ({self.heartbeat_timeout_ms}) must be at least "
                f"heartbeat_interval_ms ({self.heartbeat_interval_ms})"
            )
        return found


DEFAULT_NETWORK = NetworkOptions()


def apply_network(sock: zmq.Socket, options: NetworkOptions = DEFAULT_NETWORK) -> None:
    """Set heartbeats, timeouts and keepalive; call before bind/connect."""
    import zmq

    if options.heartbeat_interval_ms:
        sock.setsockopt(zmq.HEARTBEAT_IVL, options.heartbeat_interval_ms)
        sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, options.heartbeat_timeout_ms)
        # TTL asks the peer to drop us if it hears nothing for this long: the
        # same budget, so both ends give up on a dead path at the same time.
        sock.setsockopt(zmq.HEARTBEAT_TTL, options.heartbeat_timeout_ms)
    if options.connect_timeout_ms:
        sock.setsockopt(zmq.CONNECT_TIMEOUT, options.connect_timeout_ms)
    sock.setsockopt(zmq.HANDSHAKE_IVL, options.handshake_timeout_ms)
    if options.tcp_keepalive_idle_s:
        sock.setsockopt(zmq.TCP_KEEPALIVE, 1)
        sock.setsockopt(zmq.TCP_KEEPALIVE_IDLE, options.tcp_keepalive_idle_s)
        sock.setsockopt(zmq.TCP_KEEPALIVE_INTVL, options.tcp_keepalive_interval_s)
        sock.setsockopt(zmq.TCP_KEEPALIVE_CNT, options.tcp_keepalive_count)
