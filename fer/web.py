"""The live view as a static web site: no server code, any static host, installable, offline after the first visit.

    fer-web build DIR [--model exports/fer2013_effnet_lite0.onnx] [--threads 1] [--min-confidence P] [--min-quality Q]
    python -m http.server -d DIR 8000        # then open http://localhost:8000/

DIR gets the page (the live view with the camera, photo analysis in the page, the expressions over time), the
live view's modules (the app's own, app/static/live/, copied as they are), onnxruntime-web's WebAssembly build,
YuNet and the model, the settings of the Python path (``live/config.json``, from
:func:`fer.serving.live.live_settings`, as the app's page gets them: face quality's limits and the "not sure" rule,
by default the app's own, :func:`page_rule`), a web app manifest with icons, and a service worker that keeps every
file (versioned by a hash of them all, so a new model or build replaces the cache) and makes the page
cross-origin isolated (WebAssembly threads). docs/web.md says how to host and install it and how other pages use
the JavaScript API (``live/fer.js``, ``<fer-camera>``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fer.serving.quality import UncertaintyRule

#: onnxruntime-web's WebAssembly build (the WebGPU build is not in the wheel, and no test shows it working here)
ORT_FILES = ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
#: written in DIR by every build: a folder holding it may be replaced by the next build
MARKER = ".fer-web"
#: the page's colours (the Start button's orange) and the icon sizes the manifest lists
THEME, BACKGROUND, ICON_SIZES = "#ea580c", "#ffffff", (192, 512)
#: what a visitor's page sends the worker: the camera's frame interval, the frame budget
BUDGET_MS = 1000 / 30


class BuildError(RuntimeError):
    """A site that cannot be built (the folder, the model); the message says why."""


def static_dir() -> Path:
    """The app's static files: the live view's modules (live/), onnxruntime-web (vendor/), the site's page (site/)."""
    from fer_app.settings import STATIC_DIR

    return STATIC_DIR


