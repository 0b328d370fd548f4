"""Logging to the user log dir with rotation, plus stderr for warnings."""

from __future__ import annotations

import logging
import logging.handlers
from pathlib import Path

from services.runtime.config import user_log_dir
from services.runtime.errors import UsageError

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def setup_logging(
    name: str, level: str = "INFO", log_dir: str | Path = "", *, stderr: bool = True
) -> Path:
    """Log `name` to DIR/name.log (5 x 2 MiB). Returns the log file path."""
    level = level.upper()
    if level not in LEVELS:
        raise UsageError(f"log level {level!r} is not one of {', '.join(LEVELS)}")
    directory = Path(log_dir) if log_dir else user_log_dir()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.log"
    root = logging.getLogger()
    root.setLevel(level)
    for handler in list(root.handlers):
        root.removeHandler(handler)
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    rotating = logging.handlers.RotatingFileHandler(
        path, maxBytes=2 * 1024 * 1024, backupCount=5, encoding="utf-8"
    )
    rotating.setFormatter(fmt)
    root.addHandler(rotating)
    if stderr:
        err = logging.StreamHandler()
        err.setLevel(logging.WARNING)
        err.setFormatter(fmt)
        root.addHandler(err)
    return path
