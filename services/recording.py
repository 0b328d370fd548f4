"""The recording file format: raw feed frames with their receive time (see docs/recording.md).

A recording is a plain MessagePack stream. The first object is a header map
`{"format": "tradeconsole-recording", "version": 1, "created_ns": ...}`; every
later array is one frame `[recv_ts_ns, topic_bytes, payload_bytes]`, exactly as
received. Opening an existing file for append first cuts off a partial record
left by a crash and then writes another header map, which marks a new session
(so replay does not wait out the pause between sessions). A crash therefore
loses at most the record being written, and the reader skips such a tail.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, NamedTuple

import msgpack

from services.runtime.errors import UsageError

FORMAT_NAME = "tradeconsole-recording"
FORMAT_VERSION = 1
# Frames bigger than this are not believable (sockets cap them far lower).
MAX_RECORD_BYTES = 64 * 1024 * 1024
_READ_SIZE = 1024 * 1024
_WRITE_BUFFER = 1024 * 1024
FLUSH_INTERVAL_S = 1.0


class Record(NamedTuple):
    """One recorded frame; `session` counts appends (0 for the first writer)."""

    recv_ts_ns: int
    topic: bytes
    payload: bytes
    session: int


def make_header() -> dict[str, Any]:
    return {"format": FORMAT_NAME, "version": FORMAT_VERSION, "created_ns": time.time_ns()}


def _unpacker(fh: BinaryIO) -> msgpack.Unpacker:
    return msgpack.Unpacker(
        fh, raw=False, read_size=_READ_SIZE, max_buffer_size=MAX_RECORD_BYTES + 1024,
        max_bin_len=MAX_RECORD_BYTES, max_str_len=MAX_RECORD_BYTES, strict_map_key=False,
    )


def _check_header(obj: Any, path: Path) -> dict[str, Any]:
    """Refuse anything that is not a recording header, with a one-line reason."""
    if not isinstance(obj, dict) or obj.get("format") != FORMAT_NAME:
        raise UsageError(f"{path} is not a tradeconsole recording (no recording header)")
    version = obj.get("version")
    if type(version) is not int or version < 1:
        raise UsageError(f"{path}: recording header has no valid version")
    if version > FORMAT_VERSION:
        raise UsageError(
            f"{path}: recording format version {version} is newer than this program "
            f"reads ({FORMAT_VERSION}); upgrade tradeconsole"
        )
    return obj


def _is_record(obj: Any) -> bool:
    return (
        type(obj) is list and len(obj) == 3 and type(obj[0]) is int
        and type(obj[1]) is bytes and type(obj[2]) is bytes
    )


def _open_for_reading(path: Path) -> BinaryIO:
    try:
        return path.open("rb")
    except FileNotFoundError as exc:
        raise UsageError(f"{path}: no such recording file") from exc
    except IsADirectoryError as exc:
        raise UsageError(f"{path} is a directory, not a recording file") from exc
    except OSError as exc:
        raise UsageError(f"{path}: cannot read recording ({exc.strerror})") from exc


class RecordingReader:
    """Iterate the frames of a recording; a truncated or corrupt tail ends it cleanly.

    The header is checked on construction (UsageError if the file is not a
    recording). After iterating, `records` counts good frames, `skipped` counts
    objects that are valid msgpack but not frames, and `truncated_bytes` is the
    size of an unreadable tail (0 when the file ended cleanly).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._fh = _open_for_reading(self.path)
        self.records = 0
        self.skipped = 0
        self.sessions = 1
        self.truncated_bytes = 0
        self._unpacker = _unpacker(self._fh)
        try:
            first = next(self._unpacker)
        except StopIteration:
            empty = os.fstat(self._fh.fileno()).st_size == 0
            self.close()
            what = "is empty" if empty else "has only a partial header"
            raise UsageError(f"{self.path} {what}, not a tradeconsole recording") from None
        except (ValueError, msgpack.UnpackException) as exc:
            self.close()
            raise UsageError(f"{self.path} is not a tradeconsole recording ({exc})") from exc
        try:
            self.header = _check_header(first, self.path)
        except UsageError:
            self.close()
            raise

    def __iter__(self) -> Iterator[Record]:
        unpacker = self._unpacker
        session = self.sessions - 1
        good_end = unpacker.tell()
        try:
            for obj in unpacker:
                if _is_record(obj):
                    self.records += 1
                    yield Record(obj[0], obj[1], obj[2], session)
                elif isinstance(obj, dict) and obj.get("format") == FORMAT_NAME:
                    self.sessions += 1
                    session += 1
                else:
                    self.skipped += 1
                good_end = unpacker.tell()
        except (ValueError, msgpack.UnpackException):
            pass  # corrupt bytes: treat everything from here as a damaged tail
        size = os.fstat(self._fh.fileno()).st_size
        self.truncated_bytes = max(0, size - good_end)

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> RecordingReader:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def read_recording(path: str | Path) -> Iterator[Record]:
    """All good frames of a recording, in order (the file is closed at the end)."""
    with RecordingReader(path) as reader:
        yield from reader


