"""Add the faces as the app's detector crops them to a FER image folder, for training (issue #11).

    python data_scripts/detector_crops.py --data data/fer2013 --out data/fer2013_det
    python -m fer.finetune --data data/fer2013_det ...

Serving finds a face with YuNet and classifies a crop of the detector's box; FER-2013's faces are framed by
hand. To train on the serving framing too, every image of the chosen splits (default: train) is pasted
into a 640×480 background photo the way benchmarks/crop_accuracy.py does (fer/scenes.py: width
48–240 px log-uniform, a random place, a fraction tilted 10–25° either way), YuNet looks for it at the
app's photo settings (fer.serving.recognize.PHOTO_DETECT_WIDTH), the detection that matches the pasted face (IoU)
is cropped with the app's crop (fer.serving.detect.CropSpec(): square, no margin, no alignment) and brought to a
48×48 grey face, and that is written as OUT/<split>/<class>/<row>_det.png. Faces the detector misses are
counted and skipped (serving never sees them either).

OUT is a complete training folder: the original images of the chosen splits sit beside their crops, the
other splits (valid, test) are the source's own, untouched (hard links where possible, else copies), plus
the source's source.json and OUT/detector_crops.json (counts per split and class, the settings, the time).
The result depends on --seed only: each image has its own random generator (seed, row), so --workers does
not change a byte. OUT is built beside itself and moved into place at the end; an existing OUT is
replaced only with --overwrite. Needs scikit-image (the background photos: pip install -e '.[bench]').
"""

from __future__ import annotations

import argparse
import inspect
import os
import shutil
import sys
import time
import zlib
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from fer.core.extras import exit_on_missing_extra

SPLITS = ("train", "valid", "test")
#: Name of a crop beside its original: <row>.png → <row>_det.png.
CROP_SUFFIX = "_det"
REPORT = "detector_crops.json"
SOURCE_INFO = "source.json"
#: A detection is the pasted face when their IoU is at least this (and its centre is inside the face).
MATCH_MIN_IOU = 0.25


class BuildError(Exception):
    """Something the user has to fix; the message is one line."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python data_scripts/detector_crops.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="source folder: DATA/<split>/<class>/<row>.png "
                                                 "(data_scripts/prepare_fer2013.py)")
    p.add_argument("--out", required=True, help="new training folder (refused if it exists, unless --overwrite)")
    p.add_argument("--splits", nargs="+", choices=SPLITS, default=["train"],
                   help="splits to add detector crops to (default: train; the others are copied untouched)")
    p.add_argument("--tilted-fraction", type=float, default=0.5,
                   help="fraction of faces pasted tilted 10-25°, the rest upright (default 0.5)")
    p.add_argument("--face-widths", type=float, nargs=2, default=(48.0, 240.0), metavar=("MIN", "MAX"),
                   help="pasted face width in pixels, log-uniform between these (default 48 240)")
    p.add_argument("--seed", type=int, default=0, help="the same seed gives the same folder (default 0)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                   help="processes (default: one per CPU core; the output does not depend on it)")
    p.add_argument("--limit", type=int, help="only the first N images of each class of the chosen splits (a quick try)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing OUT")
    args = p.parse_args(argv)
    if not 0 <= args.tilted_fraction <= 1:
        p.error(f"--tilted-fraction {args.tilted_fraction}: must be between 0 and 1")
    if not 16 <= args.face_widths[0] <= args.face_widths[1] <= 400:
        p.error(f"--face-widths {args.face_widths[0]:g} {args.face_widths[1]:g}: need 16 <= MIN <= MAX <= 400 "
                "(the scene is 640×480)")
    if args.workers < 1:
        p.error(f"--workers {args.workers}: must be 1 or more")
    if args.limit is not None and args.limit < 1:
        p.error(f"--limit {args.limit}: must be 1 or more")
    args.splits = [s for s in SPLITS if s in args.splits]  # once each, in the usual order
    return args


# --------------------------------------------------------------------------- what to do

def row_key(path: Path) -> int:
    """The image's row index (FER-2013 files are named by CSV row), else a stable number from its name."""
    return int(path.stem) if path.stem.isdigit() else zlib.crc32(path.stem.encode())


def list_images(data: Path, split: str, limit: int | None) -> list[tuple[str, Path]]:
    """``(class, image)`` for the images of one split (the first ``limit`` of each class), in class then row
    order; crops already there are left out."""
    from fer.core.images import IMAGE_SUFFIXES

    found = []
    for class_dir in sorted(p for p in (data / split).iterdir() if p.is_dir()):
        files = [f for f in class_dir.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file()
                 and not f.stem.endswith(CROP_SUFFIX)]
        found += [(class_dir.name, f) for f in sorted(files, key=lambda f: (row_key(f), f.name))[:limit]]
    return found


