"""The recording format, `tradeconsole record` against a live publisher, and replay."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import msgpack
import pytest

from services.market import Market
from services.protocol import ENVELOPE_FIELDS, packb, topic_kind, unpack_map
from services.recording import FORMAT_NAME, RecordingReader, RecordingWriter, read_recording
from services.runtime.errors import UsageError
from tests.services.test_publisher import collect, run_cli, subscriber


def frames(count: int, start: int = 0) -> list[tuple[int, bytes, bytes]]:
    return [(1_000 + i, f"T{i}.X".encode(), packb({"i": i})) for i in range(start, start + count)]


def write_all(path: Path, items: list[tuple[int, bytes, bytes]]) -> None:
    with RecordingWriter(path) as writer:
        for item in items:
            writer.write(*item)


def as_tuples(path: Path) -> list[tuple[int, bytes, bytes]]:
    return [(r.recv_ts_ns, r.topic, r.payload) for r in read_recording(path)]


# --- format ---------------------------------------------------------------------------


def test_round_trip_keeps_frames_exactly(tmp_path: Path) -> None:
    path = tmp_path / "a.rec"
    items = [*frames(50), (5, b"", b""), (6, b"\xff\xfe", b"\x00" * 1000)]
    write_all(path, items)
    with RecordingReader(path) as reader:
        assert reader.header["format"] == FORMAT_NAME
        assert reader.header["version"] == 1
        assert [(r.recv_ts_ns, r.topic, r.payload) for r in reader] == items
        assert reader.records == len(items)
        assert reader.truncated_bytes == 0


def test_truncated_tail_is_skipped_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "crash.rec"
    write_all(path, frames(10))
    whole = path.stat().st_size
    with path.open("r+b") as fh:
        fh.truncate(whole - 3)  # a crash in the middle of the last record
    with RecordingReader(path) as reader:
        assert [r.topic for r in reader] == [f"T{i}.X".encode() for i in range(9)]
        assert reader.truncated_bytes > 0


def test_corrupt_bytes_end_the_recording_cleanly(tmp_path: Path) -> None:
    path = tmp_path / "junk.rec"
    write_all(path, frames(3))
    with path.open("ab") as fh:
        fh.write(b"\xc1\xc1garbage")
    with RecordingReader(path) as reader:
        assert len(list(reader)) == 3
        assert reader.truncated_bytes == len(b"\xc1\xc1garbage")


def test_append_adds_a_session_to_an_existing_recording(tmp_path: Path) -> None:
    path = tmp_path / "b.rec"
    write_all(path, frames(4))
    write_all(path, frames(3, start=4))
    with RecordingReader(path) as reader:
        records = list(reader)
        assert reader.sessions == 2
    assert [r.payload for r in records] == [packb({"i": i}) for i in range(7)]
    assert [r.session for r in records] == [0] * 4 + [1] * 3


def test_append_after_a_crash_cuts_the_partial_record_first(tmp_path: Path) -> None:
    path = tmp_path / "c.rec"
    write_all(path, frames(5))
    with path.open("r+b") as fh:
        fh.truncate(path.stat().st_size - 2)
    with RecordingWriter(path) as writer:
        assert writer.cut_bytes > 0
        writer.write(*frames(1, start=99)[0])
    assert [t for _, t, _ in as_tuples(path)] == [b"T0.X", b"T1.X", b"T2.X", b"T3.X", b"T99.X"]


@pytest.mark.parametrize("content", [
    b"", b"hello, I am a text file\n", packb({"format": "something-else"}), b"\xc1\xc1\xc1",
    packb({"format": FORMAT_NAME, "version": 99}),
])
def test_a_file_that_is_not_a_recording_is_refused_and_left_alone(
    tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "other.bin"
    path.write_bytes(content)
    with pytest.raises(UsageError, match=str(path)):
        RecordingReader(path)
    if content:
        with pytest.raises(UsageError):
            RecordingWriter(path)
        assert path.read_bytes() == content


def test_missing_file_and_directory_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such recording"):
        RecordingReader(tmp_path / "missing.rec")
    with pytest.raises(UsageError, match="directory"):
        RecordingReader(tmp_path)
    with pytest.raises(UsageError, match="directory does not exist"):
        RecordingWriter(tmp_path / "no" / "such" / "dir.rec")


# --- record CLI -----------------------------------------------------------------------


def test_record_cli_records_a_live_publisher(services, tmp_path: Path) -> None:
    pub = services.publisher("--symbols", "5", "--rate", "300", "--node", "rec-1")
    everything = tmp_path / "all.rec"
    telemetry_only = tmp_path / "telemetry.rec"
    recorders = [
        services.start("record", "--feed", pub.endpoints["pub"], "--out", str(everything),
                       "--seconds", "1.5"),
        services.start("record", "--feed", pub.endpoints["pub"], "--out", str(telemetry_only),
                       "--seconds", "1.5", "--topic", "telemetry.health"),
    ]
    assert recorders[0].endpoints == {"service": "record", "out": str(everything),
                                      "feeds": [pub.endpoints["pub"]]}
    summaries = []
    for recorder in recorders:
        assert recorder.popen.wait(timeout=15) == 0
        assert recorder.popen.stdout is not None
        summaries.append(recorder.popen.stdout.read().decode().strip())

    records = list(read_recording(everything))
    assert len(records) >= 50
    assert summaries[0].startswith(f"recorded {len(records)} frames")
    assert str(everything) in summaries[0]
    stamps = [r.recv_ts_ns for r in records]
    assert stamps == sorted(stamps)
    for record in records:
        payload = unpack_map(record.payload)
        assert payload["pub"] == "rec-1"
        if topic_kind(record.topic.decode()) == "tick":
            assert payload["vt_symbol"] == record.topic.decode()
    seqs = [unpack_map(r.payload)["seq"] for r in records]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))

    health = list(read_recording(telemetry_only))
    assert health
    assert {r.topic for r in health} == {b"telemetry.health.rec-1"}


def test_record_cli_refuses_a_bad_output_file(services, tmp_path: Path) -> None:
    target = tmp_path / "notes.txt"
    target.write_text("mine\n")
    result = run_cli("record", "--feed", "tcp://127.0.0.1:1", "--out", str(target),
                     "--seconds", "1")
    assert result.returncode == 2
    assert "not a tradeconsole recording" in result.stderr
    assert result.stderr.count("\n") == 1
    assert target.read_text() == "mine\n"


# --- replay -----------------------------------------------------------------------------


def make_recording(path: Path, ticks: int = 30) -> list[tuple[str, dict]]:
    """A recording as a console would have made it: an old envelope on every frame."""
    market = Market(6, seed=11)
    recorded = []
    t0 = time.time_ns()
    with RecordingWriter(path) as writer:
        for i in range(ticks):
            topic, tick = market.next_tick()
            tick.update(pub="old-pub", epoch=1, seq=i + 1, tseq=i + 1, ts_ns=t0 + i)
            writer.write(t0 + i * 1_000_000, topic.encode(), packb(tick))
            recorded.append((topic, tick))
            if i == 5:  # recorded telemetry and a damaged frame are not replayed
                writer.write(t0 + i, b"telemetry.metrics.old-pub", packb({"node": "old-pub"}))
                writer.write(t0 + i, b"BAD.X", b"\xc1")
    return recorded


def strip_envelope(payload: dict) -> dict:
    return {k: v for k, v in payload.items() if k not in ENVELOPE_FIELDS}


def test_replay_plays_the_recorded_ticks_with_a_new_envelope(services, zctx,
                                                             tmp_path: Path) -> None:
    path = tmp_path / "session.rec"
    recorded = make_recording(path)
    bodies = [msgpack.packb(strip_envelope(t)) for _, t in recorded]
    pub = services.publisher("--replay", str(path), "--speed", "0", "--loop", "--node", "rp-1")
    sock = subscriber(zctx, pub.endpoints["pub"])
    messages = collect(sock, lambda m: sum(topic_kind(t) == "tick" for t, _ in m) >= 150)

    assert not [t for t, _ in messages if t.endswith("old-pub") or t == "BAD.X"]
    ticks = [(t, p) for t, p in messages if topic_kind(t) == "tick"]
    positions = []
    for topic, tick in ticks:
        assert tick["pub"] == "rp-1"
        assert tick["epoch"] == pub.endpoints["epoch"] != 1
        body = msgpack.packb(strip_envelope(tick))
        assert body in bodies, topic
        positions.append(bodies.index(body))
    # Frames come in recorded order, starting over at the end (--loop).
    for before, after in itertools.pairwise(positions):
        assert after == (before + 1) % len(bodies)
    seqs = [p["seq"] for _, p in messages]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))


def test_replay_keeps_sending_telemetry(services, zctx, tmp_path: Path) -> None:
    path = tmp_path / "short.rec"
    make_recording(path, ticks=3)
    pub = services.publisher("--replay", str(path), "--node", "rp-2")
    sock = subscriber(zctx, pub.endpoints["pub"], b"telemetry.health.rp-2")
    health = collect(sock, lambda m: len(m) >= 2)
    assert all(p["status"] == "OK" for _, p in health)
    assert pub.alive()


def test_replay_speed_must_not_be_negative(tmp_path: Path) -> None:
    path = tmp_path / "s.rec"
    make_recording(path, ticks=2)
    result = run_cli("publisher", "--replay", str(path), "--speed", "-2")
    assert result.returncode == 2
    assert "--speed" in result.stderr
    assert result.stderr.count("\n") == 1
