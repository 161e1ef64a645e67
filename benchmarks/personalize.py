"""Simulated users of `python -m fer.personalize` (issue 22): does a personal model learn the user's view of new
faces, how much of FER-2013 does it forget, and how long does it take?

    python benchmarks/personalize.py --csv ../shared/data/fer2013.csv.gz --ferplus ../shared/data/ferplus_labels.csv \\
        --json docs/personalize.json --md docs/personalize.md

(a) A user whose labels are FER+'s: N corrections (--n, default 25 100 400) drawn at random from the training
    faces where the FER+ majority disagrees with FER-2013's label, saved with fer.feedback as the app saves
    them, then `fer.personalize` (the library call, timed whole: reading the corrections, replay faces, features,
    training, ONNX export and its check). Measured before and after on PublicTest with FER+ majority labels (the
    user's view of new faces; contempt, unknown and not-a-face left out) and FER-2013 labels (forgetting).
(b) A new camera: training faces pasted into one scene style (one background photo, upright faces 60–120 px
    wide, fer/scenes.py) and cut out by YuNet as the app does; the user corrects the crops the base
    model gets wrong (with their FER-2013 label). Tested on PublicTest faces pasted into the other backgrounds
    the same way, and on plain PublicTest (forgetting).

Each setting runs with --seeds seeds (which corrections, the training's randomness); the tables give medians.
Modes: `replay` (--data CSV: 2,000 replayed training faces) and `none` (no data: only the pull towards the base).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fer.fileio import write_json_atomic  # noqa: E402
from fer.labels import FER2013_CLASSES  # noqa: E402

CLASSES = list(FER2013_CLASSES)
SCENE_BACKGROUND = "coffee"
SCENE_WIDTHS = (60.0, 120.0)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--csv", required=True, help="fer2013.csv[.gz]")
    p.add_argument("--ferplus", required=True, help="FER+ votes, row-aligned with the CSV")
    p.add_argument("--base", default=str(ROOT / "exports" / "fer2013_effnet_lite0.pkl"))
    p.add_argument("--n", type=int, nargs="+", default=[25, 100, 400], help="corrections per simulated user")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--modes", nargs="+", default=["replay", "none"], choices=["replay", "none"])
    p.add_argument("--studies", nargs="+", default=["ferplus", "camera"], choices=["ferplus", "camera"])
    p.add_argument("--anchor", type=float, help="fer.personalize --anchor (default: its own)")
    p.add_argument("--test-limit", type=int, help="only the first N PublicTest faces (a quick try)")
    p.add_argument("--scene-pool", type=int, default=1500, help="training faces pasted into the user's scene")
    p.add_argument("--scene-test", type=int, default=1000, help="PublicTest faces pasted into the other scenes")
    p.add_argument("--json", required=True)
    p.add_argument("--md", help="write the tables as Markdown here")
    return p.parse_args(argv)


def load_data(csv_path: str, ferplus_path: str):
    from fer.dataset import ferplus_majority, read_rows

    rows = list(read_rows(csv_path))
    majority = ferplus_majority(ferplus_path)
    faces = np.stack([r.pixels for r in rows])
    fer = np.array([CLASSES[r.label] for r in rows])
    plus = np.array([m if m in CLASSES else "" for m in majority])
    usage = np.array([r.usage for r in rows])
    return faces, fer, plus, usage


def accuracy(probs: np.ndarray, labels: np.ndarray, classes: list[str]) -> float:
    keep = labels != ""
    return float(np.mean(np.array(classes)[probs[keep].argmax(1)] == labels[keep]))


def write_corrections(folder: Path, faces: np.ndarray, labels, predicted_probs: np.ndarray, classes) -> None:
    from fer.feedback import save_correction

    for face, label, p in zip(faces, labels, predicted_probs):
        probs = dict(zip(classes, map(float, p)))
        save_correction(folder, face, str(label), "simulated", "fer2013_effnet_lite0.pkl", max(probs, key=probs.get),
                        probs, classes)


ANCHOR: dict = {}  # --anchor, when given


def run_one(base: str, faces, labels, base_probs, mode: str, csv_path: str, seed: int, work: Path):
    """One personalisation: ``(onnx path, seconds, card)``."""
    from fer.personalize import PersonalizeConfig, personalize

    folder = work / f"fb-{mode}-{seed}-{len(faces)}"
    write_corrections(folder, faces, labels, base_probs, CLASSES)
    config = PersonalizeConfig(feedback=str(folder), out=str(folder / "mine"), base=base,
                               data=csv_path if mode == "replay" else None, seed=seed, **ANCHOR)
    start = time.perf_counter()
    result = personalize(config)
    return result.onnx, time.perf_counter() - start, result.card


def predictor(path):
    from fer.onnx_predict import OnnxFacePredictor

    return OnnxFacePredictor.load(path)


def median_rows(rows: list[dict], keys: list[str], group: tuple[str, ...]) -> list[dict]:
    out = {}
    for r in rows:
        out.setdefault(tuple(r[g] for g in group), []).append(r)
    return [{**dict(zip(group, k)), "runs": len(v), **{key: round(float(np.median([r[key] for r in v])), 4)
                                                      for key in keys}} for k, v in out.items()]


def ferplus_study(args, data, base_pred, work: Path) -> dict:
    faces, fer, plus, usage = data
    test = np.where(usage == "PublicTest")[0][:args.test_limit]
    pool = np.where((usage == "Training") & (plus != "") & (plus != fer))[0]
    before = base_pred.predict_proba(list(faces[test]))
    base = {"ferplus": accuracy(before, plus[test], base_pred.classes),
            "fer2013": accuracy(before, fer[test], base_pred.classes)}
    runs = []
    for n in args.n:
        for seed in range(args.seeds):
            pick = np.random.default_rng(1000 + seed).choice(pool, size=n, replace=False)
            probs = base_pred.predict_proba(list(faces[pick]))
            for mode in args.modes:
                onnx, seconds, card = run_one(args.base, faces[pick], plus[pick], probs, mode, args.csv, seed, work)
                after = predictor(onnx).predict_proba(list(faces[test]))
                row = {"n": n, "seed": seed, "mode": mode, "seconds": round(seconds, 1),
                       "ferplus": accuracy(after, plus[test], base_pred.classes),
                       "fer2013": accuracy(after, fer[test], base_pred.classes)}
                row |= {"ferplus_gain": row["ferplus"] - base["ferplus"], "fer2013_change": row["fer2013"] - base["fer2013"]}
                runs.append(row)
                print(json.dumps(row), flush=True)
    return {"pool": int(len(pool)), "test_faces": int(len(test)), "before": base, "runs": runs,
            "medians": median_rows(runs, ["ferplus", "fer2013", "ferplus_gain", "fer2013_change", "seconds"],
                                   ("n", "mode"))}


def scene_crops(pixels: np.ndarray, backgrounds: list, seed: int) -> tuple[list[np.ndarray], list[int]]:
    """Each face pasted upright into one of ``backgrounds`` and cut out by YuNet as the app does; the crops
    and the indices of the faces found."""
    from data_scripts.detector_crops import detector_crop
    from fer.cli import progress
    from fer.detect import CropSpec, make_detector
    from fer.recognize import PHOTO_DETECT_WIDTH

    detector = make_detector("yunet", PHOTO_DETECT_WIDTH)
    crops, found = [], []
    for i, face in enumerate(progress(pixels, desc="scenes", unit="face")):
        rng = np.random.default_rng([seed, i])
        crop, _ = detector_crop(face, rng, detector, backgrounds, 0.0, SCENE_WIDTHS, CropSpec())
        if crop is not None:
            crops.append(crop)
            found.append(i)
    return crops, found


def camera_study(args, data, base_pred, work: Path) -> dict:
    from fer.scenes import BACKGROUNDS, SCENE_SIZE, background

    faces, fer, plus, usage = data
    mine = [background(SCENE_BACKGROUND, *SCENE_SIZE)]
    others = [background(b, *SCENE_SIZE) for b in BACKGROUNDS if b != SCENE_BACKGROUND]
    train = np.random.default_rng(7).choice(np.where(usage == "Training")[0], size=args.scene_pool, replace=False)
    test = np.where(usage == "PublicTest")[0][:args.test_limit]
    test_scene = test[:args.scene_test]
    user_crops, user_found = scene_crops(faces[train], mine, seed=1)
    test_crops, test_found = scene_crops(faces[test_scene], others, seed=2)
    user_idx, test_idx = train[user_found], test_scene[test_found]
    user_probs = base_pred.predict_proba(user_crops)
    wrong = np.where(np.array(CLASSES)[user_probs.argmax(1)] != fer[user_idx])[0]
    before_scene = base_pred.predict_proba(test_crops)
    before_plain = base_pred.predict_proba(list(faces[test]))
    base = {"other_scenes": accuracy(before_scene, fer[test_idx], base_pred.classes),
            "user_scene": accuracy(user_probs, fer[user_idx], base_pred.classes),
            "fer2013": accuracy(before_plain, fer[test], base_pred.classes)}
    runs = []
    crops = np.stack(user_crops)
    for n in [n for n in args.n if n <= len(wrong)]:
        for seed in range(args.seeds):
            pick = np.random.default_rng(2000 + seed).choice(wrong, size=n, replace=False)
            for mode in args.modes:
                onnx, seconds, card = run_one(args.base, crops[pick], fer[user_idx[pick]], user_probs[pick], mode,
                                              args.csv, seed, work)
                p = predictor(onnx)
                row = {"n": n, "seed": seed, "mode": mode, "seconds": round(seconds, 1),
                       "other_scenes": accuracy(p.predict_proba(test_crops), fer[test_idx], base_pred.classes),
                       "fer2013": accuracy(p.predict_proba(list(faces[test])), fer[test], base_pred.classes)}
                row |= {"scene_gain": row["other_scenes"] - base["other_scenes"],
                        "fer2013_change": row["fer2013"] - base["fer2013"]}
                runs.append(row)
                print(json.dumps(row), flush=True)
    return {"scene": {"user": SCENE_BACKGROUND, "others": [b for b in BACKGROUNDS if b != SCENE_BACKGROUND],
                      "face_widths": list(SCENE_WIDTHS), "tilted": False},
            "user_faces": {"pasted": int(len(train)), "found": int(len(user_idx)), "base_wrong": int(len(wrong))},
            "test_faces": {"pasted": int(len(test_scene)), "found": int(len(test_idx)), "plain": int(len(test))},
            "before": base, "runs": runs,
            "medians": median_rows(runs, ["other_scenes", "fer2013", "scene_gain", "fer2013_change", "seconds"],
                                   ("n", "mode"))}


def markdown(report: dict) -> str:
    lines = ["# Personal models from corrections (issue 22)", "",
             f"`{report['command']}`", "",
             f"Machine: {report['machine']}; load average at start {report['load_average_start']}, at end "
             f"{report['load_average_end']}. Medians of {report['seeds']} seeds. Time: the whole `fer.personalize` "
             f"call (corrections, replay faces, features, training, ONNX export and check).", ""]
    if "ferplus" in report:
        s = report["ferplus"]
        b = s["before"]
        lines += ["## (a) A user whose labels are FER+'s",
                  "", f"Corrections drawn from the {s['pool']:,} training faces where FER+'s majority disagrees with "
                  f"FER-2013; tested on {s['test_faces']:,} PublicTest faces. Base: FER+ labels {b['ferplus']:.2%}, "
                  f"FER-2013 labels {b['fer2013']:.2%}.", "",
                  "| corrections | mode | FER+ labels (user's view) | change | FER-2013 labels | change | seconds |",
                  "|---|---|---|---|---|---|---|"]
        for m in s["medians"]:
            lines.append(f"| {m['n']} | {m['mode']} | {m['ferplus']:.2%} | {100 * m['ferplus_gain']:+.1f} | "
                         f"{m['fer2013']:.2%} | {100 * m['fer2013_change']:+.1f} | {m['seconds']:.0f} |")
        lines.append("")
    if "camera" in report:
        s = report["camera"]
        b = s["before"]
        lines += ["## (b) A new camera",
                  "", f"The user's scene: faces pasted upright into the `{s['scene']['user']}` photo, "
                  f"{s['scene']['face_widths'][0]:.0f}–{s['scene']['face_widths'][1]:.0f} px wide, cut out by YuNet "
                  f"({s['user_faces']['found']} of {s['user_faces']['pasted']} found; the base model is wrong on "
                  f"{s['user_faces']['base_wrong']}, which the user corrects with their FER-2013 labels). Tested on "
                  f"{s['test_faces']['found']} PublicTest faces found in the other scenes "
                  f"({', '.join(s['scene']['others'])}). Base: {b['other_scenes']:.2%} on the other scenes, "
                  f"{b['fer2013']:.2%} on plain PublicTest.", "",
                  "| corrections | mode | other scenes | change | plain PublicTest | change | seconds |",
                  "|---|---|---|---|---|---|---|"]
        for m in s["medians"]:
            lines.append(f"| {m['n']} | {m['mode']} | {m['other_scenes']:.2%} | {100 * m['scene_gain']:+.1f} | "
                         f"{m['fer2013']:.2%} | {100 * m['fer2013_change']:+.1f} | {m['seconds']:.0f} |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.anchor is not None:
        ANCHOR["anchor"] = args.anchor
    from fer.cli import configure_logging
    from fer.model_files import load_predictor

    configure_logging()
    start = time.time()
    report = {"command": "python benchmarks/personalize.py " + shlex.join(sys.argv[1:] if argv is None else argv),
              "machine": f"{os.cpu_count()} CPU cores, {platform.processor() or platform.machine()}",
              "load_average_start": [round(x, 2) for x in os.getloadavg()], "seeds": args.seeds, "modes": args.modes,
              "anchor": args.anchor}
    data = load_data(args.csv, args.ferplus)
    base_pred = load_predictor(Path(args.base).with_suffix(".onnx"))
    with tempfile.TemporaryDirectory(prefix="fer-personalize-") as tmp:
        if "ferplus" in args.studies:
            report["ferplus"] = ferplus_study(args, data, base_pred, Path(tmp))
        if "camera" in args.studies:
            report["camera"] = camera_study(args, data, base_pred, Path(tmp))
    report["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    report["seconds"] = round(time.time() - start, 1)
    write_json_atomic(args.json, report)
    if args.md:
        Path(args.md).write_text(markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
