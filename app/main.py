"""Facial expression recognition in the browser: live webcam, image upload and video upload.

    python app/main.py [--model exports/fer2013_effnet_lite0.onnx] [--host 127.0.0.1] [--port 7860] [--share]
        [--feedback DIR]

It serves an ONNX model (the default), without torch and fastai; a ``.pkl`` learner needs the training install.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import hashlib
import html
import io
import json
import os
import shutil
import signal
import sys
import tempfile
import time
import uuid
import weakref
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import cv2  # noqa: E402
import gradio as gr  # noqa: E402
import numpy as np  # noqa: E402
from starlette.concurrency import run_in_threadpool  # noqa: E402
from starlette.responses import FileResponse, JSONResponse, Response  # noqa: E402
from starlette.routing import Mount, Route  # noqa: E402
from starlette.staticfiles import StaticFiles  # noqa: E402

from fer import feedback  # noqa: E402
from fer.card import describe_suite, suite_figures  # noqa: E402
from fer.cli import DEFAULT_MODEL_HELP, add_detector_options, check_model_options, configure_logging  # noqa: E402
from fer.draw import CLASS_COLOURS  # noqa: E402
from fer.detect import Box  # noqa: E402
from fer.images import ImageError, load_image  # noqa: E402
from fer.live import YUNET_DYNAMIC, browser_model, live_settings  # noqa: E402
from fer.model_files import DEFAULT_MODEL, DEFAULT_ONNX, ModelLoadError, load_predictor  # noqa: E402
from fer.recognize import FaceRecognizer, VideoSession, annotate_frame  # noqa: E402
from fer.timeline import EmotionTimeline  # noqa: E402
from fer.video import OutputPaths, VideoError, VideoReader, analyze_video, plot_faces  # noqa: E402
from fer.extras import exit_on_missing_extra  # noqa: E402

MAX_FACES_SHOWN = 6
MAX_UPLOAD = "25mb"
STREAM_EVERY_S = 0.1  # up to 10 frames/s per viewer; a frame takes ~10-20 ms on 2 CPU cores
STREAM_TIME_LIMIT_S = 600  # a viewer's stream ends after 10 minutes (press record again to go on)
STREAM_CONCURRENCY = 4  # viewers served at once; more wait in the queue
CACHE_SWEEP = (60, 120)  # every 60 s delete cached frames older than 120 s
VIDEO_MAX_S = 30  # uploaded clips: at most 30 s...
VIDEO_MAX_MB = 25  # ...and 25 MB (the upload limit)...
VIDEO_MAX_PIXELS = 1920 * 1080  # ...and full HD
VIDEO_PLOT_FACES = 4  # the plot shows the faces seen longest
LIVE_PLOT_S = 30  # the webcam plot: the largest face over the last 30 s
STATIC_DIR = Path(__file__).resolve().parent / "static"  # the live view's modules and onnxruntime-web
WHERE = ("this device", "the server")  # where webcam frames are processed: the Webcam tab's switch


class ResultFiles:
    """Annotated uploads as JPEG files with unique names, deleted after ``keep_s`` seconds.

    Gradio caches a returned numpy image under a hash of its bytes and writes it in place, so two requests
    with the same result race: one client can download the file while the other is rewriting it (9 of 200
    uploads failed that way in benchmarks/load_test.py). A returned file path is copied into the cache
    atomically instead. The folder is removed by :meth:`close`, or when the app exits."""

    def __init__(self, keep_s: float = CACHE_SWEEP[1], parent: str | Path | None = None):
        self.dir = Path(tempfile.mkdtemp(prefix="fer-results-", dir=parent))
        self.keep_s = keep_s
        self._remove = weakref.finalize(self, shutil.rmtree, self.dir, ignore_errors=True)  # also at exit

    def close(self) -> None:
        self._remove()

    def save(self, image: np.ndarray) -> str:
        self._sweep()
        ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
        if not ok:
            raise RuntimeError(f"could not encode a {image.shape} image as JPEG")
        path = self.dir / f"{uuid.uuid4().hex}.jpg"
        path.write_bytes(jpeg.tobytes())
        return str(path)

    def folder(self) -> Path:
        """A new, empty folder for one request's files (a video's results), swept like the images."""
        self._sweep()
        path = self.dir / uuid.uuid4().hex
        path.mkdir()
        return path

    def _sweep(self) -> None:
        cutoff = time.time() - self.keep_s
        for old in [*self.dir.glob("*.jpg"), *(d for d in self.dir.iterdir() if d.is_dir())]:
            try:
                if last_written(old) < cutoff:
                    shutil.rmtree(old) if old.is_dir() else old.unlink()
            except FileNotFoundError:  # another request swept it first
                pass


def last_written(path: Path) -> float:
    """A file's modification time; for a folder, that of its newest file (a video still being written
    keeps its folder alive)."""
    times = [f.stat().st_mtime for f in path.iterdir()] if path.is_dir() else []
    return max(times, default=path.stat().st_mtime)


def app_temp_folder() -> Path:
    """One temporary folder for this run of the app, holding Gradio's uploads and cached frames
    (``GRADIO_TEMP_DIR``) and the annotated results; removed when the app exits, SIGTERM included."""
    folder = Path(tempfile.mkdtemp(prefix="fer-app-"))
    os.environ["GRADIO_TEMP_DIR"] = str(folder / "gradio")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))  # exit normally: atexit runs
    return folder


def describe(recognizer: FaceRecognizer, model: str | Path | None = None) -> str:
    suite = suite_figures(model) if model else None
    measured = f"\n\nHow well it does where it matters: {describe_suite(suite)}." if suite else ""
    return f"""# Facial expression recognition
