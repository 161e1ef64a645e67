"""Load on the running app: 8 concurrent gradio_client clients × 25 uploads each (errors, p50/p95
latency), then two webcam streams at once in two headless Chromium pages (frames each delivered).

    python benchmarks/load_test.py [--model PKL] [--clients 8] [--uploads 25] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
import numpy as np
from PIL import Image

from fer.core.card import DEFAULT_MODEL
from fer_app.testing import CHROMIUM, FLAGS, running_app, write_y4m


def upload_load(url: str, photo: Path, clients: int, uploads: int) -> dict:
    from gradio_client import Client, handle_file

    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def worker():
        client = Client(url, verbose=False)
        for _ in range(uploads):
            start = time.perf_counter()
            try:
                _, status, faces, *_ = client.predict(handle_file(str(photo)), api_name="/analyze")
                ok = len(faces) == 1
            except Exception as e:  # noqa: BLE001 - every failure is counted
                ok, status = False, f"{type(e).__name__}: {e}"
            with lock:
                latencies.append(time.perf_counter() - start)
                if not ok:
                    errors.append(status)

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    ms = sorted(1000 * x for x in latencies)
    return {"clients": clients, "uploads_each": uploads, "requests": len(ms), "errors": len(errors),
            "p50_ms": statistics.median(ms), "p95_ms": ms[int(0.95 * (len(ms) - 1))],
            "requests_per_s": len(ms) / wall, "first_error": errors[0] if errors else None}


def two_streams(url: str, seconds: float = 15) -> dict:
    from playwright.sync_api import sync_playwright

    from fer.bench import astronaut_frame

    camera = write_y4m(Path(tempfile.mkdtemp()) / "cam.y4m", [np.roll(astronaut_frame(), 4 * i, axis=1) for i in range(20)])
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[*FLAGS, f"--use-file-for-fake-video-capture={camera}"])
        pages = []
        for _ in range(2):
            page = browser.new_context(viewport={"width": 1280, "height": 900}, permissions=["camera"]).new_page()
            page.goto(url)
            page.click("#where label:has-text('the server')", timeout=60_000)  # the server's stream, not the live view
            page.click("#camera >> text=Click to Access Webcam", timeout=60_000)
            page.click("#camera >> button:has-text('Record')", timeout=30_000)
            pages.append(page)
        for page in pages:
            page.wait_for_selector("#live img", timeout=60_000)
        seen = [set() for _ in pages]
        start = time.time()
        while time.time() - start < seconds:
            for i, page in enumerate(pages):
                seen[i].add(page.eval_on_selector("#live img", "e => e.src"))
            time.sleep(0.02)
        browser.close()
    return {"streams": 2, "seconds": seconds, "fps_each": [round(len(s) / seconds, 1) for s in seen]}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=str(DEFAULT_MODEL))
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--uploads", type=int, default=25)
    p.add_argument("--json")
    args = p.parse_args()
    from skimage import data

    photo = Path(tempfile.mkdtemp()) / "astronaut.png"
    Image.fromarray(data.astronaut()).save(photo)
    with running_app(Path(args.model)) as (url, proc, _):
        result = {"uploads": upload_load(url, photo, args.clients, args.uploads)}
        result["webcam"] = two_streams(url)
        result["server_alive"] = proc.poll() is None
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    ok = result["uploads"]["errors"] == 0 and all(f > 0 for f in result["webcam"]["fps_each"]) and result["server_alive"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
