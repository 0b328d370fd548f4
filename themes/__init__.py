"""Project themes shipped as package data (Textual themes plus their .tcss).

Every theme defines the `tc-*` variables the console's CSS uses (up/down
colours, flash backgrounds, the HALTED banner). Textual's built-in themes do
not, so `THEME_VARIABLE_DEFAULTS` fills them in when one of those is chosen.
"""

from __future__ import annotations

from pathlib import Path

from textual.theme import Theme

from themes.contrast import CONTRAST
from themes.dark import DARK
from themes.light import LIGHT

THEMES_DIR = Path(__file__).resolve().parent
PROJECT_THEMES: dict[str, Theme] = {t.name: t for t in (DARK, LIGHT, CONTRAST)}
DEFAULT_THEME = DARK.name
THEME_CSS_PATHS: list[Path] = [THEMES_DIR / f"{n}.tcss" for n in ("dark", "light", "contrast")]
THEME_VARIABLE_DEFAULTS: dict[str, str] = dict(DARK.variables)

__all__ = [
    "CONTRAST", "DARK", "DEFAULT_THEME", "LIGHT", "PROJECT_THEMES", "THEME_CSS_PATHS",
    "THEME_VARIABLE_DEFAULTS",
]
