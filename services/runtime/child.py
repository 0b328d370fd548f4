"""The entry point every console child process shares (the ingest, the gateway link).

A child is started by services.runtime.supervisor as `python -m MODULE
--control ENDPOINT --settings JSON`; its module's `main()` hands `run()` a
ChildEntry saying how to build its service. `run()` does the rest the same
way for every child: parse the arguments, ignore SIGINT and SIGHUP (the
parent decides when the child stops; the kernel ends it if the parent dies),
set up logging, connect the pipe, open the service and answer STARTED or
FAILED, serve until STOP or until the parent is gone, then close everything.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import zmq

from services.runtime.child_pipe import (
    FAILED,
    PARENT_CHECK_S,
    STARTED,
    STOP,
    decode_any,
    encode,
    failure_of,
)
from services.runtime.errors import UsageError
from services.runtime.sockets import message_waiting

log = logging.getLogger(__name__)


class ChildService(Protocol):
    """What a child runs: opened once, served until told to stop, closed once."""

    def open(self) -> None:
        """Connect its sockets; a UsageError or OSError here is the start's FAILED."""

    def serve(self) -> None:
        """Work until ChildEnd.handle_requests() returns False."""

    def close(self) -> None:
        """Close its sockets and files (also after a failed open)."""


@dataclass(frozen=True)
class ChildEntry:
    """What differs between children: names, and how to build the service."""

    prog: str                   # the module, as `python -m prog`
    description: str | None     # for --help
    log_name: str               # the log file's name when logging is configured
    build: Callable[[ChildEnd], ChildService]
    prepare: Callable[[dict[str, Any]], None] | None = None  # before build (priority...)


class ChildEnd:
    """The child's end of the pipe: its settings and the PAIR socket to the parent."""

    def __init__(self, prog: str, settings: dict[str, Any], endpoint: str) -> None:
        self.prog = prog
        self.settings = settings
        self.context = zmq.Context()
        self.control = self.context.socket(zmq.PAIR)
        self.control.setsockopt(zmq.LINGER, 1000)  # let the last answers leave
        self.control.connect(endpoint)
        self._parent = os.getppid()
        self._next_parent_check = time.monotonic() + PARENT_CHECK_S

    def reply(self, kind: bytes, body: Any) -> None:
        self.control.send_multipart([kind, encode(body)])

    def fail(self, exc: BaseException) -> None:
        """Answer FAILED with what `exc` was (usage, os, internal)."""
        self.reply(FAILED, failure_of(exc))

    def handle_requests(self, handle: Callable[[bytes, Any], None]) -> bool:
        """Pass every waiting request to `handle`; False on STOP or once the parent is gone.

        A request `handle` fails on is answered FAILED: the parent may be
        waiting for it.
        """
        control = self.control
        while True:
            # Asking first is cheaper than the zmq.Again a receive raises when empty,
            # and this runs on every turn of a receive loop.
            if not message_waiting(control):
                return self.parent_alive()
            try:
                frames = control.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return self.parent_alive()
            if len(frames) != 2:  # not the parent: ignore it
                continue
            kind, body = frames
            if kind == STOP:
                return False
            try:
                handle(kind, decode_any(body))
            except (UsageError, OSError) as exc:
                log.warning("%s: %r refused: %s", self.prog, kind[:32], exc)
                self.fail(exc)
            except Exception as exc:
                log.exception("%s: %r failed", self.prog, kind[:32])
                self.fail(exc)

    def parent_alive(self) -> bool:
        """False once the parent is gone (checked at most every PARENT_CHECK_S)."""
        now = time.monotonic()
        if now < self._next_parent_check:
            return True
        self._next_parent_check = now + PARENT_CHECK_S
        if os.getppid() != self._parent:
            log.warning("%s: the parent process is gone; exiting", self.prog)
            return False
        return True

    def close(self) -> None:
        self.control.close()
        self.context.term()


def run(entry: ChildEntry, argv: list[str] | None = None) -> int:
    """A child's whole life; the exit code (0 stopped, 2 usage, 1 anything else)."""
    parser = argparse.ArgumentParser(prog=entry.prog, description=entry.description)
    parser.add_argument("--control", required=True, help="the parent's PAIR endpoint")
    parser.add_argument("--settings", required=True, help="JSON: what the child needs")
    args = parser.parse_args(argv)
    for sig in (signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    settings = json.loads(args.settings)
    _setup_logging(entry.log_name, settings)
    if entry.prepare is not None:
        entry.prepare(settings)
    end = ChildEnd(entry.prog, settings, args.control)
    service: ChildService | None = None
    try:
        try:
            service = entry.build(end)
            service.open()
        except (UsageError, OSError) as exc:
            end.fail(exc)
            return 2 if isinstance(exc, UsageError) else 1
        end.reply(STARTED, {"pid": os.getpid()})
        service.serve()
        return 0
    except Exception as exc:  # logged and reported; the parent restarts us
        log.exception("%s failed", entry.prog)
        with contextlib.suppress(zmq.ZMQError):
            end.fail(exc)
        return 1
    finally:
        if service is not None:
            service.close()
        end.close()


def _setup_logging(name: str, settings: dict[str, Any]) -> None:
    level = settings.get("log_level")
    if not level:
        return
    from services.runtime.logsetup import setup_logging

    # The parent already checked these; never fail to start over a log file.
    with contextlib.suppress(OSError, UsageError):
        setup_logging(name, level, settings.get("log_dir") or "", stderr=False)
