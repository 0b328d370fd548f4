"""The optional recording of every well-formed frame ingest receives.

The writer (services.recording.RecordingWriter) is swapped under the ingest
lock, and frames are written with that lock held, inside the receive batch;
a write error stops the recording, never ingest.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

# Part of ingest: its log lines keep the ingest logger name.
log = logging.getLogger("console.feed.ingest")


class RecordingTap:
    """The writer in use (or None) and its file; guarded by the lock it is given."""

    def __init__(self, lock: threading.Lock) -> None:
        self._lock = lock
        self.writer: Any = None
        self.path: Path | None = None

    def start(self, path: str | Path) -> None:
        """Record from now on (replaces a running recording); OSError reaches the caller."""
        from services.recording import RecordingWriter  # written alongside; lazy

        writer = RecordingWriter(Path(path))
        with self._lock:
            previous, self.writer = self.writer, writer
            self.path = Path(path)
        if previous is not None:
            _close_writer(previous)

    def stop(self) -> None:
        with self._lock:
            writer, self.writer = self.writer, None
            self.path = None
        if writer is not None:
            _close_writer(writer)

    def write(self, writer: Any, topic: bytes, payload: bytes) -> Any:
        """Write one frame (lock held); the writer to go on with, None once it failed."""
        try:
            writer.write(time.time_ns(), topic, payload)
        except (OSError, ValueError) as exc:
            log.error("recording to %s stopped: %s", self.path, exc)
            self.writer = None
            self.path = None
            _close_writer(writer)
            return None
        return writer

    def flush_if_due(self) -> None:
        """Idle moments push buffered recorded frames to the OS (within a second)."""
        with self._lock:
            writer = self.writer
            if writer is None:
                return
            try:
                writer.flush_if_due()
            except (OSError, ValueError) as exc:
                log.error("recording to %s stopped: %s", self.path, exc)
                self.writer = None
                self.path = None


def _close_writer(writer: Any) -> None:
    close = getattr(writer, "close", None)
    if close is not None:
        try:
            close()
        except OSError as exc:
            log.warning("closing the recording failed: %s", exc)
