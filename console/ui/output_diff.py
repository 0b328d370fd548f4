"""Write to the terminal only the cells whose character or style changed.

Textual repaints by region: a changed price rewrites its whole row from the
widget's left edge, every segment opening with a full truecolor SGR and
closing with a reset. Over ssh that is most of the traffic (at 200 msg/s over
50 symbols about 80 KiB/s, three quarters of it escape codes). `OutputDiff`
keeps a model of what the terminal shows (a character and an SGR "pen" per
cell) and turns each of Textual's writes into the smallest equivalent: cells
already showing the same character in the same pen are skipped, the cursor is
moved only where needed, and the pen is switched only when it changes.

Only the small vocabulary Textual uses for frames is understood: cursor
position (CSI row;col H), SGR (CSI ... m), narrow printable text, newlines,
the bell and mode switches that do not touch the screen. Anything else (a
wide character, a hyperlink, a screen clear, the alternate screen) passes the
whole write through untouched and forgets the model, so the next frames write
in full until the cells are known again: the diff can only ever save bytes,
never show something else.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rich.cells import cell_len

SYNC_START = "\x1b[?2026h"
SYNC_END = "\x1b[?2026l"

_TOKEN = re.compile(
    r"\x1b\[([0-9;?]*)([A-Za-z@`~])"  # CSI: parameters, final byte
    r"|(\x1b)"                         # any other escape: not understood
    r"|([\x00-\x1f\x7f])"              # a control character
    r"|([^\x00-\x1f\x7f\x1b]+)"       # printable text
)
# An escape sequence left unfinished at the end of a write.
_CUT_ESCAPE = re.compile(r"\x1b(\[[0-9;?]*)?\Z")
# A control character: never part of a cell.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Private modes that switch or clear the screen: the model no longer holds.
_SCREEN_MODES = {"?1049", "?1047", "?47"}
# A gap of at most this many known, same-pen cells is rewritten instead of
# moving the cursor over it (a cursor move costs 6-8 bytes).
_REWRITE_GAP = 4

# Text put at a place with the SGR parameters of its style: (y, x, text, sgr).
# sgr None is unstyled text, written in whatever pen is current; a non-empty
# sgr is written as Textual writes a styled segment, the pen reset after it.
Run = tuple[int, int, str, "str | None"]


class _Fallback(Exception):
    """The write uses something the model does not follow."""


class OutputDiff:
    """A model of the terminal's cells; `feed` returns what must really be written."""

    def __init__(self) -> None:
        self._chars: list[list[str]] = []
        self._pens: list[list[str | None]] = []
        self._out_pen = ""                       # the terminal's current SGR state
        self._out_y: int | None = None           # where the terminal's cursor is
        self._out_x: int | None = None
        self._sync_held = False
        self._tail = ""                          # an escape sequence cut at a write's end
        # Where the writes left the cursor and pen (a write may go on from there).
        self._in_y = self._in_x = 0
        self._in_pen = ""
        self._cursor_shown = True                # Textual hides it; an Input may show it
        # Runs of cells put in the model (see `put`) that the next write sends.
        self._pending: list[tuple[int, int, int, str]] = []
        self.bytes_in = 0
        self.bytes_out = 0

    def reset(self) -> None:
        """Forget what the terminal shows (resize, redraw, suspend)."""
        self._chars.clear()
        self._pens.clear()
        self._out_pen = ""
        self._out_y = self._out_x = None
        self._in_y = self._in_x = 0
        self._in_pen = ""
        self._pending = []

    def put(self, runs: Sequence[Run]) -> bool:
        """Put styled text straight into the model, as if written, without the ANSI.

        The same as feeding the write Textual would have made of these runs (a
        cursor move before each, SGR and reset around each styled one), minus
        making that string and parsing it back. What changed is sent by the next
        `feed`. False, and nothing put, where a run holds what the model does not
        follow (a control, wide or zero-width character): write the ANSI then.
        """
        for _, _, text, _ in runs:
            if text.isascii():
                if not text.isprintable():
                    return False
            elif _CONTROL.search(text) or cell_len(text) != len(text):
                return False
        text_at, changed, pen = self._text, self._pending, self._in_pen
        y = x = 0
        for y, x, text, sgr in runs:
            if sgr:
                if text:
                    text_at(y, x, text, _apply_sgr(pen, sgr), changed)
                pen = ""
            elif text:
                text_at(y, x, text, pen, changed)
            x += len(text)
        if runs:
            self._in_y, self._in_x, self._in_pen = y, x, pen
        return True

    def flush(self) -> str:
        """What must be written for the cells put since the last write."""
        return self._out(self._pending_out())

    def _pending_out(self) -> str:
        if not self._pending:
            return ""
        out: list[str] = []
        self._write_cells(self._pending, out)
        self._pending = []
        return "".join(out)

    def feed(self, data: str) -> str:
        """What to write instead of `data` so the terminal ends up the same."""
        self.bytes_in += len(data)
        if data == SYNC_START:
            # Held back: a frame whose cells are all unchanged writes nothing at all.
            self._sync_held = True
            return ""
        if data == SYNC_END:
            if self._sync_held:
                self._sync_held = False
                return ""
            return self._out(data)
        data = self._tail + data
        # A write cut inside an escape sequence (Textual writes in 8 KiB chunks on
        # Windows) keeps the cut sequence for the next write.
        cut = _CUT_ESCAPE.search(data)
        self._tail = data[cut.start():] if cut else ""
        if cut:
            data = data[:cut.start()]
        put = len(self._pending)
        try:
            body = self._diff(data)
        except _Fallback:
            del self._pending[put:]  # the cells of `data`: it is written whole
            body = self._pending_out() + self._reset_pen() + data
            self.reset()
        if not body:
            return ""
        if self._sync_held:
            self._sync_held = False
            body = SYNC_START + body
        return self._out(body)

    def _out(self, text: str) -> str:
        self.bytes_out += len(text)
        return text

    def _row(self, y: int, width: int) -> tuple[list[str], list[str | None]]:
        chars, pens = self._chars, self._pens
        while len(chars) <= y:
            chars.append([])
            pens.append([])
        row_chars, row_pens = chars[y], pens[y]
        if len(row_chars) < width:
            grow = width - len(row_chars)
            row_chars.extend([""] * grow)
            row_pens.extend([None] * grow)
        return row_chars, row_pens

    def _diff(self, data: str) -> str:
        out: list[str] = []
        changed = self._pending   # cells put since the last write go out with this one
        y, x, pen = self._in_y, self._in_x, self._in_pen
        cursor_set = False          # the write's last token placed the cursor
        text_at = self._text
        # findall's tuples, not match objects: a frame is hundreds of tokens.
        for params, final, _esc, ctl, text in _TOKEN.findall(data):
            if text:
                if not text.isascii() and cell_len(text) != len(text):
                    raise _Fallback  # a wide or zero-width character
                text_at(y, x, text, pen, changed)
                x += len(text)
                cursor_set = False
            elif final == "m":
                pen = _apply_sgr(pen, params)
            elif final == "H":
                row, _, col = params.partition(";")
                y = int(row or 1) - 1
                x = int(col or 1) - 1
                if y < 0 or x < 0:
                    raise _Fallback  # row or column 0: not a place the model knows
                cursor_set = True
            elif final:
                if final in "hl" and params.startswith("?") and params not in _SCREEN_MODES:
                    out.append(f"\x1b[{params}{final}")  # a mode switch: no cell changes
                    if params == "?25":
                        self._cursor_shown = final == "h"
                else:
                    raise _Fallback
            elif ctl:
                if ctl == "\n":
                    y += 1
                elif ctl == "\r":
                    x = 0
                elif ctl == "\x07":
                    out.append(ctl)
                else:
                    raise _Fallback
            else:  # esc: an escape sequence the model does not follow
                raise _Fallback
        self._in_y, self._in_x, self._in_pen = y, x, pen
        if changed:
            self._write_cells(changed, out)
            self._pending = []
        if cursor_set and self._cursor_shown and (self._out_y, self._out_x) != (y, x):
            # The write ends by placing the cursor (Textual's cursor_position): keep it
            # while the cursor is shown; a hidden cursor's place shows nothing.
            out.append(f"\x1b[{y + 1};{x + 1}H")
            self._out_y, self._out_x = y, x
        return "".join(out)

    def _reset_pen(self) -> str:
        if not self._out_pen:
            return ""
        self._out_pen = ""
        return "\x1b[0m"

    def _text(self, y: int, x: int, text: str, pen: str,
              changed: list[tuple[int, int, int, str]]) -> None:
        """Put `text` at (y, x) in the model; note the runs of cells the terminal does
        not show yet (y, x1, x2, pen). A run may take in up to _REWRITE_GAP unchanged
        cells between changed ones: they show the same character in the same pen."""
        end = x + len(text)
        chars = self._chars
        if y < len(chars) and len(chars[y]) >= end:
            row_chars, row_pens = chars[y], self._pens[y]
        else:
            row_chars, row_pens = self._row(y, end)
        old_pens = row_pens[x:end]
        if "".join(row_chars[x:end]) == text and old_pens.count(pen) == len(text):
            return  # the common case: an unchanged run
        positions = [i for i, (old_char, old_pen, char)
                     in enumerate(zip(row_chars[x:end], old_pens, text, strict=True))
                     if old_char != char or old_pen != pen]
        row_chars[x:end] = text
        row_pens[x:end] = [pen] * len(text)
        start = last = positions[0]
        for i in positions[1:]:
            if i - last > _REWRITE_GAP + 1:
                changed.append((y, x + start, x + last + 1, pen))
                start = i
            last = i
        changed.append((y, x + start, x + last + 1, pen))

    def _write_cells(self, changed: list[tuple[int, int, int, str]], out: list[str]) -> None:
        """Write the changed runs grouped by pen: a frame switches the pen a few times
        instead of three times per changed row (a switch costs 20-36 bytes)."""
        chars, pens = self._chars, self._pens
        by_pen: dict[str, list[tuple[int, int, int]]] = {}
        for y, x1, x2, pen in changed:
            row_pens = pens[y]
            if row_pens[x1:x2].count(pen) == x2 - x1:
                by_pen.setdefault(pen, []).append((y, x1, x2))
                continue
            for x in range(x1, x2):  # a later write in the same frame changed some cells
                cell_pen = row_pens[x]
                assert cell_pen is not None
                by_pen.setdefault(cell_pen, []).append((y, x, x + 1))
        order = sorted(by_pen, key=lambda p: p != self._out_pen)  # the current pen first
        emit = out.append
        for pen in order:
            if self._out_pen != pen:
                emit(pen_change(self._out_pen, pen))
                self._out_pen = pen
            for y, x1, x2 in _merged(by_pen[pen]):
                if self._out_y != y or self._out_x != x1:
                    emit(self._move(y, x1))
                emit("".join(chars[y][x1:x2]))
                self._out_x = x2

    def _move(self, y: int, x: int) -> str:
        """Bring the terminal's cursor to (y, x) the cheapest way: rewrite a short
        known gap in the current pen, step forward, go to the column, or jump."""
        out_x = self._out_x
        if self._out_y == y and out_x is not None:
            step = x - out_x
            if 0 < step <= _REWRITE_GAP:
                row_chars, row_pens = self._chars[y], self._pens[y]
                if all(row_pens[i] == self._out_pen and row_chars[i] for i in range(out_x, x)):
                    return "".join(row_chars[out_x:x])
            forward = f"\x1b[{step}C" if step > 0 else ""
            column = f"\x1b[{x + 1}G"
            return forward if forward and len(forward) <= len(column) else column
        self._out_y = y
        return f"\x1b[{y + 1};{x + 1}H"


