"""`bench/soak.py`: minutes of random faults against real services, then proof nothing was lost.

    python bench/soak.py --minutes 2 [--seed S] [--json OUT] [--rate R] [--keep]

A publisher, a gateway (pricing from that publisher) and the console's own
data layer (`Ingest` on the publisher's feed, recording every frame it gets;
`GatewayClient` sending commands) run for `--minutes`. Faults are injected at
random, every kind once per round in a seeded random order: kill -9 and
restart the publisher on its port, freeze it (SIGSTOP, then SIGCONT), kill -9
and restart the gateway on its ports, an order flood (sometimes with a gateway
kill -9 in the middle of it), and a kill/resume cycle (sometimes with a
gateway kill -9 while halted).

Then the books are checked, exactly:

- feed: per publisher epoch, every sequence number up to the last one the
  publisher is known to have sent is either received, counted as a gap, or
  was sent before this subscriber had (re)joined (`1 .. first seen - 1`:
  PUB/SUB cannot deliver to a peer not yet connected, and the protocol resets
  baselines on a restart). Ingest's own counters (received, gaps, restarts,
  duplicates) must equal the ones recomputed from the frames it recorded.
  The publisher's telemetry proves seq numbers are real sends (`seq ==
  sent_total + send_errors + 1` on every metrics message). The last epoch
  ends with a clean stop whose final message carries the last seq, so it is
  accounted to the end; a killed epoch's tail after the last message
  received died in flight with the process and is reported as unknowable.
- gateway: every state-changing command that got a SUCCESS reply has exactly
  one applied line in `audit.jsonl` (lines a crash left unapplied, listed by
  the gateway's RECOVERY record, do not count); a command that got no reply is
  retried with the same req_id until it gets one; `state.json` and
  `audit.jsonl` parse whole after every kill -9; a halt survives a restart.

Prints a summary table, writes everything as JSON with `--json OUT`, and
exits 0 only if every check held (1 otherwise, 2 for bad arguments).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from console.cli.run import make_gateway_client
from console.feed.ingest import Ingest
from console.link.client import GatewayClient
from console.model import FEED_DOWN, FEED_OK, FEED_STALE, GW_LATE, GW_UP, FeedRow, Reply
from services.protocol import (
    BUY,
    CLOSE_POSITION,
    FLATTEN,
    GET_STATUS,
    HALTED,
    HEALTH_DOWN,
    KILL_SWITCH,
    MARKET,
    OPEN_ORDER,
    RESUME_TRADING,
    SELL,
    STATE_CHANGING_ACTIONS,
    SUCCESS,
    DecodeError,
    unpack_map,
)
from services.recording import read_recording
from services.runtime.config import Config, load_config
from services.runtime.launcher import ServiceProcess, spawn
from services.store import AUDIT_FILE, STATE_FILE

ANY_PORT = "tcp://127.0.0.1:*"
FAULTS = ("publisher_kill", "publisher_freeze", "gateway_kill", "order_flood", "kill_resume")
NODE = "pub-1"
DEADLINE_S = 20.0           # longest wait for any recovery
FAULT_GAP_S = (1.5, 5.0)    # quiet time between two faults
FREEZE_S = (1.0, 5.0)       # how long a SIGSTOP lasts
FLOOD_SIZE = 150
MAX_TRIES = 30              # deliveries tried per command (same req_id) before giving up
STALE_AFTER_S = 2.5


def wait_for(predicate: Callable[[], Any], timeout: float = DEADLINE_S) -> Any:
    """Poll until truthy or the deadline; returns the last value (falsy on timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.02)


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


class Checks:
    """Every check the soak makes, in order; the run passes only if all hold."""

    def __init__(self) -> None:
        self.items: list[Check] = []

    def add(self, name: str, ok: bool, detail: str = "") -> bool:
        self.items.append(Check(name, bool(ok), detail))
        if not ok:
            print(f"  FAILED: {name}: {detail}", flush=True)
        return bool(ok)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.items)


# --- the services ----------------------------------------------------------------------


