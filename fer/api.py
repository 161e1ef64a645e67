"""The one-call Python API.

    import fer
    m = fer.load()                      # the shipped model, YuNet face detector
    faces = m.analyze("photo.jpg")      # list[Face]: box, label, probabilities, landmarks
    table = m.video("clip.mp4")         # pandas DataFrame: one row per analysed frame and face
    df = m.analyze_many(["photos/", "clips/"], workers=2)   # many files side by side: one DataFrame
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fer.batch import ModelSpec
from fer.detect import DETECTORS
from fer.images import FULL_SIZE, ImageError, as_rgb_frame, load_image
from fer.recognize import FaceRecognizer, FaceResult

#: A face found in a photo: ``box`` (x, y, w, h, score, landmarks), ``label``, ``confidence``,
#: ``probabilities`` (class → probability) and ``landmarks`` (name → (x, y)).
Face = FaceResult



class Model:
    """A face detector and an expression classifier, ready to use; made by :func:`fer.load`."""

    def __init__(self, recognizer: FaceRecognizer, spec: ModelSpec | None = None):
        self.recognizer = recognizer
        self.spec = spec  # how worker processes load the same model (set by fer.load)

    @property
    def classes(self) -> list[str]:
        return self.recognizer.classes

    def analyze(self, image: np.ndarray | str | Path) -> list[Face]:
        """Every face in a photo (a file path, or an RGB/grey uint8 array), left to right.
        Raises :class:`fer.images.ImageError` naming the problem for a file that is not a usable image."""
        return self.recognizer.analyze(read_image(image))

    def video(self, path: str | Path, every: int = 1, out_dir: str | Path | None = None):
        """A video's faces as a pandas DataFrame, one row per analysed frame and face (columns as the CSV of
        ``python -m fer.video``: frame, time_s, face_id, box, landmarks, probabilities, label). With ``out_dir``
        the annotated MP4, CSV and plots are written there too. Raises :class:`fer.video.VideoError` for a
        file that cannot be read; a file that breaks off partway gives the rows read so far, with
        ``df.attrs["complete"] == False`` and ``df.attrs["problem"]`` saying why."""
        from fer.video import analyze_video_to_frame

        return analyze_video_to_frame(self.recognizer, path, every=every, out_dir=out_dir)

    def analyze_many(self, paths, workers: int = 1, threads: int | None = None, csv: str | Path | None = None,
                     resume: bool = False, overwrite: bool = False, address: str | None = None,
                     engine: str = "local", every: int = 1, files_from=()):
        """Photos and videos (files, folders searched recursively, text files of paths in ``files_from``)
        analysed side by side, as one pandas DataFrame: ``file, frame, time_s, face_id``, box, landmarks,
        probabilities, label (a photo's faces are frame 0, numbered left to right; a video's every
        ``every``-th frame with tracked ids). ``workers`` processes here, each loading this model once
        (``threads`` each; default the cores divided by the workers); ``workers=1`` runs here on this model.
        ``engine="dask"`` or an ``address`` (``DASK_SCHEDULER_ADDRESS``) runs on Dask. With ``csv`` the rows
        are also written there as files finish, and ``resume`` continues such a table (the DataFrame is then
        the whole table). Files that fail are in ``df.attrs["failures"]`` (``{"file", "error"}``)."""
        return self._many(paths, ("photo", "video"), "photo", workers, threads, csv, resume, overwrite, address,
                          engine, every, files_from, None)

    def video_many(self, paths, workers: int = 1, threads: int | None = None, csv: str | Path | None = None,
                   resume: bool = False, overwrite: bool = False, address: str | None = None,
                   engine: str = "local", every: int = 1, files_from=(), out_dir: str | Path | None = None):
        """:meth:`analyze_many` for videos (folders are searched for videos only); with ``out_dir`` each
        video's annotated video, CSV, plots and summary are written there too, as by :meth:`video`."""
        return self._many(paths, ("video",), "video", workers, threads, csv, resume, overwrite, address, engine,
                          every, files_from, out_dir)

    def _many(self, paths, kinds, default_kind, workers, threads, csv, resume, overwrite, address, engine, every,
              files_from, out_dir):
        from fer.batch import (BatchTable, JobOptions, batch_columns, collect_inputs, default_threads, make_engine,
                               outcomes_frame, process, read_table)
        from fer.video import batch_analyzers

        if isinstance(paths, (str, Path)):
            paths = [paths]
        remote = engine == "dask" or address
        if (workers > 1 or remote) and self.spec is None:
            raise ValueError("this Model was not made by fer.load(), so worker processes cannot load it: "
                             "use workers=1, or fer.load(...)")
        tasks, outcomes = collect_inputs(paths, files_from, kinds, default_kind)
        if threads is None and (workers > 1 or remote):
            threads = 1 if address else default_threads(workers)
        out = str(Path(out_dir).resolve()) if out_dir else None
        options = JobOptions(self.spec or ModelSpec(), threads, every, out, overwrite or resume, batch_analyzers())
        table = BatchTable(Path(csv), resume=resume, overwrite=overwrite) if csv else None
        try:
            for outcome in outcomes if table else ():
                table.add(outcome)
            with make_engine(workers, address, engine, self.recognizer) as runner:
                outcomes += process(tasks, options, runner, table)
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
         score: float | None = None) -> Model:
    """The model at ``model`` (default: the shipped FER-2013 model) with the named face detector
    (``"yunet"`` or ``"haar"``); faces under ``min_face`` pixels are ignored, ``score`` is YuNet's threshold.
    The classifier is compiled here, so the first photo is as fast as the rest. Raises
    :class:`fer.card.ModelLoadError` naming the file when it cannot be used."""
    spec = ModelSpec.of(model, detector, min_face, score)
    return Model(FaceRecognizer.load(model, detector, min_face, score), spec)
