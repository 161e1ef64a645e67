"""Facial expression recognition in the browser: live webcam and image upload.

    python app/main.py [--model exports/fer2013_effnet_lite0.pkl] [--host 127.0.0.1] [--port 7860] [--share]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import uuid
import weakref
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import cv2  # noqa: E402
import gradio as gr  # noqa: E402
import numpy as np  # noqa: E402

from fer.images import ImageError, load_image  # noqa: E402
from fer.predict import DEFAULT_MODEL, FacePredictor, ModelLoadError  # noqa: E402
from fer.recognize import FaceRecognizer, VideoSession, annotate_frame  # noqa: E402

MAX_FACES_SHOWN = 6
MAX_UPLOAD = "25mb"
STREAM_EVERY_S = 0.1  # up to 10 frames/s per viewer; a frame takes ~10-20 ms on 2 CPU cores
STREAM_TIME_LIMIT_S = 600  # a viewer's stream ends after 10 minutes (press record again to go on)
STREAM_CONCURRENCY = 4  # viewers served at once; more wait in the queue
CACHE_SWEEP = (60, 120)  # every 60 s delete cached frames older than 120 s


class ResultFiles:
    """Annotated uploads as JPEG files with unique names, deleted after ``keep_s`` seconds.

    Gradio caches a returned numpy image under a hash of its bytes and writes it in place, so two requests
    with the same result race: one client can download the file while the other is rewriting it (9 of 200
    uploads failed that way in benchmarks/load_test.py). A returned file path is copied into the cache
    atomically instead. The folder is removed by :meth:`close`, or when the app exits."""

    def __init__(self, keep_s: float = CACHE_SWEEP[1]):
        self.dir = Path(tempfile.mkdtemp(prefix="fer-results-"))
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

    def _sweep(self) -> None:
        cutoff = time.time() - self.keep_s
        for old in self.dir.glob("*.jpg"):
            try:
                if old.stat().st_mtime < cutoff:
                    old.unlink()
            except FileNotFoundError:  # another request swept it first
                pass


def describe(recognizer: FaceRecognizer) -> str:
    return f"""# Facial expression recognition
Every face in view is found (OpenCV) and classified into {len(recognizer.classes)} expressions
({', '.join(recognizer.classes)}) by a fastai/timm model: **{recognizer.predictor.describe()}**.

**Webcam**: allow the camera, press record; boxes and labels follow each face and the panel shows the
largest face's probabilities. **Upload**: drop a photo; each face gets its probabilities, left to right.
Images are processed in memory on this server and not kept."""


def build_app(recognizer: FaceRecognizer) -> gr.Blocks:
    """The page: a Webcam tab (streaming) and an Upload tab, thin wrappers over :mod:`fer.recognize`."""
    results = ResultFiles()

    def stream(frame: np.ndarray | None, session: VideoSession | None):
        session = session or VideoSession()
        try:
            annotated, probs = annotate_frame(recognizer, frame, session)
        except Exception as e:  # a viewer's bad frame must never end the stream
            print(f"frame skipped: {type(e).__name__}: {e}", file=sys.stderr)
            return gr.skip(), gr.skip(), session
        if annotated is None:
            return gr.skip(), gr.skip(), session
        return annotated, probs or {}, session

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
        details = [{"box": [f.box.x, f.box.y, f.box.w, f.box.h], "label": f.label, "probabilities": f.probs}
                   for f in faces]
        more = f" (showing the first {MAX_FACES_SHOWN})" if len(faces) > MAX_FACES_SHOWN else ""
        status = f"Found {len(faces)} face{'s' if len(faces) > 1 else ''}, left to right{more}."
        return annotated, status, details, *labels, *hidden[len(labels):]

    with gr.Blocks(title="fer: facial expression recognition", delete_cache=CACHE_SWEEP) as demo:
        gr.Markdown(describe(recognizer))
        with gr.Tab("Webcam", id="webcam"):
            session = gr.State(None)
            with gr.Row():
                camera = gr.Image(sources=["webcam"], streaming=True, label="Camera", elem_id="camera")
                live = gr.Image(label="Recognised", format="jpeg", elem_id="live", interactive=False)
            main_face = gr.Label(num_top_classes=len(recognizer.classes), label="Largest face", elem_id="main-face")
            camera.stream(stream, [camera, session], [live, main_face, session], stream_every=STREAM_EVERY_S,
                          time_limit=STREAM_TIME_LIMIT_S, concurrency_limit=STREAM_CONCURRENCY,
                          show_progress="hidden", api_name="stream")
        with gr.Tab("Upload", id="upload"):
            with gr.Row():
                upload = gr.Image(sources=["upload", "clipboard"], type="filepath", label="Image", elem_id="upload")
                result = gr.Image(label="Faces", format="jpeg", interactive=False, elem_id="result")
            status = gr.Markdown(elem_id="status")
            with gr.Row():
                labels = [gr.Label(visible=False, num_top_classes=len(recognizer.classes)) for _ in range(MAX_FACES_SHOWN)]
            with gr.Accordion("Details (JSON)", open=False):
                details = gr.JSON(label="faces")
            upload.change(analyze, upload, [result, status, details, *labels], api_name="analyze", concurrency_limit=4,
                          preprocess=False)
    return demo


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=str(DEFAULT_MODEL),
                   help="exported learner (.pkl); loading runs code from the file, so use exports/ or your own")
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (0.0.0.0 to serve the network)")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--share", action="store_true", help="ask Gradio for a temporary public link")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        recognizer = FaceRecognizer(FacePredictor.load(args.model))
    except ModelLoadError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    recognizer.predictor.predict_proba([np.zeros((48, 48), np.uint8)])  # compile now, not on the first visitor
    print(f"model: {args.model} — {recognizer.predictor.describe()} ({recognizer.predictor.backend_used} backend)")
    build_app(recognizer).queue(default_concurrency_limit=4).launch(
        server_name=args.host, server_port=args.port, share=args.share, max_file_size=MAX_UPLOAD, show_error=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
