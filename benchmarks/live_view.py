"""The in-page live view's speed and the server's cost for it: one viewer's processed frames/s and
camera-to-labels latency (the page's own `fer-frame` User Timing measures), then four viewers at once and the
app process's CPU time meanwhile, and the bytes a viewer downloads once.

    python benchmarks/live_view.py [--model exports/fer2013_effnet_lite0.onnx] [--seconds 20] [--json docs/results/live_view.json]

Headless Chromium (Debian's) with a fake 640×480 camera at 30 frames/s playing a Y4M clip of the astronaut
photo (public domain, scikit-image), moving. Frame rates depend on everything else the machine runs: check
`uptime` first (the figures in docs/ were taken with a load average under 0.5).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
import numpy as np

from fer.serving.model_files import DEFAULT_ONNX
from fer_app.testing import CHROMIUM, FLAGS, chromium_version, running_app, write_y4m

#: The live view's frames: a 640×480 camera at 30 frames/s, the astronaut drifting 2 px a frame and back.
CAMERA = (640, 480, 30)

READ_MEASURES = """(since) => performance.getEntriesByName('fer-frame').filter((e) => e.startTime >= since)
  .map((e) => ({start: e.startTime, ms: e.duration, ...e.detail}))"""


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def camera_file(folder: Path) -> Path:
    from fer.bench import astronaut_frame

    width, height, fps = CAMERA
    frame = astronaut_frame(width, height)
    shifts = [*range(0, 60, 2), *range(60, 0, -2)]  # 2 s there and back
    return write_y4m(folder / "astronaut.y4m", [np.roll(frame, s, axis=1) for s in shifts], fps=fps)


def open_viewer(browser, url: str):
    page = browser.new_context(viewport={"width": 1280, "height": 900}, permissions=["camera"]).new_page()
    page.goto(url)
    page.click("#device-view .fer-start:enabled", timeout=120_000)
    page.wait_for_function("performance.getEntriesByName('fer-frame').length > 0", timeout=180_000)
    return page


def summary(measures: list[dict], seconds: float) -> dict:
    ms = sorted(m["ms"] for m in measures)
    worker = sorted(m["workerMs"] for m in measures)
    if not ms:
        return {"frames": 0, "fps": 0.0}
    return {"frames": len(ms), "fps": round(len(ms) / seconds, 1), "fer_frame_ms_median": round(statistics.median(ms), 1),
            "fer_frame_ms_p90": round(ms[int(0.9 * (len(ms) - 1))], 1),
            "worker_ms_median": round(statistics.median(worker), 1),
            "full_detection_share": round(sum(m["full"] for m in measures) / len(ms), 2),
            "classified_share": round(sum(m["classified"] > 0 for m in measures) / len(ms), 2),
            "faces_max": max(m["faces"] for m in measures), "backend": measures[-1]["backend"]}


def measure(page, seconds: float) -> list[dict]:
    since = page.evaluate("performance.now()")
    time.sleep(seconds)
    return page.evaluate(READ_MEASURES, since)


def downloads(page) -> dict:
    """What a first visit downloads for the live view: the page's modules and the worker's runtime and models
    (bytes on the wire, from the browser's resource timing; the app compresses text, not binaries)."""
    entries = page.evaluate("""[...performance.getEntriesByType('resource').map((e) => [e.name, e.encodedBodySize]),
                                ...window.ferLive.fetched].filter(([name]) => name.includes('/fer-live/'))""")
    files = {name.split("/fer-live/", 1)[1]: size for name, size in entries}
    return {"files": files, "total_bytes": sum(files.values())}



def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=str(DEFAULT_ONNX), help="the app's model (.onnx, or a .pkl with its .onnx beside)")
    p.add_argument("--seconds", type=float, default=20, help="length of each measurement")
    p.add_argument("--warmup", type=float, default=5, help="seconds after the first processed frame before measuring")
    p.add_argument("--viewers", type=int, default=4, help="viewers at once for the server-CPU measurement")
    p.add_argument("--json", help="write the figures here (e.g. docs/results/live_view.json)")
    args = p.parse_args()
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"error: {CHROMIUM} not found (scripts/setup.sh installs Debian's chromium)")
    from playwright.sync_api import sync_playwright

    camera = camera_file(Path(tempfile.mkdtemp(prefix="fer-live-")))
    load_before = os.getloadavg()
    result: dict = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "chromium": chromium_version(),
                                "load_average_before": [round(x, 2) for x in load_before]},
                    "camera": {"width": CAMERA[0], "height": CAMERA[1], "fps": CAMERA[2]}, "model": args.model}
    with running_app(Path(args.model)) as (url, proc, _), sync_playwright() as pw:
        time.sleep(2)
        idle_start = cpu_seconds(proc.pid)
        time.sleep(args.seconds)
        result["app_cpu_idle_percent"] = round(100 * (cpu_seconds(proc.pid) - idle_start) / args.seconds, 2)

        browser = pw.chromium.launch(executable_path=CHROMIUM, args=[*FLAGS, f"--use-file-for-fake-video-capture={camera}"])
        page = open_viewer(browser, url)
        result["download"] = downloads(page)
        time.sleep(args.warmup)
        result["one_viewer"] = summary(measure(page, args.seconds), args.seconds)
        print("one viewer:", json.dumps(result["one_viewer"]), flush=True)

        pages = [page] + [open_viewer(browser, url) for _ in range(args.viewers - 1)]
        time.sleep(args.warmup)
        since = [pg.evaluate("performance.now()") for pg in pages]
        cpu_start, wall_start = cpu_seconds(proc.pid), time.perf_counter()
        time.sleep(args.seconds)
        cpu = cpu_seconds(proc.pid) - cpu_start
        wall = time.perf_counter() - wall_start
        each = [summary(pg.evaluate(READ_MEASURES, s), wall) for pg, s in zip(pages, since)]
        result["viewers_at_once"] = {"viewers": args.viewers, "seconds": round(wall, 1),
                                     "app_cpu_seconds": round(cpu, 3),
                                     "app_cpu_percent_of_one_core": round(100 * cpu / wall, 2),
                                     "fps_each": [v["fps"] for v in each],
                                     "fer_frame_ms_median_each": [v.get("fer_frame_ms_median") for v in each]}
        print(f"{args.viewers} viewers:", json.dumps(result["viewers_at_once"]), flush=True)
        browser.close()
    result["machine"]["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    one = result["one_viewer"]
    result["bars"] = {"fps_at_least_25": one["fps"] >= 25, "median_ms_at_most_100": one.get("fer_frame_ms_median", 1e9) <= 100,
                      "app_cpu_at_most_5_percent": result["viewers_at_once"]["app_cpu_percent_of_one_core"] <= 5}
    print(json.dumps(result, indent=2))
    if args.json:
        from fer.core.fileio import write_json_atomic

        write_json_atomic(args.json, result)
    return 0 if all(result["bars"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