def _merged(runs: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    """The runs (y, x1, x2) in order, overlapping ones joined (a cell written twice in
    one frame is sent once)."""
    merged: list[tuple[int, int, int]] = []
    for y, x1, x2 in sorted(runs):
        if merged and merged[-1][0] == y and x1 <= merged[-1][2]:
            if x2 > merged[-1][2]:
                merged[-1] = (y, merged[-1][1], x2)
            continue
        merged.append((y, x1, x2))
    return merged


def _apply_sgr(pen: str, params: str) -> str:
    """The pen after an SGR: Textual always resets, then sets a style in one go."""
    if params in ("", "0"):
        return ""
    if params.startswith("0;"):
        return params[2:]
    return f"{pen};{params}" if pen else params


# SGR attribute codes and the code that switches each off again.
_ATTRIBUTE_OFF = {"1": "22", "2": "22", "3": "23", "4": "24", "21": "24", "5": "25",
                  "6": "25", "7": "27", "8": "28", "9": "29", "51": "54", "52": "54",
                  "53": "55"}
_Pen = tuple[frozenset[str], str | None, str | None]
_PENS: dict[str, _Pen] = {}
_CHANGES: dict[tuple[str, str], str] = {}


def _parse_pen(pen: str) -> _Pen:
    """An SGR parameter string as (attributes, foreground, background)."""
    parsed = _PENS.get(pen)
    if parsed is not None:
        return parsed
    codes = pen.split(";") if pen else []
    attributes: set[str] = set()
    fg = bg = None
    i = 0
    while i < len(codes):
        code = codes[i]
        if code in ("38", "48"):
            size = 5 if codes[i + 1:i + 2] == ["2"] else 3
            color = ";".join(codes[i:i + size])
            i += size
            if code == "38":
                fg = color
            else:
                bg = color
            continue
        number = int(code) if code.isdigit() else -1
        if 30 <= number <= 37 or 90 <= number <= 97:
            fg = code
        elif 40 <= number <= 47 or 100 <= number <= 107:
            bg = code
        elif code == "39":
            fg = None
        elif code == "49":
            bg = None
        else:
            attributes.add(code)
        i += 1
    parsed = _PENS[pen] = (frozenset(attributes), fg, bg)
    return parsed


def pen_change(old: str, new: str) -> str:
    """The shortest SGR that turns pen `old` into pen `new`."""
    if old == new:
        return ""
    key = (old, new)
    cached = _CHANGES.get(key)
    if cached is not None:
        return cached
    full = f"\x1b[0;{new}m" if new else "\x1b[0m"
    old_attrs, old_fg, old_bg = _parse_pen(old)
    new_attrs, new_fg, new_bg = _parse_pen(new)
    codes: list[str] = []
    removed = old_attrs - new_attrs
    if all(code in _ATTRIBUTE_OFF for code in removed):
        offs = {_ATTRIBUTE_OFF[code] for code in removed}
        codes.extend(sorted(offs))
        # 22 ends bold and dim together: set again the one that stays.
        readd = {"1", "2"} & new_attrs if "22" in offs else set()
        codes.extend(sorted((new_attrs - old_attrs) | readd))
        if new_fg != old_fg:
            codes.append(new_fg or "39")
        if new_bg != old_bg:
            codes.append(new_bg or "49")
        delta = f"\x1b[{';'.join(codes)}m"
        if codes and len(delta) < len(full):
            full = delta
    if len(_CHANGES) > 4096:
        _CHANGES.clear()
    _CHANGES[key] = full
    return full
