"""`tradeconsole publisher` on the command line: flags, the socket, the two threads."""

from __future__ import annotations

import argparse
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

import zmq

from services.envelope import Envelope
from services.market import Market
from services.publisher.producers import ProducerStatus, replay, simulate
from services.publisher.sender import Sender
from services.publisher.settings import settings_from_args
from services.publisher.tick_queue import TickQueue
from services.runtime.lifecycle import stop_event_on_signals
from services.runtime.logsetup import setup_logging
from services.runtime.network import apply_network
from services.runtime.sockets import announce_ready, apply_limits, bind, connect
from services.telemetry import TelemetryLogHandler

log = logging.getLogger("tradeconsole.publisher")

# Linger on close: enough to push out the final health message, short enough to exit fast.
CLOSE_LINGER_MS = 200


def add_arguments(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--bind", metavar="EP",
                       help="endpoint the PUB socket binds (default [endpoints] publisher)")
    where.add_argument("--connect", metavar="EP",
                       help="connect the PUB socket to a proxy's XSUB instead of binding")
    parser.add_argument("--symbols", type=int, metavar="N", help="number of simulated symbols")
    parser.add_argument("--rate", type=float, metavar="MSG_PER_S",
                        help="total ticks per second; 0 = as fast as it can")
    parser.add_argument("--node", metavar="NAME", help="node id in the envelope and telemetry")
    parser.add_argument("--seed", type=int, metavar="N",
                        help="random seed of the simulated market; 0 = a new one each start")
    parser.add_argument("--burst-every", type=float, metavar="S",
                        help="every S seconds send --burst-size extra ticks at once")
    parser.add_argument("--burst-size", type=int, metavar="N", help="ticks in one burst")
    parser.add_argument("--replay", metavar="FILE", type=Path,
                        help="play a recording instead of the simulated market")
    parser.add_argument("--speed", type=float, metavar="X",
                        help="replay speed factor (default 1; 0 = as fast as possible)")
    parser.add_argument("--loop", action="store_true", help="start the replay over at the end")
    parser.add_argument("--keys", metavar="DIR", help="CURVE key directory (encrypt the feed)")



def _telemetry_filter(record: logging.LogRecord) -> bool:
    """Warnings and worse, plus INFO records marked `extra={"telemetry": True}`."""
    return record.levelno >= logging.WARNING or bool(getattr(record, "telemetry", False))


def _secure(ctx: zmq.Context, sock: zmq.Socket, keys_dir: str, *, client: bool) -> None:
    """CURVE hook (services.security): a bound PUB is a CURVE server with the ZAP
    handler; a PUB that connects into a proxy is a client holding the publisher key."""
    from services import security

    if client:
        security.secure_client(sock, security.load_keys(keys_dir, client="publisher"))
        return
    keys = security.load_keys(keys_dir)
    security.start_auth(ctx, keys)
    security.secure_server(sock, keys)


def _stop_security(ctx: zmq.Context, keys_dir: str | None) -> None:
    if keys_dir:
        from services import security

        security.stop_auth(ctx)


def _new_seed(seed: int) -> int:
    return seed if seed != 0 else int.from_bytes(os.urandom(4), "little") or 1


def _start_thread(name: str, target: Callable[[], None], stop: threading.Event,
                  failed: list[str]) -> threading.Thread:
    """A daemon thread whose unexpected death stops the whole publisher."""
    def guarded() -> None:
        try:
            target()
        except Exception:
            log.exception("%s thread failed", name)
            failed.append(name)
            stop.set()

    thread = threading.Thread(target=guarded, name=name, daemon=True)
    thread.start()
    return thread


def run(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    setup_logging("publisher", settings.log_level, settings.log_dir)
    logs = TelemetryLogHandler(settings.node, level=logging.INFO)
    logs.addFilter(_telemetry_filter)
    logging.getLogger().addHandler(logs)

    stop = stop_event_on_signals()
    ctx = zmq.Context()
    sock = ctx.socket(zmq.PUB)
    try:
        sock.setsockopt(zmq.SNDHWM, settings.sndhwm)
        sock.setsockopt(zmq.LINGER, CLOSE_LINGER_MS)
        apply_limits(sock, settings.limits)
        apply_network(sock, settings.network)
        if settings.keys:
            _secure(ctx, sock, settings.keys, client=settings.connect is not None)
        if settings.connect:
            connect(sock, settings.connect, what="publisher --connect")
            bound = None
        else:
            assert settings.bind is not None
            bound = bind(sock, settings.bind, what="publisher")
    except BaseException:
        sock.close(0)
        _stop_security(ctx, settings.keys)
        ctx.term()
        raise

    envelope = Envelope(settings.node)
    queue = TickQueue(settings.queue_capacity)
    failed: list[str] = []
    if settings.replay is not None:
        status = ProducerStatus(f"replaying {settings.replay.name} x{settings.speed:g}")
        threads = [_start_thread("replay", lambda: replay(settings, queue, status, stop),
                                 stop, failed)]
        what = f"replay of {settings.replay} at x{settings.speed:g}" + \
            (" in a loop" if settings.loop else "")
    else:
        seed = _new_seed(settings.seed)
        market = Market(settings.symbols, seed)
        rate = "as fast as it can" if settings.rate == 0 else f"{settings.rate:g}/s"
        status = ProducerStatus(f"{settings.symbols} simulated symbols at {rate}")
        threads = [_start_thread("market", lambda: simulate(market, settings, queue, stop),
                                 stop, failed)]
        what = f"{settings.symbols} simulated symbols at {rate}, seed {seed}"
    sender = Sender(sock, envelope, queue, settings, status, logs)
    where = bound or f"connected to {settings.connect}"
    log.info("publisher %s started (epoch %d) on %s: %s", settings.node, envelope.epoch,
             where, what, extra={"telemetry": True})
    halt_sender = threading.Event()  # set after the stop log line, so it is sent too
    threads.append(_start_thread("sender", lambda: sender.run(halt_sender), stop, failed))
    announce_ready(service="publisher", node=settings.node, pub=bound,
                   connect=settings.connect, epoch=envelope.epoch)

    while not stop.wait(0.2):
        pass
    log.info("publisher %s stopping: %d messages sent, %d dropped", settings.node,
             sender.sent_total, queue.dropped, extra={"telemetry": True})
    halt_sender.set()
    for thread in threads:
        thread.join(timeout=1.0)
    if not threads[-1].is_alive():
        sock.close(CLOSE_LINGER_MS)
    _stop_security(ctx, settings.keys)
    if not any(t.is_alive() for t in threads):
        ctx.term()
    return 1 if failed else 0
