"""Does face quality mean something? Accuracy by quality band and by measure, on the evaluation suite's crops
and on crops made smaller, turned and blurred on purpose (fer/evaluation/quality_faces.py).

    python benchmarks/quality_bands.py [--usage PublicTest] [--json docs/results/quality_bands.json]

Every face of the split is pasted into a background photo, found by YuNet and cut as the app does; the
quality (fer/serving/quality.py: size, detector score, roll, yaw, sharpness → a value and a band) is set
against whether the model's label is right (FER-2013's and the FER+ majority's). The bar (issue 36): on the
degraded crops, accuracy in the top band at least 10 points above the bottom band. Writes the figures as
JSON and a Markdown table beside it (--md, default the --json name with .md). The faces are built once and
kept in --cache.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

from fer.core.fileio import write_json_atomic
from fer.evaluation.quality_faces import DEGRADED, MEASURES, SETS, quality_faces
from fer.serving import quality

#: Bins of each measure (edges; the last bin is open): where accuracy is read off to set the limits.
MEASURE_BINS = {"size": [0, 16, 24, 32, 40, 48, 96], "score": [0, 0.7, 0.8, 0.85, 0.9],
                "roll": [0, 10, 20, 30, 40, 50], "yaw": [0, 10, 20, 30, 45, 60],
                "sharpness": [0, 20, 40, 80, 150, 300, 1000]}
BAR_POINTS = 10.0


def recomputed(measures: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Quality values and bands from the kept measures by the limits in fer/serving/quality.py now."""
    values, bands = [], []
    for _, size, score, roll, yaw, sharp in measures:
        none = lambda v: None if np.isnan(v) else float(v)
        scores = quality.measure_scores(size, none(score), none(roll), none(yaw), sharp)
        values.append(min(scores.values()))
        bands.append(quality.band_of(values[-1]))
    return np.array(values), bands


def accuracy(probs: np.ndarray, labels: np.ndarray) -> tuple[float | None, int]:
    """Accuracy against ``labels`` (faces labelled -1 left out) and how many faces counted."""
    keep = labels >= 0
    if not keep.any():
        return None, 0
    return float((probs[keep].argmax(axis=1) == labels[keep]).mean()), int(keep.sum())


def by_band(probs: np.ndarray, fer2013: np.ndarray, ferplus: np.ndarray, bands: list[str]) -> dict:
    names = [name for name, _ in quality.BANDS] + [quality.POOR]
    out = {}
    for band in names:
        inside = np.array([b == band for b in bands], bool)
        acc13, n = accuracy(probs[inside], fer2013[inside])
        accfp, nfp = accuracy(probs[inside], ferplus[inside])
        out[band] = {"n": n, "share": float(inside.mean()) if len(bands) else 0.0, "fer2013": acc13,
                     "ferplus": accfp, "ferplus_n": nfp}
    return out


def by_measure(probs: np.ndarray, fer2013: np.ndarray, measures: np.ndarray) -> dict:
    """FER-2013 accuracy in bins of each measure (absolute angles)."""
    out = {}
    for name, edges in MEASURE_BINS.items():
        values = measures[:, MEASURES.index(name)]
        values = np.abs(values) if name in ("roll", "yaw") else values
        rows = []
        for low, high in zip(edges, [*edges[1:], np.inf]):
            inside = (values >= low) & (values < high)
            acc, n = accuracy(probs[inside], fer2013[inside])
            rows.append({"from": low, "to": None if high == np.inf else high, "n": n, "fer2013": acc})
        out[name] = rows
    return out


def summarise(sets: dict[str, dict[str, np.ndarray]]) -> dict:
    """Per set and pooled (the degraded sets; every detector crop): accuracy by band and by measure."""
    groups = {name: [name] for name in sets}
    groups["degraded (smaller + turned + blurred)"] = [s for s in DEGRADED if s in sets]
    groups["all detector crops"] = [s for s in sets if s != "plain"]
    out = {}
    for group, names in groups.items():
        if not names:
            continue
        probs = np.concatenate([sets[s]["probs"] for s in names])
        fer2013 = np.concatenate([sets[s]["fer2013"] for s in names])
        ferplus = np.concatenate([sets[s]["ferplus"] for s in names])
        measures = np.concatenate([sets[s]["measures"] for s in names])
        values, bands = recomputed(measures)
        acc13, n = accuracy(probs, fer2013)
        accfp, _ = accuracy(probs, ferplus)
        truth = np.concatenate([sets[s]["truth"] for s in names])
        tilted = (np.abs(truth[:, 1]) > 0) & ~np.isnan(measures[:, MEASURES.index("roll")])
        read = np.abs(measures[tilted, MEASURES.index("roll")]) / np.abs(truth[tilted, 1])
        total = sum(int(sets[s]["total"]) for s in names)
        out[group] = {"faces": n, "found": n / max(total, 1), "fer2013": acc13, "ferplus": accfp,
                      "mean_quality": float(values.mean()) if n else None,
                      # how much of a pasted face's tilt YuNet's eye landmarks read (median of |roll| / |tilt|)
                      "tilt_read": float(np.median(read)) if tilted.any() else None,
                      "bands": by_band(probs, fer2013, ferplus, bands),
                      "limit": {m: int(sum(1 for v, row in zip(values, measures) if v < 1 and limit_of(row) == m))
                                for m in MEASURES[1:]},
                      "measures": by_measure(probs, fer2013, measures)}
    return out


