"""`tradeconsole proxy`: ZeroMQ's own XSUB/XPUB device between publishers and consoles.

Publishers `--connect` their PUB to the XSUB side, consoles connect SUB to
the XPUB side; subscriptions flow upstream, messages downstream. The work
is done by libzmq's `zmq_proxy_steerable` in a thread, so a signal only has
to send TERMINATE on the control socket for a clean stop.
"""

from __future__ import annotations

import argparse
import logging
import threading

import zmq

from services.protocol import Limits
from services.runtime.config import load_for_args
from services.runtime.errors import UsageError
from services.runtime.lifecycle import stop_event_on_signals
from services.runtime.logsetup import setup_logging
from services.runtime.network import apply_network
from services.runtime.sockets import announce_ready, apply_limits, bind

log = logging.getLogger("tradeconsole.proxy")

CONTROL_ENDPOINT = "inproc://tradeconsole-proxy-control"
DEFAULT_HWM = 1_000_000
CLOSE_LINGER_MS = 100


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--xsub", required=True, metavar="EP",
                        help="endpoint publishers connect to (XSUB, bound here)")
    parser.add_argument("--xpub", required=True, metavar="EP",
                        help="endpoint subscribers connect to (XPUB, bound here)")
    parser.add_argument("--capture", metavar="EP",
                        help="also bind a PUB here that gets a copy of every message")
    parser.add_argument("--hwm", type=int, default=DEFAULT_HWM, metavar="N",
                        help=f"high-water mark of each side, messages (default {DEFAULT_HWM})")
    parser.add_argument("--keys", metavar="DIR",
                        help="CURVE key directory: XSUB admits publisher keys, XPUB any client")


def _run_proxy(xsub: zmq.Socket, xpub: zmq.Socket, capture: zmq.Socket | None,
               control: zmq.Socket) -> None:
    """Blocks in libzmq until TERMINATE arrives on `control`, then closes the sockets."""
    try:
        zmq.proxy_steerable(xsub, xpub, capture, control)
    except zmq.ContextTerminated:
        pass
    except zmq.ZMQError as exc:
        log.error("proxy stopped: %s", exc)
    finally:
        for sock in (xsub, xpub, capture, control):
            if sock is not None:
                sock.close(CLOSE_LINGER_MS)


def _secure(ctx: zmq.Context, keys_dir: str, xsub: zmq.Socket | None = None,
            xpub: zmq.Socket | None = None, capture: zmq.Socket | None = None) -> None:
    """CURVE hook (services.security): only publisher keys may inject on XSUB."""
    from services import security

    keys = security.load_keys(keys_dir)
    security.start_auth(ctx, keys)
    if xsub is not None:
        security.secure_server(xsub, keys, roles=["publisher"])
    for sock in (xpub, capture):
        if sock is not None:
            security.secure_server(sock, keys)


def _stop_security(ctx: zmq.Context, keys_dir: str | None) -> None:
    if keys_dir:
        from services import security

        security.stop_auth(ctx)


def run(args: argparse.Namespace) -> int:
    config = load_for_args(args)
    if args.hwm < 0:
        raise UsageError(f"--hwm must be >= 0 (0 = no limit), got {args.hwm}")
    limits = Limits.from_settings(config.settings.limits)
    network = config.network
    setup_logging("proxy", config.settings.logging.level, config.settings.logging.dir)

    stop = stop_event_on_signals()

    ctx = zmq.Context()
    made: list[zmq.Socket] = []

    def socket(kind: int) -> zmq.Socket:
        sock = ctx.socket(kind)
        made.append(sock)
        sock.setsockopt(zmq.LINGER, CLOSE_LINGER_MS)
        if kind != zmq.PAIR:  # the control pair is in-process
            apply_network(sock, network)
        return sock

    try:
        xsub = socket(zmq.XSUB)
        xsub.setsockopt(zmq.RCVHWM, args.hwm)
        xsub.setsockopt(zmq.SNDHWM, args.hwm)
        apply_limits(xsub, limits)
        xpub = socket(zmq.XPUB)
        xpub.setsockopt(zmq.SNDHWM, args.hwm)
        xpub.setsockopt(zmq.RCVHWM, args.hwm)
        apply_limits(xpub, limits)
        if args.keys:
            _secure(ctx, args.keys, xsub, xpub)
        xsub_ep = bind(xsub, args.xsub, what="proxy --xsub")
        xpub_ep = bind(xpub, args.xpub, what="proxy --xpub")
        capture = None
        capture_ep = None
        if args.capture:
            capture = socket(zmq.PUB)
            capture.setsockopt(zmq.SNDHWM, args.hwm)
            if args.keys:
                _secure(ctx, args.keys, capture=capture)
            capture_ep = bind(capture, args.capture, what="proxy --capture")
        control = socket(zmq.PAIR)
        control.bind(CONTROL_ENDPOINT)
        commander = socket(zmq.PAIR)
        commander.connect(CONTROL_ENDPOINT)
    except BaseException:
        for sock in made:
            sock.close(0)
        _stop_security(ctx, args.keys)
        ctx.term()
        raise

    thread = threading.Thread(target=_run_proxy, args=(xsub, xpub, capture, control),
                              name="proxy", daemon=True)
    thread.start()
    announce_ready(service="proxy", xsub=xsub_ep, xpub=xpub_ep, capture=capture_ep)
    log.info("proxy up: publishers -> %s, subscribers -> %s%s", xsub_ep, xpub_ep,
             f", capture {capture_ep}" if capture_ep else "")
    while not stop.wait(0.2) and thread.is_alive():
        pass
    if thread.is_alive():
        commander.send(b"TERMINATE")
        thread.join(timeout=2.0)
    commander.close(0)
    if thread.is_alive():
        log.error("proxy did not stop in time")
        return 1
    _stop_security(ctx, args.keys)
    ctx.term()
    if not stop.is_set():
        log.error("proxy thread ended on its own")
        return 1
    log.info("proxy stopped")
    return 0