def _valid_length(path: Path, fh: BinaryIO) -> int:
    """Bytes of `fh` that hold whole objects; refuses a file that is not a recording."""
    unpacker = _unpacker(fh)
    try:
        first = next(unpacker)
    except (StopIteration, ValueError, msgpack.UnpackException):
        first = None
    _check_header(first, path)
    good_end = unpacker.tell()
    try:
        for _ in unpacker:
            good_end = unpacker.tell()
    except (ValueError, msgpack.UnpackException):
        pass
    return good_end


class RecordingWriter:
    """Append frames to a recording; buffered, flushed at least once a second.

    Cheap enough to call per frame from an ingest thread. Not thread-safe: use
    one writer from one thread. Opening an existing recording appends a new
    session after cutting off any partial record a crash left behind.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.frames = 0
        self.cut_bytes = 0
        try:
            self._fh: BinaryIO = self.path.open("a+b", buffering=_WRITE_BUFFER)
        except FileNotFoundError as exc:
            raise UsageError(f"{self.path}: directory does not exist") from exc
        except IsADirectoryError as exc:
            raise UsageError(f"{self.path} is a directory, not a recording file") from exc
        except OSError as exc:
            raise UsageError(f"{self.path}: cannot write recording ({exc.strerror})") from exc
        try:
            self._prepare_tail()
        except BaseException:
            self._fh.close()
            raise
        self._packer = msgpack.Packer(use_bin_type=True, datetime=False)
        self._fh.write(self._packer.pack(make_header()))
        self._last_flush = time.monotonic()

    def _prepare_tail(self) -> None:
        size = os.fstat(self._fh.fileno()).st_size
        if size == 0:
            return
        self._fh.seek(0)
        good_end = _valid_length(self.path, self._fh)
        if good_end < size:
            self._fh.truncate(good_end)
            self.cut_bytes = size - good_end
        self._fh.seek(0, os.SEEK_END)

    def write(self, recv_ts_ns: int, topic: bytes, payload: bytes) -> None:
        """Append one frame; flushes to the OS when the last flush is a second old."""
        self._fh.write(self._packer.pack([recv_ts_ns, topic, payload]))
        self.frames += 1
        if time.monotonic() - self._last_flush >= FLUSH_INTERVAL_S:
            self.flush()

    def flush_if_due(self) -> None:
        """Call from an idle loop so buffered frames reach the OS within a second."""
        if time.monotonic() - self._last_flush >= FLUSH_INTERVAL_S:
            self.flush()

    def flush(self) -> None:
        self._fh.flush()
        self._last_flush = time.monotonic()

    def close(self) -> None:
        if self._fh.closed:
            return
        try:
            self._fh.flush()
            os.fsync(self._fh.fileno())
        finally:
            self._fh.close()

    def __enter__(self) -> RecordingWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
