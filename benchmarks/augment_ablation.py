"""Each augmentation option alone on top of the default recipe, measured on FER-2013 PublicTest (valid/).

    python benchmarks/augment_ablation.py --data data/fer2013 \\
        --weights ../shared/weights/tf_efficientnet_lite0.in1k.safetensors --size 64 --epochs 10 --jobs 8 \\
        --json docs/results/augment_ablation.json [--crops data/fer2013_det] [--crop-eval ../shared/data/fer2013.csv.gz]

Every variant is the same short run of ``python -m fer.finetune`` (same seed, lr, epochs) but for its
``--augment``/``--aug``/``--ema``/``--class-weight`` options; JOBS run at a time (a GPU takes several). The
table gives PublicTest accuracy and macro-F1 of each run's best epoch and its difference from the default.
With ``--crops DIR`` (data_scripts/detector_crops.py) a variant "detector crops" trains the default recipe
on DIR, the faces plus the app's detector crops of them. With ``--crop-eval CSV`` every model is also
measured on PublicTest faces as the app crops them (benchmarks/crop_accuracy.py, YuNet, the app's crop),
upright and tilted. A variant that fails (training or evaluation) is a row saying so; the others go on.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from math import nan
from pathlib import Path

from fer.serving.detect import CropSpec

#: name → extra fer.finetune options
VARIANTS = {
    "none": ["--augment", "none"],
    "default": [],
    "scale 0.85-1.2 + shift 8%": ["--aug", "scale=0.85,1.2", "--aug", "translate=0.08"],
    "rotate 20": ["--aug", "rotate=20"],
    "random erasing 0.25": ["--aug", "erasing=0.25"],
    "gamma 0.3": ["--aug", "gamma=0.3"],
    "blur 0.2 + jpeg 0.2": ["--aug", "blur=0.2", "--aug", "jpeg=0.2"],
    "strong (all of the above)": ["--augment", "strong"],
    "strong + EMA 0.999": ["--augment", "strong", "--ema", "0.999"],
    "strong + class weight 0.5": ["--augment", "strong", "--class-weight", "0.5"],
    "class weight 0.5": ["--class-weight", "0.5"],
}
#: The variant that trains on ``--crops``: the default recipe on the faces plus their detector crops.
CROPS_VARIANT = "detector crops"
#: The app's crop, as benchmarks/crop_accuracy.py's table writes its spec.
APP_CROP = vars(CropSpec())


def run_variant(name: str, extra: list[str], args, root: Path) -> dict:
    slug = "".join(c if c.isalnum() else "_" for c in name)[:40]
    out = root / f"{slug}.pkl"
    data = args.crops if name == CROPS_VARIANT else args.data
    cmd = [sys.executable, "-m", "fer.finetune", "--data", data, "--arch", args.arch, "--size", str(args.size),
           "--epochs", str(args.epochs), "--freeze-epochs", "1", "--bs", str(args.bs), "--lr", str(args.lr),
           "--out", str(out), "--run-dir", str(root / slug), *(["--weights", args.weights] if args.weights else []),
           *extra]
    row = {"variant": name, "options": extra, "data": data}
    start = time.perf_counter()
    if error := run_logged(cmd, root / f"{slug}.log"):
        return {**row, "error": f"training: {error}"}
    wall = time.perf_counter() - start
    figures = root / f"{slug}.eval.json"
    if error := run_logged([sys.executable, "-m", "fer.evaluate", "--model", str(out), "--data",
                            str(Path(args.data) / "valid"), "--json", str(figures)], root / f"{slug}.eval.log"):
        return {**row, "error": f"evaluation: {error}"}
    card, result = json.loads(out.with_suffix(".json").read_text()), json.loads(figures.read_text())
    row |= {"accuracy": round(result["accuracy"], 4), "macro_f1": round(result["macro_f1"], 4),
            "best_epoch": card["best_epoch"], "disgust_recall": round(result["per_class"]["disgust"]["recall"], 3),
            "train_minutes": round(card["training_seconds"] / 60, 1), "wall_minutes": round(wall / 60, 1)}
    if args.crop_eval:
        crops = root / f"{slug}.crops.json"
        if error := run_logged([sys.executable, str(Path(__file__).with_name("crop_accuracy.py")), "--csv",
                                args.crop_eval, "--model", str(out), "--usage", "PublicTest", "--detector", "yunet",
                                "--json", str(crops)], root / f"{slug}.crops.log"):
            return {**row, "error": f"crop evaluation: {error}"}
        row |= app_crop_accuracy(json.loads(crops.read_text()))
    return row


def run_logged(cmd: list[str], log: Path) -> str | None:
    """Run ``cmd`` with its output in ``log``; ``None`` when it succeeds, else the last line of its errors."""
    done = subprocess.run(cmd, capture_output=True, text=True)
    log.write_text(done.stdout + done.stderr)
    if done.returncode == 0:
        return None
    lines = (done.stderr or done.stdout).strip().splitlines()
    return lines[-1] if lines else f"exit status {done.returncode}"


def app_crop_accuracy(table: dict) -> dict:
    """Accuracy on the faces YuNet found, cut out with the app's crop, upright and tilted."""
    found = {r["set"].split()[0]: r["accuracy_on_detected"] for r in table["rows"]  # "tilted 10-25°" → "tilted"
             if r["detector"] == "yunet" and r["spec"] == APP_CROP}
    return {f"crop_accuracy_{subset}": round(found[subset], 4) for subset in ("upright", "tilted") if subset in found}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True)
    p.add_argument("--arch", default="tf_efficientnet_lite0")
    p.add_argument("--weights")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--bs", type=int, default=128)
    p.add_argument("--lr", type=float, default=6e-3)
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--only", nargs="*", help="variant names to run (default: all)")
    p.add_argument("--runs", default="runs/augment_ablation")
    p.add_argument("--json", help="write the table here")
    p.add_argument("--crops", help=f"a folder from data_scripts/detector_crops.py: adds the variant '{CROPS_VARIANT}'")
    p.add_argument("--crop-eval", metavar="CSV", help="FER-2013 csv: also measure each model on PublicTest faces "
                                                      "as the app crops them (YuNet)")
    args = p.parse_args(argv)
    root = Path(args.runs)
    root.mkdir(parents=True, exist_ok=True)
    variants = VARIANTS | ({CROPS_VARIANT: []} if args.crops else {})
    unknown = sorted(set(args.only or ()) - set(variants))
    if unknown:
        p.error(f"--only {', '.join(unknown)}: no such variant (have: {', '.join(variants)})")
    variants = {k: v for k, v in variants.items() if not args.only or k in args.only}
    with ThreadPoolExecutor(args.jobs) as pool:
        rows = list(pool.map(lambda kv: run_variant(*kv, args, root), variants.items()))
    base = next((r for r in rows if r["variant"] == "default" and "accuracy" in r), None)
    print(f"{'variant':<28} {'PublicTest':>10} {'Δ':>6} {'macro-F1':>8} {'Δ':>6} {'disgust':>7} {'min':>5}"
          + (f" {'crops up':>8} {'tilted':>6}" if args.crop_eval else ""))
    for r in rows:
        if "error" in r:
            print(f"{r['variant']:<28} failed: {r['error']} (its log: {root})")
            continue
        if base:
            r["delta_accuracy"] = round(r["accuracy"] - base["accuracy"], 4)
            r["delta_macro_f1"] = round(r["macro_f1"] - base["macro_f1"], 4)
        print(f"{r['variant']:<28} {r['accuracy']:>10.4f} {r.get('delta_accuracy', 0):>+6.3f} {r['macro_f1']:>8.4f} "
              f"{r.get('delta_macro_f1', 0):>+6.3f} {r['disgust_recall']:>7.3f} {r['train_minutes']:>5.1f}"
              + (f" {r.get('crop_accuracy_upright', nan):>8.4f} {r.get('crop_accuracy_tilted', nan):>6.4f}"
                 if args.crop_eval else ""))
    if args.json:
        Path(args.json).write_text(json.dumps({"setup": {k: v for k, v in vars(args).items() if k != "json"},
                                               "runs": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
