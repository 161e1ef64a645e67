"""Videos through the one frame path: reading frames with their own times (:class:`VideoReader`), the annotated
H.264 MP4 (:class:`VideoWriter`), a per-frame CSV, a plot per face and a summary (:func:`analyze_video`), and
each video of a batch run. The command is ``python -m fer.video``.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy and OpenCV load when a video is read, so that --help is instant
    import numpy as np

#: Faces seen on fewer analysed frames than this get no plot of their own (passing false detections).
MIN_PLOT_ROWS = 3
KEY_COLUMNS = ("frame", "time_s", "face_id")


class VideoError(ValueError):
    """A video cannot be used; the message names the file and what is wrong."""


@dataclass
class VideoReport:
    """What happened to one video: sizes, counts, speed, and whether it was read to the end."""

    source: str
    width: int
    height: int
    fps: float
    frames_expected: int  # from the file's header; 0 when unknown
    frames_read: int = 0
    frames_analysed: int = 0
    face_ids: list[int] = field(default_factory=list)
    complete: bool = True
    problem: str | None = None
    seconds: float = 0.0
    outputs: dict[str, str] = field(default_factory=dict)

    @property
    def processing_fps(self) -> float:
        """Frames read per second of the run."""
        return self.frames_read / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict:
        """The report for the summary JSON (``clip.json``)."""
        return {"source": self.source, "width": self.width, "height": self.height, "fps": round(self.fps, 3),
                "frames_expected": self.frames_expected, "frames_read": self.frames_read,
                "frames_analysed": self.frames_analysed, "face_ids": self.face_ids, "complete": self.complete,
                "problem": self.problem, "seconds": round(self.seconds, 2),
                "processing_fps": round(self.processing_fps, 2), "outputs": self.outputs}


class VideoReader:
    """Decoded RGB frames with their times; notices a file that ends before its header says it should.
    ``check(reader)`` may refuse the video (raise :class:`VideoError`) from its header's frame size, length and
    rate before any frame is decoded, and again if the first frame's size differs from the header's."""

    def __init__(self, path: str | Path, check: Callable[[VideoReader], None] | None = None):
        import cv2

        self.path = Path(path)
        if not self.path.is_file():
            raise VideoError(f"{self.path}: no such file")
        if self.path.stat().st_size == 0:
            raise VideoError(f"{self.path}: the file is empty")
        self.cap = cv2.VideoCapture(str(self.path))
        if not self.cap.isOpened():
            raise VideoError(f"{self.path}: not a video OpenCV can read (unknown format, or a truncated or "
                             f"corrupt file)")
        self.cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)  # phone videos: apply the rotation tag
        fps = self.cap.get(cv2.CAP_PROP_FPS)
        self.fps = fps if math.isfinite(fps) and 0 < fps <= 1000 else 30.0
        count = self.cap.get(cv2.CAP_PROP_FRAME_COUNT)
        self.frames_expected = int(count) if math.isfinite(count) and count > 0 else 0
        self.problem: str | None = None
        # the container's header, before decoding (a 4 MB file may announce one 16000×16000 frame); 0 when unknown
        self.width, self.height = (max(0, int(self.cap.get(p) or 0)) for p in (cv2.CAP_PROP_FRAME_WIDTH,
                                                                              cv2.CAP_PROP_FRAME_HEIGHT))
        try:
            if check:
                check(self)
            self.first = self._read()
            if self.first is None:
                raise VideoError(f"{self.path}: no frame could be decoded (corrupt, truncated or not a video)")
            announced = (self.width, self.height)
            self.height, self.width = self.first.shape[:2]
            if check and (self.width, self.height) != announced:
                check(self)
        except BaseException:
            self.cap.release()
            raise

    @property
    def duration_s(self) -> float:
        """The length the header announces (0 when unknown)."""
        return self.frames_expected / self.fps

    def _read(self) -> np.ndarray | None:
        import cv2

        ok, frame = self.cap.read()
        if not ok or frame is None or frame.size == 0:
            return None
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB if frame.ndim == 2 else cv2.COLOR_BGR2RGB)

    def frames(self) -> Iterator[tuple[int, float, np.ndarray]]:
        """(index, time in seconds, RGB frame) to the end; sets ``problem`` when the file ends early."""
        import cv2

        frame, index, last_t = self.first, 0, -1.0
        while frame is not None:
            t = self.cap.get(cv2.CAP_PROP_POS_MSEC) / 1000  # the decoded frame's own timestamp (VFR-safe)
            if not math.isfinite(t) or (index > 0 and t <= last_t):
                t = max(index / self.fps, last_t + 1e-3)
            yield index, t, frame
            index, last_t = index + 1, t
            frame = self._read()
        if self.frames_expected and index + max(2, 0.02 * self.frames_expected) < self.frames_expected:
            self.problem = (f"{self.path}: the video breaks off after frame {index} of the {self.frames_expected} "
                            f"its header announces (truncated or corrupt file)")

    def close(self) -> None:
        """Release the file."""
        self.cap.release()


class VideoWriter:
    """Annotated frames to an H.264 MP4 that browsers play (PyAV's FFmpeg with libx264; yuv420p, the index at
    the front so playback starts before the download ends). Odd widths and heights lose their last pixel row
    or column (H.264's 4:2:0 needs even sizes); the file is complete once :meth:`close` has run."""

    CODEC, OPTIONS = "libx264", {"crf": "23", "preset": "veryfast", "movflags": "+faststart"}

    def __init__(self, path: Path, fps: float, width: int, height: int):
        import av

        if path.suffix.lower() != ".mp4":
            raise VideoError(f"{path}: the annotated video is an MP4 (H.264): choose a name ending in .mp4")
        self.size = (max(2, width - width % 2), max(2, height - height % 2))
        try:
            self.container = av.open(str(path), "w", options={"movflags": self.OPTIONS["movflags"]})
        except OSError as e:
            raise VideoError(f"{path}: cannot write here ({e.strerror or e})") from None
        rate = Fraction(fps).limit_denominator(1001)
        self.stream = self.container.add_stream(self.CODEC, rate=rate,
                                                options={k: v for k, v in self.OPTIONS.items() if k != "movflags"})
        self.stream.width, self.stream.height = self.size
        self.stream.pix_fmt = "yuv420p"

    def write(self, rgb: np.ndarray) -> None:
        """Encode one RGB frame."""
        self.container.mux(self.stream.encode(self.frame_of(rgb)))

    def frame_of(self, rgb: np.ndarray):
        """The encoder's frame of an RGB image, at this video's size."""
        import av
        import cv2
        import numpy as np

        rgb = rgb[:rgb.shape[0] - rgb.shape[0] % 2, :rgb.shape[1] - rgb.shape[1] % 2]
        if (rgb.shape[1], rgb.shape[0]) != self.size:  # the stream changed resolution: keep one size
            rgb = cv2.resize(rgb, self.size, interpolation=cv2.INTER_AREA)
        return av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")

    def close(self) -> None:
        """Flush the encoder and write the MP4's index; the file plays from here on."""
        try:
            self.container.mux(self.stream.encode(None))
        finally:
            self.container.close()


def video_columns(classes: list[str]) -> list[str]:
    """The per-frame CSV's columns: frame, time and face id, then the box, landmarks and a probability per class."""
    from fer.serving.table import face_columns

    return [*KEY_COLUMNS, *face_columns(classes)]


@dataclass
class OutputPaths:
    """Where one video's results go: ``DIR/<stem>.annotated.mp4``, ``.csv`` (``.partial.csv`` when the
    video broke off), ``.face<ID>.png`` and ``.json``."""

    out_dir: Path
    stem: str
    video_suffix: str = ".mp4"

    def _named(self, suffix: str) -> Path:
        return self.out_dir / f"{self.stem}{suffix}"

    @property
    def video(self) -> Path:
        """The annotated video."""
        return self._named(f".annotated{self.video_suffix}")

    csv = property(lambda self: self._named(".csv"), doc="The per-frame table.")
    partial_csv = property(lambda self: self._named(".partial.csv"), doc="The table of a video that broke off.")
    summary = property(lambda self: self._named(".json"), doc="The run's summary.")

    def plot(self, face_id: int) -> Path:
        """The plot of face ``face_id``'s probabilities over time."""
        return self._named(f".face{face_id}.png")

    def existing(self) -> list[Path]:
        """The outputs of this video already in the folder."""
        return [p for p in (self.video, self.csv, self.partial_csv, self.summary) if p.exists()] + \
            sorted(self.out_dir.glob(f"{self.stem}.face*.png"))


def analyze_video(recognizer, path: str | Path, every: int = 1, out: OutputPaths | None = None,
                  overwrite: bool = False, show_progress: bool = False,
                  check: Callable[[VideoReader], None] | None = None,
                  max_frames: int | None = None,
                  on_frame: Callable[[int], None] | None = None) -> tuple[VideoReport, list[dict]]:
    """Detect, track and classify the faces of every ``every``-th frame of ``path``; returns the report and
    the rows (see :func:`video_columns`). With ``out``, the annotated video, CSV, plots and summary are
    written as it goes. ``check(reader)`` may raise :class:`VideoError` to refuse a video before any work
    (:class:`VideoReader` calls it with the header's frame size before decoding a frame);
    reading stops after ``max_frames`` (the report then says so). ``on_frame(index)`` runs before each frame is
    analysed: it may wait (a server sharing its cores between videos) or raise to stop (what was done so far is
    kept, as for a file that breaks off). Raises :class:`VideoError` for a file that cannot be read at all."""
    if every < 1:
        raise ValueError(f"every={every}: must be 1 or more")
    if out and not overwrite and (clash := out.existing()):
        raise VideoError(f"{clash[0]} already exists: choose another --out folder, or pass --overwrite")
    reader = VideoReader(path, check)
    try:
        return _run(recognizer, reader, every, out, show_progress, max_frames, on_frame)
    finally:
        reader.close()


def _run(recognizer, reader: VideoReader, every: int, out: OutputPaths | None,
         show_progress: bool, max_frames: int | None = None,
         on_frame: Callable[[int], None] | None = None) -> tuple[VideoReport, list[dict]]:
    from fer.core.cli import progress
    from fer.serving.recognize import draw_tracks
    from fer.serving.table import CsvTable, face_row

    report = VideoReport(str(reader.path), reader.width, reader.height, reader.fps, reader.frames_expected)
    rows: list[dict] = []
    writer = table = None
    if out:
        out.out_dir.mkdir(parents=True, exist_ok=True)
        writer = VideoWriter(out.video, reader.fps, reader.width, reader.height)
        table = CsvTable(out.partial_csv, video_columns(recognizer.classes))  # renamed when done

    def record(result) -> None:
        """One answered frame: its faces as rows, its tracks drawn on the annotated video."""
        if result.analysed:
            report.frames_analysed += 1
            new_rows = [{"frame": result.index, "time_s": round(result.timestamp_ms / 1000, 4), "face_id": f.face_id,
                         **face_row(f)} for f in sorted(result.faces, key=lambda f: f.face_id)]
            rows.extend(new_rows)
            if table:
                table.add(new_rows)
        if writer:
            annotated = result.frame.copy()
            draw_tracks(annotated, result.tracks, recognizer.classes, ids=True, rule=recognizer.rule)
            writer.write(annotated)

    session = recognizer.file_session(every, record)
    start = time.perf_counter()
    bar = progress(None, reader.frames_expected or None, reader.path.name, "frame", disable=not show_progress)
    try:
        for index, t, frame in reader.frames():
            if max_frames is not None and index >= max_frames:
                report.problem = f"{reader.path}: only the first {max_frames} frames were analysed (the limit)"
                break
            if on_frame:
                on_frame(index)
            session.detect_async(frame, 1000 * t)
            report.frames_read += 1
            bar.update()
        session.flush()
        report.problem = report.problem or reader.problem
    except KeyboardInterrupt:
        report.problem = f"{reader.path}: interrupted after frame {report.frames_read}"
        raise
    except Exception as e:  # results so far are kept, and marked partial, whatever went wrong
        report.problem = f"{reader.path}: stopped after frame {report.frames_read} ({type(e).__name__}: {e})"
        raise
    finally:
        bar.close()
        report.complete = report.problem is None
        report.seconds = time.perf_counter() - start
        report.face_ids = sorted({r["face_id"] for r in rows})
        if out:
            _finish(out, writer, table, rows, report, recognizer.classes)
    return report, rows


def _finish(out: OutputPaths, writer, table, rows: list[dict], report: VideoReport, classes) -> None:
    """Close the video and CSV (renamed to its final name when complete), plot each face, write the summary."""
    from fer.core.fileio import write_json_atomic

    if writer:
        writer.close()
    report.outputs["video"] = str(out.video)
    if table:
        table.close()
        final = out.csv if report.complete else out.partial_csv
        os.replace(table.path, final)
        report.outputs["csv"] = str(final)
    plots = []
    for face_id in report.face_ids:
        face_rows = [r for r in rows if r["face_id"] == face_id]
        if len(face_rows) >= MIN_PLOT_ROWS:
            plots.append(str(plot_faces(face_rows, [face_id], classes, out.plot(face_id), out.stem)))
    report.outputs["plots"] = plots
    write_json_atomic(out.summary, report.as_dict())
    report.outputs["summary"] = str(out.summary)


def plot_faces(rows: list[dict], face_ids: list[int], classes, path: str | Path, title: str = "",
               smooth_s: float = 0.5) -> Path:
    """Each face's class probabilities over time (one panel per face; a ``smooth_s``-second rolling mean),
    as a PNG."""
    import numpy as np

    from fer.core.plotting import pyplot
    from fer.serving.draw import CLASS_COLOURS

    plt = pyplot()
    fig, axes = plt.subplots(len(face_ids), 1, figsize=(9, 2.6 * len(face_ids) + 0.6), squeeze=False, sharex=True)
    for ax, face_id in zip(axes[:, 0], face_ids):
        face_rows = [r for r in rows if r["face_id"] == face_id]
        t = np.array([r["time_s"] for r in face_rows])
        step = float(np.median(np.diff(t))) if len(t) > 1 else 1.0
        window = min(len(t), max(1, round(smooth_s / step)) if step > 0 else 1)
        for c in classes:
            p = np.array([float(r[c]) for r in face_rows])
            kernel = np.ones(window)  # a centred mean over the samples that exist (no dip at the ends)
            smooth = np.convolve(p, kernel, mode="same") / np.convolve(np.ones_like(p), kernel, mode="same")
            ax.plot(t, smooth, label=c, color=np.array(CLASS_COLOURS.get(c, (90, 90, 90))) / 255 * 0.85, lw=1.6)
        ax.set_ylim(0, 1)
        ax.set_ylabel("probability")
        ax.set_title(f"face #{face_id}: {len(face_rows)} frames", fontsize=9, loc="left")
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("time (s)")
    axes[0, 0].legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return Path(path)


def analyze_video_to_frame(recognizer, path: str | Path, every: int = 1, out_dir: str | Path | None = None,
                           overwrite: bool = False):
    """:func:`analyze_video` as a pandas DataFrame; ``df.attrs`` holds the report (``complete``, ``problem``...)."""
    import pandas as pd

    out = OutputPaths(Path(out_dir), Path(path).stem) if out_dir is not None else None
    report, rows = analyze_video(recognizer, path, every, out, overwrite)
    df = pd.DataFrame(rows, columns=video_columns(recognizer.classes))
    df.attrs.update(report.as_dict())
    return df


def kept(out: OutputPaths) -> str:
    """Where the results of a run that stopped are: the files that are really there."""
    files = out.existing()
    return f"what was done so far is in {', '.join(map(str, files))}" if files else "nothing was written"


def video_outcome(recognizer, task, options):
    """One video of a batch run (:mod:`fer.serving.batch`): its tracked faces as rows of the run's table, and with
    ``options.out_dir`` its own annotated video, CSV, plots and summary there."""
    from fer.serving.batch import Outcome, batch_columns, rows_text

    out = OutputPaths(Path(options.out_dir), Path(task.path).stem) if options.out_dir else None
    report, rows = analyze_video(recognizer, task.path, options.every, out, options.overwrite)
    report.source = task.file
    columns = batch_columns(recognizer.classes)
    line = (f"{task.file}: {report.frames_read} frames ({report.frames_analysed} analysed) at "
            f"{report.processing_fps:.1f} frames/s, {len(report.face_ids)} face(s)")
    return Outcome(task.file, task.kind, columns, rows_text([{"file": task.file, **row} for row in rows], columns),
                   len(rows), problem=report.problem, line=line + (f"; {report.problem}" if report.problem else ""),
                   detail={"video": report.as_dict()}, frames=report.frames_analysed)


def batch_analyzers() -> dict:
    """The per-file functions of a batch run over photos and videos (``fer.serving.batch.JobOptions.analyzers``)."""
    from fer.serving.batch import photo_outcome

    return {"photo": photo_outcome, "video": video_outcome}


def video_header(path: str | Path) -> tuple[int, int, float]:
    """(width, height, duration in seconds) of a video's first video stream as its container announces them, no
    frame decoded (0 where the container does not say): limits can refuse a video before :class:`VideoReader`
    decodes a frame of any size. Raises :class:`VideoError` when FFmpeg cannot open it or it holds no video."""
    import av

    if not Path(path).is_file():
        raise VideoError(f"{path}: no such file")
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0] if container.streams.video else None
            if stream is not None:
                seconds = float(stream.duration * stream.time_base) if stream.duration and stream.time_base else \
                    (container.duration or 0) / 1e6
                return stream.codec_context.width or 0, stream.codec_context.height or 0, max(0.0, seconds)
    except (av.error.FFmpegError, OSError, ValueError):
        raise VideoError(f"{path}: not a video FFmpeg can read (unknown format, or a truncated or corrupt "
                         f"file)") from None
    raise VideoError(f"{path}: holds no video stream")
