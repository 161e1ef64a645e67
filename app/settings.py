"""The app's limits and fixed names, in one place: upload sizes, stream rates, clip bounds, video jobs at once,
corrections' limits, the live view's route."""

from __future__ import annotations

from pathlib import Path

MAX_FACES_SHOWN = 6
MAX_UPLOAD = "25mb"
STREAM_EVERY_S = 0.1  # up to 10 frames/s per viewer; a frame takes ~10-20 ms on 2 CPU cores
STREAM_TIME_LIMIT_S = 600  # a viewer's stream ends after 10 minutes (press record again to go on)
STREAM_CONCURRENCY = 4  # viewers served at once; more wait in the queue
CACHE_SWEEP = (60, 120)  # every 60 s delete cached frames older than 120 s
VIDEO_MAX_S = 30  # uploaded clips: at most 30 s...
VIDEO_MAX_MB = 25  # ...and 25 MB (the upload limit)...
VIDEO_MAX_PIXELS = 1920 * 1080  # ...and full HD
VIDEO_MAX_FRAMES = VIDEO_MAX_S * 120  # ...and 3,600 frames (30 s at 120 frames/s)
VIDEO_JOBS = 2  # clips analysed side by side (the shortest goes first, frame by frame: app/jobs.py); more queue
VIDEO_PLOT_FACES = 4  # the plot shows the faces seen longest
CORRECTIONS_PER_MINUTE = 30  # each user's (or, without sign-in, each address's) corrections a minute
MAX_CORRECTIONS = 5000  # images the --feedback folder may hold before the app refuses more
LIVE_PLOT_S = 30  # the webcam plot: the largest face over the last 30 s
STATIC_DIR = Path(__file__).resolve().parent / "static"  # the live view's modules and onnxruntime-web
#: onnxruntime-web's WebGPU build: in a checkout, not in the wheel (pyproject.toml says why)
WEBGPU_RUNTIME = STATIC_DIR / "vendor" / "onnxruntime-web" / "ort.webgpu.min.mjs"
PAGE_DIR = Path(__file__).resolve().parent / "page"  # the page's own script and style for the live view
WHERE = ("this device", "the server")  # where webcam frames are processed: the Webcam tab's switch
LIVE_ROUTE = "fer-live"  # the live view's files: fer-live/static/..., fer-live/model.onnx, fer-live/yunet.onnx
LIVE_CORRECTION_MAX_BYTES = 64 * 1024  # a correction's JSON: a 48×48 face in base64 and a few fields
#: The page's "not sure" rule (--min-confidence, --min-quality; the library and commands default to off): a face
#: is shown as "?" under a top probability of 0.55 (below it, faces are right less often than wrong) or a quality
#: of 0.35 (the poor band). Chosen on PublicTest's curve: benchmarks/not_sure.py → docs/not_sure.md.
NOT_SURE_MIN_CONFIDENCE, NOT_SURE_MIN_QUALITY = 0.55, 0.35
