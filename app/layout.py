"""The page: Gradio Blocks with the Webcam, Upload and Video tabs, thin wrappers over :mod:`fer.serving`."""

from __future__ import annotations

import base64
import binascii
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr
import numpy as np

from fer.core.images import SERVER_DECODES, ImageError, load_image
from fer.serving.draw import CLASS_COLOURS
from fer.serving.model_files import DEFAULT_MODEL
from fer.serving.recognize import FaceRecognizer, VideoSession, annotate_frame
from fer.serving.timeline import EmotionTimeline
from fer.serving.video import OutputPaths, VideoError, VideoReader, analyze_video, plot_faces
from fer_app.access import Access
from fer_app.corrections import (
    ServedModel,
    feedback_panel,
    show_operator_controls,
    upload_corrections,
    webcam_corrections,
)
from fer_app.files import ResultFiles
from fer_app.jobs import Job, JobCancelled, ShortestFirst, work_left
from fer_app.markup import LIVE_VIEW_CSS, LIVE_VIEW_JS, accuracy_text, describe, live_view_markup, usage_text
from fer_app.routes import live_view_config, live_view_routes
from fer_app.settings import (
    CACHE_SWEEP,
    LIVE_PLOT_S,
    MAX_FACES_SHOWN,
    STREAM_CONCURRENCY,
    STREAM_EVERY_S,
    STREAM_TIME_LIMIT_S,
    VIDEO_JOBS,
    VIDEO_MAX_FRAMES,
    VIDEO_MAX_MB,
    VIDEO_MAX_PIXELS,
    VIDEO_MAX_S,
    VIDEO_PLOT_FACES,
    WHERE,
)


def upload_path(upload: dict | str | None) -> str | None:
    """The file of a raw upload value (``preprocess=False``: Gradio has checked it is one of its uploads)."""
    return upload.get("path") if isinstance(upload, dict) else getattr(upload, "path", upload)


def stream_frame(value: dict | str | np.ndarray | None) -> np.ndarray | None:
    """A webcam frame sent to the server, decoded within the app's limits (:func:`load_image` with the shared
    decode budget: a forged frame of any size costs no more than a photo); None when it is no usable image. An
    array (the function called directly, not through Gradio) is already decoded and comes back as it is."""
    if isinstance(value, np.ndarray):
        return value
    url = value.get("url") if isinstance(value, dict) else None
    try:
        if isinstance(url, str) and url.startswith("data:") and not upload_path(value):
            return load_image(base64.b64decode(url.split(",", 1)[-1], validate=True), budget=SERVER_DECODES)
        path = upload_path(value)
        return load_image(path, name=Path(path).name, budget=SERVER_DECODES) if path else None
    except (ImageError, binascii.Error, ValueError) as e:
        print(f"frame skipped: {e}", file=sys.stderr)
        return None


def check_clip(reader: VideoReader) -> None:
    """Refuse clips over the app's bounds (length, resolution) before any work: from the header before any frame
    is decoded (:class:`VideoReader`), then from the first frame if its size differs."""
    if reader.duration_s > VIDEO_MAX_S:
        raise VideoError(f"{reader.path.name} is {reader.duration_s:.0f} s long; this app takes clips of up to "
                         f"{VIDEO_MAX_S} s (use `python -m fer.video` for longer ones)")
    if reader.width * reader.height > VIDEO_MAX_PIXELS:
        raise VideoError(f"{reader.path.name} is {reader.width}×{reader.height}; this app takes up to full HD "
                         f"(1920×1080; use `python -m fer.video` for larger ones)")


def face_title(index: int, face) -> str:
    """An uploaded photo's face: its number, label ("? not sure" under the app's rule) and quality band."""
    said = face.label or f"? not sure (perhaps {face.predicted})"
    seen = f"; face quality {face.quality.band}" if face.quality else ""
    limit = f", limited by {face.quality.limit}" if face.quality and face.quality.limit else ""
    return f"face {index + 1}: {said}{seen}{limit}"


def video_status(report, rows: list[dict]) -> str:
    """The Video tab's status line: frames, size, seconds and face ids, and why the results stop early when they do."""
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


#: The example inputs the Upload and Video tabs offer (public domain and CC0: examples/LICENSE.md).
EXAMPLES_DIR = Path(__file__).resolve().parent / "examples"
PHOTO_EXAMPLES = ("astronaut.jpg", "two_faces.jpg")
CLIP_EXAMPLES = ("clip.mp4",)
EXAMPLES_CREDIT = ("Examples: Eileen Collins (NASA) and Grace Hopper (U.S. Navy), public domain; the coffee table, "
                   "CC0 (Rachel Michetti).")


@dataclass
class Page:
    """The app: its Gradio ``blocks`` and the HTTP ``routes`` served beside them (:func:`live_view_routes`)."""

    blocks: gr.Blocks
    routes: list = field(default_factory=list)


