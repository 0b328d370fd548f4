"""`tradeconsole config init|show|path`: create, inspect and locate the user config.

`init` writes the shipped defaults as a commented user file: tomli-w renders
every value (so the file parses back to exactly those values) and the
comments and layout are those of the defaults file. `show` prints the merged
settings and the layer each one came from, as TOML or JSON. `path` prints the
file's location. The merging itself lives in services/runtime/config.py.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import tomllib
from pathlib import Path
from typing import Any

import tomli_w

from services.runtime.config import (
    Config,
    default_config_path,
    load_config,
    load_for_args,
    user_config_path,
)
from services.runtime.errors import UsageError

_SECTION_LINE = re.compile(r"^\s*\[([A-Za-z0-9_-]+)\]\s*(#.*)?$")
_KEY_LINE = re.compile(r"^\s*([A-Za-z0-9_-]+)\s*=")
_TABLE_ARRAY_LINE = re.compile(r"^\s*\[\[([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\]\]\s*(#.*)?$")

USER_FILE_HEADER = """\
# tradeconsole user settings (written by `tradeconsole config init`).
#
# Every value below is the shipped default. Change what you need and delete
# the rest, so the keys you did not change follow future defaults.
# Layers, lowest first: shipped defaults, this file, a profile (--profile
# NAME or TRADECONSOLE_PROFILE), TRADECONSOLE_SECTION__KEY environment
# variables, command-line flags. `tradeconsole config show` prints the merged
# result and where each value came from; docs/config.md lists every key.
"""

PROFILES_EXAMPLE = """\

