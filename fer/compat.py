"""The fer package's API (PyPI ``fer`` 25.10.3, github.com/justinshenk/fer) on fer-realtime's model and detector,
so code written for it runs unchanged:

    from fer import FER, Video
    detector = FER(mtcnn=True)
    detector.detect_emotions(cv2.imread("photo.jpg"))  # [{"box": [x, y, w, h], "emotions": {"angry": 0.01, ...}}]
    detector.top_emotion("photo.jpg")                   # ("happy", 0.72)
    video = Video("clip.mp4")
    df = video.to_pandas(video.analyze(detector, display=False))

A thin layer: photos go through :meth:`fer.serving.recognize.FaceRecognizer.detect`, videos through
:meth:`~fer.serving.recognize.FaceRecognizer.file_session` (the frame path of ``fer.load().video``), and results
are reshaped into the fer package's dicts. What differs from the fer package:

- faces are found by YuNet whatever ``mtcnn`` says (``mtcnn=True`` asks for the better detector; YuNet is
  already fer-realtime's best), or by a Haar cascade when ``cascade_file`` is given;
- the probabilities are fer-realtime's calibrated ones, less extreme than the fer package's model gives (its
  own suite's figures, ours beside its: docs/results/fer_package_suite.json): choose thresholds for this model;
- photo arrays are OpenCV's BGR (as in the fer package); Haar-only and Keras-only options are accepted and ignored.
"""

from __future__ import annotations

import base64
import binascii
import csv
import logging
import os
import re
import urllib.request
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from fer.core.card import ModelLoadError
from fer.core.images import FULL_SIZE, MIN_SIDE, ImageError, as_rgb_frame, load_image
from fer.core.labels import FER2013_CLASSES
from fer.exceptions import InvalidImage, InvalidModelFile
from fer.serving.detect import Box, HaarFaceDetector
from fer.serving.draw import draw_face
from fer.serving.recognize import PHOTO_DETECT_WIDTH, FaceRecognizer, FaceResult, FrameResult
from fer.serving.video import VideoError, VideoReader, VideoWriter

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["FER", "Video"]

log = logging.getLogger("fer")

#: The fer package's emotion names, in its order: the keys of every ``"emotions"`` dict (a model with more
#: classes adds them after these).
EMOTIONS: tuple[str, ...] = FER2013_CLASSES
#: Decimals kept of each probability, as the fer package rounds them.
SCORE_DIGITS = 2
#: How long an image URL may take to download.
URL_TIMEOUT_S = 10
#: ``Video.analyze``'s ``output`` values.
OUTPUT_FORMATS = ("csv", "pandas")
DETECTION_BOX_KEYS = ("x_min", "x_max", "y_min", "y_max")

FaceDict = dict[str, Any]  # {"box": [x, y, w, h], "emotions": {name: probability}}


# --- images -------------------------------------------------------------------------------------------------


def image_from_input(img: Any, bgr: bool = True) -> np.ndarray | None:
    """The fer package's image inputs → an RGB uint8 array: an OpenCV array (BGR, BGRA or grey, as
    ``cv2.imread`` gives; RGB when ``bgr`` is false), a file path, a ``data:image/...;base64,`` URI or an
    http(s) URL. None for an array too small to hold a face. Raises :class:`InvalidImage` naming the problem."""
    if isinstance(img, np.ndarray):
        return rgb_from_array(img, bgr)
    if img is None:
        raise InvalidImage("image is None (cv2.imread returns None for a file it cannot read as an image)")
    if isinstance(img, str) and img.startswith("data:image/"):
        return decode_image(data_uri_bytes(img), "the data URI")
    if isinstance(img, str) and img.startswith(("http://", "https://")):
        return decode_image(download(img), img)
    if isinstance(img, (str, os.PathLike)):
        return decode_image(img, str(img))
    raise InvalidImage(f"image of type {type(img).__name__}: expected a numpy array (BGR, as cv2.imread gives), "
                       f"a file path, a data:image URI or an http(s) URL")