class Fabric:
    """Publisher and gateway processes; restarts keep their endpoints and state."""

    def __init__(self, workdir: Path, config_file: Path, rate: float, seed: int) -> None:
        self.workdir = workdir
        self.config_file = config_file
        self.rate = rate
        self.seed = seed
        self.state_dir = workdir / "gw-state"
        self.spawned = 0
        self.epochs: list[dict[str, Any]] = []  # publisher epochs: epoch, ended
        self.publisher = self._spawn("publisher", "--bind", ANY_PORT, *self._pub_args())
        self.pub_ep: str = self.publisher.endpoints["pub"]
        self.epochs.append({"epoch": self.publisher.endpoints["epoch"], "ended": "running"})
        self.gateway = self._spawn("gateway", "--bind", ANY_PORT, "--pub-bind", ANY_PORT,
                                   *self._gw_args())
        self.cmd_ep: str = self.gateway.endpoints["cmd"]
        self.gw_pub_ep: str = self.gateway.endpoints["pub"]

    def _pub_args(self) -> list[str]:
        return ["--rate", f"{self.rate:g}", "--symbols", "10", "--seed", str(self.seed or 1)]

    def _gw_args(self) -> list[str]:
        return ["--state-dir", str(self.state_dir), "--feed", self.pub_ep]

    def _spawn(self, name: str, *args: str) -> ServiceProcess:
        self.spawned += 1
        log = self.workdir / f"{name}-{self.spawned}.log"
        return spawn(name, [name, "--config", str(self.config_file), *args], log_path=log,
                     timeout=DEADLINE_S)

    def kill_publisher(self) -> None:
        self.publisher.signal(signal.SIGKILL)
        self.publisher.popen.wait(10)
        self.publisher.stop()
        self.epochs[-1]["ended"] = "kill -9"

    def restart_publisher(self) -> None:
        self.publisher = self._spawn("publisher", "--bind", self.pub_ep, *self._pub_args())
        self.epochs.append({"epoch": self.publisher.endpoints["epoch"], "ended": "running"})

    def kill_gateway(self) -> None:
        self.gateway.signal(signal.SIGKILL)
        self.gateway.popen.wait(10)
        self.gateway.stop()

    def restart_gateway(self) -> None:
        self.gateway = self._spawn("gateway", "--bind", self.cmd_ep, "--pub-bind",
                                   self.gw_pub_ep, *self._gw_args())

    def stop(self) -> None:
        for proc in (self.gateway, self.publisher):
            proc.signal(signal.SIGCONT)
            proc.stop()
        if self.epochs and self.epochs[-1]["ended"] == "running":
            self.epochs[-1]["ended"] = "clean stop"


def check_state_files(state_dir: Path) -> tuple[bool, str]:
    """state.json is one whole JSON object; every audit.jsonl line is whole JSON."""
    problems = []
    try:
        state = json.loads((state_dir / STATE_FILE).read_text(encoding="utf-8"))
        if not isinstance(state, dict):
            problems.append("state.json is not an object")
    except (OSError, ValueError) as exc:
        problems.append(f"state.json: {exc}")
    lines = 0
    try:
        data = (state_dir / AUDIT_FILE).read_bytes()
    except OSError as exc:
        return False, f"audit.jsonl: {exc}"
    if data and not data.endswith(b"\n"):
        problems.append("audit.jsonl ends with a torn line")
    for number, line in enumerate(data.splitlines(), 1):
        if not line.strip():
            continue
        lines += 1
        try:
            json.loads(line)
        except ValueError:
            problems.append(f"audit.jsonl line {number} is not whole JSON")
    return not problems, "; ".join(problems) or f"state.json ok, {lines} audit lines ok"


# --- commands -------------------------------------------------------------------------


@dataclass
class Command:
    action: str
    payload: dict[str, Any]
    req_id: str = ""
    tries: int = 0
    reply: Reply | None = None
    done: threading.Event = field(default_factory=threading.Event)


