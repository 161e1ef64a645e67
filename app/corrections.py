"""Corrections and personal models (``--feedback DIR``): the served model, its panel and the correction controls.

Saving a correction is for every signed-in viewer, within :data:`~fer_app.settings.CORRECTIONS_PER_MINUTE` each and
:data:`~fer_app.settings.MAX_CORRECTIONS` in the folder; deleting them all and switching the model are for the
operator alone (:class:`fer_app.access.Access`), and each is recorded with who and when (``DIR/actions.log``).
"""

from __future__ import annotations

import logging
from pathlib import Path

import gradio as gr
import numpy as np

from fer.core.images import SERVER_DECODES, ImageError, load_image
from fer.serving import feedback
from fer.serving.detect import Box
from fer.serving.live import browser_model
from fer.serving.model_files import DEFAULT_ONNX, ModelLoadError, load_predictor
from fer.serving.recognize import FaceRecognizer, VideoSession
from fer_app.access import Access, RateLimit, who
from fer_app.settings import CORRECTIONS_PER_MINUTE, MAX_CORRECTIONS

logger = logging.getLogger("fer_app")

#: What a viewer who is not the operator is told when asking for an operator's action.
OPERATOR_ONLY = "Only the operator of this app may delete corrections or switch the model."


def requester(request: gr.Request | None) -> tuple[str | None, str]:
    """(signed-in user or None, a line naming who sent ``request``) of a Gradio event."""
    username = getattr(request, "username", None) if request is not None else None
    client = getattr(getattr(request, "client", None), "host", None) if request is not None else None
    return username, who(username, client)


class ServedModel:
    """The model the page serves and the feedback folder its corrections go to. The operator can switch the
    model between the one the app started with, the shipped one and the personal ones in the folder
    (``python -m fer.personalize --out DIR/NAME``); a switch is for every viewer. The page names models by
    their menu keys (``started``, ``shipped``, ``personal/NAME``), never by their paths on this server."""

    def __init__(self, recognizer: FaceRecognizer, path: str | Path, folder: Path, access: Access | None = None):
        self.recognizer, self.path, self.folder = recognizer, Path(path), Path(folder)
        self.started = self.path
        self.access = access or Access()
        self.rate = RateLimit(CORRECTIONS_PER_MINUTE, 60.0)

    @property
    def name(self) -> str:
        """The live model's file name."""
        return self.path.name

    def models(self) -> dict[str, Path]:
        """Menu key → model file: the started one, the shipped ONNX, the personal ones in the folder."""
        found = {"started": self.started}
        if DEFAULT_ONNX.exists() and DEFAULT_ONNX.resolve() != self.started.resolve():
            found["shipped"] = DEFAULT_ONNX
        for path in feedback.personal_models(self.folder):
            if path.resolve() not in {p.resolve() for p in found.values()}:
                found[f"personal/{path.name}"] = path
        return found

    def choices(self) -> list[tuple[str, str]]:
        """(label, key) of every model the menu offers (:meth:`models`)."""
        return [(f"{key.split('/')[0]}: {path.name}", key) for key, path in self.models().items()]

    def live_key(self) -> str:
        """The menu key of the live model."""
        return next((k for k, p in self.models().items() if p.resolve() == self.path.resolve()), "started")

    def switch(self, key: str, request: gr.Request | None = None) -> str:
        """Serve the model of menu ``key`` from now on (the operator only; recorded); a line saying which
        model is live."""
        username, sender = requester(request)
        if not self.access.is_operator(username):
            return f"**{OPERATOR_ONLY}** {self.live_line()}"
        path = self.models().get(key)
        if path is None:
            return f"**Could not switch.** {key!r} is not in the menu (look for new models). {self.live_line()}"
        if path.resolve() != self.path.resolve():
            try:
                predictor = load_predictor(path)
                predictor.predict_proba([np.zeros((48, 48), np.uint8)])  # compiled now, not on the next face
            except ModelLoadError as e:
                return f"**Could not switch.** {e}. {self.live_line()}"
            if predictor.classes != self.recognizer.classes:
                return f"**Could not switch.** {path.name} has other classes ({', '.join(predictor.classes)}). " \
                       f"{self.live_line()}"
            self.recognizer.predictor, self.path = predictor, path
            logger.warning(feedback.record_action(self.folder, sender, f"switched the model to {path.name}"))
        return self.live_line()

    def live_line(self) -> str:
        """One line for the page: which model is live, and what it is."""
        return f"Live model: **{self.name}** ({self.recognizer.predictor.describe()})."

    @property
    def onnx(self) -> Path | None:
        """The ONNX file of the live model, which the page's live view runs (None: it has none)."""
        return browser_model(self.path)[0]

    def delete_all(self, request: gr.Request | None = None) -> str:
        """Delete every correction (the operator only; recorded); a line for the page."""
        username, sender = requester(request)
        if not self.access.is_operator(username):
            return f"**{OPERATOR_ONLY}** {feedback.summary(self.folder)}"
        removed = feedback.delete_all(self.folder)
        logger.warning(feedback.record_action(self.folder, sender, f"deleted all {removed} corrections"))
        return f"Deleted {removed} correction(s). {feedback.summary(self.folder)}"

    def save_face(self, face: np.ndarray, label: str, source: str, probs: dict[str, float],
                  predicted: str | None = None, model: str | None = None, sender: str = "") -> Path:
        """Save one correction (:func:`fer.serving.feedback.save_correction`; ``model``: default the live model's name)
        for ``sender`` (who, :func:`fer_app.access.who`: the rate limit's key); FeedbackError or OSError when it
        cannot be."""
        if not self.rate.allow(sender):
            raise feedback.FeedbackError(f"at most {CORRECTIONS_PER_MINUTE} corrections a minute; wait a little")
        predicted = predicted or (max(probs, key=probs.get) if probs else "")
        return feedback.save_correction(self.folder, face, label, source, model or self.name, predicted, probs,
                                        self.recognizer.classes, max_corrections=MAX_CORRECTIONS)

    def save(self, face: np.ndarray, label: str | None, source: str, probs: dict[str, float],
             request: gr.Request | None = None) -> str:
        """Save one correction; a line for the page."""
        if not label:
            return "Pick the right expression first."
        try:
            path = self.save_face(face, label, source, probs, sender=requester(request)[1])
        except (feedback.FeedbackError, OSError) as e:
            return f"**Not saved.** {e}"
        predicted = max(probs, key=probs.get) if probs else ""
        return f"Saved as **{label}** ({path.parent.name}/{path.name}; the model said {predicted})."


