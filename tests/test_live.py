"""Live sources end to end: ``fer.video`` on an MJPEG-over-HTTP stream served here from the test clip (killed and
started again midway), on a file while it is being written, and on sources that cannot be opened; the reader's
newest-frame hand-over that drops frames rather than queueing them."""

from __future__ import annotations

import csv
import io
import itertools
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import av
import cv2
import pytest
from conftest import ROOT
from mjpeg_stream import MjpegStream, jpeg

from fer.evaluation.scenes import clip_frames
from fer.serving.sources import (
    END,
    Backoff,
    Handover,
    LiveSource,
    SourceError,
    SourceEvent,
    SourceFrame,
    SourceSpec,
)

WAIT_S = 120  # the most any step waits for the process (a hang, not a speed limit)


@pytest.fixture(scope="module")
def frames() -> list:
    """The test clip's frames (one moving face, none, two faces) as RGB, 3 s at 10 frames/s."""
    return list(clip_frames(320, 240, 30))


@pytest.fixture
def stream(frames):
    server = MjpegStream([jpeg(f) for f in frames], fps=10).start()
    yield server
    server.kill()


class LiveRun:
    """``python -m fer.video ARGS`` running, its stdout read line by line as it comes."""

    def __init__(self, *args: str):
        self.proc = subprocess.Popen([sys.executable, "-m", "fer.video", *args, "--quiet"], cwd=ROOT,
                                     env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=lambda: [self.lines.put(line) for line in self.proc.stdout], daemon=True).start()
        self.seen: list[str] = []

    def running(self) -> bool:
        return self.proc.poll() is None

    def wait_for(self, wanted, what: str) -> list[str]:
        """Lines until one satisfies ``wanted(line)``; fails when the process ends or hangs first."""
        start, got = time.monotonic(), []
        while time.monotonic() - start < WAIT_S:
            try:
                line = self.lines.get(timeout=1)
            except queue.Empty:
                assert self.running(), f"ended before {what}: {self.proc.stderr.read()}"
                continue
            got.append(line)
            self.seen.append(line)
            if wanted(line):
                return got
        raise AssertionError(f"no {what} within {WAIT_S} s")

    def finish(self, timeout: float = WAIT_S) -> tuple[int, str]:
        code = self.proc.wait(timeout)
        time.sleep(0.2)  # the line reader's last lines
        while not self.lines.empty():
            self.seen.append(self.lines.get())
        return code, self.proc.stderr.read()


def records(lines: list[str]) -> list[dict]:
    return [json.loads(line) for line in lines]


def with_faces(line: str) -> bool:
    record = json.loads(line)
    return bool(record.get("faces"))


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_stream_rows_arrive_as_it_runs_and_a_restart_is_a_recorded_gap(stream, tmp_path):
    out = tmp_path / "out"
    run = LiveRun(stream.url, "--jsonl", "-", "--out", str(out), "--duration", "25")
    before = run.wait_for(with_faces, "a frame with a face")
    before += run.wait_for(lambda line: len(json.loads(line).get("faces", [])) == 2, "a frame with two faces")
    assert run.running()  # rows come while the stream runs, not at the end
    table = out / f"127.0.0.1_{stream.port}_stream.csv"
    assert any(r["face_id"] for r in read_csv(table))  # the CSV is written as it goes too

    stream.kill()  # the camera goes away...
    lost = run.wait_for(lambda line: json.loads(line).get("event") == "lost", "the lost stream")
    time.sleep(1.5)  # ...long enough for a reopening attempt to fail
    stream.start()  # ...and comes back on the same address
    back = run.wait_for(lambda line: json.loads(line).get("event") == "gap", "the gap once it is back")
    after = run.wait_for(with_faces, "a face after the gap")
    assert run.running()

    code, stderr = run.finish()  # --duration ends it
    assert code == 0 and "Traceback" not in stderr, stderr
    (gap_line,) = [r for r in records(run.seen) if r.get("event") == "gap"]
    assert records(lost)[-1]["time_s"] == gap_line["time_s"] and gap_line["gap_s"] > 1.5
    assert "back after" in gap_line["detail"]
    frame_times = [r["time_s"] for r in records(before + lost + back + after) if "frame" in r]
    assert frame_times == sorted(frame_times)
    back_at = gap_line["time_s"] + gap_line["gap_s"]  # the first frame back
    assert all(r["time_s"] >= back_at - 1e-3 for r in records(after))  # the analysis goes on after it

    summary = json.loads((out / table.with_suffix(".json").name).read_text())
    assert summary["ended"] == "--duration 25 s reached" and summary["kind"] == "url"
    (gap,) = summary["gaps"]
    assert gap["reconnected"] and gap["attempts"] >= 2 and "Connection refused" in gap["last_error"]
    assert summary["frames_received"] == summary["frames_processed"] + summary["frames_dropped"]
    assert len(summary["face_ids"]) >= 3  # the face of the first part, then the two of the last
    assert f"{summary['frames_dropped']} dropped" in stderr and "gap: " in stderr

    rows = read_csv(table)
    events = [r for r in rows if r["event"]]
    assert [e["event"] for e in events] == ["lost", "gap"] and float(events[1]["gap_s"]) == gap["gap_s"]
    gap_at = rows.index(events[0])
    assert any(r["face_id"] for r in rows[:gap_at]) and any(r["face_id"] for r in rows[gap_at + 2:])
    face_rows = [r for r in rows if r["face_id"]]
    json_faces = sum(len(r["faces"]) for r in records(run.seen) if "frame" in r)
    assert len(face_rows) == json_faces  # the CSV and the JSON lines hold the same faces
    with av.open(str(out / table.name.replace(".csv", ".annotated.mp4"))) as video:
        decoded = [f.time for f in video.decode(video=0)]
    assert len(decoded) == summary["frames_processed"]
    assert max(b - a for a, b in itertools.pairwise(decoded)) >= gap["gap_s"] - 0.5  # the gap keeps its time