Every face in view is found ({recognizer.detector_name}) and classified into {len(recognizer.classes)}
expressions ({', '.join(recognizer.classes)}) by a fastai/timm model: **{recognizer.predictor.describe()}**.{measured}

**Webcam**: press Start and allow the camera; boxes and labels follow each face, the panel shows the
largest face's probabilities and the plot its last {LIVE_PLOT_S} seconds. By default your browser does the
work and frames never leave your device; switch to "the server" to stream them here instead. **Upload**: drop
a photo; each face gets its probabilities, left to right. **Video**: upload a clip (up to {VIDEO_MAX_S} s, {VIDEO_MAX_MB} MB, full HD)
for an annotated video with tracked face ids, the expressions over time and a CSV of every frame.
Uploads, camera frames streamed to the server and results stay in a temporary folder on this server for at most
{CACHE_SWEEP[0] + CACHE_SWEEP[1]} seconds and are deleted when the app stops; nothing else is stored."""


def check_clip(reader: VideoReader) -> None:
    """Refuse clips over the app's bounds (length, resolution) before any work."""
    if reader.duration_s > VIDEO_MAX_S:
        raise VideoError(f"{reader.path.name} is {reader.duration_s:.0f} s long; this app takes clips of up to "
                         f"{VIDEO_MAX_S} s (use `python -m fer.video` for longer ones)")
    if reader.width * reader.height > VIDEO_MAX_PIXELS:
        raise VideoError(f"{reader.path.name} is {reader.width}×{reader.height}; this app takes up to full HD "
                         f"(1920×1080; use `python -m fer.video` for larger ones)")


def video_status(report, rows: list[dict]) -> str:
    faces = ", ".join(f"#{i}" for i in report.face_ids)
    text = (f"{report.frames_read} frames ({report.width}×{report.height}) in {report.seconds:.1f} s; "
            + (f"faces {faces}." if faces else "no face found."))
    if not report.complete:
        text += f" **The results stop early:** {report.problem.split(': ', 1)[-1]}."
    return text


def live_plot_update(timeline: EmotionTimeline, probs: dict[str, float] | None):
    """Record the largest face's probabilities; a new plot about once a second, else no update."""
    timeline.add(probs)
    return timeline.table() if timeline.due() else gr.skip()


LIVE_ROUTE = "fer-live"  # the live view's files: fer-live/static/..., fer-live/model.onnx, fer-live/yunet.onnx
LIVE_CORRECTION_MAX_BYTES = 64 * 1024  # a correction's JSON: a 48×48 face in base64 and a few fields


def live_view_config(recognizer: FaceRecognizer, model: str | Path | None,
                     feedback_on: bool = False) -> tuple[dict | None, str]:
    """What the page's live view needs: the Python path's settings (:func:`fer.live.live_settings`) and the URLs,
    relative to the page, of its modules, onnxruntime-web, YuNet and the app's own model (``model.onnx``: the
    model live now, :func:`live_view_routes`; ``model.json``: its name and size; ``correct``: where a
    correction of the largest face goes when ``feedback_on``), with ``"files"``: the URL path → file map
    :func:`live_view_routes` serves. ``(None, reason)`` when the page cannot run this app's model; the Webcam
    tab then uses the server."""
    if model is None:
        return None, "the app was not told its model file"
    onnx, reason = browser_model(model)
    if onnx is None:
        return None, reason
    try:
        settings = live_settings(recognizer)
    except ValueError as e:
        return None, str(e)
    files = {f"/{LIVE_ROUTE}/model.onnx": onnx, f"/{LIVE_ROUTE}/yunet.onnx": YUNET_DYNAMIC,
             f"/{LIVE_ROUTE}/static": STATIC_DIR}
    return {**settings, "timeline": {"windowS": LIVE_PLOT_S, "refreshS": 1.0},
            "ortBase": f"{LIVE_ROUTE}/static/vendor/onnxruntime-web/", "webgpu": True,
            "yunetUrl": f"{LIVE_ROUTE}/yunet.onnx", "modelUrl": f"{LIVE_ROUTE}/model.onnx",
            "modelInfoUrl": f"{LIVE_ROUTE}/model.json", "modelName": onnx.name,
            "correctUrl": f"{LIVE_ROUTE}/correct", "feedback": feedback_on,
            "modelBytes": onnx.stat().st_size, "moduleUrl": f"{LIVE_ROUTE}/static/live/main.js",
            "budgetMs": 1000 / 30, "files": {k: str(v) for k, v in files.items()}}, ""


