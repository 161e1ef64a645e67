"""Facial expression recognition in the browser: live webcam, image upload and video upload.

    python app/main.py [--model exports/fer2013_effnet_lite0.onnx] [--host 127.0.0.1] [--port 7860] [--share]
        [--feedback DIR] [--auth USER:PASS ... | --auth-file FILE] [--operator USER]

It serves an ONNX model (the default), without torch and fastai; a ``.pkl`` learner needs the training install.
Shared (``--share`` or a ``--host`` other than this computer) with ``--feedback``, it needs sign-in (``--auth``
or ``--auth-file``) and refuses to start without; docs/sharing.md says what a shared app guards against.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
from pathlib import Path

from fer.core.cli import configure_logging
from fer.core.extras import exit_on_missing_extra
from fer.core.images import return_freed_memory
from fer.serving import feedback
from fer.serving.cli import DEFAULT_MODEL_HELP, add_detector_options, check_model_options
from fer.serving.model_files import ModelLoadError, default_model
from fer.serving.recognize import FaceRecognizer
from fer_app.access import Access, AccessError, is_loopback, read_users
from fer_app.files import app_temp_folder, remove_dead_runs, sweep_every
from fer_app.layout import build_app
from fer_app.origin import guarded_lifespan
from fer_app.settings import CACHE_SWEEP, MAX_UPLOAD, NOT_SURE_MIN_CONFIDENCE, NOT_SURE_MIN_QUALITY


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The app's options (``--help`` lists them)."""
    p = argparse.ArgumentParser(prog="fer-app", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None, help=DEFAULT_MODEL_HELP)
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (0.0.0.0 to serve the network)")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--share", action="store_true", help="ask Gradio for a temporary public link")
    p.add_argument("--feedback", metavar="DIR",
                   help="let the page save corrections (the face as the model sees it and the right label) in "
                        "DIR/<class>/ with DIR/manifest.csv, and switch to personal models in DIR (python -m "
                        "fer.personalize); off by default, so nobody's face is stored unasked")
    p.add_argument("--auth", action="append", default=[], metavar="USER:PASS",
                   help="sign-in: a user and password (8 characters or more; repeat for more users); needed with "
                        "--feedback when the app is shared (--share, or a --host other than this computer)")
    p.add_argument("--auth-file", metavar="FILE", help="sign-in: users from FILE, one USER:PASS a line (# comments)")
    p.add_argument("--operator", metavar="USER",
                   help="the user who may delete all corrections and switch the model (default: the first user)")
    add_detector_options(p)
    p.set_defaults(min_confidence=NOT_SURE_MIN_CONFIDENCE, min_quality=NOT_SURE_MIN_QUALITY)  # the page's own default
    args = p.parse_args(argv)
    check_model_options(p, args)
    args.model = args.model or str(default_model())
    return args


def sign_in(args: argparse.Namespace) -> Access:
    """Who signs in (``--auth``, ``--auth-file``, ``--operator``); AccessError when the options cannot be used,
    or when a shared app (``--share``, a non-loopback ``--host``) would take corrections without sign-in."""
    access = Access(read_users(args.auth, args.auth_file), args.operator)
    if args.operator and not access.on:
        raise AccessError("--operator names one of the users of --auth or --auth-file")
    if args.feedback and not access.on and (args.share or not is_loopback(args.host)):
        shared = "--share" if args.share else f"--host {args.host}"
        raise AccessError(f"{shared} with --feedback needs sign-in (--auth USER:PASS or --auth-file FILE): anyone "
                          f"reaching the app could otherwise save, delete and switch for everyone")
    return access


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
    """Run the app (``fer-app``): load the model, build the page and serve it until stopped; returns the exit status."""
    args = parse_args(argv)
    configure_logging()
    return_freed_memory()  # many request threads decode images: each one's peak is not kept for good
    try:
        access = sign_in(args)
    except AccessError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
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
    for dead in remove_dead_runs():
        print(f"removed the temporary files of a run that did not stop cleanly: {dead}")
    temp = app_temp_folder()
    print(f"temporary files: {temp} (each deleted {CACHE_SWEEP[1]} s after it was written, all when the app "
          f"stops, or at the next start if it is killed)")
    sweep_every(temp / "gradio", *CACHE_SWEEP)
    page = build_app(recognizer, temp, args.model, feedback_dir, access)
    demo = page.blocks.queue(default_concurrency_limit=4)
    gradio_says = io.StringIO()
    with contextlib.redirect_stdout(gradio_says):  # the app speaks for itself, below
        _, local_url, share_url = demo.launch(server_name=args.host, server_port=args.port, share=args.share,
                                              max_file_size=MAX_UPLOAD, show_error=False, quiet=True,
                                              prevent_thread_lock=True,
                                              auth=access.check if access.on else None,
                                              auth_message="Sign in to use this app." if access.on else None,
                                              app_kwargs={"routes": page.routes, "lifespan": guarded_lifespan})
    print(f"serving on {local_url}", flush=True)
    if access.on:
        print(f"sign-in: {len(access.users)} user(s); operator: {access.operator}", flush=True)
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
