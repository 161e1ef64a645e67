"""Find every face in an image or video frame, classify all of them in one batch, draw the result."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

import numpy as np

from fer.core.images import as_rgb_frame, resize_to_width, to_grey
from fer.core.labels import FACE_SIZE
from fer.serving.detect import (
    LANDMARK_NAMES,
    Box,
    CropSpec,
    FaceDetector,
    face_crop,
    make_detector,
)
from fer.serving.draw import draw_face, draw_message
from fer.serving.faces import to_face
from fer.serving.model_files import Predictor
from fer.serving.quality import FaceQuality, UncertaintyRule, face_quality
from fer.serving.tracking import FaceTracker, Track

#: Video files: the faces of this many analysed frames are classified in one forward pass.
BATCH_FRAMES = 16
#: Photos are searched at up to this width (small faces in group shots), video frames at the smaller one (speed).
PHOTO_DETECT_WIDTH, VIDEO_DETECT_WIDTH = 640, 320


class RunningMode(str, Enum):
    """How frames reach a recognizer (as MediaPipe Tasks name them): each mode has its method."""

    IMAGE = "image"  #: photos, each on its own: :meth:`FaceRecognizer.detect`
    VIDEO = "video"  #: decoded frames in order, one answer per frame: :meth:`VideoSession.detect_for_video`
    LIVE_STREAM = "live_stream"  #: frames as they come, answers to a callback: :meth:`VideoSession.detect_async`


@dataclass
class FaceResult:
    """One face: its box (with landmarks and detector score), class probabilities, in a video the id of its
    track (1, 2, ... in order of appearance), its ``quality`` (:mod:`fer.serving.quality`), and whether the
    recognizer's :class:`fer.serving.quality.UncertaintyRule` calls it ``uncertain`` (then ``label`` is None:
    "not sure"; ``predicted`` and the probabilities are kept)."""

    box: Box
    probs: dict[str, float]
    face_id: int | None = None
    quality: FaceQuality | None = None
    uncertain: bool = False

    @property
    def predicted(self) -> str:
        """The most probable class, whether or not the face is uncertain."""
        return max(self.probs, key=self.probs.get)

    @property
    def label(self) -> str | None:
        """The most probable class, or None when the face is uncertain ("not sure")."""
        return None if self.uncertain else self.predicted

    @property
    def confidence(self) -> float:
        """The top probability."""
        return self.probs[self.predicted]

    @property
    def probabilities(self) -> dict[str, float]:
        """Class → probability (the same dict as ``probs``)."""
        return self.probs

    @property
    def landmarks(self) -> dict[str, tuple[float, float]]:
        """The detector's five landmarks by name (:data:`fer.serving.detect.LANDMARK_NAMES`); empty for Haar."""
        return dict(zip(LANDMARK_NAMES, self.box.landmarks))

    def as_dict(self) -> dict:
        """JSON-ready: the box (with landmarks and score when the detector gives them), label (None: not sure),
        predicted class, probabilities, quality, and the track's ``face_id`` in a video."""
        face = {"box": self.box.as_dict(), "label": self.label, "predicted": self.predicted,
                "probabilities": self.probs}
        if self.quality is not None:
            face["quality"] = self.quality.as_dict()
        return face if self.face_id is None else {**face, "face_id": self.face_id}


