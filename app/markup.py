"""The page's own text and markup (the live view's elements; its script and style are page/live_view.js and .css)."""

from __future__ import annotations

import html
import json
from pathlib import Path

from fer.core.card import describe_suite, suite_figures
from fer.serving.recognize import FaceRecognizer
from fer_app.settings import CACHE_SWEEP, LIVE_PLOT_S, PAGE_DIR, VIDEO_MAX_MB, VIDEO_MAX_S

#: The script that starts the live view's modules in the page, and their style (files in page/).
LIVE_VIEW_JS = (PAGE_DIR / "live_view.js").read_text()
LIVE_VIEW_CSS = (PAGE_DIR / "live_view.css").read_text()


def describe(recognizer: FaceRecognizer, model: str | Path | None = None) -> str:
    suite = suite_figures(model) if model else None
    measured = f"\n\nHow well it does where it matters: {describe_suite(suite)}." if suite else ""
    return f"""# Facial expression recognition
Every face in view is found ({recognizer.detector_name}) and classified into {len(recognizer.classes)}
expressions ({', '.join(recognizer.classes)}) by a fastai/timm model: **{recognizer.predictor.describe()}**.{measured}

**Webcam**: press Start and allow the camera; boxes and labels follow each face, the panel shows the
largest face's probabilities and the plot its last {LIVE_PLOT_S} seconds. By default your browser does the
work and frames never leave your device; switch to "the server" to stream them here instead. **Upload**: drop
a photo; each face gets its probabilities, left to right, and its quality (size, detector score, tilt, turn,
sharpness).{not_sure_text(recognizer)} **Video**: upload a clip (up to {VIDEO_MAX_S} s, {VIDEO_MAX_MB} MB, full HD)
for an annotated video with tracked face ids, the expressions over time and a CSV of every frame.
Uploads, camera frames streamed to the server and results stay in a temporary folder on this server for at most
{CACHE_SWEEP[0] + CACHE_SWEEP[1]} seconds and are deleted when the app stops; nothing else is stored."""


def not_sure_text(recognizer: FaceRecognizer) -> str:
    """What "?" means on this page, when the app's "not sure" rule is on."""
    rule = recognizer.rule
    if not (rule.min_confidence or rule.min_quality):
        return ""
    return (f" A face marked **?** is one the model is not sure of (its top probability under {rule.min_confidence:.0%}"
            f" or its quality under {rule.min_quality:g}): its probabilities are still shown.")


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
