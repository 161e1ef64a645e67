"""Which crop around a detector's box should the classifier see? Measured on the whole detect → crop →
classify path.

    python benchmarks/crop_accuracy.py --csv ../shared/data/fer2013.csv.gz [--model PKL] [--limit N] [--json F]
        [--usage PublicTest] [--detector yunet]

Every FER-2013 PrivateTest face is pasted into a 640×480 background photo (fer/scenes.py) at a
random place and size (48–240 px wide, a sharp edge: the face fills its frame), once upright and once tilted by 10–25° either way. Each detector
(at the app's photo settings) looks for it; for every crop setting (margin, square or the box's own
shape, eye alignment) the crop is classified, and the accuracy on the detected faces is set against the
plain accuracy of the same faces at 48 px, so the difference is the crop's doing.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from itertools import product
from pathlib import Path

import numpy as np

from fer.core.card import DEFAULT_MODEL
from fer.core.images import to_grey
from fer.evaluation.scenes import SCENE_SIZE, fer_test_faces, match, random_scene, scene_backgrounds
from fer.serving.detect import CropSpec, face_crop, make_detector
from fer.serving.faces import to_face
from fer.serving.recognize import PHOTO_DETECT_WIDTH
from fer.training.predict import FacePredictor

SIZE = SCENE_SIZE
SPECS = {
    "yunet": [CropSpec(m, sq, al) for m, sq, al in product((0.0, 0.05, 0.1, 0.2), (False, True), (False, True))],
    "haar": [CropSpec(m, True, False) for m in (0.0, 0.05, 0.1, 0.2)],  # Haar boxes are square, with no landmarks
}


def scenes(faces: list[np.ndarray], tilted: bool, seed: int):
    """(grey scene, true box) for each face, reproducibly."""
    rng = np.random.default_rng(seed)
    backgrounds = scene_backgrounds(SIZE)
    for pixels in faces:
        yield random_scene(pixels, rng, backgrounds, tilted)


def label(spec: CropSpec) -> str:
    return f"margin {spec.margin:.2f}, {'square' if spec.square else 'box shape'}{', aligned' if spec.align else ''}"


def run(csv: Path, model: Path, limit: int | None, seed: int = 0, usage: str = "PrivateTest",
        detectors: tuple[str, ...] = tuple(SPECS)) -> dict:
    faces, labels = fer_test_faces(csv, usage)
    if limit:
        faces, labels = faces[:limit], labels[:limit]
    predictor = FacePredictor.load(model)
    truth_idx = np.array([predictor.classes.index(c) for c in labels])
    plain_correct = predictor.predict_proba(faces).argmax(1) == truth_idx
    specs = {name: SPECS[name] for name in detectors}
    detectors = {name: make_detector(name, PHOTO_DETECT_WIDTH) for name in specs}
    result = {"model": str(model), "usage": usage, "faces": len(faces), "plain_48px_accuracy": float(plain_correct.mean()), "rows": []}
    for tilted in (False, True):
        start = time.perf_counter()
        crops = {(d, i): [] for d in specs for i in range(len(specs[d]))}
        crops.update({("truth", 0): []})
        found = {d: [] for d in specs}
        for k, (scene, truth) in enumerate(scenes(faces, tilted, seed + tilted)):
            grey = to_grey(scene)
            crops[("truth", 0)].append(to_face(face_crop(grey, truth, CropSpec(0.0, False, False))))
            for name, detector in detectors.items():
                matched, _ = match(detector.detect(scene), [truth])
                if 0 in matched:
                    found[name].append(k)
                    for i, spec in enumerate(specs[name]):
                        crops[(name, i)].append(to_face(face_crop(grey, matched[0], spec)))
        subset = "tilted 10-25°" if tilted else "upright"
        rows = [("pasted box (no detector)", None, np.arange(len(faces)), crops[("truth", 0)])]
        rows += [(name, spec, np.array(found[name], int), crops[(name, i)])
                 for name in specs for i, spec in enumerate(specs[name])]
        for detector, spec, idx, faces_cropped in rows:
            setting = label(spec) if spec else "exact pasted square"
            correct = predictor.predict_proba(faces_cropped).argmax(1) == truth_idx[idx] if len(idx) else np.zeros(0, bool)
            row = {"set": subset, "detector": detector, "crop": setting, "spec": vars(spec) if spec else None,
                   "detected": len(idx) / len(faces),
                   "accuracy_on_detected": float(correct.mean()) if len(idx) else 0.0,
                   "plain_48px_same_faces": float(plain_correct[idx].mean()) if len(idx) else 0.0}
            row["difference"] = row["accuracy_on_detected"] - row["plain_48px_same_faces"]
            result["rows"].append(row)
            print(f"{subset:14} {detector:24} {setting:34} detected {row['detected']:6.1%}  "
                  f"accuracy {row['accuracy_on_detected']:6.2%}  plain {row['plain_48px_same_faces']:6.2%}  "
                  f"{100 * row['difference']:+5.2f} pts", flush=True)
        print(f"({subset}: {time.perf_counter() - start:.0f} s)", flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--csv", type=Path, default=Path("../shared/data/fer2013.csv.gz"))
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    p.add_argument("--limit", type=int, help="only the first N test faces")
    p.add_argument("--json", type=Path, help="write the table here")
    p.add_argument("--usage", default="PrivateTest", choices=("PublicTest", "PrivateTest"),
                   help="which FER-2013 test split's faces (PublicTest for choosing between models)")
    p.add_argument("--detector", action="append", choices=tuple(SPECS), help="only these detectors (default: all)")
    args = p.parse_args(argv)
    if not args.csv.is_file():
        print(f"error: {args.csv}: no such file (the FER-2013 CSV)", file=sys.stderr)
        return 2
    result = run(args.csv, args.model, args.limit, usage=args.usage, detectors=tuple(args.detector or SPECS))
    print(f"plain 48 px accuracy on all {result['faces']} faces: {result['plain_48px_accuracy']:.2%}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
