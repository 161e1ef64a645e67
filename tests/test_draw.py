"""Labels drawn on faces: readable at the size photos are shown (scaled to the image), black or white text
by contrast with the class colour."""

from __future__ import annotations

import numpy as np
import pytest

from fer.serving.detect import Box
from fer.serving.draw import CLASS_COLOURS, apca_contrast, draw_face, text_colour


@pytest.mark.parametrize("label, expected", [("sad", (255, 255, 255)), ("angry", (255, 255, 255)),
                                             ("happy", (0, 0, 0)), ("neutral", (0, 0, 0))])
def test_label_text_is_black_or_white_by_contrast(label, expected):
    background = CLASS_COLOURS[label]
    assert text_colour(background) == expected
    assert apca_contrast(expected, background) >= 60  # APCA's level for label-sized text


def test_apca_contrast_is_symmetric_in_extremes_and_zero_for_equal_colours():
    assert apca_contrast((0, 0, 0), (255, 255, 255)) == pytest.approx(106, abs=1)
    assert apca_contrast((255, 255, 255), (0, 0, 0)) == pytest.approx(108, abs=1)
    assert apca_contrast((90, 90, 90), (90, 90, 90)) == 0


def label_height(width: int, height: int, box: Box) -> int:
    """Height in pixels of the filled label drawn above ``box`` on a black image."""
    image = np.zeros((height, width, 3), np.uint8)
    draw_face(image, box, "sad", 0.45)
    column = image[:box.y, box.x + 1]  # just inside the label's left edge, above the box
    return int((column == CLASS_COLOURS["sad"]).all(axis=1).sum())


def test_labels_scale_with_the_image_not_only_the_face():
    small_face = Box(600, 400, 60, 60)
    on_group_photo = label_height(1280, 886, small_face)
    on_webcam_frame = label_height(640, 480, Box(300, 200, 60, 60))
    assert on_group_photo >= 1280 * 0.025  # ≥ 15 px when the photo is shown 600 px wide
    assert on_group_photo > 1.5 * on_webcam_frame
    assert label_height(1280, 886, Box(400, 400, 400, 400)) > on_group_photo  # a large face: larger still


def test_a_label_at_the_right_edge_moves_left_instead_of_being_cut():
    image = np.zeros((240, 320, 3), np.uint8)
    draw_face(image, Box(270, 100, 48, 48), "neutral", 0.86, face_id=3)
    label_rows = image[:100]
    columns = np.flatnonzero((label_rows == CLASS_COLOURS["neutral"]).all(axis=2).any(axis=0))
    assert columns.max() == 319 and columns.min() < 270  # the whole label, ending at the edge