# Profiles: named sets of overrides applied with --profile NAME, e.g.
#
# [profiles.fast.console]
# fps = 60
#
# [profiles.remote.endpoints]
# gateway = "tcp://10.0.0.5:5555"
# feeds = ["tcp://10.0.0.5:5556", "tcp://10.0.0.5:5558"]
"""


# --- rendering ----------------------------------------------------------------


def render_value(value: Any) -> str:
    """One TOML value on one line, rendered by tomli-w (lists and tables kept inline)."""
    if isinstance(value, list):
        return "[" + ", ".join(render_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_key(k)} = {render_value(v)}" for k, v in value.items()) \
            + " }"
    return tomli_w.dumps({"v": value}).partition("=")[2].strip()


def _key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else render_value(key)


def commented_defaults(defaults_text: str, values: dict[str, dict[str, Any]]) -> str:
    """The defaults file with its comments and layout, every value re-rendered.

    The defaults file's own header is replaced by USER_FILE_HEADER. Lines
    that are neither comments, blanks, section headers nor `key =` lines
    (continuations of a multi-line value) are dropped with their value; keys
    the text does not show are added at the end of their section.
    """
    lines = defaults_text.splitlines()
    start = 0
    while start < len(lines) and (lines[start].startswith("#") or not lines[start].strip()):
        start += 1
    out: list[str] = [USER_FILE_HEADER]
    section: str | None = None
    headers_seen: set[str] = set()
    shown = {
        (header.group(1), key.group(1))
        for header, key in _scan(lines[start:])
        if header is not None and key is not None
    }
    shown |= {(m.group(1), m.group(2)) for line in lines[start:]
              if (m := _TABLE_ARRAY_LINE.match(line))}
    table: dict[str, Any] | None = None       # the [[s.k]] table the lines belong to
    tables_used: dict[tuple[str, str], int] = {}

    def close_section() -> None:
        if section is None:
            return
        missing = [k for k in values.get(section, {}) if (section, k) not in shown]
        at = len(out)
        while at > 0 and not out[at - 1].strip():  # before the blank lines that end it
            at -= 1
        out[at:at] = [f"{k} = {render_value(values[section][k])}" for k in missing]

    for line in lines[start:]:
        header = _SECTION_LINE.match(line)
        array = _TABLE_ARRAY_LINE.match(line)
        key = _KEY_LINE.match(line)
        if array:
            if table is None:
                close_section()
            name = (array.group(1), array.group(2))
            index = tables_used.get(name, 0)
            tables_used[name] = index + 1
            tables = values.get(name[0], {}).get(name[1], [])
            table = tables[index] if index < len(tables) else {}
            if table:
                out.append(f"[[{name[0]}.{name[1]}]]")
        elif header:
            if table is None:
                close_section()
            table = None
            section = header.group(1)
            headers_seen.add(section)
            out.append(f"[{section}]")
        elif table is not None:
            if key and key.group(1) in table:
                out.append(f"{key.group(1)} = {render_value(table[key.group(1)])}")
            elif not line.strip() or line.lstrip().startswith("#"):
                out.append(line)
        elif key and section is not None and key.group(1) in values.get(section, {}):
            out.append(f"{key.group(1)} = {render_value(values[section][key.group(1)])}")
        elif not line.strip() or line.lstrip().startswith("#"):
            out.append(line)
    if table is None:
        close_section()
    for (section_name, key_name), used in tables_used.items():
        for extra in values.get(section_name, {}).get(key_name, [])[used:]:
            out.append(f"\n[[{section_name}.{key_name}]]")
            out.extend(f"{k} = {render_value(v)}" for k, v in extra.items())
    text = "\n".join(out).rstrip("\n") + "\n"
    absent = {s: body for s, body in values.items() if s not in headers_seen}
    if absent:
        text += "\n" + tomli_w.dumps(absent)
    return text + PROFILES_EXAMPLE


def _scan(lines: list[str]) -> list[tuple[re.Match[str] | None, re.Match[str] | None]]:
    """(current section header, key match) for every line of a TOML text."""
    header: re.Match[str] | None = None
    found = []
    for line in lines:
        match = _SECTION_LINE.match(line)
        if match:
            header = match
        found.append((header, None if match else _KEY_LINE.match(line)))
    return found


def _defaults() -> dict[str, dict[str, Any]]:
    return tomllib.loads(default_config_path().read_text(encoding="utf-8"))


def _label(config: Config, defaults: dict[str, dict[str, Any]], section: str, key: str) -> str:
    """Where the value came from, noting when a layer merely repeats the default."""
    source = config.source_of(section, key)
    if source != "default" and defaults.get(section, {}).get(key) == config.get(section, key):
        source += " (same as default)"
    return source


def show_toml(config: Config) -> str:
    """The merged settings as TOML, each value followed by where it came from."""
    defaults = _defaults()
    out = [f"# files: {', '.join(str(p) for p in config.files)}"]
    if config.profile:
        out.append(f"# profile: {config.profile}")
    for section, body in config.values.items():
        out.append("")
        out.append(f"[{section}]")
        rows = [(f"{key} = {render_value(value)}", _label(config, defaults, section, key))
                for key, value in body.items()]
        width = max((len(text) for text, _ in rows), default=0)
        out.extend(f"{text:<{width}}  # {source}" for text, source in rows)
    return "\n".join(out) + "\n"


def show_json(config: Config) -> str:
    """The merged settings as JSON: files, profile, settings.SECTION.KEY.{value, source}."""
    defaults = _defaults()
    settings = {
        section: {
            key: {"value": value, "source": _label(config, defaults, section, key)}
            for key, value in body.items()
        }
        for section, body in config.values.items()
    }
    return json.dumps(
        {"files": [str(p) for p in config.files], "profile": config.profile,
         "settings": settings},
        indent=2,
    ) + "\n"


# --- commands -------------------------------------------------------------------


def _target_path(args: argparse.Namespace) -> Path:
    explicit = getattr(args, "config", None)
    return Path(explicit).expanduser() if explicit else user_config_path()


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def init(args: argparse.Namespace) -> int:
    path = _target_path(args)
    if path.exists() and not args.force:
        raise UsageError(f"{path} already exists; edit it, or add --force to replace it")
    defaults_path = default_config_path()
    defaults_text = defaults_path.read_text(encoding="utf-8")
    values = tomllib.loads(defaults_text)
    text = commented_defaults(defaults_text, values)
    if tomllib.loads(text) != values:  # pragma: no cover - a bug in the rendering
        raise RuntimeError("the generated user config does not parse back to the defaults")
    try:
        _write_atomically(path, text)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror}") from exc
    load_config(path, env={})  # the file must load cleanly with today's schema
    print(f"wrote {path}")
    return 0


def show(args: argparse.Namespace) -> int:
    config = load_for_args(args)
    sys.stdout.write(show_json(config) if args.json else show_toml(config))
    return 0


def path(args: argparse.Namespace) -> int:
    """The path alone on stdout (for `$(...)`), whether it exists on stderr."""
    target = _target_path(args)
    print(target)
    state = "exists" if target.is_file() else "does not exist yet (tradeconsole config init)"
    print(state, file=sys.stderr)
    return 0


def _add_shared_flags(parser: argparse.ArgumentParser) -> None:
    """Accept the common flags after the action too, without masking ones given before."""
    parser.add_argument("--config", metavar="FILE", default=argparse.SUPPRESS,
                        help="config file instead of the user file")
    parser.add_argument("--profile", metavar="NAME", default=argparse.SUPPRESS,
                        help="apply [profiles.NAME] from the config")
    parser.add_argument("--log-level", metavar="LEVEL", default=argparse.SUPPRESS,
                        help="DEBUG, INFO, WARNING or ERROR")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="config_action", metavar="ACTION", required=True)
    init_parser = actions.add_parser(
        "init", help="write the user config with every default, commented",
        description="Write the user config (or --config FILE) with every default value "
        "and its comment. Refuses to replace an existing file without --force.",
    )
    init_parser.add_argument("--force", action="store_true", help="replace an existing file")
    show_parser = actions.add_parser(
        "show", help="print the merged config and where each value came from",
        description="Print the merged settings and, for each, its layer: default, the "
        "file, [profiles.NAME], the environment variable or the command line.",
    )
    show_parser.add_argument("--json", action="store_true", help="print JSON instead of TOML")
    actions.add_parser(
        "path", help="print the user config path (and, on stderr, whether it exists)",
        description="Print the user config path (or --config FILE).",
    )
    for sub in actions.choices.values():
        _add_shared_flags(sub)


HANDLERS = {"init": init, "show": show, "path": path}


def run(args: argparse.Namespace) -> int:
    return HANDLERS[args.config_action](args)
