"""The installed version, from the package metadata (one source: pyproject.toml)."""

from __future__ import annotations

from importlib import metadata

DISTRIBUTION = "tradeconsole"


def version() -> str:
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:  # run from a tree that was never installed
        return "0+unknown"
