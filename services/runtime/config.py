"""Layered configuration shared by the services and the console.

Layers, lowest first: the shipped `config.toml` defaults, the user's file
(platformdirs user config dir, or `--config FILE`), an optional profile from
that file (`[profiles.NAME]`), `TRADECONSOLE_SECTION__KEY` environment
variables, and command-line overrides. The defaults file is also the schema:
a key it does not have, or a value of another type, is refused with one line
that names the key and where it came from. The merged values are then built
once into the typed, read-only `Settings` (services/runtime/settings.py).
"""

from __future__ import annotations

import difflib
import math
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import platformdirs

from services.runtime.errors import UsageError
from services.runtime.network import NetworkOptions
from services.runtime.settings import AlertRuleSpec, GatewayEntry, Settings

APP_NAME = "tradeconsole"
ENV_PREFIX = "TRADECONSOLE_"
# Sections whose keys are free-form (not listed in the defaults).
FREE_SECTIONS = frozenset({"keys"})
# Sections whose keys are free-form names, each a table checked by a Struct.
NAMED_SECTIONS: dict[str, type[msgspec.Struct]] = {"gateways": GatewayEntry}
# Settings whose strings must be one of a few words (compared case-insensitively).
CHOICES: dict[str, tuple[str, ...]] = {
    "logging.level": ("DEBUG", "INFO", "WARNING", "ERROR"),
    "console.ingest": ("PROCESS", "THREAD"),
    "console.gateway_link": ("PROCESS", "THREAD"),
}


# Keys holding an array of tables, merged by each table's `name` (a later layer's
# table changes only the keys it gives) and checked against a Struct per table.
NAMED_TABLES: dict[str, type[msgspec.Struct]] = {"alerts.rules": AlertRuleSpec}


class ConfigError(UsageError):
    """A configuration problem, worded for a one-line message and exit code 2."""


def default_config_path() -> Path:
    """The shipped defaults: packaged copy in a wheel, top-level file in a checkout."""
    packaged = Path(__file__).with_name("default_config.toml")
    if packaged.is_file():
        return packaged
    return Path(__file__).resolve().parents[2] / "config.toml"


def user_config_path() -> Path:
    """The user's config file (XDG_CONFIG_HOME is respected on Linux)."""
    return Path(platformdirs.user_config_dir(APP_NAME)) / "config.toml"


def user_data_dir() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME))


def user_log_dir() -> Path:
    return Path(platformdirs.user_log_dir(APP_NAME))


@dataclass(frozen=True)
class Config:
    """The merged configuration: typed `settings`, plus the source of every value.

    `values` holds the same merged values as plain TOML data (for `config show`
    and for `get`/`section`); `settings` is built from them once, at load.
    """

    settings: Settings
    values: dict[str, dict[str, Any]]
    sources: dict[str, str] = field(default_factory=dict)
    profile: str | None = None
    files: list[Path] = field(default_factory=list)

    def get(self, section: str, key: str) -> Any:
        return self.values[section][key]

    def section(self, name: str) -> dict[str, Any]:
        return self.values[name]

    def source_of(self, section: str, key: str) -> str:
        return self.sources.get(f"{section}.{key}", "default")

    @property
    def network(self) -> NetworkOptions:
        """[network] as the options every socket is given."""
        return NetworkOptions(**msgspec.structs.asdict(self.settings.network))


@dataclass
class _Merge:
    """Values being merged layer by layer, and the layer each one came from."""

    values: dict[str, dict[str, Any]]
    sources: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of_defaults(cls, schema: Mapping[str, Any]) -> _Merge:
        values = {section: dict(body) for section, body in schema.items()}
        for section in (*FREE_SECTIONS, *NAMED_SECTIONS):
            values.setdefault(section, {})
        return cls(values)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: file not found") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from exc


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list of strings"
    return type(value).__name__


def _coerce(default: Any, value: Any, where: str) -> Any:
    """Check `value` against the type of `default`; ints are accepted for floats."""
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if ok:
            value = float(value)
            if not math.isfinite(value):
                raise ConfigError(f"{where}: expected a finite number, got {value!r}")
    elif isinstance(default, str):
        ok = isinstance(value, str)
    elif isinstance(default, list):
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
    else:  # pragma: no cover - the defaults only hold the types above
        ok = False
    if not ok:
        raise ConfigError(
            f"{where}: expected {_type_name(default)}, got {_type_name(value)} {value!r}"
        )
    return value


