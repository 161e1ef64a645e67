"""Face detectors side by side on group photos: faces found, false boxes, time per photo.

    python benchmarks/detector_recall.py [--csv ../shared/data/fer2013.csv.gz] [--photos 12] [--json F] [--show DIR]

Each group photo is 1280×886: a background photo with six faces pasted in (benchmarks/scenes.py) at
40–220 px wide, tilted up to ±20°, not overlapping. The faces are the public-domain portraits that ship
with scikit-image and matplotlib (and mirrored), plus FER-2013 test faces when the CSV is given. A box
counts as a found face when it overlaps a true face box (IoU ≥ 0.25, centre inside); every other box is
a false box. ``--show DIR`` saves the first photo with each detector's boxes.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from fer.evaluation.scenes import BACKGROUNDS, background, fer_face, fer_test_faces, match, paste, photo_faces
from fer.serving.detect import Box, make_detector

SIZE = (1280, 886)
FACES_PER_PHOTO = 6
CONFIGS = [("haar", 320), ("haar", 640), ("yunet", 320), ("yunet", 640)]


def group_photos(n: int, fer_faces: list[np.ndarray], seed: int = 0):
    """(photo, true boxes) pairs, reproducibly."""
    rng = np.random.default_rng(seed)
    portraits = photo_faces()
    for i in range(n):
        canvas = background(BACKGROUNDS[i % len(BACKGROUNDS)], *SIZE)
        taken: list[Box] = []
        truth: list[Box] = []
        while len(truth) < FACES_PER_PHOTO:
            width = float(np.exp(rng.uniform(np.log(40), np.log(220))))
            center = (rng.uniform(width, SIZE[0] - width), rng.uniform(width, SIZE[1] - width))
            head = Box(round(center[0] - width), round(center[1] - width), round(2 * width), round(2 * width))
            if any(head.iou(t) > 0 for t in taken):
                continue
            use_fer = fer_faces and rng.random() < 0.5
            source = fer_face(fer_faces[rng.integers(len(fer_faces))]) if use_fer else portraits[rng.integers(len(portraits))]
            angle = float(rng.uniform(-20, 20))
            truth.append(paste(canvas, source, width, center, angle, context=0.0 if use_fer else 0.5,
                               edge=0.02 if use_fer else 0.12))
            taken.append(head)
        yield canvas, truth


def draw(photo: np.ndarray, truth: list[Box], found: list[Box], path: Path) -> None:
    out = cv2.cvtColor(photo, cv2.COLOR_RGB2BGR)
    for b in truth:
        cv2.rectangle(out, (b.x, b.y), (b.x + b.w, b.y + b.h), (0, 200, 0), 2)
    for b in found:
        cv2.rectangle(out, (b.x, b.y), (b.x + b.w, b.y + b.h), (0, 0, 255), 3)
        for px, py in b.landmarks:
            cv2.circle(out, (round(px), round(py)), 3, (0, 255, 255), -1)
    cv2.imwrite(str(path), out, [cv2.IMWRITE_JPEG_QUALITY, 80])


def run(n: int, fer_faces: list[np.ndarray], show: Path | None = None) -> dict:
    photos = list(group_photos(n, fer_faces))
    result = {"photos": n, "faces": n * FACES_PER_PHOTO, "size": f"{SIZE[0]}x{SIZE[1]}",
              "fer_faces_included": bool(fer_faces), "detectors": []}
    for name, width in CONFIGS:
        detector = make_detector(name, width)
        found = false = 0
        times = []
        for k, (photo, truth) in enumerate(photos):
            detector.detect(photo)  # warm-up
            start = time.perf_counter()
            boxes = detector.detect(photo)
            times.append(1000 * (time.perf_counter() - start))
            matched, extra = match(boxes, truth)
            found, false = found + len(matched), false + len(extra)
            if show and k == 0:
                show.mkdir(parents=True, exist_ok=True)
                draw(photo, truth, boxes, show / f"group_{name}_{width}.jpg")
        row = {"detector": name, "detect_width": width, "found": found, "recall": found / result["faces"],
               "false_boxes": false, "ms_per_photo_median": statistics.median(times)}
        result["detectors"].append(row)
        print(f"{name:6} at {width:4} px wide: found {found}/{result['faces']} ({row['recall']:.0%}), "
              f"{false} false boxes, {row['ms_per_photo_median']:.1f} ms per photo", flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--csv", type=Path, help="FER-2013 CSV: mix its PrivateTest faces in with the portraits")
    p.add_argument("--photos", type=int, default=12)
    p.add_argument("--json", type=Path, help="write the figures here")
    p.add_argument("--show", type=Path, help="save the first photo with each detector's boxes into this folder")
    args = p.parse_args(argv)
    fer_faces = fer_test_faces(args.csv)[0] if args.csv else []
    result = run(args.photos, fer_faces, args.show)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
