"""What the in-browser live view (app/static/live/) takes from the Python path, so the page runs the same
detection, crop, tracking and smoothing: the settings of :class:`fer.serving.recognize.VideoSession`,
:class:`fer.serving.tracking.FaceTracker`, :class:`fer.serving.detect.CropSpec` and the YuNet detector, face quality's
limits and the recognizer's "not sure" rule (:mod:`fer.serving.quality`), and which ONNX file the page runs for
the app's model. The model's calibration temperature is not among them: the page reads it from the model file,
as Python does. Knows nothing of the web framework (app/main.py serves the files)."""

from __future__ import annotations

import hashlib
from dataclasses import asdict
from pathlib import Path

from fer.core.card import load_card
from fer.serving import quality
from fer.serving.detect import YUNET_MODEL, YuNetFaceDetector
from fer.serving.draw import CLASS_COLOURS
from fer.serving.recognize import FaceRecognizer, VideoSession
from fer.serving.timeline import EmotionTimeline
from fer.serving.tracking import FaceTracker

#: YuNet with a free input size (scripts/yunet_dynamic.py): onnxruntime-web refuses other sizes than a
#: model declares, and the page searches small regions around tracked faces.
YUNET_DYNAMIC = YUNET_MODEL.with_name("yunet_n_dynamic.onnx")


def sha256(path: Path) -> str:
    """The SHA-256 of a file, as hex, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def browser_model(model: str | Path) -> tuple[Path | None, str]:
    """The ONNX file the page runs for the app's ``model``: the model itself when it is ``.onnx``, else the
    export beside the ``.pkl`` when its card's recorded checksum matches it. ``(None, reason)`` when there is
    none, so the app can say why the live view is off."""
    model = Path(model)
    if model.suffix.lower() == ".onnx":
        return model, ""
    onnx = model.with_suffix(".onnx")
    if not onnx.is_file():
        return None, f"no {onnx.name} beside {model.name} (make one with `python -m fer.export {model}`)"
    recorded = load_card(model).get("onnx", {}).get("sha256")
    if recorded and recorded != sha256(onnx):
        return None, (f"{onnx.name} is not the export of {model.name} (its checksum differs from the card's); "
                      f"run `python -m fer.export {model}` again")
    return onnx, ""


def live_settings(recognizer: FaceRecognizer, session: VideoSession | None = None) -> dict:
    """The Python path's settings as the page's modules take them (JSON-ready): ``detector`` for streams,
    ``photoDetector`` for photos (:meth:`FaceRecognizer.analyze`). Raises ValueError when the recognizer's
    detectors are not YuNet (the page runs YuNet only)."""
    detector, photo = recognizer.video_detector, recognizer.detector
    if not isinstance(detector, YuNetFaceDetector) or not isinstance(photo, YuNetFaceDetector):
        raise ValueError(f"the page runs YuNet; this app detects faces with {recognizer.detector_name}")
    session = session or VideoSession()
    tracker: FaceTracker = session.tracker
    timeline = EmotionTimeline()
    return {
        "classes": list(recognizer.classes),
        "colours": {c: "#{:02x}{:02x}{:02x}".format(*CLASS_COLOURS[c]) for c in recognizer.classes
                    if c in CLASS_COLOURS},
        "detector": {"detectWidth": detector.detect_width, "scoreThreshold": detector.score_threshold,
                     "nmsThreshold": detector.nms_threshold, "minFace": detector.min_face},
        "photoDetector": {"detectWidth": photo.detect_width, "scoreThreshold": photo.score_threshold,
                          "nmsThreshold": photo.nms_threshold, "minFace": photo.min_face},
        "crop": asdict(recognizer.crop),
        "session": {"fullDetectEvery": session.full_detect_every, "searchMargin": session.search_margin,
                    "searchFaceWidth": session.search_face_width,
                    "tracker": {"alpha": tracker.alpha, "iouThreshold": tracker.iou_threshold,
                                "maxMisses": tracker.max_misses}},
        "timeline": {"windowS": timeline.window_s, "refreshS": timeline.refresh_s},
        "quality": quality_settings(),
        "notSure": recognizer.rule.as_dict(),
    }


def quality_settings() -> dict:
    """Face quality's limits and bands (:mod:`fer.serving.quality`) as the page's quality.js takes them."""
    return {"size": list(quality.SIZE_LIMITS), "score": list(quality.SCORE_LIMITS), "roll": list(quality.ROLL_LIMITS),
            "yaw": list(quality.YAW_LIMITS), "sharpness": list(quality.SHARPNESS_LIMITS),
            "bands": [list(band) for band in quality.BANDS], "poor": quality.POOR}
