"""The "not sure" rule's curve: coverage (the share of faces given a label) against accuracy on the faces
labelled (selective accuracy), by minimum confidence and minimum face quality, and the app's default chosen
from it.

    python benchmarks/not_sure.py                                  # PublicTest: the curve and the choice
    python benchmarks/not_sure.py --usage PrivateTest --sets plain "crops upright" "crops tilted" \\
        --json docs/results/not_sure_private.json                          # the app's rule, measured once

The faces are fer/evaluation/quality_faces.py's (plain faces, the suite's crops, the degraded crops), with the
shipped model's calibrated probabilities and each face's quality (fer/serving/quality.py).

The choice (PublicTest only; FER-2013 labels, the ones the probabilities are calibrated to; plain faces and
the suite's crops pooled): ``min_confidence`` is the lowest threshold from which faces are right more often
than wrong (the faces whose top probability lies in each 0.05-wide step above it are right at least half the
time); ``min_quality`` is the poor band's upper edge when the poor band's faces that pass ``min_confidence`` are
right less often than the rest by at least 10 points on the degraded crops, else 0.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

from fer.core.fileio import write_json_atomic
from fer.evaluation.quality_faces import DEGRADED, SETS, quality_faces
from fer.serving import quality

CONFIDENCE_GRID = [round(0.05 * i, 2) for i in range(19)]  # 0 … 0.9
QUALITY_GRID = [0.0, 0.1, 0.2, 0.35, 0.5, 0.75, 0.9]
STEP = 0.05
GROUPS = {"plain": ["plain"], "crops (upright + tilted)": ["crops upright", "crops tilted"],
          "plain + crops": ["plain", "crops upright", "crops tilted"], "degraded crops": list(DEGRADED)}


def quality_values(measures: np.ndarray) -> np.ndarray:
    """Each face's quality by the limits in fer/serving/quality.py now."""
    none = lambda v: None if np.isnan(v) else float(v)
    return np.array([min(quality.measure_scores(m[1], none(m[2]), none(m[3]), none(m[4]), m[5]).values())
                     for m in measures])


def pooled(sets: dict, names: list[str], labels: str) -> dict[str, np.ndarray] | None:
    """The faces of ``names`` with a label in ``labels`` (fer2013 or ferplus): confidence, right, quality."""
    names = [n for n in names if n in sets]
    if not names:
        return None
    probs = np.concatenate([sets[n]["probs"] for n in names])
    truth = np.concatenate([sets[n][labels] for n in names])
    values = np.concatenate([quality_values(sets[n]["measures"]) for n in names])
    keep = truth >= 0
    return {"confidence": probs.max(axis=1)[keep], "right": (probs.argmax(axis=1) == truth)[keep],
            "quality": values[keep]}


def selective(faces: dict[str, np.ndarray], min_confidence: float, min_quality: float) -> dict:
    """Coverage and accuracy of the faces the rule labels (and of those it does not)."""
    labelled = (faces["confidence"] >= min_confidence) & (faces["quality"] >= min_quality)
    right = faces["right"]
    return {"min_confidence": min_confidence, "min_quality": min_quality, "coverage": float(labelled.mean()),
            "accuracy": float(right[labelled].mean()) if labelled.any() else None,
            "accuracy_not_sure": float(right[~labelled].mean()) if (~labelled).any() else None,
            "accuracy_all": float(right.mean())}


def choose_confidence(faces: dict[str, np.ndarray]) -> float:
    """The lowest grid threshold from which every 0.05-wide confidence step (with 30 faces or more) is right at
    least half the time."""
    def step_ok(t: float) -> bool:
        inside = (faces["confidence"] >= t) & (faces["confidence"] < t + STEP)
        return inside.sum() < 30 or faces["right"][inside].mean() >= 0.5
    return next(t for t in CONFIDENCE_GRID if all(step_ok(u) for u in CONFIDENCE_GRID if u >= t))


def choose_quality(degraded: dict[str, np.ndarray] | None, min_confidence: float) -> tuple[float, float | None]:
    """The poor band's upper edge when, on the degraded crops, the poor faces that pass ``min_confidence`` are
    right at least 10 points less often than the others that do; else 0. Returns (choice, that gap in points)."""
    if degraded is None:
        return 0.0, None
    edge = quality.BANDS[-1][1]
    passing = degraded["confidence"] >= min_confidence
    poor, rest = passing & (degraded["quality"] < edge), passing & (degraded["quality"] >= edge)
    if poor.sum() < 30 or rest.sum() < 30:
        return 0.0, None
    gap = 100 * (degraded["right"][rest].mean() - degraded["right"][poor].mean())
    return (edge if gap >= 10 else 0.0), float(gap)


def pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.1f}"


