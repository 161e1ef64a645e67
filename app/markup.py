"""The page's own text and markup: the live view's root (its elements come from static/live/markup.js, the one
place they are written; its start-up script is page/live_view.js, its style static/live/live_view.css)."""

from __future__ import annotations

import html
import json
from pathlib import Path

from fer.core.card import suite_figures, suite_path
from fer.serving.recognize import FaceRecognizer
from fer_app.settings import CACHE_SWEEP, LIVE_PLOT_S, PAGE_DIR, STATIC_DIR, VIDEO_MAX_MB, VIDEO_MAX_S

#: The script that starts the live view's modules in the page (page/), and their style (shared with the static
#: site and <fer-camera>: static/live/).
LIVE_VIEW_JS = (PAGE_DIR / "live_view.js").read_text()
LIVE_VIEW_CSS = (STATIC_DIR / "live" / "live_view.css").read_text()


def describe(recognizer: FaceRecognizer) -> str:
    """The page's opening: its title and one sentence about what it does."""
    return (f"# Facial expression recognition\n"
            f"Finds every face in your camera, a photo or a video and tells which of {len(recognizer.classes)} "
            f"expressions it shows ({', '.join(recognizer.classes)}), and how sure it is.")


def percent(share: float) -> str:
    """A share as a whole percentage (0.706 → ``71%``)."""
    return f"{100 * share:.0f}%"


def accuracy_in_words(suite: dict, source: str) -> str:
    """The evaluation suite's figures (:func:`fer.core.card.suite_figures`) for a user: what share of faces the
    model gets right, on which faces, against which labels, and the command and file they come from."""
    cells = suite["cells"]
    plain, upright, tilted = cells["plain"], cells["crops upright"], cells["crops tilted"]
    recall = plain["fer2013"]["recall"]
    best, worst = sorted(recall, key=recall.get, reverse=True), sorted(recall, key=recall.get)
    return f"""**On faces it never saw in training**: {plain['fer2013']['n']:,} photos of faces from FER-2013's test set
({suite['usage']}: small grey pictures of faces found on the web, each labelled with one of the seven expressions).

- It gives the **same expression as the data set's label for {percent(plain['fer2013']['accuracy'])}** of these faces,
  and the same as **most of ten people who labelled each face again** (the FER+ votes) for
  {percent(plain['ferplus']['accuracy'])}.
- It is best at {best[0]} ({percent(recall[best[0]])} of {best[0]} faces named right) and {best[1]}
  ({percent(recall[best[1]])}), weakest at {worst[0]} ({percent(recall[worst[0]])}) and {worst[1]}
  ({percent(recall[worst[1]])}), which it often mistakes for other expressions.
- **In photos**: the same faces, each pasted into a larger photo, are found {percent(upright['detected'])} of the time when
  upright ({percent(tilted['detected'])} when tilted), and of the faces found it names {percent(upright['fer2013']['accuracy'])}
  right ({percent(tilted['fer2013']['accuracy'])} tilted).

Expressions are judged from one still face: people themselves disagree on many of these faces, and a face can
show an expression the person does not feel. Measured by `python -m fer.evaluate --suite --usage {suite['usage']}`,
which wrote these figures to `{source}` beside the model."""


def accuracy_text(model: str | Path | None) -> str | None:
    """What :func:`accuracy_in_words` says about ``model``, or None when the suite never measured it."""
    suite = suite_figures(model) if model else None
    return accuracy_in_words(suite, suite_path(Path(model).with_suffix(".onnx")).name) if suite else None


def usage_text(recognizer: FaceRecognizer, feedback_on: bool = False, signed_in: bool = False) -> str:
    """How to use each tab, and what the app keeps and for how long (the fold at the foot of the page)."""
    return f"""**Webcam**: press Start and allow the camera; boxes and labels follow each face, the panel shows the
largest face's probabilities and the plot its last {LIVE_PLOT_S} seconds. By default your browser does the
work and frames never leave your device; switch to "the server" to stream them here instead. **Upload**: drop
a photo, or click an example; each face gets its probabilities, left to right, and its quality (size, detector
score, tilt, turn, sharpness).{not_sure_text(recognizer)} **Video**: upload a clip (up to
{VIDEO_MAX_S} s, {VIDEO_MAX_MB} MB, full HD) for an annotated video with tracked face ids, the expressions over time
and a CSV of every frame.

{kept(feedback_on, signed_in)}"""


def kept(feedback_on: bool, signed_in: bool) -> str:
    """What this server keeps of a visit, and for how long."""
    every, age = CACHE_SWEEP
    text = (f"**What this server keeps:** your uploads, camera frames sent to the server and the results made "
            f"from them are deleted {age} s after they were last written (checked every {every} s, so within "
            f"{every + age} s; a video's files {every + age} s after its analysis ends), and all of them when the "
            f"app stops, or when it next starts if it stopped abruptly. In the default live view frames never "
            f"leave your device.")
    if feedback_on:
        text += (" A correction you save (the 48×48 grey face, the expression you picked and what the model "
                 "said) is kept in the operator's corrections folder until the operator deletes it; deletions "
                 "and model switches are recorded there with who and when.")
    if signed_in:
        text += " Your user name is used for the limits on corrections and in that record."
    return text + " Nothing else is stored."


def not_sure_text(recognizer: FaceRecognizer) -> str:
    """What "?" means on this page, when the app's "not sure" rule is on."""
    rule = recognizer.rule
    if not (rule.min_confidence or rule.min_quality):
        return ""
    return (f" A face marked **?** is one the model is not sure of (its top probability under {rule.min_confidence:.0%}"
            f" or its quality under {rule.min_quality:g}): its probabilities are still shown.")


def live_view_markup(config: dict | None, reason: str) -> str:
    """The live view's root with its settings and status line; the page's modules (static/live/main.js, whose
    markup.js writes the elements) bring it to life. Without ``config`` the status says why it is off."""
    data = html.escape(json.dumps(config), quote=True) if config else ""
    status = ("Frames are processed on this device." if config else
              f"The live view is off ({html.escape(reason)}): frames are sent to the server and processed there.")
    return f"""<div class="fer-live" data-config="{data}">
<p class="fer-status">{status}</p>
</div>"""
