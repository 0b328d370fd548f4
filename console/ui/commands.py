"""The one command registry: bindings, command palette and help all come from here.

A command has a stable name (used in config `[keys]`), default keys, a title
and description, the Textual action it runs, and whether it changes trading
state (those are refused in read-only mode). Users remap keys in `[keys]`
(`heartbeat = "h,ctrl+h"`); an unknown command name there is a usage error.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider

from services.runtime.errors import UsageError


@dataclass(frozen=True, slots=True)
class Command:
    """One user command, reachable by key, palette and help."""

    name: str
    keys: str
    title: str
    description: str
    action: str
    state_changing: bool = False
    footer: str = ""            # short label in the footer bar ("" = not shown there)


def _tab_commands() -> list[Command]:
    return [
        Command(f"tab_{n}", str(n), f"Tab {n}", f"Show exchange tab {n} (1 = All)",
                f"switch_tab({n})")
        for n in range(1, 10)
    ]


COMMANDS: tuple[Command, ...] = (
    Command("filter", "/", "Filter symbols",
            "Focus the filter bar (substring, *glob?, re:regex, ! inverts)", "focus_filter",
            footer="Filter"),
    Command("clear_filter", "escape", "Clear filter", "Clear the symbol filter",
            "clear_filter"),
    Command("detail", "enter", "Symbol detail",
            "Open the detail pane of the selected symbol: depth, last ticks, sparkline",
            "open_detail"),
    Command("heartbeat", "h", "Send heartbeat",
            "Send a heartbeat to the gateway now (the selected one, or every one) and show "
            "its round trip", "heartbeat",
            footer="Heartbeat"),
    Command("kill_switch", "k", "Kill switch",
            "Open the guarded kill switch (halt trading, optionally flatten; with several "
            "gateways one of them or ALL)", "kill_switch",
            state_changing=True, footer="Kill"),
    Command("resume", "R", "Resume trading",
            "Release the kill switch (needs the incident id and a typed RESUME)", "resume",
            state_changing=True),
    Command("select_gateway", "g", "Select gateway",
            "With several gateways: show the next one in the gateway panel (all, then each); "
            "the kill switch and heartbeat start from it", "select_gateway"),
    Command("alerts", "a", "Alerts",
            "Show firing and recently resolved alerts, with since and duration", "alerts",
            footer="Alerts"),
    Command("ack_alert", "x", "Acknowledge alert",
            "In the Alerts view: acknowledge the selected alert (silences its bell and "
            "toasts, keeps it listed)", "ack_alert"),
    Command("pause", "p", "Pause display",
            "Freeze the tick table; ingest goes on and pending updates are counted", "pause",
            footer="Pause"),
    Command("redraw", "ctrl+l", "Redraw screen",
            "Repaint the whole screen (after something else wrote to the terminal)", "redraw"),
    Command("sort", "s", "Cycle sort", "Sort by the next column", "cycle_sort"),
    Command("reverse_sort", "S", "Reverse sort", "Reverse the sort order", "reverse_sort"),
    Command("log_level", "l", "Log level filter",
            "Cycle the telemetry log filter: ALL, INFO, WARNING, ERROR", "cycle_log_level"),
    Command("view", "v", "Next panel",
            "Small terminals: switch between ticks, feeds, gateway, telemetry and charts",
            "cycle_view"),
    Command("record", "r", "Toggle recording",
            "Start or stop recording the raw feed to a file in the user data dir",
            "toggle_recording"),
    Command("export", "e", "Export CSV",
            "Write the current (filtered, sorted) table to a CSV file", "export_csv"),
    Command("theme", "t", "Cycle theme", "Switch to the next theme (saved to the user config)",
            "cycle_theme"),
    Command("help", "?", "Help", "List every key, command and the legend", "help",
            footer="Help"),
    Command("palette", "ctrl+p", "Command palette", "Search and run any command",
            "command_palette"),
    Command("focus_next", "tab", "Next widget", "Move focus to the next widget", "focus_next"),
    Command("focus_previous", "shift+tab", "Previous widget",
            "Move focus to the previous widget", "focus_previous"),
    *_tab_commands(),
    Command("prev_tab", "[", "Previous tab", "Show the previous exchange tab", "prev_tab"),
    Command("next_tab", "]", "Next tab", "Show the next exchange tab", "next_tab"),
    Command("quit", "q", "Quit", "Quit the console", "quit", footer="Quit"),
)
COMMANDS_BY_NAME: dict[str, Command] = {c.name: c for c in COMMANDS}
DEFAULT_KEYMAP: dict[str, str] = {c.name: c.keys for c in COMMANDS}
# Bound by Textual's own screen (the focus chain): not bound again here, and a
# [keys] entry for them only changes what help shows.
_TEXTUAL_OWNED = frozenset({"focus_next", "focus_previous"})


def action_name(action: str) -> str:
    """'switch_tab(3)' -> 'switch_tab': the name Textual hands to `check_action`."""
    return action.partition("(")[0]


# Action name -> its command, for every command that changes trading state.
STATE_CHANGING: dict[str, Command] = {
    action_name(c.action): c for c in COMMANDS if c.state_changing
}

_KEY_RE = re.compile(r"^(?:(?:ctrl|shift|alt|meta|super|hyper)\+)*[A-Za-z0-9_]+$")
_KEY_REPLACEMENTS = {
    "solidus": "slash", "reverse_solidus": "backslash", "commercial_at": "at",
    "hyphen_minus": "minus", "plus_sign": "plus", "low_line": "underscore",
}


def normalize_key(key: str) -> str:
    """Turn a typed key ('?', 'ctrl+/') into Textual's key name ('question_mark')."""
    *mods, last = key.strip().split("+") if key.strip() != "+" else ["+"]
    if len(last) == 1 and not last.isalnum():
        try:
            name = unicodedata.name(last).lower().replace("-", "_").replace(" ", "_")
        except ValueError:
            name = last
        last = _KEY_REPLACEMENTS.get(name, name)
    return "+".join([*mods, last])


