"""Imports follow the architecture: cli → ui → watch → feed / link → model → services.

Every import in the shipped packages is read from the source (lazy imports
inside functions included) and checked against the one-way layer order of
docs/architecture.md, so a module that reaches back up (a service importing the
console, the feed importing the UI) fails here with its file and line.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("console", "services", "themes")

# Layer -> the layers it may import (its own layer is always allowed).
ALLOWED: dict[str, frozenset[str]] = {
    "services.runtime": frozenset({"services.protocol"}),
    "services.protocol": frozenset(),
    "services": frozenset({"services.runtime", "services.protocol"}),
    "themes": frozenset(),
    "console.model": frozenset({"services", "services.runtime", "services.protocol"}),
    "console.feed": frozenset({"console.model", "services", "services.runtime",
                               "services.protocol"}),
    "console.link": frozenset({"console.model", "services", "services.runtime",
                               "services.protocol"}),
    "console.watch": frozenset({"console.feed", "console.link", "console.model", "services",
                                "services.runtime", "services.protocol"}),
    "console.ui": frozenset({"console.watch", "console.feed", "console.link", "console.model",
                             "themes", "services", "services.runtime", "services.protocol"}),
    "console.cli": frozenset({"console.ui", "console.watch", "console.feed", "console.link",
                              "console.model", "themes", "services", "services.runtime",
                              "services.protocol"}),
    "console": frozenset({"console.cli"}),  # console/__main__.py runs the command line
}


def layer_of(module: str) -> str | None:
    """The most specific layer a dotted module name belongs to (None: outside the project)."""
    best = None
    for layer in ALLOWED:
        if (module == layer or module.startswith(layer + ".")) and (
                best is None or len(layer) > len(best)):
            best = layer
    return best


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(source: str, module: str, is_package: bool) -> list[tuple[int, str]]:
    """(line, imported module) for every import statement, relative ones resolved."""
    found = []
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.append((node.lineno, base))
            # `from console.ui import format` imports console.ui.format
            found.extend((node.lineno, f"{base}.{alias.name}") for alias in node.names)
    return found


def violations(source: str, module: str, is_package: bool = False) -> list[str]:
    """Imports of `module` that go against the layer order."""
    own = layer_of(module)
    if own is None:
        return []
    allowed = ALLOWED[own] | {own}
    bad = []
    for line, target in imports_of(source, module, is_package):
        target_layer = layer_of(target)
        if target_layer is None or target_layer in allowed:
            continue
        bad.append(f"{module}:{line} imports {target} ({own} may not import {target_layer})")
    return bad


def project_modules() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def test_every_module_is_in_a_layer() -> None:
    outside = [module_name(p) for p in project_modules() if layer_of(module_name(p)) is None]
    assert outside == []


@pytest.mark.parametrize("path", project_modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_go_one_way(path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    assert violations(source, module_name(path), path.name == "__init__.py") == []


@pytest.mark.parametrize(("module", "source"), [
    ("services.gateway", "from console.model import Reply\n"),
    ("services.protocol", "def f():\n    import services.publisher\n"),
    ("console.feed.book", "from console.ui import format as fmt\n"),
    ("console.link.client", "from console.feed.ingest import Ingest\n"),
    ("console.model", "from console.link import wire\n"),
    ("console.ui.app", "from console.cli.run import main\n"),
    ("services.runtime.config", "from ..gateway import serve\n"),
])
def test_a_backward_import_is_caught(module: str, source: str) -> None:
    assert violations(source, module) != []


def test_forward_imports_pass() -> None:
    source = ("from console.feed.book import FeedBook\nfrom console.link import client\n"
              "from services import protocol as p\nfrom themes import PROJECT_THEMES\n")
    assert violations(source, "console.ui.app") == []
