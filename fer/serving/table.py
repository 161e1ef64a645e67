"""Faces as table rows: the columns the CSV files of ``fer.analyze`` and ``fer.video`` share."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from fer.serving.detect import LANDMARK_NAMES

if TYPE_CHECKING:
    from fer.serving.recognize import FaceResult

BOX_COLUMNS = ("x", "y", "w", "h", "score")
LANDMARK_COLUMNS = tuple(f"{name}_{axis}" for name in LANDMARK_NAMES for axis in ("x", "y"))
#: A face's quality (:mod:`fer.serving.quality`): the value, its band, and the measures the box does not hold.
QUALITY_COLUMNS = ("quality", "quality_band", "roll", "yaw", "sharpness")


def face_columns(classes: Sequence[str]) -> list[str]:
    """Box, detector score, landmarks (x, y per point), quality, one probability per class, label."""
    return [*BOX_COLUMNS, *LANDMARK_COLUMNS, *QUALITY_COLUMNS, *classes, "label"]


def face_row(face: FaceResult) -> dict:
    """One face as a row for :func:`face_columns` (empty landmark, score, roll and yaw cells when the detector
    has none; an empty label when the face is not sure)."""
    box = face.box
    row: dict = {"x": box.x, "y": box.y, "w": box.w, "h": box.h,
                 "score": "" if box.score is None else round(box.score, 4)}
    points = [round(v, 1) for point in box.landmarks for v in point]
    row.update(zip(LANDMARK_COLUMNS, points or [""] * len(LANDMARK_COLUMNS)))
    quality = face.quality.as_dict() if face.quality else {}
    row.update({"quality": quality.get("quality", ""), "quality_band": quality.get("band", "")})
    row.update({k: "" if quality.get(k) is None else quality[k] for k in ("roll", "yaw", "sharpness")})
    row.update({c: round(float(p), 5) for c, p in face.probs.items()})
    row["label"] = face.label or ""
    return row


class CsvTable:
    """Rows appended to a CSV file as they come, flushed each time, so an interrupted run keeps them."""

    def __init__(self, path: Path, columns: Sequence[str]):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.file = open(self.path, "w", newline="")  # noqa: SIM115 - open for the whole run, closed by close()
        self.writer = csv.DictWriter(self.file, list(columns))
        self.writer.writeheader()

    def add(self, rows: list[dict]) -> None:
        """Append ``rows`` and flush them to disk."""
        self.writer.writerows(rows)
        self.file.flush()

    def close(self) -> None:
        """Close the file."""
        self.file.close()
