"""Small files that decode to gigabytes, sent to the running app: its peak memory over idle, per attack.

    python benchmarks/memory_attack.py [--json docs/results/memory_attack.json] [--work DIR]

Makes the files of issue 32 (an 88-megapixel 16-bit PNG of ~170 KB, four of them; a 9000×9000 RGB PNG; a
9000×9000 progressive JPEG; an AVI whose one MJPEG frame is 16000×16000) and sends them to the app
(``python -m fer_app``, the shipped model) through its HTTP API as a browser would: the Upload tab
(``analyze``), the Video tab (``analyze_video``) and the webcam stream (``stream``), alone and four at once.
For each attack: the app process's resident memory when idle before it (``VmRSS``), its peak during it
(``VmHWM``, reset through ``/proc/PID/clear_refs`` first) and the growth, and what each request was answered.
The bar (issue 32): no attack raises the peak by more than 300 MB, and every request gets a result or a
message. Linux only (``/proc``).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from fer.core.card import DEFAULT_MODEL
from fer_app.testing import running_app

BAR_MB = 300


# ---- the files --------------------------------------------------------------------------------------------

def png16(path: Path, seed: int, side: int = 9400) -> Path:
    """An 88-megapixel 16-bit grey PNG of a few hundred KB (just under PIL's 89.5-megapixel bomb limit)."""
    values = np.zeros((side, side), np.uint16)
    values[seed::97, :] = 60000
    Image.fromarray(values).save(path, compress_level=9)
    return path


def rgb_png(path: Path, side: int = 9000) -> Path:
    """A 9000×9000 RGB PNG (81 megapixels) of ~100 KB."""
    image = Image.new("RGB", (side, side), (200, 180, 160))
    ImageDraw.Draw(image).ellipse((side // 3, side // 4, 2 * side // 3, 3 * side // 4), fill=(90, 60, 50))
    image.save(path, compress_level=9)
    return path


def progressive_jpeg(path: Path, side: int = 9000) -> Path:
    """A 9000×9000 progressive JPEG: decoding keeps every DCT coefficient of the full image."""
    image = Image.new("RGB", (side, side), (120, 80, 60))
    draw = ImageDraw.Draw(image)
    for i in range(0, side, 300):
        draw.line([(i, 0), (side - i, side)], fill=(10, 200, 30), width=5)
    image.save(path, "JPEG", progressive=True, quality=80)
    return path


def mjpeg_avi(path: Path, side: int = 16000) -> Path:
    """An AVI of ~6 MB whose one MJPEG frame is 16000×16000 (256 megapixels)."""
    import av

    image = Image.new("L", (side, side), 128)
    draw = ImageDraw.Draw(image)
    for i in range(0, side, 500):
        draw.line([(i, 0), (side - i, side)], fill=20, width=9)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=70)
    del image
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mjpeg", rate=1)
        stream.width = stream.height = side
        stream.pix_fmt = "yuvj420p"
        packet = av.Packet(buffer.getvalue())
        packet.stream, packet.pts, packet.dts = stream, 0, 0
        out.mux(packet)
    return path


def make_files(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    makers = {**{f"png16_{i}": (lambda p, i=i: png16(p, i), "png") for i in range(4)},
              "rgb9000": (rgb_png, "png"), "progressive": (progressive_jpeg, "jpg"), "mjpeg16000": (mjpeg_avi, "avi")}
    files = {}
    for name, (make, suffix) in makers.items():
        path = folder / f"{name}.{suffix}"
        files[name] = path if path.exists() else make(path)
    return files


# ---- the app's memory -------------------------------------------------------------------------------------

def memory_mb(pid: int) -> dict[str, float]:
    """The process's resident memory now and at its peak (MB)."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return {key: int(fields[key].split()[0]) / 1024 for key in ("VmRSS", "VmHWM")}


def reset_peak(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # VmHWM ← VmRSS


def idle_mb(pid: int, settle_s: float = 3.0) -> float:
    """Resident memory once the app has settled: the lowest of a few samples."""
    samples = []
    for _ in range(int(settle_s / 0.25)):
        time.sleep(0.25)
        samples.append(memory_mb(pid)["VmRSS"])
    return min(samples)


# ---- requests, as the page sends them ---------------------------------------------------------------------

def call(url: str, api: str, path: Path, timeout: float = 300) -> str:
    """Upload ``path`` and call the app's ``api`` on it (Gradio's HTTP API); the answer's text (the status
    line), or the error Gradio sent. A stream's first answer ends the call."""
    import httpx

    base = f"{url.rstrip('/')}/gradio_api"
    with open(path, "rb") as f:
        uploaded = httpx.post(f"{base}/upload", files={"files": (path.name, f)}, timeout=timeout).json()[0]
    data = [{"path": uploaded, "meta": {"_type": "gradio.FileData"}, "orig_name": path.name}]
    event = httpx.post(f"{base}/call/{api}", json={"data": data}, timeout=timeout).json()["event_id"]
    kind = None
    with httpx.stream("GET", f"{base}/call/{api}/{event}", timeout=timeout) as response:
        for line in response.iter_lines():
            if line.startswith("event:"):
                kind = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and kind in ("complete", "error", "generating"):
                return answer_text(api, kind, json.loads(line[5:]))
    return "no answer"


def answer_text(api: str, kind: str, data) -> str:
    if kind == "error":
        return f"error: {data}"
    if api == "analyze":
        return str(data[1])
    if api == "analyze_video":
        return str(data[3])
    return "a frame answered" if data and data[0] else "frame skipped"


def attack(url: str, pid: int, requests: list[tuple[str, Path]]) -> dict:
    """Send ``requests`` ((api, file), ...) at once; the memory figures and each answer."""
    idle = idle_mb(pid)
    reset_peak(pid)
    answers: list[str | None] = [None] * len(requests)

    def send(i: int, api: str, path: Path) -> None:
        try:
            answers[i] = call(url, api, path)
        except Exception as e:  # noqa: BLE001 - a failed request is a finding, not the end of the run
            answers[i] = f"request failed: {type(e).__name__}: {e}"

    start = time.perf_counter()
    threads = [threading.Thread(target=send, args=(i, api, path)) for i, (api, path) in enumerate(requests)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - start
    peak = memory_mb(pid)["VmHWM"]
    answered = [a is not None and not a.startswith(("request failed", "error", "no answer")) for a in answers]
    return {"requests": [f"{api} {path.name}" for api, path in requests], "idle_mb": round(idle, 1),
            "peak_mb": round(peak, 1), "growth_mb": round(peak - idle, 1), "seconds": round(seconds, 1),
            "answers": [a[:200] if a else a for a in answers], "all_answered": all(answered)}


def scenarios(files: dict[str, Path]) -> dict[str, list[tuple[str, Path]]]:
    pngs = [files[f"png16_{i}"] for i in range(4)]
    return {
        "88-MP 16-bit PNG, Upload": [("analyze", pngs[0])],
        "9000x9000 RGB PNG, Upload": [("analyze", files["rgb9000"])],
        "9000x9000 progressive JPEG, Upload": [("analyze", files["progressive"])],
        "16000x16000 MJPEG frame, Video": [("analyze_video", files["mjpeg16000"])],
        "four 88-MP 16-bit PNGs and the 16000x16000 MJPEG at once (the bar)":
            [*(("analyze", p) for p in pngs), ("analyze_video", files["mjpeg16000"])],
        # last: a stream stays open (its time limit) after its first answer, holding one of the four stream slots
        "four 88-MP 16-bit PNGs as webcam frames at once, stream": [("stream", p) for p in pngs],
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", type=Path, help="write the figures here (docs/results/memory_attack.json)")
    p.add_argument("--work", type=Path, help="keep the attack files here (default: a temporary folder)")
    args = p.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="memory-attack-"))
    files = make_files(work)
    sizes = {name: path.stat().st_size for name, path in files.items()}
    from skimage import data

    photo = work / "astronaut.png"
    Image.fromarray(data.astronaut()).save(photo)
    results = {}
    with running_app(DEFAULT_MODEL) as (url, proc, _):
        call(url, "analyze", photo)  # warm up: the first request loads what every later one uses
        for name, requests in scenarios(files).items():
            results[name] = attack(url, proc.pid, requests)
            print(f"{name}: +{results[name]['growth_mb']:.0f} MB in {results[name]['seconds']} s, "
                  f"{results[name]['answers']}", flush=True)
        alive = proc.poll() is None
    worst = max(r["growth_mb"] for r in results.values())
    report = {"bar_mb": BAR_MB, "worst_growth_mb": worst, "app_alive": alive,
              "machine": {"cpus": os.cpu_count(), "load_average_at_end": [round(x, 1) for x in os.getloadavg()]},
              "passes": worst <= BAR_MB and alive and all(r["all_answered"] for r in results.values()),
              "file_bytes": sizes, "attacks": results,
              "how": "the app (python -m fer_app, shipped model) on this machine; growth = VmHWM during the attack "
                     "(reset through /proc/PID/clear_refs) minus the lowest VmRSS of 3 s idle before it"}
    print(json.dumps({k: v for k, v in report.items() if k != "attacks"}, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0 if report["passes"] else 1


if __name__ == "__main__":
    sys.exit(main())