class Ledger:
    """Every state-changing command sent, retried with its req_id until it gets a reply."""

    def __init__(self, client: GatewayClient) -> None:
        self.client = client
        self.commands: dict[str, Command] = {}
        self._lock = threading.Lock()

    def send(self, action: str, payload: dict[str, Any]) -> Command:
        command = Command(action, payload)
        self._submit(command)
        return command

    def _submit(self, command: Command) -> None:
        command.tries += 1
        req_id = self.client.request(command.action, command.payload,
                                     req_id=command.req_id or None,
                                     on_reply=lambda reply: self._on_reply(command, reply))
        if not command.req_id:
            command.req_id = req_id
            with self._lock:
                self.commands[req_id] = command

    def _on_reply(self, command: Command, reply: Reply) -> None:
        """Runs on the client thread: keep the outcome, or retry an undelivered one."""
        if not reply.delivered and command.tries < MAX_TRIES:
            time.sleep(0.2)  # the client thread paces retries to a dead gateway
            self._submit(command)
            return
        command.reply = reply
        command.done.set()

    def outstanding(self) -> int:
        with self._lock:
            return sum(1 for c in self.commands.values() if not c.done.is_set())

    def all(self) -> list[Command]:
        with self._lock:
            return list(self.commands.values())


def audit_index(state_dir: Path) -> Counter[tuple[str, str, str]]:
    """(req_id, action, status) of every applied audit line (RECOVERY-listed ones excluded)."""
    records = []
    unapplied: set[int] = set()
    with (state_dir / AUDIT_FILE).open("rb") as fh:
        for line in fh:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if not isinstance(record, dict):
                continue
            if record.get("action") == "RECOVERY":
                unapplied.update(s for s in record.get("unapplied_seqs", []) if type(s) is int)
            records.append(record)
    return Counter((str(r.get("req_id")), str(r.get("action")), str(r.get("status")))
                   for r in records if r.get("seq") not in unapplied and r.get("req_id"))


# --- the feed's books -------------------------------------------------------------------


@dataclass
class EpochTally:
    epoch: int
    ended: str = "?"
    first_seq: int = 0
    last_seq: int = 0
    received: int = 0
    gaps: int = 0
    duplicates: int = 0
    last_sent_total: int | None = None   # from the latest metrics message
    metrics_seen: int = 0
    metrics_inconsistent: int = 0
    final_health: str | None = None      # status/detail of the last message, if health

    @property
    def before_join(self) -> int:
        return self.first_seq - 1

    @property
    def accounted(self) -> int:
        return self.before_join + self.received + self.gaps


def tally_recording(path: Path) -> tuple[list[EpochTally], int, int]:
    """Per-epoch counts recomputed from the frames ingest recorded; (tallies, frames, bad)."""
    epochs: dict[int, EpochTally] = {}
    frames = bad = 0
    for record in read_recording(path):
        frames += 1
        try:
            body = unpack_map(record.payload)
            epoch, seq = body["epoch"], body["seq"]
            topic = record.topic.decode("utf-8")
        except (DecodeError, KeyError, UnicodeDecodeError):
            bad += 1
            continue
        tally = epochs.get(epoch)
        if tally is None:
            tally = epochs[epoch] = EpochTally(epoch, first_seq=seq, last_seq=seq - 1)
        if seq <= tally.last_seq:
            tally.duplicates += 1
        else:
            tally.gaps += seq - tally.last_seq - 1
            tally.last_seq = seq
        tally.received += 1
        tally.final_health = None
        if topic == f"telemetry.metrics.{NODE}":
            tally.metrics_seen += 1
            tally.last_sent_total = body.get("sent_total")
            if seq != body.get("sent_total", -1) + body.get("send_errors", 0) + 1:
                tally.metrics_inconsistent += 1
        elif topic == f"telemetry.health.{NODE}":
            tally.final_health = f"{body.get('status')}: {body.get('detail')}"
    return list(epochs.values()), frames, bad


# --- the soak -----------------------------------------------------------------------------


