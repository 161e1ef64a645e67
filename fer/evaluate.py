"""Evaluate an exported learner on labelled faces.

    python -m fer.evaluate --model exports/fer2013_effnet_lite0.pkl --data data/fer2013/test
    python -m fer.evaluate --model exports/fer2013_effnet_lite0.pkl --data ../shared/data/fer2013.csv.gz --tta
    python -m fer.evaluate --model exports/fer2013_effnet_lite0.onnx --data data/fer2013/valid --tta tencrop

DATA is a class-per-folder tree (``DATA/<class>/*.png``), a folder of images whose names start with
their class (``happy_001.jpg``), or a FER-2013 CSV (its PrivateTest rows).

Each image is taken to be a face crop, as in FER-2013, and scored whole. For photos of people, pass
--detect: the largest face in each photo is found and cropped first (photos without a face are skipped
and listed).

--tta averages each face's probabilities over several views of it: flip (the face and its mirror image;
--tta alone) or tencrop (four corner crops and the centre crop, 44 of 48 px, and their mirrors). The
report, the JSON's tta field and the confusion matrix's title state the mode.

--suite runs the evaluation suite (fer/suite.py) instead: plain faces and the app's detector crops of one
FER-2013 split (--usage, PublicTest by default), each against the FER-2013 and the FER+ labels, and the
serving score; --model may be given several times (the faces are built once), --json writes every
model's figures and --md (default: the --json name with .md) the table, the models side by side:

    python -m fer.evaluate --suite --model old.onnx --model new.onnx --json docs/suite/public.json
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

# only light imports up here: --help answers without loading torch or fastai
from fer.card import DEFAULT_MODEL
from fer.cli import configure_logging
from fer.faces import TTA_MODES, tta_mode
from fer.fileio import write_json_atomic
from fer.images import images_under
from fer.metrics import metrics
from fer.model_files import ModelLoadError, Predictor, load_predictor


@dataclass
class LabelledFaces:
    faces: list[np.ndarray]
    labels: list[str]
    source: str
    skipped: list[str]


def label_from_path(path: Path, classes: Sequence[str]) -> str | None:
    """The class of an image: its folder's name, or the start of its file name (``happy_01.jpg``)."""
    if path.parent.name in classes:
        return path.parent.name
    stem = path.stem.lower()
    return next((c for c in sorted(classes, key=len, reverse=True) if stem.startswith(c)), None)


#: Images larger than this (shorter side, pixels) are probably photos rather than face crops.
CROP_LIKE_SIDE = 160


def largest_face(image: np.ndarray, detector) -> np.ndarray | None:
    """The largest detected face cropped as the classifier expects (grey), or None when there is none."""
    from fer.detect import CropSpec, face_crop
    from fer.images import to_grey

    boxes = detector.detect(image)
    if not boxes:
        return None
    return face_crop(to_grey(image), max(boxes, key=lambda b: b.area), CropSpec())


def load_folder(folder: Path, classes: Sequence[str], detector=None) -> LabelledFaces:
    """Every labelled image under ``folder`` (with a ``detector``: its largest face); unlabelled or unreadable
    files and photos without a face are listed as skipped."""
    from fer.images import ImageError, load_image

    if (folder / "train").is_dir() and (folder / "test").is_dir():
        raise ValueError(f"{folder} holds whole splits; pass one of them, e.g. {folder / 'test'}")
    files = images_under(folder)
    faces, labels, skipped = [], [], []
    for path in files:
        label = label_from_path(path, classes)
        if label is None:
            skipped.append(f"{path}: no class in its folder or file name")
            continue
        try:
            image = load_image(path, name=str(path))
        except ImageError as e:
            skipped.append(str(e))
            continue
        if detector is not None and (image := largest_face(image, detector)) is None:
            skipped.append(f"{path}: no face found")
            continue
        faces.append(image)
        labels.append(label)
    return LabelledFaces(faces, labels, str(folder), skipped)


def load_csv(path: Path, usage: str = "PrivateTest") -> LabelledFaces:
    """The ``usage`` rows of a FER-2013 CSV."""
    from fer.dataset import read_rows
    from fer.labels import FER2013_CLASSES

    rows = [r for r in read_rows(path) if r.usage == usage]
    return LabelledFaces([r.pixels for r in rows], [FER2013_CLASSES[r.label] for r in rows], f"{path} ({usage})", [])


