"""Hardened msgpack decoding and the one encoder every sender uses.

Frames are capped by the socket's MAXMSGSIZE and again here, msgpack
containers and strings by explicit `Limits`, only the msgpack Timestamp
extension is accepted, and trailing bytes are an error: a hostile peer can
make a decode fail, never make us allocate without bound.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Protocol

import msgpack


class LimitValues(Protocol):
    """Anything that carries the three limits (the typed [limits] config section)."""

    @property
    def max_msg_size(self) -> int: ...

    @property
    def max_str_len(self) -> int: ...

    @property
    def max_container_len(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Limits:
    """Caps on what a peer may make us allocate. Defaults match config.toml."""

    max_msg_size: int = 262144
    max_str_len: int = 65536
    max_container_len: int = 4096

    @classmethod
    def from_settings(cls, section: LimitValues) -> Limits:
        """From the typed [limits] section (services.runtime.settings.LimitsSection)."""
        return cls(max_msg_size=section.max_msg_size, max_str_len=section.max_str_len,
                   max_container_len=section.max_container_len)


DEFAULT_LIMITS: Final = Limits()


class DecodeError(ValueError):
    """A frame that is not a valid protocol payload. `reason` is short and stable."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _reject_ext(code: int, data: bytes) -> Any:
    raise DecodeError(f"msgpack ext type {code} not allowed")


def packb(obj: Any) -> bytes:
    return msgpack.packb(obj, use_bin_type=True, datetime=False)


def unpack_map(data: bytes, limits: Limits = DEFAULT_LIMITS) -> dict[str, Any]:
    """Decode one payload frame into a dict with string keys, or raise DecodeError."""
    if len(data) > limits.max_msg_size:
        raise DecodeError(f"frame of {len(data)} bytes exceeds {limits.max_msg_size}")
    try:
        obj = msgpack.unpackb(
            data,
            raw=False,
            strict_map_key=True,
            ext_hook=_reject_ext,
            max_str_len=limits.max_str_len,
            max_bin_len=limits.max_str_len,
            max_array_len=limits.max_container_len,
            max_map_len=limits.max_container_len,
            max_ext_len=12,  # a msgpack Timestamp is at most 12 bytes
        )
    except DecodeError:
        raise
    except msgpack.ExtraData as exc:
        raise DecodeError("trailing bytes after payload") from exc
    except msgpack.StackError as exc:
        raise DecodeError("nesting too deep") from exc
    except (ValueError, TypeError, UnicodeDecodeError, msgpack.UnpackException) as exc:
        raise DecodeError(f"not msgpack: {exc}") from exc
    except RecursionError as exc:
        raise DecodeError("nesting too deep") from exc
    if not isinstance(obj, dict):
        raise DecodeError(f"payload is {type(obj).__name__}, expected map")
    try:
        # str.join refuses any non-str key; it is C-fast (ingest runs this per tick).
        "".join(obj)
    except TypeError:
        raise DecodeError("payload map keys must be strings") from None
    return obj


def decode_topic(frame: bytes) -> str:
    try:
        return frame.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecodeError("topic is not UTF-8") from exc


def is_finite_number(value: Any) -> bool:
    """True for int/float that are finite; bools are not numbers on the wire."""
    t = type(value)
    if t is float:
        return value - value == 0.0  # False for NaN and +-inf
    return t is int
