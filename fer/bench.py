"""Speed of the live pipeline on a 640×480 frame made from skimage's astronaut photo (one face).

    python -m fer.bench [--model PKL] [--detector yunet|haar] [--frames 200] [--json FILE]

Reports medians over the frames: full-frame detection, detection near the tracked face (ROI),
classification per face (batch 1; also with each inference backend side by side, with and without the
preprocessing compiled into the model), and whole-frame time (detect + classify + draw) both with a full
detection on every frame and with the ROI search between full detections (every 5th frame). Every
detector is measured in the same run, rounds interleaved, so they compare fairly; the headline
``frame_ms_median`` is the chosen detector's frame as the webcam stream runs it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from fer.core.extras import exit_on_missing_extra
from fer.serving.detect import DETECTORS


def astronaut_frame(width: int = 640, height: int = 480) -> np.ndarray:
    """The astronaut photo (public domain, ships with scikit-image) letterboxed into a width×height RGB frame."""
    try:
        from skimage import data
    except ImportError:
        raise SystemExit("error: the benchmark photo comes with scikit-image: pip install -e '.[bench]'") from None

    photo = data.astronaut()
    scale = min(width / photo.shape[1], height / photo.shape[0])
    resized = cv2.resize(photo, (round(photo.shape[1] * scale), round(photo.shape[0] * scale)), interpolation=cv2.INTER_AREA)
    frame = np.zeros((height, width, 3), np.uint8)
    y, x = (height - resized.shape[0]) // 2, (width - resized.shape[1]) // 2
    frame[y:y + resized.shape[0], x:x + resized.shape[1]] = resized
    return frame


def median_ms(fn: Callable[[], object], n: int, warmup: int = 5) -> float:
    """The median time of ``fn`` in milliseconds over ``n`` calls, after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def interleaved_ms(variants: dict[str, Callable[[], object]], n: int, rounds: int = 5) -> dict[str, float]:
    """Median ms of each variant over ``rounds`` interleaved rounds (a slow spell of the machine hits all alike)."""
    times: dict[str, list[float]] = {key: [] for key in variants}
    for _ in range(rounds):
        for key, fn in variants.items():
            times[key].append(median_ms(fn, max(n // rounds, 1), warmup=2))
    return {key: statistics.median(t) for key, t in times.items()}


def classify_by_backend(predictor, face: list[np.ndarray], frames: int) -> dict[str, float]:
    """Per-face classification time with each inference backend, with the preprocessing compiled into the
    model (``+pre``) and as fastai's pipeline before it, side by side in one run (rounds interleaved)."""
    from fer.training.predict import FacePredictor
    from fer.training.runtime import BACKENDS

    variants = {}
    for name in BACKENDS[1:]:
        for fused in (True, False):
            other = FacePredictor(predictor.learn, predictor.card, backend=name, fuse_preprocess=fused)
            try:
                other.predict_proba(face)
            except Exception as e:  # noqa: BLE001 - a backend that cannot load here is reported, not fatal
                print(f"backend {name}: unavailable ({type(e).__name__}: {e})", file=sys.stderr)
                break
            variants[f"{name}{'+pre' if fused else ''}"] = lambda p=other: p.predict_proba(face)
    return interleaved_ms(variants, frames)


def by_detector(predictor, frame: np.ndarray, frames: int) -> dict[str, dict[str, float]]:
    """Detection and whole-frame times for every detector, side by side (rounds interleaved)."""
    from fer.serving.recognize import FaceRecognizer, annotate_frame

    variants = {}
    for name in DETECTORS:
        recognizer = FaceRecognizer.with_detector(predictor, name)
        boxes = recognizer.video_detector.detect(frame)
        if len(boxes) != 1:
            raise RuntimeError(f"expected one face in the benchmark frame, {name} found {len(boxes)}")
        every, between = recognizer.session(full_detect_every=1), recognizer.session()  # the latter as streams run
        variants.update({
            (name, "detect_full_ms_median"): lambda r=recognizer: r.video_detector.detect(frame),
            (name, "detect_roi_ms_median"): lambda s=between, b=boxes[0]: s.search_near(frame, b),
            (name, "frame_full_detect_ms_median"): lambda r=recognizer, s=every: annotate_frame(r, frame, s),
            (name, "frame_roi_between_ms_median"): lambda r=recognizer, s=between: annotate_frame(r, frame, s),
        })
    times = interleaved_ms(variants, frames)
    out: dict[str, dict[str, float]] = {name: {} for name in DETECTORS}
    for (name, key), ms in times.items():
        out[name][key] = ms
    return out


def run(model: str | Path, frames: int, backend: str = "auto", compare: bool = True, detector: str = "yunet") -> dict:
    """Every figure of the benchmark for the learner ``model`` on ``frames`` frames of the astronaut photo: per
    frame, per face, per backend and per detector (``compare``)."""
    import torch

    from fer.serving.recognize import FaceRecognizer, VideoSession
    from fer.training.predict import FacePredictor

    recognizer = FaceRecognizer.with_detector(FacePredictor.load(model, backend), detector)
    frame = astronaut_frame()
    box = recognizer.video_detector.detect(frame)[0]
    face = [frame[box.y:box.y + box.h, box.x:box.x + box.w]]
    result = {
        "frame": "640x480 skimage astronaut, 1 face", "model": str(model), "frames": frames,
        "torch_threads": torch.get_num_threads(), "detector": detector,
        "classify_ms_per_face_median": median_ms(lambda: recognizer.predictor.predict_proba(face), frames),
        "backend": recognizer.predictor.backend_used,
        "stream_full_detect_every": VideoSession.full_detect_every,
    }
    result["by_detector"] = by_detector(recognizer.predictor, frame, frames)
    # the headline: the chosen detector's frame as the stream runs it, from the interleaved rounds above
    result["frame_ms_median"] = result["by_detector"][detector]["frame_roi_between_ms_median"]
    result["fps_at_median"] = 1000 / result["frame_ms_median"]
    if compare:
        result["classify_ms_per_face_median_by_backend"] = classify_by_backend(recognizer.predictor, face, frames)
    return result


@exit_on_missing_extra
def main(argv: list[str] | None = None) -> int:
    """Run ``python -m fer.bench`` (``fer-bench``): print the figures and write them with ``--json``; returns the
    exit status."""
    p = argparse.ArgumentParser(prog="python -m fer.bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="exported learner (.pkl; default: the shipped model's; needs the training install)")
    p.add_argument("--detector", default=DETECTORS[0], choices=DETECTORS, help="the headline figures' detector")
    p.add_argument("--frames", type=int, default=200)
    p.add_argument("--backend", default="auto", choices=("auto", "onnx", "torchscript", "eager"),
                   help="inference backend (fer.training.runtime)")
    p.add_argument("--no-compare", action="store_true", help="skip timing every backend side by side")
    p.add_argument("--json", help="write the figures here")
    args = p.parse_args(argv)
    from fer.core.card import DEFAULT_LEARNER
    from fer.core.cli import configure_logging
    from fer.serving.model_files import ModelLoadError

    configure_logging()

    try:
        result = run(args.model or DEFAULT_LEARNER, args.frames, args.backend, not args.no_compare, args.detector)
    except ModelLoadError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for key, value in result.items():
        if isinstance(value, dict):
            for sub, figure in value.items():
                print(f"{key}.{sub}: " + (f"{figure:.2f}" if isinstance(figure, float) else
                                          ", ".join(f"{k} {v:.2f}" for k, v in figure.items())))
        else:
            print(f"{key:32} {value:.2f}" if isinstance(value, float) else f"{key:32} {value}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
