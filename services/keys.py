"""`tradeconsole keys generate|add`: CURVE certificates and the role allow-list.

Writes the server's and each client's certificates and copies every client's
public certificate into `DIR/authorized/<role>/`, the allow-list the services'
ZAP handler reads (see services/security/ and docs/security.md). Every key
is created in a private staging directory (0700, secrets 0600) before any file
is moved into place, so no other user can read a secret at any moment, and a
run that fails while generating leaves the old keys as they were.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import zmq.auth

from services.runtime.errors import UsageError
from services.security import (
    AUTHORIZED_DIR,
    CLIENT_NAME,
    PUBLIC_SUFFIX,
    ROLE_MONITOR,
    ROLE_PUBLISHER,
    ROLE_TRADER,
    ROLES,
    SECRET_SUFFIX,
    SERVER_NAME,
    require_curve,
)

# The clients a fresh key directory gets, as (name, role).
DEFAULT_CLIENTS: tuple[tuple[str, str], ...] = (
    (ROLE_TRADER, ROLE_TRADER),
    (ROLE_MONITOR, ROLE_MONITOR),
    (ROLE_PUBLISHER, ROLE_PUBLISHER),
)
DIR_MODE = 0o700
SECRET_MODE = 0o600
PUBLIC_MODE = 0o644


@dataclass(frozen=True)
class WrittenFile:
    """One file `generate_keys` wrote, for the summary it prints."""

    path: Path
    mode: int | None  # None: the file was removed
    note: str


def planned_files(
    clients: tuple[tuple[str, str], ...] = DEFAULT_CLIENTS, *, server: bool = True
) -> list[tuple[Path, str]]:
    """Every file a generation writes (relative to the key directory) and what it is for."""
    files = [
        (Path(f"{SERVER_NAME}{PUBLIC_SUFFIX}"), "server public key: every host needs it"),
        (Path(f"{SERVER_NAME}{SECRET_SUFFIX}"), "server secret: service hosts only"),
    ] if server else []
    for name, role in clients:
        files.append((Path(f"{name}{PUBLIC_SUFFIX}"), f"{name} public key"))
        files.append((Path(f"{name}{SECRET_SUFFIX}"), f"{name} secret: that client's host only"))
        files.append((Path(AUTHORIZED_DIR, role, f"{name}{PUBLIC_SUFFIX}"),
                      f"allow-list entry: {name} has role {role}"))
    return files


def _make_private_dir(path: Path) -> None:
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    path.chmod(DIR_MODE)


def generate_keys(
    directory: str | Path,
    *,
    force: bool = False,
    clients: tuple[tuple[str, str], ...] = DEFAULT_CLIENTS,
    server: bool = True,
) -> list[WrittenFile]:
    """Create the server (unless `server=False`) and client certificates and allow-list."""
    require_curve()
    root = Path(directory).expanduser()
    if root.exists() and not root.is_dir():
        raise UsageError(f"{root} exists and is not a directory")
    for name, role in clients:
        if not CLIENT_NAME.match(name) or name == SERVER_NAME:
            raise UsageError(f"client name {name!r} must be a plain name like alice or ops-1")
        if role not in ROLES:
            raise UsageError(f"role {role!r} is not one of {', '.join(ROLES)}")
    plan = planned_files(clients, server=server)
    # A replaced client loses its old allow-list entries under every role.
    stale = [
        Path(AUTHORIZED_DIR, other, f"{name}{PUBLIC_SUFFIX}")
        for name, role in clients for other in ROLES
        if other != role and (root / AUTHORIZED_DIR / other / f"{name}{PUBLIC_SUFFIX}").exists()
    ]
    existing = [str(rel) for rel, _ in plan if (root / rel).exists()] + [str(p) for p in stale]
    if existing and not force:
        raise UsageError(
            f"{root} already holds keys ({', '.join(existing[:3])}"
            f"{', ...' if len(existing) > 3 else ''}); add --force to replace them "
            f"(clients holding the old keys will then be refused)"
        )
    try:
        _make_private_dir(root)
        staging = Path(tempfile.mkdtemp(prefix=".keys-", dir=root))
    except OSError as exc:
        raise UsageError(f"cannot write keys to {root}: {exc.strerror}") from exc
    try:
        # Build the whole tree in the staging dir, then move file by file.
        names = ([SERVER_NAME] if server else []) + [n for n, _ in clients]
        for name in names:
            zmq.auth.create_certificates(staging, name)
            (staging / f"{name}{SECRET_SUFFIX}").chmod(SECRET_MODE)
            (staging / f"{name}{PUBLIC_SUFFIX}").chmod(PUBLIC_MODE)
        for name, role in clients:
            entry = staging / AUTHORIZED_DIR / role / f"{name}{PUBLIC_SUFFIX}"
            _make_private_dir(entry.parent)
            shutil.copyfile(staging / f"{name}{PUBLIC_SUFFIX}", entry)
            entry.chmod(PUBLIC_MODE)
        _make_private_dir(root / AUTHORIZED_DIR)
        written: list[WrittenFile] = []
        for rel, note in plan:
            target = root / rel
            _make_private_dir(target.parent)
            os.replace(staging / rel, target)
            written.append(WrittenFile(target, os.stat(target).st_mode & 0o777, note))
        for rel in stale:
            (root / rel).unlink()
            written.append(WrittenFile(root / rel, None, "removed: the old key's allow-list entry"))
    except OSError as exc:
        raise UsageError(f"cannot write keys to {root}: {exc}") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return written


def add_client(directory: str | Path, name: str, role: str, *, force: bool = False
               ) -> list[WrittenFile]:
    """Give one more client its own key pair and allow-list it under `role`."""
    root = Path(directory).expanduser()
    if not (root / f"{SERVER_NAME}{PUBLIC_SUFFIX}").is_file():
        raise UsageError(
            f"{root} is not a key directory (no {SERVER_NAME}{PUBLIC_SUFFIX}); "
            f"create one with: tradeconsole keys generate {root}"
        )
    return generate_keys(root, force=force, clients=((name, role),), server=False)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="keys_action", metavar="ACTION", required=True)
    generate = actions.add_parser(
        "generate", help="create server and client certificates and the allow-list",
        description="Create DIR (mode 0700) with the server's and the trader, monitor and "
        "publisher clients' CURVE certificates (secrets mode 0600) and the allow-list "
        "DIR/authorized/<role>/. See docs/security.md.",
    )
    generate.add_argument("dir", metavar="DIR", help="key directory to create")
    generate.add_argument("--force", action="store_true",
                          help="replace keys already in DIR")
    add = actions.add_parser(
        "add", help="add one client key pair and allow-list it",
        description="Create DIR/NAME.key and DIR/NAME.key_secret and allow-list the public "
        "key under DIR/authorized/ROLE/. Restart the services to admit it.",
    )
    add.add_argument("dir", metavar="DIR", help="key directory made by keys generate")
    add.add_argument("name", metavar="NAME", help="client name, e.g. alice")
    add.add_argument("--role", choices=ROLES, default=ROLE_MONITOR,
                     help=f"what the client may do (default {ROLE_MONITOR})")
    add.add_argument("--force", action="store_true", help="replace that client's keys")


def run(args: argparse.Namespace) -> int:
    root = Path(args.dir).expanduser()
    if args.keys_action == "add":
        written = add_client(root, args.name, args.role, force=args.force)
    else:
        written = generate_keys(root, force=args.force)
    print(f"wrote CURVE keys to {root} (mode {DIR_MODE:04o}):")
    for item in written:
        mode = "   -" if item.mode is None else f"{item.mode:04o}"
        print(f"  {mode}  {item.path.relative_to(root)!s:<36} {item.note}")
    if args.keys_action == "add":
        print(f"Copy {args.name}{SECRET_SUFFIX} and {SERVER_NAME}{PUBLIC_SUFFIX} to the "
              f"client's host; restart the services so that they admit it.")
    else:
        print("Services: --keys DIR with server.key_secret and authorized/. Clients: --keys "
              "DIR with server.key and their own NAME.key_secret (trader by default). "
              "More clients: tradeconsole keys add DIR NAME --role ROLE.")
    return 0
