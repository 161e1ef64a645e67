"""How batch analysis scales with worker processes: photos/s and video frames/s of ``fer.analyze`` and
``fer.video`` with 1 and 2 workers, side by side in one run, and the throughput each added worker brings to
a cluster, estimated from them.

    python benchmarks/batch_scale.py --work /tmp/batch_scale --json docs/results/batch_scale.json --md docs/batch_scale.md

Inputs, made here from public-domain photos (no network): ``--photos`` JPEGs (default 500), random crops of
the astronaut, Grace Hopper and cameraman portraits (and their mirror images) around the face, scaled 0.5–1.5×
(about 130 to 700 px a side); and ``--videos`` clips (default 4 of 10 s, 640×480 at 30 frames/s, one moving
face, a cut, two faces: benchmarks/video_clips.py). Each configuration is the whole command, timed from start
to exit (process start, model loading in every worker, reading, detection, classification, the CSV), run
``--repeat`` times in turn with the others (the median is reported). Configurations: ``--workers 1 --threads 1``,
``--workers 2 --threads 1`` (the scaling bar: ≥ 1.7×) and both workers counts with their default threads (the
cores divided by the workers: 2 workers must not be slower than 1).

The cluster estimate: a worker process of one thread analyses ``per_worker`` photos/s (the 1-worker figure),
and N such workers give N × per_worker × efficiency, where efficiency is the 2-worker throughput over twice
the 1-worker one (what contention for memory bandwidth and caches leaves on a machine; between machines only
the shared file system and Dask's ~1 ms per task are added, both small next to ~40 ms per photo).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
from fer.evaluation.scenes import photo_faces, write_clip

#: The shipped model as ONNX (torch-free; the .pkl runs the same ONNX graph after a few seconds of export).
DEFAULT_MODEL = ROOT / "exports" / "fer2013_effnet_lite0.onnx"
#: (workers, threads): None threads = the command's default (the cores divided by the workers).
CONFIGS = ((1, 1), (2, 1), (1, None), (2, None))


def make_photos(folder: Path, n: int, seed: int = 0) -> list[Path]:
    """``n`` JPEGs: random crops around a portrait's face (1.3–3× the face's size), scaled 0.5–1.5×."""
    rng = np.random.default_rng(seed)
    sources = photo_faces()
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        source = sources[i % len(sources)]
        height, width = source.image.shape[:2]
        face = source.face
        side = int(min(width, height, max(face.w, face.h) * rng.uniform(1.3, 3.0)))
        cx, cy = face.x + face.w / 2 + rng.uniform(-0.2, 0.2) * face.w, face.y + face.h / 2
        x0 = int(np.clip(cx - side / 2, 0, width - side))
        y0 = int(np.clip(cy - side / 2, 0, height - side))
        crop = Image.fromarray(source.image[y0:y0 + side, x0:x0 + side])
        size = max(64, int(side * rng.uniform(0.5, 1.5)))
        path = folder / f"photo_{i:04d}.jpg"
        crop.resize((size, size), Image.BILINEAR).save(path, quality=90)
        paths.append(path)
    return paths


def make_videos(folder: Path, n: int, seconds: float, fps: float, width: int, height: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    return [write_clip(folder / f"clip_{i}.mp4", width, height, round(seconds * fps), fps) for i in range(n)]


def run_command(tool: str, inputs: Path, table: Path, model: Path, workers: int, threads: int | None) -> dict:
    """One whole command, timed from start to exit; the number of rows it wrote."""
    command = [sys.executable, "-m", tool, str(inputs), "--csv", str(table), "--overwrite", "--quiet",
               "--model", str(model), "--workers", str(workers)] + (["--threads", str(threads)] if threads else [])
    start = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({result.returncode}): {result.stderr[-2000:]}")
    with open(table) as f:
        rows = sum(1 for _ in f) - 1
    return {"seconds": seconds, "rows": rows}


def measure(tool: str, inputs: Path, units: int, unit: str, model: Path, repeat: int, work: Path) -> list[dict]:
    """Every configuration ``repeat`` times, in turn; the median wall time of each and its throughput."""
    times: dict[tuple, list[float]] = {c: [] for c in CONFIGS}
    rows: dict[tuple, int] = {}
    for r in range(repeat):
        for workers, threads in CONFIGS:
            run = run_command(tool, inputs, work / f"{tool}.csv", model, workers, threads)
            times[workers, threads].append(run["seconds"])
            rows[workers, threads] = run["rows"]
            print(f"{tool} --workers {workers} --threads {threads or 'default'} (run {r + 1}/{repeat}): "
                  f"{run['seconds']:.1f} s, {units / run['seconds']:.1f} {unit}/s, {run['rows']} rows", flush=True)
    if len(set(rows.values())) != 1:
        raise RuntimeError(f"{tool}: the configurations wrote different numbers of rows: {rows}")
    base = statistics.median(times[1, 1])
    return [{"workers": w, "threads": t or f"default ({max(1, cpu_count() // w)})",
             "seconds_median": round(statistics.median(times[w, t]), 2), "seconds": [round(s, 2) for s in times[w, t]],
             f"{unit}_per_s": round(units / statistics.median(times[w, t]), 2),
             "speedup_vs_1_worker_1_thread": round(base / statistics.median(times[w, t]), 3), "rows": rows[w, t]}
            for w, t in CONFIGS]


def cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def cluster_estimate(runs: list[dict], unit: str) -> dict:
    """Per added one-thread worker, from the 1- and 2-worker figures (see the module docstring)."""
    one, two = (next(r for r in runs if (r["workers"], r["threads"]) == (w, 1)) for w in (1, 2))
    per_worker, efficiency = one[f"{unit}_per_s"], two[f"{unit}_per_s"] / (2 * one[f"{unit}_per_s"])
    return {f"per_worker_{unit}_per_s": per_worker, "efficiency_2_workers": round(efficiency, 3),
            f"added_per_worker_{unit}_per_s": round(per_worker * efficiency, 2),
            f"estimate_{unit}_per_s": {n: round(n * per_worker * efficiency, 1) for n in (4, 16, 64)}}


def cpu_name() -> str:
    """The CPU's model name (Linux), else the machine type."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def write_markdown(path: Path, result: dict) -> None:
    lines = ["# Batch analysis: scaling with worker processes", "",
             f"Written by `{result['command']}` ({result['date']}; {result['cores']} cores, {result['cpu']}; load "
             f"average {result['load_before'][0]} before, {result['load_after'][0]} after; median of "
             f"{result['repeat']}; model `{result['model']}`). Whole commands, process start and model loading in "
             "every worker included.", ""]
    for kind, unit, what in (("photos", "images", f"{result['photo_inputs']} photos"),
                             ("videos", "frames", f"{result['video_inputs']['count']} videos of "
                                                  f"{result['video_inputs']['frames_each']} frames")):
        lines += [f"## {what}", "", f"| workers | threads | wall time (s) | {unit}/s | vs 1 worker, 1 thread |",
                  "|---|---|---|---|---|"]
        for run in result[kind]["runs"]:
            lines.append(f"| {run['workers']} | {run['threads']} | {run['seconds_median']} | "
                         f"{run[f'{unit}_per_s']} | {run['speedup_vs_1_worker_1_thread']}× |")
        est = result[kind]["cluster"]
        lines += ["", f"Per added one-thread worker on a cluster of machines like this: about "
                      f"{est[f'added_per_worker_{unit}_per_s']} {unit}/s (one worker alone "
                      f"{est[f'per_worker_{unit}_per_s']}, 2-worker efficiency {est['efficiency_2_workers']}); "
                      + ", ".join(f"{n} workers ≈ {v}" for n, v in est[f"estimate_{unit}_per_s"].items()) + ".", ""]
    bars = result["bars"]
    lines += ["## Bars", "",
              f"- `--workers 2 --threads 1` vs `--workers 1 --threads 1` on the photos: {bars['scaling_photos']}× "
              f"(bar ≥ 1.7: {'met' if bars['scaling_met'] else 'NOT met'})",
              f"- default threads, 2 workers vs 1 on the photos: {bars['default_threads_photos']}× "
              f"(bar ≥ 1: {'met' if bars['default_met'] else 'NOT met'})", ""]
    path.write_text("\n".join(lines))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", type=Path, required=True, help="folder for the generated photos, videos and tables")
    p.add_argument("--photos", type=int, default=500)
    p.add_argument("--videos", type=int, default=4)
    p.add_argument("--video-seconds", type=float, default=10)
    p.add_argument("--fps", type=float, default=30)
    p.add_argument("--video-size", type=int, nargs=2, default=(640, 480), metavar=("W", "H"))
    p.add_argument("--repeat", type=int, default=1, help="runs of each configuration (the median is reported)")
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    p.add_argument("--json", type=Path)
    p.add_argument("--md", type=Path)
    args = p.parse_args()
    load_before = load_average()
    if load_before[0] > 0.5:
        print(f"warning: load average {load_before[0]}: other work on this machine distorts the figures", flush=True)
    photos = make_photos(args.work / "photos", args.photos)
    videos = make_videos(args.work / "videos", args.videos, args.video_seconds, args.fps, *args.video_size)
    frames = args.videos * round(args.video_seconds * args.fps)
    result = {"command": "python benchmarks/batch_scale.py " + " ".join(sys.argv[1:]),
              "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cores": cpu_count(),
              "cpu": cpu_name(), "python": platform.python_version(),
              "load_before": load_before, "repeat": args.repeat, "model": str(args.model.relative_to(ROOT))
              if args.model.is_relative_to(ROOT) else str(args.model), "photo_inputs": len(photos),
              "video_inputs": {"count": len(videos), "frames_each": round(args.video_seconds * args.fps),
                         "size": list(args.video_size)}}
    for kind, tool, inputs, units, unit in (("photos", "fer.analyze", args.work / "photos", len(photos), "images"),
                                            ("videos", "fer.video", args.work / "videos", frames, "frames")):
        runs = measure(tool, inputs, units, unit, args.model, args.repeat, args.work)
        result[kind] = {"runs": runs, "cluster": cluster_estimate(runs, unit)}
    result["load_after"] = load_average()
    photo_runs = {(r["workers"], r["threads"] if isinstance(r["threads"], int) else None): r
                  for r in result["photos"]["runs"]}
    scaling = photo_runs[2, 1]["speedup_vs_1_worker_1_thread"]
    default = round(photo_runs[1, None]["seconds_median"] / photo_runs[2, None]["seconds_median"], 3)
    result["bars"] = {"scaling_photos": scaling, "scaling_met": scaling >= 1.7,
                      "default_threads_photos": default, "default_met": default >= 1.0}
    print(json.dumps(result["bars"]))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    if args.md:
        write_markdown(args.md, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
