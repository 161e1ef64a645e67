"""A live source (:mod:`fer.serving.sources`) analysed as it comes: each frame through the recognizer's VIDEO-mode
session (the webcam schedule: a full search every few frames, region searches between), its faces written at once
as CSV rows or JSON lines (a file, or stdout), the annotated video optional, until the duration is up, Ctrl-C, or the
source ends. Gaps of the source are rows/lines of their own and listed in the summary (:class:`StreamReport`).

CSV: the columns of a video file's table (:func:`fer.serving.video.video_columns`) plus ``event``, ``gap_s`` and
``detail``: a face row leaves them empty; ``event=lost`` (the source stopped, at ``time_s``; ``detail`` why) and
``event=gap`` (it is back, or the run ended: ``time_s`` when it stopped, ``gap_s`` how long it was gone).
JSON lines: one line per frame, ``{"frame", "time_s", "analysed", "faces": [{"box", "label", "probabilities",
"face_id"}]}`` (``faces`` empty when none was found or the frame was not analysed), and ``{"event": "lost"|"gap",
"time_s", "gap_s", "detail"}``.
"""

from __future__ import annotations

import contextlib
import csv
import datetime
import json
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import IO, TYPE_CHECKING, Protocol

from fer.serving.sources import END, LiveSource, SourceEvent, SourceFrame
from fer.serving.video import VideoError, VideoWriter, video_columns

if TYPE_CHECKING:
    import numpy as np

    from fer.serving.recognize import FaceRecognizer, FaceResult

EVENT_COLUMNS = ("event", "gap_s", "detail")
#: Where a sink writes stdout.
STDOUT = "-"


@dataclass
class StreamReport:
    """What happened in one live run: counts (every frame received is processed or dropped), gaps, why it ended."""

    source: str
    kind: str
    started_at: str
    width: int = 0
    height: int = 0
    seconds: float = 0.0
    frames_received: int = 0
    frames_processed: int = 0  #: taken by the analysis (with ``every`` N, every N-th of them analysed)
    frames_analysed: int = 0
    frames_dropped: int = 0  #: received while the analysis was busy, and replaced by a newer one
    frames_undecodable: int = 0
    face_ids: list[int] = field(default_factory=list)
    gaps: list[dict] = field(default_factory=list)
    ended: str = ""
    outputs: dict[str, str] = field(default_factory=dict)

    @property
    def processing_fps(self) -> float:
        """Frames processed per second of the run."""
        return self.frames_processed / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict:
        """The report for the JSON summary."""
        return {"source": self.source, "kind": self.kind, "started_at": self.started_at, "width": self.width,
                "height": self.height, "seconds": round(self.seconds, 2), "frames_received": self.frames_received,
                "frames_processed": self.frames_processed, "frames_analysed": self.frames_analysed,
                "frames_dropped": self.frames_dropped, "frames_undecodable": self.frames_undecodable,
                "processing_fps": round(self.processing_fps, 2), "face_ids": self.face_ids, "gaps": self.gaps,
                "ended": self.ended, "outputs": self.outputs}


class RowSink(Protocol):
    """Where a live run's results go as they come (``kind``: its name in the report's outputs; ``path``)."""

    kind: str
    path: str

    def frame(self, index: int, time_s: float, faces: list[FaceResult], analysed: bool) -> None:
        """Write one processed frame's faces."""

    def event(self, event: SourceEvent) -> None:
        """Write a source event (a gap, the source lost or back)."""

    def close(self) -> None:
        """Finish writing (stdout is flushed, not closed)."""


def open_text(path: str | Path) -> IO[str]:
    """``path`` for writing, or stdout for ``-`` (left open at the end)."""
    if str(path) == STDOUT:
        return sys.stdout
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return open(path, "w", newline="")  # closed by the sink's close()


def close_text(file: IO[str]) -> None:
    """Close ``file``, or only flush it when it is stdout."""
    if file is sys.stdout:
        file.flush()
    else:
        file.close()


def event_detail(event: SourceEvent) -> str:
    """A source event in words: why the source went away, and whether (and after how many tries) it came back."""
    gap = event.gap
    if event.kind == "lost":
        return gap.reason
    back = f"back after {gap.attempts} reopening attempt(s)" if gap.reconnected else "not back when the run ended"
    return f"{gap.reason}; {back}" + (f" (last: {gap.last_error})" if gap.last_error and not gap.reconnected else "")