def prepare_folder(out: Path) -> None:
    """An empty ``out``: made, or emptied when an earlier build wrote it; BuildError for another folder's files."""
    if out.exists() and not out.is_dir():
        raise BuildError(f"{out} is a file, not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not (out / MARKER).is_file():
            raise BuildError(f"{out} is not empty and was not written by fer-web build: pick a new or empty folder")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


def icon(size: int):
    """The app's icon: a face on the theme's orange (a Pillow image), drawn inside the middle 80% so it survives
    the round masks of phones' home screens."""
    from PIL import Image, ImageDraw

    image = Image.new("RGBA", (size, size), THEME)
    draw = ImageDraw.Draw(image)
    c, r = size / 2, size * 0.3
    draw.ellipse((c - r, c - r, c + r, c + r), fill="#ffffff")
    eye = size * 0.035
    for ex in (c - r * 0.38, c + r * 0.38):
        draw.ellipse((ex - eye, c - r * 0.3 - eye, ex + eye, c - r * 0.3 + eye), fill="#222222")
    draw.arc((c - r * 0.55, c - r * 0.35, c + r * 0.55, c + r * 0.55), 20, 160, fill="#222222",
             width=max(2, round(size * 0.03)))
    return image


def manifest(name: str) -> dict:
    """The web app manifest: what the browser installs."""
    icons = [{"src": f"icons/icon-{s}.png", "sizes": f"{s}x{s}", "type": "image/png", "purpose": purpose}
             for s in ICON_SIZES for purpose in ("any", "maskable")]
    return {"name": name, "short_name": "Expressions", "description": "Facial expression recognition computed in "
            "the browser: camera frames and photos never leave the device.", "start_url": "./", "scope": "./",
            "display": "standalone", "orientation": "any", "background_color": BACKGROUND, "theme_color": THEME,
            "icons": icons}


def page_rule() -> UncertaintyRule:
    """The "not sure" rule the app's page uses (fer_app.settings: a top probability under 0.55 or a quality under
    0.35 shows "?"), the site's default as well, so the site and the app's Webcam tab say the same."""
    from fer.serving.quality import UncertaintyRule
    from fer_app.settings import NOT_SURE_MIN_CONFIDENCE, NOT_SURE_MIN_QUALITY

    return UncertaintyRule(NOT_SURE_MIN_CONFIDENCE, NOT_SURE_MIN_QUALITY)


def site_config(model: Path, threads: int, rule: UncertaintyRule | None = None) -> dict:
    """``live/config.json``: the Python path's settings for ``model`` (:func:`fer.serving.live.live_settings`, as
    the app's page gets them, with ``rule``, the "not sure" rule, default :func:`page_rule`) and where the runtime
    and models are, relative to that file. BuildError when the page cannot run the model."""
    from fer.core.card import ModelLoadError
    from fer.serving.live import live_settings
    from fer.serving.recognize import FaceRecognizer

    rule = page_rule() if rule is None else rule
    try:
        settings = live_settings(FaceRecognizer.load(model, min_confidence=rule.min_confidence,
                                                     min_quality=rule.min_quality))
    except (ModelLoadError, ValueError) as e:
        raise BuildError(str(e)) from None
    return {**settings, "ortBase": "../vendor/onnxruntime-web/", "webgpu": False,
            "yunetUrl": "../models/yunet_n_dynamic.onnx", "modelUrl": f"../models/{model.name}",
            "modelName": model.name, "modelBytes": model.stat().st_size, "budgetMs": BUDGET_MS, "threads": threads,
            "display": "computed"}


def copy_files(out: Path, model: Path) -> None:
    """The page, the modules, the runtime, the models and their licences."""
    from fer.serving.detect import YUNET_MODEL
    from fer.serving.live import YUNET_DYNAMIC

    static = static_dir()
    for page in ("index.html", "site.css", "site.js"):
        shutil.copy2(static / "site" / page, out / page)
    shutil.copytree(static / "live", out / "live", ignore=shutil.ignore_patterns("config.json", "__pycache__"))
    vendor = out / "vendor" / "onnxruntime-web"
    vendor.mkdir(parents=True)
    for name in ORT_FILES:
        shutil.copy2(static / "vendor" / "onnxruntime-web" / name, vendor / name)
    (out / "models").mkdir()
    shutil.copy2(model, out / "models" / model.name)
    shutil.copy2(YUNET_DYNAMIC, out / "models" / YUNET_DYNAMIC.name)
    (out / "licenses").mkdir()
    shutil.copy2(static / "vendor" / "onnxruntime-web" / "LICENSE", out / "licenses" / "onnxruntime-web-MIT.txt")
    shutil.copy2(YUNET_MODEL.parent / "LICENSE-yunet-apache-2.0.txt", out / "licenses" / "yunet-Apache-2.0.txt")


def site_files(out: Path) -> list[str]:
    """Every file the service worker keeps, as URLs relative to it (the page also as ``./``), sorted."""
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    return ["./", *(f for f in files if f not in ("sw.js", MARKER) and not f.startswith("."))]


def version(out: Path, files: list[str]) -> str:
    """A hash of every kept file's name and bytes: the service worker's cache name changes with any of them."""
    digest = hashlib.sha256()
    for name in files[1:]:
        digest.update(name.encode() + b"\0")
        with open(out / name, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


def build(out: str | Path, model: str | Path | None = None, threads: int = 1,
          rule: UncertaintyRule | None = None) -> dict:
    """Write the static site to ``out``, its faces judged "not sure" by ``rule``
    (:class:`fer.serving.quality.UncertaintyRule`; default the app's page's, :func:`page_rule`); returns what was
    written: ``{"folder", "files", "bytes", "version", "model"}``. BuildError when the folder or the model cannot
    be used."""
    from fer.serving.live import browser_model
    from fer.serving.model_files import default_model

    out = Path(out)
    onnx, reason = browser_model(Path(model) if model else Path(default_model()))
    if onnx is None:
        raise BuildError(reason)
    if not onnx.is_file():
        raise BuildError(f"no model at {onnx}")
    config = site_config(onnx, threads, rule)
    prepare_folder(out)
    copy_files(out, onnx)
    (out / "live" / "config.json").write_text(json.dumps(config, indent=1))
    (out / "manifest.json").write_text(json.dumps(manifest("Facial expressions, live"), indent=1))
    (out / "icons").mkdir()
    for size in ICON_SIZES:
        icon(size).save(out / "icons" / f"icon-{size}.png", optimize=True)
    (out / ".nojekyll").write_text("")  # GitHub Pages: publish the files as they are
    files = site_files(out)
    stamp = version(out, files)
    worker = (static_dir() / "site" / "sw.js").read_text()
    worker = worker.replace("'__VERSION__'", json.dumps(stamp)).replace("__FILES__", json.dumps(files))
    (out / "sw.js").write_text(worker)
    (out / MARKER).write_text(json.dumps({"version": stamp, "model": onnx.name}) + "\n")
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    return {"folder": str(out), "files": len(files) + 1, "bytes": size, "version": stamp, "model": onnx.name}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """``fer-web``'s options (``--help`` lists them); argparse's error for values out of range."""
    p = argparse.ArgumentParser(prog="fer-web", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="write the static site to DIR")
    b.add_argument("dir", metavar="DIR", help="the site's folder: new, empty, or written by an earlier build")
    b.add_argument("--model", help="the expression model: an .onnx (default: $FER_MODEL, else the shipped "
                   "fer2013_effnet_lite0.onnx), or a .pkl learner whose checked .onnx export lies beside it (the site "
                   "gets the .onnx)")
    b.add_argument("--threads", type=int, default=1,
                   help="WebAssembly threads the page asks for (default 1: docs/results/web_speed.md measured 1, 2 "
                   "and 4)")
    rule = page_rule()
    b.add_argument("--min-confidence", type=float, default=rule.min_confidence, metavar="P",
                   help="show a face as not sure (\"?\", probabilities kept) when its top probability is under P "
                        "(default %(default)s, as the app's page; 0: off; docs/not_sure.md measures the choice)")
    b.add_argument("--min-quality", type=float, default=rule.min_quality, metavar="Q",
                   help="show a face as not sure when its quality (0-1) is under Q (default %(default)s, as the "
                        "app's page; 0: off)")
    args = p.parse_args(argv)
    if args.threads < 1:
        p.error("--threads must be at least 1")
    for option in ("min_confidence", "min_quality"):
        if not 0 <= getattr(args, option) <= 1:
            p.error(f"--{option.replace('_', '-')} {getattr(args, option)}: must be between 0 and 1")
    return args


def main(argv: list[str] | None = None) -> int:
    """``fer-web build DIR``: write the site and say where; exit status 2 (and why) when it cannot be built."""
    args = parse_args(argv)
    try:
        from fer.serving.quality import UncertaintyRule

        built = build(args.dir, args.model, args.threads, UncertaintyRule(args.min_confidence, args.min_quality))
    except BuildError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {built['files']} files ({built['bytes'] / 1e6:.1f} MB, version {built['version']}, model "
          f"{built['model']}) to {built['folder']}")
    print(f"serve it with any static host, e.g.: python -m http.server -d {built['folder']} 8000")
    return 0


if __name__ == "__main__":
    sys.exit(main())