def rgb_from_array(array: np.ndarray, bgr: bool = True) -> np.ndarray | None:
    """An H×W (grey), H×W×3 (BGR) or H×W×4 (BGRA) array → RGB uint8; None when a side is under
    :data:`fer.core.images.MIN_SIDE` pixels (no face fits)."""
    channels_ok = array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (1, 3, 4))
    if array.size == 0 or not channels_ok or array.dtype.kind not in "buif":
        raise InvalidImage(f"array of shape {array.shape} and dtype {array.dtype}: not an image (expected H×W grey, "
                           f"H×W×3 BGR or H×W×4 BGRA numbers, as cv2.imread gives)")
    if min(array.shape[:2]) < MIN_SIDE:
        return None
    rgb = as_rgb_frame(array)  # grey → 3 channels, alpha dropped, other dtypes → uint8; channel order kept
    return np.ascontiguousarray(rgb[..., ::-1]) if bgr else rgb


def decode_image(source: str | os.PathLike | bytes, name: str) -> np.ndarray:
    """A file or encoded bytes → RGB (EXIF rotation applied, as ``cv2.imread`` does), or :class:`InvalidImage`."""
    try:
        return load_image(source, name=name, max_side=FULL_SIZE)
    except ImageError as e:
        raise InvalidImage(str(e)) from None


def data_uri_bytes(uri: str) -> bytes:
    """The bytes of a ``data:image/...;base64,...`` URI."""
    header, _, payload = uri.partition(",")
    if not header.endswith(";base64") or not payload:
        raise InvalidImage(f"data URI {uri[:40]!r}...: expected data:image/<type>;base64,<data>")
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as e:
        raise InvalidImage(f"data URI {uri[:40]!r}...: its base64 data does not decode ({e})") from None


def download(url: str) -> bytes:
    """The body of ``url`` (an image on the web, as the fer package accepts), or :class:`InvalidImage`."""
    try:
        with urllib.request.urlopen(url, timeout=URL_TIMEOUT_S) as response:
            return response.read()
    except (OSError, ValueError) as e:
        raise InvalidImage(f"{url}: the image could not be downloaded ({e})") from None


# --- results ------------------------------------------------------------------------------------------------


def emotion_scores(probs: dict[str, float]) -> dict[str, float]:
    """Class → probability in the fer package's order and rounding (:data:`EMOTIONS`, :data:`SCORE_DIGITS`)."""
    order = [c for c in EMOTIONS if c in probs] + [c for c in probs if c not in EMOTIONS]
    return {c: round(float(probs[c]), SCORE_DIGITS) for c in order}


def face_dict(face: FaceResult, dx: int = 0, dy: int = 0) -> FaceDict:
    """One face as the fer package gives it: ``{"box": [x, y, w, h], "emotions": {...}}``, the box moved by
    (``dx``, ``dy``)."""
    box = face.box
    return {"box": [int(box.x) + dx, int(box.y) + dy, int(box.w), int(box.h)], "emotions": emotion_scores(face.probs)}


def top_of(face: FaceDict) -> tuple[str, float]:
    """The most probable emotion of one face dictionary and its score."""
    emotions = face["emotions"]
    label = max(emotions, key=emotions.get)
    return label, emotions[label]


# --- FER ----------------------------------------------------------------------------------------------------