class RevalidatedFiles(StaticFiles):
    """Static files the browser keeps and revalidates on each visit (ETag → 304), so the 33 MB of runtime and
    model cross the network once, and again only when they change."""

    def file_response(self, *args, **kwargs):
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = "no-cache"
        return response


def revalidated_file(path: Path | Callable[[], Path]):
    """An endpoint serving one file as :class:`RevalidatedFiles` does; ``path`` may be a function giving the
    file at each request (the live model, which the page's menu switches). The file's name goes along in
    the ``X-Fer-Model`` header."""
    async def endpoint(request):
        file = path() if callable(path) else path
        stat = file.stat()
        where = hashlib.sha1(str(file.resolve()).encode()).hexdigest()[:8]  # another file, another ETag
        headers = {"cache-control": "no-cache", "etag": f'"{where}-{stat.st_mtime_ns:x}-{stat.st_size:x}"',
                   "x-fer-model": file.name}
        if headers["etag"] in request.headers.get("if-none-match", ""):
            return Response(status_code=304, headers=headers)
        return FileResponse(file, headers=headers, stat_result=stat)
    return endpoint


def model_info_endpoint(onnx: Callable[[], Path]):
    """``model.json``: the name and size of the model the live view should run now."""
    async def endpoint(request):
        file = onnx()
        return JSONResponse({"name": file.name, "bytes": file.stat().st_size}, headers={"cache-control": "no-store"})
    return endpoint


def correction_endpoint(served: "ServedModel | None"):
    """``POST correct``: a correction from the page's live view (:func:`fer.feedback.parse_correction`'s JSON),
    saved in the feedback folder as source ``live``. Refused (403) when the app runs without ``--feedback``."""
    async def endpoint(request):
        if served is None:
            return JSONResponse({"error": "corrections are off: the app was started without --feedback DIR"},
                                status_code=403)
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            # JSON only: another site's page cannot send that without the browser asking this app first (CORS)
            return JSONResponse({"error": "send the correction as application/json"}, status_code=415)
        body = await request.body()
        if len(body) > LIVE_CORRECTION_MAX_BYTES:
            return JSONResponse({"error": f"a correction is at most {LIVE_CORRECTION_MAX_BYTES} bytes"}, status_code=413)
        try:
            correction = feedback.parse_correction(json.loads(body), served.recognizer.classes)
            path = await run_in_threadpool(served.save_face, correction.face, correction.label, "live",
                                           correction.probs, correction.predicted, correction.model)
        except (ValueError, feedback.FeedbackError) as e:  # json's errors are ValueErrors
            return JSONResponse({"error": str(e)}, status_code=400)
        except OSError as e:
            return JSONResponse({"error": f"not saved: {e.strerror or e}"}, status_code=500)
        return JSONResponse({"file": f"{path.parent.name}/{path.name}",
                             "message": f"Saved as {correction.label} ({path.parent.name}/{path.name}; the model "
                                        f"said {correction.predicted}).",
                             "summary": feedback.summary(served.folder).replace("*", "")})
    return endpoint


def live_view_routes(files: dict[str, str], served: "ServedModel | None" = None) -> list:
    """The live view's routes (``files``: URL path → file or folder, from :func:`live_view_config`) for the app's
    FastAPI server (``launch(app_kwargs={"routes": ...})``, so they answer from the first request, ahead of
    Gradio's own): only these files, nothing else beside them; with ``served`` (``--feedback``), the model
    file is the one live now (the page's model menu switches it). Also ``model.json`` and ``correct``
    (:func:`correction_endpoint`, refusing without ``--feedback``)."""
    if not files:
        return []
    model_url = f"/{LIVE_ROUTE}/model.onnx"
    started = Path(files[model_url])
    onnx = (lambda: served.onnx or started) if served else (lambda: started)
    routes = [Mount(url, RevalidatedFiles(directory=path)) if Path(path).is_dir()
              else Route(url, revalidated_file(onnx if url == model_url else Path(path)), methods=["GET", "HEAD"])
              for url, path in files.items()]
    return routes + [Route(f"/{LIVE_ROUTE}/model.json", model_info_endpoint(onnx), methods=["GET"]),
                     Route(f"/{LIVE_ROUTE}/correct", correction_endpoint(served), methods=["POST"])]


LIVE_VIEW_JS = """
const root = element.querySelector('.fer-live');
const config = JSON.parse(root.dataset.config || 'null');
if (config) import(new URL(config.moduleUrl, document.baseURI).href)
  .then((live) => live.start(root, config))
  .catch((e) => {
    root.querySelector('.fer-status').textContent = `The live view could not load (${e}); frames go to the server.`;
    document.querySelector('#where input[value="the server"]')?.click();
  });
"""

