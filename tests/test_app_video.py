"""The app's Video tab through gradio_client, with the shipped model: a clip made from real photos comes
back as a browser-playable annotated video, a plot and the per-frame CSV; bad files get a message."""

from __future__ import annotations

import csv

import av
import cv2
import pytest
from PIL import Image

from fer.core.card import DEFAULT_MODEL  # noqa: E402
from fer.evaluation.scenes import write_clip
from fer_app.testing import running_app


@pytest.fixture(scope="module")
def client():
    from gradio_client import Client

    with running_app(DEFAULT_MODEL) as (url, _, _):
        yield Client(url, verbose=False)


def analyze_video(client, path):
    from gradio_client import handle_file

    return client.predict(handle_file(str(path)), api_name="/analyze_video")


def video_path(value) -> str | None:
    return value.get("video") if isinstance(value, dict) else value


def test_video_tab_returns_annotated_video_plot_and_csv(client, tmp_path):
    clip = write_clip(tmp_path / "scene.mp4", 320, 240, 30, 10)
    video, plot, table, status = analyze_video(client, clip)
    assert status.startswith("30 frames (320×240)") and "faces #1, #2, #3" in status
    annotated = cv2.VideoCapture(video_path(video))
    assert video_path(video).endswith(".mp4") and annotated.get(cv2.CAP_PROP_FRAME_WIDTH) == 320
    with av.open(video_path(video)) as container:  # H.264, which browsers play
        assert container.streams.video[0].codec_context.name == "h264"
    assert sum(1 for _ in iter(lambda: annotated.read()[0], False)) == 30
    assert Image.open(plot).size[0] > 300
    with open(table, newline="") as f:
        rows = list(csv.DictReader(f))
    assert {int(r["face_id"]) for r in rows} == {1, 2, 3} and len(rows) == 12 + 2 * 12


@pytest.mark.parametrize("name, content", [("notes.mp4", b"not a video\n" * 50), ("cut.mp4", None)])
def test_video_tab_bad_files_get_a_message(client, tmp_path, name, content):
    path = tmp_path / name
    if content is None:
        content = write_clip(tmp_path / "whole.mp4", 160, 120, 10, 10).read_bytes()[:3000]
    path.write_bytes(content)
    video, _, table, status = analyze_video(client, path)
    assert status.startswith("**Cannot use this file.**") and video is None and table is None
    assert str(tmp_path) not in status  # names the file, not the server's temporary folder


def test_video_tab_refuses_long_clips(client, tmp_path):
    clip = write_clip(tmp_path / "long.avi", 64, 48, 31 * 5, 5)  # 31 s
    video, _, _, status = analyze_video(client, clip)
    assert "31 s long" in status and "up to 30 s" in status and video is None


def test_result_folders_are_swept_only_when_their_files_are_old(tmp_path):
    import os
    import time

    from fer_app.files import ResultFiles

    results = ResultFiles(keep_s=60, parent=tmp_path)
    folder = results.folder()
    (folder / "clip.annotated.mp4").write_bytes(b"still being written")
    long_ago = time.time() - 3600
    os.utime(folder, (long_ago, long_ago))
    results.folder()  # every new request sweeps
    assert folder.exists()  # a long video still being written keeps its folder
    os.utime(folder / "clip.annotated.mp4", (long_ago, long_ago))
    results.folder()
    assert not folder.exists()
    results.close()
