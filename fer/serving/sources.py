"""Live video sources: a camera, a stream URL (RTSP, HTTP, RTMP, ... through FFmpeg) or a file still being written,
read by a thread as the frames come, for ``fer.video``'s live runs (:mod:`fer.serving.stream`).

- **camera** (``0``, ``1``, ...): OpenCV's capture (V4L2, AVFoundation, DirectShow/MSMF by platform).
- **url** (``rtsp://``, ``http://``, ...): PyAV's FFmpeg, with open and read timeouts (:data:`TIMEOUT_S`).
- **growing** file (``--follow``): PyAV's FFmpeg reading a file that waits at its end for more data, until the
  file has not grown for ``idle_s``. Formats written as a stream work (Matroska/WebM, MPEG-TS, fragmented MP4,
  AVI); a plain MP4 or MOV keeps its index at the end and can be read only once finished.

Cameras and URLs keep only the newest frame for the analysis (:class:`Handover`): a frame not taken before the next
one comes is dropped and counted, so a slow analysis lags by one frame at most and memory stays flat. A growing file
keeps every frame instead: its reader waits for the analysis (the backlog stays on disk).

A camera or stream that stops (read error, end of stream, timeout) is reopened with :class:`Backoff` (0.5 s, 1, 2,
4, then every 8 s) until it is back, the run ends, or ``give_up_s`` have passed; its outage is a :class:`Gap`.
Times are seconds since reading started (arrival times), so gaps show in them; a growing file's are its own.
"""

from __future__ import annotations

import math
import re
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit, urlunsplit

if TYPE_CHECKING:
    import numpy as np

SOURCE_KINDS = ("camera", "url", "growing")
URL_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "udp", "tcp", "srt", "rtp")
#: Seconds a stream URL may take to answer when it is opened, and between two reads.
TIMEOUT_S = 5.0
#: A file followed with ``--follow`` ends when it has not grown for this many seconds.
IDLE_S = 10.0


class SourceError(ValueError):
    """A source cannot be used; the message names it and what is wrong."""


def is_live(text: str) -> bool:
    """Whether a command-line input names a camera (a number) or a stream URL rather than a file."""
    return text.isdigit() or urlsplit(text).scheme.lower() in URL_SCHEMES


@dataclass(frozen=True)
class SourceSpec:
    """Which source to open: ``kind`` (:data:`SOURCE_KINDS`) and ``target`` (camera index, URL or path)."""

    kind: str
    target: str

    @classmethod
    def parse(cls, text: str, follow: bool = False) -> SourceSpec:
        """A number is a camera, ``scheme://...`` a stream URL, anything else a file (``follow``: still being
        written). A file named like a number is ``./0``."""
        if text.isdigit():
            return cls("camera", text)
        if urlsplit(text).scheme.lower() in URL_SCHEMES:
            return cls("url", text)
        if follow:
            return cls("growing", text)
        raise SourceError(f"{text}: not a live source (a camera number, a stream URL, or a file with --follow)")

    @property
    def label(self) -> str:
        """How messages and summaries name it (a URL's password hidden)."""
        if self.kind == "camera":
            return f"camera {self.target}"
        if self.kind == "url":
            return redact(self.target)
        return self.target

    @property
    def name(self) -> str:
        """A file name stem for its outputs: ``camera0``, ``cam.local_554_live``, ``recording``."""
        if self.kind == "camera":
            return f"camera{self.target}"
        if self.kind == "growing":
            return Path(self.target).stem
        parts = urlsplit(self.target)
        path = re.sub(r"\.[A-Za-z0-9]+$", "", parts.path)  # stream.mjpg: stream
        name = "_".join(str(p) for p in (parts.hostname, parts.port, path) if p)
        return re.sub(r"[^A-Za-z0-9.-]+", "_", name).strip("_.") or "stream"


