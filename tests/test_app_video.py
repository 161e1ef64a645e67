"""The app's Video tab through gradio_client, with the shipped model: a clip made from real photos comes
back as a browser-playable annotated video, a plot and the per-frame CSV; bad files get a message."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import av
import cv2
import pytest
from PIL import Image

from fer.core.card import DEFAULT_MODEL
from fer.evaluation.scenes import write_clip
from fer_app.testing import running_app


@pytest.fixture(scope="module")
def app():
    """The app's URL and its log."""
    with running_app(DEFAULT_MODEL) as (url, _, log):
        yield url, log


@pytest.fixture(scope="module")
def client(app):
    from gradio_client import Client

    return Client(app[0], verbose=False)


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


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """A long clip (300 frames) and a short one (30), of the same size."""
    folder = tmp_path_factory.mktemp("clips")
    return write_clip(folder / "long.mp4", 320, 240, 300, 30), write_clip(folder / "short.mp4", 320, 240, 30, 30)


def timed(client, clip) -> float:
    import time

    start = time.perf_counter()
    status = analyze_video(client, clip)[3]
    assert status.startswith(("30 frames", "300 frames")), status
    return time.perf_counter() - start


def wait_until_under_way(job, timeout: float = 120.0) -> None:
    """Until the app reports progress on ``job`` (a gradio_client Job): its analysis has started, whatever the
    upload took on a busy machine."""
    import time

    deadline = time.monotonic() + timeout
    while not job.status().progress_data:
        assert not job.done() and time.monotonic() < deadline, "the analysis never reported progress"
        time.sleep(0.2)


def test_a_short_clip_is_not_stuck_behind_a_long_one(app, clips):
    """Issue 32: a second viewer's 3-s clip waited 69 s behind a long one. The shortest job goes first, frame by
    frame (app/jobs.py): the short clip finishes within its own time plus one frame of the long one (a few
    seconds here, for uploads and a busy machine), and before the long one."""
    import time

    from gradio_client import Client

    from gradio_client import handle_file

    long_clip, short_clip = clips
    first, second = Client(app[0], verbose=False), Client(app[0], verbose=False)
    alone = timed(second, short_clip)
    done = {}
    job = first.submit(handle_file(str(long_clip)), api_name="/analyze_video")
    job.add_done_callback(lambda _: done.setdefault("long", time.perf_counter()))
    wait_until_under_way(job)
    behind = timed(second, short_clip)
    short_done = time.perf_counter()
    assert job.result(timeout=600)[3].startswith("300 frames")
    assert behind <= 1.5 * alone + 2.0, f"the short clip took {behind:.1f} s beside the long one, {alone:.1f} s alone"
    assert done["long"] > short_done  # the long one was still running


def test_a_long_clip_can_be_stopped(app, clips):
    """The Video tab's stop button ends the viewer's own analysis between two frames; what was done is kept as a
    partial table."""
    import re
    import time

    from gradio_client import Client, handle_file

    viewer = Client(app[0], verbose=False)
    job = viewer.submit(handle_file(str(clips[0])), api_name="/analyze_video")
    wait_until_under_way(job)
    assert viewer.predict(api_name="/stop_video") == "**Stopped.**"
    log = app[1]
    log.seek(0)
    temp = Path(re.search(r"temporary files: (\S+)", log.read()).group(1))
    def stopped() -> list[Path]:  # the summaries of clips that did not run to the end
        return [p for p in temp.rglob("clip.json") if not json.loads(p.read_text())["complete"]]

    deadline = time.monotonic() + 30
    while not stopped() and time.monotonic() < deadline:
        time.sleep(0.2)  # the summary is written when the analysis ends
    (summary,) = stopped()
    report = json.loads(summary.read_text())
    assert not report["complete"] and "cancelled after" in report["problem"] and report["frames_read"] < 300
    with open(summary.with_name("clip.partial.csv"), newline="") as f:
        assert len({r["frame"] for r in csv.DictReader(f)}) <= report["frames_read"]  # what was done is kept
    assert viewer.predict(api_name="/stop_video") == "Nothing to stop."
    job.cancel()
