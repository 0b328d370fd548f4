"""The envelope every project publisher adds: pub, epoch, seq, tseq, ts_ns.

One Envelope per PUB socket, used only by the thread that sends on it, so
`seq` is contiguous over everything that socket sends (all topics) and `tseq`
over each topic.
"""

from __future__ import annotations

import time
from typing import Any


class Envelope:
    """Stamps the envelope at send time; a new instance means a new epoch."""

    __slots__ = ("_tseq", "epoch", "node", "seq")

    def __init__(self, node: str, epoch: int | None = None) -> None:
        self.node = node
        # Wall-clock ns at start: distinct across restarts, increasing in practice.
        self.epoch = epoch if epoch is not None else time.time_ns()
        self.seq = 0
        self._tseq: dict[str, int] = {}

    def stamp(self, topic: str, payload: dict[str, Any]) -> dict[str, Any]:
        self.seq += 1
        tseq = self._tseq.get(topic, 0) + 1
        self._tseq[topic] = tseq
        payload["pub"] = self.node
        payload["epoch"] = self.epoch
        payload["seq"] = self.seq
        payload["tseq"] = tseq
        payload["ts_ns"] = time.time_ns()
        return payload
