"""Is the search near a tracked face worth it with YuNet, and at what scale? Whole-frame times side by side.

    python benchmarks/roi_search.py [--frames 60] [--rounds 5] [--json docs/results/roi_search.json]

The 640×480 astronaut frame of ``fer.bench`` through ``annotate_frame`` with the shipped model and YuNet:
a full detection on every frame, against a full detection every 5th (or 10th) frame and the ROI search
between, with the ROI at the face's own size or scaled so the face is 64 or 48 px wide (the default). Rounds are
interleaved and each figure is the median of the rounds' medians (ms per frame).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from fer.bench import astronaut_frame, interleaved_ms
from fer.core.card import DEFAULT_MODEL
from fer.core.cli import configure_logging
from fer.serving.recognize import FaceRecognizer, VideoSession, annotate_frame

SCHEDULES = {
    "full detection every frame": dict(full_detect_every=1),
    "every 5th, ROI at the face's own size": dict(full_detect_every=5, search_face_width=1_000_000),
    "every 5th, ROI scaled to a 64 px face": dict(full_detect_every=5, search_face_width=64),
    "every 5th, ROI scaled to a 48 px face (default)": dict(full_detect_every=5),
    "every 10th, ROI scaled to a 48 px face": dict(full_detect_every=10),
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--frames", type=int, default=300, help="frames per schedule, over all rounds")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    configure_logging()
    recognizer = FaceRecognizer.load(DEFAULT_MODEL, "yunet")
    frame = astronaut_frame()
    variants = {name: (lambda s=VideoSession(**kw): annotate_frame(recognizer, frame, s))
                for name, kw in SCHEDULES.items()}
    times = interleaved_ms(variants, args.frames, args.rounds)
    base = times["full detection every frame"]
    for name, ms in times.items():
        print(f"{name:48} {ms:6.2f} ms  ({ms / base:.2f}× every-frame detection)")
    if args.json:
        args.json.write_text(json.dumps({"frame": "640x480 skimage astronaut, 1 face", "detector": "yunet",
                                         "ms_per_frame_median": times, "rounds": args.rounds}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