class FER:
    """The fer package's ``FER`` on fer-realtime's model: ``detect_emotions(image)`` → one
    ``{"box": [x, y, w, h], "emotions": {...}}`` per face, left to right.

    ``mtcnn`` is kept for compatibility: either way faces are found by YuNet (OpenCV's DNN detector, the one
    ``fer.load()`` uses; MTCNN is not needed for good detection). ``mtcnn=False`` keeps the fer package's Haar
    semantics of ``min_face_size`` (smaller faces are left out); ``mtcnn=True``, like its MTCNN, keeps every face
    found. ``cascade_file`` (without ``mtcnn``) uses that Haar cascade instead, with ``scale_factor``,
    ``min_neighbors`` and ``min_face_size``. ``use_tflite`` and ``offsets`` are accepted and ignored (the
    classifier is fer-realtime's ONNX model, on the face crop it was measured with); ``tfserving=True`` is refused.
    ``model`` (keyword only, fer-realtime's) is an expression model file, as for :func:`fer.load`. Raises
    :class:`fer.exceptions.InvalidModelFile` when it cannot be loaded."""

    def __init__(self, cascade_file: str | None = None, mtcnn: bool = False, tfserving: bool = False,
                 use_tflite: bool = True, scale_factor: float = 1.1, min_face_size: int = 50,
                 min_neighbors: int = 5, offsets: Sequence[int] = (10, 10), *, model: str | Path | None = None):
        check_fer_options(tfserving, scale_factor, min_face_size, min_neighbors, offsets)
        self.mtcnn = bool(mtcnn)
        haar = None if mtcnn or cascade_file is None else (cascade_file, scale_factor, min_neighbors)
        self.recognizer = load_recognizer(model, 0 if mtcnn else min_face_size, haar)
        self.emotions: list[FaceDict] = []  #: the faces of the latest detect_emotions call

    @property
    def classes(self) -> list[str]:
        """The expression classes of the model, in its output order."""
        return self.recognizer.classes

    def detect_emotions(self, img: Any, face_rectangles: Sequence[Sequence[int]] | None = None) -> list[FaceDict]:
        """Every face in ``img`` (a BGR/grey array as ``cv2.imread`` gives, a path, a data URI or a URL) with
        its emotions; an empty list when there is none. With ``face_rectangles`` ((x, y, w, h) boxes), those
        regions are classified instead of detected. Raises :class:`fer.exceptions.InvalidImage`."""
        rgb = image_from_input(img)
        if rgb is None:
            faces = []
        elif face_rectangles is None:
            faces = self.recognizer.detect(rgb)
        else:
            faces = self._classify(rgb, face_rectangles)
        self.emotions = [face_dict(f) for f in faces]
        return self.emotions

    def batch_detect_emotions(self, imgs: Sequence[Any]) -> list[list[FaceDict]]:
        """:meth:`detect_emotions` of each image."""
        return [self.detect_emotions(img) for img in imgs]

    def top_emotion(self, img: Any) -> tuple[str | None, float | None]:
        """The first face's most probable emotion and its score, or ``(None, None)`` when no face is found."""
        faces = self.detect_emotions(img)
        return top_of(faces[0]) if faces else (None, None)

    def find_faces(self, img: Any, bgr: bool = True) -> list[list[int]]:
        """The faces' boxes ``[x, y, w, h]``, left to right (``bgr=False``: a 3-channel array is RGB)."""
        rgb = image_from_input(img, bgr)
        return [] if rgb is None else [[b.x, b.y, b.w, b.h] for b in self.recognizer.detector.detect(rgb)]

    def _classify(self, rgb: np.ndarray, rectangles: Sequence[Sequence[int]]) -> list[FaceResult]:
        height, width = rgb.shape[:2]
        boxes = []
        for r in rectangles:
            try:
                x, y, w, h = (int(v) for v in r[:4])
            except (TypeError, ValueError):
                raise ValueError(f"face_rectangles: {r!r} is not an (x, y, w, h) box") from None
            boxes.append(Box(x, y, w, h).clip(width, height))
        if not boxes:
            return []
        probs = self.recognizer.classify(rgb, boxes)
        return [FaceResult(b, dict(zip(self.classes, map(float, p)))) for b, p in zip(boxes, probs)]

    def __repr__(self) -> str:
        return (f"fer.FER({self.recognizer.predictor.describe()}; detector: {self.recognizer.detector_name}; "
                f"mtcnn={self.mtcnn})")