LIVE_VIEW_CSS = """
.fer-bar { display: flex; gap: 12px; align-items: center; flex-wrap: wrap; margin-bottom: 8px; }
.fer-start { padding: 6px 18px; border-radius: 6px; background: var(--button-primary-background-fill);
             color: var(--button-primary-text-color); border: none; cursor: pointer; font-weight: 600; }
.fer-main { display: flex; gap: 16px; flex-wrap: wrap; align-items: flex-start; }
.fer-stage { position: relative; flex: 2 1 320px; max-width: 720px; background: #000; min-height: 120px; }
.fer-stage video { display: block; width: 100%; height: auto; }
.fer-overlay { position: absolute; left: 0; top: 0; width: 100%; height: 100%; pointer-events: none; }
.fer-probs { flex: 1 1 220px; }
.fer-label { margin: 0 0 6px; }
.fer-row { display: flex; align-items: center; gap: 6px; margin: 3px 0; }
.fer-name { width: 70px; } .fer-pct { width: 40px; text-align: right; }
.fer-track { flex: 1; height: 12px; background: var(--neutral-200, #eee); border-radius: 3px; overflow: hidden; }
.fer-fill { display: block; height: 100%; }
.fer-timeline { display: block; width: 100%; max-width: 960px; height: 200px; margin-top: 10px; }
.fer-status { margin: 6px 0; font-size: 0.95em; }
.fer-model { font-size: 0.95em; }
.fer-correct { display: flex; gap: 10px; align-items: center; flex-wrap: wrap; margin-top: 8px; }
.fer-correct-save { padding: 4px 12px; border-radius: 6px; cursor: pointer; }
"""


def live_correction_markup(classes: list[str]) -> str:
    """The live view's "wrong? pick the label" controls for the largest face (only with ``--feedback``)."""
    options = "".join(f'<option value="{html.escape(c)}">{html.escape(c)}</option>' for c in classes)
    return f"""<div class="fer-correct"><label>Wrong? The right expression of the largest face
<select class="fer-correct-label"><option value="">pick…</option>{options}</select></label>
<button class="fer-correct-save" type="button" disabled>Save correction</button>
<span class="fer-correct-status" role="status"></span></div>"""


def live_view_markup(config: dict | None, reason: str) -> str:
    """The live view's elements; the page's modules (app/static/live/main.js) bring them to life."""
    data = html.escape(json.dumps(config), quote=True) if config else ""
    correct = live_correction_markup(config["classes"]) if config and config.get("feedback") else ""
    model = html.escape(config["modelName"]) if config else ""
    status = ("Frames are processed on this device." if config else
              f"The live view is off ({html.escape(reason)}): frames are sent to the server and processed there.")
    return f"""<div class="fer-live" data-config="{data}">
<div class="fer-content"{'' if config else ' hidden'}>
<div class="fer-bar"><button class="fer-start" type="button" disabled>Start</button>
<label>Camera <select class="fer-facing"><option value="user">front</option><option value="environment">back</option>
</select></label>
<span class="fer-model">Model: <b class="fer-model-name">{model}</b></span></div>
<div class="fer-main"><div class="fer-stage"><video muted playsinline autoplay></video><canvas class="fer-overlay">
</canvas></div><div class="fer-probs"></div></div>
{correct}
<canvas class="fer-timeline"></canvas>
</div>
<p class="fer-status">{status}</p>
</div>"""


def live_view(recognizer: FaceRecognizer, model: str | Path | None,
              feedback_on: bool = False) -> tuple[gr.Radio, dict]:
    """The Webcam tab's switch (this device / the server) and its in-page live view (with ``feedback_on``, its
    correction of the largest face); returns the switch and the files the live view needs served
    (:func:`live_view_routes`; empty when it cannot run, and the switch then starts on the server)."""
    config, reason = live_view_config(recognizer, model, feedback_on)
    if config is None:
        print(f"live view off: {reason}", file=sys.stderr)
    files = config.pop("files") if config else {}
    where = gr.Radio(list(WHERE), value=WHERE[0] if config else WHERE[1], label="Where frames are processed",
                     info="this device: in your browser, frames never leave it; the server: frames are sent to "
                          "this app and processed there", elem_id="where")
    gr.HTML(live_view_markup(config, reason), js_on_load=LIVE_VIEW_JS, css_template=LIVE_VIEW_CSS,
            elem_id="device-view")
    return where, files


# --------------------------------------------------------------------------- corrections (--feedback DIR)

