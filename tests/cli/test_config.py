"""Layered config and `tradeconsole config init|show|path`, through the real command line.

Every CLI test points XDG_CONFIG_HOME at a temporary directory, so the user
file is the test's own.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import msgspec
import msgspec.inspect as mi
import pytest

from console.cli.config_cmd import commented_defaults
from services.runtime.config import (
    FREE_SECTIONS,
    NAMED_SECTIONS,
    NAMED_TABLES,
    ConfigError,
    default_config_path,
    load_config,
)
from services.runtime.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DEFAULTS: dict[str, dict[str, Any]] = tomllib.loads(default_config_path().read_text())


@pytest.fixture
def xdg(tmp_path: Path) -> Path:
    return tmp_path / "xdg"


@pytest.fixture
def user_file(xdg: Path) -> Path:
    return xdg / "tradeconsole" / "config.toml"


def run_cli(xdg: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TRADECONSOLE_")}
    clean.update(XDG_CONFIG_HOME=str(xdg), **env)
    return subprocess.run(
        [sys.executable, "-m", "console", *args],
        capture_output=True, text=True, timeout=60, env=clean,
    )


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def assert_one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


# --- config path / init ----------------------------------------------------------------


def test_path_names_the_user_file_under_xdg(xdg: Path, user_file: Path) -> None:
    result = run_cli(xdg, "config", "path")
    assert result.returncode == 0
    assert result.stdout.strip() == str(user_file)
    assert "does not exist" in result.stderr
    write(user_file, "")
    assert run_cli(xdg, "config", "path").stderr.strip() == "exists"


def test_init_writes_every_default_with_its_comment(xdg: Path, user_file: Path) -> None:
    result = run_cli(xdg, "config", "init")
    assert result.returncode == 0, result.stderr
    assert str(user_file) in result.stdout
    text = user_file.read_text()
    assert tomllib.loads(text) == DEFAULTS
    for comment in ("# Frames per second at which the UI applies", "# Largest frame any socket",
                    "# [profiles.fast.console]"):
        assert comment in text


def test_init_refuses_to_overwrite_without_force(xdg: Path, user_file: Path) -> None:
    write(user_file, "[console]\nfps = 5\n")
    assert_one_line_error(run_cli(xdg, "config", "init"), str(user_file), "--force")
    assert user_file.read_text() == "[console]\nfps = 5\n"
    assert run_cli(xdg, "config", "init", "--force").returncode == 0
    assert tomllib.loads(user_file.read_text()) == DEFAULTS


def test_init_honours_config_file(xdg: Path, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere" / "tc.toml"
    assert run_cli(xdg, "config", "init", "--config", str(target)).returncode == 0
    assert tomllib.loads(target.read_text()) == DEFAULTS


def test_commented_defaults_parse_back_to_the_same_values() -> None:
    values = {"console": {"fps": 7, "theme": 'q"uote'}, "endpoints": {"feeds": ["a", "b"]}}
    text = "# header\n\n[console]\n# fps comment\nfps = 20\ntheme = \"x\"\n[endpoints]\n"
    rendered = commented_defaults(text, values)
    assert tomllib.loads(rendered) == values
    assert "# fps comment\nfps = 7" in rendered


# --- config show ------------------------------------------------------------------------


def show_json(xdg: Path, *args: str, **env: str) -> dict[str, Any]:
    result = run_cli(xdg, "config", "show", "--json", *args, **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_show_says_where_every_value_came_from(xdg: Path, user_file: Path) -> None:
    write(user_file, "[console]\nfps = 25\ntheme = \"mine\"\nreadonly = false\n"
                     "[profiles.fast.console]\ntheme = \"fast-theme\"\nhistory_s = 30\n")
    shown = show_json(xdg, "--profile", "fast", "--log-level", "DEBUG",
                      TRADECONSOLE_CONSOLE__HISTORY_S="60")
    settings = shown["settings"]
    assert settings["console"]["fps"] == {"value": 25, "source": str(user_file)}
    assert settings["console"]["theme"] == {
        "value": "fast-theme", "source": f"{user_file} [profiles.fast]"}
    assert settings["console"]["history_s"] == {
        "value": 60, "source": "environment TRADECONSOLE_CONSOLE__HISTORY_S"}
    assert settings["logging"]["level"] == {"value": "DEBUG", "source": "command line"}
    assert settings["console"]["rcvhwm"]["source"] == "default"
    assert settings["console"]["readonly"]["source"] == f"{user_file} (same as default)"
    assert shown["profile"] == "fast"
    assert shown["files"][-1] == str(user_file)


def test_show_prints_toml_with_sources(xdg: Path) -> None:
    result = run_cli(xdg, "config", "show", TRADECONSOLE_CONSOLE__FPS="30")
    assert result.returncode == 0, result.stderr
    assert re.search(r"^fps = 30 +# environment TRADECONSOLE_CONSOLE__FPS$", result.stdout, re.M)
    assert re.search(r"^rcvhwm = 1000000 +# default$", result.stdout, re.M)
    stripped = re.sub(r"  +# .*$", "", result.stdout, flags=re.M)
    assert tomllib.loads(stripped)["console"]["fps"] == 30


def test_profile_from_the_environment(xdg: Path, user_file: Path) -> None:
    write(user_file, "[profiles.slow.console]\nfps = 2\n")
    shown = show_json(xdg, TRADECONSOLE_PROFILE="slow")
    assert shown["settings"]["console"]["fps"]["value"] == 2


@pytest.mark.parametrize(
    ("body", "needles"),
    [
        ("[console]\nfsp = 30\n", ("console.fsp", "unknown key", "did you mean fps")),
        ("[console]\nfps = \"fast\"\n", ("console.fps", "expected integer")),
        ("[consol]\nfps = 30\n", ("unknown section [consol]",)),
        ("[console]\nstale_after_s = nan\n", ("console.stale_after_s", "finite")),
        ("[endpoints]\nfeeds = [1, 2]\n", ("endpoints.feeds", "list of strings")),
        ("[profiles.fast.console]\nfsp = 60\n", ("[profiles.fast]", "console.fsp")),
        ("[profiles]\nfast = 3\n", ("[profiles.fast]", "must be a table")),
        ("[console\n", ("not valid TOML",)),
    ],
    ids=["unknown-key", "wrong-type", "unknown-section", "nan", "list-type", "profile-key",
         "profile-shape", "syntax"],
)
def test_bad_user_file_is_one_line_naming_key_and_file(
    xdg: Path, user_file: Path, body: str, needles: tuple[str, ...]
) -> None:
    write(user_file, body)
    assert_one_line_error(run_cli(xdg, "config", "show"), str(user_file), *needles)


def test_unknown_profile_lists_the_defined_ones(xdg: Path, user_file: Path) -> None:
    write(user_file, "[profiles.fast.console]\nfps = 60\n")
    assert_one_line_error(run_cli(xdg, "config", "show", "--profile", "slow"),
                          "[profiles.slow]", "defined: fast")


def test_bad_environment_value_names_the_variable(xdg: Path) -> None:
    assert_one_line_error(run_cli(xdg, "config", "show", TRADECONSOLE_CONSOLE__FPS="abc"),
                          "TRADECONSOLE_CONSOLE__FPS", "expected integer")


def test_missing_config_file_is_one_line(xdg: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    assert_one_line_error(run_cli(xdg, "config", "show", "--config", str(missing)),
                          str(missing), "not found")


def test_config_without_action_is_one_line(xdg: Path) -> None:
    assert_one_line_error(run_cli(xdg, "config"))


# --- the merge, in process ----------------------------------------------------------------


def test_environment_strings_stay_strings() -> None:
    config = load_config(use_user_file=False, env={"TRADECONSOLE_GATEWAY__NODE": "7"})
    assert config.get("gateway", "node") == "7"


def test_environment_lists_take_commas_or_toml() -> None:
    commas = load_config(use_user_file=False,
                         env={"TRADECONSOLE_ENDPOINTS__FEEDS": "tcp://a:1, tcp://b:2"})
    toml = load_config(use_user_file=False,
                       env={"TRADECONSOLE_ENDPOINTS__FEEDS": '["tcp://a:1", "tcp://b:2"]'})
    assert commas.get("endpoints", "feeds") == toml.get("endpoints", "feeds") == [
        "tcp://a:1", "tcp://b:2"]


def test_layers_override_in_order(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", "[console]\nfps = 1\nhistory_s = 1\nrcvhwm = 1\n"
                 "max_symbols = 1\n[profiles.p.console]\nhistory_s = 2\nrcvhwm = 2\n"
                 "max_symbols = 2\n")
    config = load_config(
        path, profile="p",
        env={"TRADECONSOLE_CONSOLE__RCVHWM": "3", "TRADECONSOLE_CONSOLE__MAX_SYMBOLS": "3"},
        overrides={"console.max_symbols": 4, "console.fps": None},
    )
    assert [config.get("console", k) for k in ("fps", "history_s", "rcvhwm", "max_symbols")] \
        == [1, 2, 3, 4]
    assert config.source_of("console", "max_symbols") == "command line"


def test_an_unused_bad_profile_is_still_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", "[profiles.unused.console]\nfps = \"x\"\n")
    with pytest.raises(ConfigError, match=r"\[profiles\.unused\].*console\.fps"):
        load_config(path, env={})


def test_docs_describe_every_key() -> None:
    docs = (ROOT / "docs" / "config.md").read_text()
    for section, body in DEFAULTS.items():
        assert f"[{section}]" in docs, section
        for key in body:
            assert f"`{key}`" in docs, f"{section}.{key}"


def test_log_level_must_be_a_known_level(xdg: Path) -> None:
    assert_one_line_error(run_cli(xdg, "config", "show", "--log-level", "LOUD"),
                          "logging.level", "DEBUG, INFO, WARNING, ERROR")


# --- typed settings -----------------------------------------------------------------------

# The msgspec type that stands for each TOML value type of the defaults file.
TOML_TYPES: dict[type, type[mi.Type]] = {
    bool: mi.BoolType, int: mi.IntType, float: mi.FloatType, str: mi.StrType,
    list: mi.VarTupleType,
}


def _fields(struct: type[msgspec.Struct]) -> dict[str, mi.Type]:
    info = mi.type_info(struct)
    assert isinstance(info, mi.StructType)
    return {f.name: f.type for f in info.fields}


def test_settings_structs_match_the_defaults_file() -> None:
    sections = _fields(Settings)
    assert set(sections) == set(DEFAULTS) | FREE_SECTIONS
    for name in FREE_SECTIONS:
        free = sections.pop(name)
        assert isinstance(free, mi.DictType), name
        assert isinstance(free.key_type, mi.StrType) and isinstance(free.value_type, mi.StrType)
    for name, spec in NAMED_SECTIONS.items():  # free names, each a table of one struct
        named = sections.pop(name)
        assert isinstance(named, mi.DictType), name
        assert isinstance(named.value_type, mi.StructType) and named.value_type.cls is spec
        assert DEFAULTS[name] == {}, name
    for name, section in sections.items():
        assert isinstance(section, mi.StructType), name
        fields = _fields(section.cls)
        assert set(fields) == set(DEFAULTS[name]), name
        for key, value in DEFAULTS[name].items():
            assert isinstance(fields[key], TOML_TYPES[type(value)]), f"{name}.{key}"
            spec = NAMED_TABLES.get(f"{name}.{key}")
            if spec is not None:  # an array of tables, each checked by its own struct
                assert isinstance(fields[key].item_type, mi.StructType), f"{name}.{key}"
                assert fields[key].item_type.cls is spec
                for table in value:
                    msgspec.convert(table, spec)
            elif isinstance(value, list):
                assert isinstance(fields[key].item_type, mi.StrType), f"{name}.{key}"


def test_settings_hold_the_merged_values(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", "[publisher]\nrate = 5\n[keys]\nquit = \"ctrl+q\"\n")
    config = load_config(path, env={"TRADECONSOLE_ENDPOINTS__FEEDS": "tcp://a:1,tcp://b:2",
                                    "TRADECONSOLE_CONSOLE__FPS": "33"})
    settings = config.settings
    assert settings.console.fps == config.get("console", "fps") == 33
    assert settings.publisher.rate == 5.0 and isinstance(settings.publisher.rate, float)
    assert settings.endpoints.feeds == ("tcp://a:1", "tcp://b:2")
    assert settings.keys == {"quit": "ctrl+q"}
    as_json = msgspec.json.encode
    for section, body in config.values.items():
        typed = getattr(settings, section)
        for dotted, spec in NAMED_TABLES.items():
            if dotted.startswith(f"{section}."):  # tables as written, with the struct's defaults
                key = dotted.partition(".")[2]
                body = {**body, key: [msgspec.convert(t, spec) for t in body[key]]}
        assert as_json(typed) == as_json(body), section
    with pytest.raises(AttributeError):
        settings.console.fps = 1  # type: ignore[misc]
