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


def write_y4m(path: Path, frames: list[np.ndarray], fps: int = 10) -> Path:
    """Uncompressed YUV4MPEG2 (4:2:0) that Chromium's fake camera plays in a loop."""
    h, w = frames[0].shape[:2]
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420\n".encode())
        for frame in frames:
            f.write(b"FRAME\n" + cv2.cvtColor(frame, cv2.COLOR_RGB2YUV_I420).tobytes())
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