def _merge_layer(
    merge: _Merge, layer: Mapping[str, Any], source: str, schema: Mapping[str, Any]
) -> None:
    for section, body in layer.items():
        if section == "profiles":
            continue
        if section not in schema:
            known = ", ".join(sorted(schema))
            raise ConfigError(f"{source}: unknown section [{section}] (known: {known})")
        if not isinstance(body, Mapping):
            raise ConfigError(f"{source}: [{section}] must be a table")
        for key, value in body.items():
            where = f"{source}: {section}.{key}"
            if f"{section}.{key}" in NAMED_TABLES:
                value = _merge_named_tables(merge.values[section][key], value, where,
                                            NAMED_TABLES[f"{section}.{key}"])
            elif section in FREE_SECTIONS:
                if not isinstance(value, str):
                    raise ConfigError(f"{where}: expected string, got {_type_name(value)}")
            elif section in NAMED_SECTIONS:
                value = _named_table(key, value, where, NAMED_SECTIONS[section])
            elif key not in schema[section]:
                known = ", ".join(sorted(schema[section]))
                close = difflib.get_close_matches(key, list(schema[section]), n=1)
                hint = f"did you mean {close[0]}? " if close else ""
                raise ConfigError(f"{where}: unknown key ({hint}known in [{section}]: {known})")
            else:
                value = _coerce(schema[section][key], value, where)
                choices = CHOICES.get(f"{section}.{key}")
                if choices and str(value).upper() not in choices:
                    raise ConfigError(
                        f"{where}: expected one of {', '.join(choices)}, got {value!r}"
                    )
            merge.values[section][key] = value
            merge.sources[f"{section}.{key}"] = source


def _merge_named_tables(current: list[dict[str, Any]], layer: Any, where: str,
                        spec: type[msgspec.Struct]) -> list[dict[str, Any]]:
    """Tables of `layer` over `current`, matched by name; each result checked by `spec`."""
    if not isinstance(layer, list) or not all(isinstance(t, Mapping) for t in layer):
        raise ConfigError(f"{where}: expected an array of tables ([[{where.rsplit(': ', 1)[-1]}]])")
    merged = {str(table.get("name")): dict(table) for table in current}
    for index, table in enumerate(layer):
        name = table.get("name")
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{where}[{index}]: every table needs a name = \"...\"")
        combined = {**merged.get(name, {}), **table}
        try:
            msgspec.convert(combined, spec)
        except msgspec.ValidationError as exc:
            raise ConfigError(f"{where} {name!r}: {_struct_problem(exc)}") from exc
        merged[name] = combined
    return list(merged.values())


NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


def _named_table(name: str, value: Any, where: str, spec: type[msgspec.Struct]) -> dict[str, Any]:
    """A `[section.NAME]` table: a usable name, and the keys `spec` allows."""
    if not name or not set(name) <= NAME_CHARS:
        raise ConfigError(f"{where}: a name may use letters, digits, '_', '.' and '-' only")
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: expected a table ([{where.rsplit(': ', 1)[-1]}])")
    try:
        msgspec.convert(dict(value), spec)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{where}: {_struct_problem(exc)}") from exc
    return dict(value)


def _struct_problem(exc: msgspec.ValidationError) -> str:
    """msgspec's "Expected `float`, got `str` - at `$.threshold`" as "threshold: expected ..."."""
    text, _, at = str(exc).partition(" - at `$")
    text = text.replace("`", "")
    field_name = at.rstrip("`").lstrip(".")
    text = text[:1].lower() + text[1:]
    return f"{field_name}: {text}" if field_name else text


def _parse_env_value(raw: str, default: Any = None) -> Any:
    """Environment values are TOML literals when they parse as one, else strings.

    A string setting takes the text as it is (TRADECONSOLE_GATEWAY__NODE=7 is
    the node "7"); a list setting also takes comma-separated text.
    """
    if isinstance(default, str):
        return raw
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        if isinstance(default, list):
            return [part.strip() for part in raw.split(",") if part.strip()]
        return raw


