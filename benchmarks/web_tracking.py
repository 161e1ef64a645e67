"""Do the boxes sit on the faces in what the page shows? The static site (fer-web build) in headless Chromium with
a fake camera playing a clip whose face positions are known (a face moving 90 px/s across a photo and back, each
frame numbered in its pixels), throttled like a slow phone: at every animation frame the page records which camera
frame is on screen and the boxes drawn over it, and each drawn box is compared with the face's true box in THAT
frame (IoU; no box: 0).

    python benchmarks/web_tracking.py [--seconds 15] [--json docs/results/web_tracking.json] [--md docs/results/web_tracking.md]
    python benchmarks/web_tracking.py --from-json docs/results/web_tracking.json --md docs/results/web_tracking.md   # the table again

Two ways of drawing, in the same page, interleaved at each throttle (in turn first and second): "before" (display
'latest', the live view's drawing as it was: the newest camera frame under the last boxes computed) and "after"
(display 'computed', the default now: each processed frame shown with its own boxes, stale boxes fading); both
with today's detection schedule. Two throttles at 4× and 8×: "renderer" stops
and restarts Chromium's renderer processes (all their threads, the worker that runs the models included; as a
slow phone), "cdp" is Chromium's own CPU throttling (DevTools' Emulation.setCPUThrottlingRate), which slows the
page's main thread only: Chromium refuses it for workers. Frames/s and camera-to-labels latency are the page's
`fer-frame` measures over the same seconds. The true face box: YuNet's box (Python, the photo detector) on the
clip's first frame, moved with the face; the JSON also gives Python's own detections against it.
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

from fer.serving.model_files import DEFAULT_ONNX
from fer_app.testing import (
    CHROMIUM,
    FLAGS,
    SAMPLE_SHOWN_JS,
    ProcessThrottle,
    chromium_version,
    moving_face_clip,
    renderer_pids,
    serving_folder,
    shown_iou,
    write_y4m,
)

#: the camera: 640×480 at 30 frames/s; the face moves 3 px a frame (90 px/s), 60 frames each way
FPS, SPEED, STEPS = 30, 3, 60
DISPLAYS = {"before": "latest", "after": "computed"}

READ_MEASURES = """(since) => performance.getEntriesByName('fer-frame').filter((e) => e.startTime >= since)
  .map((e) => ({ms: e.duration, ...e.detail}))"""


def true_boxes(frames, shifts, model: Path):
    """The face's true box in every frame, and how Python's YuNet (photo detector) agrees with it frame by frame."""
    from fer.serving.recognize import FaceRecognizer

    recognizer = FaceRecognizer.load(model)
    (first,) = recognizer.detector.detect(frames[0])
    truth = [first.shift(dx, 0) for dx in shifts]
    agree = []
    for frame, true in zip(frames, truth):
        found = recognizer.detector.detect(frame)
        agree.append(max((true.iou(b) for b in found), default=0.0))
    return truth, {"first_frame_box": [first.x, first.y, first.w, first.h],
                   "python_detections_iou_median": round(statistics.median(agree), 3),
                   "python_detections_iou_min": round(min(agree), 3)}


def frame_figures(measures: list[dict], seconds: float) -> dict:
    if not measures:
        return {"frames": 0, "fps": 0.0}
    ms = sorted(m["ms"] for m in measures)
    return {"frames": len(ms), "fps": round(len(ms) / seconds, 1), "fer_frame_ms_median": round(statistics.median(ms), 1),
            "worker_ms_median": round(statistics.median(m["workerMs"] for m in measures), 1),
            "classify_every_median": statistics.median(m["classifyEvery"] for m in measures)}


def measure(page, seconds: float, truth, throttle: ProcessThrottle) -> dict:
    since = page.evaluate("performance.now()")
    page.evaluate("window.shownSamples = []")
    throttle.reset()
    time.sleep(seconds)
    effective = throttle.effective()
    samples = page.evaluate("window.shownSamples.splice(0)")
    measures = page.evaluate(READ_MEASURES, since)
    return {**shown_iou(samples, truth), **frame_figures(measures, seconds), "renderer_rate_effective": effective}


def markdown(result: dict) -> str:
    """docs/results/web_tracking.md: the side-by-side table of the JSON."""
    m, clip = result["machine"], result["clip"]
    lines = ["# Boxes on the faces in what the page shows (benchmarks/web_tracking.py)", "",
             f"Written by `python benchmarks/web_tracking.py --json docs/results/web_tracking.json --md docs/results/web_tracking.md` on "
             f"{m['cpus']} CPU cores ({m['chromium']}; load average {m['load_average_before'][0]} before, "
             f"{m['load_average_after'][0]} after). The fake camera plays {clip['frames']} frames at {clip['fps']} "
             f"frames/s: a face moving {clip['face_speed_px_per_s']} px/s ({clip['path']}); Python's own detections "
             f"agree with the true box at IoU {clip['python_detections_iou_median']} (median). At every animation "
             "frame the page's drawn boxes are compared with the true face box of the camera frame on screen (IoU; no "
             "box: 0). Before: display `latest` (the newest camera frame under the last boxes computed: the page's "
             "drawing before this change); after: display `computed` (each processed frame with its own boxes, the "
             "default now). Both in the same page, interleaved at each throttle, with the same detection schedule "
             "(today's: a tracked face that was missed is searched for in the whole next frame): only the drawing "
             "differs. Throttles: `renderer` stops and restarts "
             "Chromium's renderer processes (every thread slowed, the models' worker included; the rate achieved in "
             "brackets), `cdp` is DevTools' CPU throttling (the page's main thread only: Chromium refuses it for "
             "workers).", "",
             "| throttle | IoU median before | after | IoU 10th percentile before | after | no box shown before | after "
             "| frames/s before | after | fer-frame ms before | after |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    rows: dict = {}
    for r in result["conditions"]:
        rows.setdefault((r["rate"], r["throttle"]), {})[r["drawing"]] = r
    for (rate, kind), pair in rows.items():
        b, a = pair.get("before", {}), pair.get("after", {})
        effective = a.get("renderer_rate_effective", 1.0)
        cells = [f"{rate:g}× {kind}" + (f" ({effective})" if kind == "renderer" else "")]
        for key in ("iou_median", "iou_p10", "share_without_box", "fps", "fer_frame_ms_median"):
            cells += [str(b.get(key)), str(a.get(key))]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", f"Bar (after: IoU median ≥ 0.7 at every throttle): {result['bars']}", ""]
    return "\n".join(lines)



def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=str(DEFAULT_ONNX))
    p.add_argument("--seconds", type=float, default=15, help="length of each measurement")
    p.add_argument("--warmup", type=float, default=4, help="seconds after each change before measuring")
    p.add_argument("--rates", default="1,4,8", help="throttle rates")
    p.add_argument("--json", default=str(ROOT / "docs/results/web_tracking.json"),
                   help="write the figures here (default %(default)s)")
    p.add_argument("--md", default=str(ROOT / "docs/results/web_tracking.md"), help="and the table here (default %(default)s)")
    p.add_argument("--from-json", type=Path, help="write --md from this JSON of an earlier run, measuring nothing")
    args = p.parse_args()
    if args.from_json:
        Path(args.md).write_text(markdown(json.loads(args.from_json.read_text())))
        return 0
    from playwright.sync_api import sync_playwright

    from fer.web import build

    rates = [float(r) for r in args.rates.split(",")]
    work = Path(tempfile.mkdtemp(prefix="fer-web-tracking-"))
    frames, shifts = moving_face_clip(speed=SPEED, steps=STEPS)
    camera = write_y4m(work / "moving_face.y4m", frames, fps=FPS)
    truth, truth_check = true_boxes(frames, shifts, Path(args.model))
    site = build(work / "site", args.model)
    result: dict = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "chromium": chromium_version(),
                    "load_average_before": [round(x, 2) for x in os.getloadavg()]},
        "clip": {"width": 640, "height": 480, "fps": FPS, "face_speed_px_per_s": SPEED * FPS, "frames": len(frames),
                 "path": f"{STEPS} frames right, {STEPS} back, looping", **truth_check},
        "site": {"version": site["version"], "model": site["model"]},
        "displays": {"before": "latest: the newest camera frame under the last boxes computed (the page before this change)",
                     "after": "computed: each processed frame with its own boxes, stale boxes fading (the default now)"},
        "throttles": {"renderer": "Chromium's renderer processes stopped and restarted (SIGSTOP/SIGCONT, 50 ms period; "
                                  "the rate achieved is renderer_rate_effective): "
                                  "every thread, the models' worker included, gets 1/rate of the time",
                      "cdp": "Emulation.setCPUThrottlingRate: the page's main thread only (Chromium refuses it for "
                             "workers: 'Operation is only supported for pages, not workers')"},
        "conditions": [],
    }
    with serving_folder(Path(site["folder"])) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=[*FLAGS, f"--use-file-for-fake-video-capture={camera}"])
        page = browser.new_context(viewport={"width": 1280, "height": 900}, permissions=["camera"]).new_page()
        page.goto(url)
        page.click("fer-camera .fer-start:enabled", timeout=120_000)
        page.wait_for_function("performance.getEntriesByName('fer-frame').length > 30", timeout=180_000)
        page.evaluate(SAMPLE_SHOWN_JS)
        cdp = page.context.new_cdp_session(page)
        throttle = ProcessThrottle(renderer_pids())
        try:
            settings = [(rate, kind) for rate in rates for kind in (["none"] if rate == 1 else ["renderer", "cdp"])]
            for i, (rate, kind) in enumerate(settings):
                throttle.rate = rate if kind == "renderer" else 1
                cdp.send("Emulation.setCPUThrottlingRate", {"rate": rate if kind == "cdp" else 1})
                order = list(DISPLAYS.items())  # before, after; then after, before: a drifting machine hits both alike
                for name, display in order[::-1] if i % 2 else order:
                    page.evaluate("(d) => { window.ferLive.display = d; }", display)
                    time.sleep(args.warmup)
                    figures = measure(page, args.seconds, truth, throttle)
                    row = {"rate": rate, "throttle": kind, "drawing": name, "display": display, **figures}
                    result["conditions"].append(row)
                    print(json.dumps(row), flush=True)
        finally:
            throttle.close()
        browser.close()
    result["machine"]["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    table = {}
    for row in result["conditions"]:
        key = f"{row['rate']:g}x {row['throttle']}"
        table.setdefault(key, {})[row["drawing"]] = {k: row.get(k) for k in ("iou_median", "fps", "fer_frame_ms_median")}
    for key, pair in table.items():
        if pair.get("before", {}).get("iou_median") is not None and pair.get("after", {}).get("iou_median") is not None:
            pair["iou_median_after_minus_before"] = round(pair["after"]["iou_median"] - pair["before"]["iou_median"], 3)
    result["side_by_side"] = table
    after = [r for r in result["conditions"] if r["drawing"] == "after"]
    result["bars"] = {"after_iou_median_at_least_0.7_at_every_throttle": all(r.get("iou_median", 0) >= 0.7 for r in after)}
    print(json.dumps(result["side_by_side"], indent=1))
    if args.json:
        from fer.core.fileio import write_json_atomic

        write_json_atomic(args.json, result)
    if args.md:
        Path(args.md).write_text(markdown(result))
    return 0 if all(result["bars"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