def feedback_panel(served: ServedModel) -> tuple[gr.Markdown, gr.Group]:
    """Where corrections go and how many there are, deleting them all, and the model menu; returns the count
    line, which the correction buttons update, and the operator's controls (shown to the operator alone:
    :func:`show_operator_controls`)."""
    with gr.Accordion("Corrections and personal models", open=True, elem_id="feedback"):
        count = gr.Markdown(feedback.summary(served.folder), elem_id="feedback-summary")
        gr.Markdown("Each correction saves the face as the model sees it (48×48 grey) under the expression you "
                    "pick. The operator trains a personal model from them with `python -m fer.personalize "
                    "--feedback DIR --out DIR/mine` (DIR: this app's corrections folder), then picks it below.")
        refresh = gr.Button("Count again", size="sm", elem_id="feedback-refresh")  # the live view presses it
        with gr.Group(visible=not served.access.on, elem_id="operator") as operator:
            with gr.Row():
                delete = gr.Button("Delete all corrections", variant="stop", size="sm", elem_id="feedback-delete")
                confirm = gr.Button("Yes, delete them all", variant="stop", size="sm", visible=False,
                                    elem_id="feedback-confirm")
                cancel = gr.Button("Cancel", size="sm", visible=False, elem_id="feedback-cancel")
            with gr.Row():
                menu = gr.Dropdown(choices=served.choices(), value=served.live_key(), label="Model",
                                   elem_id="model-menu", scale=3)
                rescan = gr.Button("Look for new models", size="sm", scale=1, elem_id="model-rescan")
        live_line = gr.Markdown(served.live_line(), elem_id="live-model")

    def ask():
        return gr.Button(visible=False), gr.Button(visible=True), gr.Button(visible=True)

    def delete_all(request: gr.Request):
        return served.delete_all(request), gr.Button(visible=True), gr.Button(visible=False), gr.Button(visible=False)

    def keep():
        return feedback.summary(served.folder), gr.Button(visible=True), gr.Button(visible=False), gr.Button(visible=False)

    delete.click(ask, None, [delete, confirm, cancel], api_name=False)
    confirm.click(delete_all, None, [count, delete, confirm, cancel], api_name="delete_corrections")
    cancel.click(keep, None, [count, delete, confirm, cancel], api_name=False)
    refresh.click(lambda: feedback.summary(served.folder), None, count, api_name=False, show_progress="hidden")
    # then the page's live view loads the model now live (fer-live/model.onnx), if it runs
    menu.change(served.switch, menu, live_line, api_name="switch_model", concurrency_limit=1).then(
        None, None, None, js="() => { window.ferLive?.reloadModel(); }")
    rescan.click(lambda: gr.Dropdown(choices=served.choices(), value=served.live_key()), None, menu,
                 api_name=False)
    return count, operator


