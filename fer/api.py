"""The one-call Python API.

    import fer
    m = fer.load()                      # the shipped model, YuNet face detector
    faces = m.analyze("photo.jpg")      # list[Face]: box, label, probabilities, landmarks
    table = m.video("clip.mp4")         # pandas DataFrame: one row per analysed frame and face
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fer.detect import DETECTORS
from fer.images import ImageError, as_rgb_frame, load_image
from fer.recognize import FaceRecognizer, FaceResult

#: A face found in a photo: ``box`` (x, y, w, h, score, landmarks), ``label``, ``confidence``,
#: ``probabilities`` (class → probability) and ``landmarks`` (name → (x, y)).
Face = FaceResult

#: Photos are read at full size so boxes are in the file's own pixels (``load_image`` refuses what PIL calls a decompression bomb, over 89.5 MP).
FULL_SIZE = 1 << 16


class Model:
    """A face detector and an expression classifier, ready to use; made by :func:`fer.load`."""

    def __init__(self, recognizer: FaceRecognizer):
        self.recognizer = recognizer

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
    return Model(FaceRecognizer.load(model, detector, min_face, score))
