"""The XSUB/XPUB proxy: many publishers in, one subscriber out, clean stop."""

from __future__ import annotations

import signal

from services.protocol import topic_kind
from tests.conftest import ANY_PORT
from tests.services.test_publisher import collect, run_cli, subscriber


def start_proxy(services, *extra: str):
    return services.start("proxy", "--xsub", ANY_PORT, "--xpub", ANY_PORT, *extra)


def test_one_subscriber_gets_ticks_from_two_connected_publishers(services, zctx) -> None:
    proxy = start_proxy(services, "--capture", ANY_PORT)
    assert proxy.endpoints["service"] == "proxy"
    capture = subscriber(zctx, proxy.endpoints["capture"])
    for node in ("px-a", "px-b"):
        pub = services.start("publisher", "--connect", proxy.endpoints["xsub"], "--node", node,
                             "--rate", "200", "--symbols", "4")
        assert pub.endpoints["connect"] == proxy.endpoints["xsub"]
        assert pub.endpoints["pub"] is None
    sock = subscriber(zctx, proxy.endpoints["xpub"])
    messages = collect(sock, lambda m: {p["pub"] for t, p in m if topic_kind(t) == "tick"}
                       >= {"px-a", "px-b"})
    for topic, payload in messages:
        if topic_kind(topic) == "tick":
            assert payload["vt_symbol"] == topic
    # The capture socket sees the same traffic as a copy.
    copied = []
    while capture.poll(2000) and len(copied) < 20:
        copied.append(capture.recv_multipart())
    assert copied


def test_sigterm_stops_the_proxy_with_code_zero(services, zctx) -> None:
    proxy = start_proxy(services)
    sock = subscriber(zctx, proxy.endpoints["xpub"])
    services.start("publisher", "--connect", proxy.endpoints["xsub"], "--node", "px-c",
                   "--rate", "50")
    collect(sock, lambda m: len(m) >= 1)
    proxy.signal(signal.SIGTERM)
    assert proxy.popen.wait(timeout=5) == 0


def test_proxy_port_in_use_exits_2_naming_it(services) -> None:
    proxy = start_proxy(services)
    taken = proxy.endpoints["xpub"]
    result = run_cli("proxy", "--xsub", ANY_PORT, "--xpub", taken)
    assert result.returncode == 2
    assert taken in result.stderr
    assert result.stderr.count("\n") == 1


def test_proxy_needs_both_endpoints() -> None:
    result = run_cli("proxy", "--xsub", ANY_PORT)
    assert result.returncode == 2
    assert "--xpub" in result.stderr
    assert "Traceback" not in result.stderr
