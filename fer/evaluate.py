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
serving score; --model may be given several times (the faces are built once; NAME=PATH names its column),
--json writes every
model's figures and --md (default: the --json name with .md) the table, the models side by side:

    python -m fer.evaluate --suite --model old.onnx --model new.onnx --json docs/results/suite/public.json

--calibrate fits the model's temperature (one scalar dividing its logits, fer/evaluation/calibration.py) on the
plain PublicTest faces against --fit-labels (default: the FER+ crowd's majority), reports every suite cell of
--usage before and after (ECE, cross-entropy; --json, --md, and the reliability diagram --reliability), and with
--write stores it in the .onnx model's metadata and its card, where the app, the commands and the page read it:

    python -m fer.evaluate --calibrate --model fer/models/fer2013_effnet_lite0/fer2013_effnet_lite0.onnx --write
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

# only light imports up here: --help answers without loading torch or fastai
from fer.core.card import default_model, write_suite_figures
from fer.core.cli import configure_logging
from fer.core.extras import exit_on_missing_extra
from fer.core.fileio import write_json_atomic
from fer.evaluation.calibration import FIT_LABELS
from fer.evaluation.evaluate import CROP_LIKE_SIDE, evaluate, plot_confusion
from fer.serving.faces import TTA_MODES, tta_mode
from fer.serving.model_files import ModelLoadError, load_predictor


def format_report(result: dict) -> str:
    """The printed report of one evaluation: accuracy, macro-F1 and each class's precision, recall and F1."""
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


@exit_on_missing_extra
def main(argv: list[str] | None = None) -> int:
    """Run ``python -m fer.evaluate`` (``fer-evaluate``): print the report and write the figures; returns the exit
    status."""
    p = argparse.ArgumentParser(prog="python -m fer.evaluate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", action="append", help="exported learner (.pkl) or ONNX model (.onnx, python -m fer.export); "
                                                     "default $FER_MODEL, else the shipped model; with --suite, repeat it to compare models")
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
    suite.add_argument("--beside", action="store_true",
                       help="also write each model's figures beside it as MODEL.suite.json (what the app's page and "
                            "the wheel carry; the shipped model's with --usage PrivateTest)")
    suite.add_argument("--limit", type=int, help="only the first N faces of the split (a quick try)")
    suite.add_argument("--cache", default="runs/suite_cache",
                       help="keep the built faces here and reuse them (default runs/suite_cache; '' for none)")
    cal = p.add_argument_group("calibration (--calibrate)")
    cal.add_argument("--calibrate", action="store_true", help="fit the temperature on PublicTest and report (see above)")
    cal.add_argument("--fit-labels", default=FIT_LABELS[0], choices=FIT_LABELS,
                     help="what the temperature is fitted to: the FER+ majority (default), the FER+ vote shares, or "
                          "the FER-2013 labels")
    cal.add_argument("--write", action="store_true",
                     help="store the temperature in the --model .onnx (its metadata; weights untouched) and its card")
    cal.add_argument("--reliability", help="the reliability diagram PNG (default: the --json name with .reliability.png)")
    args = p.parse_args(argv)
    import sklearn  # noqa: F401 - the metrics' library (the training install): missing, stop before the work

    configure_logging()
    models = args.model or [str(default_model())]
    if args.calibrate:
        if len(models) > 1:
            p.error("--calibrate takes one --model")
        return run_calibrate_command(args, models[0])
    if args.suite:
        return run_suite_command(args, models)
    if args.data is None or len(models) > 1:
        p.error("give --data and one --model (or --suite)")
    args.model = models[0]
    try:
        predictor = load_predictor(args.model)
        detector = None
        if args.detect:
            from fer.serving.detect import make_detector
            from fer.serving.recognize import PHOTO_DETECT_WIDTH

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
    from fer.evaluation.suite import format_table, run_suite, suite_faces

    if not check_data_files(args):
        return 2
    try:
        named = dict(m.split("=", 1) if "=" in m else (m, m) for m in models)  # NAME=PATH names a column
        predictors = {name: load_predictor(path) for name, path in named.items()}
        import fer.evaluation.scenes  # noqa: F401  (scikit-image for the background photos, checked before the long part)
        faces = suite_faces(args.csv, args.ferplus, args.usage, limit=args.limit, cache=args.cache or None)
        results = {name: {**run_suite(p, faces, tta=tta_mode(args.tta)), "model": named[name]}
                   for name, p in predictors.items()}
    except (ModelLoadError, FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except ImportError as e:
        print(f"error: {e.name} is missing: the suite needs pip install -e '.[bench]'", file=sys.stderr)
        return 2
    table = format_table(results)
    print(table)
    print(f"faces built in {faces.seconds:.0f} s (once; then from --cache); each model: "
          + ", ".join(f"{name} {r['seconds']['model']:.0f} s" for name, r in results.items()))
    for name in results if args.beside else ():
        print(f"{name}'s figures beside it: {write_suite_figures(named[name], results[name])}")
    if args.json:
        write_json_atomic(Path(args.json), results)
        md = Path(args.md or Path(args.json).with_suffix(".md"))
        md.write_text(table)
        print(f"figures: {args.json}, table: {md}")
    elif args.md:
        Path(args.md).write_text(table)
    return 0


def check_data_files(args: argparse.Namespace) -> bool:
    """Whether --csv and --ferplus exist (else one line says which is missing)."""
    for path, what in ((args.csv, "--csv: the FER-2013 CSV"), (args.ferplus, "--ferplus: the FER+ votes")):
        if not Path(path).is_file():
            print(f"error: {path}: no such file ({what})", file=sys.stderr)
            return False
    return True


def run_calibrate_command(args: argparse.Namespace, model: str) -> int:
    """``--calibrate``: fit the temperature on PublicTest, report the --usage split's cells before and after,
    store it in the model with --write."""
    from fer.evaluation.calibration import calibration_report, fit, format_report, plot_reliability, write_calibration
    from fer.evaluation.suite import suite_faces
    from fer.serving.onnx_predict import OnnxFacePredictor

    if not check_data_files(args):
        return 2
    if Path(model).suffix.lower() != ".onnx":
        print(f"error: {model}: --calibrate needs an ONNX model (.onnx; python -m fer.export makes one)", file=sys.stderr)
        return 2
    try:
        predictor = OnnxFacePredictor.load(model)
        command = f"python -m fer.evaluate --calibrate --fit-labels {args.fit_labels}" + " --write" * args.write
        calibration = fit(predictor, args.csv, args.ferplus, args.fit_labels, args.limit, command)
        print(f"temperature {calibration['temperature']:.4f}, fitted on {calibration['fitted_on']} against "
              f"{args.fit_labels} labels (cross-entropy {calibration['nll_before']:.4f} → {calibration['nll_after']:.4f})")
        faces = suite_faces(args.csv, args.ferplus, args.usage, limit=args.limit, cache=args.cache or None)
        report = {**calibration_report(predictor, faces, calibration["temperature"]), "model": model,
                  "calibration": calibration}
    except (ModelLoadError, FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    table = format_report(report)
    print(table)
    if args.write:
        write_calibration(model, calibration)
        print(f"temperature written into {model} (metadata) and its card")
    if args.json:
        write_json_atomic(Path(args.json), report)
        Path(args.md or Path(args.json).with_suffix(".md")).write_text(table)
    png = args.reliability or (Path(args.json).with_suffix(".reliability.png") if args.json else None)
    if png:
        plot_reliability(report, png, f"{Path(model).name}, {report['usage']}: temperature "
                                      f"{calibration['temperature']:.2f} fitted on PublicTest ({args.fit_labels} labels)")
        print(f"reliability diagram: {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
