"""The one-call Python API.

    import fer
    m = fer.load()                      # the shipped model, YuNet face detector
    faces = m.analyze("photo.jpg")      # list[Face]: box, label, probabilities, landmarks
    table = m.video("clip.mp4")         # pandas DataFrame: one row per analysed frame and face
    df = m.analyze_many(["photos/", "clips/"], workers=2)   # many files side by side: one DataFrame
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from fer.core.images import FULL_SIZE, ImageError, as_rgb_frame, load_image
from fer.serving.batch import BatchOptions, ModelSpec
from fer.serving.detect import DETECTORS
from fer.serving.recognize import FaceRecognizer, FaceResult

#: A face found in a photo: ``box`` (x, y, w, h, score, landmarks), ``label`` (None: not sure), ``predicted``,
#: ``confidence``, ``probabilities`` (class → probability), ``landmarks`` (name → (x, y)) and ``quality``.
Face = FaceResult



class Model:
    """A face detector and an expression classifier, ready to use; made by :func:`fer.load`."""

    def __init__(self, recognizer: FaceRecognizer, spec: ModelSpec | None = None):
        self.recognizer = recognizer
        self.spec = spec  # how worker processes load the same model (set by fer.load)

    @property
    def classes(self) -> list[str]:
        """The expression classes, in the order of the model's outputs."""
        return self.recognizer.classes

    def analyze(self, image: np.ndarray | str | Path) -> list[Face]:
        """Every face in a photo (a file path, or an RGB/grey uint8 array), left to right.
        Raises :class:`fer.core.images.ImageError` naming the problem for a file that is not a usable image."""
        return self.recognizer.analyze(read_image(image))

    def video(self, path: str | Path, every: int = 1, out_dir: str | Path | None = None):
        """A video's faces as a pandas DataFrame, one row per analysed frame and face (columns as the CSV of
        ``python -m fer.video``: frame, time_s, face_id, box, landmarks, probabilities, label). With ``out_dir``
        the annotated MP4, CSV and plots are written there too. Raises :class:`fer.serving.video.VideoError` for a
        file that cannot be read; a file that breaks off partway gives the rows read so far, with
        ``df.attrs["complete"] == False`` and ``df.attrs["problem"]`` saying why."""
        from fer.serving.video import analyze_video_to_frame

        return analyze_video_to_frame(self.recognizer, path, every=every, out_dir=out_dir)

    def analyze_many(self, paths, options: BatchOptions | None = None, **fields):
        """Photos and videos (files, folders searched recursively, text files of paths in ``files_from``)
        analysed side by side, as one pandas DataFrame: ``file, frame, time_s, face_id``, box, landmarks,
        probabilities, label (a photo's faces are frame 0, numbered left to right; a video's every
        ``every``-th frame with tracked ids). How: a :class:`fer.serving.batch.BatchOptions`, or its fields as
        keywords (``workers=2, csv="faces.csv", resume=True``...): ``workers`` processes here, each loading
        this model once; ``workers=1`` runs here on this model; ``engine="dask"`` or an ``address`` runs on Dask.
        With ``csv`` the rows are also written there as files finish, and ``resume`` continues such a table
        (the DataFrame is then the whole table). Files that fail are in ``df.attrs["failures"]``."""
        return self._many(paths, ("photo", "video"), "photo", options or BatchOptions(**fields))

    def video_many(self, paths, options: BatchOptions | None = None, **fields):
        """:meth:`analyze_many` for videos (folders are searched for videos only); with ``out_dir`` each
        video's annotated video, CSV, plots and summary are written there too, as by :meth:`video`."""
        return self._many(paths, ("video",), "video", options or BatchOptions(**fields))

    def _many(self, paths, kinds: tuple[str, ...], default_kind: str, options: BatchOptions):
        from fer.serving.batch import batch_columns, collect_inputs, outcomes_frame, process, read_table
        from fer.serving.video import batch_analyzers

        options.check()
        if isinstance(paths, (str, Path)):
            paths = [paths]
        if (options.workers > 1 or options.remote) and self.spec is None:
            raise ValueError("this Model was not made by fer.load(), so worker processes cannot load it: "
                             "use workers=1, or fer.load(...)")
        tasks, outcomes = collect_inputs(paths, options.files_from, kinds, default_kind)
        job = options.job(self.spec or ModelSpec(), batch_analyzers())
        if options.workers == 1 and not options.remote and options.threads is None:
            job = replace(job, threads=None)  # this process: leave its threads as they are
        table = options.table()
        try:
            for outcome in outcomes if table else ():
                table.add(outcome)
            with options.engine_for(self.recognizer) as runner:
                outcomes += process(tasks, job, runner, table)
        finally:
            if table:
                table.close()
        columns = batch_columns(self.classes)
        return read_table(table.path, table.failures_path, columns) if table else outcomes_frame(outcomes, columns)

    def __repr__(self) -> str:
        return f"fer.Model({self.recognizer.predictor.describe()}; detector: {self.recognizer.detector_name})"


def read_image(image: np.ndarray | str | Path) -> np.ndarray:
    """A path → the decoded RGB photo (EXIF rotation applied); an array → RGB uint8."""
    if isinstance(image, (str, Path)):
        return load_image(image, name=str(image), max_side=FULL_SIZE)
    rgb = as_rgb_frame(image)
    if rgb is None:
        raise ImageError(f"array of shape {np.shape(image)}: not an image (expected H×W, H×W×3 or H×W×4, "
                         f"at least 16 px a side)")
    return rgb


def load(model: str | Path | None = None, detector: str = DETECTORS[0], min_face: int = 0,
         score: float | None = None, min_confidence: float = 0.0, min_quality: float = 0.0) -> Model:
    """The model at ``model`` (default: the shipped FER-2013 model) with the named face detector
    (``"yunet"`` or ``"haar"``); faces under ``min_face`` pixels are ignored, ``score`` is YuNet's threshold.
    A face whose top probability is under ``min_confidence``, or whose quality is under ``min_quality``, is
    reported as not sure (``label`` None, probabilities kept; both 0 by default: off; docs/not_sure.md).
    The classifier is compiled here, so the first photo is as fast as the rest. Raises
    :class:`fer.core.card.ModelLoadError` naming the file when it cannot be used, ValueError for a threshold
    outside 0-1."""
    spec = ModelSpec.of(model, detector, min_face, score, min_confidence, min_quality)
    return Model(FaceRecognizer.load(model, detector, min_face, score, min_confidence, min_quality), spec)
