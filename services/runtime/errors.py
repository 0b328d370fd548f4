"""Errors that end a command with one line of explanation and exit code 2."""

from __future__ import annotations


class UsageError(Exception):
    """Bad flag, config value or endpoint: say what is wrong and how to fix it."""

    exit_code = 2
