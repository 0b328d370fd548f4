"""A minimal terminal for tests: what a screen shows after a stream of output.

It follows the vocabulary Textual writes (cursor position, SGR, text, newline,
carriage return, the alternate screen, erase display) and records, per cell,
the character and the SGR state it was written with, so two streams can be
compared by what they leave on the screen rather than by their bytes. Its
SGR handling is written apart from console.ui.output_diff on purpose: the
check must not share the code it checks.
"""

from __future__ import annotations

import re

_TOKEN = re.compile(
    r"\x1b\[([0-9;?<=>]*)([A-Za-z@`~])|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|(\x1b)"
    r"|([\x00-\x1f])|([^\x00-\x1f\x1b]+)")


_OFF = {23: {"3"}, 24: {"4", "21"}, 25: {"5", "6"}, 27: {"7"}, 28: {"8"}, 29: {"9"},
        54: {"51", "52"}, 55: {"53"}}


def apply_sgr(pen: str, params: str) -> str:
    """The pen after an SGR, normalised to (attributes, fg, bg) so equal looks compare equal."""
    attrs, fg, bg = _parse(pen)
    codes = params.split(";") if params else ["0"]
    i = 0
    while i < len(codes):
        code = codes[i]
        if code in ("38", "48"):
            size = 5 if codes[i + 1:i + 2] == ["2"] else 3
            color = ";".join(codes[i:i + size])
            if code == "38":
                fg = color
            else:
                bg = color
            i += size
            continue
        n = int(code or 0)
        if n == 0:
            attrs, fg, bg = set(), "", ""
        elif 30 <= n <= 37 or 90 <= n <= 97:
            fg = code
        elif 40 <= n <= 47 or 100 <= n <= 107:
            bg = code
        elif n == 39:
            fg = ""
        elif n == 49:
            bg = ""
        elif n == 22:
            attrs -= {"1", "2"}
        elif n in (23, 24, 25, 27, 28, 29, 54, 55):
            attrs -= _OFF[n]
        else:
            attrs.add(code)
        i += 1
    return "|".join([",".join(sorted(attrs)), fg, bg]) if attrs or fg or bg else ""


def _parse(pen: str) -> tuple[set[str], str, str]:
    if not pen:
        return set(), "", ""
    attrs, fg, bg = pen.split("|")
    return set(filter(None, attrs.split(","))), fg, bg


class VtScreen:
    """Cells of a `width` x `height` terminal, each (character, pen)."""

    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.cells = [[(" ", "")] * width for _ in range(height)]
        self.y = self.x = 0
        self.pen = ""
        self._partial = ""

    def feed(self, data: str) -> None:
        """Like a terminal, a sequence cut between two writes is read as one."""
        data = self._partial + data
        cut = re.search(r"\x1b(\[[0-9;?]*|\][^\x07]*)?\Z", data)
        self._partial = data[cut.start():] if cut else ""
        if cut:
            data = data[:cut.start()]
        for match in _TOKEN.finditer(data):
            params, final, _esc, ctl, text = match.groups()
            if text is not None:
                for char in text:
                    if self.x < self.width and self.y < self.height:
                        self.cells[self.y][self.x] = (char, self.pen)
                    self.x = min(self.x + 1, self.width)
            elif final == "m":
                self.pen = apply_sgr(self.pen, params)
            elif final == "C":
                self.x = min(self.x + int(params or 1), self.width - 1)
            elif final == "D":
                self.x = max(self.x - int(params or 1), 0)
            elif final == "G":
                self.x = int(params or 1) - 1
            elif final == "H":
                row, _, col = params.partition(";")
                self.y, self.x = int(row or 1) - 1, int(col or 1) - 1
            elif final == "J" and params == "2":
                self.cells = [[(" ", "")] * self.width for _ in range(self.height)]
            elif ctl == "\n":
                self.y = min(self.y + 1, self.height - 1)
            elif ctl == "\r":
                self.x = 0

    def text(self) -> list[str]:
        return ["".join(char for char, _ in row) for row in self.cells]