def load_labelled(data: str | Path, classes: Sequence[str], detector=None) -> LabelledFaces:
    """Labelled faces from ``data``; with a ``detector``, the largest face of each image is cropped first."""
    data = Path(data)
    if data.is_dir():
        found = load_folder(data, classes, detector)
    elif data.is_file():
        found = load_csv(data)
    else:
        raise FileNotFoundError(f"{data}: no such folder or CSV")
    if not found.faces:
        raise ValueError(f"{data}: no labelled images found (expected <class>/*.png or class-prefixed names; "
                         f"classes: {', '.join(classes)})")
    return found


def plot_confusion(result: dict, path: str | Path, title: str) -> Path:
    """Row-normalised confusion matrix with counts, as a PNG."""
    from fer.plotting import pyplot

    plt = pyplot()

    cm = np.array(result["confusion_matrix"])
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    classes = result["classes"]
    fig, ax = plt.subplots(figsize=(7, 6))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(classes)):
        for j in range(len(classes)):
            ax.text(j, i, f"{norm[i, j]:.0%}\n{cm[i, j]}", ha="center", va="center", fontsize=8,
                    color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def photo_like(faces: Sequence[np.ndarray]) -> int:
    """How many of the images are larger than face crops usually are."""
    return sum(min(f.shape[:2]) > CROP_LIKE_SIDE for f in faces)


def evaluate(predictor: Predictor, data: str | Path, tta: str | bool = False, detector=None) -> dict:
    """Classify every labelled face in ``data`` (batched, with the TTA mode ``tta``) and compute the metrics;
    with a ``detector`` the largest face of each image is found and cropped first, else each image is taken
    as a face crop."""
    tta = tta_mode(tta)
    found = load_labelled(data, predictor.classes, detector)
    start = time.perf_counter()
    probs = predictor.predict_proba(found.faces, tta=tta)
    seconds = time.perf_counter() - start
    predicted = [predictor.classes[i] for i in probs.argmax(axis=1)]
    result = metrics(found.labels, predicted, predictor.classes)
    result.update(data=found.source, tta=tta, seconds=round(seconds, 2), skipped=found.skipped,
                  faces_detected=detector is not None, photo_like=0 if detector else photo_like(found.faces))
    return result


def format_report(result: dict) -> str:
    lines = [f"{result['data']}: {result['n']} images, TTA {tta_mode(result['tta'])}, {result['seconds']:.1f} s",
             f"accuracy {result['accuracy']:.4f}   macro-F1 {result['macro_f1']:.4f}", "",
             f"{'class':<10} {'precision':>9} {'recall':>7} {'f1':>7} {'support':>8}"]
    for c, m in result["per_class"].items():
        lines.append(f"{c:<10} {m['precision']:>9.3f} {m['recall']:>7.3f} {m['f1-score']:>7.3f} {m['support']:>8}")
    if result.get("photo_like"):
        lines.append(f"\nwarning: {result['photo_like']} of {result['n']} images are over {CROP_LIKE_SIDE} px: each "
                     f"image was scored whole, as a face crop. If they are photos of people, pass --detect to "
                     f"find and crop the faces first")
    if result["skipped"]:
        lines.append(f"\nskipped {len(result['skipped'])} file(s), e.g. {result['skipped'][0]}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m fer.evaluate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", action="append", help="exported learner (.pkl) or ONNX model (.onnx, python -m fer.export); "
                                                     f"default {DEFAULT_MODEL}; with --suite, repeat it to compare models")
    p.add_argument("--data", help="class-per-folder tree, labelled image folder, or FER-2013 CSV")
    p.add_argument("--tta", nargs="?", const="flip", default="none", choices=TTA_MODES,
                   help="test-time augmentation: average over the face and its mirror image (flip; --tta alone) or "
                        "ten crops (tencrop: corners and centre, and their mirrors); default: none")
    p.add_argument("--detect", action="store_true",
                   help="images are photos: score the largest detected face of each (default: images are face crops)")
    p.add_argument("--json", help="write the figures as JSON here")
    p.add_argument("--cm", help="confusion-matrix PNG (default: the --json name with .cm.png, e.g. test.cm.png; "
                                "without --json, ./confusion_matrix.png)")
    suite = p.add_argument_group("the evaluation suite (--suite)")
    suite.add_argument("--suite", action="store_true", help="run the evaluation suite instead (see above)")
    suite.add_argument("--usage", default="PublicTest", choices=("PublicTest", "PrivateTest"),
                       help="the FER-2013 split (PublicTest selects; PrivateTest once per shipped model)")
    suite.add_argument("--csv", default=str(DEFAULT_CSV), help=f"the FER-2013 CSV (default {DEFAULT_CSV})")
    suite.add_argument("--ferplus", default=str(DEFAULT_FERPLUS), help=f"the FER+ votes (default {DEFAULT_FERPLUS})")
    suite.add_argument("--md", help="the Markdown table (default: the --json name with .md)")
    suite.add_argument("--limit", type=int, help="only the first N faces of the split (a quick try)")
    suite.add_argument("--cache", default="runs/suite_cache",
                       help="keep the built faces here and reuse them (default runs/suite_cache; '' for none)")
    args = p.parse_args(argv)
    configure_logging()
    models = args.model or [str(DEFAULT_MODEL)]
    if args.suite:
        return run_suite_command(args, models)
    if args.data is None or len(models) > 1:
        p.error("give --data and one --model (or --suite)")
    args.model = models[0]
    try:
        predictor = load_predictor(args.model)
        detector = None
        if args.detect:
            from fer.detect import make_detector
            from fer.recognize import PHOTO_DETECT_WIDTH

            detector = make_detector("yunet", PHOTO_DETECT_WIDTH)
        result = evaluate(predictor, args.data, tta=args.tta, detector=detector)
    except (ModelLoadError, FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    result["model"] = str(args.model)
    print(format_report(result))
    cm_path = Path(args.cm or (Path(args.json).with_suffix(".cm.png") if args.json else "confusion_matrix.png"))
    plot_confusion(result, cm_path, f"{Path(args.model).name} on {Path(result['data']).name}, "
                   f"TTA {result['tta']}: accuracy {result['accuracy']:.1%}")
    print(f"\nconfusion matrix: {cm_path}")
    if args.json:
        write_json_atomic(Path(args.json), result)
        print(f"figures: {args.json}")
    return 0


DEFAULT_CSV = Path("../shared/data/fer2013.csv.gz")
DEFAULT_FERPLUS = Path("../shared/data/ferplus_labels.csv")


def run_suite_command(args: argparse.Namespace, models: list[str]) -> int:
    """``--suite``: build the faces once, score every model, print and write the table."""
    from fer.suite import format_table, run_suite, suite_faces

    for path, what in ((args.csv, "--csv: the FER-2013 CSV"), (args.ferplus, "--ferplus: the FER+ votes")):
        if not Path(path).is_file():
            print(f"error: {path}: no such file ({what})", file=sys.stderr)
            return 2
    try:
        predictors = {m: load_predictor(m) for m in models}
        import fer.scenes  # noqa: F401  (scikit-image for the background photos, checked before the long part)
        faces = suite_faces(args.csv, args.ferplus, args.usage, limit=args.limit, cache=args.cache or None)
        results = {m: {**run_suite(p, faces, tta=tta_mode(args.tta)), "model": m} for m, p in predictors.items()}
    except (ModelLoadError, FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except ImportError as e:
        print(f"error: {e.name} is missing: the suite needs pip install -e '.[bench]'", file=sys.stderr)
        return 2
    table = format_table(results)
    print(table)
    print(f"faces built in {faces.seconds:.0f} s (once; then from --cache); each model: "
          + ", ".join(f"{Path(m).name} {r['seconds']['model']:.0f} s" for m, r in results.items()))
    if args.json:
        write_json_atomic(Path(args.json), results)
        md = Path(args.md or Path(args.json).with_suffix(".md"))
        md.write_text(table)
        print(f"figures: {args.json}, table: {md}")
    elif args.md:
        Path(args.md).write_text(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