class ServedModel:
    """The model the page serves and the feedback folder its corrections go to. The page can switch the
    model between the one the app started with, the shipped one and the personal ones in the folder
    (``python -m fer.personalize --out DIR/NAME``); a switch is for every viewer (``--feedback`` is for
    one person's app)."""

    def __init__(self, recognizer: FaceRecognizer, path: str | Path, folder: Path):
        self.recognizer, self.path, self.folder = recognizer, Path(path), Path(folder)

    @property
    def name(self) -> str:
        return self.path.name

    def choices(self) -> list[tuple[str, str]]:
        """(label, path) of every model the menu offers: the started one, the shipped ONNX, the personal ones."""
        paths = [self.path, *([DEFAULT_ONNX] if DEFAULT_ONNX.exists() else []), *feedback.personal_models(self.folder)]
        unique = list(dict.fromkeys(p.resolve() for p in paths))
        personal = {p.resolve() for p in feedback.personal_models(self.folder)}
        return [(f"{'personal' if p in personal else 'shipped' if p.parent == DEFAULT_MODEL.parent else 'started'}: "
                 f"{p.name}", str(p)) for p in unique]

    def switch(self, path: str | Path) -> str:
        """Serve the model at ``path`` from now on; returns a line saying which model is live."""
        path = Path(path)
        if path.resolve() != self.path.resolve():
            try:
                predictor = load_predictor(path)
                predictor.predict_proba([np.zeros((48, 48), np.uint8)])  # compiled now, not on the next face
            except ModelLoadError as e:
                return f"**Could not switch.** {e}. {self.live_line()}"
            if predictor.classes != self.recognizer.classes:
                return f"**Could not switch.** {path.name} has other classes ({', '.join(predictor.classes)}). " \
                       f"{self.live_line()}"
            self.recognizer.predictor, self.path = predictor, path
        return self.live_line()

    def live_line(self) -> str:
        return f"Live model: **{self.name}** ({self.recognizer.predictor.describe()})."

    @property
    def onnx(self) -> Path | None:
        """The ONNX file of the live model, which the page's live view runs (None: it has none)."""
        return browser_model(self.path)[0]

    def save_face(self, face: np.ndarray, label: str, source: str, probs: dict[str, float],
                  predicted: str | None = None, model: str | None = None) -> Path:
        """Save one correction (:func:`fer.feedback.save_correction`; ``model``: default the live model's name);
        FeedbackError or OSError when it cannot be."""
        predicted = predicted or (max(probs, key=probs.get) if probs else "")
        return feedback.save_correction(self.folder, face, label, source, model or self.name, predicted, probs,
                                        self.recognizer.classes)

    def save(self, face: np.ndarray, label: str | None, source: str, probs: dict[str, float]) -> str:
        """Save one correction; a line for the page."""
        if not label:
            return "Pick the right expression first."
        try:
            path = self.save_face(face, label, source, probs)
        except (feedback.FeedbackError, OSError) as e:
            return f"**Not saved.** {e}"
        predicted = max(probs, key=probs.get) if probs else ""
        return f"Saved as **{label}** ({path.parent.name}/{path.name}; the model said {predicted})."


def feedback_panel(served: ServedModel) -> gr.Markdown:
    """Where corrections go and how many there are, deleting them all, and the model menu; returns the count
    line, which the correction buttons update."""
    with gr.Accordion("Corrections and personal models", open=True, elem_id="feedback"):
        count = gr.Markdown(feedback.summary(served.folder), elem_id="feedback-summary")
        gr.Markdown(f"Each correction saves the face as the model sees it (48×48 grey) under the expression you "
                    f"pick. Train a personal model from them with `python -m fer.personalize --feedback "
                    f"{served.folder} --out {served.folder / 'mine'}`, then pick it below.")
        with gr.Row():
            delete = gr.Button("Delete all corrections", variant="stop", size="sm", elem_id="feedback-delete")
            confirm = gr.Button("Yes, delete them all", variant="stop", size="sm", visible=False,
                                elem_id="feedback-confirm")
            cancel = gr.Button("Cancel", size="sm", visible=False, elem_id="feedback-cancel")
            refresh = gr.Button("Count again", size="sm", elem_id="feedback-refresh")  # the live view presses it
        with gr.Row():
            menu = gr.Dropdown(choices=served.choices(), value=str(served.path.resolve()), label="Model",
                               elem_id="model-menu", scale=3)
            rescan = gr.Button("Look for new models", size="sm", scale=1, elem_id="model-rescan")
        live_line = gr.Markdown(served.live_line(), elem_id="live-model")

    def ask():
        return gr.Button(visible=False), gr.Button(visible=True), gr.Button(visible=True)

    def delete_all():
        removed = feedback.delete_all(served.folder)
        return (f"Deleted {removed} correction(s). {feedback.summary(served.folder)}", gr.Button(visible=True),
                gr.Button(visible=False), gr.Button(visible=False))

    def keep():
        return feedback.summary(served.folder), gr.Button(visible=True), gr.Button(visible=False), gr.Button(visible=False)

    delete.click(ask, None, [delete, confirm, cancel], api_name=False)
    confirm.click(delete_all, None, [count, delete, confirm, cancel], api_name="delete_corrections")
    cancel.click(keep, None, [count, delete, confirm, cancel], api_name=False)
    refresh.click(lambda: feedback.summary(served.folder), None, count, api_name=False, show_progress="hidden")
    # then the page's live view loads the model now live (fer-live/model.onnx), if it runs
    menu.change(served.switch, menu, live_line, api_name="switch_model", concurrency_limit=1).then(
        None, None, None, js="() => { window.ferLive?.reloadModel(); }")
    rescan.click(lambda: gr.Dropdown(choices=served.choices(), value=str(served.path.resolve())), None, menu,
                 api_name=False)
    return count


