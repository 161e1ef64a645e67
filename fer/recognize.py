"""Find every face in an image or video frame, classify all of them in one batch, draw the result."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fer.detect import LANDMARK_NAMES, Box, CropSpec, FaceDetector, face_crop, make_detector
from fer.draw import draw_face, draw_message
from fer.images import as_rgb_frame, resize_to_width, to_grey
from fer.labels import FACE_SIZE
from fer.model_files import Predictor
from fer.tracking import FaceTracker, Track

#: Photos are searched at up to this width (small faces in group shots), video frames at the smaller one (speed).
PHOTO_DETECT_WIDTH, VIDEO_DETECT_WIDTH = 640, 320


@dataclass
class FaceResult:
    box: Box
    probs: dict[str, float]

    @property
    def label(self) -> str:
        return max(self.probs, key=self.probs.get)

    @property
    def confidence(self) -> float:
        return self.probs[self.label]

    @property
    def probabilities(self) -> dict[str, float]:
        """Class → probability (the same dict as ``probs``)."""
        return self.probs

    @property
    def landmarks(self) -> dict[str, tuple[float, float]]:
        """The detector's five landmarks by name (:data:`fer.detect.LANDMARK_NAMES`); empty for Haar."""
        return dict(zip(LANDMARK_NAMES, self.box.landmarks))

    def as_dict(self) -> dict:
        """JSON-ready: the box (with landmarks and score when the detector gives them), label, probabilities."""
        return {"box": self.box.as_dict(), "label": self.label, "probabilities": self.probs}


class FaceRecognizer:
    """Detector + batched classifier. ``analyze`` returns faces left to right; ``annotate`` draws them."""

    def __init__(self, predictor: Predictor, detector: FaceDetector | None = None,
                 video_detector: FaceDetector | None = None, crop: CropSpec = CropSpec()):
        self.predictor = predictor
        self.detector = detector or make_detector("yunet", PHOTO_DETECT_WIDTH)
        self.video_detector = video_detector or detector or make_detector("yunet", VIDEO_DETECT_WIDTH)
        self.crop = crop

    @classmethod
    def with_detector(cls, predictor: Predictor, name: str = "yunet", min_face: int = 0,
                      score_threshold: float | None = None, crop: CropSpec = CropSpec()) -> "FaceRecognizer":
        """A recognizer using the named detector (:data:`fer.detect.DETECTORS`) for photos and video."""
        return cls(predictor, make_detector(name, PHOTO_DETECT_WIDTH, min_face, score_threshold),
                   make_detector(name, VIDEO_DETECT_WIDTH, min_face, score_threshold), crop)

    @classmethod
    def load(cls, model: str | Path | None = None, detector: str = "yunet", min_face: int = 0,
             score_threshold: float | None = None) -> "FaceRecognizer":
        """The model file at ``model`` (default: the shipped one; ``.pkl`` or ``.onnx``,
        :func:`fer.model_files.load_predictor`) with the named detector, compiled now so the first face is as
        fast as the rest. Raises :class:`fer.card.ModelLoadError` naming the file when it cannot be used."""
        from fer.model_files import DEFAULT_MODEL, load_predictor

        recognizer = cls.with_detector(load_predictor(model or DEFAULT_MODEL), detector, min_face, score_threshold)
        recognizer.predictor.predict_proba([np.zeros((FACE_SIZE, FACE_SIZE), np.uint8)])
        return recognizer

    @property
    def detector_name(self) -> str:
        return getattr(self.detector, "name", type(self.detector).__name__)

    @property
    def classes(self) -> list[str]:
        return self.predictor.classes

    def crops(self, image: np.ndarray, boxes: list[Box]) -> list[np.ndarray]:
        """The classifier's view of every box: grey crops cut as :attr:`crop` says."""
        grey = to_grey(image) if boxes else image
        return [face_crop(grey, b, self.crop) for b in boxes]

    def classify(self, image: np.ndarray, boxes: list[Box]) -> np.ndarray:
        """Probabilities for every box, one forward pass for all faces."""
        return self.predictor.predict_proba(self.crops(image, boxes))

    def analyze(self, image: np.ndarray) -> list[FaceResult]:
        boxes = self.detector.detect(image)  # left to right
        probs = self.classify(image, boxes)
        return [FaceResult(b, dict(zip(self.classes, map(float, p)))) for b, p in zip(boxes, probs)]

    def annotate(self, image: np.ndarray) -> tuple[np.ndarray, list[FaceResult]]:
        faces = self.analyze(image)
        out = image.copy()
        for face in faces:
            draw_face(out, face.box, face.label, face.confidence)
        if not faces:
            draw_message(out, "no face found")
        return out, faces


