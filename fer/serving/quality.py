"""How much a face's label can be trusted from how the face was seen: its size, the detector's score, how far the
head is tilted (roll) and turned (yaw) by the detector's five landmarks, and how sharp the classifier's input is.

Each measure maps to a score from 0 (the classifier cannot be trusted on such faces) to 1 (no harm measured) by a
ramp between two limits; the face's ``quality`` is the lowest of them (the measure that sets it is its
``limit``), and its ``band`` is ``good``, ``fair`` or ``poor``. The limits come from ``benchmarks/quality_bands.py``
(docs/quality_bands.md): accuracy by measure on the evaluation suite's crops and on crops made smaller, turned
and blurred on purpose. A measure the detector does not give (Haar: no landmarks, no score) is left out.

The page's live view computes the same in app/static/live/quality.js (tests/test_live_view.py checks both agree).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from fer.serving.detect import Box

#: (limit at which a measure scores 0, limit from which it scores 1); between them the score is linear (for
#: sharpness, in the logarithm). Set where accuracy is read off PublicTest's crops (docs/quality_bands.md, by
#: measure): size, the shorter side of the detector's box in the photo (px; the classifier sees 48), 23.8% right
#: under 16 px, no gain from 32; YuNet's score, accuracy rising up to 0.9; roll and yaw, degrees either way
#: (YuNet's eye points read only part of a head's tilt); sharpness, the variance of the Laplacian of the 48×48
#: grey classifier input, about 25-30% right under 80 and no gain from 300 (FER-2013's faces: median about 2,000).
SIZE_LIMITS = (16.0, 32.0)
SCORE_LIMITS = (0.6, 0.9)
ROLL_LIMITS = (45.0, 20.0)
YAW_LIMITS = (60.0, 30.0)
SHARPNESS_LIMITS = (80.0, 300.0)
#: The lowest quality of each band, best first; below the last is ``poor``.
BANDS = (("good", 0.75), ("fair", 0.35))
POOR = "poor"


def ramp(value: float, limits: tuple[float, float]) -> float:
    """0 at ``limits[0]``, 1 at ``limits[1]`` (either may be the larger), linear between, clipped to [0, 1]."""
    low, high = limits
    return float(min(1.0, max(0.0, (value - low) / (high - low))))


def sharpness(face: np.ndarray) -> float:
    """The variance of the Laplacian (3×3, borders reflected) of a grey face: low when it is blurred, enlarged
    from a few pixels or flat."""
    return float(cv2.Laplacian(face, cv2.CV_64F).var())


def yaw_angle(box: Box) -> float | None:
    """The head's turn left or right in degrees, estimated from where the nose lies between the eyes (0: frontal;
    positive: towards the image's right); None without landmarks. The nose tip stands about half the eyes'
    distance in front of them, so its offset along the eye line, over half that distance, is tan(yaw)."""
    if len(box.landmarks) < 3:
        return None
    (rx, ry), (lx, ly), (nx, ny) = box.landmarks[:3]
    half = math.hypot(lx - rx, ly - ry) / 2
    if half < 1e-6:
        return None
    offset = ((nx - (rx + lx) / 2) * (lx - rx) + (ny - (ry + ly) / 2) * (ly - ry)) / (2 * half) / half
    return math.degrees(math.atan(offset))


def roll_angle(box: Box) -> float | None:
    """The eye line's tilt in degrees (:meth:`Box.roll_angle`); None without landmarks."""
    return box.roll_angle() if len(box.landmarks) >= 2 else None


@dataclass(frozen=True)
class FaceQuality:
    """What the detector and the crop say about one face (see the module's notes): ``size`` (px), detector
    ``score``, ``roll`` and ``yaw`` (degrees), ``sharpness``; ``value`` the quality (0–1), ``band``, and
    ``limit``, the measure that set it (None when none is below 1)."""

    size: int
    score: float | None
    roll: float | None
    yaw: float | None
    sharpness: float
    value: float
    band: str
    limit: str | None

    def as_dict(self) -> dict:
        """JSON-ready, rounded."""
        def r(v, digits=1):
            return None if v is None else round(v, digits)
        return {"quality": round(self.value, 3), "band": self.band, "limit": self.limit, "size": self.size,
                "score": r(self.score, 4), "roll": r(self.roll), "yaw": r(self.yaw), "sharpness": r(self.sharpness)}


def band_of(value: float) -> str:
    """The band of a quality value (:data:`BANDS`)."""
    return next((name for name, low in BANDS if value >= low), POOR)


def measure_scores(size: float, score: float | None, roll: float | None, yaw: float | None,
                   sharp: float) -> dict[str, float]:
    """Each measure's score (0–1) by its limits; measures that are None (not given by the detector) are left out."""
    scores = {"size": ramp(size, SIZE_LIMITS), "sharpness": ramp(math.log(max(sharp, 1e-6)), _log(SHARPNESS_LIMITS))}
    if score is not None:
        scores["score"] = ramp(score, SCORE_LIMITS)
    if roll is not None:
        scores["roll"] = ramp(abs(roll), ROLL_LIMITS)
    if yaw is not None:
        scores["yaw"] = ramp(abs(yaw), YAW_LIMITS)
    return scores


def face_quality(box: Box, face: np.ndarray) -> FaceQuality:
    """The quality of the face in ``box`` (as the detector gave it, in the photo's pixels) whose classifier
    input is ``face`` (the 48×48 grey crop)."""
    size = min(box.w, box.h)
    roll, yaw, sharp = roll_angle(box), yaw_angle(box), sharpness(face)
    scores = measure_scores(size, box.score, roll, yaw, sharp)
    weakest = min(scores, key=scores.get)
    value = scores[weakest]
    return FaceQuality(size, box.score, roll, yaw, sharp, value, band_of(value), weakest if value < 1 else None)


def _log(limits: tuple[float, float]) -> tuple[float, float]:
    return math.log(limits[0]), math.log(limits[1])


@dataclass(frozen=True)
class UncertaintyRule:
    """When a face is reported as uncertain ("not sure": no label, its probabilities kept): when its top
    probability is under ``min_confidence`` or its quality (:func:`face_quality`) under ``min_quality``. Both 0,
    the default of the library and the commands: never. The app's page has its own default (app/settings.py),
    chosen on ``benchmarks/not_sure.py``'s curve (docs/not_sure.md)."""

    min_confidence: float = 0.0
    min_quality: float = 0.0

    def __post_init__(self):
        for name in ("min_confidence", "min_quality"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name}={value}: must be between 0 and 1")

    def is_uncertain(self, confidence: float, quality: FaceQuality | None) -> bool:
        """Whether a face with this top probability and quality (None: unknown, not held against it) is not sure."""
        return confidence < self.min_confidence or (quality is not None and quality.value < self.min_quality)

    def as_dict(self) -> dict:
        """The rule as the page's settings take it (JSON-ready)."""
        return {"minConfidence": self.min_confidence, "minQuality": self.min_quality}
