"""The static site's speed levers, measured in the page: frames/s and camera-to-labels latency (the page's
`fer-frame` measures) of the built site (fer-web build, served by python -m http.server's handler) in headless
Chromium with a fake 640×480 camera at 30 frames/s, at 1×, 4× and 8× CPU throttling:

- WebAssembly threads 1, 2 and 4 (onnxruntime-web's numThreads; the page is cross-origin isolated by the site's
  service worker, which adds COOP/COEP, so threads are really used: fer-frame's detail says how many);
- when tracked faces are classified (SCHEDULES: every frame, following the frame budget, stable faces less often),
  on 1 thread, interleaved at each throttle;
- SIMD: onnxruntime-web 1.30's only WebAssembly build needs SIMD, so SIMD cannot be switched off with it; with
  ``--simd-runtime DIR`` (onnxruntime-web 1.18.0's dist/, the last release with a build without SIMD: ``npm pack
  onnxruntime-web@1.18.0``) the model and YuNet are timed in the page on 1.18 without and with SIMD, and on 1.30;
- WebGPU: what the browser offers (the site ships the WebAssembly build only).

    python benchmarks/web_speed.py [--seconds 12] [--simd-runtime package/dist] [--json docs/results/web_speed.json] [--md docs/results/web_speed.md]

Throttles as benchmarks/web_tracking.py: "renderer" (Chromium's renderer processes stopped and restarted: every
thread gets 1/rate of the time, the models' worker included) and "cdp" (Chromium's own throttling: the page's main
thread only). Other programs on the machine change every figure: the JSON records the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
import numpy as np

from fer.serving.model_files import DEFAULT_ONNX
from fer_app.testing import (
    CHROMIUM,
    FLAGS,
    ProcessThrottle,
    chromium_version,
    renderer_pids,
    serving_folder,
    write_y4m,
)

#: when tracked faces are classified: every frame; following the frame budget (every 1 to 3 frames, as the worker
#: adapts it: the page's schedule before this change); stable faces (the same label 3 times in a row) every 3rd or
#: 6th frame only, the others as before
SCHEDULES = {"every frame": {"classifyEvery": 1, "stableEvery": 1},
             "budget": {"classifyEvery": "budget", "stableEvery": 1},
             "every frame, stable every 3rd": {"classifyEvery": 1, "stableEvery": 3},
             "budget, stable every 6th": {"classifyEvery": "budget", "stableEvery": 6}}

THREADS = [1, 2, 4]

#: back to the site's own schedule (live/config.json)
SITE_SCHEDULE_JS = """async () => {
  const { STABLE_EVERY } = await import(new URL('live/recognize.js', document.baseURI).href);
  window.ferLive.setOptions({classifyEvery: 'budget', stableEvery: window.ferLive.config.stableEvery || STABLE_EVERY});
}"""

READ_MEASURES = """(since) => performance.getEntriesByName('fer-frame').filter((e) => e.startTime >= since)
  .map((e) => ({ms: e.duration, ...e.detail}))"""

FEATURES_JS = """async () => {
  const runtime = await import(new URL('live/runtime.js', document.baseURI).href);
  let adapter = null;
  try { adapter = navigator.gpu ? await navigator.gpu.requestAdapter() : null; } catch (e) { adapter = null; }
  return {webassembly_with_simd: runtime.hasWebAssembly(), cross_origin_isolated: crossOriginIsolated,
          hardware_concurrency: navigator.hardwareConcurrency, navigator_gpu: 'gpu' in navigator,
          webgpu_adapter: !!adapter};
}"""


#: one inference of the model (one face) and of YuNet (a 320×240 frame, padded to 320×256), median ms over 30 runs
#: after 3, in a page of its own, on runtime 1.30 (the site's) or 1.18 (its ort.wasm.min.js, SIMD on or off)
INFERENCE_JS = """async ({runtime, simd, model, yunet}) => {
  const here = (u) => new URL(u, location.href).href;
  let ort;
  if (runtime === '1.30') {
    ort = await import(here('vendor/onnxruntime-web/ort.wasm.min.mjs'));
    ort.env.wasm.wasmPaths = here('vendor/onnxruntime-web/');
  } else {
    await new Promise((ok, fail) => {
      const s = Object.assign(document.createElement('script'), {src: here('ort118/ort.wasm.min.js'), onload: ok, onerror: fail});
      document.head.append(s);
    });
    ort = window.ort;
    ort.env.wasm.wasmPaths = here('ort118/');
    ort.env.wasm.simd = simd;
  }
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.proxy = false;
  const bytes = async (u) => (await fetch(here(u))).arrayBuffer();
  const options = {executionProviders: ['wasm'], graphOptimizationLevel: 'all'};
  const classifier = await ort.InferenceSession.create(await bytes(model), options);
  const detector = await ort.InferenceSession.create(await bytes(yunet), options);
  const median = async (run) => {
    for (let i = 0; i < 3; i++) await run();
    const times = [];
    for (let i = 0; i < 30; i++) { const t = performance.now(); await run(); times.push(performance.now() - t); }
    times.sort((a, b) => a - b);
    return times[15];
  };
  const face = new ort.Tensor('uint8', new Uint8Array(48 * 48), [1, 1, 48, 48]);
  const frame = new ort.Tensor('float32', new Float32Array(3 * 256 * 320), [1, 3, 256, 320]);
  return {classifier_ms: await median(() => classifier.run({[classifier.inputNames[0]]: face})),
          yunet_320_ms: await median(() => detector.run({[detector.inputNames[0]]: frame})),
          wasm: performance.getEntriesByType('resource').map((e) => e.name.split('/').pop()).filter((n) => n.endsWith('.wasm'))};
}"""
SIMD_VARIANTS = {"1.18 without SIMD": ("1.18", False), "1.18 with SIMD": ("1.18", True), "1.30 (the site's)": ("1.30", True)}


def simd_figures(browser, url: str, site: Path, runtime_dir: Path, rounds: int = 3) -> dict:
    """INFERENCE_JS for each SIMD_VARIANTS, ``rounds`` rounds interleaved (a fresh page each), medians."""
    import shutil

    (site / "ort118").mkdir(exist_ok=True)
    for name in ("ort.wasm.min.js", "ort-wasm.wasm", "ort-wasm-simd.wasm"):
        shutil.copy2(runtime_dir / name, site / "ort118" / name)
    (site / "blank.html").write_text("<!doctype html><title>inference</title>")
    config = json.loads((site / "live" / "config.json").read_text())
    models = {"model": "models/" + config["modelUrl"].split("/")[-1], "yunet": "models/" + config["yunetUrl"].split("/")[-1]}
    runs: dict[str, list[dict]] = {name: [] for name in SIMD_VARIANTS}
    for _ in range(rounds):
        for name, (runtime, simd) in SIMD_VARIANTS.items():
            context = browser.new_context()
            page = context.new_page()
            page.goto(url + "blank.html")
            runs[name].append(page.evaluate(INFERENCE_JS, {"runtime": runtime, "simd": simd, **models}))
            context.close()
    out = {name: {"classifier_ms": round(statistics.median(r["classifier_ms"] for r in rs), 2),
                  "yunet_320_ms": round(statistics.median(r["yunet_320_ms"] for r in rs), 2), "wasm": rs[0]["wasm"]}
           for name, rs in runs.items()}
    base = out["1.18 without SIMD"]
    for name, figures in out.items():
        figures["classifier_speedup_vs_no_simd"] = round(base["classifier_ms"] / figures["classifier_ms"], 2)
        figures["yunet_speedup_vs_no_simd"] = round(base["yunet_320_ms"] / figures["yunet_320_ms"], 2)
    return {"rounds": rounds, "variants": out}


def camera_file(folder: Path) -> Path:
    """The astronaut photo drifting 2 px a frame and back (as benchmarks/live_view.py), 30 frames/s."""
    from fer.bench import astronaut_frame

    frame = astronaut_frame(640, 480)
    shifts = [*range(0, 60, 2), *range(60, 0, -2)]
    return write_y4m(folder / "astronaut.y4m", [np.roll(frame, s, axis=1) for s in shifts], fps=30)


def figures(measures: list[dict], seconds: float) -> dict:
    if not measures:
        return {"frames": 0, "fps": 0.0}
    ms = sorted(m["ms"] for m in measures)
    return {"frames": len(ms), "fps": round(len(ms) / seconds, 1),
            "fer_frame_ms_median": round(statistics.median(ms), 1), "fer_frame_ms_p90": round(ms[int(0.9 * (len(ms) - 1))], 1),
            "worker_ms_median": round(statistics.median(m["workerMs"] for m in measures), 1),
            "classified_share": round(sum(m["classified"] > 0 for m in measures) / len(ms), 2),
            "classify_every_median": statistics.median(m["classifyEvery"] for m in measures),
            "threads": sorted({m["threads"] for m in measures}), "faces_median": statistics.median(m["faces"] for m in measures)}


class Bench:
    def __init__(self, page, cdp, throttle: ProcessThrottle, warmup: float, seconds: float):
        self.page, self.cdp, self.throttle, self.warmup, self.seconds = page, cdp, throttle, warmup, seconds

    def throttled(self, rate: float, kind: str) -> None:
        self.throttle.rate = rate if kind == "renderer" else 1
        self.cdp.send("Emulation.setCPUThrottlingRate", {"rate": rate if kind == "cdp" else 1})

    def measure(self) -> dict:
        time.sleep(self.warmup)
        since = self.page.evaluate("performance.now()")
        self.throttle.reset()
        time.sleep(self.seconds)
        effective = self.throttle.effective()
        return {**figures(self.page.evaluate(READ_MEASURES, since), self.seconds), "renderer_rate_effective": effective}


def open_live_view(context, url: str):
    page = context.new_page()
    page.goto(url)
    page.click("fer-camera .fer-start:enabled", timeout=120_000)
    page.wait_for_function("performance.getEntriesByName('fer-frame').length > 20", timeout=180_000)
    return page



def markdown(result: dict) -> str:
    """docs/results/web_speed.md: the JSON's tables."""
    lines = ["# The static site's speed levers (benchmarks/web_speed.py)", "",
             f"Written by `python benchmarks/web_speed.py{' --simd-runtime DIR' if result.get('simd') else ''} --json "
             f"docs/results/web_speed.json --md docs/results/web_speed.md` on "
             f"{result['machine']['cpus']} CPU cores ({result['machine']['chromium']}; load average "
             f"{result['machine']['load_average_before'][0]} before, {result['machine']['load_average_after'][0]} after: "
             "other programs were running, so compare figures within one table, taken in the same run). Medians; "
             "fer-frame: the camera frame's capture to its labels drawn. Throttles: `renderer` stops and restarts "
             "Chromium's renderer processes (every thread slowed, the models' worker included; the rate achieved is "
             "in brackets), `cdp` is DevTools' CPU throttling (the page's main thread only: Chromium refuses it for "
             "workers).", ""]
    lines += ["## WebAssembly threads (the site's own classification schedule; cross-origin isolated by the "
              "service worker; a fresh page per thread count, the counts in turn at each throttle)", "",
              "| throttle | threads | frames/s | fer-frame ms | worker ms | frames classified |",
              "|---|---|---|---|---|---|"]
    for r in sorted(result["threads"], key=lambda r: (r["throttle"] == "cdp", r["rate"], r["threads_asked"])):
        lines.append(f"| {r['rate']:g}× {r['throttle']} ({r['renderer_rate_effective']}) | {r['threads_asked']} "
                     f"(used {r.get('threads')}) | {r['fps']} | {r.get('fer_frame_ms_median')} | {r.get('worker_ms_median')} | "
                     f"{r.get('classified_share')} |")
    lines += ["", "## When tracked faces are classified (1 thread, interleaved at each throttle, each starting with "
              "another schedule)", "",
              "| throttle | schedule | frames/s | fer-frame ms | worker ms | frames classified |", "|---|---|---|---|---|---|"]
    for r in sorted(result["schedules"], key=lambda r: (r["rate"], list(SCHEDULES).index(r["schedule"]))):
        lines.append(f"| {r['rate']:g}× {r['throttle']} ({r['renderer_rate_effective']}) | {r['schedule']} | {r['fps']} | "
                     f"{r.get('fer_frame_ms_median')} | {r.get('worker_ms_median')} | {r.get('classified_share')} |")
    f = result["features"]
    lines += ["", "## SIMD and WebGPU", "",
              f"- WebAssembly SIMD: {'yes' if f['webassembly_with_simd'] else 'no'} in this Chromium. onnxruntime-web "
              "1.30 ships one WebAssembly build (`ort-wasm-simd-threaded.wasm`), which needs SIMD, so it cannot be "
              "switched off there; a browser without SIMD cannot run the live view (the page says so; the app's page "
              "moves to the server)."]
    if result.get("simd"):
        lines += [f"- What SIMD buys, one inference in the page (1 thread, median of 30 runs, {result['simd']['rounds']} "
                  "rounds interleaved; 1.18.0 is the last onnxruntime-web with a build without SIMD):", "",
                  "| runtime | model, one face (ms) | YuNet, 320×240 (ms) | speed-up vs no SIMD (model, YuNet) | .wasm |",
                  "|---|---|---|---|---|"]
        for name, v in result["simd"]["variants"].items():
            lines.append(f"| {name} | {v['classifier_ms']} | {v['yunet_320_ms']} | {v['classifier_speedup_vs_no_simd']}×, "
                         f"{v['yunet_speedup_vs_no_simd']}× | {', '.join(v['wasm'])} |")
        v = result["simd"]["variants"]
        ratio = v["1.30 (the site's)"]["classifier_ms"] / v["1.18 with SIMD"]["classifier_ms"]
        simd = v["1.18 with SIMD"]
        lines += ["", f"  On 1.18, SIMD makes YuNet {simd['yunet_speedup_vs_no_simd']}× and the model "
                  f"{simd['classifier_speedup_vs_no_simd']}× as fast. The site's runtime (1.30, whose one build is also "
                  f"the threaded one) takes {ratio:.2f}× as long for the model as 1.18's SIMD build: a lever for later "
                  "(the runtime's version and options), not taken here.", ""]
    lines += [
              f"- WebGPU: navigator.gpu {'present' if f['navigator_gpu'] else 'absent'}, adapter "
              f"{'found' if f['webgpu_adapter'] else 'none'} (headless Chromium, --disable-gpu, no GPU on this "
              "machine): no test shows WebGPU working here, so the site ships the WebAssembly build only.",
              f"- cross-origin isolated (threads possible) after the service worker took over: "
              f"{f['cross_origin_isolated']}; navigator.hardwareConcurrency {f['hardware_concurrency']}.", ""]
    if result.get("bars"):
        lines += ["## Bars (1 thread, unthrottled)", ""] + [f"- {k}: {v}" for k, v in result["bars"].items()] + [""]
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=str(DEFAULT_ONNX))
    p.add_argument("--seconds", type=float, default=12, help="length of each measurement")
    p.add_argument("--warmup", type=float, default=4, help="seconds after each change before measuring")
    p.add_argument("--simd-runtime", type=Path, help="onnxruntime-web 1.18.0's dist/ folder: time SIMD off and on")
    p.add_argument("--json", default=str(ROOT / "docs/results/web_speed.json"),
                   help="write the figures here (default %(default)s)")
    p.add_argument("--md", default=str(ROOT / "docs/results/web_speed.md"), help="and a summary here (default %(default)s)")
    p.add_argument("--from-json", type=Path, help="write --md from this JSON of an earlier run, measuring nothing")
    args = p.parse_args()
    if args.from_json:
        Path(args.md).write_text(markdown(json.loads(args.from_json.read_text())))
        return 0
    from playwright.sync_api import sync_playwright

    from fer.web import build

    work = Path(tempfile.mkdtemp(prefix="fer-web-speed-"))
    camera = camera_file(work)
    site = build(work / "site", args.model)
    result: dict = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "chromium": chromium_version(),
                                "load_average_before": [round(x, 2) for x in os.getloadavg()]},
                    "camera": {"width": 640, "height": 480, "fps": 30}, "site": site, "threads": [], "schedules": []}
    with serving_folder(Path(site["folder"])) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=[*FLAGS, f"--use-file-for-fake-video-capture={camera}"])
        context = browser.new_context(viewport={"width": 1280, "height": 900}, permissions=["camera"])
        first = context.new_page()
        first.goto(url)
        first.wait_for_selector("html[data-offline-ready]", timeout=180_000)  # the service worker isolates from now on
        first.close()
        if args.simd_runtime:
            result["simd"] = simd_figures(browser, url, Path(site["folder"]), args.simd_runtime)
            print(json.dumps(result["simd"]), flush=True)
        throttle = ProcessThrottle([])
        try:
            page = open_live_view(context, url)  # the site as it is: 1 thread
            result["features"] = page.evaluate(FEATURES_JS)
            throttle.pids = renderer_pids()
            bench = Bench(page, context.new_cdp_session(page), throttle, args.warmup, args.seconds)
            for j, (rate, kind) in enumerate(((1, "none"), (4, "renderer"), (8, "renderer"))):
                bench.throttled(rate, kind)
                names = list(SCHEDULES)
                for name in names[j:] + names[:j]:  # each throttle starts with another schedule
                    options = SCHEDULES[name]
                    page.evaluate("(o) => window.ferLive.setOptions(o)", options)
                    row = {"schedule": name, **options, "rate": rate, "throttle": kind, **bench.measure()}
                    result["schedules"].append(row)
                    print(json.dumps(row), flush=True)
            page.evaluate(SITE_SCHEDULE_JS)
            for rate in (4, 8):
                bench.throttled(rate, "cdp")
                row = {"threads_asked": 1, "rate": rate, "throttle": "cdp", **bench.measure()}
                result["threads"].append(row)
                print(json.dumps(row), flush=True)
            bench.throttled(1, "renderer")
            page.close()
            for j, rate in enumerate((1, 4, 8)):  # a page per thread count (the runtime starts with its threads)
                for threads in THREADS[j % 3:] + THREADS[:j % 3]:  # each throttle starts with another count
                    page = open_live_view(context, f"{url}?threads={threads}")  # unthrottled while it loads
                    throttle.pids = renderer_pids()
                    bench = Bench(page, context.new_cdp_session(page), throttle, args.warmup, args.seconds)
                    bench.throttled(rate, "renderer")
                    row = {"threads_asked": threads, "rate": rate, "throttle": "renderer" if rate > 1 else "none",
                           **bench.measure()}
                    bench.throttled(1, "renderer")
                    result["threads"].append(row)
                    print(json.dumps(row), flush=True)
                    page.close()
        finally:
            throttle.close()
        browser.close()
    result["machine"]["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    one = next(r for r in result["threads"] if r["threads_asked"] == 1 and r["rate"] == 1 and r["throttle"] == "none")
    result["bars"] = {"fps_at_least_25": one["fps"] >= 25,
                      "fer_frame_median_at_most_100_ms": one.get("fer_frame_ms_median", 1e9) <= 100}
    print(json.dumps(result["bars"]))
    if args.json:
        from fer.core.fileio import write_json_atomic

        write_json_atomic(args.json, result)
    if args.md:
        Path(args.md).write_text(markdown(result))
    return 0 if all(result["bars"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
