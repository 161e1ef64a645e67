"""The page's own text and markup: the live view's root (its elements come from static/live/markup.js, the one
place they are written; its start-up script is page/live_view.js, its style static/live/live_view.css)."""

from __future__ import annotations

import html
import json
from pathlib import Path

from fer.core.card import describe_suite, suite_figures
from fer.serving.recognize import FaceRecognizer
from fer_app.settings import CACHE_SWEEP, LIVE_PLOT_S, PAGE_DIR, STATIC_DIR, VIDEO_MAX_MB, VIDEO_MAX_S

#: The script that starts the live view's modules in the page (page/), and their style (shared with the static
#: site and <fer-camera>: static/live/).
LIVE_VIEW_JS = (PAGE_DIR / "live_view.js").read_text()
LIVE_VIEW_CSS = (STATIC_DIR / "live" / "live_view.css").read_text()


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


def live_view_markup(config: dict | None, reason: str) -> str:
    """The live view's root with its settings and status line; the page's modules (static/live/main.js, whose
    markup.js writes the elements) bring it to life. Without ``config`` the status says why it is off."""
    data = html.escape(json.dumps(config), quote=True) if config else ""
    status = ("Frames are processed on this device." if config else
              f"The live view is off ({html.escape(reason)}): frames are sent to the server and processed there.")
    return f"""<div class="fer-live" data-config="{data}">
<p class="fer-status">{status}</p>
</div>"""