def split_keys(keys: str) -> list[str]:
    """'h, ctrl+h' -> ['h', 'ctrl+h'] (a lone ',' is the comma key)."""
    if keys.strip() == ",":
        return [","]
    return [k.strip() for k in keys.split(",") if k.strip()]


def resolve_keymap(overrides: Mapping[str, Any] | None) -> dict[str, str]:
    """Default keys with the user's `[keys]` applied; UsageError on a bad entry."""
    keymap = {c.name: c.keys for c in COMMANDS}
    for name, value in (overrides or {}).items():
        if name not in COMMANDS_BY_NAME:
            known = ", ".join(c.name for c in COMMANDS)
            raise UsageError(f"[keys] {name}: unknown command (known: {known})")
        if not isinstance(value, str) or not split_keys(value):
            raise UsageError(f'[keys] {name}: expected keys like "h,ctrl+h", got {value!r}')
        for key in split_keys(value):
            if not _KEY_RE.match(normalize_key(key)):
                raise UsageError(
                    f"[keys] {name}: {key!r} is not a key (use names like h, R, ?, f5, "
                    f"ctrl+h, shift+tab)"
                )
        keymap[name] = ",".join(split_keys(value))
    return keymap


def registry_bindings() -> list[Binding]:
    """The app's `BINDINGS`: every registry command on its default keys, with its id.

    The id is the command name, so the user's `[keys]` rebind it through
    Textual's keymap (`App.set_keymap(textual_keymap(keymap))`).
    """
    bindings: list[Binding] = []
    for command in COMMANDS:
        if command.name in _TEXTUAL_OWNED:
            continue
        for key in split_keys(command.keys):
            if command.name == "palette":
                bindings.append(Binding(normalize_key(key), command.action, "Palette",
                                        show=False, priority=True, id=command.name))
                continue
            bindings.append(Binding(
                normalize_key(key), command.action, command.footer or command.title,
                show=bool(command.footer), key_display=key if len(key) == 1 else None,
                id=command.name,
            ))
    return bindings


def textual_keymap(keymap: Mapping[str, str]) -> dict[str, str]:
    """The entries of `keymap` that differ from the defaults, as Textual key names."""
    return {
        name: ",".join(normalize_key(key) for key in split_keys(keys))
        for name, keys in keymap.items()
        if name not in _TEXTUAL_OWNED and keys != COMMANDS_BY_NAME[name].keys
    }


def help_rows(keymap: Mapping[str, str]) -> Iterator[tuple[str, Command]]:
    """(keys as typed, command) for the help screen, in registry order."""
    for command in COMMANDS:
        yield keymap.get(command.name, command.keys), command


class RegistryCommands(Provider):
    """Command palette provider: every registry command plus a theme switcher.

    The app must offer `keymap` (name -> keys), `run_command(name)`,
    `theme_names()` and `select_theme(name)`.
    """

    def _entries(self) -> Iterable[tuple[str, Any, str]]:
        app: Any = self.app
        keymap: Mapping[str, str] = getattr(app, "keymap", {})
        for command in COMMANDS:
            keys = keymap.get(command.name, command.keys)
            marker = " (changes trading state)" if command.state_changing else ""
            yield (command.title, partial(app.run_command, command.name),
                   f"[{keys}] {command.description}{marker}")
        for name in app.theme_names():
            yield (f"Theme: {name}", partial(app.select_theme, name),
                   "Switch theme (saved to the user config)")

    async def discover(self) -> Hits:
        for title, callback, help_text in self._entries():
            yield DiscoveryHit(title, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, callback, help_text in self._entries():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), callback, help=help_text)
