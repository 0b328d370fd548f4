"""The benchmark's machinery on a tiny scale: frames, feeder, reference loop, app probe.

Nothing here is timed; the point is that `bench/run.py` measures what it
claims (every frame a valid enveloped tick, exact counts, the probe reading
the real console's feeds panel).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.feeder import DONE_PREFIX
from bench.frames import FrameFactory
from bench.procs import Child
from bench.stats import per_second_percentiles, percentile
from services.protocol import tick_problem, unpack_map

TIMEOUT_S = 60.0


def test_frames_are_enveloped_ticks_with_exact_sequence_numbers() -> None:
    factory = FrameFactory(3, node="smoke", epoch=42)
    for n in range(1, 10):
        topic = factory.topic(n).decode()
        tick = unpack_map(factory.payload(n, ts_ns=1_000 + n))
        assert tick_problem(tick, topic) is None
        assert tick["vt_symbol"] == topic
        assert (tick["pub"], tick["epoch"], tick["seq"]) == ("smoke", 42, n)
        assert tick["tseq"] == (n - 1) // 3 + 1
        assert tick["ts_ns"] == 1_000 + n


def test_percentiles_per_second_then_median() -> None:
    assert percentile([], 0.5) is None
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.99) == 4.0
    second = 1_000_000_000
    samples = [(s * second + i, (s + 1) * 1000) for s in range(5) for i in range(100)]
    p50, p99 = per_second_percentiles(samples)
    assert p50 == 3.0 and p99 == 3.0  # seconds 1..3 kept, median of 2, 3, 4 µs


def test_feeder_and_raw_subscriber_count_every_frame(tmp_path: Path) -> None:
    feeder = Child("bench.feeder", ["--count", "3000", "--symbols", "50"],
                   log=tmp_path / "feeder.log")
    try:
        feed = str(feeder.ready(TIMEOUT_S)["pub"])
        raw = Child("bench.raw", ["sub", "--feed", feed, "--count", "3000"],
                    log=tmp_path / "raw.log")
        try:
            result = raw.result(TIMEOUT_S)
        finally:
            raw.stop()
        assert feeder.line(DONE_PREFIX, TIMEOUT_S)["sent"] == 3000
    finally:
        feeder.stop()
    assert (result["received"], result["gaps"], result["seq_jumps"]) == (3000, 0, 0)


def test_app_probe_reads_the_real_consoles_feeds_panel(tmp_path: Path) -> None:
    count = 1500
    feeder = Child("bench.feeder", ["--count", str(count), "--symbols", "30", "--rate", "3000"],
                   log=tmp_path / "feeder.log")
    try:
        feed = str(feeder.ready(TIMEOUT_S)["pub"])
        probe = Child("bench.app_probe", ["cpu", "--feed", feed, "--count", str(count),
                                          "--rate", "3000"], log=tmp_path / "probe.log")
        try:
            result = probe.result(TIMEOUT_S)
        finally:
            probe.stop()
    finally:
        feeder.stop()
    assert result["received"] == count
    assert result["panel_total"] == count and result["counted_all"] is True


def test_gateway_links_counts_every_heartbeat_and_sees_the_kill(tmp_path: Path) -> None:
    """The three-link phase really kills gateway C and times every heartbeat to A and B."""
    from bench import gateway_links

    result = gateway_links.measure(tmp_path, 30)
    for phase in ("raw", "one_link", "three_links_a", "three_links_b"):
        assert result[phase]["count"] == 30, phase
    assert result["three_links_a_before_kill"]["count"] == 11
    assert result["three_links_a_after_kill"]["count"] == 19
    assert result["down_after_kill_s"] > 0
    assert "three links / one link" in gateway_links.table(result)


def test_side_by_side_runs_two_builds_at_once_and_gives_their_ratio(
        capsys: pytest.CaptureFixture[str]) -> None:
    from bench import side_by_side
    assert side_by_side.main(["--base", "HEAD", "--rate", "100", "--symbols", "5",
                              "--windows", "2", "--seconds", "1"]) == 0
    out = capsys.readouterr().out
    median = [line for line in out.splitlines() if line.startswith("median:")]
    assert len(median) == 1, out
    ratio = float(median[0].rsplit("ratio", 1)[1])
    assert 0.2 < ratio < 5.0, out  # the same build on both sides
    assert side_by_side.main(["--base", "no-such-revision"]) == 2