class CsvRows:
    """Face rows and event rows as CSV, flushed after each frame."""

    kind = "csv"

    def __init__(self, path: str | Path, classes: list[str]):
        from fer.serving.table import face_row

        self.face_row = face_row
        self.path, self.file = str(path), open_text(path)
        self.writer = csv.DictWriter(self.file, [*video_columns(classes), *EVENT_COLUMNS])
        self.writer.writeheader()
        self.file.flush()

    def frame(self, index: int, time_s: float, faces: list[FaceResult], analysed: bool) -> None:
        """One CSV row per face of the frame, flushed."""
        if faces:
            self.writer.writerows({"frame": index, "time_s": round(time_s, 4), "face_id": f.face_id,
                                   **self.face_row(f)} for f in sorted(faces, key=lambda f: f.face_id))
            self.file.flush()

    def event(self, event: SourceEvent) -> None:
        """One CSV row for the event, flushed."""
        self.writer.writerow({"time_s": round(event.time_s, 4), "event": event.kind,
                              "gap_s": round(event.gap.seconds, 3) if event.kind == "gap" else "",
                              "detail": event_detail(event)})
        self.file.flush()

    def close(self) -> None:
        """Close the file (stdout is flushed)."""
        close_text(self.file)


class JsonLines:
    """One JSON line per frame (its faces) and per event, flushed each time."""

    kind = "jsonl"

    def __init__(self, path: str | Path):
        self.path, self.file = str(path), open_text(path)

    def _write(self, record: dict) -> None:
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()

    def frame(self, index: int, time_s: float, faces: list[FaceResult], analysed: bool) -> None:
        """One JSON line with the frame's faces."""
        self._write({"frame": index, "time_s": round(time_s, 4), "analysed": analysed,
                     "faces": [f.as_dict() for f in sorted(faces, key=lambda f: f.face_id)]})

    def event(self, event: SourceEvent) -> None:
        """One JSON line for the event."""
        self._write({"event": event.kind, "time_s": round(event.time_s, 4),
                     "gap_s": round(event.gap.seconds, 3) if event.kind == "gap" else None,
                     "detail": event_detail(event)})

    def close(self) -> None:
        """Close the file (stdout is flushed)."""
        close_text(self.file)


class TimedVideoWriter(VideoWriter):
    """:class:`fer.serving.video.VideoWriter` with each frame at its own time (milliseconds; a variable frame
    rate), so dropped frames and gaps keep the video's clock true."""

    def __init__(self, path: Path, width: int, height: int):
        super().__init__(path, 30, width, height)
        self.stream.codec_context.time_base = Fraction(1, 1000)
        self.last_ms = -1

    def write_at(self, rgb: np.ndarray, time_s: float) -> None:
        """One frame shown from ``time_s`` on (times must grow; a repeated one moves on by a millisecond)."""
        frame = self.frame_of(rgb)
        self.last_ms = frame.pts = max(self.last_ms + 1, round(1000 * time_s))
        frame.time_base = Fraction(1, 1000)
        self.container.mux(self.stream.encode(frame))


class StopRequest(threading.Event):
    """Set by Ctrl-C or SIGTERM (:func:`stop_on_signals`); ``signum`` says which."""

    signum: int = 0


