"""Videos, folders and the one-call API end to end on real files: clips written from real photos (a moving
face, a cut to no face, two faces), truncated and garbage files, a folder with a bad image."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import ROOT, run_cli
from PIL import Image

from fer.evaluation.scenes import write_clip

N_FRAMES = 30  # 3 s at 10 frames/s: frames 0-11 one moving face, 12-17 none, 18-29 two faces


@pytest.fixture(scope="module")
def model():
    import fer

    return fer.load()


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return write_clip(tmp_path_factory.mktemp("clip") / "scene.mp4", 320, 240, N_FRAMES, 10)


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def ids_by_frame(rows: list[dict]) -> dict[int, list[int]]:
    found: dict[int, list[int]] = {}
    for r in rows:
        found.setdefault(int(r["frame"]), []).append(int(r["face_id"]))
    return found


def test_video_cli_writes_tracked_rows_annotated_video_and_plots(clip, tmp_path):
    out = tmp_path / "out"
    result = run_cli("-m", "fer.video", str(clip), "--out", str(out), "--quiet")
    assert "30 frames" in result.stdout and "Traceback" not in result.stderr
    rows = read_csv(out / "scene.csv")
    ids = ids_by_frame(rows)
    assert {f: len(v) for f, v in ids.items() if f < 12} == {f: 1 for f in range(12)}  # one face, every frame
    assert len({v[0] for f, v in ids.items() if f < 12}) == 1  # ...with one id while it moves
    assert not any(12 <= f < 18 for f in ids)  # the cut: no face, no rows
    two = [tuple(sorted(v)) for f, v in ids.items() if f >= 18]
    assert len(two) == 12 and len(set(two)) == 1 and len(two[0]) == 2  # two faces, stable ids
    assert ids[0][0] not in two[0]  # a face after a cut is a new face
    first = rows[0]
    assert float(first["time_s"]) == 0 and float(rows[-1]["time_s"]) == pytest.approx(2.9, abs=0.01)
    probs = [float(first[c]) for c in ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")]
    assert sum(probs) == pytest.approx(1, abs=1e-3) and first["label"] == "happy"  # the astronaut smiles
    assert first["right_eye_x"] and 0 < float(first["score"]) <= 1
    video = cv2.VideoCapture(str(out / "scene.annotated.mp4"))
    assert video.get(cv2.CAP_PROP_FRAME_COUNT) == N_FRAMES and video.get(cv2.CAP_PROP_FRAME_WIDTH) == 320
    import av

    with av.open(str(out / "scene.annotated.mp4")) as container:  # H.264, which browsers play
        assert container.streams.video[0].codec_context.name == "h264"
    assert "VP80" not in result.stderr and "FFMPEG" not in result.stderr
    summary = json.loads((out / "scene.json").read_text())
    assert summary["complete"] and summary["frames_read"] == N_FRAMES and len(summary["face_ids"]) == 3
    assert all(Image.open(p).size[0] > 300 for p in summary["outputs"]["plots"])
    again = run_cli("-m", "fer.video", str(clip), "--out", str(out), check=False)  # results are never overwritten
    assert again.returncode == 2 and "already exists" in again.stderr and "--overwrite" in again.stderr


def test_truncated_video_keeps_a_partial_csv_marked_as_such(tmp_path):
    avi = write_clip(tmp_path / "cut.avi", 320, 240, N_FRAMES, 10)
    data = avi.read_bytes()
    avi.write_bytes(data[:len(data) // 2])
    result = run_cli("-m", "fer.video", str(avi), "--out", str(tmp_path / "out"), "--quiet", check=False)
    assert result.returncode == 1 and "breaks off after frame" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "out" / "cut.csv").exists()
    rows = read_csv(tmp_path / "out" / "cut.partial.csv")
    assert 0 < len(rows) < N_FRAMES and all(int(r["frame"]) < N_FRAMES // 2 + 2 for r in rows)
    summary = json.loads((tmp_path / "out" / "cut.json").read_text())
    assert summary["complete"] is False and "breaks off" in summary["problem"]


@pytest.mark.parametrize("name, make", [
    ("truncated.mp4", lambda p: p.write_bytes(write_clip(p, 320, 240, 10, 10).read_bytes()[:5000])),
    ("notes.mp4", lambda p: p.write_text("not a video\n" * 100)),
    ("empty.mov", lambda p: p.write_bytes(b"")),
])
def test_unreadable_video_is_a_clear_error(tmp_path, name, make):
    path = tmp_path / name
    make(path)
    result = run_cli("-m", "fer.video", str(path), "--out", str(tmp_path / "out"), check=False)
    assert result.returncode == 2 and result.stderr.startswith(f"error: {path}") and "Traceback" not in result.stderr


def test_analyze_cli_on_a_folder_lists_the_bad_file_and_goes_on(tmp_path, astronaut):
    from skimage import data

    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    Image.fromarray(astronaut).save(folder / "astronaut.jpg")
    Image.fromarray(data.chelsea()).save(folder / "sub" / "cat.png")
    (folder / "sub" / "broken.jpg").write_bytes(b"not a jpeg" * 20)
    result = run_cli("-m", "fer.analyze", str(folder), "--csv", str(tmp_path / "faces.csv"),
                     "--json", str(tmp_path / "faces.json"), check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "2 of 3 files read, 1 face found" in result.stderr and "\n1 file failed:\n" in result.stderr
    failed = next(line for line in result.stdout.splitlines() if "FAILED" in line)
    assert failed.count("broken.jpg") == 1  # the path once, then why
    rows = read_csv(tmp_path / "faces.csv")
    assert [(Path(r["file"]).name, r["frame"], r["face_id"], r["label"]) for r in rows] == [("astronaut.jpg", "0", "1", "happy")]
    files = {Path(f["file"]).name: f for f in json.loads((tmp_path / "faces.json").read_text())["files"]}
    assert files["cat.png"]["faces"] == [] and "error" in files["broken.jpg"] and len(files["astronaut.jpg"]["faces"]) == 1


def test_api_on_the_astronaut_photo(model, astronaut, tmp_path):
    path = tmp_path / "astronaut.png"
    Image.fromarray(astronaut).save(path)
    for source in (astronaut, path, str(path)):
        (face,) = model.analyze(source)
        assert face.label == "happy" and sum(face.probabilities.values()) == pytest.approx(1, abs=1e-4)
        assert 150 < face.box.x < 200 and set(face.landmarks) == {"right_eye", "left_eye", "nose", "mouth_right",
                                                                   "mouth_left"}
    assert model.analyze(np.zeros((100, 100, 3), np.uint8)) == []


def test_api_video_returns_a_dataframe(model, clip):
    df = model.video(clip, every=2)
    assert set(df["frame"]) <= set(range(0, N_FRAMES, 2)) and df.attrs["complete"]
    assert df.attrs["frames_read"] == N_FRAMES and df.attrs["frames_analysed"] == N_FRAMES // 2
    assert list(df.columns[:4]) == ["frame", "time_s", "face_id", "x"] and (df["label"] == df[model.classes].idxmax(axis=1)).all()


def test_import_fer_stays_light():
    code = "import sys, fer; print(sorted(m for m in ('torch', 'fastai', 'cv2', 'gradio') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         env={"PYTHONPATH": str(ROOT), "PATH": ""})
    assert out.stdout.strip() == "[]", out.stderr


def test_evaluate_on_photos_says_it_expects_crops_or_detects_first(model, astronaut, tmp_path):
    from skimage import data

    from fer.evaluate import format_report
    from fer.evaluation.evaluate import evaluate
    from fer.serving.detect import make_detector

    (tmp_path / "happy").mkdir()
    (tmp_path / "neutral").mkdir()
    Image.fromarray(astronaut).save(tmp_path / "happy" / "astronaut.jpg")
    Image.fromarray(data.chelsea()).save(tmp_path / "neutral" / "cat.jpg")
    whole = evaluate(model.recognizer.predictor, tmp_path)
    assert whole["n"] == 2 and whole["photo_like"] == 2 and "pass --detect" in format_report(whole)
    detected = evaluate(model.recognizer.predictor, tmp_path, detector=make_detector("yunet", 640))
    assert detected["n"] == 1 and detected["accuracy"] == 1 and "cat.jpg: no face found" in detected["skipped"][0]
    assert "pass --detect" not in format_report(detected)


@pytest.mark.parametrize("n_rows", [1, 3, 40])
def test_plot_of_faces_seen_briefly_or_long(tmp_path, n_rows):
    from fer.serving.video import plot_faces

    classes = ["happy", "sad"]
    rows = [{"face_id": 1, "time_s": i / 30, "happy": 0.8, "sad": 0.2} for i in range(n_rows)]
    path = plot_faces(rows, [1], classes, tmp_path / "face.png", "clip")
    assert Image.open(path).size[0] > 300


def write_phone_clip(path: Path, n_frames: int = 10) -> Path:
    """A clip stored sideways (as phones record) with the MP4 rotation tag that turns it upright: the
    track header's display matrix set to a 90° turn (OpenCV's writer cannot set it, so it is patched)."""
    import struct

    from fer.evaluation.scenes import clip_frames

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (240, 320))
    for frame in clip_frames(320, 240, n_frames):
        writer.write(cv2.cvtColor(cv2.rotate(frame, cv2.ROTATE_90_CLOCKWISE), cv2.COLOR_RGB2BGR))
    writer.release()
    data = bytearray(path.read_bytes())
    at = data.find(b"tkhd") + 44  # version-0 track header: the 3×3 matrix follows 40 bytes of fields
    assert data[at - 40] == 0
    data[at:at + 36] = struct.pack(">9i", 0, -0x10000, 0, 0x10000, 0, 0, 0, 0, 0x40000000)
    path.write_bytes(data)
    return path


def test_rotated_phone_video_is_turned_upright(model, tmp_path):
    df = model.video(write_phone_clip(tmp_path / "phone.mp4"))
    assert (df.attrs["width"], df.attrs["height"]) == (320, 240)  # upright, as the tag says
    assert set(df[df["frame"] < 4]["frame"]) == {0, 1, 2, 3} and (df[df["frame"] < 4]["label"] == "happy").all()


def make_variable_rate(path: Path) -> Path:
    """Rewrite an OpenCV MP4's sample durations (its ``stts`` box, behind the frame data) to alternate
    0.05 s and 0.15 s, as phones record when the light or load changes; the boxes holding it grow to match."""
    import struct

    data = bytearray(path.read_bytes())
    at = data.find(b"stts") - 4
    size = struct.unpack(">I", data[at:at + 4])[0]
    count, delta = struct.unpack(">II", data[at + 16:at + 24])
    deltas = [delta // 2 if k % 2 == 0 else delta * 3 // 2 for k in range(count)]  # same total length
    body = struct.pack(">4sII", b"stts", 0, count) + b"".join(struct.pack(">II", 1, d) for d in deltas)
    for parent in (b"moov", b"trak", b"mdia", b"minf", b"stbl"):
        start = data.rfind(parent, 0, at) - 4
        data[start:start + 4] = struct.pack(">I", struct.unpack(">I", data[start:start + 4])[0] + 4 + len(body) - size)
    data[at:at + size] = struct.pack(">I", 4 + len(body)) + body
    path.write_bytes(data)
    return path


def test_variable_frame_rate_video_gets_each_frames_own_time(model, tmp_path):
    df = model.video(make_variable_rate(write_clip(tmp_path / "vfr.mp4", 320, 240, 10, 10)))
    assert df.attrs["complete"] and df.attrs["frames_read"] == 10
    assert list(df[df["frame"] < 4]["time_s"]) == pytest.approx([0, 0.05, 0.2, 0.25], abs=1e-3)


def test_video_without_faces(model, tmp_path):
    from fer.evaluation.scenes import background

    path = tmp_path / "cup.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (320, 240))
    for i in range(8):
        writer.write(cv2.cvtColor(np.roll(background("coffee", 320, 240), 5 * i, axis=1), cv2.COLOR_RGB2BGR))
    writer.release()
    df = model.video(path, out_dir=tmp_path / "out")
    assert df.empty and df.attrs["complete"] and df.attrs["face_ids"] == [] and df.attrs["frames_read"] == 8
    assert read_csv(tmp_path / "out" / "cup.csv") == [] and not list((tmp_path / "out").glob("*.png"))
    assert cv2.VideoCapture(str(tmp_path / "out" / "cup.annotated.mp4")).get(cv2.CAP_PROP_FRAME_COUNT) == 8


def test_live_timeline_keeps_the_last_window_and_redraws_once_a_second():
    from fer.serving.timeline import EmotionTimeline

    timeline = EmotionTimeline(window_s=30, refresh_s=1)
    for i in range(400):  # 40 s at 10 frames/s; no face in frames 100-149
        timeline.add(None if 100 <= i < 150 else {"happy": 0.9, "sad": 0.1}, now=i / 10)
    table = timeline.table(now=39.9)
    assert table["seconds"].min() >= -30 and table["seconds"].max() == 0
    assert len(table) == 2 * (1 + 250)  # the frame 30 s ago, then the frames since the face came back
    assert not table["seconds"].between(-29.95, -25.05).any()  # the seconds without a face stay empty
    assert [timeline.due(now=t) for t in (0, 0.5, 1.0, 1.2, 2.5)] == [True, False, True, False, True]


def test_a_stopped_run_names_the_files_it_really_left(tmp_path):
    from fer.serving.video import OutputPaths, kept

    out = OutputPaths(tmp_path, "clip")
    assert kept(out) == "nothing was written"
    (tmp_path / "clip.annotated.mp4").write_bytes(b"x")
    (tmp_path / "clip.csv").write_text("frame\n")  # complete, renamed, then e.g. plotting failed
    message = kept(out)
    assert "clip.csv" in message and "clip.annotated.mp4" in message and "partial" not in message


def test_annotated_video_of_odd_size_is_h264_that_drops_one_pixel_row_and_column(tmp_path):
    import av

    from fer.serving.video import VideoError, VideoWriter

    writer = VideoWriter(tmp_path / "odd.mp4", 29.97, 321, 241)
    for i in range(12):
        writer.write(np.full((241, 321, 3), 20 * i, np.uint8))
    writer.write(np.zeros((480, 640, 3), np.uint8))  # the stream changed resolution: scaled to the first
    writer.close()
    with av.open(str(tmp_path / "odd.mp4")) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.name, stream.width, stream.height, stream.frames) == ("h264", 320, 240, 13)
        assert abs(float(stream.average_rate) - 29.97) < 0.01
    with pytest.raises(VideoError, match="MP4"):
        VideoWriter(tmp_path / "x.webm", 30, 64, 48)
