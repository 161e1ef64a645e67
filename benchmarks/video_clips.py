"""Test videos made from real photos (no network): a face moving across a background photo, a cut to the
background alone, then two faces side by side; and the frames/s of ``python -m fer.video`` on them.

    python benchmarks/video_clips.py --out /tmp/clips [--seconds 10] [--fps 30] [--every 1 3] [--json F]

writes clip_640x480.mp4 and clip_1280x720.mp4 and times ``fer.video`` on each (for each ``--every``); the
frames/s of each run (``processing_fps`` of fer.video's summary: model loading not counted) go to ``--json``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from fer.evaluation.scenes import write_clip


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--fps", type=float, default=30)
    p.add_argument("--every", type=int, nargs="+", default=[1], help="analyse every N-th frame (several: one run each)")
    p.add_argument("--json", type=Path, help="write each run's frames/s here")
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    runs = []
    for width, height in ((640, 480), (1280, 720)):
        clip = write_clip(args.out / f"clip_{width}x{height}.mp4", width, height, round(args.seconds * args.fps), args.fps)
        for every in args.every:
            start = time.perf_counter()
            result = subprocess.run([sys.executable, "-m", "fer.video", str(clip), "--out", str(args.out / "results"),
                                     "--every", str(every), "--overwrite", "--quiet"], capture_output=True, text=True)
            print(f"{clip.name} --every {every}: "
                  f"{result.stdout.strip().splitlines()[0] if result.stdout else result.stderr[-500:]} "
                  f"(whole command incl. model load: {time.perf_counter() - start:.1f} s)", flush=True)
            summary = json.loads((args.out / "results" / f"{clip.stem}.json").read_text())
            runs.append({"clip": f"{width}x{height}", "frames": summary["frames_read"], "every": every,
                         "frames_per_s": summary["processing_fps"], "command_s": round(time.perf_counter() - start, 1)})
    if args.json:
        args.json.write_text(json.dumps({"seconds": args.seconds, "fps": args.fps, "runs": runs}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