def check_fer_options(tfserving: bool, scale_factor: float, min_face_size: int, min_neighbors: int,
                      offsets: Sequence[int]) -> None:
    """The fer package's checks of ``FER``'s arguments (ValueError, as there), and the options refused here."""
    if tfserving:
        raise ValueError("tfserving=True: fer-realtime runs its own ONNX model in this process, not the fer "
                         "package's Keras model on TensorFlow Serving; leave tfserving out")
    if scale_factor <= 1.0:
        raise ValueError("scale_factor must be greater than 1.0")
    if min_face_size < 1:
        raise ValueError("min_face_size must be at least 1")
    if min_neighbors < 0:
        raise ValueError("min_neighbors must be non-negative")
    if not isinstance(offsets, (tuple, list)) or len(offsets) != 2:
        raise ValueError("offsets must be a tuple or list of length 2")


def load_recognizer(model: str | Path | None, min_face: int,
                    haar: tuple[str, float, int] | None = None) -> FaceRecognizer:
    """fer-realtime's recognizer (the model at ``model``, default the shipped one) with YuNet, or with the Haar
    cascade ``haar`` = (cascade file, scale factor, min neighbours); faces under ``min_face`` pixels left out."""
    try:
        recognizer = FaceRecognizer.load(model, "yunet", min_face)
    except ModelLoadError as e:
        raise InvalidModelFile(str(e)) from None
    if haar is None:
        return recognizer
    cascade, scale_factor, min_neighbors = haar
    if not Path(cascade).is_file():
        raise FileNotFoundError(f"cascade_file {cascade}: no such file")
    detector = HaarFaceDetector(cascade, PHOTO_DETECT_WIDTH, scale_factor, min_neighbors, min_face_fraction=0.0,
                                min_face=min_face)
    return FaceRecognizer(recognizer.predictor, detector, detector, recognizer.crop)


# --- Video --------------------------------------------------------------------------------------------------


