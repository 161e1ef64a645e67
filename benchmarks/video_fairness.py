"""Two viewers' clips on the Video tab at once: how long the short one takes beside a long one.

    python benchmarks/video_fairness.py [--json docs/results/video_fairness.json] [--before /work/main]

The rule (app/jobs.py, docs/sharing.md): up to ``VIDEO_JOBS`` clips are analysed side by side and, frame by
frame, the one with the least work left goes next; so a short clip finishes within its own time plus one step
of the longer clip (the stated bound: ``--bound``, 3 s). Measured here on the running app (``python -m fer_app``,
the shipped model) with clips of the same size (``--size``, default 1280×720 at 30 frames/s): the short clip
alone, the long clip alone, then the long clip from one viewer and, ``--delay`` seconds later, the short one
from another. With ``--before CHECKOUT`` the same is measured on another checkout's app (PYTHONPATH), e.g. the
code before issue 32, where the Video tab took one clip at a time.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

from fer.core.card import DEFAULT_MODEL
from fer.evaluation.scenes import write_clip
from fer_app.testing import running_app


def analyze(client, clip: Path) -> tuple[float, float, str]:
    """(start, end, status line) of one clip through the Video tab's API."""
    from gradio_client import handle_file

    start = time.perf_counter()
    status = client.predict(handle_file(str(clip)), api_name="/analyze_video")[3]
    return start, time.perf_counter(), status


def two_viewers(url: str, long_clip: Path, short_clip: Path, delay_s: float, repeats: int) -> dict:
    """The short clip alone, then beside the long one (started ``delay_s`` earlier by another viewer), ``repeats``
    times; the long clip alone once. Seconds from upload to answer, as the viewer waits."""
    import statistics

    from gradio_client import Client

    first, second = Client(url, verbose=False), Client(url, verbose=False)
    analyze(second, short_clip)  # warm up: the first clip loads what every later one uses
    long_alone = analyze(first, long_clip)
    runs = []
    for _ in range(repeats):
        short_alone = analyze(second, short_clip)
        together = {}
        viewer = threading.Thread(target=lambda into=together: into.setdefault("long", analyze(first, long_clip)))
        viewer.start()
        time.sleep(delay_s)
        together["short"] = analyze(second, short_clip)
        viewer.join()
        runs.append({"short_alone_s": round(short_alone[1] - short_alone[0], 2),
                     "short_beside_long_s": round(together["short"][1] - together["short"][0], 2),
                     "long_beside_short_s": round(together["long"][1] - together["long"][0], 2),
                     "short_finished_first": together["short"][1] < together["long"][1],
                     "short_status": together["short"][2]})
        runs[-1]["short_extra_s"] = round(runs[-1]["short_beside_long_s"] - runs[-1]["short_alone_s"], 2)
    return {"long_alone_s": round(long_alone[1] - long_alone[0], 2), "runs": runs,
            "median_short_alone_s": statistics.median(r["short_alone_s"] for r in runs),
            "median_short_beside_long_s": statistics.median(r["short_beside_long_s"] for r in runs),
            "median_short_extra_s": statistics.median(r["short_extra_s"] for r in runs),
            "max_short_extra_s": max(r["short_extra_s"] for r in runs),
            "short_always_first": all(r["short_finished_first"] for r in runs)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", type=Path)
    p.add_argument("--size", type=int, nargs=2, default=[1280, 720], metavar=("W", "H"))
    p.add_argument("--long-s", type=float, default=10.0)
    p.add_argument("--short-s", type=float, default=3.0)
    p.add_argument("--fps", type=int, default=30)
    p.add_argument("--delay", type=float, default=3.0, help="seconds between the long clip and the short one")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--bound", type=float, default=3.0,
                   help="the stated bound: seconds a short clip may take beyond its own time (docs/sharing.md)")
    p.add_argument("--before", type=Path, help="also measure the app of this checkout (its PYTHONPATH)")
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="fairness-"))
    width, height = args.size
    long_clip = write_clip(work / "long.mp4", width, height, round(args.long_s * args.fps), args.fps)
    short_clip = write_clip(work / "short.mp4", width, height, round(args.short_s * args.fps), args.fps)
    report = {"clips": {"size": f"{width}x{height}", "fps": args.fps, "long_s": args.long_s, "short_s": args.short_s,
                        "delay_s": args.delay},
              "rule": "the clip with the least work left (frames left x pixels) goes next, frame by frame; up to "
                      "VIDEO_JOBS clips side by side: a short clip waits for at most one step of the longer clip "
                      "(a frame, or every 16th frame the classification, drawing and encoding of 16)"}
    with running_app(DEFAULT_MODEL) as (url, _, _):
        report["now"] = two_viewers(url, long_clip, short_clip, args.delay, args.repeats)
    report["bound_s"] = args.bound
    report["machine"] = {"cpus": os.cpu_count(), "load_average_after_now": [round(x, 1) for x in os.getloadavg()],
                         "note": "shared with other work: the load average says how busy"}
    report["now"]["within_bound"] = report["now"]["short_always_first"] and report["now"]["max_short_extra_s"] <= args.bound
    if args.before:
        before = args.before.resolve()  # its own folder first on the path, as `python -m` puts it
        with running_app(DEFAULT_MODEL, env={"PYTHONPATH": str(before)}, cwd=before) as (url, _, _):
            report["before"] = two_viewers(url, long_clip, short_clip, args.delay, 1)
        report["before"]["checkout"] = str(args.before)
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0 if report["now"]["within_bound"] else 1


if __name__ == "__main__":
    sys.exit(main())
