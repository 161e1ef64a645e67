"""The HTTP service of ``fer-serve`` (FastAPI): a photo in, its faces out as JSON; videos as jobs; the model card.

    POST   /v1/faces                 an image (the body, or the form field ``file``) → its faces, as fer.load().analyze
    POST   /v1/videos                a video → 202 and a job: its status document, with Location
    GET    /v1/videos/{id}           the job's status and progress
    GET    /v1/videos/{id}/result    its rows as JSON (?format=json) or CSV (?format=csv)
    DELETE /v1/videos/{id}           stop it and delete its upload and results
    GET    /v1/model                 the model card
    GET    /healthz                  liveness (never needs the token)
    GET    /openapi.json, /docs      the API's description

Every error is a problem details document (RFC 9457, ``application/problem+json``: type, title, status, detail,
instance). Photos are analysed ``concurrency`` at a time per process with ``queue`` more admitted to wait; beyond
that the answer is 503 with ``Retry-After``. With a token, every path but ``/healthz`` needs ``Authorization:
Bearer TOKEN`` (or HTTP Basic auth with the token as the password, which browsers ask for on /docs and the page).
State-changing requests carrying another site's ``Origin`` are refused (403). :func:`create_app` builds the
application; :func:`app_from_environment` is what each uvicorn worker process calls.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import json
import logging
import math
import os
import shutil
import tempfile
import time
import weakref
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Literal

from fastapi import FastAPI, Request
from fastapi import Path as PathParameter
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.routing import Match

import fer
from fer.core.card import default_model, suite_figures
from fer.core.images import FULL_SIZE, ImageError, header_size, load_image
from fer.serving.recognize import FaceRecognizer
from fer.serving.video import VideoError
from fer_app.origin import cross_site_reason
from fer_app.service_jobs import (
    JOB_KEEP_S,
    MAX_STORED_JOBS,
    JobRunner,
    JobStore,
    VideoLimits,
    VideoOverLimit,
    check_video,
    public,
)

log = logging.getLogger(__name__)

#: The environment variable that carries the settings to each uvicorn worker process (JSON).
SETTINGS_ENV = "FER_SERVE_SETTINGS"
#: An upload must arrive within this many seconds of being admitted (408 otherwise).
BODY_TIMEOUT_S = 60
#: After refusing a body as too large, read and drop what the client still sends for up to this long, so that
#: it sees the 413 rather than a reset connection.
DRAIN_S = 5
PROBLEM_MEDIA = "application/problem+json"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
OPEN_PATHS = frozenset({"/healthz"})


@dataclass(frozen=True)
class ServiceSettings:
    """Everything a worker process needs to build the application (the options of ``fer-serve``)."""

    model: str | None = None  #: default: $FER_MODEL, else the shipped model
    detector: str = "yunet"
    min_face: int = 0
    score: float | None = None
    token: str | None = None  #: bearer token required on everything but /healthz
    max_bytes: int = 25 * 1024 * 1024  #: a request body (photo or video, multipart included)
    max_pixels: int = 25_000_000  #: a photo, from its header, before it is decoded
    max_video_s: float = 30.0
    max_video_pixels: int = 1920 * 1080  #: a video frame
    concurrency: int = 2  #: photos analysed at once, per process
    queue: int = 32  #: photos admitted to wait beyond those, per process
    video_queue: int = 4  #: video jobs queued or running, per process
    threads: int | None = None  #: numeric threads per process (None: as the libraries choose)
    jobs_dir: str | None = None  #: shared by the worker processes (None: a temporary folder of this process)
    ui: bool = False  #: mount the Gradio page at /ui/
    allow_origins: tuple[str, ...] = ()  #: other origins allowed to POST and DELETE (e.g. behind a proxy)

    def to_json(self) -> str:
        """The settings as JSON (handed to uvicorn's worker processes)."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ServiceSettings:
        """Settings from :meth:`to_json`'s text."""
        fields = json.loads(text)
        return cls(**{**fields, "allow_origins": tuple(fields.get("allow_origins", ()))})


# ---- problem details -------------------------------------------------------------------------------------------


class Problem(Exception):
    """An error answered as problem details: ``status``, a short ``title``, a ``detail`` naming what is wrong,
    a ``kind`` (the last part of its type URI; None: ``about:blank``, the status's own meaning)."""

    def __init__(self, status: int, title: str, detail: str, kind: str | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.status, self.title, self.detail, self.kind, self.headers = status, title, detail, kind, headers or {}

    def response(self, instance: str) -> JSONResponse:
        """The problem as an RFC 9457 ``application/problem+json`` response."""
        body = {"type": f"urn:fer-serve:problem:{self.kind}" if self.kind else "about:blank", "title": self.title,
                "status": self.status, "detail": self.detail, "instance": instance}
        return JSONResponse(body, self.status, headers=self.headers, media_type=PROBLEM_MEDIA)


def http_problem(status: int, detail: str, headers: dict[str, str] | None = None) -> Problem:
    """A plain HTTP error (``about:blank``: the title is the status's phrase)."""
    return Problem(status, HTTPStatus(status).phrase, detail, None, headers)


class ProblemDocument(BaseModel):
    """RFC 9457 problem details."""

    type: str = Field(description="a URI naming the kind of problem (urn:fer-serve:problem:..., or about:blank)")
    title: str = Field(description="the kind of problem, in a few words")
    status: int = Field(description="the HTTP status code")
    detail: str = Field(description="what is wrong with this request, and how to fix it")
    instance: str | None = Field(None, description="the request's path")


PROBLEM_CONTENT = {PROBLEM_MEDIA: {"schema": {"$ref": "#/components/schemas/ProblemDocument"}}}
CLIENT_ERRORS = {"4XX": {"description": "The request cannot be answered (problem details)",
                         "content": PROBLEM_CONTENT}}
BUSY = {503: {"description": "The queue is full: retry after Retry-After seconds (problem details)",
              "content": PROBLEM_CONTENT,
              "headers": {"Retry-After": {"description": "seconds to wait", "schema": {"type": "string"}}}}}


# ---- response documents (for the OpenAPI description; the answers carry what the library gives) ----------------


class FaceBox(BaseModel):
    """A face's box in the photo's pixels, with YuNet's score and landmarks."""
    x: int
    y: int
    w: int
    h: int
    score: float | None = Field(None, description="the detector's score (YuNet)")
    landmarks: dict[str, list[float]] | None = Field(None, description="five points by name: [x, y] (YuNet)")


class FaceDocument(BaseModel):
    """One face: its box, most probable class and every class's probability."""
    box: FaceBox
    label: str = Field(description="the most probable class")
    probabilities: dict[str, float] = Field(description="class → probability (they sum to 1)")


class FacesAnswer(BaseModel):
    """The answer to a photo: its size and every face found."""
    width: int = Field(description="the photo's width in pixels (after its EXIF rotation); boxes are in these pixels")
    height: int
    faces: list[FaceDocument] = Field(description="every face found, left to right (Face.as_dict())")


class JobDocument(BaseModel):
    """A video job's state: queued, running, done or failed, with its times, progress and any problem."""
    id: str
    status: Literal["queued", "running", "done", "failed"]
    name: str = Field(description="the upload's file name")
    created: str
    started: str | None = None
    finished: str | None = None
    progress: float | None = Field(None, description="0 to 1; null while the video's length is unknown")
    frames_read: int = 0
    frames_expected: int | None = None
    video: dict | None = Field(None, description="when done: size, frame rate, frames read and analysed, face "
                                                 "ids, complete, problem (why it stopped early), seconds")
    problem: ProblemDocument | None = Field(None, description="when failed: why")
    results: dict[str, str] | None = Field(None, description="when done: the result's URLs (json, csv)")


class VideoResult(BaseModel):
    """A finished video job's result: the video's summary and one row per analysed frame and face."""
    id: str
    name: str
    video: dict
    columns: list[str]
    rows: list[dict] = Field(description="one per analysed frame and face: frame, time_s, face_id, box, score, "
                                         "landmarks, a probability per class, label (null where empty)")


class ModelDocument(BaseModel):
    """The model the service runs: its name, description, classes, detector, card and suite figures."""
    name: str = Field(description="the model file's name")
    description: str
    classes: list[str]
    detector: str
    card: dict = Field(description="how the model was trained (its card)")
    suite: dict | None = Field(None, description="its evaluation-suite figures, when it has them")


class Health(BaseModel):
    """The liveness answer."""
    status: Literal["ok"]


def upload_body(kind: str) -> dict:
    """The OpenAPI request body of an upload: the raw bytes, or a form with the file in ``file``."""
    return {"requestBody": {"required": True, "description": (
        f"the {kind} file: as the raw body (any Content-Type but multipart/form-data), or as the field `file` of a "
        f"multipart form"), "content": {
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        "multipart/form-data": {"schema": {"type": "object", "required": ["file"],
                                           "properties": {"file": {"type": "string", "format": "binary"}}}}}}}


# ---- admission: a bounded queue in front of the analysis ---------------------------------------------------------


class Admission:
    """At most ``workers`` analyses at once (threads) and ``queue`` more requests admitted to wait; beyond that
    :meth:`admit` refuses with 503 and a ``Retry-After`` from the recent time per request."""

    def __init__(self, workers: int, queue: int):
        self.workers, self.capacity = workers, workers + queue
        self.executor = ThreadPoolExecutor(workers, thread_name_prefix="fer-photo")
        self.admitted = 0  # changed on the event loop's thread only
        self.seconds = 0.05  # time per analysis, a moving average

    def retry_after(self) -> int:
        """Seconds after which a refused request is likely to find a place."""
        return max(1, math.ceil(self.admitted * self.seconds / self.workers))

    @asynccontextmanager
    async def admit(self):
        """Hold a place while a request is analysed; 503 (queue full, with Retry-After) when there is none."""
        if self.admitted >= self.capacity:
            raise Problem(503, "queue full", f"{self.admitted} requests are being analysed or waiting (the "
                                             f"server's --concurrency plus --queue): retry after "
                                             f"{self.retry_after()} s", "queue-full",
                          {"Retry-After": str(self.retry_after())})
        self.admitted += 1
        try:
            yield
        finally:
            self.admitted -= 1

    async def run(self, function, *args):
        """``function(*args)`` on one of the analysis threads."""
        start = time.perf_counter()
        try:
            return await asyncio.get_running_loop().run_in_executor(self.executor, function, *args)
        finally:
            self.seconds = 0.8 * self.seconds + 0.2 * (time.perf_counter() - start)


# ---- the guard: token, origin and body size, before any route ------------------------------------------------------


class BodyTooLarge(Exception):
    """A request body passed the service's ``--max-bytes``."""


class Guard:
    """ASGI middleware run before every route (the mounted page's too): the token (all paths but /healthz), the
    origin of state-changing requests, and the size of /v1 request bodies (413, read no further)."""

    def __init__(self, app, settings: ServiceSettings):
        self.app, self.settings = app, settings

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        request = Request(scope)
        path = scope["path"]
        problem = self.refusal(request)
        if problem is None and scope["type"] == "http" and path.startswith("/v1/"):
            declared = request.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > self.settings.max_bytes:
                problem = too_large(self.settings.max_bytes)
            else:
                receive = limited(receive, self.settings.max_bytes)
        if problem is not None:
            return await self.refuse(problem, scope, receive, send)
        try:
            await self.app(scope, receive, send)
        except BodyTooLarge:
            await self.refuse(too_large(self.settings.max_bytes), scope, receive, send)

    async def refuse(self, problem: Problem, scope, receive, send) -> None:
        """Answer the request with ``problem`` (a WebSocket is closed), reading no more of an oversized body than
        needed."""
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        if problem.status == 413:
            await drain(receive)
        await problem.response(scope["path"])(scope, receive, send)

    def refusal(self, request: Request) -> Problem | None:
        """Why ``request`` is refused before it reaches a route, or None."""
        token = self.settings.token
        if token and request.url.path not in OPEN_PATHS and not authorised(request.headers.get("authorization"), token):
            api = request.url.path.startswith("/v1/")
            challenge = 'Bearer realm="fer-serve"' if api else 'Basic realm="fer-serve", charset="UTF-8"'
            return Problem(401, "token required", "this server needs its token: send the header "
                                                  "'Authorization: Bearer TOKEN'" + (
                               "" if api else " (or, in a browser, any user name and the token as the password)"),
                           "token-required", {"WWW-Authenticate": challenge})
        if request.method in UNSAFE_METHODS and (origin := foreign_origin(request, self.settings.allow_origins)):
            return Problem(403, "cross-site request", f"a {request.method} from a page of {origin} is refused: "
                                                      f"this server takes them from its own pages and from clients "
                                                      f"that send no Origin (or start it with --allow-origin "
                                                      f"{origin})", "cross-site")
        return None


def authorised(header: str | None, token: str) -> bool:
    """Whether an Authorization header carries ``token``: ``Bearer TOKEN``, or Basic with TOKEN as the password."""
    scheme, _, value = (header or "").strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "basic":
        try:
            value = base64.b64decode(value, validate=True).decode("utf-8").partition(":")[2]
        except (binascii.Error, UnicodeDecodeError):
            return False
    elif scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(value.encode("utf-8", "replace"), token.encode("utf-8"))


def foreign_origin(request: Request, allowed: tuple[str, ...]) -> str | None:
    """Where a request sent by another site's page comes from (its ``Origin``, else its ``Referer``), or None:
    not a browser, the server's own pages (:func:`fer_app.origin.cross_site_reason`, whatever the Host it was sent
    to), or one of ``allowed``."""
    origin = request.headers.get("origin")
    if origin is not None and origin.rstrip("/") in allowed:
        return None
    if cross_site_reason(request.scope) is None:
        return None
    return origin or request.headers.get("referer") or request.headers.get("sec-fetch-site") or "another site"


def too_large(max_bytes: int) -> Problem:
    """The 413 problem for a body over ``max_bytes``."""
    return Problem(413, "upload too large", f"the request body is over {max_bytes:,} bytes (the server's "
                                            f"--max-bytes)", "too-large")


def limited(receive, max_bytes: int):
    """``receive`` that raises :class:`BodyTooLarge` once the body passes ``max_bytes``."""
    seen = 0

    async def receive_limited():
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > max_bytes:
                raise BodyTooLarge
        return message
    return receive_limited


async def drain(receive) -> None:
    """Read and drop the rest of a refused body, for up to :data:`DRAIN_S` seconds."""
    async def rest():
        while True:
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body"):
                return
    try:
        await asyncio.wait_for(rest(), DRAIN_S)
    except (asyncio.TimeoutError, BodyTooLarge, RuntimeError):
        pass


# ---- uploads ---------------------------------------------------------------------------------------------------


async def read_upload(request: Request, kind: str) -> tuple[bytes, str]:
    """(bytes, name) of the file a request carries: the form field ``file`` of a multipart form, or the raw body
    (name: "the image" / "the video"). 400 when there is none, 408 when it does not arrive in time."""
    try:
        data, name = await asyncio.wait_for(_read(request, kind), BODY_TIMEOUT_S)
    except asyncio.TimeoutError:
        raise Problem(408, "upload too slow", f"the {kind} did not arrive within {BODY_TIMEOUT_S} s",
                      "upload-timeout") from None
    if not data:
        raise Problem(400, f"no {kind}", f"the request carries no {kind}: send the file as the request body, or as "
                                         f"the field 'file' of a multipart form", "no-upload")
    return data, name


async def _read(request: Request, kind: str) -> tuple[bytes, str]:
    if request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        async with request.form(max_files=1, max_fields=8) as form:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise Problem(400, f"no {kind}", f"the form has no file in a field named 'file' (fields: "
                                                 f"{', '.join(form.keys()) or 'none'})", "no-upload")
            return await upload.read(), display_name(upload.filename, kind)
    return await request.body(), f"the {kind}"


def display_name(filename: str | None, kind: str) -> str:
    """An upload's file name as messages show it: its last part, printable, at most 80 characters."""
    name = "".join(c for c in Path((filename or "").replace("\\", "/")).name if c.isprintable())[:80]
    return name or f"the {kind}"


# ---- the service ----------------------------------------------------------------------------------------------


@dataclass
class Service:
    """One process's state: the model, the photo queue, the video jobs."""

    settings: ServiceSettings
    recognizer: FaceRecognizer
    model_path: Path
    store: JobStore
    photos: Admission = field(init=False)
    videos: JobRunner = field(init=False)

    def __post_init__(self):
        self.photos = Admission(self.settings.concurrency, self.settings.queue)
        limits = VideoLimits(self.settings.max_video_s, self.settings.max_video_pixels)
        self.videos = JobRunner(self.store, self.recognizer, limits, self.settings.video_queue)

    def analyse_photo(self, data: bytes, name: str) -> dict:
        """The faces of an encoded photo as :meth:`fer.Model.analyze` finds them (boxes in the file's own pixels);
        422 when it is over the pixel limit or cannot be read."""
        size = header_size(data)
        if size and size[0] * size[1] > self.settings.max_pixels:
            raise Problem(422, "too many pixels", f"{name} is {size[0]}×{size[1]} = {size[0] * size[1] / 1e6:.1f} "
                                                  f"megapixels; this server takes images of up to "
                                                  f"{self.settings.max_pixels / 1e6:.1f} megapixels (its "
                                                  f"--max-pixels)", "too-many-pixels")
        try:
            image = load_image(data, name=name, max_side=FULL_SIZE)
        except ImageError as e:
            raise Problem(422, "image unreadable", str(e), "image-unreadable") from None
        faces = self.recognizer.analyze(image)
        return {"width": image.shape[1], "height": image.shape[0], "faces": [f.as_dict() for f in faces]}

    def model_document(self) -> dict:
        """The model the service runs, as ``GET /v1/model`` answers."""
        predictor = self.recognizer.predictor
        return {"name": self.model_path.name, "description": predictor.describe(), "classes": self.recognizer.classes,
                "detector": self.recognizer.detector_name, "card": predictor.card,
                "suite": suite_figures(self.model_path) if self.model_path.suffix in (".onnx", ".pkl") else None}

    async def submit_video(self, request: Request) -> JSONResponse:
        """Accept a video upload as a job (``POST /v1/videos``): 202 with the job's document, 503 when the queue is
        full."""
        if not self.videos.reserve():
            wait = self.videos.retry_after()
            raise Problem(503, "queue full", f"{self.settings.video_queue} video jobs are queued or running in this "
                                             f"process (the server's --video-queue): retry after {wait} s",
                          "queue-full", {"Retry-After": str(wait)})
        try:
            await run_in_threadpool(self.store.sweep)
            if self.store.count() >= MAX_STORED_JOBS:
                raise Problem(503, "too many jobs", f"{MAX_STORED_JOBS} video jobs are stored; finished ones are "
                                                    f"kept {JOB_KEEP_S // 60} minutes or until DELETE", "too-many-jobs",
                              {"Retry-After": "60"})
            data, name = await read_upload(request, "video")
            job_id, video = await run_in_threadpool(self.store.create, data, name)
            try:
                await run_in_threadpool(check_video, video, name, self.videos.limits)
            except VideoError as e:
                await run_in_threadpool(self.store.delete, job_id)
                over = isinstance(e, VideoOverLimit)
                raise Problem(422, "video over the limits" if over else "video unreadable", str(e),
                              "video-over-limits" if over else "video-unreadable") from None
            status = self.videos.submit(job_id, video, name)
        except BaseException:
            self.videos.release()
            raise
        return JSONResponse(public(status), 202, headers={"Location": f"/v1/videos/{job_id}"})

    def job_status(self, job_id: str) -> dict:
        """A video job's document; 404 when there is no such job."""
        status = self.store.status(job_id)
        if status is None:
            raise no_such_job(job_id)
        return status

    def job_result(self, job_id: str, kind: str) -> Response:
        """A finished job's result as JSON or CSV; 409 while it is not done."""
        status = self.job_status(job_id)
        if status["status"] != "done":
            why = status["problem"]["detail"] if status["problem"] else f"it is {status['status']}" + (
                f" ({status['progress']:.0%})" if status["progress"] else "")
            raise Problem(409, "job not done", f"job {job_id} has no result: {why}", "job-not-done")
        folder = self.store.folder(job_id)
        path = folder / f"result.{kind}" if folder else None
        if path is None or not path.is_file():
            raise no_such_job(job_id)
        media = "text/csv; charset=utf-8" if kind == "csv" else "application/json"
        stem = Path(status["name"]).stem if status["name"] != "the video" else "video"
        return FileResponse(path, media_type=media, filename=f"{stem}.{kind}" if kind == "csv" else None)


def no_such_job(job_id: str) -> Problem:
    """The 404 problem for an unknown job id."""
    return Problem(404, "no such job", f"there is no video job {job_id} (finished jobs are kept "
                                       f"{JOB_KEEP_S // 60} minutes, deleted ones are gone)", "no-such-job")


def add_routes(app: FastAPI, service: Service) -> None:
    """Add the service's routes (health, model, photos, videos and their jobs) to ``app``."""
    jobs = ["videos"]

    @app.get("/healthz", tags=["service"], response_model=Health, summary="Liveness: answers without the token")
    async def healthz():
        return {"status": "ok"}

    @app.get("/v1/model", tags=["service"], response_model=ModelDocument, responses=CLIENT_ERRORS,
             summary="The model card: its classes, how it was trained, its evaluation figures")
    async def model():
        return JSONResponse(service.model_document())

    @app.post("/v1/faces", tags=["faces"], responses={200: {"model": FacesAnswer}, **CLIENT_ERRORS, **BUSY},
              openapi_extra=upload_body("image"), summary="Every face of a photo, with its expression")
    async def faces(request: Request):
        """The photo's faces as ``fer.load().analyze`` finds them: boxes in the file's own pixels (after its EXIF
        rotation), landmarks and detector score, each class's probability and the label. PNG, JPEG, WebP, GIF,
        BMP, TIFF; grey, 16-bit, palette, CMYK and transparent images are converted."""
        async with service.photos.admit():
            data, name = await read_upload(request, "image")
            return JSONResponse(await service.photos.run(service.analyse_photo, data, name))

    @app.post("/v1/videos", tags=jobs, status_code=202, openapi_extra=upload_body("video"),
              responses={202: {"model": JobDocument, "headers": {"Location": {
                  "description": "the job's URL", "schema": {"type": "string"}}}}, **CLIENT_ERRORS, **BUSY},
              summary="Start a video job: every frame's faces, tracked")
    async def submit_video(request: Request):
        """Checks the video against the limits (length, frame size; from its header, before any work), then
        queues it: 202 with the job's status document. The job lives on this machine (every worker process of
        this server answers for it)."""
        return await service.submit_video(request)

    job_id_path = {"pattern": "^[0-9a-f]{32}$", "description": "the id POST /v1/videos gave"}

    @app.get("/v1/videos/{job_id}", tags=jobs, response_model=JobDocument, responses=CLIENT_ERRORS,
             summary="A video job's status and progress")
    async def job_status(job_id: str = PathParameter(..., **job_id_path)):
        return JSONResponse(public(await run_in_threadpool(service.job_status, job_id)))

    @app.get("/v1/videos/{job_id}/result", tags=jobs, responses={200: {"model": VideoResult, "content": {
        "text/csv": {"schema": {"type": "string"}}}}, **CLIENT_ERRORS},
             summary="A finished job's rows: JSON, or CSV (the columns of fer-video's CSV)")
    async def job_result(job_id: str = PathParameter(..., **job_id_path), format: Literal["json", "csv"] = "json"):
        return await run_in_threadpool(service.job_result, job_id, format)

    @app.delete("/v1/videos/{job_id}", tags=jobs, status_code=204, responses=CLIENT_ERRORS,
                summary="Stop a video job and delete its upload and results")
    async def delete_job(job_id: str = PathParameter(..., **job_id_path)):
        if not await run_in_threadpool(service.store.delete, job_id):
            raise no_such_job(job_id)
        return Response(status_code=204)


def add_error_handlers(app: FastAPI) -> None:
    """Every error as problem details: ours, FastAPI's validation errors, Starlette's HTTP errors, and any other
    exception (500, logged, no traceback in the answer)."""

    @app.exception_handler(Problem)
    async def problem(request: Request, exc: Problem):
        return exc.response(request.url.path)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        where = "; ".join(f"{' '.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        return Problem(422, "invalid request", where, "invalid-request").response(request.url.path)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        headers = dict(exc.headers or {})
        detail = {404: f"no such path: {request.url.path}"}.get(exc.status_code, str(exc.detail))
        if exc.status_code == 405:  # every method of the path, not only those of the first route that matched it
            allowed = sorted(allowed_methods(app, request))
            headers["Allow"] = ", ".join(allowed)
            detail = f"{request.method} is not allowed on {request.url.path} (allowed: {', '.join(allowed)})"
        return http_problem(exc.status_code, detail, headers).response(request.url.path)

    @app.exception_handler(Exception)
    async def crash(request: Request, exc: Exception):
        log.exception("%s %s failed", request.method, request.url.path)
        return http_problem(500, f"the server failed on this request ({type(exc).__name__}); it is logged"
                            ).response(request.url.path)


def allowed_methods(app: FastAPI, request: Request) -> set[str]:
    """The methods the routes of the request's path take."""
    return {method for route in app.routes if getattr(route, "methods", None)
            and route.matches(request.scope)[0] != Match.NONE for method in route.methods}


def describe_api(app: FastAPI, settings: ServiceSettings) -> dict:
    """The OpenAPI document: FastAPI's, with the problem details schema and, with a token, the bearer scheme."""
    if app.openapi_schema is None:
        doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        schemas = doc.setdefault("components", {}).setdefault("schemas", {})
        schemas["ProblemDocument"] = ProblemDocument.model_json_schema()
        if settings.token:
            doc["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
            for path, operations in doc["paths"].items():
                for operation in operations.values():
                    operation["security"] = [] if path in OPEN_PATHS else [{"bearer": []}]
        app.openapi_schema = doc
    return app.openapi_schema


DESCRIPTION = """Facial expression recognition over HTTP: the faces of a photo, the tracked faces of a video (a job),
the model card. Errors are problem details (RFC 9457). Photos beyond the server's queue are refused with 503 and
`Retry-After`. Video jobs live on the machine that took them."""


def create_app(settings: ServiceSettings, recognizer: FaceRecognizer | None = None) -> FastAPI:
    """The application for ``settings``; ``recognizer`` (default: loaded from the settings) answers every request.
    Raises :class:`fer.core.card.ModelLoadError` naming the file when the model cannot be loaded."""
    model_path = Path(settings.model or default_model())
    recognizer = recognizer or FaceRecognizer.load(model_path, settings.detector, settings.min_face, settings.score)
    temp = Path(settings.jobs_dir).parent if settings.jobs_dir else Path(tempfile.mkdtemp(prefix="fer-serve-"))
    service = Service(settings, recognizer, model_path, JobStore(settings.jobs_dir or temp / "jobs"))

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        service.videos.stop()

    app = FastAPI(title="fer-serve", version=fer.__version__, description=DESCRIPTION, redoc_url=None,
                  lifespan=lifespan)
    if settings.jobs_dir is None:  # one process on its own: its own temporary folder, removed with the application
        weakref.finalize(app, shutil.rmtree, temp, ignore_errors=True)
    app.state.service = service
    add_routes(app, service)
    add_error_handlers(app)
    app.openapi = lambda: describe_api(app, settings)
    app.add_middleware(Guard, settings=settings)
    if settings.ui:
        mount_page(app, recognizer, model_path, temp / "page")
    app.add_api_route("/", lambda: RedirectResponse("/ui/" if settings.ui else "/docs"), include_in_schema=False)
    return app


def mount_page(app: FastAPI, recognizer: FaceRecognizer, model_path: Path, temp: Path) -> None:
    """The app's Gradio page at /ui/ (with its live view's routes), on this server; its files under ``temp``."""
    import gradio as gr

    from fer_app.layout import build_app
    from fer_app.settings import MAX_UPLOAD

    temp.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("GRADIO_TEMP_DIR", str(temp / "gradio"))
    page = build_app(recognizer, temp, model_path)
    gr.mount_gradio_app(app, page.blocks.queue(default_concurrency_limit=4), "/ui",
                        app_kwargs={"routes": page.routes}, max_file_size=MAX_UPLOAD, show_error=False)


def app_from_environment() -> FastAPI:
    """The application of one uvicorn worker process, from the settings ``fer-serve`` left in
    :data:`SETTINGS_ENV`."""
    from fer.core.cli import configure_logging

    configure_logging()
    settings = ServiceSettings.from_json(os.environ[SETTINGS_ENV])
    if settings.threads:
        from fer.serving.batch import use_threads

        use_threads(settings.threads)
    return create_app(settings)