def _env_layers(
    env: Mapping[str, str], schema: Mapping[str, Any]
) -> list[tuple[str, dict[str, dict[str, Any]]]]:
    """One layer per variable, so errors and provenance name the variable."""
    layers = []
    for name in sorted(env):
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        section, _, key = name[len(ENV_PREFIX):].lower().partition("__")
        default = schema.get(section, {}).get(key) if section not in FREE_SECTIONS else ""
        value = _parse_env_value(env[name], default)
        layers.append((f"environment {name}", {section: {key: value}}))
    return layers


def _check_profiles(
    profiles: Any, where: str, schema: Mapping[str, Any]
) -> Mapping[str, Mapping[str, Any]]:
    """Check every profile up front, so a typo fails now, not when it is first used."""
    if not isinstance(profiles, Mapping):
        raise ConfigError(f"{where}: [profiles] must be a table of [profiles.NAME] tables")
    for name, body in profiles.items():
        source = f"{where} [profiles.{name}]"
        if not isinstance(body, Mapping):
            raise ConfigError(f"{source}: must be a table (e.g. [profiles.{name}.console])")
        if "profiles" in body:
            raise ConfigError(f"{source}: profiles cannot contain profiles")
        _merge_layer(_Merge.of_defaults(schema), body, source, schema)
    return profiles


def load_config(
    path: Path | str | None = None,
    *,
    profile: str | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    use_user_file: bool = True,
) -> Config:
    """Merge every layer; raise ConfigError on the first problem.

    `path` replaces the user file. `overrides` maps "section.key" to a value
    (command-line flags); None values are skipped so unset flags do not win.
    """
    defaults_path = default_config_path()
    schema = _read_toml(defaults_path)
    merge = _Merge.of_defaults(schema)
    files = [defaults_path]

    user_path = Path(path) if path is not None else (user_config_path() if use_user_file else None)
    user_layer: dict[str, Any] = {}
    if user_path is not None and (path is not None or user_path.is_file()):
        user_layer = _read_toml(user_path)
        files.append(user_path)
        _merge_layer(merge, user_layer, str(user_path), schema)

    profiles = _check_profiles(user_layer.get("profiles", {}), str(user_path), schema)
    env = os.environ if env is None else env
    profile = profile or env.get(f"{ENV_PREFIX}PROFILE") or None
    if profile:
        if profile not in profiles:
            names = ", ".join(sorted(profiles))
            where = user_path if user_path is not None else "the user config"
            raise ConfigError(
                f"{where}: no profile [profiles.{profile}] (defined: {names or 'none'})"
            )
        _merge_layer(merge, profiles[profile], f"{user_path} [profiles.{profile}]", schema)

    for source, layer in _env_layers(env, schema):
        _merge_layer(merge, layer, source, schema)

    if overrides:
        cli: dict[str, dict[str, Any]] = {}
        for dotted, value in overrides.items():
            if value is None:
                continue
            section, _, key = dotted.partition(".")
            cli.setdefault(section, {})[key] = value
        _merge_layer(merge, cli, "command line", schema)
    config = Config(settings=_typed(merge.values, defaults_path), values=merge.values,
                    sources=merge.sources, profile=profile, files=files)
    _check_network(config)
    return config


def _check_network(config: Config) -> None:
    """[network] values that cannot work together, named with where they came from."""
    problems = config.network.problems()
    if problems:
        source = config.source_of("network", "heartbeat_timeout_ms")
        raise ConfigError(f"{source}: [network] {problems[0]}")


def _typed(values: Mapping[str, Any], defaults_path: Path) -> Settings:
    """The merged values as `Settings`.

    Every layer was checked against the defaults already, so this fails only
    when the defaults file and the Structs of services/runtime/settings.py disagree.
    """
    try:
        return msgspec.convert(values, Settings)
    except msgspec.ValidationError as exc:
        raise ConfigError(
            f"{defaults_path}: does not match services/runtime/settings.py ({exc})"
        ) from exc


def load_for_args(args: Any, overrides: Mapping[str, Any] | None = None) -> Config:
    """Load config for a parsed command line (its --config, --profile, --log-level)."""
    merged: dict[str, Any] = {"logging.level": getattr(args, "log_level", None)}
    if overrides:
        merged.update(overrides)
    return load_config(
        getattr(args, "config", None), profile=getattr(args, "profile", None), overrides=merged
    )
