"""The app's temporary files: one folder per run of the app, annotated results deleted after a while, and the
folders of runs that died (``kill -9``, a crash, a power cut) removed when the app next starts."""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import stat
import sys
import tempfile
import threading
import time
import uuid
import weakref
from pathlib import Path

import cv2
import numpy as np

from fer_app.settings import CACHE_SWEEP


class ResultFiles:
    """Annotated uploads as JPEG files with unique names, deleted after ``keep_s`` seconds.

    Gradio caches a returned numpy image under a hash of its bytes and writes it in place, so two requests
    with the same result race: one client can download the file while the other is rewriting it (9 of 200
    uploads failed that way in benchmarks/load_test.py). A returned file path is copied into the cache
    atomically instead. The folder is removed by :meth:`close`, or when the app exits."""

    def __init__(self, keep_s: float = CACHE_SWEEP[1], parent: str | Path | None = None):
        self.dir = Path(tempfile.mkdtemp(prefix="fer-results-", dir=parent))
        self.keep_s = keep_s
        self._remove = weakref.finalize(self, shutil.rmtree, self.dir, ignore_errors=True)  # also at exit

    def close(self) -> None:
        """Delete the folder and everything in it now."""
        self._remove()

    def sweep_every(self, seconds: float) -> None:
        """Also sweep every ``seconds`` in the background (results are deleted on time when no request comes)."""
        def sweep_while_open():
            while self._remove.alive and self.dir.exists():
                time.sleep(seconds)
                self._sweep()

        threading.Thread(target=sweep_while_open, daemon=True, name="sweep-results").start()

    def save(self, image: np.ndarray) -> str:
        """Write ``image`` (RGB) as a JPEG with a unique name; returns its path (old files are swept first)."""
        self._sweep()
        ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
        if not ok:
            raise RuntimeError(f"could not encode a {image.shape} image as JPEG")
        path = self.dir / f"{uuid.uuid4().hex}.jpg"
        path.write_bytes(jpeg.tobytes())
        return str(path)

    def folder(self) -> Path:
        """A new, empty folder for one request's files (a video's results), swept like the images."""
        self._sweep()
        path = self.dir / uuid.uuid4().hex
        path.mkdir()
        return path

    def _sweep(self) -> None:
        cutoff = time.time() - self.keep_s
        try:
            entries = [*self.dir.glob("*.jpg"), *(d for d in self.dir.iterdir() if d.is_dir())]
        except FileNotFoundError:  # closed meanwhile
            return
        for old in entries:
            try:
                if last_written(old) < cutoff:
                    shutil.rmtree(old) if old.is_dir() else old.unlink()
            except FileNotFoundError:  # another request swept it first
                pass


def sweep_files(root: Path, keep_s: float) -> int:
    """Delete the files under ``root`` last written (or moved there) more than ``keep_s`` seconds ago, then the
    folders left empty; returns how many files went. Gradio's own sweep covers only the files it tracks: this one
    keeps the page's word for everything in the folder."""
    cutoff = time.time() - keep_s
    removed = 0
    for folder, subfolders, files in os.walk(root, topdown=False):
        for name in files:
            path = Path(folder) / name
            try:
                info = path.lstat()
                if max(info.st_mtime, info.st_ctime) < cutoff:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:
                pass
        if Path(folder) != root:
            try:
                if Path(folder).stat().st_mtime < cutoff:  # not one made a moment ago for a new file
                    Path(folder).rmdir()  # only when empty
            except OSError:
                pass
    return removed


def sweep_every(root: Path, every_s: float, keep_s: float) -> threading.Thread:
    """:func:`sweep_files` on ``root`` every ``every_s`` seconds, in the background, for as long as the app runs."""
    def sweep_forever():
        while True:
            time.sleep(every_s)
            if root.exists():
                sweep_files(root, keep_s)

    thread = threading.Thread(target=sweep_forever, daemon=True, name=f"sweep-{root.name}")
    thread.start()
    return thread


def last_written(path: Path) -> float:
    """A file's modification time; for a folder, that of its newest file (a video still being written
    keeps its folder alive)."""
    times = [f.stat().st_mtime for f in path.iterdir()] if path.is_dir() else []
    return max(times, default=path.stat().st_mtime)


#: The file in each run's temporary folder naming the process that owns it (its PID and start time).
OWNER_FILE = "fer-app.owner"
TEMP_PREFIX = "fer-app-"


def app_temp_folder(parent: str | Path | None = None) -> Path:
    """One temporary folder for this run of the app (under ``parent``, default the system's temporary folder),
    holding Gradio's uploads and cached frames (``GRADIO_TEMP_DIR``) and the annotated results; removed when the
    app exits, SIGTERM included, and by the next start if this run dies without exiting
    (:func:`remove_dead_runs`)."""
    folder = owned_temp_folder(parent)
    os.environ["GRADIO_TEMP_DIR"] = str(folder / "gradio")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))  # exit normally: atexit runs
    return folder


def owned_temp_folder(parent: str | Path | None = None) -> Path:
    """A new ``fer-app-*`` folder under ``parent`` with an :data:`OWNER_FILE` naming this process."""
    folder = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX, dir=parent))
    (folder / OWNER_FILE).write_text(f"{os.getpid()} {process_start(os.getpid())}\n")
    return folder


def remove_dead_runs(parent: str | Path | None = None) -> list[Path]:
    """Remove the temporary folders of this app's runs that died without cleaning up; returns them. A folder is
    removed only when it is surely one: a real folder (not a link) named ``fer-app-*`` in ``parent``, owned by
    this user, holding an :data:`OWNER_FILE` of this user whose process is not running any more (the same PID
    started at another time is another process)."""
    parent = Path(parent or tempfile.gettempdir())
    removed = []
    for folder in sorted(parent.glob(f"{TEMP_PREFIX}*")):
        owner = read_owner(folder)
        if owner is not None and not running(*owner):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def read_owner(folder: Path) -> tuple[int, int | None] | None:
    """``(pid, start time or None)`` from a run's folder; None unless the folder and its owner file are this
    user's own, real folder and regular file, and the file reads as an owner."""
    mine = os.getuid() if hasattr(os, "getuid") else None
    try:
        info, owner_info = os.lstat(folder), os.lstat(folder / OWNER_FILE)
        if not stat.S_ISDIR(info.st_mode) or not stat.S_ISREG(owner_info.st_mode) or owner_info.st_size > 100:
            return None
        if mine is not None and (info.st_uid != mine or owner_info.st_uid != mine):
            return None
        pid, start = (folder / OWNER_FILE).read_text().split()
        return int(pid), None if start == "None" else int(start)
    except (OSError, ValueError):
        return None


def process_start(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks after boot, from /proc); None where the system does not say."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[19])  # the 22nd field of the whole line: starttime
    except (OSError, IndexError, ValueError):
        return None


def running(pid: int, start: int | None) -> bool:
    """Whether process ``pid``, started at ``start`` (None: unknown), is still running."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive, and not ours to judge
        return True
    return start is None or process_start(pid) in (start, None)
