"""Drawing boxes and labels onto RGB images."""

from __future__ import annotations

import cv2
import numpy as np

from fer.detect import Box

#: One colour per class (RGB), falling back to white for classes not listed.
CLASS_COLOURS: dict[str, tuple[int, int, int]] = {
    "angry": (230, 57, 70), "disgust": (106, 153, 78), "fear": (155, 93, 229), "happy": (255, 190, 11),
    "sad": (58, 134, 255), "surprise": (255, 0, 110), "neutral": (200, 200, 200), "contempt": (251, 133, 0),
}


def draw_face(image: np.ndarray, box: Box, label: str, confidence: float, face_id: int | None = None) -> None:
    """Draw one box with ``label NN%`` (``#id label NN%`` given a ``face_id``) above it, in place; line width
    and text scale follow the box."""
    colour = CLASS_COLOURS.get(label, (255, 255, 255))
    thickness = max(2, round(min(image.shape[:2]) / 240))
    cv2.rectangle(image, (box.x, box.y), (box.x + box.w, box.y + box.h), colour, thickness)
    text = f"{label} {confidence:.0%}" if face_id is None else f"#{face_id} {label} {confidence:.0%}"
    scale = max(0.5, box.w / 200)
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    top = box.y - th - base - 4 if box.y - th - base - 4 >= 0 else box.y + box.h  # below the box at the top edge
    cv2.rectangle(image, (box.x, top), (box.x + tw + 6, top + th + base + 4), colour, -1)
    cv2.putText(image, text, (box.x + 3, top + th + 2), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thickness,
                cv2.LINE_AA)


def draw_message(image: np.ndarray, text: str) -> None:
    """A short status line in the top-left corner, in place."""
    scale = max(0.5, image.shape[1] / 900)
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    cv2.rectangle(image, (0, 0), (tw + 10, th + base + 10), (0, 0, 0), -1)
    cv2.putText(image, text, (5, th + 5), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
