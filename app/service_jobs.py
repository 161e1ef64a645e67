"""The video jobs of ``fer-serve`` (:mod:`fer_app.service`): one folder per job in a jobs folder that every worker
process of one server shares, so any of them answers a job's status, result and deletion; the analysis runs in the
process that took the upload, one video at a time, in a thread of its own.

A job's folder holds ``status.json`` (rewritten atomically as the job goes), the upload while it is analysed, and
``result.json`` and ``result.csv`` once it is done. Deleting a job removes its folder; a running job notices
within :data:`STATUS_EVERY_S` and stops. Finished jobs are swept after :data:`JOB_KEEP_S`.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import re
import shutil
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from fer.core.card import timestamp
from fer.serving.video import VideoError, VideoReader, analyze_video, video_columns, video_header

log = logging.getLogger(__name__)

#: A finished job's status and results are kept this long (or until DELETE).
JOB_KEEP_S = 3600
#: At most this many jobs are stored at once (queued, running and finished, all processes together).
MAX_STORED_JOBS = 200
#: A running job's status (progress) is rewritten, and its deletion noticed, this often.
STATUS_EVERY_S = 0.5
#: The most frames a video is read for: 120 frames a second of the longest video allowed.
MAX_FPS = 120
#: Job ids: 32 hexadecimal digits (a random UUID).
JOB_ID = re.compile(r"^[0-9a-f]{32}$")
#: The states of a job, in order.
STATES = ("queued", "running", "done", "failed")
UNFINISHED = ("queued", "running")


class JobGone(Exception):
    """The job was deleted (its folder removed) while it waited or ran."""


class ServerStopping(Exception):
    """The server is stopping: the running job ends here."""


class VideoOverLimit(VideoError):
    """A readable video over the service's limits (length, frame size)."""


@dataclass(frozen=True)
class VideoLimits:
    """What a video job may be: its length in seconds and its frame size in pixels."""

    max_s: float
    max_pixels: int

    @property
    def max_frames(self) -> int:
        """The most frames a video within the limits can have."""
        return math.ceil(self.max_s * MAX_FPS)

    def check(self, name: str, width: int, height: int, seconds: float) -> None:
        """:class:`VideoOverLimit` naming the limit when a video of this size and length is over one."""
        if seconds > self.max_s:
            raise VideoOverLimit(f"{name} is {seconds:.1f} s long; this service takes videos of up to "
                                 f"{self.max_s:g} s (the server's --max-video-s)")
        if width * height > self.max_pixels:
            raise VideoOverLimit(f"{name} is {width}×{height}; this service takes frames of up to "
                                 f"{self.max_pixels / 1e6:.2f} megapixels (the server's --max-video-pixels)")


def check_video(path: Path, name: str, limits: VideoLimits) -> None:
    """Check the video at ``path`` (the upload called ``name``) against ``limits``: first from its container's
    header (nothing decoded), then by decoding its first frame; raises :class:`VideoError` naming ``name``
    (never the server's path) when it cannot be used."""
    try:
        limits.check(name, *video_header(path))
        reader = VideoReader(path)
        try:
            limits.check(name, reader.width, reader.height, reader.duration_s)
        finally:
            reader.close()
    except VideoError as e:
        raise type(e)(str(e).replace(str(path), name)) from None


