"""Known failure modes of the shipped model, from its own measurements: the largest confusions of every suite
cell, what becomes of open-mouthed expressions, which labels the crowd rarely agrees with, and small, turned
and blurred faces.

    python benchmarks/failure_modes.py [--suite fer/models/.../MODEL.suite.json] [--quality docs/results/quality_bands.json]

Reads the evaluation suite's figures beside the model (``python -m fer.evaluate --suite --usage PrivateTest
--beside``: confusion matrices per cell) and benchmarks/quality_bands.py's (accuracy by face size, tilt and
blur); writes docs/results/failure_modes.json and the Markdown beside it, which the model card includes.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

from fer.core.fileio import write_json_atomic

#: Expressions the face shows with an open mouth (surprise; fear; anger when shouting).
OPEN_MOUTH = ("surprise", "fear", "angry")
TOP = 3


def confusions(matrix: np.ndarray, classes: list[str], top: int = TOP) -> list[dict]:
    """The ``top`` largest off-diagonal cells: true class, predicted class, faces, share of the true class."""
    off = [(int(matrix[i, j]), i, j) for i in range(len(classes)) for j in range(len(classes)) if i != j]
    return [{"true": classes[i], "predicted": classes[j], "faces": n, "share_of_true": n / max(int(matrix[i].sum()), 1)}
            for n, i, j in sorted(off, reverse=True)[:top]]


def row_of(matrix: np.ndarray, classes: list[str], name: str) -> dict:
    """Where the faces of class ``name`` go: predicted class → share."""
    i = classes.index(name)
    total = max(int(matrix[i].sum()), 1)
    return {"faces": int(matrix[i].sum()), "predicted": {c: int(matrix[i, j]) / total for j, c in enumerate(classes)}}


def precision(matrix: np.ndarray, classes: list[str]) -> dict:
    """Per predicted class: how many faces it was given to and the share of them whose label agrees."""
    return {c: {"predicted": int(matrix[:, j].sum()), "precision": int(matrix[j, j]) / max(int(matrix[:, j].sum()), 1)}
            for j, c in enumerate(classes)}


def analyse(suite: dict, quality: dict | None) -> dict:
    classes = suite["classes"]
    cells, mouths, precisions = {}, {}, {}
    for name, cell in suite["cells"].items():
        for labels in ("fer2013", "ferplus"):
            matrix = np.array(cell[labels]["confusion_matrix"])
            cells[f"{name}, {labels}"] = confusions(matrix, classes)
            if name == "plain":
                mouths[labels] = {c: row_of(matrix, classes, c) for c in OPEN_MOUTH if c in classes}
                precisions[labels] = precision(matrix, classes)
    out = {"usage": suite["usage"], "model": suite.get("model"), "classes": classes, "largest_confusions": cells,
           "open_mouth": mouths, "precision_plain": precisions}
    if quality:
        groups = quality["groups"]
        out["seen_badly"] = {
            "usage": quality["usage"],
            "sets": {s: {"found": groups[s]["found"], "fer2013": groups[s]["fer2013"], "ferplus": groups[s]["ferplus"]}
                     for s in ("crops upright", "crops tilted", "smaller", "turned", "blurred") if s in groups},
            "by_size": groups["all detector crops"]["measures"]["size"],
            "by_roll": groups["all detector crops"]["measures"]["roll"],
            "by_sharpness": groups["all detector crops"]["measures"]["sharpness"],
        }
    return out


def pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.0f}%"


def markdown(result: dict) -> str:
    lines = [f"Figures: `python benchmarks/failure_modes.py` → [`failure_modes.json`](results/failure_modes.json), from the "
             f"suite's {result['usage']} confusion matrices"
             + (f" and [`quality_bands.json`](results/quality_bands.json) ({result['seen_badly']['usage']})"
                if "seen_badly" in result else "") + ".", "",
             "**Largest confusions per suite cell** (true → predicted: faces, share of the true class):", "",
             "| cell | 1st | 2nd | 3rd |", "|---|---|---|---|"]
    for cell, found in result["largest_confusions"].items():
        lines.append(f"| {cell} | " + " | ".join(
            f"{c['true']} → {c['predicted']}: {c['faces']} ({pct(c['share_of_true'])})" for c in found) + " |")
    lines += ["", "**Open mouths** (plain faces; where the faces of each open-mouthed expression go):", "",
              "| labels | true class | faces | " + " | ".join(result["classes"]) + " |",
              "|---|---|---|" + "---|" * len(result["classes"])]
    for labels, rows in result["open_mouth"].items():
        for name, row in rows.items():
            lines.append(f"| {labels} | {name} | {row['faces']} | " + " | ".join(
                f"**{pct(v)}**" if c == name else pct(v) for c, v in row["predicted"].items()) + " |")
    lines += ["", "**Which labels to trust** (plain faces; faces given each label, and the share whose label "
              "agrees, FER-2013 / FER+ crowd):", "",
              "| label | " + " | ".join(result["classes"]) + " |", "|---|" + "---|" * len(result["classes"]),
              "| given to | " + " | ".join(str(result["precision_plain"]["fer2013"][c]["predicted"])
                                         for c in result["classes"]) + " |",
              "| agrees, FER-2013 / FER+ | " + " | ".join(
                  f"{pct(result['precision_plain']['fer2013'][c]['precision'])} / "
                  f"{pct(result['precision_plain']['ferplus'][c]['precision'])}" for c in result["classes"]) + " |"]
    if "seen_badly" in result:
        seen = result["seen_badly"]
        lines += ["", f"**Small, turned and blurred faces** ({seen['usage']}; found by YuNet / accuracy FER-2013 / FER+):", "",
                  "| set | found | accuracy FER-2013 | accuracy FER+ |", "|---|---|---|---|"]
        for name, s in seen["sets"].items():
            lines.append(f"| {name} | {pct(s['found'])} | {pct(s['fer2013'])} | {pct(s['ferplus'])} |")
        for what, rows in (("face size (px)", seen["by_size"]), ("eye-line tilt read from the landmarks (°)", seen["by_roll"]),
                           ("sharpness", seen["by_sharpness"])):
            lines.append(f"\nAccuracy (FER-2013) by {what}: " + ", ".join(
                f"{r['from']:g}–{'' if r['to'] is None else format(r['to'], 'g')}: {pct(r['fer2013'])} ({r['n']})"
                for r in rows if r["n"]) + ".")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    from fer.core.card import DEFAULT_MODEL, suite_path

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--suite", default=str(suite_path(DEFAULT_MODEL)))
    p.add_argument("--quality", default=str(ROOT / "docs/results/quality_bands.json"))
    p.add_argument("--json", default=str(ROOT / "docs/results/failure_modes.json"))
    args = p.parse_args(argv)
    suite = json.loads(Path(args.suite).read_text())
    quality = json.loads(Path(args.quality).read_text()) if Path(args.quality).is_file() else None
    result = analyse(suite, quality)
    write_json_atomic(Path(args.json), result)
    md = Path(args.json).with_suffix(".md")
    md.write_text(markdown(result))
    print(md.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