def limit_of(row: np.ndarray) -> str:
    none = lambda v: None if np.isnan(v) else float(v)
    scores = quality.measure_scores(row[1], none(row[2]), none(row[3]), none(row[4]), row[5])
    return min(scores, key=scores.get)


def separation(group: dict, labels: str = "fer2013") -> float | None:
    """Accuracy of the best non-empty band minus the worst's, in points."""
    filled = [b for b in group["bands"].values() if b["n"] >= 30 and b[labels] is not None]
    return 100 * (filled[0][labels] - filled[-1][labels]) if len(filled) >= 2 else None


def limits() -> dict:
    return {"size": quality.SIZE_LIMITS, "score": quality.SCORE_LIMITS, "roll": quality.ROLL_LIMITS,
            "yaw": quality.YAW_LIMITS, "sharpness": quality.SHARPNESS_LIMITS, "bands": quality.BANDS}


def pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.1f}"


def bin_name(row: dict) -> str:
    return f"{row['from']:g}–" + ("" if row["to"] is None else f"{row['to']:g}")


def markdown(result: dict) -> str:
    groups = result["groups"]
    names = [name for name, _ in quality.BANDS] + [quality.POOR]
    lines = [f"# Face quality against accuracy ({result['usage']}, {result['model']})", "",
             "Written by `python benchmarks/quality_bands.py`. Quality (fer/serving/quality.py) is the lowest of "
             "its measures' scores; bands: " + ", ".join(f"{n} ≥ {low}" for n, low in quality.BANDS)
             + f", {quality.POOR} below. Limits (score 0 → 1): " + "; ".join(
                 f"{k} {v[0]:g} → {v[1]:g}" for k, v in result["limits"].items() if k != "bands") + ".", "",
             "| faces | found | accuracy FER-2013 / FER+ | " + " | ".join(
                 f"{n}: share, accuracy FER-2013 / FER+" for n in names) + " | top − bottom band (FER-2013, points) |",
             "|---" * (4 + len(names)) + "|"]
    for group, g in groups.items():
        bands = " | ".join(f"{100 * g['bands'][n]['share']:.0f}%, {pct(g['bands'][n]['fer2013'])} / "
                           f"{pct(g['bands'][n]['ferplus'])}" for n in names)
        sep = separation(g)
        lines.append(f"| {group} ({g['faces']}) | {100 * g['found']:.0f}% | {pct(g['fer2013'])} / {pct(g['ferplus'])} | "
                     f"{bands} | {'–' if sep is None else f'{sep:+.1f}'} |")
    lines += ["", f"Bar: on the degraded crops the top band's accuracy is at least {BAR_POINTS:g} points above the "
              f"bottom band's: **{result['bar']['separation']:+.1f} points, {'met' if result['bar']['met'] else 'NOT met'}**.",
              "", "## Accuracy (FER-2013 labels) by measure, every detector crop", ""]
    measures = groups["all detector crops"]["measures"]
    for name, rows in measures.items():
        cells = " | ".join(f"{bin_name(r)}: {pct(r['fer2013'])} ({r['n']})" for r in rows if r["n"])
        lines.append(f"- **{name}**{' (absolute degrees)' if name in ('roll', 'yaw') else ''}: {cells}")
    limited = groups["all detector crops"]["limit"]
    lines += ["", "Which measure set the quality when it was under 1 (every detector crop): "
              + ", ".join(f"{k} {v}" for k, v in limited.items()) + "."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="the model (default: the shipped one)")
    p.add_argument("--usage", default="PublicTest", choices=("PublicTest", "PrivateTest"))
    p.add_argument("--csv", default=str(ROOT.parent / "shared/data/fer2013.csv.gz"))
    p.add_argument("--ferplus", default=str(ROOT.parent / "shared/data/ferplus_labels.csv"))
    p.add_argument("--sets", nargs="+", default=list(SETS), choices=SETS)
    p.add_argument("--limit", type=int, help="only the first N faces (a quick try)")
    p.add_argument("--cache", default=str(ROOT / "runs/quality_cache"))
    p.add_argument("--json", default=str(ROOT / "docs/results/quality_bands.json"))
    p.add_argument("--md", help="default: the --json name with .md")
    args = p.parse_args(argv)
    from fer.serving.model_files import default_model
    from fer.serving.recognize import FaceRecognizer

    recognizer = FaceRecognizer.load(args.model)
    sets = quality_faces(recognizer, args.csv, args.ferplus, args.usage, tuple(args.sets), limit=args.limit,
                         cache=args.cache or None)
    groups = summarise(sets)
    degraded = groups.get("degraded (smaller + turned + blurred)")
    sep = separation(degraded) if degraded else None
    result = {"usage": args.usage, "model": Path(args.model or default_model()).name,
              "temperature": getattr(recognizer.predictor, "temperature", 1.0), "limit": args.limit,
              "limits": limits(), "groups": groups,
              "bar": {"separation": sep, "points": BAR_POINTS, "met": sep is not None and sep >= BAR_POINTS}}
    write_json_atomic(Path(args.json), result)
    md = Path(args.md or Path(args.json).with_suffix(".md"))
    md.write_text(markdown(result))
    print(md.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