def redact(url: str) -> str:
    """``url`` with any password replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


@dataclass(frozen=True)
class Backoff:
    """Waits before the reopening attempts of a dropped source: ``first_s``, times ``factor`` each time, at most
    ``max_s`` (0.5, 1, 2, 4, 8, 8, ... s by default)."""

    first_s: float = 0.5
    factor: float = 2.0
    max_s: float = 8.0

    def delay(self, attempt: int) -> float:
        """The wait before attempt number ``attempt`` (1, 2, ...)."""
        return min(self.max_s, self.first_s * self.factor ** (attempt - 1))


@dataclass
class SourceFrame:
    """One decoded frame: its number among the frames received (dropped ones included), time, RGB pixels."""

    index: int
    time_s: float
    rgb: np.ndarray = field(repr=False)


@dataclass
class Gap:
    """A time the source was gone: from ``start_s`` (when it stopped) to ``end_s`` (its first frame back, or the
    run's end when it never came back), why it stopped, the reopening attempts and why the last one failed."""

    start_s: float
    reason: str
    end_s: float | None = None
    attempts: int = 0
    reconnected: bool = False
    last_error: str | None = None

    @property
    def seconds(self) -> float:
        """How long the source was away (0 while it still is)."""
        return 0.0 if self.end_s is None else self.end_s - self.start_s

    def as_dict(self) -> dict:
        """The gap for the JSON summary (times rounded to milliseconds)."""
        return {"start_s": round(self.start_s, 3), "end_s": None if self.end_s is None else round(self.end_s, 3),
                "gap_s": round(self.seconds, 3), "reason": self.reason, "attempts": self.attempts,
                "reconnected": self.reconnected, "last_error": self.last_error}


@dataclass
class SourceEvent:
    """Something that happened to the source, in order with its frames: ``lost`` (it stopped; ``gap.end_s`` still
    None) or ``gap`` (it is back, or the run ended while it was gone: ``gap`` complete)."""

    kind: str
    time_s: float
    gap: Gap


class Capture(Protocol):
    """An opened source: ``read()`` gives (RGB frame, its own time or None) or None at its end; raises on errors."""

    def read(self) -> tuple[np.ndarray, float | None] | None:
        """The next RGB frame and its time in seconds (None when the source gives none), or None at its end."""

    def close(self) -> None:
        """Release the source."""


class CameraCapture:
    """A camera through OpenCV."""

    def __init__(self, index: int):
        import cv2

        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)  # our message says what is wrong
        self.cap = cv2.VideoCapture(index)
        if not self.cap.isOpened():
            self.cap.release()
            raise SourceError(f"camera {index}: cannot be opened ({camera_problem(index)})")

    def read(self) -> tuple[np.ndarray, float | None] | None:
        """The camera's next frame as RGB (no time of its own), or None when it gives none."""
        import cv2

        ok, frame = self.cap.read()
        if not ok or frame is None or frame.size == 0:
            return None
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB if frame.ndim == 2 else cv2.COLOR_BGR2RGB), None

    def close(self) -> None:
        """Release the camera."""
        self.cap.release()


def camera_problem(index: int) -> str:
    """Why a camera would not open, as far as the system tells (Linux names its devices /dev/videoN)."""
    if sys.platform.startswith("linux"):
        return "in use by another program, or not allowed" if Path(f"/dev/video{index}").exists() else "no such device"
    return "no such device, or in use by another program"


class FFmpegCapture:
    """A stream URL or a growing file through PyAV (FFmpeg): decoded frames with their own times. Packets that do
    not decode are skipped and counted in ``undecodable``."""

    def __init__(self, target: str, label: str, file=None, timeout_s: float = TIMEOUT_S,
                 options: dict[str, str] | None = None):
        import av

        if target.startswith("rtsp"):
            options = {"rtsp_transport": "tcp", **(options or {})}
        try:
            self.container = av.open(file if file is not None else target, "r", options=options or {},
                                     timeout=None if file is not None else (timeout_s, timeout_s))
        except av.FFmpegError as e:
            raise SourceError(f"{label}: cannot be opened ({ffmpeg_problem(e)})") from None
        if not self.container.streams.video or not self.container.streams.video[0].width:
            self.container.close()
            raise SourceError(f"{label}: cannot be opened (no video stream found)")
        self.stream = self.container.streams.video[0]
        self.undecodable = 0
        self._frames = self._decode()

    def _decode(self) -> Iterator:
        import av

        for packet in self.container.demux(self.stream):
            try:
                yield from packet.decode()
            except av.InvalidDataError:
                self.undecodable += 1

    def read(self) -> tuple[np.ndarray, float | None] | None:
        """The next decoded frame as RGB with its time in seconds (when finite), or None at the end."""
        frame = next(self._frames, None)
        if frame is None:
            return None
        t = frame.time
        return frame.to_ndarray(format="rgb24"), t if t is not None and math.isfinite(t) else None

    def close(self) -> None:
        """Close the stream or file."""
        self.container.close()


