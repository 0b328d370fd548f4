"""tradeconsole-dark: the default, a calm dark palette with loud alarms."""

from __future__ import annotations

from textual.theme import Theme

DARK = Theme(
    name="tradeconsole-dark",
    primary="#3B82F6",
    secondary="#0EA5E9",
    accent="#F59E0B",
    warning="#F59E0B",
    error="#EF4444",
    success="#22C55E",
    foreground="#E6EDF3",
    background="#0D1117",
    surface="#161B22",
    panel="#1F2630",
    dark=True,
    variables={
        "tc-up": "#3FB950",
        "tc-down": "#F85149",
        "tc-flash-up-fg": "#FFFFFF",
        "tc-flash-up-bg": "#1A7F37",
        "tc-flash-down-fg": "#FFFFFF",
        "tc-flash-down-bg": "#B62324",
        "tc-stale": "#7D8590",
        "tc-halted-fg": "#FFFFFF",
        "tc-halted-bg": "#C62828",
        "tc-ok": "#3FB950",
        "tc-bad": "#F85149",
        "tc-late": "#D29922",
        "footer-key-foreground": "#F59E0B",
    },
)
