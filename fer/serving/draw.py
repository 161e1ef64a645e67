"""Drawing boxes and labels onto RGB images."""

from __future__ import annotations

import cv2
import numpy as np

from fer.serving.detect import Box

#: One colour per class (RGB), falling back to white for classes not listed.
CLASS_COLOURS: dict[str, tuple[int, int, int]] = {
    "angry": (230, 57, 70), "disgust": (106, 153, 78), "fear": (155, 93, 229), "happy": (255, 190, 11),
    "sad": (58, 134, 255), "surprise": (255, 0, 110), "neutral": (200, 200, 200), "contempt": (251, 133, 0),
}


def apca_contrast(text: tuple[int, int, int], background: tuple[int, int, int]) -> float:
    """Lightness contrast of ``text`` on ``background`` (sRGB 0-255) by APCA, the WCAG 3 draft's method
    (|Lc| 0-108; 60 and more reads well at label sizes). Unlike WCAG 2's ratio, which picks black on
    mid-tone colours such as this project's blue (6.0:1 against 3.5:1), it prefers white there, as readers do."""

    def luminance(rgb) -> float:
        y = sum(k * (c / 255) ** 2.4 for k, c in zip((0.2126729, 0.7151522, 0.0721750), rgb))
        return y + (0.022 - y) ** 1.414 if y < 0.022 else y  # APCA's soft clamp of near-black

    y_text, y_back = luminance(text), luminance(background)
    if y_back > y_text:  # dark text on a light background
        lc = (y_back ** 0.56 - y_text ** 0.57) * 1.14
        return 0.0 if lc < 0.1 else (lc - 0.027) * 100
    lc = (y_back ** 0.65 - y_text ** 0.62) * 1.14  # light text on a dark background
    return 0.0 if lc > -0.1 else -(lc + 0.027) * 100


def text_colour(background: tuple[int, int, int]) -> tuple[int, int, int]:
    """Black or white, whichever contrasts more with ``background`` (:func:`apca_contrast`)."""
    return max(((0, 0, 0), (255, 255, 255)), key=lambda c: apca_contrast(c, background))


def label_scale(image_shape: tuple[int, ...], box_width: int) -> float:
    """OpenCV font scale of a face's label: it follows the box, and is never under 1/1100 of the image's longer
    side (about 12 px high when a 1280-px photo is shown 600 px wide), so that labels stay readable at the
    size the image is displayed."""
    return max(0.5, box_width / 200, max(image_shape[:2]) / 1100)


#: What a face reported as not sure (label None) shows instead of ``label NN%``, in white.
NOT_SURE = "?"


def draw_face(image: np.ndarray, box: Box, label: str | None, confidence: float, face_id: int | None = None) -> None:
    """Draw one box with ``label NN%`` (``#id label NN%`` given a ``face_id``; :data:`NOT_SURE` when ``label`` is
    None) above it, in place: the label in black or white on the class colour (:func:`text_colour`), scaled to the
    box and the image (:func:`label_scale`)."""
    colour = CLASS_COLOURS.get(label, (255, 255, 255))
    thickness = max(2, round(min(image.shape[:2]) / 240))
    cv2.rectangle(image, (box.x, box.y), (box.x + box.w, box.y + box.h), colour, thickness)
    shown = NOT_SURE if label is None else f"{label} {confidence:.0%}"
    text = shown if face_id is None else f"#{face_id} {shown}"
    scale = label_scale(image.shape, box.w)
    weight = max(1, round(scale * 2))
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, weight)
    pad = max(2, round(th / 5))
    height = th + base + 2 * pad
    top = box.y - height if box.y - height >= 0 else box.y + box.h  # below the box at the top edge
    left = max(0, min(box.x, image.shape[1] - tw - 2 * pad))  # moved left rather than cut at the right edge
    cv2.rectangle(image, (left, top), (left + tw + 2 * pad, top + height), colour, -1)
    cv2.putText(image, text, (left + pad, top + pad + th), cv2.FONT_HERSHEY_SIMPLEX, scale, text_colour(colour),
                weight, cv2.LINE_AA)


def draw_message(image: np.ndarray, text: str) -> None:
    """A short status line in the top-left corner, in place."""
    scale = max(0.5, image.shape[1] / 900)
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    cv2.rectangle(image, (0, 0), (tw + 10, th + base + 10), (0, 0, 0), -1)
    cv2.putText(image, text, (5, th + 5), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
