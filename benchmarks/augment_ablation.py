"""Each augmentation option alone on top of the default recipe, measured on FER-2013 PublicTest (valid/).

    python benchmarks/augment_ablation.py --data data/fer2013 \\
        --weights ../shared/weights/tf_efficientnet_lite0.in1k.safetensors --size 64 --epochs 10 --jobs 8 \\
        --json docs/augment_ablation.json

Every variant is the same short run of ``python -m fer.finetune`` (same seed, lr, epochs) but for its
``--augment``/``--aug``/``--ema``/``--class-weight`` options; JOBS run at a time (a GPU takes several). The
table gives PublicTest accuracy and macro-F1 of each run's best epoch and its difference from the default.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

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
}


def run_variant(name: str, extra: list[str], args, root: Path) -> dict:
    slug = "".join(c if c.isalnum() else "_" for c in name)[:40]
    out = root / f"{slug}.pkl"
    cmd = [sys.executable, "-m", "fer.finetune", "--data", args.data, "--arch", args.arch, "--size", str(args.size),
           "--epochs", str(args.epochs), "--freeze-epochs", "1", "--bs", str(args.bs), "--lr", str(args.lr),
           "--out", str(out), "--run-dir", str(root / slug), *(["--weights", args.weights] if args.weights else []),
           *extra]
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    (root / f"{slug}.log").write_text(done.stdout + done.stderr)
    if done.returncode:
        return {"variant": name, "options": extra, "error": done.stderr.strip().splitlines()[-1:]}
    figures = root / f"{slug}.eval.json"
    subprocess.run([sys.executable, "-m", "fer.evaluate", "--model", str(out), "--data", str(Path(args.data) / "valid"),
                    "--json", str(figures)], capture_output=True, check=True)
    card, result = json.loads(out.with_suffix(".json").read_text()), json.loads(figures.read_text())
    return {"variant": name, "options": extra, "accuracy": round(result["accuracy"], 4),
            "macro_f1": round(result["macro_f1"], 4), "best_epoch": card["best_epoch"],
            "disgust_recall": round(result["per_class"]["disgust"]["recall"], 3),
            "train_minutes": round(card["training_seconds"] / 60, 1), "wall_minutes": round(wall / 60, 1)}


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
    args = p.parse_args(argv)
    root = Path(args.runs)
    root.mkdir(parents=True, exist_ok=True)
    variants = {k: v for k, v in VARIANTS.items() if not args.only or k in args.only}
    with ThreadPoolExecutor(args.jobs) as pool:
        rows = list(pool.map(lambda kv: run_variant(*kv, args, root), variants.items()))
    base = next((r for r in rows if r["variant"] == "default" and "accuracy" in r), None)
    print(f"{'variant':<28} {'PublicTest':>10} {'Δ':>6} {'macro-F1':>8} {'Δ':>6} {'disgust':>7} {'min':>5}")
    for r in rows:
        if "accuracy" not in r:
            print(f"{r['variant']:<28} failed: {r['error']}")
            continue
        if base:
            r["delta_accuracy"] = round(r["accuracy"] - base["accuracy"], 4)
            r["delta_macro_f1"] = round(r["macro_f1"] - base["macro_f1"], 4)
        print(f"{r['variant']:<28} {r['accuracy']:>10.4f} {r.get('delta_accuracy', 0):>+6.3f} {r['macro_f1']:>8.4f} "
              f"{r.get('delta_macro_f1', 0):>+6.3f} {r['disgust_recall']:>7.3f} {r['train_minutes']:>5.1f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"setup": {k: v for k, v in vars(args).items() if k != "json"},
                                               "runs": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
