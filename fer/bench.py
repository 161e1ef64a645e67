"""Speed of the live pipeline on a 640×480 frame made from skimage's astronaut photo (one face).

    python -m fer.bench [--model PKL] [--frames 200] [--json FILE]

Reports medians over the frames: full-frame detection, ROI detection near the tracked face,
classification per face (batch 1; also with each inference backend side by side, with and without the
preprocessing compiled into the model), and whole-frame time (detect + classify + draw) both with a full
detection on every frame and as the webcam stream runs it (full detection every 5th frame, ROI search
in between).
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

from fer.predict import DEFAULT_MODEL, FacePredictor, ModelLoadError
from fer.recognize import FaceRecognizer, VideoSession, annotate_frame
from fer.runtime import BACKENDS


def astronaut_frame(width: int = 640, height: int = 480) -> np.ndarray:
    """The astronaut photo (public domain, ships with scikit-image) letterboxed into a width×height RGB frame."""
    from skimage import data

    photo = data.astronaut()
    scale = min(width / photo.shape[1], height / photo.shape[0])
    resized = cv2.resize(photo, (round(photo.shape[1] * scale), round(photo.shape[0] * scale)), interpolation=cv2.INTER_AREA)
    frame = np.zeros((height, width, 3), np.uint8)
    y, x = (height - resized.shape[0]) // 2, (width - resized.shape[1]) // 2
    frame[y:y + resized.shape[0], x:x + resized.shape[1]] = resized
    return frame


def median_ms(fn, n: int, warmup: int = 5) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def classify_by_backend(predictor: FacePredictor, face: list[np.ndarray], frames: int) -> dict[str, float]:
    """Per-face classification time with each inference backend, with the preprocessing compiled into the
    model (``+pre``) and as fastai's pipeline before it, side by side in one run (rounds interleaved)."""
    variants = {}
    for name in BACKENDS[1:]:
        for fused in (True, False):
            other = FacePredictor(predictor.learn, predictor.card, backend=name, fuse_preprocess=fused)
            try:
                other.predict_proba(face)
            except Exception as e:  # noqa: BLE001 - a backend that cannot load here is reported, not fatal
                print(f"backend {name}: unavailable ({type(e).__name__}: {e})", file=sys.stderr)
                break
            variants[f"{name}{'+pre' if fused else ''}"] = other
    rounds = {key: [] for key in variants}
    for _ in range(5):
        for key, other in variants.items():
            rounds[key].append(median_ms(lambda p=other: p.predict_proba(face), max(frames // 5, 1), warmup=2))
    return {key: statistics.median(times) for key, times in rounds.items()}


def run(model: str | Path, frames: int, backend: str = "auto", compare: bool = True) -> dict:
    import torch

    recognizer = FaceRecognizer(FacePredictor.load(model, backend))
    frame = astronaut_frame()
    boxes = recognizer.video_detector.detect(frame)
    if len(boxes) != 1:
        raise RuntimeError(f"expected one face in the benchmark frame, found {len(boxes)}")
    every_frame = VideoSession(full_detect_every=1)
    streaming = VideoSession()
    region = boxes[0].expand(0.5).clip(frame.shape[1], frame.shape[0])
    roi = frame[region.y:region.y + region.h, region.x:region.x + region.w]
    face = [frame[boxes[0].y:boxes[0].y + boxes[0].h, boxes[0].x:boxes[0].x + boxes[0].w]]
    result = {
        "frame": "640x480 skimage astronaut, 1 face", "model": str(model), "frames": frames,
        "torch_threads": torch.get_num_threads(),
        "detect_full_ms_median": median_ms(lambda: recognizer.video_detector.detect(frame), frames),
        "detect_roi_ms_median": median_ms(lambda: recognizer.video_detector.detect(roi), frames),
        "classify_ms_per_face_median": median_ms(lambda: recognizer.predictor.predict_proba(face), frames),
        "backend": recognizer.predictor.backend_used,
        "frame_full_detect_ms_median": median_ms(lambda: annotate_frame(recognizer, frame, every_frame), frames),
        "frame_ms_median": median_ms(lambda: annotate_frame(recognizer, frame, streaming), frames),
    }
    result["fps_at_median"] = 1000 / result["frame_ms_median"]
    if compare:
        result["classify_ms_per_face_median_by_backend"] = classify_by_backend(recognizer.predictor, face, frames)
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m fer.bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=str(DEFAULT_MODEL))
    p.add_argument("--frames", type=int, default=200)
    p.add_argument("--backend", default="auto", choices=BACKENDS, help="inference backend (fer.runtime)")
    p.add_argument("--no-compare", action="store_true", help="skip timing every backend side by side")
    p.add_argument("--json", help="write the figures here")
    args = p.parse_args(argv)
    try:
        result = run(args.model, args.frames, args.backend, not args.no_compare)
    except ModelLoadError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for key, value in result.items():
        print(f"{key:32} {value:.2f}" if isinstance(value, float) else f"{key:32} {value}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