def correction_row(served: ServedModel, what: str, elem: str) -> tuple[gr.Radio, gr.Button, gr.Markdown]:
    """"Wrong? pick the label" controls: the classes, a save button, a status line."""
    with gr.Row(equal_height=True):
        label = gr.Radio(served.recognizer.classes, label=f"Wrong? The right expression of {what}",
                         elem_id=f"{elem}-label", scale=4)
        save = gr.Button("Save correction", size="sm", scale=1, elem_id=f"{elem}-save")
    said = gr.Markdown(elem_id=f"{elem}-status")
    return label, save, said


def upload_corrections(served: ServedModel, analysed, upload: gr.Image, details: gr.JSON, count: gr.Markdown) -> None:
    """The Upload tab's corrections: after each analysis the faces' crops are kept for the session, and a
    face picked by number can be saved under the right expression."""
    faces = gr.State([])
    with gr.Group(visible=False) as box:
        which = gr.Dropdown(choices=[], label="Face", elem_id="correct-face")
        label, save, said = correction_row(served, "this face", "correct")

    def remember(upload_value, found: list[dict] | None):
        path = upload_value.get("path") if isinstance(upload_value, dict) else getattr(upload_value, "path", upload_value)
        if not path or not found:
            return [], gr.Dropdown(choices=[], value=None), gr.Group(visible=False), ""
        try:
            image = load_image(path, name=Path(path).name)
        except ImageError:
            return [], gr.Dropdown(choices=[], value=None), gr.Group(visible=False), ""
        boxes = [Box(f["box"]["x"], f["box"]["y"], f["box"]["w"], f["box"]["h"]) for f in found]
        crops = served.recognizer.crops(image, boxes)
        kept = [(crop, f["probabilities"]) for crop, f in zip(crops, found)]
        names = [(f"face {i + 1}: {f['label']}", i) for i, f in enumerate(found)]
        return kept, gr.Dropdown(choices=names, value=0), gr.Group(visible=True), ""

    def save_one(kept: list, index: int | None, chosen: str | None):
        if not kept or index is None or not 0 <= int(index) < len(kept):
            return "Upload a photo with a face first.", feedback.summary(served.folder)
        crop, probs = kept[int(index)]
        return served.save(crop, chosen, "upload", probs), feedback.summary(served.folder)

    analysed.then(remember, [upload, details], [faces, which, box, said], api_name=False, preprocess=False)
    save.click(save_one, [faces, which, label], [said, count], api_name="correct_upload")


def webcam_corrections(served: ServedModel, session: gr.State, count: gr.Markdown, visible: bool) -> gr.Column:
    """The Webcam tab's correction when frames go to the server: the largest face of the latest frame (as the
    classifier saw it) under the right expression. Returns its column, shown with the server's stream (the
    in-page live view has its own, app/static/live/correct.js)."""
    with gr.Column(visible=visible) as column:
        label, save, said = correction_row(served, "the largest face", "live-correct")

    def save_live(state: VideoSession | None, chosen: str | None):
        if state is None or state.largest is None:
            return "No face seen yet: start the camera first.", feedback.summary(served.folder)
        crop, probs = state.largest
        return served.save(crop, chosen, "webcam", probs), feedback.summary(served.folder)

    save.click(save_live, [session, label], [said, count], api_name="correct_webcam")
    return column