def test_ctrl_c_ends_a_live_run_with_its_outputs_complete(stream, tmp_path):
    table = tmp_path / "faces.csv"
    run = LiveRun(stream.url, "--csv", "-", "--out", str(tmp_path), "--every", "2")
    run.wait_for(lambda line: line.count(",") > 20 and line[0].isdigit(), "a face row")
    run.proc.send_signal(signal.SIGINT)
    code, stderr = run.finish()
    assert code == 0 and "Traceback" not in stderr and "ended: interrupted (Ctrl-C)" in stderr
    summary = json.loads(next(tmp_path.glob("*.json")).read_text())
    assert summary["ended"] == "interrupted (Ctrl-C)" and summary["gaps"] == []
    assert summary["frames_analysed"] == (summary["frames_processed"] + 1) // 2  # every other frame
    stdout_rows = list(csv.DictReader(run.seen))
    assert stdout_rows and stdout_rows == read_csv(next(tmp_path.glob("*.csv")))
    assert not table.exists()


def encoded(frames, container_format: str, fps: int = 10) -> bytes:
    """``frames`` as an H.264 video in ``container_format`` (matroska, mpegts), in memory."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=container_format) as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode(None))
    return buffer.getvalue()


@pytest.mark.parametrize("name, container_format", [("recording.mkv", "matroska"), ("recording.ts", "mpegts")])
def test_a_file_being_written_is_analysed_as_it_grows(frames, tmp_path, name, container_format):
    data = encoded(frames, container_format)
    path = tmp_path / name
    part = len(data) * 3 // 4  # the first frame (a keyframe) is almost half the bytes
    path.write_bytes(data[:part])  # a recorder has written the first part...
    run = LiveRun(str(path), "--follow", "--idle", "3", "--jsonl", "-")
    first = run.wait_for(with_faces, "a row of the first part")
    with open(path, "ab") as f:  # ...and writes the rest while it is analysed
        for at in range(part, len(data), 4096):
            f.write(data[at:at + 4096])
            f.flush()
            time.sleep(0.01)

    code, stderr = run.finish()  # ends by itself once the file stops growing
    assert code == 0 and "stopped growing (no new data for 3 s)" in stderr, stderr
    lines = records(run.seen)
    assert records(first)[0]["frame"] == 0
    assert [r["frame"] for r in lines] == list(range(len(frames)))  # every frame, none dropped
    start = lines[0]["time_s"]  # MPEG-TS starts its clock at 1.4 s
    assert [r["time_s"] - start for r in lines] == pytest.approx([i / 10 for i in range(len(frames))], abs=1e-3)
    faces = {r["frame"]: len(r["faces"]) for r in lines}
    assert all(faces[i] == 1 for i in range(12)) and all(faces[i] == 2 for i in range(20, 30))
    assert ", 0 dropped" in stderr


def test_falling_behind_drops_frames_rather_than_queueing_them(frames):
    server = MjpegStream([jpeg(f) for f in frames], fps=30).start()
    source = LiveSource(SourceSpec.parse(server.url))
    try:
        source.open().start()
        taken = []
        while len(taken) < 5:
            item = source.take(timeout=10)
            assert item is not None and item is not END
            if isinstance(item, SourceFrame):
                taken.append(item.index)
                time.sleep(0.3)  # an analysis slower than the stream
        source.close()
        assert source.dropped > 0 and source.received == len(taken) + source.dropped
        assert taken == sorted(taken) and taken[-1] - taken[0] > len(taken)  # the newest frame each time
    finally:
        source.close()
        server.kill()


def test_a_source_gone_too_long_is_given_up_and_its_gap_closed(frames):
    server = MjpegStream([jpeg(f) for f in frames[:3]]).start()
    source = LiveSource(SourceSpec.parse(server.url), give_up_s=1.0)
    try:
        source.open().start()
        assert isinstance(source.take(timeout=10), SourceFrame)
        server.kill()
        items = []
        while (item := source.take(timeout=10)) is not END:
            assert item is not None
            items.append(item)
        assert [i.kind for i in items if isinstance(i, SourceEvent)] == ["lost"]
        assert source.gave_up and "given up" in source.ended
        (closing,) = source.close()  # the gap ends with the run
        (gap,) = source.gaps
        assert closing.kind == "gap" and closing.gap is gap and not gap.reconnected and gap.attempts == 1
        assert "Connection refused" in gap.last_error and gap.end_s >= gap.start_s
    finally:
        source.close()


def test_a_stream_that_stalls_is_dropped_after_the_read_timeout_and_reopened(frames):
    server = MjpegStream([jpeg(f) for f in frames[:3]]).start()
    source = LiveSource(SourceSpec.parse(server.url))
    try:
        source.open().start()
        assert isinstance(source.take(timeout=10), SourceFrame)
        server.stalled = True  # the connection stays open, nothing comes
        while not isinstance(item := source.take(timeout=30), SourceEvent):
            assert item is not None and item is not END
        assert item.kind == "lost" and item.gap.reason == "the stream broke off (nothing came for 5 s)"
        server.stalled = False
        while not isinstance(item := source.take(timeout=30), SourceEvent):
            assert item is not None and item is not END
        assert item.kind == "gap" and item.gap.reconnected
        assert isinstance(source.take(timeout=10), SourceFrame)
    finally:
        source.close()
        server.kill()


def test_the_handover_keeps_events_in_order_and_only_the_newest_frame():
    stop = threading.Event()
    newest = Handover(drop=True)
    for i in range(4):
        newest.put_frame(SourceFrame(i, i / 10, None), stop)
    newest.put_event(SourceEvent("lost", 0.35, None))
    newest.put_frame(SourceFrame(4, 0.9, None), stop)
    newest.finish()
    got = [newest.take(0), newest.take(0), newest.take(0), newest.take(0)]
    assert [g.index if isinstance(g, SourceFrame) else g.kind for g in got[:3]] == [3, "lost", 4] and got[3] is END
    assert newest.dropped == 3

    every = Handover(drop=False, depth=2)  # a growing file: the reader waits instead
    filler = threading.Thread(target=lambda: [every.put_frame(SourceFrame(i, 0, None), stop) for i in range(5)])
    filler.start()
    got = [every.take(timeout=10).index for _ in range(5)]
    filler.join()
    assert got == [0, 1, 2, 3, 4] and every.dropped == 0


def test_backoff_schedule():
    assert [Backoff().delay(n) for n in range(1, 8)] == [0.5, 1, 2, 4, 8, 8, 8]


@pytest.mark.parametrize("text, kind, name, label", [
    ("0", "camera", "camera0", "camera 0"),
    ("rtsp://admin:secret@cam.local:554/live/main", "url", "cam.local_554_live_main",
     "rtsp://admin:***@cam.local:554/live/main"),
    ("http://127.0.0.1:8080/stream.mjpg", "url", "127.0.0.1_8080_stream", "http://127.0.0.1:8080/stream.mjpg"),
])
def test_a_source_is_named_by_what_it_is(text, kind, name, label):
    spec = SourceSpec.parse(text)
    assert (spec.kind, spec.name, spec.label) == (kind, name, label)
    with pytest.raises(SourceError, match="not a live source"):
        SourceSpec.parse("clip.mp4")


def write_plain_mp4(path: Path, frames) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (320, 240))
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def test_sources_that_cannot_be_opened_are_clear_errors(frames, tmp_path):
    def fails(*args: str) -> str:
        result = subprocess.run([sys.executable, "-m", "fer.video", *args], cwd=ROOT, capture_output=True,
                                text=True, timeout=WAIT_S, check=False)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        return result.stderr

    assert fails("97", "--jsonl", "-").strip() == "error: camera 97: cannot be opened (no such device)"
    closed = MjpegStream([b""]).url  # nothing listens there
    assert fails(closed, "--csv", "-").strip() == f"error: {closed}: cannot be opened (Connection refused)"
    assert "password" not in fails("rtsp://me:password@127.0.0.1:9/x", "--csv", "-")
    plain = write_plain_mp4(tmp_path / "plain.mp4", frames[:5])
    assert "a plain MP4 or MOV has its index at the end" in fails(str(plain), "--follow", "--csv", "-")
    assert "--jsonl: for one live source only" in fails(str(plain), "--jsonl", "-")
    assert "--workers: for many files" in fails("0", "--csv", "-", "--workers", "2")
    assert "say where results go" in fails("0")