def ffmpeg_problem(error: Exception) -> str:
    """FFmpeg's reason without the target it repeats (its timeout named as such)."""
    import av

    if isinstance(error, av.ExitError):  # PyAV's timeout interrupted FFmpeg
        return f"nothing came for {TIMEOUT_S:g} s"
    return getattr(error, "strerror", None) or str(error)


class GrowingFile:
    """A file read as it is written: a read at its end waits for more data, and returns nothing (the end) once the
    file has not grown for ``idle_s`` or ``stop`` is set. Not seekable, so FFmpeg reads it front to back."""

    def __init__(self, path: Path, idle_s: float, stop: threading.Event, poll_s: float = 0.1):
        self.file = open(path, "rb")  # noqa: SIM115 - closed by close()
        self.idle_s, self.stop, self.poll_s = idle_s, stop, poll_s
        self.last_growth = time.monotonic()

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes; waits while the file has not grown, and returns ``b""`` once it has been idle for
        ``idle_s`` or the run stops."""
        while True:
            data = self.file.read(size)
            if data:
                self.last_growth = time.monotonic()
                return data
            if self.stop.is_set() or time.monotonic() - self.last_growth > self.idle_s:
                return b""
            self.stop.wait(self.poll_s)

    def restart_clock(self) -> None:
        """Count the idle time from now (when the reading starts, after the model has loaded)."""
        self.last_growth = time.monotonic()

    def close(self) -> None:
        """Close the file."""
        self.file.close()


FOLLOWABLE = ("a file being written must be a streaming format (MKV/WebM, MPEG-TS, fragmented MP4, AVI): a plain "
              "MP4 or MOV has its index at the end and is read once finished, without --follow")


def index_at_end(path: Path) -> bool:
    """Whether ``path`` is an MP4/MOV whose frames come before their index (``mdat`` before ``moov``: a plain MP4,
    which cannot be read while it is written); False for other formats and fragmented MP4 (index first)."""
    import struct

    with open(path, "rb") as f:
        while len(header := f.read(8)) == 8:
            size, kind = struct.unpack(">I4s", header)
            if kind == b"moov":
                return False
            if kind == b"mdat":
                return True
            if kind not in (b"ftyp", b"free", b"skip", b"wide", b"uuid", b"pdin"):
                return False  # not an MP4 box (another format)
            header_size = 8
            if size == 1:  # a 64-bit size follows
                size, header_size = struct.unpack(">Q", f.read(8))[0], 16
            if size < header_size:
                return False
            f.seek(size - header_size, 1)
    return False


#: FFmpeg's low-latency probing: the container's header and first packet only.
QUICK_PROBE = (("probesize", "32"), ("analyzeduration", "0"))


class GrowingFileCapture(FFmpegCapture):
    """A file still being written (:class:`GrowingFile`) through FFmpeg. It is probed from its first bytes
    (:data:`QUICK_PROBE`: the frames come as soon as they are written, and a probe never waits for data that is
    not there yet), and again with FFmpeg's full probe when that finds no video."""

    def __init__(self, path: Path, idle_s: float, stop: threading.Event):
        if not path.is_file():
            raise SourceError(f"{path}: no such file")
        if index_at_end(path):
            raise SourceError(f"{path}: {FOLLOWABLE}")
        for options in (dict(QUICK_PROBE), {}):
            self.file = GrowingFile(path, idle_s, stop)
            try:
                super().__init__(str(path), str(path), self.file, options=options)
                return
            except SourceError as e:
                self.file.close()
                problem = e
        raise SourceError(f"{problem}; {FOLLOWABLE}")

    def close(self) -> None:
        """Close the decoder and the file under it."""
        super().close()
        self.file.close()


def open_capture(spec: SourceSpec, idle_s: float = IDLE_S, stop: threading.Event | None = None) -> Capture:
    """Open ``spec``'s source now; raises :class:`SourceError` saying why it cannot be."""
    if spec.kind == "camera":
        return CameraCapture(int(spec.target))
    if spec.kind == "url":
        return FFmpegCapture(spec.target, spec.label)
    if spec.kind == "growing":
        return GrowingFileCapture(Path(spec.target), idle_s, stop or threading.Event())
    raise SourceError(f"{spec.target}: unknown source kind {spec.kind!r} (one of {', '.join(SOURCE_KINDS)})")


