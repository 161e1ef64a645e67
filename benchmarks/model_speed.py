"""Per-face classification time of ONNX models side by side (batch 1, rounds interleaved, medians).

    python benchmarks/model_speed.py OLD.onnx NEW.onnx [--faces 300] [--threads 0] [--json docs/results/suite/speed.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from fer.serving.onnx_predict import OnnxFacePredictor
from fer.training.export import check_faces


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="+", type=Path)
    p.add_argument("--faces", type=int, default=300, help="timed faces per model (default 300)")
    p.add_argument("--threads", type=int, default=0, help="onnxruntime threads (0: its default)")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    models = {str(m): OnnxFacePredictor.load(m, threads=args.threads) for m in args.models}
    faces = check_faces()
    times: dict[str, list[float]] = {name: [] for name in models}
    for model in models.values():  # warm-up
        model.predict_proba(faces[:2])
    for i in range(args.faces):
        for name, model in models.items():  # interleaved: load on the machine hits every model alike
            start = time.perf_counter()
            model.predict_proba([faces[i % len(faces)]])
            times[name].append(1000 * (time.perf_counter() - start))
    result = {"faces": args.faces, "threads": args.threads, "load_average": os.getloadavg()[0],
              "models": {name: {"ms_per_face_median": round(float(np.median(t)), 3),
                                "bytes": Path(name).stat().st_size} for name, t in times.items()}}
    for name, m in result["models"].items():
        print(f"{name}: {m['ms_per_face_median']:.2f} ms per face (median of {args.faces}), {m['bytes'] / 1e6:.1f} MB")
    print(f"load average {result['load_average']:.1f}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
