"""The fer package's API (PyPI ``fer``: ``from fer import FER, Video``) on our model, on our own images: the
astronaut (a public-domain face photo), coffee (no face) and a synthetic clip (one moving face, a cut to no
face, two faces). The fer package's own suite, with its photos, runs in benchmarks/fer_package_suite.py."""

from __future__ import annotations

import base64
import csv
import functools
import http.server
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from conftest import ROOT
from PIL import Image
from skimage import data

import fer
from fer import FER, Video
from fer.compat import EMOTIONS
from fer.evaluation.scenes import write_clip
from fer.exceptions import InvalidImage, InvalidModelFile
from fer.serving.video import VideoError

N_FRAMES = 30  # 3 s at 10 frames/s: frames 0-11 one moving face, 12-17 none, 18-29 two faces
WITH_FACES = [*range(12), *range(18, 30)]


@pytest.fixture(scope="module")
def detector() -> FER:
    return FER()


@pytest.fixture(scope="module")
def astronaut_bgr() -> np.ndarray:
    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


@pytest.fixture(scope="module")
def astronaut_png(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("photos") / "astronaut.png"
    Image.fromarray(data.astronaut()).save(path)
    return path


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return write_clip(tmp_path_factory.mktemp("clip") / "scene.mp4", 480, 360, N_FRAMES, 10)


def bgr_frames(path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while (frame := cap.read()[1]) is not None:
        frames.append(frame)
    return frames


# --- FER ----------------------------------------------------------------------------------------------------


def test_detect_emotions_gives_the_fer_package_dicts(detector, astronaut_bgr):
    faces = detector.detect_emotions(astronaut_bgr)
    assert len(faces) == 1 and set(faces[0]) == {"box", "emotions"}
    box, emotions = faces[0]["box"], faces[0]["emotions"]
    assert isinstance(box, list) and len(box) == 4 and all(type(v) is int for v in box)
    assert list(emotions) == list(EMOTIONS) == ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
    assert all(type(v) is float and v == round(v, 2) for v in emotions.values())
    assert sum(emotions.values()) == pytest.approx(1, abs=0.04) and max(emotions, key=emotions.get) == "happy"
    assert detector.emotions == faces


def test_detect_emotions_is_our_model_on_our_detector(detector, astronaut_bgr):
    """The same face and probabilities as fer.load(), rounded as the fer package rounds them."""
    ours = fer.load().analyze(data.astronaut())[0]
    face = detector.detect_emotions(astronaut_bgr)[0]
    assert face["box"] == [ours.box.x, ours.box.y, ours.box.w, ours.box.h]
    assert face["emotions"] == {c: round(ours.probabilities[c], 2) for c in EMOTIONS}


def test_arrays_are_bgr_and_paths_uris_grey_and_bgra_give_the_same_face(detector, astronaut_bgr, astronaut_png):
    expected = detector.detect_emotions(astronaut_bgr)
    uri = "data:image/png;base64," + base64.b64encode(astronaut_png.read_bytes()).decode()
    bgra = cv2.cvtColor(astronaut_bgr, cv2.COLOR_BGR2BGRA)
    for source in (str(astronaut_png), astronaut_png, cv2.imread(str(astronaut_png)), uri, bgra):
        assert detector.detect_emotions(source) == expected
    # an RGB array taken as BGR: the detector sees other colours, so the box moves (as it would in the fer package)
    assert detector.detect_emotions(data.astronaut())[0]["box"] != expected[0]["box"]
    assert detector.find_faces(data.astronaut(), bgr=False) == [expected[0]["box"]]
    grey = detector.detect_emotions(cv2.cvtColor(astronaut_bgr, cv2.COLOR_BGR2GRAY))
    assert len(grey) == 1 and box_iou(grey[0]["box"], expected[0]["box"]) > 0.8


def box_iou(a: list[int], b: list[int]) -> float:
    from fer.serving.detect import Box

    return Box(*a).iou(Box(*b))


def test_an_image_url_is_downloaded(detector, astronaut_png):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(astronaut_png.parent))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        assert detector.detect_emotions(url + "astronaut.png") == detector.detect_emotions(str(astronaut_png))
        with pytest.raises(InvalidImage, match="could not be downloaded"):
            detector.detect_emotions(url + "missing.png")
    finally:
        server.shutdown()


def test_top_emotion_is_the_first_faces_best(detector, astronaut_bgr):
    label, score = detector.top_emotion(astronaut_bgr)
    assert (label, score) == ("happy", detector.detect_emotions(astronaut_bgr)[0]["emotions"]["happy"])


def test_no_face_gives_an_empty_list(detector):
    coffee = cv2.cvtColor(data.coffee(), cv2.COLOR_RGB2BGR)
    assert detector.detect_emotions(coffee) == [] and detector.top_emotion(coffee) == (None, None)
    assert detector.detect_emotions(np.zeros((8, 8, 3), np.uint8)) == []  # too small to hold a face
    assert detector.batch_detect_emotions([coffee, coffee]) == [[], []]


def test_given_rectangles_are_classified_not_detected(detector, astronaut_bgr):
    found = detector.detect_emotions(astronaut_bgr)[0]
    assert detector.detect_emotions(astronaut_bgr, face_rectangles=[found["box"]]) == [found]
    assert detector.detect_emotions(astronaut_bgr, face_rectangles=np.array([found["box"]] * 2)) == [found, found]
    assert detector.detect_emotions(astronaut_bgr, face_rectangles=[]) == []
    with pytest.raises(ValueError, match="face_rectangles: 'abc' is not an"):
        detector.detect_emotions(astronaut_bgr, face_rectangles=["abc"])


@pytest.mark.parametrize("image, problem", [
    (None, "image is None"),
    ("missing.jpg", "missing.jpg: no such file"),
    (42, "image of type int"),
    (b"\x89PNG", "image of type bytes"),
    (np.zeros(100, np.uint8), "array of shape (100,)"),
    (np.zeros((0, 0, 3), np.uint8), "array of shape (0, 0, 3)"),
    (np.zeros((64, 64, 2), np.uint8), "array of shape (64, 64, 2)"),
    (np.full((64, 64), "a"), "dtype <U1"),
    ("data:image/png;base64,@@@", "does not decode"),
    ("data:image/png,raw", "expected data:image/<type>;base64"),
])
def test_bad_images_raise_invalid_image(detector, image, problem):
    with pytest.raises(InvalidImage) as caught:
        detector.detect_emotions(image)
    assert problem in str(caught.value) and isinstance(caught.value, ValueError)


def test_files_that_are_not_images_raise_invalid_image(detector, tmp_path):
    text = tmp_path / "example.py"
    text.write_text("print('not an image')\n")
    assert cv2.imread(str(text)) is None  # the fer package's own case: cv2.imread of a script
    with pytest.raises(InvalidImage, match="image is None"):
        detector.detect_emotions(cv2.imread(str(text)))
    with pytest.raises(InvalidImage, match="example.py"):
        detector.detect_emotions(text)


def test_mtcnn_keeps_the_faces_min_face_size_leaves_out(detector, astronaut_bgr):
    small = cv2.resize(astronaut_bgr, (160, 160))  # the face is about 30 px: under the default min_face_size 50
    assert detector.detect_emotions(small) == []
    assert len(FER(mtcnn=True).detect_emotions(small)) == 1
    assert len(FER(min_face_size=20).detect_emotions(small)) == 1


def test_a_cascade_file_uses_that_haar_cascade(astronaut_bgr):
    haar = FER(cascade_file=str(Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"))
    assert "Haar" in haar.recognizer.detector_name
    faces = haar.detect_emotions(astronaut_bgr)
    assert len(faces) == 1 and max(faces[0]["emotions"], key=faces[0]["emotions"].get) == "happy"
    with pytest.raises(FileNotFoundError, match="cascade_file nowhere.xml: no such file"):
        FER(cascade_file="nowhere.xml")


@pytest.mark.parametrize("options, problem", [
    ({"scale_factor": 1.0}, "scale_factor must be greater than 1.0"),
    ({"min_face_size": 0}, "min_face_size must be at least 1"),
    ({"min_neighbors": -1}, "min_neighbors must be non-negative"),
    ({"offsets": (1, 2, 3)}, "offsets must be a tuple or list of length 2"),
    ({"tfserving": True}, "tfserving=True: fer-realtime runs its own ONNX model"),
])
def test_bad_fer_options_are_refused(options, problem):
    with pytest.raises(ValueError, match=problem.replace("(", r"\(")):
        FER(**options)


def test_a_model_that_cannot_be_loaded_raises_invalid_model_file(tmp_path):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    with pytest.raises(InvalidModelFile, match="broken.onnx"):
        FER(model=broken)


# --- Video --------------------------------------------------------------------------------------------------


def test_analyze_with_the_defaults_writes_what_the_fer_package_writes(detector, clip, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rows = Video(str(clip)).analyze(detector, display=False)
    assert isinstance(rows, list) and len(rows) == len(WITH_FACES)  # one row per frame with a face
    one, two = rows[0], rows[-1]
    assert list(one) == ["box0", *(f"{e}0" for e in EMOTIONS)]
    assert list(two) == list(one) + ["box1", *(f"{e}1" for e in EMOTIONS)]
    assert two["box0"][0] < two["box1"][0]  # faces numbered left to right

    frames = bgr_frames(clip)  # each row is what detect_emotions says of its frame
    for row, index in ((rows[0], 0), (rows[5], 5), (rows[-1], 29)):
        assert Video.frame_rows([detector.detect_emotions(frames[index])]) == [row]

    with open("data.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert len(table) == len(rows) and list(table[-1])[:4] == ["angry0", "angry1", "box0", "box1"]
    assert table[0]["box0"] == str(rows[0]["box0"]) and float(table[0]["happy0"]) == rows[0]["happy0"]
    with zipfile.ZipFile("output/images.zip") as z:  # every analysed frame, annotated
        assert sorted(z.namelist()) == sorted(f"scene{i}.jpg" for i in range(N_FRAMES))
    assert not list(Path("output").glob("*.jpg"))
    assert len(bgr_frames(Path("output/scene_output.mp4"))) == N_FRAMES


def test_to_pandas_get_first_face_and_get_emotions(detector, clip, tmp_path):
    video = Video(clip, outdir=tmp_path / "out")
    frames = video.analyze(detector, output="pandas", save_frames=False, save_video=False)
    assert isinstance(frames, pd.DataFrame) and list(frames.columns) == ["box", *EMOTIONS]
    assert len(frames) == len(WITH_FACES) and (frames.happy > 0.5).all()  # the astronaut smiles in every frame
    assert video.get_first_face(frames) is frames  # one face already
    assert list(video.get_emotions(frames).columns) == list(EMOTIONS)
    assert not (tmp_path / "out").exists()  # nothing saved, nothing made

    everyone = Video(clip, first_face_only=False)
    table = everyone.to_pandas(frames_of(detector, clip))
    assert "box1" in table and table.box1.isna().sum() == 12 and len(table) == len(WITH_FACES)
    first = everyone.get_first_face(table)
    assert list(first.columns) == ["box", *EMOTIONS] and first.equals(frames)
    assert list(everyone.get_emotions(table).columns) == [c for c in table.columns if not c.startswith("box")]


def frames_of(detector: FER, clip: Path) -> list[list[dict]]:
    """The raw per-frame lists (what analyze reshapes), from detect_emotions on each BGR frame."""
    return [faces for frame in bgr_frames(clip) if (faces := detector.detect_emotions(frame))]


def test_frequency_max_results_and_save_fps_pick_the_frames(detector, clip):
    video = Video(clip)
    quiet = {"output": "pandas", "save_frames": False, "save_video": False}
    every_third = video.analyze(detector, frequency=3, **quiet)
    assert len(every_third) == len([i for i in WITH_FACES if i % 3 == 0])
    assert len(video.analyze(detector, frequency=3, max_results=3, **quiet)) == 3
    assert video.analyze(detector, save_fps=5, **quiet).equals(video.analyze(detector, frequency=2, **quiet))


def test_a_detection_box_analyses_that_region_in_frame_pixels(detector, clip):
    region = {"x_min": 240, "x_max": 480, "y_min": 0, "y_max": 360}
    table = Video(clip, first_face_only=False).analyze(detector, output="pandas", detection_box=region,
                                                       save_frames=False, save_video=False)
    assert "box1" not in table  # only the right-hand face of the two
    whole = Video(clip, first_face_only=False).to_pandas(frames_of(detector, clip))
    right = whole.box1.dropna().tolist()
    in_region = table.box0.tolist()[-len(right):]  # the same faces, found in the region, in the frame's pixels
    assert all(box[0] >= 240 and box_iou(box, seen) > 0.8 for box, seen in zip(in_region, right))


def test_to_csv_writes_the_named_file(detector, clip, tmp_path):
    video = Video(clip)
    raw = frames_of(detector, clip)
    rows = video.to_csv(raw, tmp_path / "faces.csv")
    with open(tmp_path / "faces.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert rows == Video.frame_rows(raw) and len(table) == len(raw)
    assert list(table[0]) == sorted(table[0], key=lambda c: (c.rstrip("0123456789"), int(c[-1])))
    assert video.to_csv([], tmp_path / "empty.csv") == [] and video.to_pandas([]).empty


@pytest.mark.parametrize("options, problem", [
    ({"output": "xml"}, "output='xml': choose one of csv, pandas"),
    ({"lang": "de"}, "lang='de': the annotated frames are labelled in English only"),
    ({"include_audio": True}, "include_audio=True: the annotated video has no sound"),
    ({"size_multiplier": 2}, "size_multiplier=2"),
    ({"frequency": 0}, "frequency=0: must be 1 or more"),
    ({"detection_box": {"left": 3}}, "detection_box="),
    ({"display": True}, "display=True: this OpenCV has no window support"),  # the headless OpenCV we install
])
def test_unsupported_video_options_are_refused_clearly(detector, clip, options, problem, tmp_path):
    with pytest.raises(ValueError, match=problem.replace("(", r"\(")):
        Video(clip, outdir=tmp_path / "out").analyze(detector, **options)


def test_bad_videos_and_detectors_are_named(detector, tmp_path):
    with pytest.raises(VideoError, match="missing.mp4: no such video file"):
        Video(tmp_path / "missing.mp4")
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"\x00" * 1000)
    with pytest.raises(VideoError, match="garbage.mp4"):
        Video(garbage).analyze(detector, save_frames=False, save_video=False)
    with pytest.raises(TypeError, match="detector: expected a fer.FER, got str"):
        Video(garbage).analyze("FER")


def test_import_fer_stays_light_until_fer_is_used():
    code = ("import sys, fer, fer.exceptions\n"
            "light = not any(m in sys.modules for m in ('cv2', 'onnxruntime', 'fer.compat'))\n"
            "from fer import FER, Video\n"
            "print(light, FER.__module__, Video.__module__)")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                            check=False)
    assert result.stdout.split() == ["True", "fer.compat", "fer.compat"], result.stderr[-2000:]


def test_the_fer_packages_module_names_import_the_same_classes():
    from fer.classes import Video as ClassesVideo
    from fer.fer import FER as FerFER

    from fer import FER, Video

    assert FerFER is FER and ClassesVideo is Video