class JobStore:
    """The jobs folder: one sub-folder per job, read and written by every worker process of the server."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def folder(self, job_id: str) -> Path | None:
        """The folder of job ``job_id``, or None when there is no such job."""
        if not JOB_ID.match(job_id):
            return None
        folder = self.root / job_id
        return folder if folder.is_dir() else None

    def create(self, data: bytes, name: str) -> tuple[str, Path]:
        """A new job holding the upload ``data`` (called ``name``); returns its id and the upload's path."""
        job_id = uuid.uuid4().hex
        folder = self.root / job_id
        folder.mkdir()
        suffix = Path(name).suffix.lower()  # a hint for FFmpeg; the name itself is never used on disk
        video = folder / ("upload" + (suffix if re.fullmatch(r"\.[a-z0-9]{1,5}", suffix) else ".bin"))
        video.write_bytes(data)
        return job_id, video

    def status(self, job_id: str) -> dict | None:
        """The job's status document (:func:`public`), or None when there is no such job. A job left queued or
        running by a worker process that has stopped is reported failed."""
        folder = self.folder(job_id)
        if folder is None:
            return None
        try:
            status = json.loads((folder / "status.json").read_text())
        except (OSError, ValueError):
            return None  # being created or deleted
        if status["status"] in UNFINISHED and not process_alive(status.get("_owner", 0)):
            status.update(status="failed", finished=timestamp(), _finished_at=time.time(),
                          problem=job_problem(500, "worker stopped", f"the worker process that held job {job_id} "
                                              f"stopped before finishing it: submit the video again"))
            try:
                self.write_status(folder, status)  # recorded, so that the job is swept in time
            except JobGone:
                return None
        return status

    def write_status(self, folder: Path, status: dict) -> None:
        """Replace the job's ``status.json`` atomically; :class:`JobGone` when its folder has been removed (the
        folder is never made again here)."""
        tmp = folder / f".status.{threading.get_ident()}.tmp"
        try:
            tmp.write_text(json.dumps(status))
            os.replace(tmp, folder / "status.json")
        except FileNotFoundError:
            raise JobGone(folder.name) from None

    def delete(self, job_id: str) -> bool:
        """Remove a job and its files (a running job stops); False when there is no such job."""
        folder = self.folder(job_id)
        if folder is None:
            return False
        trash = self.root / f".deleted-{job_id}-{uuid.uuid4().hex[:8]}"
        try:
            folder.rename(trash)  # one step: from here on the job is gone for every process
        except FileNotFoundError:
            return False
        shutil.rmtree(trash, ignore_errors=True)
        return True

    def sweep(self, keep_s: float = JOB_KEEP_S) -> None:
        """Remove jobs finished more than ``keep_s`` seconds ago, and folders left without a status."""
        now = time.time()
        for folder in self.root.iterdir():
            try:
                status = self.status(folder.name)
                finished_at = status.get("_finished_at") if status else None
                stale = (status is None and now - folder.stat().st_mtime > 60) or \
                    (finished_at is not None and now - finished_at > keep_s)
            except OSError:
                continue
            if stale:
                shutil.rmtree(folder, ignore_errors=True)

    def count(self) -> int:
        """How many jobs the store holds."""
        return sum(1 for p in self.root.iterdir() if JOB_ID.match(p.name))


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def job_problem(status: int, title: str, detail: str) -> dict:
    """A failed job's problem details (RFC 9457), as its status document carries them."""
    return {"type": f"urn:fer-serve:problem:{title.replace(' ', '-')}", "title": title, "status": status,
            "detail": detail}


def public(status: dict) -> dict:
    """A status document as clients see it: without the fields private to the server (``_owner``...)."""
    return {k: v for k, v in status.items() if not k.startswith("_")}


@dataclass
class Job:
    """A video job: its id, folder, the uploaded video and its name, and its status document."""
    id: str
    folder: Path
    video: Path
    name: str
    status: dict