class Video:
    """The fer package's ``Video``: ``analyze(detector)`` runs a :class:`FER` over a video file; ``to_pandas``,
    ``get_first_face``, ``get_emotions`` and ``to_csv`` reshape its results. Frames are read and analysed on
    fer-realtime's video path (:meth:`fer.serving.recognize.FaceRecognizer.file_session`, as ``fer.load().video``).
    Raises :class:`fer.serving.video.VideoError` when the file does not exist."""

    def __init__(self, video_file: str | Path, outdir: str | Path = "output", first_face_only: bool = True,
                 tempfile: str | None = None):
        self.filepath = str(video_file)
        if not os.path.isfile(self.filepath):
            raise VideoError(f"{os.path.abspath(self.filepath)}: no such video file")
        self.filename = os.path.basename(self.filepath)
        self.outdir = str(outdir)
        self.first_face_only = first_face_only
        self.tempfile = tempfile

    def analyze(self, detector: FER, display: bool = False, output: str = "csv", frequency: int | None = None,
                max_results: int | None = None, save_fps: int | None = None, video_id: str | None = None,
                save_frames: bool = True, save_video: bool = True, annotate_frames: bool = True,
                zip_images: bool = True, detection_box: dict | None = None, lang: str = "en",
                include_audio: bool = False, size_multiplier: int = 1, batch_size: int = 1,
                use_async_io: bool = True) -> list | pd.DataFrame:
        """The emotions of the faces in every ``frequency``-th frame (or ``fps // save_fps``-th), up to
        ``max_results`` analysed frames, as the fer package returns them: ``output="csv"`` → a list of row dicts
        (``box0``, ``angry0``, ..., ``box1``...; one per frame with a face) also written to ``data.csv`` in the
        current folder; ``output="pandas"`` → :meth:`to_pandas` of them. Faces are numbered left to right in each
        frame; ``detection_box`` ({x_min, x_max, y_min, y_max}) analyses that region only (boxes in the whole
        frame's pixels). As the fer package does, by default each analysed frame is saved, annotated, as a JPG in
        ``outdir`` (``save_frames``, zipped into ``images.zip`` with ``zip_images``) and into the video
        ``outdir/<name>_output.mp4`` (``save_video``; H.264; via ``tempfile`` when given); ``display`` shows them
        in an OpenCV window (needs an OpenCV with GUI support; ``q`` stops). ``batch_size`` and ``use_async_io``
        are accepted and ignored (frames are classified in batches anyway); other ``lang`` than ``"en"``,
        ``size_multiplier`` other than 1 and ``include_audio`` are refused."""
        if not isinstance(detector, FER):
            raise TypeError(f"detector: expected a fer.FER, got {type(detector).__name__}")
        check_video_options(output, frequency, max_results, save_fps, detection_box, lang, include_audio,
                            size_multiplier, batch_size)
        reader = VideoReader(self.filepath)
        try:
            every = frame_step(frequency, save_fps, reader.fps)
            outputs = FrameOutputs(Path(self.outdir), video_id or Path(self.filepath).stem,
                                   Path(self.filepath).stem, reader.fps, save_frames, save_video, annotate_frames,
                                   zip_images, display, self.tempfile)
            frames = self._analyze_frames(detector.recognizer, reader, every, max_results, detection_box, outputs)
        finally:
            reader.close()
        return self.to_format(frames, output)

    def _analyze_frames(self, recognizer: FaceRecognizer, reader: VideoReader, every: int, max_results: int | None,
                        detection_box: dict | None, outputs: FrameOutputs) -> list[list[FaceDict]]:
        """Each analysed frame's faces (frames without a face left out, as in the fer package), in frame order."""
        from fer.core.cli import progress

        region = Region.of(detection_box)
        frames: list[list[FaceDict]] = []

        def record(result: FrameResult) -> None:
            if not result.analysed:
                return
            outputs.add(result.index, result.frame, result.faces)
            if result.faces:
                frames.append([face_dict(f, region.x0, region.y0) for f in result.faces])

        session = recognizer.file_session(every, record)
        last = max_results * every if max_results else None
        total = min(filter(None, (reader.frames_expected, last)), default=None)
        bar = progress(None, total, self.filename, "frame")
        try:
            for index, t, frame in reader.frames():
                if (last is not None and index >= last) or outputs.stopped:
                    break
                session.detect_async(region.cut(frame), 1000 * t)
                bar.update()
            session.flush()
        finally:
            bar.close()
            outputs.close()
        if reader.problem:
            log.warning(reader.problem)
        return frames

    def to_format(self, data: list, format: str) -> list | pd.DataFrame:
        """``data`` as ``format`` says: ``"csv"`` → :meth:`to_csv`, ``"pandas"`` → :meth:`to_pandas`."""
        if format not in OUTPUT_FORMATS:
            raise ValueError(f"output={format!r}: choose one of {', '.join(OUTPUT_FORMATS)}")
        return self.to_csv(data) if format == "csv" else self.to_pandas(data)

    @staticmethod
    def frame_rows(data: list) -> list[dict]:
        """Frames (lists of face dicts) → one row per frame: ``box0, angry0, ..., box1, angry1, ...``; rows (dicts)
        pass through."""
        rows = []
        for frame in data:
            if isinstance(frame, dict):
                rows.append(frame)
                continue
            row: dict = {}
            for i, face in enumerate(frame):
                row[f"box{i}"] = face["box"]
                row.update({f"{name}{i}": score for name, score in face["emotions"].items()})
            rows.append(row)
        return rows

    _to_dict = frame_rows  # the fer package's name

    def to_pandas(self, data: list | pd.DataFrame) -> pd.DataFrame:
        """The results (frames or rows of :meth:`analyze`) as a DataFrame, one row per frame with a face; only
        the first face's columns (unnumbered: ``box, angry, ...``) when ``first_face_only``."""
        import pandas as pd

        if isinstance(data, pd.DataFrame):
            return data
        if not len(data):
            return pd.DataFrame()
        df = pd.DataFrame(self.frame_rows(data))
        return self.get_first_face(df) if self.first_face_only else df

    @staticmethod
    def get_first_face(df: pd.DataFrame) -> pd.DataFrame:
        """The first face's columns of a table of numbered faces, without their number (``angry0`` → ``angry``);
        a table of one face comes back as it is."""
        import pandas as pd

        if not isinstance(df, pd.DataFrame):
            raise TypeError(f"get_first_face: expected a pandas DataFrame (from to_pandas), got {type(df).__name__}")
        if not any(re.fullmatch(r"\D+\d+", str(c)) for c in df.columns):
            return df
        first = [c for c in df.columns if re.fullmatch(r"\D+0", str(c))]
        single = df[first].copy()
        single.columns = [c[:-1] for c in first]
        return single

    @staticmethod
    def get_emotions(df: pd.DataFrame) -> pd.DataFrame:
        """The emotion columns (all but the boxes)."""
        return df[[c for c in df.columns if "box" not in str(c)]]

    def to_csv(self, data: list, filename: str | Path = "data.csv") -> list[dict]:
        """Write the results (frames or rows of :meth:`analyze`) to ``filename``, one row per frame with a face,
        columns ordered as the fer package orders them (by name, then face number); returns the rows."""
        rows = self.frame_rows(data)
        columns = sorted(set().union(*(row.keys() for row in rows)), key=column_order)
        with open(filename, "w", newline="") as f:
            writer = csv.DictWriter(f, columns, lineterminator="\n")
            if columns:
                writer.writeheader()
            writer.writerows(rows)
        return rows