class Soak:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.rng = random.Random(args.seed)
        self.checks = Checks()
        self.faults: Counter[str] = Counter()
        self.workdir = workdir
        self.config_file = workdir / "soak.toml"
        # Services and clients read only this file: no user config changes the run.
        self.config_file.write_text(f"[logging]\ndir = {json.dumps(str(workdir / 'logs'))}\n")
        self.config: Config = load_config(self.config_file, env={})
        self.recording = workdir / "feed.tcrec"
        self.fabric = Fabric(workdir, self.config_file, args.rate, args.seed)
        self.ingest = Ingest([self.fabric.pub_ep], config=self.config,
                             stale_after_s=STALE_AFTER_S, record_path=self.recording)
        self.ingest.start()
        self.client = make_gateway_client(self.fabric.cmd_ep, self.config, client_id="soak")
        self.client.start()
        self.ledger = Ledger(self.client)
        self.symbols: list[str] = []
        self.latch_checks = 0

    # --- helpers

    def feed(self) -> FeedRow:
        return self.ingest.drain().feeds[0]

    def gateway_up(self) -> bool:
        return self.client.status().state in (GW_UP, GW_LATE)

    def ask(self, action: str, payload: dict[str, Any] | None = None) -> Reply | None:
        """A read request through the client; None if no outcome within the deadline."""
        replies: list[Reply] = []
        self.client.request(action, payload, on_reply=replies.append)
        return wait_for(lambda: replies[0] if replies else None)

    def say(self, text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)

    # --- faults

    def publisher_kill(self) -> None:
        restarts = self.feed().restarts
        self.fabric.kill_publisher()
        self.fabric.restart_publisher()
        seen = wait_for(lambda: self.feed().restarts == restarts + 1)
        self.checks.add("publisher restart recognised by its epoch", seen,
                        f"restarts {restarts} -> {self.feed().restarts}")

    def publisher_freeze(self) -> None:
        seconds = self.rng.uniform(*FREEZE_S)
        self.fabric.publisher.signal(signal.SIGSTOP)
        stale = False
        deadline = time.monotonic() + seconds
        try:
            while time.monotonic() < deadline:
                # STALE first; DOWN once the heartbeat timeout closed the connection.
                stale = stale or self.feed().state in (FEED_STALE, FEED_DOWN)
                time.sleep(0.05)
        finally:
            self.fabric.publisher.signal(signal.SIGCONT)
        if seconds > STALE_AFTER_S + 1.0:
            self.checks.add(f"frozen {seconds:.1f} s shows STALE or DOWN", stale)
        recovered = wait_for(lambda: self.feed().state == FEED_OK)
        self.checks.add("feed OK again after SIGCONT", recovered)

    def gateway_kill(self) -> None:
        self.fabric.kill_gateway()
        ok, detail = check_state_files(self.fabric.state_dir)
        self.checks.add("state files whole after gateway kill -9", ok, detail)
        self.fabric.restart_gateway()
        self.checks.add("gateway client UP again after restart", wait_for(self.gateway_up))

    def order_flood(self) -> None:
        if not self.symbols:
            self.symbols = sorted(self.ingest.all_rows())
        flood = [self.ledger.send(OPEN_ORDER, {
            "vt_symbol": self.rng.choice(self.symbols), "side": self.rng.choice((BUY, SELL)),
            "qty": 1.0, "type": MARKET}) for _ in range(FLOOD_SIZE)]
        if self.symbols and self.rng.random() < 0.5:
            self.ledger.send(CLOSE_POSITION, {"vt_symbol": self.rng.choice(self.symbols)})
        if self.rng.random() < 0.5:
            # Crash the gateway with part of the flood answered and the rest in flight.
            answered = self.rng.randint(1, FLOOD_SIZE // 2)
            wait_for(lambda: sum(c.done.is_set() for c in flood) >= answered)
            self.gateway_kill()
            self.faults["gateway_kill (mid-flood)"] += 1

    def kill_resume(self) -> None:
        kill = self.ledger.send(KILL_SWITCH, {"reason": "soak", "mode": FLATTEN})
        if not kill.done.wait(DEADLINE_S * 3) or kill.reply is None or not kill.reply.ok:
            self.checks.add("kill switch answered", False, repr(kill.reply))
            return
        incident = kill.reply.data["incident_id"]
        if self.rng.random() < 0.5:
            self.gateway_kill()
            self.faults["gateway_kill (while halted)"] += 1
            status = self.ask(GET_STATUS)
            held = status is not None and status.ok and \
                (status.data["trading_state"], status.data["incident_id"]) == (HALTED, incident)
            self.latch_checks += 1
            self.checks.add("halt survives a gateway kill -9", held,
                            f"{status.data.get('trading_state')} {status.data.get('incident_id')}"
                            if status is not None and status.ok else repr(status))
        resume = self.ledger.send(RESUME_TRADING, {"incident_id": incident, "reason": "soak"})
        resume.done.wait(DEADLINE_S * 3)

    # --- the run

    def run(self) -> None:
        wait_for(lambda: self.feed().state == FEED_OK and self.gateway_up())
        self.checks.add("started: feed OK and gateway UP",
                        self.feed().state == FEED_OK and self.gateway_up())
        wait_for(lambda: len(self.ingest.all_rows()) >= 10)
        end = time.monotonic() + self.args.minutes * 60.0
        plan: list[str] = []
        while time.monotonic() < end:
            if not plan:
                plan = list(FAULTS)
                self.rng.shuffle(plan)
            fault = plan.pop()
            self.say(f"fault: {fault}")
            getattr(self, fault)()
            self.faults[fault] += 1
            pause = min(self.rng.uniform(*FAULT_GAP_S), max(0.0, end - time.monotonic()))
            time.sleep(pause)  # the soak's pacing between faults, not a wait for a condition
        self.say("faults over; settling")
        self.finish()

    def finish(self) -> None:
        settled = wait_for(lambda: self.ledger.outstanding() == 0, DEADLINE_S * 3)
        self.checks.add("every command got a final outcome", settled,
                        f"{self.ledger.outstanding()} still waiting")
        # A clean stop: the publisher's last message is its DOWN health, carrying the last seq.
        self.fabric.publisher.stop()
        got_last = wait_for(lambda: self.feed().health.get(NODE) == HEALTH_DOWN)
        self.checks.add("final publisher message received", got_last)
        self.client.stop()
        self.fabric.stop()
        row = self.feed()
        self.ingest.stop()
        self.checks.add("ingest thread never failed", self.ingest.errors == 0,
                        f"{self.ingest.errors} errors")
        ok, detail = check_state_files(self.fabric.state_dir)
        self.checks.add("state files whole at the end", ok, detail)
        self.check_feed(row)
        self.check_commands()

    def check_feed(self, row: FeedRow) -> None:
        tallies, frames, bad = tally_recording(self.recording)
        self.epochs = tallies
        ended = {e["epoch"]: e["ended"] for e in self.fabric.epochs}
        for tally in tallies:
            tally.ended = ended.get(tally.epoch, "?")
        add = self.checks.add
        add("every frame decodes with an envelope", bad == 0, f"{bad} of {frames} did not")
        add("ingest received == frames recorded", row.received == frames,
            f"{row.received} vs {frames}")
        add("no frame rejected", row.rejected == 0, f"{row.rejected}")
        add("gaps counted exactly", row.gaps == sum(t.gaps for t in tallies),
            f"ingest {row.gaps}, recomputed {sum(t.gaps for t in tallies)}")
        add("no duplicate or reordered seq", row.duplicates == 0
            and not any(t.duplicates for t in tallies), f"ingest {row.duplicates}")
        add("restarts counted exactly", row.restarts == len(tallies) - 1
            == len(self.fabric.epochs) - 1,
            f"ingest {row.restarts}, epochs seen {len(tallies)}, started "
            f"{len(self.fabric.epochs)}")
        add("seq numbers are real sends (seq == sent_total + send_errors + 1)",
            all(t.metrics_seen and not t.metrics_inconsistent for t in tallies),
            ", ".join(f"{t.metrics_inconsistent}/{t.metrics_seen}" for t in tallies))
        add("every seq accounted: before join + received + gaps == last seq",
            all(t.accounted == t.last_seq for t in tallies))
        last = tallies[-1] if tallies else None
        add("last epoch accounted to its final message",
            last is not None and last.ended == "clean stop"
            and (last.final_health or "").startswith(HEALTH_DOWN),
            f"final message: {last.final_health if last else None}")

    def check_commands(self) -> None:
        index = audit_index(self.fabric.state_dir)
        commands = self.ledger.all()
        succeeded = [c for c in commands if c.reply is not None and c.reply.ok]
        missing = [c.req_id for c in succeeded
                   if index[(c.req_id, c.action, SUCCESS)] != 1]
        self.checks.add("every SUCCESS has exactly one applied audit line", not missing,
                        f"{len(succeeded)} SUCCESS replies; wrong: {missing[:5]}")
        undelivered = [c for c in commands if c.reply is None or not c.reply.delivered]
        self.checks.add("every command got a reply in the end (same req_id)",
                        not undelivered, f"{len(undelivered)} never answered")
        self.checks.add("state-changing actions only",
                        all(c.action in STATE_CHANGING_ACTIONS for c in commands))

    # --- report

    def summary(self) -> dict[str, Any]:
        commands = self.ledger.all()
        outcomes = Counter(
            "no reply" if c.reply is None or not c.reply.delivered else str(c.reply.status)
            for c in commands)
        return {
            "ok": self.checks.ok,
            "seed": self.args.seed,
            "minutes": self.args.minutes,
            "rate": self.args.rate,
            "faults": dict(self.faults),
            "commands": {"sent": len(commands), "retried": sum(c.tries > 1 for c in commands),
                         **outcomes},
            "epochs": [{**asdict(t), "before_join": t.before_join,
                        "in_flight_at_kill": "unknown" if t.ended == "kill -9" else 0}
                       for t in getattr(self, "epochs", [])],
            "checks": [asdict(c) for c in self.checks.items],
        }


def print_summary(result: dict[str, Any]) -> None:
    print()
    print(f"soak: {result['minutes']:g} min, seed {result['seed']}, "
          f"{result['rate']:g} ticks/s")
    print("faults:   " + ", ".join(f"{k} x{v}" for k, v in sorted(result["faults"].items())))
    print("commands: " + ", ".join(f"{k} {v}" for k, v in result["commands"].items()))
    print()
    head = ("epoch", "ended", "first", "last", "received", "gaps", "before join", "tail")
    rows = [(str(e["epoch"])[-9:], e["ended"], str(e["first_seq"]), str(e["last_seq"]),
             str(e["received"]), str(e["gaps"]), str(e["before_join"]),
             str(e["in_flight_at_kill"])) for e in result["epochs"]]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    for row in [head, *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
    print()
    for check in result["checks"]:
        mark = "PASS" if check["ok"] else "FAIL"
        print(f"{mark}  {check['name']}" + (f"  ({check['detail']})" if check["detail"] else ""))
    print()
    print("RESULT: " + ("every check held" if result["ok"] else "SOME CHECKS FAILED"))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="soak.py", description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=2.0,
                        help="how long faults are injected (default 2; 0.5 works)")
    parser.add_argument("--seed", type=int, default=None,
                        help="random seed of the fault plan (default: a new one, printed)")
    parser.add_argument("--rate", type=float, default=200.0, help="publisher ticks per second")
    parser.add_argument("--json", metavar="OUT", type=Path, help="write the results as JSON")
    parser.add_argument("--keep", action="store_true",
                        help="keep the work directory (logs, state, recording)")
    args = parser.parse_args(argv)
    if not math.isfinite(args.minutes) or args.minutes <= 0:
        parser.error(f"--minutes must be a number > 0, got {args.minutes}")
    if not math.isfinite(args.rate) or args.rate <= 0:
        parser.error(f"--rate must be a number > 0, got {args.rate}")
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1, 2**31)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="tradeconsole-soak-"))
    print(f"soak: seed {args.seed}, work directory {workdir}", flush=True)
    soak: Soak | None = None
    try:
        soak = Soak(args, workdir)
        soak.run()
        result = soak.summary()
    except KeyboardInterrupt:
        print("soak: interrupted", file=sys.stderr)
        return 1
    finally:
        if soak is not None:
            soak.client.stop()
            soak.ingest.stop()
            soak.fabric.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    print_summary(result)
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
