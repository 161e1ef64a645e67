"""Facial expression recognition in the browser: live webcam, image upload and video upload.

    python app/main.py [--model exports/fer2013_effnet_lite0.onnx] [--host 127.0.0.1] [--port 7860] [--share]
        [--feedback DIR]

It serves an ONNX model (the default), without torch and fastai; a ``.pkl`` learner needs the training install.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
from pathlib import Path

from fer.core.cli import configure_logging
from fer.core.extras import exit_on_missing_extra
from fer.serving import feedback
from fer.serving.cli import DEFAULT_MODEL_HELP, add_detector_options, check_model_options
from fer.serving.model_files import ModelLoadError, default_model
from fer.serving.recognize import FaceRecognizer
from fer_app.files import app_temp_folder
from fer_app.layout import build_app
from fer_app.settings import MAX_UPLOAD, NOT_SURE_MIN_CONFIDENCE, NOT_SURE_MIN_QUALITY


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None, help=DEFAULT_MODEL_HELP)
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (0.0.0.0 to serve the network)")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--share", action="store_true", help="ask Gradio for a temporary public link")
    p.add_argument("--feedback", metavar="DIR",
                   help="let the page save corrections (the face as the model sees it and the right label) in "
                        "DIR/<class>/ with DIR/manifest.csv, and switch to personal models in DIR (python -m "
                        "fer.personalize); off by default, so nobody's face is stored unasked")
    add_detector_options(p)
    p.set_defaults(min_confidence=NOT_SURE_MIN_CONFIDENCE, min_quality=NOT_SURE_MIN_QUALITY)  # the page's own default
    args = p.parse_args(argv)
    check_model_options(p, args)
    args.model = args.model or str(default_model())
    return args


def load_recognizer(args: argparse.Namespace) -> FaceRecognizer:
    """The model named by ``--model`` (.pkl or .onnx, :func:`fer.serving.model_files.load_predictor`) with the chosen
    detector, ready to answer (compiled now, not on the first visitor). Raises ModelLoadError."""
    return FaceRecognizer.load(args.model, args.detector, args.min_face, args.score, args.min_confidence,
                               args.min_quality)


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
    page = build_app(recognizer, temp, args.model, feedback_dir)
    demo = page.blocks.queue(default_concurrency_limit=4)
    gradio_says = io.StringIO()
    with contextlib.redirect_stdout(gradio_says):  # the app speaks for itself, below
        _, local_url, share_url = demo.launch(server_name=args.host, server_port=args.port, share=args.share,
                                              max_file_size=MAX_UPLOAD, show_error=False, quiet=True,
                                              prevent_thread_lock=True,
                                              app_kwargs={"routes": page.routes})
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
