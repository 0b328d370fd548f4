"""The symbol filter language of the `/` filter bar.

- plain text: case-insensitive substring of the vt_symbol
- text with `*` or `?`: a glob over the whole vt_symbol (case-insensitive)
- `re:` prefix: a regular expression searched in the vt_symbol (case-insensitive)
- `!` prefix (before any of the above): keep the symbols that do NOT match

Pure functions only, so the table can cache one boolean per symbol and the
rules are unit tested without a terminal.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable
from dataclasses import dataclass, field

KIND_ALL = "all"
KIND_SUBSTRING = "substring"
KIND_GLOB = "glob"
KIND_REGEX = "regex"

REGEX_PREFIX = "re:"
INVERT_PREFIX = "!"


class FilterError(ValueError):
    """A filter that cannot be compiled (an invalid regex); the message is for the user."""


@dataclass(frozen=True, slots=True)
class SymbolFilter:
    """A compiled filter: call `matches(vt_symbol)`."""

    text: str
    kind: str
    inverted: bool
    _test: Callable[[str], bool] = field(repr=False, compare=False)

    @property
    def is_empty(self) -> bool:
        return self.kind == KIND_ALL

    def matches(self, vt_symbol: str) -> bool:
        return self._test(vt_symbol) != self.inverted

    def describe(self) -> str:
        """Short label for the filter bar, e.g. 'not glob *.KRAKEN'."""
        if self.is_empty:
            return "all symbols"
        return ("not " if self.inverted else "") + f"{self.kind} {self.text}"


def _match_all(vt_symbol: str) -> bool:
    return True


MATCH_ALL = SymbolFilter("", KIND_ALL, False, _match_all)


def parse_filter(text: str) -> SymbolFilter:
    """Compile the filter bar's text; raise FilterError for an invalid regex.

    An empty pattern (also a lone `!`) matches everything, so the table never
    goes blank while the user is still typing.
    """
    raw = text.strip()
    inverted = raw.startswith(INVERT_PREFIX)
    if inverted:
        raw = raw[len(INVERT_PREFIX):].lstrip()
    if raw.startswith(REGEX_PREFIX):
        pattern = raw[len(REGEX_PREFIX):]
        if not pattern:
            return MATCH_ALL
        try:
            compiled = re.compile(pattern, re.IGNORECASE)
        except re.error as exc:
            raise FilterError(f"invalid regex {pattern!r}: {exc}") from exc
        search = compiled.search
        return SymbolFilter(pattern, KIND_REGEX, inverted, lambda s: search(s) is not None)
    if not raw:
        return MATCH_ALL
    if "*" in raw or "?" in raw:
        glob = raw.upper()
        return SymbolFilter(raw, KIND_GLOB, inverted,
                            lambda s: fnmatch.fnmatchcase(s.upper(), glob))
    needle = raw.casefold()
    return SymbolFilter(raw, KIND_SUBSTRING, inverted, lambda s: needle in s.casefold())
