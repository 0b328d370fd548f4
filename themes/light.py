"""tradeconsole-light: for bright rooms and light terminals."""

from __future__ import annotations

from textual.theme import Theme

LIGHT = Theme(
    name="tradeconsole-light",
    primary="#1D4ED8",
    secondary="#0369A1",
    accent="#B45309",
    warning="#B45309",
    error="#B91C1C",
    success="#15803D",
    foreground="#0F172A",
    background="#F8FAFC",
    surface="#FFFFFF",
    panel="#E2E8F0",
    dark=False,
    variables={
        "tc-up": "#15803D",
        "tc-down": "#B91C1C",
        "tc-flash-up-fg": "#FFFFFF",
        "tc-flash-up-bg": "#15803D",
        "tc-flash-down-fg": "#FFFFFF",
        "tc-flash-down-bg": "#B91C1C",
        "tc-stale": "#64748B",
        "tc-halted-fg": "#FFFFFF",
        "tc-halted-bg": "#B91C1C",
        "tc-ok": "#15803D",
        "tc-bad": "#B91C1C",
        "tc-late": "#B45309",
        "footer-key-foreground": "#1D4ED8",
    },
)
