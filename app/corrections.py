"""Corrections and personal models (``--feedback DIR``): the served model, its panel and the correction controls."""

from __future__ import annotations

from pathlib import Path

import gradio as gr
import numpy as np

from fer.core.images import ImageError, load_image
from fer.serving import feedback
from fer.serving.detect import Box
from fer.serving.live import browser_model
from fer.serving.model_files import DEFAULT_MODEL, DEFAULT_ONNX, ModelLoadError, load_predictor
from fer.serving.recognize import FaceRecognizer, VideoSession


class ServedModel:
    """The model the page serves and the feedback folder its corrections go to. The page can switch the
    model between the one the app started with, the shipped one and the personal ones in the folder
    (``python -m fer.personalize --out DIR/NAME``); a switch is for every viewer (``--feedback`` is for
    one person's app)."""

    def __init__(self, recognizer: FaceRecognizer, path: str | Path, folder: Path):
        self.recognizer, self.path, self.folder = recognizer, Path(path), Path(folder)

    @property
    def name(self) -> str:
        return self.path.name

    def choices(self) -> list[tuple[str, str]]:
        """(label, path) of every model the menu offers: the started one, the shipped ONNX, the personal ones."""
        paths = [self.path, *([DEFAULT_ONNX] if DEFAULT_ONNX.exists() else []), *feedback.personal_models(self.folder)]
        unique = list(dict.fromkeys(p.resolve() for p in paths))
        personal = {p.resolve() for p in feedback.personal_models(self.folder)}
        return [(f"{'personal' if p in personal else 'shipped' if p.parent == DEFAULT_MODEL.parent else 'started'}: "
                 f"{p.name}", str(p)) for p in unique]

    def switch(self, path: str | Path) -> str:
        """Serve the model at ``path`` from now on; returns a line saying which model is live."""
        path = Path(path)
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
        return self.live_line()

    def live_line(self) -> str:
        return f"Live model: **{self.name}** ({self.recognizer.predictor.describe()})."

    @property
    def onnx(self) -> Path | None:
        """The ONNX file of the live model, which the page's live view runs (None: it has none)."""
        return browser_model(self.path)[0]

    def save_face(self, face: np.ndarray, label: str, source: str, probs: dict[str, float],
                  predicted: str | None = None, model: str | None = None) -> Path:
        """Save one correction (:func:`fer.serving.feedback.save_correction`; ``model``: default the live model's name);
        FeedbackError or OSError when it cannot be."""
        predicted = predicted or (max(probs, key=probs.get) if probs else "")
        return feedback.save_correction(self.folder, face, label, source, model or self.name, predicted, probs,
                                        self.recognizer.classes)

    def save(self, face: np.ndarray, label: str | None, source: str, probs: dict[str, float]) -> str:
        """Save one correction; a line for the page."""
        if not label:
            return "Pick the right expression first."
        try:
            path = self.save_face(face, label, source, probs)
        except (feedback.FeedbackError, OSError) as e:
            return f"**Not saved.** {e}"
        predicted = max(probs, key=probs.get) if probs else ""
        return f"Saved as **{label}** ({path.parent.name}/{path.name}; the model said {predicted})."