class JobRunner:
    """This process's video jobs: at most ``capacity`` queued or running here, analysed one at a time."""

    def __init__(self, store: JobStore, recognizer, limits: VideoLimits, capacity: int):
        self.store, self.recognizer, self.limits, self.capacity = store, recognizer, limits, capacity
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="fer-video")
        self._lock = threading.Lock()
        self.stopping = threading.Event()
        self.pending = 0  # reserved, queued or running in this process
        self.seconds = 10.0  # a job's time so far (moving average): the Retry-After of a full queue

    def reserve(self) -> bool:
        """Take a place for one more job; False when this process's queue is full."""
        with self._lock:
            if self.pending >= self.capacity:
                return False
            self.pending += 1
            return True

    def release(self) -> None:
        """Give back a reserved place."""
        with self._lock:
            self.pending -= 1

    def retry_after(self) -> int:
        """Seconds until a place is likely free."""
        return max(1, math.ceil(self.seconds))

    def stop(self) -> None:
        """At the server's shutdown: the running job stops at its next frame (failed: the server stopped), queued
        ones never start, so the process exits at once."""
        self.stopping.set()
        self.executor.shutdown(wait=False, cancel_futures=True)

    def submit(self, job_id: str, video: Path, name: str) -> dict:
        """Queue a checked upload (its place :meth:`reserve`-d); returns its first status document."""
        status = {"id": job_id, "status": "queued", "name": name, "created": timestamp(), "started": None,
                  "finished": None, "progress": 0.0, "frames_read": 0, "frames_expected": None, "video": None,
                  "problem": None, "results": None, "_owner": os.getpid()}
        job = Job(job_id, video.parent, video, name, dict(status))
        self.store.write_status(job.folder, status)
        self.executor.submit(self._run, job)
        return status

    def _run(self, job: Job) -> None:
        start = time.perf_counter()
        try:
            self._analyse(job)
        except JobGone:
            log.info("video job %s was deleted", job.id)
        except ServerStopping:
            self._end(job, "failed", problem=job_problem(503, "server stopped", f"{job.name}: the server stopped "
                                                         f"after frame {job.status['frames_read']}: submit it again"))
        except VideoError as e:
            self._end(job, "failed", problem=job_problem(422, "video unreadable",
                                                         str(e).replace(str(job.video), job.name)))
        except Exception as e:
            log.exception("video job %s failed", job.id)
            self._end(job, "failed", problem=job_problem(500, "analysis failed",
                                                         f"{job.name}: the analysis stopped ({type(e).__name__})"))
        finally:
            job.video.unlink(missing_ok=True)
            self.seconds = 0.7 * self.seconds + 0.3 * (time.perf_counter() - start)
            self.release()

    def _analyse(self, job: Job) -> None:
        job.status.update(status="running", started=timestamp())
        self.store.write_status(job.folder, job.status)
        last = [0.0]

        def on_frame(index: int) -> None:  # before frame ``index`` is analysed: ``index`` frames are read
            frames_read = index
            job.status["frames_read"] = frames_read
            if self.stopping.is_set():
                raise ServerStopping
            if time.monotonic() - last[0] >= STATUS_EVERY_S:
                last[0] = time.monotonic()
                job.status["progress"] = self._progress(frames_read, job)
                self.store.write_status(job.folder, job.status)  # JobGone once deleted: the run stops

        def remember_length(reader: VideoReader) -> None:
            job.status["frames_expected"] = reader.frames_expected or None

        report, rows = analyze_video(self.recognizer, job.video, check=remember_length,
                                     max_frames=self.limits.max_frames, on_frame=on_frame)
        summary = {k: v for k, v in report.as_dict().items() if k not in ("source", "outputs")}
        if summary["problem"]:
            summary["problem"] = summary["problem"].replace(str(job.video), job.name)
        self._write_results(job, summary, rows)
        self._end(job, "done", video=summary, frames_read=report.frames_read, progress=1.0,
                  results={"json": f"/v1/videos/{job.id}/result?format=json",
                           "csv": f"/v1/videos/{job.id}/result?format=csv"})

    def _progress(self, frames_read: int, job: Job) -> float | None:
        total = min(job.status["frames_expected"] or 0, self.limits.max_frames)
        return round(min(1.0, frames_read / total), 4) if total else None

    def _write_results(self, job: Job, summary: dict, rows: list[dict]) -> None:
        """result.json (the summary and every row, empty cells as null) and result.csv, each written whole."""
        columns = video_columns(self.recognizer.classes)
        table = [{c: (None if row.get(c, "") == "" else row[c]) for c in columns} for row in rows]
        document = {"id": job.id, "name": job.name, "video": summary, "columns": columns, "rows": table}
        for name, write in (("result.json", lambda f: json.dump(document, f)),
                            ("result.csv", lambda f: write_csv(f, columns, rows))):
            tmp = job.folder / f".{name}.tmp"
            try:
                with open(tmp, "w", newline="") as f:
                    write(f)
                os.replace(tmp, job.folder / name)
            except FileNotFoundError:
                raise JobGone(job.id) from None

    def _end(self, job: Job, state: str, **fields) -> None:
        job.status.update(status=state, finished=timestamp(), _finished_at=time.time(), **fields)
        try:
            self.store.write_status(job.folder, job.status)
        except JobGone:
            pass


def write_csv(file, columns: list[str], rows: list[dict]) -> None:
    """Write ``rows`` with a header of ``columns`` to ``file``."""
    writer = csv.DictWriter(file, columns)
    writer.writeheader()
    writer.writerows(rows)