def column_order(column: str) -> tuple[str, int]:
    """``angry1`` → ("angry", 1): the fer package's CSV column order."""
    match = re.fullmatch(r"(\D+)(\d+)", column)
    return (match[1], int(match[2])) if match else (column, -1)


def check_video_options(output: str, frequency: int | None, max_results: int | None, save_fps: int | None,
                        detection_box: dict | None, lang: str, include_audio: bool, size_multiplier: int,
                        batch_size: int) -> None:
    """Refuse, before any work, the options ``Video.analyze`` cannot honour, each with what to do instead."""
    if output not in OUTPUT_FORMATS:
        raise ValueError(f"output={output!r}: choose one of {', '.join(OUTPUT_FORMATS)}")
    for name, value in (("frequency", frequency), ("save_fps", save_fps), ("batch_size", batch_size)):
        if value is not None and value < 1:
            raise ValueError(f"{name}={value}: must be 1 or more")
    if max_results is not None and max_results < 0:
        raise ValueError(f"max_results={max_results}: must be 0 (no limit) or more")
    if detection_box is not None and (not isinstance(detection_box, dict)
                                      or set(detection_box) - set(DETECTION_BOX_KEYS)):
        raise ValueError(f"detection_box={detection_box!r}: expected a dict with keys among "
                         f"{', '.join(DETECTION_BOX_KEYS)}")
    if lang != "en":
        raise ValueError(f"lang={lang!r}: the annotated frames are labelled in English only here; leave lang out")
    if size_multiplier != 1:
        raise ValueError(f"size_multiplier={size_multiplier}: labels here are scaled to each face and frame; "
                         f"leave size_multiplier out")
    if include_audio:
        raise ValueError("include_audio=True: the annotated video has no sound here; add the original's with "
                         "ffmpeg (ffmpeg -i OUT.mp4 -i IN.mp4 -map 0:v -map 1:a -c copy OUT_audio.mp4)")


