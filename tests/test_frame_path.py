"""One frame path: a photo, a video file, the server's webcam stream and a batch run give the same faces for the
same frames, because each goes through the recognizer's one detect → crop → classify (and, for streams, the one
tracker in :class:`fer.serving.recognize.VideoSession`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import fer
from fer.core.card import DEFAULT_MODEL
from fer.evaluation.scenes import write_clip
from fer.serving.recognize import FaceRecognizer, RunningMode
from fer.serving.table import face_row
from fer.serving.video import VideoReader, analyze_video

KEYS = ("x", "y", "w", "h")


@pytest.fixture(scope="module")
def recognizer() -> FaceRecognizer:
    return FaceRecognizer.load(DEFAULT_MODEL)


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return write_clip(tmp_path_factory.mktemp("clip") / "scene.mp4", 320, 240, 20, 10)


@pytest.fixture(scope="module")
def frames(clip) -> list[np.ndarray]:
    reader = VideoReader(clip)
    try:
        return [frame for _, _, frame in reader.frames()]
    finally:
        reader.close()


def rows_by_frame(rows) -> dict[int, list[dict]]:
    """``frame → [{x, y, w, h, class: probability...}]``, left to right, from rows (dicts or a DataFrame's)."""
    out: dict[int, list[dict]] = {}
    for row in rows:
        out.setdefault(int(row["frame"]), []).append(row)
    return {f: sorted(r, key=lambda row: int(row["x"])) for f, r in out.items()}


def same_faces(expected: list[dict], found: list[dict], classes: list[str], where: str) -> None:
    assert [tuple(int(r[k]) for k in KEYS) for r in found] == [tuple(int(r[k]) for k in KEYS) for r in expected], where
    for e, f in zip(expected, found):
        assert np.allclose([float(f[c]) for c in classes], [float(e[c]) for c in classes], atol=2e-5), where


def test_photo_video_webcam_stream_and_batch_agree(recognizer, clip, frames, tmp_path):
    classes = recognizer.classes
    photo = {i: [face_row(f) for f in recognizer.detect(frame)] for i, frame in enumerate(frames)}
    assert sum(map(len, photo.values())) >= len(frames)  # faces on most frames, two on some

    _, rows = analyze_video(recognizer, clip)  # a video file: every frame searched whole, batched
    video = rows_by_frame(rows)

    stream = recognizer.session(RunningMode.VIDEO, full_detect_every=1).bind(recognizer, recognizer.detector)
    webcam = {i: [face_row(f) for f in stream.detect_for_video(frame, 100 * i).faces]
              for i, frame in enumerate(frames)}  # the webcam stream's path, one frame at a time

    photos = tmp_path / "frames"
    photos.mkdir()
    for i, frame in enumerate(frames):
        Image.fromarray(frame).save(photos / f"{i:02d}.png")
    batch = fer.load().analyze_many([clip, photos], workers=1)
    batch_video = rows_by_frame(r for _, r in batch[batch.file == str(clip)].iterrows())
    batch_photos = {int(Path(file).stem): sorted((r for _, r in group.iterrows()), key=lambda r: int(r["x"]))
                    for file, group in batch[batch.file != str(clip)].groupby("file")}

    for i in range(len(frames)):
        expected = sorted(photo[i], key=lambda r: r["x"])
        same_faces(expected, video.get(i, []), classes, f"video file, frame {i}")
        same_faces(expected, sorted(webcam[i], key=lambda r: r["x"]), classes, f"webcam stream, frame {i}")
        same_faces(expected, batch_video.get(i, []), classes, f"batch video, frame {i}")
        same_faces(expected, batch_photos.get(i, []), classes, f"batch photo, frame {i}")


def test_tracked_ids_agree_between_the_file_and_the_stream(recognizer, clip, frames):
    _, rows = analyze_video(recognizer, clip)
    stream = recognizer.session(full_detect_every=1).bind(recognizer, recognizer.detector)
    ids = [(i, f.face_id) for i, frame in enumerate(frames) for f in stream.detect_for_video(frame, 100 * i).faces]
    assert sorted(ids) == sorted((r["frame"], r["face_id"]) for r in rows)


def test_a_live_stream_answers_every_frame_in_order_in_batches(recognizer, frames):
    answered = []
    session = recognizer.file_session(every=3, result_callback=answered.append, batch_frames=4)
    for i, frame in enumerate(frames):
        session.detect_async(frame, 100 * i)
    session.flush()
    assert [r.index for r in answered] == list(range(len(frames)))
    assert [r.analysed for r in answered] == [i % 3 == 0 for i in range(len(frames))]
    with pytest.raises(ValueError, match="IMAGE mode has no session"):
        recognizer.session(RunningMode.IMAGE)
