"""The HTTP routes beside Gradio's: the live view's files (its modules, onnxruntime-web, YuNet, the live model)
and a correction from the page. With sign-in on, the model files and corrections answer signed-in users only
(the modules and onnxruntime-web are public code); cross-site requests never reach them (:mod:`fer_app.origin`)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Callable

from starlette.concurrency import run_in_threadpool
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from fer.serving import feedback
from fer.serving.live import YUNET_DYNAMIC, browser_model, live_settings
from fer.serving.recognize import FaceRecognizer
from fer_app.access import Access, signed_in_user, who
from fer_app.corrections import ServedModel
from fer_app.settings import LIVE_CORRECTION_MAX_BYTES, LIVE_PLOT_S, LIVE_ROUTE, STATIC_DIR, WEBGPU_RUNTIME


def live_view_config(recognizer: FaceRecognizer, model: str | Path | None,
                     feedback_on: bool = False) -> tuple[dict | None, str]:
    """What the page's live view needs: the Python path's settings (:func:`fer.serving.live.live_settings`) and the URLs,
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
            "ortBase": f"{LIVE_ROUTE}/static/vendor/onnxruntime-web/", "webgpu": WEBGPU_RUNTIME.is_file(),
            "yunetUrl": f"{LIVE_ROUTE}/yunet.onnx", "modelUrl": f"{LIVE_ROUTE}/model.onnx",
            "modelInfoUrl": f"{LIVE_ROUTE}/model.json", "modelName": onnx.name,
            "correctUrl": f"{LIVE_ROUTE}/correct", "feedback": feedback_on,
            "modelBytes": onnx.stat().st_size, "moduleUrl": f"{LIVE_ROUTE}/static/live/main.js",
            "budgetMs": 1000 / 30, "files": {k: str(v) for k, v in files.items()}}, ""


class RevalidatedFiles(StaticFiles):
    """Static files the browser keeps and revalidates on each visit (ETag → 304), so the 33 MB of runtime and
    model cross the network once, and again only when they change."""

    def file_response(self, *args, **kwargs):
        """The file, with ``Cache-Control: no-cache`` so browsers revalidate it (ETag) on each visit."""
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = "no-cache"
        return response


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """Whether an ``If-None-Match`` header matches ``etag``: ``*``, or one of its comma-separated tags exactly
    (a weak ``W/`` tag compares as its strong form, as RFC 9110 asks of GET)."""
    if not if_none_match:
        return False
    tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
    return "*" in tags or etag.removeprefix("W/") in tags


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
        if etag_matches(request.headers.get("if-none-match"), headers["etag"]):
            return Response(status_code=304, headers=headers)
        return FileResponse(file, headers=headers, stat_result=stat)
    return endpoint


def signed_in_only(endpoint, access: Access | None):
    """``endpoint`` answering 401 to requests without a signed-in user when sign-in is on."""
    if access is None or not access.on:
        return endpoint

    async def guarded(request):
        if signed_in_user(request) is None:
            return JSONResponse({"error": "sign in first"}, status_code=401)
        return await endpoint(request)
    return guarded


def model_info_endpoint(onnx: Callable[[], Path]):
    """``model.json``: the name and size of the model the live view should run now."""
    async def endpoint(request):
        file = onnx()
        return JSONResponse({"name": file.name, "bytes": file.stat().st_size}, headers={"cache-control": "no-store"})
    return endpoint


def correction_endpoint(served: "ServedModel | None"):
    """``POST correct``: a correction from the page's live view (:func:`fer.serving.feedback.parse_correction`'s JSON),
    saved in the feedback folder as source ``live``. Refused (403) when the app runs without ``--feedback``; 400
    with the reason for a bad correction (numbers that overflow, nesting too deep for the parser included), 429
    over the rate limit or the folder's cap."""
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
            payload = json.loads(body, parse_constant=refuse_constant)
        except (ValueError, RecursionError) as e:  # json's errors are ValueErrors; deep nesting, RecursionError
            return JSONResponse({"error": f"not a correction: {type(e).__name__}: {str(e)[:100]}"}, status_code=400)
        try:
            correction = feedback.parse_correction(payload, served.recognizer.classes)
        except feedback.FeedbackError as e:
            return JSONResponse({"error": str(e)}, status_code=400)
        sender = who(signed_in_user(request), request.client.host if request.client else None)
        try:
            path = await run_in_threadpool(served.save_face, correction.face, correction.label, "live",
                                           correction.probs, correction.predicted, correction.model, sender)
        except feedback.FeedbackError as e:  # the rate limit or the folder's cap
            return JSONResponse({"error": str(e)}, status_code=429)
        except OSError as e:
            return JSONResponse({"error": f"not saved: {e.strerror or e}"}, status_code=500)
        return JSONResponse({"file": f"{path.parent.name}/{path.name}",
                             "message": f"Saved as {correction.label} ({path.parent.name}/{path.name}; the model "
                                        f"said {correction.predicted}).",
                             "summary": feedback.summary(served.folder).replace("*", "")})
    return endpoint


def refuse_constant(name: str):
    """JSON's ``NaN``, ``Infinity`` and ``-Infinity`` are no numbers a correction may hold."""
    raise ValueError(f"{name} is not a number")


def live_view_routes(files: dict[str, str], served: "ServedModel | None" = None, access: Access | None = None) -> list:
    """The live view's routes (``files``: URL path → file or folder, from :func:`live_view_config`) for the app's
    FastAPI server (``launch(app_kwargs={"routes": ...})``, so they answer from the first request, ahead of
    Gradio's own): only these files, nothing else beside them; with ``served`` (``--feedback``), the model
    file is the one live now (the page's model menu switches it). Also ``model.json`` and ``correct``
    (:func:`correction_endpoint`, refusing without ``--feedback``). With ``access`` on, all but the modules
    answer signed-in users only."""
    if not files:
        return []
    model_url = f"/{LIVE_ROUTE}/model.onnx"
    started = Path(files[model_url])
    onnx = (lambda: served.onnx or started) if served else (lambda: started)
    routes = [Mount(url, RevalidatedFiles(directory=path)) if Path(path).is_dir()
              else Route(url, signed_in_only(revalidated_file(onnx if url == model_url else Path(path)), access),
                         methods=["GET", "HEAD"])
              for url, path in files.items()]
    return routes + [Route(f"/{LIVE_ROUTE}/model.json", signed_in_only(model_info_endpoint(onnx), access),
                           methods=["GET"]),
                     Route(f"/{LIVE_ROUTE}/correct", signed_in_only(correction_endpoint(served), access),
                           methods=["POST"])]
