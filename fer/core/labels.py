"""The one place that names the classes."""

from __future__ import annotations

#: FER-2013 class names, in label order (``emotion`` 0–6 in the CSV).
FER2013_CLASSES: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")

#: FER+ adds contempt; the other seven keep their FER-2013 names and order.
FERPLUS_CLASSES: tuple[str, ...] = FER2013_CLASSES + ("contempt",)

#: How a new model orders its classes: FER-2013's label order (then any others alphabetically), or all
#: alphabetically (fastai's default, which the shipped model was trained with).
CLASS_ORDERS: tuple[str, ...] = ("labels", "alphabetical")

#: FER+ vote columns → our class names (``unknown`` and ``NF`` are not classes).
FERPLUS_COLUMNS: dict[str, str] = {
    "neutral": "neutral", "happiness": "happy", "surprise": "surprise", "sadness": "sad",
    "anger": "angry", "disgust": "disgust", "fear": "fear", "contempt": "contempt",
}

#: CSV ``Usage`` → image-folder split.
USAGE_TO_SPLIT: dict[str, str] = {"Training": "train", "PublicTest": "valid", "PrivateTest": "test"}

#: Side of the square grey faces in FER-2013; crops at inference are brought to this size first.
FACE_SIZE = 48
