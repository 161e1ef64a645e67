"""Start-up time and memory of the app with an ONNX model against the app with the fastai learner.

Each run starts ``app/main.py`` in a fresh process under the given interpreter (e.g. a venv with the default,
light install: ``python -m venv /tmp/venv-light && /tmp/venv-light/bin/pip install -e .``), times it until the
page answers, reads its resident memory (VmRSS, and the peak VmHWM) then and after one upload analysed through
gradio_client, and stops it. Each interpreter's installed size (its site-packages folder, and the packages in it)
and the machine's load average are recorded too.

    python benchmarks/serve_footprint.py --run onnx=/tmp/venv-light/bin/python:exports/fer2013_effnet_lite0.onnx \\
        --run pkl=python:exports/fer2013_effnet_lite0.pkl [--repeat 3] [--json docs/results/serve_footprint.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
from fer_app.testing import free_port, wait_until_answering


def memory_mb(pid: int) -> dict[str, float]:
    """Resident (VmRSS) and peak resident (VmHWM) memory of a process, in MB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return {key: round(int(fields[key].split()[0]) / 1024, 1) for key in ("VmRSS", "VmHWM")}


def installed(python: str) -> dict:
    """The size of an interpreter's site-packages folder (MB, files as stored on disk) and its packages."""
    where = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                           capture_output=True, text=True, check=True).stdout.strip()
    folder = Path(where)
    size = sum(p.lstat().st_blocks * 512 for p in folder.rglob("*") if not p.is_symlink())
    return {"site_packages": where, "site_packages_mb": round(size / 1e6), "packages": len(list(folder.glob("*.dist-info")))}


def one_run(python: str, model: str, photo: Path, timeout: float = 300) -> dict:
    from gradio_client import Client, handle_file

    port = free_port()
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}
    env.pop("PYTHONPATH", None)  # the app finds the fer package beside it
    start = time.perf_counter()
    proc = subprocess.Popen([python, "app/main.py", "--model", model, "--port", str(port)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_until_answering(url, proc, timeout)
        started = time.perf_counter() - start
        at_start = memory_mb(proc.pid)
        status = Client(url, verbose=False).predict(handle_file(str(photo)), api_name="/analyze")[1]
        return {"startup_s": round(started, 2), "rss_mb_at_start": at_start["VmRSS"],
                "rss_mb_after_upload": memory_mb(proc.pid)["VmRSS"], "peak_rss_mb": memory_mb(proc.pid)["VmHWM"],
                "status": status}
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", action="append", required=True, metavar="NAME=PYTHON:MODEL",
                   help="a configuration to measure: a label, the interpreter, the model file")
    p.add_argument("--repeat", type=int, default=3, help="runs per configuration, alternating (medians reported)")
    p.add_argument("--json", help="write the figures here")
    args = p.parse_args(argv)
    configs = {}
    for spec in args.run:
        name, _, rest = spec.partition("=")
        python, _, model = rest.partition(":")
        if not (name and python and model):
            p.error(f"--run {spec}: expected NAME=PYTHON:MODEL")
        configs[name] = (python, model)
    from PIL import Image
    from skimage import data

    photo = Path(tempfile.mkdtemp()) / "astronaut.png"
    Image.fromarray(data.astronaut()).save(photo)
    runs: dict[str, list[dict]] = {name: [] for name in configs}
    for _ in range(args.repeat):
        for name, (python, model) in configs.items():
            runs[name].append(one_run(python, model, photo))
            print(name, runs[name][-1], flush=True)
    keys = ("startup_s", "rss_mb_at_start", "rss_mb_after_upload", "peak_rss_mb")
    summary = {name: {"python": configs[name][0], "model": configs[name][1], **installed(configs[name][0]),
                      "load_average_1min_after": round(os.getloadavg()[0], 1), "runs": len(r),
                      **{f"{k}_median": statistics.median(x[k] for x in r) for k in keys}, "all": r}
               for name, r in runs.items()}
    print(json.dumps({n: {k: v for k, v in s.items() if k != "all"} for n, s in summary.items()}, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