class FaceRecognizer:
    """Detector + batched classifier. ``analyze`` returns faces left to right; ``annotate`` draws them."""

    def __init__(self, predictor: Predictor, detector: FaceDetector | None = None,
                 video_detector: FaceDetector | None = None, crop: CropSpec = CropSpec(),
                 rule: UncertaintyRule = UncertaintyRule()):
        self.predictor = predictor
        self.detector = detector or make_detector("yunet", PHOTO_DETECT_WIDTH)
        self.video_detector = video_detector or detector or make_detector("yunet", VIDEO_DETECT_WIDTH)
        self.crop = crop
        self.rule = rule

    @classmethod
    def with_detector(cls, predictor: Predictor, name: str = "yunet", min_face: int = 0,
                      score_threshold: float | None = None, crop: CropSpec = CropSpec(),
                      rule: UncertaintyRule = UncertaintyRule()) -> "FaceRecognizer":
        """A recognizer using the named detector (:data:`fer.serving.detect.DETECTORS`) for photos and video."""
        return cls(predictor, make_detector(name, PHOTO_DETECT_WIDTH, min_face, score_threshold),
                   make_detector(name, VIDEO_DETECT_WIDTH, min_face, score_threshold), crop, rule)

    @classmethod
    def load(cls, model: str | Path | None = None, detector: str = "yunet", min_face: int = 0,
             score_threshold: float | None = None, min_confidence: float = 0.0,
             min_quality: float = 0.0) -> "FaceRecognizer":
        """The model file at ``model`` (default: ``$FER_MODEL``, else the shipped one; ``.pkl`` or ``.onnx``,
        :func:`fer.serving.model_files.load_predictor`) with the named detector, compiled now so the first face is as
        fast as the rest; faces under ``min_confidence`` or ``min_quality`` are reported as not sure
        (:class:`fer.serving.quality.UncertaintyRule`; off by default). Raises
        :class:`fer.core.card.ModelLoadError` naming the file when it cannot be used."""
        from fer.serving.model_files import default_model, load_predictor

        rule = UncertaintyRule(min_confidence, min_quality)
        recognizer = cls.with_detector(load_predictor(model or default_model()), detector, min_face, score_threshold,
                                       rule=rule)
        recognizer.predictor.predict_proba([np.zeros((FACE_SIZE, FACE_SIZE), np.uint8)])
        return recognizer

    @property
    def detector_name(self) -> str:
        """The photo detector's name (``yunet`` or ``haar``)."""
        return getattr(self.detector, "name", type(self.detector).__name__)

    @property
    def classes(self) -> list[str]:
        """The model's class names, in its output order."""
        return self.predictor.classes

    def crops(self, image: np.ndarray, boxes: list[Box]) -> list[np.ndarray]:
        """The classifier's view of every box: grey crops cut as :attr:`crop` says."""
        grey = to_grey(image) if boxes else image
        return [face_crop(grey, b, self.crop) for b in boxes]

    def classify(self, image: np.ndarray, boxes: list[Box]) -> np.ndarray:
        """Probabilities for every box, one forward pass for all faces."""
        return self.predictor.predict_proba(self.crops(image, boxes))

    def results(self, boxes: list[Box], crops: list[np.ndarray]) -> list[FaceResult]:
        """The faces in ``boxes`` (their ``crops`` cut by :meth:`crops`), classified in one forward pass, each
        with its quality and, by :attr:`rule`, whether it is not sure."""
        return self.classified(boxes, crops)[1]

    def classified(self, boxes: list[Box], crops: list[np.ndarray]) -> tuple[np.ndarray, list[FaceResult]]:
        """:meth:`results` with the probabilities also as one ``(len(boxes), classes)`` array (the tracker's input)."""
        faces = [to_face(c) for c in crops]
        probs = self.predictor.predict_proba(faces)
        return probs, [self.result(b, p, face) for b, p, face in zip(boxes, probs, faces)]

    def result(self, box: Box, probs: np.ndarray, face: np.ndarray) -> FaceResult:
        """One face: its probabilities, its quality from its box and 48×48 ``face``, and :attr:`rule`'s verdict."""
        quality = face_quality(box, face)
        return FaceResult(box, dict(zip(self.classes, map(float, probs))), quality=quality,
                          uncertain=self.rule.is_uncertain(float(np.max(probs)), quality))

    def detect(self, image: np.ndarray) -> list[FaceResult]:
        """IMAGE mode: every face of one RGB photo, left to right, searched at the photo width."""
        boxes = self.detector.detect(image)  # left to right
        return self.results(boxes, self.crops(image, boxes))

    analyze = detect  #: the name :class:`fer.api.Model` and earlier code use

    def session(self, running_mode: RunningMode = RunningMode.VIDEO, **options) -> VideoSession:
        """A stream of frames through this recognizer (VIDEO or LIVE_STREAM mode): a :class:`VideoSession` with
        ``options`` (its fields). Video files search every analysed frame whole at the photo width and batch
        their classification; a camera (the default) uses the faster video detector with region searches."""
        if running_mode == RunningMode.IMAGE:
            raise ValueError("IMAGE mode has no session: call detect(image)")
        return VideoSession(**options).bind(self)

    def file_session(self, every: int = 1, result_callback: Callable[[FrameResult], None] | None = None,
                     batch_frames: int = BATCH_FRAMES) -> VideoSession:
        """The session of a video file: every ``every``-th frame searched whole with the photo detector (as
        :meth:`detect` does each photo), faces classified ``batch_frames`` frames at a time (LIVE_STREAM mode)."""
        session = VideoSession(full_detect_every=1, every=every, batch_frames=batch_frames,
                               result_callback=result_callback)
        return session.bind(self, self.detector)

    def annotate(self, image: np.ndarray) -> tuple[np.ndarray, list[FaceResult]]:
        """IMAGE mode, drawn: a copy of ``image`` with every face's box and label (or a note when none was
        found), and the faces."""
        faces = self.detect(image)
        out = image.copy()
        for face in faces:
            draw_face(out, face.box, face.label, face.confidence)  # label None: "?"
        if not faces:
            draw_message(out, "no face found")
        return out, faces