def build_app(recognizer: FaceRecognizer, temp: Path | None = None, model: str | Path | None = None,
              feedback_dir: Path | None = None) -> gr.Blocks:
    """The page: a Webcam tab (the live view in the page by default, :func:`live_view`, or streaming to the
    server, with a live plot), an Upload tab and a Video tab, thin wrappers over :mod:`fer.recognize` and
    :mod:`fer.video`. Results are written under ``temp`` (default: the system's temporary folder); ``model`` is
    the model file the app started with (the page's live view runs its ``.onnx``). With ``feedback_dir``,
    corrections are saved there (:mod:`fer.feedback`) and a panel shows them and switches between the started
    model and personal ones."""
    results = ResultFiles(parent=temp)
    served = ServedModel(recognizer, model or DEFAULT_MODEL, feedback_dir) if feedback_dir else None

    def stream(frame: np.ndarray | None, session: VideoSession | None, timeline: EmotionTimeline | None):
        session = session or VideoSession()
        timeline = timeline or EmotionTimeline(window_s=LIVE_PLOT_S)
        try:
            annotated, probs = annotate_frame(recognizer, frame, session)
        except Exception as e:  # a viewer's bad frame must never end the stream
            print(f"frame skipped: {type(e).__name__}: {e}", file=sys.stderr)
            return gr.skip(), gr.skip(), session, gr.skip(), timeline
        if annotated is None:
            return gr.skip(), gr.skip(), session, gr.skip(), timeline
        return annotated, probs or {}, session, live_plot_update(timeline, probs), timeline

    def analyze_clip(upload: dict | str | None, progress=gr.Progress(track_tqdm=True)):  # noqa: B008
        # `progress` shows fer.video's frame progress bar (tqdm) in the page
        # preprocess=False as for photos: the raw upload's path, read by fer.video with clear errors
        path = upload.get("path") if isinstance(upload, dict) else getattr(upload, "path", upload)
        if not path:
            return None, None, None, "Upload a video first."
        path = Path(path)
        if path.stat().st_size > VIDEO_MAX_MB * 1024 * 1024:
            return None, None, None, f"**Cannot use this file.** It is over {VIDEO_MAX_MB} MB."
        out = OutputPaths(results.folder(), "clip")  # H.264 MP4: plays in browsers
        try:
            report, rows = analyze_video(recognizer, path, out=out, show_progress=True, check=check_clip,
                                         max_frames=round(VIDEO_MAX_S * 120))
        except VideoError as e:
            return None, None, None, f"**Cannot use this file.** {str(e).replace(str(path), path.name)}"
        longest = sorted(report.face_ids, key=lambda i: -sum(r["face_id"] == i for r in rows))[:VIDEO_PLOT_FACES]
        plot = plot_faces(rows, sorted(longest), recognizer.classes, out.out_dir / "faces.png",
                          "Expressions over time") if longest else None
        csv_file = report.outputs.get("csv")
        return str(out.video), plot and str(plot), csv_file, video_status(report, rows)

    def analyze(upload: dict | str | None):
        # preprocess=False: Gradio's own image decoding would fail with a traceback on bad files,
        # so the raw upload (a file path) comes here and fer.images reads it with clear errors
        path = upload.get("path") if isinstance(upload, dict) else getattr(upload, "path", upload)
        hidden = [gr.Label(visible=False, value=None)] * MAX_FACES_SHOWN
        if not path:
            return None, "Upload an image first.", [], *hidden
        try:
            image = load_image(path, name=Path(path).name)
        except ImageError as e:
            return None, f"**Cannot use this file.** {e}", [], *hidden
        annotated, faces = recognizer.annotate(image)
        annotated = results.save(annotated)
        if not faces:
            return annotated, "No face found. Try a clearer, frontal, well-lit face.", [], *hidden
        labels = [gr.Label(value=f.probs, visible=True, label=f"face {i + 1}: {f.label}")
                  for i, f in enumerate(faces[:MAX_FACES_SHOWN])]
        details = [f.as_dict() for f in faces]
        more = f" (showing the first {MAX_FACES_SHOWN})" if len(faces) > MAX_FACES_SHOWN else ""
        status = "Found 1 face." if len(faces) == 1 else f"Found {len(faces)} faces, left to right{more}."
        return annotated, status, details, *labels, *hidden[len(labels):]

    with gr.Blocks(title="fer: facial expression recognition", delete_cache=CACHE_SWEEP) as demo:
        gr.Markdown(describe(recognizer, model))
        corrections_count = feedback_panel(served) if served else None
        with gr.Tab("Webcam", id="webcam"):
            where, demo.live_files = live_view(recognizer, model, feedback_on=served is not None)
            demo.served = served
            in_page = bool(demo.live_files)
            session = gr.State(None)
            with gr.Row(visible=not in_page) as server_view:
                camera = gr.Image(sources=["webcam"], streaming=True, label="Camera", elem_id="camera")
                # no label badge or icon buttons: they would cover labels drawn near the image's corners
                live = gr.Image(label="Recognised", show_label=False, buttons=[], format="jpeg", elem_id="live",
                                interactive=False)
            with gr.Row(visible=not in_page) as server_panels:
                main_face = gr.Label(num_top_classes=len(recognizer.classes), label="Largest face",
                                     elem_id="main-face")
                timeline = gr.State(None)
                colours = {c: "#{:02x}{:02x}{:02x}".format(*CLASS_COLOURS[c]) for c in recognizer.classes
                           if c in CLASS_COLOURS}  # as in the video plots and the drawn boxes
                live_plot = gr.LinePlot(x="seconds", y="probability", color="emotion", color_map=colours,
                                        x_lim=[-LIVE_PLOT_S, 0],
                                        y_lim=[0, 1], x_title=f"seconds ago (last {LIVE_PLOT_S} s)",
                                        label="Largest face over time", elem_id="live-plot")
            camera.stream(stream, [camera, session, timeline], [live, main_face, session, live_plot, timeline],
                          stream_every=STREAM_EVERY_S, time_limit=STREAM_TIME_LIMIT_S,
                          concurrency_limit=STREAM_CONCURRENCY, show_progress="hidden", api_name="stream")
            server_parts = [server_view, server_panels]
            if served:
                server_parts.append(webcam_corrections(served, session, corrections_count, visible=not in_page))
            where.change(lambda w: [gr.update(visible=w == WHERE[1])] * len(server_parts), where, server_parts,
                         show_progress="hidden", api_name=False)
        with gr.Tab("Upload", id="upload"):
            with gr.Row():
                upload = gr.Image(sources=["upload", "clipboard"], type="filepath", label="Image", elem_id="upload")
                result = gr.Image(label="Faces", show_label=False, buttons=[], format="jpeg", interactive=False,
                                  elem_id="result")
            status = gr.Markdown(elem_id="status")
            with gr.Row():
                labels = [gr.Label(visible=False, num_top_classes=len(recognizer.classes)) for _ in range(MAX_FACES_SHOWN)]
            with gr.Accordion("Details (JSON)", open=False):
                details = gr.JSON(label="faces")
            analysed = upload.change(analyze, upload, [result, status, details, *labels], api_name="analyze",
                                     concurrency_limit=4, preprocess=False)
            if served:
                upload_corrections(served, analysed, upload, details, corrections_count)
        with gr.Tab("Video", id="video"):
            with gr.Row():
                with gr.Column():  # the file, what became of it and the CSV, beside the (taller) video
                    # a file box, not a player: many videos OpenCV reads (AVI, MKV, mp4v...) do not play in
                    # browsers, and the player would flag them as errors before they were even analysed
                    clip = gr.File(label=f"Video (up to {VIDEO_MAX_S} s, {VIDEO_MAX_MB} MB)", elem_id="clip")
                    clip_status = gr.Markdown(elem_id="clip-status")
                    clip_csv = gr.File(label="Every frame's faces (CSV)", interactive=False, elem_id="clip-csv")
                clip_result = gr.Video(label="Faces", interactive=False, elem_id="clip-result")
            # no label badge: it would cover the plot's top left; the figure carries its own title
            clip_plot = gr.Image(label="Expressions over time", show_label=False, type="filepath", interactive=False,
                                 elem_id="clip-plot")
            clip.upload(analyze_clip, clip, [clip_result, clip_plot, clip_csv, clip_status], api_name="analyze_video",
                        concurrency_limit=1, preprocess=False)
    return demo


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=str(DEFAULT_MODEL), help=DEFAULT_MODEL_HELP)
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (0.0.0.0 to serve the network)")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--share", action="store_true", help="ask Gradio for a temporary public link")
    p.add_argument("--feedback", metavar="DIR",
                   help="let the page save corrections (the face as the model sees it and the right label) in "
                        "DIR/<class>/ with DIR/manifest.csv, and switch to personal models in DIR (python -m "
                        "fer.personalize); off by default, so nobody's face is stored unasked")
    add_detector_options(p)
    args = p.parse_args(argv)
    check_model_options(p, args)
    return args


