"""Remember the chosen theme in the user's config file without touching other keys."""

from __future__ import annotations

import tomllib
from pathlib import Path

import tomli_w


class ThemeSaveError(OSError):
    """The user config could not be read or written; the message says which and why."""


def save_theme(path: Path, theme: str) -> None:
    """Set `[console] theme` in the TOML file at `path`, keeping everything else.

    A file that is not valid TOML is left untouched (ThemeSaveError), so a
    hand-edited config is never clobbered.
    """
    data: dict = {}
    if path.exists():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ThemeSaveError(f"{path}: not saved, the file cannot be read as TOML "
                                 f"({exc})") from exc
    console = data.setdefault("console", {})
    if not isinstance(console, dict):
        raise ThemeSaveError(f"{path}: not saved, [console] is not a table")
    if console.get("theme") == theme:
        return
    console["theme"] = theme
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(tomli_w.dumps(data), encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        raise ThemeSaveError(f"{path}: not saved ({exc.strerror or exc})") from exc