def build_app(recognizer: FaceRecognizer, temp: Path | None = None, model: str | Path | None = None,
              feedback_dir: Path | None = None, access: Access | None = None) -> Page:
    """The page: a Webcam tab (the live view in the page by default, :func:`live_view`, or streaming to the
    server, with a live plot), an Upload tab and a Video tab, thin wrappers over :mod:`fer.serving.recognize` and
    :mod:`fer.video`. Results are written under ``temp`` (default: the system's temporary folder); ``model`` is
    the model file the app started with (the page's live view runs its ``.onnx``). With ``feedback_dir``,
    corrections are saved there (:mod:`fer.serving.feedback`) and a panel shows them and switches between the started
    model and personal ones (``access``: who signs in, and the operator, who alone deletes and switches)."""
    results = ResultFiles(parent=temp)
    results.sweep_every(CACHE_SWEEP[0])
    served = ServedModel(recognizer, model or DEFAULT_MODEL, feedback_dir, access) if feedback_dir else None
    video_jobs = ShortestFirst()

    def stream(frame: dict | None, session: VideoSession | None, timeline: EmotionTimeline | None):
        session = session or VideoSession()
        timeline = timeline or EmotionTimeline(window_s=LIVE_PLOT_S)
        try:
            annotated, probs = annotate_frame(recognizer, stream_frame(frame), session)
        except Exception as e:  # a viewer's bad frame must never end the stream
            print(f"frame skipped: {type(e).__name__}: {e}", file=sys.stderr)
            return gr.skip(), gr.skip(), session, gr.skip(), timeline
        if annotated is None:
            return gr.skip(), gr.skip(), session, gr.skip(), timeline
        return annotated, probs or {}, session, live_plot_update(timeline, probs), timeline

    def analyze_clip(upload: dict | str | None, request: gr.Request, progress=gr.Progress()):  # noqa: B008
        # preprocess=False as for photos: the raw upload's path, read by fer.video with clear errors
        path = upload_path(upload)
        if not path:
            return None, None, None, "Upload a video first."
        path = Path(path)
        try:
            if path.stat().st_size > VIDEO_MAX_MB * 1024 * 1024:
                return None, None, None, f"**Cannot use this file.** It is over {VIDEO_MAX_MB} MB."
        except FileNotFoundError:  # the queue was long: the upload outlived its stated time
            return None, None, None, "**The upload is gone** (it waited too long in the queue): upload it again."
        out = OutputPaths(results.folder(), "clip")  # H.264 MP4: plays in browsers
        with video_jobs.job(request.session_hash or "api") as job:
            pace = ClipPace(video_jobs, job, progress)
            try:
                report, rows = analyze_video(recognizer, path, out=out, check=pace.check, on_frame=pace.frame,
                                             max_frames=VIDEO_MAX_FRAMES)
            except VideoError as e:
                return None, None, None, f"**Cannot use this file.** {str(e).replace(str(path), path.name)}"
            except JobCancelled as e:
                return None, None, None, f"**Stopped:** {e}."
        longest = sorted(report.face_ids, key=lambda i: -sum(r["face_id"] == i for r in rows))[:VIDEO_PLOT_FACES]
        plot = plot_faces(rows, sorted(longest), recognizer.classes, out.out_dir / "faces.png",
                          "Expressions over time") if longest else None
        csv_file = report.outputs.get("csv")
        waited = f" Waited {job.waited_s:.0f} s while shorter clips went first." if job.waited_s >= 1 else ""
        return str(out.video), plot and str(plot), csv_file, video_status(report, rows) + waited

    def stop_clip(request: gr.Request):
        stopped = video_jobs.cancel(request.session_hash or "api")
        return "**Stopped.**" if stopped else "Nothing to stop."

    def analyze(upload: dict | str | None):
        # preprocess=False: Gradio's own image decoding would fail with a traceback on bad files,
        # so the raw upload (a file path) comes here and fer.core.images reads it with clear errors
        path = upload_path(upload)
        hidden = [gr.Label(visible=False, value=None)] * MAX_FACES_SHOWN
        if not path:
            return None, "Upload an image first.", [], *hidden
        try:
            image = load_image(path, name=Path(path).name, budget=SERVER_DECODES)
        except ImageError as e:
            return None, f"**Cannot use this file.** {e}", [], *hidden
        annotated, faces = recognizer.annotate(image)
        annotated = results.save(annotated)
        if not faces:
            return annotated, "No face found. Try a clearer, frontal, well-lit face.", [], *hidden
        labels = [gr.Label(value=f.probs, visible=True, label=face_title(i, f)) for i, f in enumerate(faces[:MAX_FACES_SHOWN])]
        details = [f.as_dict() for f in faces]
        more = f" (showing the first {MAX_FACES_SHOWN})" if len(faces) > MAX_FACES_SHOWN else ""
        status = "Found 1 face." if len(faces) == 1 else f"Found {len(faces)} faces, left to right{more}."
        return annotated, status, details, *labels, *hidden[len(labels):]

    with gr.Blocks(title="fer: facial expression recognition", delete_cache=CACHE_SWEEP) as demo:
        gr.Markdown(describe(recognizer), elem_id="intro")
        accuracy = accuracy_text(model)
        if accuracy:
            with gr.Accordion("How accurate is it?", open=False, elem_id="accuracy"):
                gr.Markdown(accuracy)
        corrections_count = None
        if served:
            corrections_count, operator_controls = feedback_panel(served)

            def operator_sees_controls(request: gr.Request):
                return show_operator_controls(served, request)

            demo.load(operator_sees_controls, None, operator_controls, api_name=False, show_progress="hidden")
        with gr.Tab("Webcam", id="webcam"):
            where, live_files = live_view(recognizer, model, feedback_on=served is not None)
            in_page = bool(live_files)
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
            # preprocess=False: each frame is decoded by stream_frame, within the app's limits
            camera.stream(stream, [camera, session, timeline], [live, main_face, session, live_plot, timeline],
                          stream_every=STREAM_EVERY_S, time_limit=STREAM_TIME_LIMIT_S, preprocess=False,
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
            gr.Examples([[str(EXAMPLES_DIR / name)] for name in PHOTO_EXAMPLES], inputs=upload, label="Try an example",
                        elem_id="upload-examples")
            gr.Markdown(EXAMPLES_CREDIT, elem_classes="examples-credit")
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
                    stop = gr.Button("Stop analysing", size="sm", variant="stop", elem_id="clip-stop")
                    clip_status = gr.Markdown(elem_id="clip-status")
                    clip_csv = gr.File(label="Every frame's faces (CSV)", interactive=False, elem_id="clip-csv")
                    clip_examples = gr.Examples([[str(EXAMPLES_DIR / name)] for name in CLIP_EXAMPLES], inputs=clip,
                                                label="Try an example", elem_id="clip-examples")
                    gr.Markdown(EXAMPLES_CREDIT, elem_classes="examples-credit")
                clip_result = gr.Video(label="Faces", interactive=False, elem_id="clip-result")
            # no label badge: it would cover the plot's top left; the figure carries its own title
            clip_plot = gr.Image(label="Expressions over time", show_label=False, type="filepath", interactive=False,
                                 elem_id="clip-plot")
            # VIDEO_JOBS clips side by side, taking turns frame by frame (app/jobs.py); more wait in the queue,
            # which shows each viewer its place; the progress bar counts frames (and says when a clip waits)
            analysing = clip.upload(analyze_clip, clip, [clip_result, clip_plot, clip_csv, clip_status],
                                    api_name="analyze_video", concurrency_limit=VIDEO_JOBS, preprocess=False)
            # an example is analysed as an upload is (clip.upload does not fire when an example fills the box)
            example = clip_examples.load_input_event.then(analyze_clip, clip,
                                                          [clip_result, clip_plot, clip_csv, clip_status],
                                                          concurrency_limit=VIDEO_JOBS, preprocess=False,
                                                          api_name=False)
            stop.click(stop_clip, None, clip_status, cancels=[analysing, example], api_name="stop_video")
        with gr.Accordion("How to use it, and what is kept", open=False, elem_id="usage"):
            gr.Markdown(usage_text(recognizer, feedback_on=served is not None, signed_in=bool(access and access.on)))
    return Page(demo, live_view_routes(live_files, served, access))

@dataclass
class ClipPace:
    """One clip's turns (:class:`fer_app.jobs.ShortestFirst`) and its progress bar: ``check`` refuses clips over the
    bounds and learns the clip's size from its header, ``frame`` runs before each frame."""

    jobs: ShortestFirst
    job: Job
    progress: gr.Progress
    pixels: int = 0
    expected: int = 0
    shown: float = 0.0

    def check(self, reader: VideoReader) -> None:
        """Refuse a clip over the bounds, and learn its size and length from its header."""
        check_clip(reader)
        self.pixels, self.expected = reader.width * reader.height, reader.frames_expected

    def frame(self, index: int) -> None:
        """Before each frame: wait for this clip's turn; move the progress bar a few times a second."""
        left = work_left(self.expected, index, self.pixels, VIDEO_MAX_FRAMES)
        self.jobs.turn(self.job, left, waiting=lambda job: self.show(index, "waiting: a shorter clip goes first"))
        if time.monotonic() - self.shown > 0.25:  # a few updates a second, not one a frame
            self.show(index, "analysing")

    def show(self, index: int, what: str) -> None:
        """Show ``index`` frames done (of the clip's length) and what the clip is doing."""
        self.shown = time.monotonic()
        self.progress((index, min(self.expected, VIDEO_MAX_FRAMES) or None), desc=what, unit="frames")