def load_recognizer(args: argparse.Namespace) -> FaceRecognizer:
    """The model named by ``--model`` (.pkl or .onnx, :func:`fer.model_files.load_predictor`) with the chosen
    detector, ready to answer (compiled now, not on the first visitor). Raises ModelLoadError."""
    return FaceRecognizer.load(args.model, args.detector, args.min_face, args.score)


def start_feedback(folder: str | None) -> Path | None:
    """The ``--feedback`` folder, made if needed and said aloud; None (after a one-line error) when it cannot
    be written, or when corrections are off."""
    if not folder:
        return None
    try:
        path = feedback.check_folder(folder)
    except feedback.FeedbackError as e:
        print(f"error: {e}", file=sys.stderr)
        return None
    print(f"corrections: saved in {path.resolve()} — {feedback.summary(path).split(': ', 1)[-1].replace('*', '')}")
    return path


@exit_on_missing_extra
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging()
    try:
        recognizer = load_recognizer(args)
    except ModelLoadError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"model: {args.model} — {recognizer.predictor.describe()} ({recognizer.predictor.backend_used} backend); "
          f"detector: {recognizer.detector_name}")
    feedback_dir = start_feedback(args.feedback)
    if args.feedback and feedback_dir is None:
        return 2
    temp = app_temp_folder()
    print(f"temporary files: {temp} (deleted when the app stops)")
    demo = build_app(recognizer, temp, args.model, feedback_dir).queue(default_concurrency_limit=4)
    gradio_says = io.StringIO()
    with contextlib.redirect_stdout(gradio_says):  # the app speaks for itself, below
        _, local_url, share_url = demo.launch(server_name=args.host, server_port=args.port, share=args.share,
                                              max_file_size=MAX_UPLOAD, show_error=False, quiet=True,
                                              prevent_thread_lock=True,
                                              app_kwargs={"routes": live_view_routes(demo.live_files, demo.served)})
    print(f"serving on {local_url}", flush=True)
    if args.share and share_url:
        print(f"public link: {share_url} (for 1 week at most; anyone with it can use this app)", flush=True)
    elif args.share:
        reason = next((line.strip() for line in gradio_says.getvalue().splitlines() if line.strip()), "no network")
        print(f"no public link ({reason[:160]}): serving on {local_url} only", flush=True)
    else:
        print("add --share for a temporary public link", flush=True)
    demo.block_thread()
    return 0


if __name__ == "__main__":
    sys.exit(main())