def frame_step(frequency: int | None, save_fps: int | None, fps: float) -> int:
    """Analyse every N-th frame: ``frequency``, or ``fps // save_fps`` (the fer package's rule), at least 1."""
    if save_fps is not None:
        return max(1, int(fps // save_fps))
    return int(frequency) if frequency else 1


class Region:
    """The part of each frame ``detection_box`` names (missing keys: to the edge)."""

    def __init__(self, x0: int = 0, x1: int | None = None, y0: int = 0, y1: int | None = None):
        self.x0, self.x1, self.y0, self.y1 = x0, x1, y0, y1

    @classmethod
    def of(cls, detection_box: dict | None) -> Region:
        """The region of a ``detection_box`` dictionary (``x_min``, ``x_max``, ``y_min``, ``y_max``; missing ones:
        the frame's edges)."""
        box = detection_box or {}
        return cls(int(box.get("x_min") or 0), box.get("x_max"), int(box.get("y_min") or 0), box.get("y_max"))

    def cut(self, frame: np.ndarray) -> np.ndarray:
        """This region of ``frame``; ``ValueError`` when it holds no pixel."""
        region = frame[self.y0:self.y1, self.x0:self.x1]
        if region.size == 0:
            raise ValueError(f"detection_box: the region x {self.x0}:{self.x1}, y {self.y0}:{self.y1} is empty in a "
                             f"{frame.shape[1]}×{frame.shape[0]} frame")
        return np.ascontiguousarray(region)


class FrameOutputs:
    """What ``Video.analyze`` writes besides its results, as the fer package does: each analysed frame (annotated
    with ``annotate``) as ``outdir/<prefix><frame>.jpg`` (``save_frames``; zipped into ``outdir/images.zip`` at the
    end with ``zip_images``), the video ``outdir/<stem>_output.mp4`` (``save_video``; written to ``tempfile``
    first when given), an OpenCV window (``display``)."""

    WINDOW = "Video"

    def __init__(self, outdir: Path, prefix: str, stem: str, fps: float, save_frames: bool, save_video: bool,
                 annotate: bool, zip_images: bool, display: bool, tempfile: str | None = None):
        self.outdir, self.prefix, self.fps = outdir, prefix, fps
        self.save_frames, self.save_video, self.annotate = save_frames, save_video, annotate
        self.zip_images, self.display, self.tempfile = zip_images, display, tempfile
        self.video_path = outdir / f"{stem}_output.mp4"
        self.frame_files: list[Path] = []
        self.writer: VideoWriter | None = None
        self.stopped = False  # ``q`` pressed in the window
        if display:
            open_window(self.WINDOW)
        if save_frames or save_video:
            outdir.mkdir(parents=True, exist_ok=True)

    def add(self, index: int, rgb: np.ndarray, faces: list[FaceResult]) -> None:
        """One analysed frame with its faces."""
        if not (self.save_frames or self.save_video or self.display):
            return
        image = rgb.copy() if self.annotate else rgb
        for face in faces if self.annotate else ():
            draw_face(image, face.box, face.label, face.confidence)
        if self.save_frames:
            path = self.outdir / f"{self.prefix}{index}.jpg"
            if not cv2.imwrite(str(path), image[..., ::-1]):
                raise VideoError(f"{path}: the frame could not be written here")
            self.frame_files.append(path)
        if self.save_video:
            if self.writer is None:
                self.writer = VideoWriter(Path(self.tempfile or self.video_path), self.fps, rgb.shape[1], rgb.shape[0])
            self.writer.write(image)
        if self.display:
            cv2.imshow(self.WINDOW, image[..., ::-1])
            self.stopped = cv2.waitKey(1) & 0xFF == ord("q")

    def close(self) -> None:
        """Finish the video, zip the frames, close the window."""
        if self.writer is not None:
            self.writer.close()
            if self.tempfile:
                os.replace(self.tempfile, self.video_path)
        if self.zip_images and self.frame_files:
            with zipfile.ZipFile(self.outdir / "images.zip", "w") as archive:
                for path in self.frame_files:
                    archive.write(path, arcname=path.name)
                    path.unlink()
        if self.display:
            cv2.destroyWindow(self.WINDOW)


def open_window(name: str) -> None:
    """An OpenCV window, or a clear error where OpenCV has no GUI (fer-realtime installs the headless build)."""
    try:
        cv2.namedWindow(name)
    except cv2.error:
        raise ValueError("display=True: this OpenCV has no window support (fer-realtime installs "
                         "opencv-python-headless); use save_video=True, or watch live in the app (fer-app)") from None
