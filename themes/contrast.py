"""tradeconsole-contrast: pure black and saturated colours, for glare and low vision."""

from __future__ import annotations

from textual.theme import Theme

CONTRAST = Theme(
    name="tradeconsole-contrast",
    primary="#FFFF00",
    secondary="#00FFFF",
    accent="#FFFF00",
    warning="#FFFF00",
    error="#FF0000",
    success="#00FF00",
    foreground="#FFFFFF",
    background="#000000",
    surface="#000000",
    panel="#000000",
    boost="#FFFFFF",
    dark=True,
    luminosity_spread=0.3,
    text_alpha=1.0,
    variables={
        "tc-up": "#00FF00",
        "tc-down": "#FF4040",
        "tc-flash-up-fg": "#000000",
        "tc-flash-up-bg": "#00FF00",
        "tc-flash-down-fg": "#000000",
        "tc-flash-down-bg": "#FF4040",
        "tc-stale": "#C0C0C0",
        "tc-halted-fg": "#FFFFFF",
        "tc-halted-bg": "#FF0000",
        "tc-ok": "#00FF00",
        "tc-bad": "#FF4040",
        "tc-late": "#FFFF00",
        "footer-key-foreground": "#FFFF00",
        "block-cursor-background": "#FFFF00",
        "block-cursor-foreground": "#000000",
    },
)