#: What :meth:`Handover.take` gives once the source has ended and everything was taken.
END = object()


class Handover:
    """Frames and events from the reader thread to the analysis, in order. Events are always kept. With ``drop``,
    only the newest frame waits: one not taken before the next comes is replaced (counted in ``dropped``);
    without, the reader waits while ``depth`` frames wait (nothing dropped)."""

    def __init__(self, drop: bool, depth: int = 2):
        self.drop, self.depth, self.dropped = drop, depth, 0
        self._items: deque = deque()
        self._ready = threading.Condition()
        self._finished = False
        self._failure: BaseException | None = None

    def put_frame(self, frame: SourceFrame, stop: threading.Event) -> None:
        """Hand a frame to the consumer: with ``drop``, replace a frame not yet taken (counted); else wait while
        ``depth`` frames wait."""
        with self._ready:
            if self.drop and self._items and isinstance(self._items[-1], SourceFrame):
                self._items[-1] = frame
                self.dropped += 1
            else:
                while (not self.drop and not stop.is_set()
                       and sum(isinstance(i, SourceFrame) for i in self._items) >= self.depth):
                    self._ready.wait(0.2)
                self._items.append(frame)
            self._ready.notify_all()

    def put_event(self, event: SourceEvent) -> None:
        """Hand an event (a gap, the source lost or back) to the consumer; events are never dropped."""
        with self._ready:
            self._items.append(event)
            self._ready.notify_all()

    def finish(self, failure: BaseException | None = None) -> None:
        """No more items (``failure``: the reader thread died of it; :meth:`take` raises it)."""
        with self._ready:
            self._finished, self._failure = True, failure
            self._ready.notify_all()

    def take(self, timeout: float | None) -> SourceFrame | SourceEvent | object | None:
        """The next item; :data:`END` when the source has ended; None when nothing came within ``timeout``."""
        with self._ready:
            self._ready.wait_for(lambda: self._items or self._finished, timeout)
            if self._items:
                item = self._items.popleft()
                self._ready.notify_all()
                return item
            if self._failure is not None:
                raise self._failure
            return END if self._finished else None

    def left(self) -> list:
        """Take everything still waiting (at the end of a run)."""
        with self._ready:
            items, self._items = list(self._items), deque()
            self._ready.notify_all()
            return items