@dataclass
class VideoSession:
    """Per-viewer state for a webcam stream: the tracker plus detection scheduling.

    A full-frame detection runs every ``full_detect_every`` frames (and whenever nothing is tracked); on the
    frames in between, each tracked face is searched for only near its last box (``search_margin`` × its
    size around it), in a copy of that region scaled so the face is about ``search_face_width`` pixels wide
    (YuNet finds faces down to ~20 px; a smaller region is a faster search). ``full_detect_every=1``
    searches the whole frame every time. ``python -m fer.bench`` measures both schedules side by side.
    """

    tracker: FaceTracker = field(default_factory=FaceTracker)
    full_detect_every: int = 5
    search_margin: float = 0.5
    search_face_width: int = 48
    frames: int = 0
    shape: tuple[int, int] | None = None
    #: the classifier's input (grey crop) of the largest face of the latest frame with a face, and the
    #: smoothed probabilities shown for it: what a correction of the live view saves (fer.feedback)
    largest: tuple[np.ndarray, dict[str, float]] | None = None

    def __post_init__(self):
        if self.full_detect_every < 1:
            raise ValueError(f"full_detect_every={self.full_detect_every}: must be 1 or more")

    def detect(self, recognizer: FaceRecognizer, frame: np.ndarray) -> list[Box]:
        if self.shape != frame.shape[:2]:  # new camera or resolution: start over
            self.tracker.reset()
            self.shape = frame.shape[:2]
        self.frames += 1
        if not self.tracker.tracks or (self.frames - 1) % self.full_detect_every == 0:
            return recognizer.video_detector.detect(frame)
        return distinct_boxes([box for track in self.tracker.tracks
                               for box in self.search_near(recognizer, frame, track.expected)])

    def search_near(self, recognizer: FaceRecognizer, frame: np.ndarray, around: Box) -> list[Box]:
        """Faces in the region around ``around`` (where a tracked face is expected), searched at reduced scale."""
        region = around.expand(self.search_margin).clip(frame.shape[1], frame.shape[0])
        roi = frame[region.y:region.y + region.h, region.x:region.x + region.w]
        small, factor = resize_to_width(roi, round(roi.shape[1] * self.search_face_width / max(around.w, 1)))
        return [b.scale(1 / factor).shift(region.x, region.y) for b in recognizer.video_detector.detect(small)]


def distinct_boxes(boxes: list[Box], overlap: float = 0.5) -> list[Box]:
    """One box per face when the searches near two tracked faces found it twice (the smaller box at least
    ``overlap`` inside the other, :meth:`Box.overlap`): the one with the higher detector score, so a face cut
    by the edge of another face's search region (a part of the face, a lower score) does not stand for it;
    the kept boxes in their found order."""
    kept: list[int] = []
    for i in sorted(range(len(boxes)), key=lambda i: -(boxes[i].score or 0.0)):  # stable: ties keep found order
        if all(boxes[i].overlap(boxes[j]) < overlap for j in kept):
            kept.append(i)
    return [boxes[i] for i in sorted(kept)]


def draw_tracks(image: np.ndarray, tracks: list[Track], classes: list[str], ids: bool = False) -> None:
    """Each tracked face's smoothed box and label (with its id when ``ids``), in place."""
    for track in tracks:
        best = int(np.argmax(track.probs))
        draw_face(image, track.box, classes[best], float(track.probs[best]), track.id + 1 if ids else None)


def annotate_frame(recognizer: FaceRecognizer, frame: np.ndarray | None,
                   session: VideoSession) -> tuple[np.ndarray | None, dict[str, float] | None]:
    """One webcam frame → (annotated frame, smoothed probabilities of the largest face or None).
    Unusable frames (None, empty, odd shapes) come back as None without raising."""
    rgb = as_rgb_frame(frame)
    if rgb is None:
        return None, None
    boxes = session.detect(recognizer, rgb)
    crops = recognizer.crops(rgb, boxes)
    probs = recognizer.predictor.predict_proba(crops) if boxes else np.zeros((0, len(recognizer.classes)))
    tracks = session.tracker.update(boxes, probs)
    out = rgb.copy()
    draw_tracks(out, tracks, recognizer.classes)
    if not tracks:
        return out, None
    main = max(tracks, key=lambda t: t.box.area)
    shown = dict(zip(recognizer.classes, map(float, main.probs)))
    if boxes:
        session.largest = (crops[max(range(len(boxes)), key=lambda i: boxes[i].area)], shown)
    return out, shown
