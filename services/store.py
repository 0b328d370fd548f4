"""The gateway's durable state: `state.json` (atomic snapshot) and `audit.jsonl` (append-only).

Both survive a kill -9 at any moment whole:
- `state.json` is replaced atomically (write a temp file, flush, fsync,
  rename over the old one, fsync the directory), so a reader sees the old or
  the new state, never a mix;
- `audit.jsonl` gets whole lines appended with one write and an fsync before
  the gateway replies. A crash in the middle of that write can leave a torn
  last line: readers skip lines that are not valid JSON, and reopening the
  file first ends such a line so later records start on a fresh line.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from services.runtime.errors import UsageError

STATE_FILE = "state.json"
AUDIT_FILE = "audit.jsonl"


class PersistenceError(RuntimeError):
    """The disk refused a write: the gateway must not report the change as done."""


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _dumps(obj: Any) -> str:
    # allow_nan=False: NaN/inf are refused at the protocol edge and must never be stored.
    return json.dumps(obj, separators=(",", ":"), allow_nan=False, sort_keys=True)


class Store:
    """Opens (creating) the state directory; raises UsageError when it is unusable."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory).expanduser()
        self.state_path = self.directory / STATE_FILE
        self.audit_path = self.directory / AUDIT_FILE
        self._order_text: dict[tuple[Any, ...], str] = {}  # see _state_text
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            probe = self.directory / ".write-probe"
            probe.write_bytes(b"")
            probe.unlink()
            self._audit_fd = os.open(self.audit_path,
                                     os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        except OSError as exc:
            raise UsageError(
                f"--state-dir {self.directory} is not a writable directory "
                f"({exc.strerror or exc}); choose another with --state-dir DIR"
            ) from exc
        self._end_torn_line()

    def _end_torn_line(self) -> None:
        """After a crash mid-append, start the next record on its own line."""
        size = os.fstat(self._audit_fd).st_size
        if size == 0:
            return
        with self.audit_path.open("rb") as fh:
            fh.seek(size - 1)
            if fh.read(1) != b"\n":
                os.write(self._audit_fd, b"\n")
                os.fsync(self._audit_fd)

    def load_state(self) -> dict[str, Any] | None:
        """The saved state, None when there is none yet; UsageError if it is unreadable."""
        try:
            text = self.state_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise UsageError(f"{self.state_path}: cannot read ({exc.strerror})") from exc
        try:
            state = json.loads(text)
        except ValueError as exc:
            raise UsageError(
                f"{self.state_path}: not valid JSON ({exc}); move it away to start fresh"
            ) from exc
        if not isinstance(state, dict):
            raise UsageError(f"{self.state_path}: expected a JSON object")
        return state

    def save_state(self, state: dict[str, Any]) -> None:
        tmp = self.state_path.with_suffix(".json.tmp")
        try:
            text = self._state_text(state)
            with tmp.open("w", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.state_path)
            _fsync_dir(self.directory)
        except (OSError, ValueError) as exc:
            raise PersistenceError(f"cannot save {self.state_path}: {exc}") from exc

    def _state_text(self, state: dict[str, Any]) -> str:
        """The state as JSON; an order row's text is reused while the row is unchanged.

        Resting orders are most of the state under an order flood and never
        change while they rest. Dumping each of them again on every commit made
        every turn of the gateway loop (and so the wait of a KILL_SWITCH) grow
        with the number of working orders. A row is known by (order_id,
        updated_ns, status): the broker moves updated_ns or status on every
        change to an order.
        """
        orders = state.get("orders")
        rest = {key: value for key, value in state.items() if key != "orders"}
        if not isinstance(orders, list) or not rest:
            return _dumps(state)
        cached = self._order_text
        fresh: dict[tuple[Any, ...], str] = {}
        parts: list[str] = []
        try:
            for row in orders:
                key = (row["order_id"], row["updated_ns"], row["status"])
                text = cached.get(key)
                if text is None:
                    text = _dumps(row)
                fresh[key] = text
                parts.append(text)
        except (KeyError, TypeError):  # not rows of the broker: no cache
            return _dumps(state)
        self._order_text = fresh
        return _dumps(rest)[:-1] + ',"orders":[' + ",".join(parts) + "]}"

    def append_audit(self, records: Sequence[dict[str, Any]]) -> None:
        """Append whole lines with one write, then fsync: durable before any reply."""
        if not records:
            return
        try:
            data = "".join(_dumps(r) + "\n" for r in records).encode("utf-8")
            view = memoryview(data)
            while view:
                written = os.write(self._audit_fd, view)
                view = view[written:]
            os.fsync(self._audit_fd)
        except (OSError, ValueError) as exc:
            raise PersistenceError(f"cannot append to {self.audit_path}: {exc}") from exc

    def read_audit(self) -> Iterator[dict[str, Any]]:
        return read_audit(self.audit_path)

    def close(self) -> None:
        if self._audit_fd >= 0:
            os.close(self._audit_fd)
            self._audit_fd = -1


def read_audit(path: str | Path) -> Iterator[dict[str, Any]]:
    """Every whole record of an audit log, oldest first; torn or foreign lines are skipped."""
    path = Path(path)
    if not path.exists():
        return
    with path.open("rb") as fh:
        for line in fh:
            if not line.endswith(b"\n"):
                continue  # torn tail of a crash mid-append
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                yield record