@contextlib.contextmanager
def stop_on_signals(stop: StopRequest):
    """While inside, Ctrl-C (SIGINT) and SIGTERM set ``stop``, so a run ends after the frame in hand with every
    output whole; a second Ctrl-C raises KeyboardInterrupt at once. Outside the main thread: nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def request(signum, frame) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop.signum = signum
        stop.set()

    previous = {sig: signal.signal(sig, request) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class FrameOutputs:
    """Each frame through the session, its answer to every sink and the annotated video; counts what was done."""

    def __init__(self, recognizer: FaceRecognizer, sinks: list[RowSink], video: Path | None, every: int):
        from fer.serving.recognize import RunningMode

        self.recognizer, self.sinks, self.video = recognizer, sinks, video
        self.session = recognizer.session(RunningMode.VIDEO, every=every)
        self.writer: TimedVideoWriter | None = None
        self.processed = self.analysed = 0
        self.face_ids: set[int] = set()

    def frame(self, item: SourceFrame) -> None:
        """Detect, track and classify one frame, write its rows to every sink and its drawing to the video."""
        from fer.serving.recognize import draw_tracks

        result = self.session.detect_for_video(item.rgb, 1000 * item.time_s)
        self.processed += 1
        self.analysed += result.analysed
        self.face_ids.update(f.face_id for f in result.faces if f.face_id is not None)
        for sink in self.sinks:
            sink.frame(item.index, item.time_s, result.faces, result.analysed)
        if self.video:
            if self.writer is None:
                self.writer = TimedVideoWriter(self.video, item.rgb.shape[1], item.rgb.shape[0])
            annotated = item.rgb.copy()
            draw_tracks(annotated, result.tracks, self.recognizer.classes, ids=True)
            self.writer.write_at(annotated, item.time_s)

    def event(self, event: SourceEvent) -> None:
        """A gap to the sinks; the faces after a lost source start new tracks."""
        for sink in self.sinks:
            sink.event(event)
        if event.kind == "lost":
            self.session.tracker.reset()

    def close(self) -> None:
        """Close every sink and the video."""
        for sink in self.sinks:
            with contextlib.suppress(BrokenPipeError):
                sink.close()
        if self.writer:
            self.writer.close()


def analyze_stream(recognizer: FaceRecognizer, source: LiveSource, sinks: list[RowSink],
                   video: Path | None = None, every: int = 1, duration_s: float | None = None,
                   summary: Path | None = None, show_progress: bool = False) -> StreamReport:
    """Analyse ``source`` frame by frame until ``duration_s`` (seconds of reading), Ctrl-C or SIGTERM (the run
    then ends normally after the frame in hand, :func:`stop_on_signals`) or the source's end; results to ``sinks``
    as each frame is done, the annotated video to ``video`` (MP4), the report to ``summary`` (JSON). ``source``
    may be opened already (:meth:`LiveSource.open`); it is closed here."""
    from fer.core.cli import progress

    report = StreamReport(source.label, source.spec.kind,
                          datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))
    outputs = FrameOutputs(recognizer, sinks, video, every)
    bar = progress(None, None, source.label, "frame", disable=not show_progress)
    stop = StopRequest()
    source.start()
    try:
        with stop_on_signals(stop):
            report.ended = _run(source, outputs, duration_s, stop, bar.update)
    except KeyboardInterrupt:  # a second Ctrl-C during a frame
        report.ended = "interrupted (Ctrl-C)"
    except BrokenPipeError:
        report.ended = "stdout was closed by its reader"
    finally:
        bar.close()
        for event in source.close():
            outputs.event(event)
        outputs.close()
        _finish(report, source, outputs, summary)
    return report


def _run(source: LiveSource, outputs: FrameOutputs, duration_s: float | None, stop: StopRequest,
         done: Callable[[], object]) -> str:
    """Frames and events to ``outputs`` until the run ends; returns why it ended."""
    while True:
        if stop.is_set():
            return "interrupted (Ctrl-C)" if stop.signum == signal.SIGINT else "stopped (SIGTERM)"
        remaining = None if duration_s is None else duration_s - source.now()
        if remaining is not None and remaining <= 0:
            return f"--duration {duration_s:g} s reached"
        item = source.take(timeout=0.5 if remaining is None else min(0.5, remaining))
        if item is END:
            return source.ended or f"{source.label} ended"
        if isinstance(item, SourceEvent):
            outputs.event(item)
        elif isinstance(item, SourceFrame):
            outputs.frame(item)
            done()


def _finish(report: StreamReport, source: LiveSource, outputs: FrameOutputs, summary: Path | None) -> None:
    """Counts, gaps and outputs into the report; the report to ``summary``."""
    from fer.core.fileio import write_json_atomic

    report.seconds = source.now()
    report.width, report.height = source.width, source.height
    report.frames_received, report.frames_dropped = source.received, source.dropped
    report.frames_processed, report.frames_analysed = outputs.processed, outputs.analysed
    report.frames_undecodable = source.undecodable
    report.face_ids = sorted(outputs.face_ids)
    report.gaps = [gap.as_dict() for gap in source.gaps]
    report.outputs.update({sink.kind: sink.path for sink in outputs.sinks})
    if outputs.video:
        report.outputs["video"] = str(outputs.video) if outputs.writer else "(no frame came: none written)"
    if summary:
        report.outputs["summary"] = str(summary)
        write_json_atomic(summary, report.as_dict())


def check_outputs(paths: list[str | Path | None], overwrite: bool) -> None:
    """Raise :class:`fer.serving.video.VideoError` when an output file exists already (unless ``overwrite``) or
    two outputs are one file (stdout included); None stands for an output not asked for."""
    seen: set[str] = set()
    for path in filter(None, paths):
        where = STDOUT if str(path) == STDOUT else str(Path(path).resolve())
        if where in seen:
            raise VideoError("only one output can go to stdout (-)" if where == STDOUT else
                             f"{path}: named for two outputs; give each its own file")
        seen.add(where)
        if where != STDOUT and Path(path).exists() and not overwrite:
            raise VideoError(f"{path} already exists: choose another name, or pass --overwrite")