def feedback_panel(served: ServedModel) -> gr.Markdown:
    """Where corrections go and how many there are, deleting them all, and the model menu; returns the count
    line, which the correction buttons update."""
    with gr.Accordion("Corrections and personal models", open=True, elem_id="feedback"):
        count = gr.Markdown(feedback.summary(served.folder), elem_id="feedback-summary")
        gr.Markdown(f"Each correction saves the face as the model sees it (48×48 grey) under the expression you "
                    f"pick. Train a personal model from them with `python -m fer.personalize --feedback "
                    f"{served.folder} --out {served.folder / 'mine'}`, then pick it below.")
        with gr.Row():
            delete = gr.Button("Delete all corrections", variant="stop", size="sm", elem_id="feedback-delete")
            confirm = gr.Button("Yes, delete them all", variant="stop", size="sm", visible=False,
                                elem_id="feedback-confirm")
            cancel = gr.Button("Cancel", size="sm", visible=False, elem_id="feedback-cancel")
            refresh = gr.Button("Count again", size="sm", elem_id="feedback-refresh")  # the live view presses it
        with gr.Row():
            menu = gr.Dropdown(choices=served.choices(), value=str(served.path.resolve()), label="Model",
                               elem_id="model-menu", scale=3)
            rescan = gr.Button("Look for new models", size="sm", scale=1, elem_id="model-rescan")
        live_line = gr.Markdown(served.live_line(), elem_id="live-model")

    def ask():
        return gr.Button(visible=False), gr.Button(visible=True), gr.Button(visible=True)

    def delete_all():
        removed = feedback.delete_all(served.folder)
        return (f"Deleted {removed} correction(s). {feedback.summary(served.folder)}", gr.Button(visible=True),
                gr.Button(visible=False), gr.Button(visible=False))

    def keep():
        return feedback.summary(served.folder), gr.Button(visible=True), gr.Button(visible=False), gr.Button(visible=False)

    delete.click(ask, None, [delete, confirm, cancel], api_name=False)
    confirm.click(delete_all, None, [count, delete, confirm, cancel], api_name="delete_corrections")
    cancel.click(keep, None, [count, delete, confirm, cancel], api_name=False)
    refresh.click(lambda: feedback.summary(served.folder), None, count, api_name=False, show_progress="hidden")
    # then the page's live view loads the model now live (fer-live/model.onnx), if it runs
    menu.change(served.switch, menu, live_line, api_name="switch_model", concurrency_limit=1).then(
        None, None, None, js="() => { window.ferLive?.reloadModel(); }")
    rescan.click(lambda: gr.Dropdown(choices=served.choices(), value=str(served.path.resolve())), None, menu,
                 api_name=False)
    return count


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
            image = load_image(path, name=Path(path).name)
        except ImageError:
            return [], gr.Dropdown(choices=[], value=None), gr.Group(visible=False), ""
        boxes = [Box(f["box"]["x"], f["box"]["y"], f["box"]["w"], f["box"]["h"]) for f in found]
        crops = served.recognizer.crops(image, boxes)
        kept = [(crop, f["probabilities"]) for crop, f in zip(crops, found)]
        names = [(f"face {i + 1}: {f['label'] or '? not sure'}", i) for i, f in enumerate(found)]
        return kept, gr.Dropdown(choices=names, value=0), gr.Group(visible=True), ""

    def save_one(kept: list, index: int | None, chosen: str | None):
        if not kept or index is None or not 0 <= int(index) < len(kept):
            return "Upload a photo with a face first.", feedback.summary(served.folder)
        crop, probs = kept[int(index)]
        return served.save(crop, chosen, "upload", probs), feedback.summary(served.folder)

    analysed.then(remember, [upload, details], [faces, which, box, said], api_name=False, preprocess=False)
    save.click(save_one, [faces, which, label], [said, count], api_name="correct_upload")


def webcam_corrections(served: ServedModel, session: gr.State, count: gr.Markdown, visible: bool) -> gr.Column:
    """The Webcam tab's correction when frames go to the server: the largest face of the latest frame (as the
    classifier saw it) under the right expression. Returns its column, shown with the server's stream (the
    in-page live view has its own, app/static/live/correct.js)."""
    with gr.Column(visible=visible) as column:
        label, save, said = correction_row(served, "the largest face", "live-correct")

    def save_live(state: VideoSession | None, chosen: str | None):
        if state is None or state.largest is None:
            return "No face seen yet: start the camera first.", feedback.summary(served.folder)
        crop, probs = state.largest
        return served.save(crop, chosen, "webcam", probs), feedback.summary(served.folder)

    save.click(save_live, [session, label], [said, count], api_name="correct_webcam")
    return column