class LiveSource:
    """A source read by a thread as its frames come (:meth:`start`, then :meth:`take` until :data:`END`,
    :meth:`close`): the newest frame for cameras and URLs, every frame for a growing file; a dropped camera or
    stream reopened with ``backoff`` (given up after ``give_up_s`` without a frame, when set)."""

    def __init__(self, spec: SourceSpec, backoff: Backoff = Backoff(), give_up_s: float | None = None,
                 idle_s: float = IDLE_S):
        self.spec, self.backoff, self.give_up_s, self.idle_s = spec, backoff, give_up_s, idle_s
        self.handover = Handover(drop=spec.kind != "growing")
        self.received = 0
        self.gaps: list[Gap] = []
        self.ended: str | None = None  # why the source ended by itself
        self.gave_up = False  # it was gone for longer than give_up_s
        self.width = self.height = 0
        self.undecodable = 0  # packets that did not decode (skipped)
        self._stop = threading.Event()
        self._capture: Capture | None = None
        self._thread: threading.Thread | None = None
        self._started = 0.0

    @property
    def label(self) -> str:
        """The source as the user named it (a camera number, a URL, a file)."""
        return self.spec.label

    @property
    def noun(self) -> str:
        """What the source is, for messages: camera, stream or file."""
        return {"camera": "camera", "url": "stream"}.get(self.spec.kind, "file")

    @property
    def dropped(self) -> int:
        """Frames dropped because analysis fell behind the source."""
        return self.handover.dropped

    def open(self) -> LiveSource:
        """Open the source now (before any model loads), so a source that cannot be used fails at once."""
        self._capture = open_capture(self.spec, self.idle_s, self._stop)
        return self

    def start(self) -> None:
        """Start reading; times count from now."""
        if self._capture is None:
            self.open()
        self._started = time.monotonic()
        if isinstance(self._capture, GrowingFileCapture):
            self._capture.file.restart_clock()
        self._thread = threading.Thread(target=self._read_all, name=f"read {self.label}", daemon=True)
        self._thread.start()

    def now(self) -> float:
        """Seconds since the source was started."""
        return time.monotonic() - self._started

    def take(self, timeout: float | None = None):
        """The next :class:`SourceFrame` or :class:`SourceEvent`; :data:`END` once the source has ended; None
        when nothing came within ``timeout``. Raises what broke the reader thread."""
        return self.handover.take(timeout)

    def close(self) -> list[SourceEvent]:
        """Stop reading; returns the events not yet taken, and the :class:`Gap` still open ending now. The frames
        not taken count as dropped."""
        self._stop.set()
        if self._thread:
            self._thread.join(TIMEOUT_S + 1)
        elif self._capture is not None:  # opened, never started
            self._close(self._capture)
            self._capture = None
        left = self.handover.left()
        self.handover.dropped += sum(isinstance(i, SourceFrame) for i in left)
        events = [i for i in left if isinstance(i, SourceEvent)]
        if self.gaps and self.gaps[-1].end_s is None:
            gap = self.gaps[-1]
            gap.end_s = max(gap.start_s, self.now())
            events.append(SourceEvent("gap", gap.start_s, gap))
        return events

    def _read_all(self) -> None:
        """The reader thread: frames to the handover, reopening a dropped source, until stopped or ended."""
        capture = self._capture
        try:
            while not self._stop.is_set():
                if capture is None and (capture := self._reopen()) is None:
                    break
                try:
                    got, problem = capture.read(), None
                except Exception as e:  # noqa: BLE001 - FFmpeg, OpenCV and network errors: a drop, reopened
                    got, problem = None, ffmpeg_problem(e)
                if got is not None:
                    self._deliver(*got)
                    continue
                self._close(capture)
                capture = self._capture = None
                if self._stop.is_set():  # stopped while a read waited: no loss to record
                    break
                if self.spec.kind == "growing":  # a file is not reopened: its end is the end
                    self.ended = (f"{self.label}: reading stopped ({problem})" if problem else
                                  f"{self.label} stopped growing (no new data for {self.idle_s:g} s)")
                    break
                self._lost(f"the {self.noun} broke off ({problem})" if problem else
                           f"the {self.noun} stopped sending frames")
            self.handover.finish()
        except BaseException as e:  # noqa: BLE001 - handed to the analysis thread, which raises it
            self.handover.finish(e)
        finally:
            if capture is not None:
                self._close(capture)

    def _close(self, capture: Capture) -> None:
        self.undecodable += getattr(capture, "undecodable", 0)
        capture.close()

    def _deliver(self, rgb: np.ndarray, own_time: float | None) -> None:
        now = self.now()
        if self.gaps and self.gaps[-1].end_s is None:  # back after a drop
            gap = self.gaps[-1]
            gap.end_s, gap.reconnected = now, True
            self.handover.put_event(SourceEvent("gap", gap.start_s, gap))
        self.height, self.width = rgb.shape[:2]
        t = own_time if self.spec.kind == "growing" and own_time is not None else now
        self.handover.put_frame(SourceFrame(self.received, t, rgb), self._stop)
        self.received += 1

    def _lost(self, reason: str) -> None:
        if self.gaps and self.gaps[-1].end_s is None:  # reopened, but no frame came: the same gap goes on
            self.gaps[-1].last_error = reason
            return
        gap = Gap(self.now(), reason)
        self.gaps.append(gap)
        self.handover.put_event(SourceEvent("lost", gap.start_s, gap))

    def _reopen(self) -> Capture | None:
        """Reopen after :class:`Backoff`'s waits; None when stopped or given up (``ended`` says why)."""
        gap = self.gaps[-1]
        while True:
            wait = self.backoff.delay(gap.attempts + 1)
            if self.give_up_s is not None and self.now() + wait - gap.start_s > self.give_up_s:
                self.ended = f"{self.label}: gone for {self.now() - gap.start_s:.0f} s, given up ({gap.reason})"
                self.gave_up = True
                return None
            if self._stop.wait(wait):
                return None
            gap.attempts += 1
            try:
                self._capture = open_capture(self.spec, self.idle_s, self._stop)
                return self._capture
            except SourceError as e:
                gap.last_error = str(e)
