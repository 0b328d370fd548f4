"""Pre-packed tick frames with a real envelope, cheap enough to send at full speed.

Every benchmark frame is a vnpy-shaped tick from the project's simulated
market, packed once per symbol and variant; only the envelope differs from
frame to frame. The envelope's integers are written as fixed-width msgpack
uint64 (valid msgpack, just not the shortest form), so a frame is one
`bytes` concatenation of a packed prefix and a `struct` of four numbers.
Frame `n` (1-based) goes to symbol `(n - 1) % symbols`, so `seq` is `n` and
`tseq` is `(n - 1) // symbols + 1`: gaps can be computed exactly by anyone.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Iterator
from typing import Any

from services.market import Market
from services.protocol import packb

# Different price snapshots packed per symbol, so rows keep changing on screen.
VARIANTS = 4
DEFAULT_NODE = "bench-feeder"
# msgpack map headers: fixmap up to 15 entries, map16 beyond.
_FIXMAP = 0x80
_MAP16 = 0xDE
_UINT64 = b"\xcf"


def _map_body(packed: bytes) -> tuple[int, bytes]:
    """Split a packed map into (entry count, packed entries without the header)."""
    first = packed[0]
    if _FIXMAP <= first <= _FIXMAP + 15:
        return first - _FIXMAP, packed[1:]
    if first == _MAP16:
        return struct.unpack(">H", packed[1:3])[0], packed[3:]
    raise ValueError("not a msgpack map of fewer than 65536 entries")


def _map_header(count: int) -> bytes:
    return bytes([_FIXMAP + count]) if count <= 15 else b"\xde" + struct.pack(">H", count)


class FrameFactory:
    """Builds `[topic, payload]` frames for `symbols` simulated symbols.

    The epoch is fixed at construction; `payload(n, ts_ns)` is the frame with
    `seq = n`. Ticks come from `services.market.Market` (seeded), so they
    look like what the project's publisher sends.
    """

    def __init__(self, symbols: int, *, node: str = DEFAULT_NODE, seed: int = 1,
                 epoch: int | None = None, variants: int = VARIANTS) -> None:
        if symbols < 1:
            raise ValueError("symbols must be at least 1")
        self.symbols = symbols
        self.node = node
        self.epoch = epoch if epoch is not None else time.time_ns()
        market = Market(symbols, seed)
        self.topics: list[bytes] = [vt.encode() for vt in market.vt_symbols]
        self.ticks: list[list[dict[str, Any]]] = [[] for _ in range(symbols)]
        index_of = {vt: i for i, vt in enumerate(market.vt_symbols)}
        # Round-robin the market until every symbol has its variants.
        missing = symbols * variants
        while missing:
            vt, tick = market.next_tick()
            bucket = self.ticks[index_of[vt]]
            if len(bucket) < variants:
                bucket.append(tick)
                missing -= 1
        self.variants = variants
        self._prefixes: list[list[bytes]] = [
            [self._prefix(tick) for tick in bucket] for bucket in self.ticks
        ]
        self._tail = struct.Struct(
            ">Q" + f"{len(packb('tseq')) + 1}s" + "Q" + f"{len(packb('ts_ns')) + 1}s" + "Q"
        )
        self._tseq_key = packb("tseq") + _UINT64
        self._ts_key = packb("ts_ns") + _UINT64

    def _prefix(self, tick: dict[str, Any]) -> bytes:
        """Header, tick fields, pub and epoch, then the `seq` key: the tail follows."""
        count, body = _map_body(packb(tick))
        return b"".join((
            _map_header(count + 5), body,
            packb("pub"), packb(self.node),
            packb("epoch"), _UINT64, struct.pack(">Q", self.epoch),
            packb("seq"), _UINT64,
        ))

    def topic(self, n: int) -> bytes:
        return self.topics[(n - 1) % self.symbols]

    def payload(self, n: int, ts_ns: int) -> bytes:
        """The packed tick with `seq = n` stamped `ts_ns` (publisher clock at send)."""
        round_, index = divmod(n - 1, self.symbols)
        prefix = self._prefixes[index][round_ % self.variants]
        return prefix + self._tail.pack(n, self._tseq_key, round_ + 1, self._ts_key, ts_ns)

    def prebuild(self, count: int, ts_ns: int | None = None) -> tuple[list[bytes], list[bytes]]:
        """Topics and payloads of frames 1..count, built before any timing starts."""
        stamp = time.time_ns() if ts_ns is None else ts_ns
        topics = self.topics
        symbols = self.symbols
        payload = self.payload
        return ([topics[(n - 1) % symbols] for n in range(1, count + 1)],
                [payload(n, stamp) for n in range(1, count + 1)])

    def tick_dicts(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """Endless (vt_symbol, tick dict) pairs without envelope, round-robin."""
        while True:
            for variant in range(self.variants):
                for index in range(self.symbols):
                    tick = self.ticks[index][variant]
                    yield tick["vt_symbol"], tick
