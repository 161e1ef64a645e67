"""fer-serve: facial expression recognition over HTTP (FastAPI on uvicorn).

    fer-serve [--host 127.0.0.1] [--port 8000] [--workers N] [--token TOKEN] [--ui] [--model MODEL.onnx]

    POST /v1/faces          a photo (the body, or the form field "file") → its faces as JSON
    POST /v1/videos         a video → a job (202); GET /v1/videos/ID its progress, .../result its rows; DELETE
    GET  /v1/model          the model card          GET /healthz    liveness (no token)
    GET  /docs              the API, to try out     GET /openapi.json

Errors are problem details (RFC 9457). Photos beyond --concurrency + --queue per process get 503 with Retry-After.
With --token (or $FER_TOKEN) every path but /healthz needs "Authorization: Bearer TOKEN". --workers N runs N
processes on the port; photos are stateless, video jobs live on this machine (any of its workers answers for
them). --ui mounts the Gradio page at /ui/. See docs/serve.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import sys
import tempfile
from pathlib import Path

from fer.core.extras import exit_on_missing_extra

TOKEN_ENV = "FER_TOKEN"


def positive(kind):
    """An argparse type: ``kind`` (int or float) above 0."""
    def parse(text: str):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{text}: must be above 0")
        return value
    parse.__name__ = kind.__name__
    return parse


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command's options (``--help`` lists them); exits with a message on a bad value."""
    from fer.serving.cli import add_model_options, check_model_options

    p = argparse.ArgumentParser(prog="fer-serve", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (0.0.0.0: every network; default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=positive(int), default=1, metavar="N",
                   help="server processes on the port, each with its own model (default 1)")
    p.add_argument("--token", default=os.environ.get(TOKEN_ENV),
                   help=f"require 'Authorization: Bearer TOKEN' on everything but /healthz (default: ${TOKEN_ENV})")
    p.add_argument("--ui", action="store_true", help="also serve the Gradio page at /ui/ (one worker process)")
    p.add_argument("--allow-origin", action="append", default=[], metavar="ORIGIN",
                   help="another origin whose pages may POST and DELETE here, e.g. https://example.org (a proxy's "
                        "public name); repeatable")
    p.add_argument("--access-log", action="store_true", help="log every request")
    limits = p.add_argument_group("limits")
    limits.add_argument("--max-bytes", type=positive(int), default=25 * 1024 * 1024, metavar="B",
                        help="largest request body, photo or video (default 25 MiB)")
    limits.add_argument("--max-pixels", type=positive(int), default=25_000_000, metavar="P",
                        help="largest photo in pixels, read from its header before decoding (default 25 million)")
    limits.add_argument("--max-video-s", type=positive(float), default=30.0, metavar="S",
                        help="longest video in seconds (default 30)")
    limits.add_argument("--max-video-pixels", type=positive(int), default=1920 * 1080, metavar="P",
                        help="largest video frame in pixels (default 1920×1080)")
    queue = p.add_argument_group("queue (per worker process)")
    queue.add_argument("--concurrency", type=positive(int), default=2, metavar="N",
                       help="photos analysed at once (default 2)")
    queue.add_argument("--queue", type=int, default=32, metavar="N",
                       help="photos admitted to wait beyond those; more get 503 with Retry-After (default 32)")
    queue.add_argument("--video-queue", type=positive(int), default=4, metavar="N",
                       help="video jobs queued or running; more get 503 (default 4)")
    add_model_options(p)
    args = p.parse_args(argv)
    check_model_options(p, args)
    if args.queue < 0:
        p.error(f"--queue {args.queue}: must be 0 or more")
    if args.token is not None and not args.token.strip():
        p.error("--token: the token is empty")
    if args.ui and args.workers > 1:
        p.error("--ui needs --workers 1: the page's queue lives in one process")
    return args


def settings_of(args: argparse.Namespace, jobs_dir: Path):
    """The service's settings from the parsed options; numeric threads shared out between the workers."""
    from fer_app.service import ServiceSettings

    threads = max(1, (os.cpu_count() or 1) // args.workers) if args.workers > 1 else None
    return ServiceSettings(args.model, args.detector, args.min_face, args.score, args.token, args.max_bytes,
                           args.max_pixels, args.max_video_s, args.max_video_pixels, args.concurrency, args.queue,
                           args.video_queue, threads, str(jobs_dir), args.ui,
                           tuple(o.rstrip("/") for o in args.allow_origin))


def port_problem(host: str, port: int) -> str | None:
    """Why the server could not listen on ``host:port``, or None."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as e:
            return f"cannot listen on {host}:{port}: {e.strerror or e}"
    return None


@exit_on_missing_extra
def main(argv: list[str] | None = None) -> int:
    """Run ``fer-serve``: check the port, then serve the HTTP API with uvicorn until stopped; returns the exit
    status."""
    args = parse_args(argv)
    if problem := port_problem(args.host, args.port):
        print(f"error: {problem}", file=sys.stderr)
        return 2
    import uvicorn

    from fer.core.cli import configure_logging
    from fer.serving.model_files import ModelLoadError, default_model
    from fer.serving.recognize import FaceRecognizer
    from fer_app.service import SETTINGS_ENV, create_app

    configure_logging()
    # uvicorn shuts down gracefully on SIGTERM, then raises it again: exit normally then, so the finally below runs
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    temp = Path(tempfile.mkdtemp(prefix="fer-serve-"))
    try:
        settings = settings_of(args, temp / "jobs")
        try:
            recognizer = FaceRecognizer.load(args.model, args.detector, args.min_face, args.score)
        except ModelLoadError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        print(f"model: {args.model or default_model()} — {recognizer.predictor.describe()}; detector: "
              f"{recognizer.detector_name}")
        if args.workers == 1:
            target = create_app(settings, recognizer)
        else:  # each worker process builds its own application from the settings
            os.environ[SETTINGS_ENV] = settings.to_json()
            target, recognizer = "fer_app.service:app_from_environment", None
        url = f"http://{'[' + args.host + ']' if ':' in args.host else args.host}:{args.port}"
        print(f"serving on {url} ({args.workers} worker process{'es' * (args.workers > 1)}); API: {url}/docs"
              + (f"; page: {url}/ui/" if args.ui else ""), flush=True)
        print(f"temporary files: {temp} (video jobs; deleted when the server stops)", flush=True)
        print("token required (Authorization: Bearer ...)" if args.token else
              "no token: whoever reaches this address can use it (--token or $FER_TOKEN to require one)", flush=True)
        uvicorn.run(target, host=args.host, port=args.port, workers=args.workers, factory=args.workers > 1,
                    log_level="info" if args.access_log else "warning", access_log=args.access_log,
                    timeout_graceful_shutdown=10)
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