def show_operator_controls(served: ServedModel, request: gr.Request):
    """On page load: the operator's controls for the operator only (everyone, without sign-in)."""
    return gr.Group(visible=served.access.is_operator(getattr(request, "username", None)))


def correction_row(served: ServedModel, what: str, elem: str) -> tuple[gr.Radio, gr.Button, gr.Markdown]:
    """"Wrong? pick the label" controls: the classes, a save button, a status line."""
    with gr.Row(equal_height=True):
        label = gr.Radio(served.recognizer.classes, label=f"Wrong? The right expression of {what}",
                         elem_id=f"{elem}-label", scale=4)
        save = gr.Button("Save correction", size="sm", scale=1, elem_id=f"{elem}-save")
    said = gr.Markdown(elem_id=f"{elem}-status")
    return label, save, said


def upload_corrections(served: ServedModel, analysed, upload: gr.Image, details: gr.JSON, count: gr.Markdown) -> None:
    """The Upload tab's corrections: after each analysis the faces' crops are kept for the session, and a
    face picked by number can be saved under the right expression."""
    faces = gr.State([])
    with gr.Group(visible=False) as box:
        which = gr.Dropdown(choices=[], label="Face", elem_id="correct-face")
        label, save, said = correction_row(served, "this face", "correct")

    def remember(upload_value, found: list[dict] | None):
        path = upload_value.get("path") if isinstance(upload_value, dict) else getattr(upload_value, "path", upload_value)
        if not path or not found:
            return [], gr.Dropdown(choices=[], value=None), gr.Group(visible=False), ""
        try:
            image = load_image(path, name=Path(path).name, budget=SERVER_DECODES)
        except ImageError:
            return [], gr.Dropdown(choices=[], value=None), gr.Group(visible=False), ""
        boxes = [Box(f["box"]["x"], f["box"]["y"], f["box"]["w"], f["box"]["h"]) for f in found]
        crops = served.recognizer.crops(image, boxes)
        kept = [(crop, f["probabilities"]) for crop, f in zip(crops, found)]
        names = [(f"face {i + 1}: {f['label'] or '? not sure'}", i) for i, f in enumerate(found)]
        return kept, gr.Dropdown(choices=names, value=0), gr.Group(visible=True), ""

    def save_one(kept: list, index: int | None, chosen: str | None, request: gr.Request):
        if not kept or index is None or not 0 <= int(index) < len(kept):
            return "Upload a photo with a face first.", feedback.summary(served.folder)
        crop, probs = kept[int(index)]
        return served.save(crop, chosen, "upload", probs, request), feedback.summary(served.folder)

    analysed.then(remember, [upload, details], [faces, which, box, said], api_name=False, preprocess=False)
    save.click(save_one, [faces, which, label], [said, count], api_name="correct_upload")


def webcam_corrections(served: ServedModel, session: gr.State, count: gr.Markdown, visible: bool) -> gr.Column:
    """The Webcam tab's correction when frames go to the server: the largest face of the latest frame (as the
    classifier saw it) under the right expression. Returns its column, shown with the server's stream (the
    in-page live view has its own, app/static/live/correct.js)."""
    with gr.Column(visible=visible) as column:
        label, save, said = correction_row(served, "the largest face", "live-correct")

    def save_live(state: VideoSession | None, chosen: str | None, request: gr.Request):
        if state is None or state.largest is None:
            return "No face seen yet: start the camera first.", feedback.summary(served.folder)
        crop, probs = state.largest
        return served.save(crop, chosen, "webcam", probs, request), feedback.summary(served.folder)

    save.click(save_live, [session, label], [said, count], api_name="correct_webcam")
    return column
