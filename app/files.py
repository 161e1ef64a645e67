"""The app's temporary files: one folder per run of the app, annotated results deleted after a while."""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import sys
import tempfile
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
        for old in [*self.dir.glob("*.jpg"), *(d for d in self.dir.iterdir() if d.is_dir())]:
            try:
                if last_written(old) < cutoff:
                    shutil.rmtree(old) if old.is_dir() else old.unlink()
            except FileNotFoundError:  # another request swept it first
                pass


def last_written(path: Path) -> float:
    """A file's modification time; for a folder, that of its newest file (a video still being written
    keeps its folder alive)."""
    times = [f.stat().st_mtime for f in path.iterdir()] if path.is_dir() else []
    return max(times, default=path.stat().st_mtime)


def app_temp_folder() -> Path:
    """One temporary folder for this run of the app, holding Gradio's uploads and cached frames
    (``GRADIO_TEMP_DIR``) and the annotated results; removed when the app exits, SIGTERM included."""
    folder = Path(tempfile.mkdtemp(prefix="fer-app-"))
    os.environ["GRADIO_TEMP_DIR"] = str(folder / "gradio")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))  # exit normally: atexit runs
    return folder