def check_paths(data: Path, out: Path, splits: list[str], overwrite: bool) -> None:
    if not data.is_dir():
        raise BuildError(f"--data {data}: no such folder (make it with data_scripts/prepare_fer2013.py)")
    for split in splits:
        if not (data / split).is_dir():
            raise BuildError(f"--data {data}: has no {split}/ folder (the split to add detector crops to)")
    src, dst = data.resolve(), out.resolve()
    if dst == src or src in dst.parents or dst in src.parents:
        raise BuildError(f"--out {out}: must be outside --data {data} and not contain it")
    if out.exists() and not out.is_dir():
        raise BuildError(f"--out {out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise BuildError(f"--out {out}: already exists; pass --overwrite to replace it")


def link_or_copy(src: Path, dst: Path) -> bool:
    """A hard link at ``dst`` to ``src`` (True), or a copy where the file system cannot link (False)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
        return True
    except OSError:
        shutil.copy2(src, dst)
        return False


# --------------------------------------------------------------------------- one face (in a worker)

_WORKER: dict = {}


def init_worker(backgrounds: list, out: str, seed: int, tilted_fraction: float, widths: tuple[float, float]) -> None:
    """Per process: one detector (as the app makes it for photos), single-threaded OpenCV."""
    import cv2

    from fer.serving.detect import CropSpec, make_detector
    from fer.serving.recognize import PHOTO_DETECT_WIDTH

    cv2.setNumThreads(1)  # the processes are the parallelism; and the same arithmetic however many there are
    _WORKER.update(detector=make_detector("yunet", PHOTO_DETECT_WIDTH), spec=CropSpec(), backgrounds=backgrounds,
                   out=Path(out), seed=seed, tilted_fraction=tilted_fraction, widths=tuple(widths))


def init_pool_worker(*args) -> None:
    """:func:`init_worker` in a pool's process, which leaves Ctrl-C to the main one (it stops the pool)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    init_worker(*args)


def detector_crop(pixels, rng, detector, backgrounds: list, tilted_fraction: float, widths: tuple[float, float],
                  spec=None):
    """Paste ``pixels`` (a grey face) into a random scene, detect, crop the matching detection as serving
    does: ``(48×48 grey face or None when the detector misses it, tilted)``."""
    from fer.core.images import to_grey
    from fer.evaluation.scenes import match, random_scene
    from fer.serving.detect import CropSpec, face_crop
    from fer.serving.faces import to_face

    tilted = bool(rng.random() < tilted_fraction)
    scene, truth = random_scene(pixels, rng, backgrounds, tilted, widths)
    matched, _ = match(detector.detect(scene), [truth], MATCH_MIN_IOU)
    if 0 not in matched:
        return None, tilted
    # fer.serving.recognize.FaceRecognizer.crops, then the predictor's to_face: grey image, crop, 48×48
    return to_face(face_crop(to_grey(scene), matched[0], spec or CropSpec())), tilted


def process(task: tuple[str, str, str]) -> tuple[str, str, str, bool, bool | None]:
    """One image → its crop written beside its original's place in OUT: ``(split, class, file, tilted, found)``;
    found is None when the image cannot be read."""
    import cv2
    import numpy as np

    from fer.core.fileio import write_bytes_atomic

    split, name, path = task
    w = _WORKER
    pixels = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
    if pixels is None:
        return split, name, path, False, None
    rng = np.random.default_rng([w["seed"], row_key(Path(path))])
    face, tilted = detector_crop(pixels, rng, w["detector"], w["backgrounds"], w["tilted_fraction"], w["widths"],
                                 w["spec"])
    if face is not None:
        ok, encoded = cv2.imencode(".png", face)
        if not ok:
            raise OSError(f"could not encode the crop of {path}")
        write_bytes_atomic(w["out"] / split / name / f"{Path(path).stem}{CROP_SUFFIX}.png", encoded.tobytes())
    return split, name, path, tilted, face is not None


# --------------------------------------------------------------------------- the whole folder

def build(args: argparse.Namespace) -> dict:
    data, out = Path(args.data), Path(args.out)
    check_paths(data, out, args.splits, args.overwrite)
    try:
        from fer.evaluation.scenes import BACKGROUNDS, SCENE_SIZE, TILT_DEGREES, scene_backgrounds
        backgrounds = scene_backgrounds(SCENE_SIZE)
    except ImportError as e:
        raise BuildError(f"the background photos need scikit-image ({e}): pip install -e '.[bench]'") from None
    from fer.core.cli import progress
    from fer.core.fileio import write_json_atomic
    from fer.serving.detect import YUNET_MODEL, CropSpec, YuNetFaceDetector
    from fer.serving.recognize import PHOTO_DETECT_WIDTH

    start = time.perf_counter()
    images = {split: list_images(data, split, args.limit) for split in args.splits}
    for split, found in images.items():
        if not found:
            raise BuildError(f"--data {data}: no images under {data / split}")
    work = out.with_name(f".{out.name}.partial")  # built here, moved to OUT when complete
    if work.exists():
        shutil.rmtree(work)  # left by an interrupted run
    work.mkdir(parents=True)
    try:
        copies = 0
        for split, found in images.items():
            for name, path in found:
                copies += not link_or_copy(path, work / split / name / path.name)
        plain = {}
        for split in (s for s in SPLITS if s not in args.splits and (data / s).is_dir()):
            files = [f for f in sorted((data / split).rglob("*")) if f.is_file()]
            for f in files:
                copies += not link_or_copy(f, work / split / f.relative_to(data / split))
            plain[split] = len(files)
        if (data / SOURCE_INFO).is_file():
            shutil.copy2(data / SOURCE_INFO, work / SOURCE_INFO)

        tasks = [(split, name, str(path)) for split, found in images.items() for name, path in found]
        init = (backgrounds, str(work), args.seed, args.tilted_fraction, tuple(args.face_widths))
        counts = {split: {} for split in args.splits}
        pose_keys = ("tilted_missed", "tilted_scenes", "upright_missed", "upright_scenes")
        poses = {split: Counter(dict.fromkeys(pose_keys, 0)) for split in args.splits}
        for split, found in images.items():
            for name, _ in found:
                counts[split].setdefault(name, Counter(originals=0, crops=0, missed=0))["originals"] += 1
        workers = min(args.workers, len(tasks))
        pool = None
        if workers == 1:
            init_worker(*init)
            results = map(process, tasks)
        else:
            import multiprocessing

            # spawned, not forked: a forked child hangs in OpenCV's thread pool, already started here
            pool = multiprocessing.get_context("spawn").Pool(workers, initializer=init_pool_worker, initargs=init)
            results = pool.imap(process, tasks, chunksize=32)
        try:
            for split, name, path, tilted, found in progress(results, total=len(tasks), desc="detector crops",
                                                             unit="face"):
                if found is None:
                    raise BuildError(f"{path}: cannot be read as an image")
                counts[split][name]["crops" if found else "missed"] += 1
                pose = "tilted" if tilted else "upright"
                poses[split][f"{pose}_scenes"] += 1
                poses[split][f"{pose}_missed"] += not found
        finally:
            if pool is not None:
                pool.terminate()
                pool.join()

        # YuNet's settings as make_detector("yunet", PHOTO_DETECT_WIDTH) leaves them
        defaults = {k: v.default for k, v in inspect.signature(YuNetFaceDetector.__init__).parameters.items()
                    if k in ("score_threshold", "nms_threshold", "min_face")}
        report = {
            "source": str(data),
            "splits": {split: {"classes": {n: dict(c) for n, c in counts[split].items()},
                               "total": {k: sum(c[k] for c in counts[split].values())
                                         for k in ("originals", "crops", "missed")},
                               "poses": dict(sorted(poses[split].items()))}
                       for split in args.splits},
            "plain_splits": plain,
            "crop_file": f"<row>{CROP_SUFFIX}.png beside <row>.png",
            "detector": {"name": "yunet", "model": YUNET_MODEL.name, "detect_width": PHOTO_DETECT_WIDTH, **defaults},
            "crop_spec": vars(CropSpec()),
            "scene": {"size": list(SCENE_SIZE), "face_widths": list(args.face_widths),
                      "tilted_fraction": args.tilted_fraction, "tilt_degrees": list(TILT_DEGREES),
                      "backgrounds": list(BACKGROUNDS), "match_min_iou": MATCH_MIN_IOU},
            "seed": args.seed, "limit": args.limit, "workers": workers,
            "originals": "hard links" if copies == 0 else f"copies ({copies} files could not be hard-linked)",
            "seconds": round(time.perf_counter() - start, 1),
        }
        write_json_atomic(work / REPORT, report)
        if out.exists():  # only with --overwrite (checked above); hard links leave the source's files alone
            shutil.rmtree(out)
        work.rename(out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return report


def summary(report: dict, out: Path) -> str:
    lines = []
    for split, info in report["splits"].items():
        lines.append(f"{split}: {'class':10} {'originals':>9} {'crops':>7} {'missed':>7} {'missed %':>8}")
        for name, c in [*info["classes"].items(), ("total", info["total"])]:
            lines.append(f"{'':{len(split) + 2}}{name:10} {c['originals']:9d} {c['crops']:7d} {c['missed']:7d} "
                         f"{100 * c['missed'] / max(1, c['originals']):8.1f}")
        p = info["poses"]
        lines.append(f"{'':{len(split) + 2}}missed upright {p.get('upright_missed', 0)}/{p.get('upright_scenes', 0)}, "
                     f"tilted {p.get('tilted_missed', 0)}/{p.get('tilted_scenes', 0)}")
    plain = ", ".join(f"{s} ({n} files)" for s, n in report["plain_splits"].items()) or "none"
    lines.append(f"untouched: {plain}; originals as {report['originals']}")
    lines.append(f"wrote {out} in {report['seconds']:.1f} s (train on it: python -m fer.finetune --data {out} ...)")
    return "\n".join(lines)


@exit_on_missing_extra
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        report = build(args)
    except BuildError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: nothing was written", file=sys.stderr)
        return 130
    except OSError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(summary(report, Path(args.out)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
