"""Load on fer-serve: concurrent clients POST the astronaut photo (scikit-image, JPEG) to /v1/faces for a fixed
time, each on its own keep-alive connection, as fast as answers come. Counted: answers with the one face (their
p50/p95 latency, requests/s), deliberate 503s (the full queue; the client waits Retry-After and tries again) and
errors (anything else: another status, a wrong answer, a broken connection); the server's memory (RSS of its
processes) before, at its peak during the run, and after.

    python benchmarks/serve_load.py [--clients 16] [--seconds 60] [--json docs/results/serve_load.json]

Two runs: the server's defaults, then a small queue (--queue 4) so that 503s happen. Then the memory of large
photos within the default limits: four at once of each kind (a 25-megapixel 16-bit grey PNG, a 24-megapixel JPEG),
the server's peak RSS over its figure just before. Clients and server share this machine's cores.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import requests
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
from fer_app.testing import running_server

RUNS = {"defaults": [], "queue 4": ["--queue", "4"]}


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def astronaut_jpeg() -> bytes:
    from skimage import data

    return encode(Image.fromarray(data.astronaut()), "JPEG", quality=90)


def server_rss(process: psutil.Process) -> int:
    """Bytes resident in the server and its worker processes."""
    processes = [process, *process.children(recursive=True)]
    total = 0
    for p in processes:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


class Tally:
    """What the clients saw, shared between their threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.latencies: list[float] = []
        self.busy = 0
        self.errors: list[str] = []

    def add(self, seconds: float | None = None, busy: bool = False, error: str | None = None) -> None:
        with self.lock:
            if error is not None:
                self.errors.append(error)
            elif busy:
                self.busy += 1
            else:
                self.latencies.append(seconds)


def client(url: str, photo: bytes, until: float, tally: Tally) -> None:
    session = requests.Session()
    while time.monotonic() < until:
        start = time.perf_counter()
        try:
            response = session.post(f"{url}/v1/faces", data=photo, headers={"Content-Type": "image/jpeg"}, timeout=60)
        except requests.RequestException as e:
            tally.add(error=f"{type(e).__name__}: {e}")
            session = requests.Session()
            continue
        seconds = time.perf_counter() - start
        if response.status_code == 503 and response.headers.get("retry-after", "").isdigit():
            tally.add(busy=True)
            time.sleep(min(float(response.headers["retry-after"]), max(0.0, until - time.monotonic())))
        elif response.status_code == 200 and len(response.json()["faces"]) == 1:
            tally.add(seconds)
        else:
            tally.add(error=f"{response.status_code}: {response.text[:200]}")


def load_run(options: list[str], clients: int, seconds: float, photo: bytes) -> dict:
    with running_server([sys.executable, "-m", "fer.serve", *options], "/healthz", 180, ROOT, stop_s=30) as (
            url, server, _):
        process = psutil.Process(server.pid)
        before = server_rss(process)
        tally, peak, until = Tally(), before, time.monotonic() + seconds
        threads = [threading.Thread(target=client, args=(url, photo, until, tally)) for _ in range(clients)]
        start = time.perf_counter()
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            peak = max(peak, server_rss(process))
            time.sleep(0.25)
        wall = time.perf_counter() - start
        after = server_rss(process)
        alive = server.poll() is None
    ms = sorted(1000 * s for s in tally.latencies)
    return {"server_options": options, "clients": clients, "seconds": round(wall, 1), "answered": len(ms),
            "errors": len(tally.errors), "first_errors": tally.errors[:3], "deliberate_503s": tally.busy,
            "p50_ms": round(statistics.median(ms), 1), "p95_ms": round(ms[int(0.95 * (len(ms) - 1))], 1),
            "requests_per_s": round(len(ms) / wall, 2),
            "server_rss_mb": {"before": round(before / 2**20, 1), "peak": round(peak / 2**20, 1),
                              "after": round(after / 2**20, 1)},
            "server_alive_after": alive}


def large_photos() -> dict[str, bytes]:
    """Photos just within the default --max-pixels (25 million), encoded."""
    from skimage import data

    photo = Image.fromarray(data.astronaut())
    deep = Image.fromarray(np.asarray(photo.convert("L").resize((5000, 5000)), np.uint16) * 257)
    return {"25-MP 16-bit grey PNG": encode(deep, "PNG"),
            "24-MP JPEG (6000×4000)": encode(photo.resize((6000, 4000)), "JPEG", quality=85)}


def post(url: str, body: bytes, statuses: list[int]) -> None:
    statuses.append(requests.post(f"{url}/v1/faces", data=body, timeout=120).status_code)


def memory_probe(at_once: int = 4) -> dict:
    """For each large photo: ``at_once`` POSTed together to a server with the defaults; statuses and the peak
    growth of the server's RSS over its figure just before."""
    found = {}
    with running_server([]) as (url, server):
        process = psutil.Process(server.pid)
        requests.post(f"{url}/v1/faces", data=astronaut_jpeg())  # warm up
        for name, body in large_photos().items():
            before, statuses = server_rss(process), []
            threads = [threading.Thread(target=post, args=(url, body, statuses)) for _ in range(at_once)]
            peak = before
            for t in threads:
                t.start()
            while any(t.is_alive() for t in threads):
                peak = max(peak, server_rss(process))
                time.sleep(0.005)
            found[name] = {"bytes": len(body), "at_once": at_once, "statuses": sorted(statuses),
                           "rss_before_mb": round(before / 2**20, 1),
                           "peak_growth_mb": round((peak - before) / 2**20, 1)}
    return found


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--json", type=Path, help="write the results here")
    args = p.parse_args(argv)
    photo = astronaut_jpeg()
    result = {"what": f"{args.clients} concurrent clients POST the astronaut photo (512×512 JPEG, {len(photo):,} "
                      f"bytes) to /v1/faces for {args.seconds:g} s; 503s are the full queue (the client waits "
                      f"Retry-After), errors are everything else",
              "machine": {"cpus": os.cpu_count(), "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
                          "note": "clients and server share these cores"},
              "date": time.strftime("%Y-%m-%d"), "runs": {}}
    for name, options in RUNS.items():
        result["runs"][name] = load_run(options, args.clients, args.seconds, photo)
        print(name, json.dumps(result["runs"][name]), flush=True)
    result["large_photos"] = memory_probe()
    print("large photos", json.dumps(result["large_photos"]), flush=True)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if all(r["errors"] == 0 and r["server_alive_after"] for r in result["runs"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