def markdown(result: dict) -> str:
    rule = result["rule"]
    lines = [f"# \"Not sure\": coverage against accuracy ({result['usage']}, {result['model']}, "
             f"temperature {result['temperature']:g})", "",
             "Written by `python benchmarks/not_sure.py`. A face is labelled when its top (calibrated) probability is "
             "at least `min_confidence` and its quality at least `min_quality`; the others are reported as not sure "
             "(\"?\", probabilities kept). Coverage: the share of faces labelled; accuracy: on those faces.", ""]
    if result.get("chosen"):
        chosen = result["chosen"]
        lines += [f"**The app's default, chosen on this curve** (see the module's notes): `min_confidence "
                  f"{chosen['min_confidence']:g}`, `min_quality {chosen['min_quality']:g}` (poor band; on the degraded "
                  f"crops the poor faces that pass the confidence bar are right {chosen['quality_gap_points']:.1f} "
                  f"points less often than the others).", ""]
    lines += [f"## The rule min_confidence {rule['min_confidence']:g}, min_quality {rule['min_quality']:g}", "",
              "| faces | labels | share labelled | accuracy on them | accuracy, every face | accuracy on the not-sure faces |",
              "|---|---|---|---|---|---|"]
    for group, by_labels in result["rule_figures"].items():
        for labels, r in by_labels.items():
            lines.append(f"| {group} | {labels} | {pct(r['coverage'])}% | **{pct(r['accuracy'])}** | "
                         f"{pct(r['accuracy_all'])} | {pct(r['accuracy_not_sure'])} |")
    lines += ["", "## Coverage / accuracy by min_confidence (FER-2013 labels; min_quality 0)", "",
              "| min_confidence | " + " | ".join(result["confidence_curve"]) + " |",
              "|---" * (len(result["confidence_curve"]) + 1) + "|"]
    for i, t in enumerate(CONFIDENCE_GRID):
        lines.append(f"| {t:.2f} | " + " | ".join(
            f"{pct(c[i]['coverage'])}% / {pct(c[i]['accuracy'])}" for c in result["confidence_curve"].values()) + " |")
    lines += ["", f"## Coverage / accuracy by min_quality (FER-2013 labels; min_confidence {rule['min_confidence']:g})",
              "", "| min_quality | " + " | ".join(result["quality_curve"]) + " |",
              "|---" * (len(result["quality_curve"]) + 1) + "|"]
    for i, q in enumerate(QUALITY_GRID):
        lines.append(f"| {q:.2f} | " + " | ".join(
            f"{pct(c[i]['coverage'])}% / {pct(c[i]['accuracy'])}" for c in result["quality_curve"].values()) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="the model (default: the shipped one)")
    p.add_argument("--usage", default="PublicTest", choices=("PublicTest", "PrivateTest"))
    p.add_argument("--csv", default=str(ROOT.parent / "shared/data/fer2013.csv.gz"))
    p.add_argument("--ferplus", default=str(ROOT.parent / "shared/data/ferplus_labels.csv"))
    p.add_argument("--sets", nargs="+", default=list(SETS), choices=SETS)
    p.add_argument("--min-confidence", type=float, help="the rule to measure (default: chosen on PublicTest; on "
                                                        "PrivateTest, the app's default)")
    p.add_argument("--min-quality", type=float)
    p.add_argument("--limit", type=int)
    p.add_argument("--cache", default=str(ROOT / "runs/quality_cache"))
    p.add_argument("--json", default=str(ROOT / "docs/results/not_sure.json"))
    p.add_argument("--md", help="default: the --json name with .md")
    args = p.parse_args(argv)
    from fer.serving.model_files import default_model
    from fer.serving.recognize import FaceRecognizer

    recognizer = FaceRecognizer.load(args.model)
    sets = quality_faces(recognizer, args.csv, args.ferplus, args.usage, tuple(args.sets), limit=args.limit,
                         cache=args.cache or None)
    faces = {group: {labels: pooled(sets, names, labels) for labels in ("fer2013", "ferplus")}
             for group, names in GROUPS.items()}
    faces = {g: f for g, f in faces.items() if f["fer2013"] is not None}
    chosen = None
    if args.usage == "PublicTest" and args.min_confidence is None:
        min_confidence = choose_confidence(faces["plain + crops"]["fer2013"])
        min_quality, gap = choose_quality(faces.get("degraded crops", {}).get("fer2013"), min_confidence)
        chosen = {"min_confidence": min_confidence, "min_quality": min_quality, "quality_gap_points": gap}
    else:
        from fer_app.settings import NOT_SURE_MIN_CONFIDENCE, NOT_SURE_MIN_QUALITY

        min_confidence = NOT_SURE_MIN_CONFIDENCE if args.min_confidence is None else args.min_confidence
        min_quality = NOT_SURE_MIN_QUALITY if args.min_quality is None else args.min_quality
    result = {
        "usage": args.usage, "model": Path(args.model or default_model()).name,
        "temperature": getattr(recognizer.predictor, "temperature", 1.0), "limit": args.limit, "chosen": chosen,
        "rule": {"min_confidence": min_confidence, "min_quality": min_quality},
        "rule_figures": {g: {labels: selective(f[labels], min_confidence, min_quality) for labels in f}
                         for g, f in faces.items()},
        "confidence_curve": {g: [selective(f["fer2013"], t, 0.0) for t in CONFIDENCE_GRID] for g, f in faces.items()},
        "quality_curve": {g: [selective(f["fer2013"], min_confidence, q) for q in QUALITY_GRID] for g, f in faces.items()},
    }
    write_json_atomic(Path(args.json), result)
    md = Path(args.md or Path(args.json).with_suffix(".md"))
    md.write_text(markdown(result))
    print(md.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
