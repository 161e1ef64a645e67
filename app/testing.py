"""Driving the app from outside, shared by the tests and benchmarks/load_test.py: start the app in a
subprocess on a free port and wait until it answers; headless Chromium's flags and a fake-camera file."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np

#: Debian's Chromium (scripts/setup.sh installs it), driven by Playwright.
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]


def chromium_version() -> str:
    """What ``chromium --version`` says (for a benchmark's record of its machine); "unknown" without Chromium."""
    try:
        return subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    except OSError:
        return "unknown"


def write_y4m(path: Path, frames: list[np.ndarray], fps: int = 10) -> Path:
    """Uncompressed YUV4MPEG2 (4:2:0) that Chromium's fake camera plays in a loop."""
    h, w = frames[0].shape[:2]
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420\n".encode())
        f.writelines(b"FRAME\n" + cv2.cvtColor(frame, cv2.COLOR_RGB2YUV_I420).tobytes() for frame in frames)
    return path


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_answering(url: str, proc: subprocess.Popen, timeout: float, log=None) -> None:
    """Return once ``url`` answers; RuntimeError (with the end of ``log``) if the process exits first,
    TimeoutError after ``timeout`` seconds."""
    deadline = time.time() + timeout
    while True:
        if proc.poll() is not None:
            tail = ""
            if log is not None:
                log.seek(0)
                tail = ":\n" + log.read()[-3000:]
            raise RuntimeError(f"app exited with {proc.returncode}{tail}")
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            if time.time() > deadline:
                raise TimeoutError(f"app did not answer on {url} within {timeout} s") from None
            time.sleep(0.2)


@contextmanager
def running_server(args: list[str], health: str = "/", timeout: float | None = None, cwd: Path | None = None,
                   env: dict | None = None, stop_s: float = 15):
    """Yield ``(url, process, log)`` of the server ``args`` (with ``--port`` added) on a free port, once ``health``
    answers; stopped with SIGTERM afterwards (killed after ``stop_s``). Started in ``cwd`` (default: this
    process's folder) with ``env`` added to the environment; the log (a temporary file, removed afterwards) holds
    its stdout and stderr. ``timeout``: how long it may take to answer (default 180 s, or
    $FER_APP_START_TIMEOUT on a busy machine)."""
    timeout = timeout or float(os.environ.get("FER_APP_START_TIMEOUT", 180))
    port = free_port()
    log = tempfile.TemporaryFile("w+")
    proc = subprocess.Popen([*args, "--port", str(port)], cwd=cwd,
                            env={**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", **(env or {})},
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_answering(url + health, proc, timeout, log)
        yield url, proc, log
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=stop_s)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@contextmanager
def running_app(model: Path | None, *extra: str, timeout: float | None = None, python: str = sys.executable,
                cwd: Path | None = None, env: dict | None = None):
    """Yield ``(url, process, log)`` of the app (``python -m fer_app``) serving ``model`` (``None``: its default)
    under the interpreter ``python`` (see :func:`running_server`)."""
    model_args = ["--model", str(model)] if model is not None else []
    with running_server([python, "-m", "fer_app", *model_args, *extra], "/", timeout, cwd, env) as (url, proc, log):
        yield url + "/", proc, log


@contextmanager
def serving_folder(folder: Path, headers: dict[str, str] | None = None):
    """Yield the URL of ``folder`` served as ``python -m http.server`` serves it (a thread of this process),
    with ``headers`` added to every answer."""
    import functools
    import http.server
    import threading

    class Handler(http.server.SimpleHTTPRequestHandler):
        def end_headers(self):
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            super().end_headers()

        def log_message(self, *args):  # quiet
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


# --- a clip whose face positions are known, and what the page shows of it -------------------------------------

#: The frame number is written into each frame as CODE_BITS black or white blocks (the last one: the parity of
#: the others) along the bottom edge, so the frame a page shows can be told from its pixels.
CODE_BITS, CODE_BLOCK, CODE_Y = 9, 16, 456


def stamp_frame_number(frame: np.ndarray, number: int) -> np.ndarray:
    """Write ``number`` (< 256) into the frame's code blocks (in place; returns the frame)."""
    bits = [(number >> k) & 1 for k in range(CODE_BITS - 1)]
    bits.append(sum(bits) % 2)
    for k, bit in enumerate(bits):
        x = 8 + CODE_BLOCK * k
        frame[CODE_Y:CODE_Y + CODE_BLOCK, x:x + CODE_BLOCK] = 255 if bit else 0
    return frame


#: In the page: the frame number in an RGBA row read across the middle of the code blocks (-1: not readable).
READ_FRAME_NUMBER_JS = f"""(row) => {{
  const bits = [];
  for (let k = 0; k < {CODE_BITS}; k++) {{
    const i = 4 * (8 + {CODE_BLOCK} * k + {CODE_BLOCK // 2});
    bits.push((row[i] + row[i + 1] + row[i + 2]) / 3 > 128 ? 1 : 0);
  }}
  const parity = bits.slice(0, -1).reduce((a, b) => a + b, 0) % 2;
  return parity === bits[bits.length - 1] ? bits.slice(0, -1).reduce((n, b, k) => n + (b << k), 0) : -1;
}}"""


def moving_face_clip(width: int = 640, height: int = 480, speed: int = 3, steps: int = 60,
                     scale: float = 0.6, at: tuple[int, int] = (40, 110)) -> tuple[list[np.ndarray], list[int]]:
    """A face (the astronaut's head and shoulders, public domain, scikit-image) moving across a photo (the coffee
    cup) ``speed`` px a frame to the right for ``steps`` frames and back, each frame numbered
    (:func:`stamp_frame_number`); returns the frames and each frame's horizontal shift from the first, which
    moves the first frame's face box to the face's true position in that frame."""
    from skimage import data

    background = cv2.resize(data.coffee(), (width, height), interpolation=cv2.INTER_AREA)
    face = cv2.resize(data.astronaut()[:300, 80:380], None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    shifts = [speed * k for k in range(steps)] + [speed * k for k in range(steps, 0, -1)]
    frames = []
    for number, dx in enumerate(shifts):
        frame = background.copy()
        x, y = at[0] + dx, at[1]
        frame[y:y + face.shape[0], x:x + face.shape[1]] = face
        frames.append(stamp_frame_number(frame, number))
    return frames, shifts


class ProcessThrottle:
    """Slow processes down ``rate`` times, as cpulimit does: each ``period_s`` they run 1/rate of it and are stopped
    (SIGSTOP) the rest. Chromium's own CPU throttling (CDP Emulation.setCPUThrottlingRate) slows a page's main
    thread only ("Operation is only supported for pages, not workers"), so the live view's worker, which does the
    work, runs at full speed under it; stopping the renderer processes slows every thread, as a slow phone is.
    ``effective()`` is the rate the stops achieved since ``reset()`` (wall time over running time: a busy machine
    wakes this thread late, which lengthens the running spells)."""

    def __init__(self, pids: list[int], period_s: float = 0.05):
        import threading

        self.pids, self.period_s, self.rate = pids, period_s, 1.0
        self.running_s = self.stopped_s = 0.0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def signal(self, sig) -> None:
        """Send the signal named ``sig`` (``"SIGSTOP"``, ``"SIGCONT"``) to every process; gone ones are skipped."""
        import signal as signals

        for pid in self.pids:
            try:
                os.kill(pid, getattr(signals, sig))
            except ProcessLookupError:
                pass

    def run(self) -> None:
        """The throttling thread: each period, run 1/rate of it and stop the processes the rest, until closed."""
        try:  # wake on time on a busy machine: this thread (Linux: pid 0 is the calling thread) runs first
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
        except (AttributeError, OSError):
            pass
        while not self.done.is_set():
            start = time.perf_counter()
            if self.rate <= 1:
                time.sleep(self.period_s)
                self.running_s += time.perf_counter() - start
                continue
            time.sleep(self.period_s / self.rate)
            self.signal("SIGSTOP")
            stopped = time.perf_counter()
            self.running_s += stopped - start
            time.sleep(self.period_s * (1 - 1 / self.rate))
            self.signal("SIGCONT")
            self.stopped_s += time.perf_counter() - stopped

    def reset(self) -> None:
        """Start counting running and stopped time afresh (for :meth:`effective`)."""
        self.running_s = self.stopped_s = 0.0

    def effective(self) -> float:
        """The rate achieved since :meth:`reset`: wall time over running time (1.0 before any)."""
        return round((self.running_s + self.stopped_s) / self.running_s, 2) if self.running_s else 1.0

    def close(self) -> None:
        """Stop throttling: end the thread and let the processes run again."""
        self.done.set()
        self.thread.join()
        self.signal("SIGCONT")


def renderer_pids(ancestor: int | None = None) -> list[int]:
    """The Chromium renderer processes descended from ``ancestor`` (default this process: the browsers it
    launched), from /proc (Linux)."""
    ancestor = ancestor or os.getpid()
    parents, found = {}, []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
        if b"--type=renderer" in cmdline:
            found.append(int(entry.name))

    def descends(pid: int) -> bool:
        while pid in parents and pid > 1:
            pid = parents[pid]
            if pid == ancestor:
                return True
        return False

    return [pid for pid in found if descends(pid)]


#: In a live view page (window.ferLive): record, at every animation frame, the number of the camera frame on
#: screen (the processed frame on the stage's canvas in display 'computed', else the <video>'s current frame) and
#: the boxes drawn over it, in window.shownSamples.
SAMPLE_SHOWN_JS = f"""() => {{
  const read = {READ_FRAME_NUMBER_JS};
  const row = {CODE_Y + CODE_BLOCK // 2};
  const scratch = document.createElement('canvas');
  const ctx = scratch.getContext('2d', {{ willReadFrequently: true }});
  window.shownSamples = [];
  const tick = () => {{
    const view = window.ferLive;
    if (view && view.running && view.shown && view.shown.display === view.display) {{
      let pixels;
      if (view.display === 'computed') {{
        const c = view.ui.overlay;
        pixels = c.getContext('2d').getImageData(0, row, c.width, 1).data;
      }} else {{
        const v = view.ui.video;
        scratch.width = v.videoWidth; scratch.height = 1;
        ctx.drawImage(v, 0, row, v.videoWidth, 1, 0, 0, v.videoWidth, 1);
        pixels = ctx.getImageData(0, 0, v.videoWidth, 1).data;
      }}
      window.shownSamples.push({{ t: performance.now(), frame: read(pixels), display: view.display,
        boxes: view.shown.tracks.map((t) => t.box) }});
    }}
    requestAnimationFrame(tick);
  }};
  requestAnimationFrame(tick);
}}"""


def shown_iou(samples: list[dict], truth: list) -> dict:
    """How well the drawn boxes sit on the face in what the page showed (samples from :data:`SAMPLE_SHOWN_JS`;
    ``truth``: the face's box in each clip frame, fer.serving.detect.Box): per sample the best IoU of a drawn box
    with the true box of the frame on screen (0 without a box). Samples whose frame number could not be read
    are left out and counted."""
    from fer.serving.detect import Box

    ious = []
    for s in samples:
        if not 0 <= s["frame"] < len(truth):
            continue
        true = truth[s["frame"]]
        ious.append(max((true.iou(Box(b["x"], b["y"], b["w"], b["h"])) for b in s["boxes"]), default=0.0))
    if not ious:
        return {"samples": 0, "unreadable": len(samples)}
    ious.sort()
    return {"samples": len(ious), "unreadable": len(samples) - len(ious),
            "iou_median": round(float(np.median(ious)), 3), "iou_p10": round(ious[int(0.1 * (len(ious) - 1))], 3),
            "share_iou_at_least_0.5": round(sum(i >= 0.5 for i in ious) / len(ious), 3),
            "share_without_box": round(sum(i == 0 for i in ious) / len(ious), 3)}