@dataclass
class FrameResult:
    """One video frame's answer: the frame's own detections with their raw probabilities (``faces``, each with
    the ``face_id`` of its track; empty when the frame was not analysed) and the tracks after it (smoothed boxes
    and probabilities: what is drawn)."""

    index: int
    timestamp_ms: float
    frame: np.ndarray
    faces: list[FaceResult]
    tracks: list[Track]
    analysed: bool = True
    crops: list[np.ndarray] = field(default_factory=list, repr=False)  #: the classifier's inputs of ``faces``


@dataclass
class VideoSession:
    """One video or camera stream through a :class:`FaceRecognizer`: the frame path every video source shares
    (files, the server's webcam stream, batch workers). Each analysed frame's faces are detected, classified and
    matched to tracks (:class:`fer.serving.tracking.FaceTracker`, which smooths boxes and probabilities).

    Detection: ``full_detect_every=1`` searches the whole frame every time; above 1, a full-frame detection runs
    every ``full_detect_every`` frames (and whenever nothing is tracked or a tracked face was missed on the last
    analysed frame) and, on the frames in between, each
    tracked face is searched for only near its last box (``search_margin`` × its size around it), in a copy of
    that region scaled so the face is about ``search_face_width`` pixels wide. ``every`` analyses every N-th frame
    only (the others are answered with the tracks as they stand). ``detect_async`` classifies the faces of up to
    ``batch_frames`` frames in one forward pass (full-frame detection only: a region search needs the previous
    frame's tracks). ``python -m fer.bench`` measures both schedules side by side.
    """

    tracker: FaceTracker = field(default_factory=FaceTracker)
    full_detect_every: int = 5
    search_margin: float = 0.5
    search_face_width: int = 48
    every: int = 1
    batch_frames: int = 1
    max_pending: int = 64  #: the most frames held meanwhile (with ``every`` N, N - 1 unanalysed ones lie between)
    result_callback: Callable[[FrameResult], None] | None = None
    frames: int = 0
    shape: tuple[int, int] | None = None
    #: the classifier's input (grey crop) of the largest face of the latest frame with a face, and the
    #: smoothed probabilities shown for it: what a correction of the live view saves (fer.serving.feedback)
    largest: tuple[np.ndarray, dict[str, float]] | None = None
    recognizer: FaceRecognizer | None = field(default=None, repr=False)
    detector: FaceDetector | None = field(default=None, repr=False)
    _pending: list = field(default_factory=list, repr=False)

    def __post_init__(self):
        for name in ("full_detect_every", "every", "batch_frames"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)}: must be 1 or more")
        if self.batch_frames > 1 and self.full_detect_every > 1:
            raise ValueError("batch_frames > 1 needs full_detect_every=1 (a region search needs the last tracks)")

    def bind(self, recognizer: FaceRecognizer, detector: FaceDetector | None = None) -> "VideoSession":
        """Use ``recognizer`` (and ``detector``, default its video detector) for this session's frames."""
        self.recognizer, self.detector = recognizer, detector or recognizer.video_detector
        return self

    def detect_for_video(self, frame: np.ndarray, timestamp_ms: float) -> FrameResult:
        """VIDEO mode: one RGB frame, in order → its :class:`FrameResult` (after any frames still pending)."""
        results: list[FrameResult] = []
        self._queue(frame, timestamp_ms)
        self._flush(results.append)
        return results[-1]

    def detect_async(self, frame: np.ndarray, timestamp_ms: float) -> None:
        """LIVE_STREAM mode: queue one RGB frame; its :class:`FrameResult` goes to ``result_callback``, in frame
        order, once ``batch_frames`` analysed frames (or ``max_pending`` frames) wait, or at :meth:`flush`."""
        self._queue(frame, timestamp_ms)
        if (sum(p[3] is not None for p in self._pending) >= self.batch_frames
                or len(self._pending) >= self.max_pending):
            self.flush()

    def flush(self) -> None:
        """Answer every queued frame now (to ``result_callback``)."""
        self._flush(self.result_callback or (lambda result: None))

    def _queue(self, frame: np.ndarray, timestamp_ms: float) -> None:
        if self.recognizer is None:
            raise RuntimeError("this session has no recognizer: make it with FaceRecognizer.session()")
        if self.shape != frame.shape[:2]:  # new camera or resolution: start over
            self._flush(self.result_callback or (lambda result: None))
            self.tracker.reset()
            self.shape = frame.shape[:2]
        index, self.frames = self.frames, self.frames + 1
        boxes = self.detect_boxes(frame, index // self.every) if index % self.every == 0 else None
        self._pending.append((index, timestamp_ms, frame, boxes))

    def detect_boxes(self, frame: np.ndarray, analysed: int) -> list[Box]:
        """The faces of the ``analysed``-th analysed frame, by this session's schedule: the whole frame every
        ``full_detect_every`` analysed frames, when nothing is tracked, and after a tracked face was missed (it
        moved further than its search region reached: a slow device's frames lie far apart); else searches near
        each tracked face."""
        tracks = self.tracker.tracks
        if not tracks or analysed % self.full_detect_every == 0 or any(t.misses for t in tracks):
            return self.detector.detect(frame)
        return distinct_boxes([box for track in self.tracker.tracks
                               for box in self.search_near(frame, track.expected)])

    def search_near(self, frame: np.ndarray, around: Box) -> list[Box]:
        """Faces in the region around ``around`` (where a tracked face is expected), searched at reduced scale."""
        region = around.expand(self.search_margin).clip(frame.shape[1], frame.shape[0])
        roi = frame[region.y:region.y + region.h, region.x:region.x + region.w]
        small, factor = resize_to_width(roi, round(roi.shape[1] * self.search_face_width / max(around.w, 1)))
        return [b.scale(1 / factor).shift(region.x, region.y) for b in self.detector.detect(small)]

    def _flush(self, answer: Callable[[FrameResult], None]) -> None:
        """Classify the faces of the queued frames in one batch, then track and answer them in order."""
        pending, self._pending = self._pending, []
        if not pending:
            return
        recognizer = self.recognizer
        crops = [recognizer.crops(frame, boxes) if boxes else [] for _, _, frame, boxes in pending]
        probs, results = recognizer.classified([b for _, _, _, boxes in pending for b in boxes or []],
                                               [c for cs in crops for c in cs])
        probs = probs.astype(np.float64)  # what the tracker smooths, as the faces' float probabilities are
        used = 0
        for (index, timestamp_ms, frame, boxes), frame_crops in zip(pending, crops):
            if boxes is None:
                answer(FrameResult(index, timestamp_ms, frame, [], self.tracker.live(), analysed=False))
                continue
            faces, frame_probs = results[used:used + len(boxes)], probs[used:used + len(boxes)]
            used += len(boxes)
            tracks = self.tracker.update(boxes, frame_probs)
            for track in tracks:
                if track.detection is not None:
                    track.quality = faces[track.detection].quality
                    faces[track.detection].face_id = track.id + 1
            if boxes:
                largest = max(range(len(boxes)), key=lambda i: boxes[i].area)
                shown = next(t for t in tracks if t.detection == largest)
                self.largest = (frame_crops[largest], dict(zip(recognizer.classes, map(float, shown.probs))))
            answer(FrameResult(index, timestamp_ms, frame, faces, tracks, crops=frame_crops))


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


def draw_tracks(image: np.ndarray, tracks: list[Track], classes: list[str], ids: bool = False,
                rule: UncertaintyRule = UncertaintyRule()) -> None:
    """Each tracked face's smoothed box and label (with its id when ``ids``), in place; "?" where ``rule`` calls
    the track not sure (its smoothed top probability, its latest detection's quality)."""
    for track in tracks:
        best = int(np.argmax(track.probs))
        confidence = float(track.probs[best])
        label = None if rule.is_uncertain(confidence, track.quality) else classes[best]
        draw_face(image, track.box, label, confidence, track.id + 1 if ids else None)


def annotate_frame(recognizer: FaceRecognizer, frame: np.ndarray | None,
                   session: VideoSession) -> tuple[np.ndarray | None, dict[str, float] | None]:
    """One webcam frame through ``session`` → (annotated frame, smoothed probabilities of the largest face or
    None). Unusable frames (None, empty, odd shapes) come back as None without raising."""
    rgb = as_rgb_frame(frame)
    if rgb is None:
        return None, None
    if session.recognizer is None:
        session.bind(recognizer)
    result = session.detect_for_video(rgb, 1000 * time.monotonic())
    out = rgb.copy()
    draw_tracks(out, result.tracks, recognizer.classes, rule=recognizer.rule)
    if not result.tracks:
        return out, None
    main = max(result.tracks, key=lambda t: t.box.area)
    return out, dict(zip(recognizer.classes, map(float, main.probs)))
