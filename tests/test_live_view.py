"""The in-browser live view (app/static/live/) against the Python path: the same frames through both, in
headless Chromium with the files the app serves. Boxes IoU ≥ 0.9, probabilities within 0.02, same labels —
per frame with full detection, and along a moving clip through the whole schedule (full detection, searches
near tracked faces, tracking, smoothing). Also: which ONNX file the page runs, and the free-size YuNet."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from fer.bench import astronaut_frame
from fer.core.images import to_grey
from fer.serving.detect import Box, CropSpec, face_crop
from fer.serving.faces import to_face
from fer.serving.live import YUNET_DYNAMIC, browser_model, live_settings
from fer.serving.model_files import DEFAULT_ONNX
from fer.serving.recognize import FaceRecognizer, VideoSession
from fer_app.testing import CHROMIUM, FLAGS, running_app

IOU_MIN, PROB_TOL = 0.9, 0.02


def test_browser_model_is_the_onnx_itself_or_the_checked_export_beside_a_pkl(tmp_path):
    onnx = tmp_path / "m.onnx"
    onnx.write_bytes(b"not really a model")
    assert browser_model(onnx) == (onnx, "")
    pkl = tmp_path / "m.pkl"
    pkl.write_bytes(b"")
    assert browser_model(pkl) == (onnx, "")  # no card: nothing to check against
    (tmp_path / "m.json").write_text(json.dumps({"onnx": {"sha256": "0" * 64}}))
    found, reason = browser_model(pkl)
    assert found is None and "not the export of m.pkl" in reason
    onnx.unlink()
    found, reason = browser_model(pkl)
    assert found is None and "no m.onnx beside m.pkl" in reason and "python -m fer.export" in reason


def test_the_page_settings_are_the_python_ones():
    recognizer = FaceRecognizer.load(DEFAULT_ONNX) if DEFAULT_ONNX.exists() else pytest.skip("no shipped .onnx")
    settings = live_settings(recognizer)
    session = VideoSession()
    assert settings["classes"] == recognizer.classes
    assert settings["session"]["fullDetectEvery"] == session.full_detect_every
    assert settings["session"]["tracker"]["alpha"] == session.tracker.alpha
    assert settings["detector"]["detectWidth"] == recognizer.video_detector.detect_width
    assert settings["crop"] == {"margin": 0.0, "square": True, "align": False}
    with pytest.raises(ValueError, match="runs YuNet"):
        live_settings(FaceRecognizer.with_detector(recognizer.predictor, "haar"))


def test_free_size_yunet_is_the_shipped_yunet():
    """fer/models/yunet/yunet_n_dynamic.onnx is scripts/yunet_dynamic.py's output: the same graph and weights."""
    onnx = pytest.importorskip("onnx")
    from scripts.yunet_dynamic import dynamic_yunet

    assert onnx.load(str(YUNET_DYNAMIC)).SerializeToString() == dynamic_yunet().SerializeToString()


# --- the page against Python, in Chromium ---------------------------------------------------------------------

def scene(size: tuple[int, int], face_scale: float, at: tuple[int, int], mirrored: bool = False,
          background: str = "coffee") -> np.ndarray:
    """The astronaut photo scaled by ``face_scale`` pasted at ``at`` into a width×height background photo."""
    from skimage import data

    width, height = size
    frame = cv2.resize(getattr(data, background)(), (width, height), interpolation=cv2.INTER_AREA)
    photo = data.astronaut()[:300, 80:380]
    photo = photo[:, ::-1] if mirrored else photo
    photo = cv2.resize(photo, None, fx=face_scale, fy=face_scale, interpolation=cv2.INTER_AREA)
    x, y = at
    h, w = min(photo.shape[0], height - y), min(photo.shape[1], width - x)
    frame[y:y + h, x:x + w] = photo[:h, :w]
    return np.ascontiguousarray(frame)


def scenes() -> dict[str, np.ndarray]:
    two = scene((640, 480), 0.7, (20, 120))
    two[100:310, 380:590] = scene((640, 480), 0.7, (0, 0), mirrored=True)[:210, :210]
    return {
        "letterboxed 640x480": astronaut_frame(),
        "pasted, 0.8": scene((640, 480), 0.8, (250, 140)),
        "two faces": two,
        "portrait 480x640": scene((480, 640), 1.0, (90, 200), background="chelsea"),
        "small face": scene((640, 480), 0.35, (400, 300)),
        "odd size 517x389": scene((517, 389), 0.9, (60, 40), background="rocket"),
    }


def b64(frame: np.ndarray) -> dict:
    return {"width": frame.shape[1], "height": frame.shape[0], "rgb": base64.b64encode(frame.tobytes()).decode()}


PAGE_SETUP = """async () => {
  const root = document.querySelector('#device-view .fer-live');
  const config = JSON.parse(root.dataset.config);
  const url = (u) => new URL(u, document.baseURI).href;
  const base = url(config.moduleUrl).replace(/main\\.js$/, '');
  const recognize = await import(base + 'recognize.js');
  const faces = await import(base + 'faces.js');
  const box = await import(base + 'box.js');
  const loaded = await recognize.loadVideoSession({...config, ortBase: url(config.ortBase), yunetUrl: url(config.yunetUrl),
                                                   modelUrl: url(config.modelUrl)});
  window.parity = {recognize, faces, box, config, session: loaded.session, backend: loaded.backend, ort: loaded.runtime.ort};
  window.parity.image = ({width, height, rgb}) => {
    const bytes = Uint8Array.from(atob(rgb), (c) => c.charCodeAt(0));
    return {width, height, channels: 3, data: bytes};
  };
  return loaded.backend;
}"""

DETECT_AND_CLASSIFY = """async (frame) => {
  const {session, faces, image} = window.parity;
  const img = image(frame);
  const boxes = await session.detector.detect(img);
  const probs = await session.classifier.classify(img, boxes);
  const crops = boxes.map((b) => Array.from(faces.toFace(faces.faceCrop(img, b, session.classifier.crop))));
  return {boxes: boxes.map((b) => b.toJSON()), probs: probs.map((p) => Array.from(p)), crops};
}"""

PROCESS = """async (frame) => {
  const {session, image} = window.parity;
  session.classifyEvery = 1;  // as the Python path: every face classified on every frame,
  session.stableEvery = 1;    // stable ones too
  const result = await session.process(image(frame));
  return {full: result.full, tracks: result.tracks.map((t) => ({id: t.id, box: t.box.toJSON(), probs: Array.from(t.probs)}))};
}"""


@pytest.fixture(scope="module")
def parity_page(tmp_path_factory, request):
    if not Path(CHROMIUM).exists():
        pytest.skip("needs Debian's chromium (scripts/setup.sh)")
    from playwright.sync_api import sync_playwright

    model = DEFAULT_ONNX if DEFAULT_ONNX.exists() else request.getfixturevalue("tiny_model").with_suffix(".onnx")
    recognizer = FaceRecognizer.load(model)
    with running_app(model) as (url, _, _), sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page()
        page.goto(url)
        page.wait_for_selector("#device-view .fer-live[data-config]")
        assert page.evaluate(PAGE_SETUP) in ("wasm", "webgpu")
        yield page, recognizer
        browser.close()


def python_faces(recognizer: FaceRecognizer, frame: np.ndarray):
    boxes = recognizer.video_detector.detect(frame)
    grey = to_grey(frame)
    crops = [to_face(face_crop(grey, b, CropSpec())) for b in boxes]
    return boxes, recognizer.classify(frame, boxes), crops


def as_box(b: dict) -> Box:
    return Box(b["x"], b["y"], b["w"], b["h"])


def check_same_faces(where: str, py_boxes, py_probs, js_boxes, js_probs, classes) -> None:
    assert len(js_boxes) == len(py_boxes), f"{where}: {len(js_boxes)} faces in the page, {len(py_boxes)} in Python"
    for i, (pb, pp, jb, jp) in enumerate(zip(py_boxes, py_probs, js_boxes, js_probs)):
        iou = pb.iou(as_box(jb))
        assert iou >= IOU_MIN, f"{where}, face {i}: IoU {iou:.3f} ({pb} vs {jb})"
        gap = float(np.abs(np.asarray(jp) - pp).max())
        assert gap <= PROB_TOL, f"{where}, face {i}: probabilities differ by {gap:.4f}"
        assert classes[int(np.argmax(jp))] == classes[int(np.argmax(pp))], f"{where}, face {i}: labels differ"


@pytest.mark.browser
@pytest.mark.slow
def test_page_finds_and_classifies_faces_as_python_does(parity_page):
    page, recognizer = parity_page
    found = 0
    for name, frame in scenes().items():
        py_boxes, py_probs, py_crops = python_faces(recognizer, frame)
        js = page.evaluate(DETECT_AND_CLASSIFY, b64(frame))
        check_same_faces(name, py_boxes, py_probs, js["boxes"], js["probs"], recognizer.classes)
        for i, (pc, jc) in enumerate(zip(py_crops, js["crops"])):  # the model's input itself, pixel for pixel
            diff = np.abs(pc.astype(int) - np.asarray(jc, int).reshape(pc.shape))
            exact = face_crop(frame, py_boxes[i], CropSpec()).shape[0] > 48  # INTER_AREA: OpenCV's arithmetic
            assert diff.max() <= (0 if exact else 1), f"{name}, face {i}: crops differ by up to {diff.max()}"
        found += len(py_boxes)
    assert found >= 6  # every scene has its faces


@pytest.mark.browser
@pytest.mark.slow
def test_page_tracks_a_moving_face_as_python_does(parity_page):
    """Fifteen frames of a face moving 6 px a frame, then a cut back to where it began and four more: full
    detections on frames 1, 6, 11, 16 and searches near the tracked faces between them; after the cut (on a full
    detection) the old track misses its face, so the next frames search the whole frame again until it is dropped;
    tracking and smoothing — the page's tracks equal Python's on every frame."""
    page, recognizer = parity_page
    page.evaluate("() => { const p = window.parity; p.session.tracker.reset(); p.session.frames = 0; p.session.shape = null; }")
    session = recognizer.session()
    base = astronaut_frame()
    fulls = []
    for i in range(19):
        frame = np.ascontiguousarray(np.roll(base, 6 * (i if i < 15 else i - 15), axis=1))
        tracks = session.detect_for_video(frame, 100 * i).tracks
        js = page.evaluate(PROCESS, b64(frame))
        fulls.append(js["full"])
        check_same_faces(f"frame {i}", [t.box for t in tracks], [t.probs for t in tracks],
                         [t["box"] for t in js["tracks"]], [t["probs"] for t in js["tracks"]], recognizer.classes)
        assert [t["id"] for t in js["tracks"]] == [t.id for t in tracks]
        if i == 0:
            base_width = tracks[0].box.w
    # the schedule: full detection every 5th frame, and after the old track's misses (16-18; dropped after 18)
    assert fulls == [i % 5 == 0 or i in (16, 17, 18) for i in range(19)]
    seen = [t for t in tracks if t.misses == 0]
    assert len(seen) == 1 and seen[0].box.w >= 0.9 * base_width  # one face, whole: half of it is no second face


DISTINCT_BOXES = """async (cases) => {
  const {recognize, box} = window.parity;
  return cases.map((boxes) => recognize.distinctBoxes(boxes.map((b) => box.Box.from(b))).map((b) => b.toJSON()));
}"""


@pytest.mark.browser
@pytest.mark.slow
def test_page_keeps_one_box_per_face_as_python_does(parity_page):
    """When the searches near two tracks find one face twice (whole, and cut by a search region's edge), the page
    keeps the box Python keeps (fer.serving.recognize.distinct_boxes)."""
    from fer.serving.recognize import distinct_boxes

    page, _ = parity_page
    whole, cut = Box(254, 58, 86, 105, score=0.93), Box(290, 64, 49, 98, score=0.87)
    other, half = Box(500, 60, 80, 100, score=0.5), Box(298, 64, 42, 96, score=0.8)
    cases = [[cut, other, whole], [whole, cut], [Box(0, 0, 50, 50), Box(2, 2, 50, 50)],
             [half, Box(256, 58, 86, 105, score=0.9)], []]
    kept = page.evaluate(DISTINCT_BOXES, [[{"x": b.x, "y": b.y, "w": b.w, "h": b.h, "score": b.score} for b in boxes]
                                          for boxes in cases])
    assert [[(b["x"], b["y"], b["w"], b["h"]) for b in js] for js in kept] == [
        [(b.x, b.y, b.w, b.h) for b in distinct_boxes(boxes)] for boxes in cases]


@pytest.mark.browser
@pytest.mark.slow
def test_live_view_on_a_phone_with_a_portrait_camera(parity_page, tmp_path):
    """A phone-sized page whose (back) camera gives upright 480×640 frames: the live view follows the face."""
    from fer_app.testing import write_y4m

    page, _ = parity_page
    frame = scenes()["portrait 480x640"]
    camera = write_y4m(tmp_path / "portrait.y4m", [np.roll(frame, 3 * i, axis=0) for i in range(10)])
    browser = page.context.browser.browser_type.launch(
        executable_path=CHROMIUM, args=[*FLAGS, f"--use-file-for-fake-video-capture={camera}"])
    try:
        phone = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=3, is_mobile=True,
                                    has_touch=True, permissions=["camera"]).new_page()
        phone.goto(page.url)
        phone.select_option("#device-view .fer-facing", "environment")
        phone.click("#device-view .fer-start:enabled", timeout=60_000)
        phone.wait_for_function("performance.getEntriesByName('fer-frame').length >= 5", timeout=120_000)
        size = phone.eval_on_selector("#device-view .fer-overlay", "c => [c.width, c.height]")
        assert size == [480, 640]
        shown = phone.eval_on_selector("#device-view .fer-stage", "e => e.getBoundingClientRect().width")
        assert shown <= 390  # fits the phone's width
        assert any(c in phone.inner_text("#device-view .fer-probs") for c in ("happy", "neutral", "sad", "surprise"))
    finally:
        browser.close()


@pytest.mark.browser
@pytest.mark.slow
def test_the_app_serves_the_live_view_files_and_nothing_beside_them(parity_page):
    import urllib.error
    import urllib.request

    page, _ = parity_page
    url = page.url
    with urllib.request.urlopen(url + "fer-live/yunet.onnx") as r:
        assert r.status == 200 and r.read() == YUNET_DYNAMIC.read_bytes()
        etag = r.headers["etag"]
    with pytest.raises(urllib.error.HTTPError, match="304"):  # kept by the browser, revalidated
        urllib.request.urlopen(urllib.request.Request(url + "fer-live/yunet.onnx", headers={"If-None-Match": etag}))
    with urllib.request.urlopen(url + "fer-live/static/vendor/onnxruntime-web/ort-wasm-simd-threaded.wasm") as r:
        assert r.headers["content-type"] == "application/wasm"
    config = json.loads(page.eval_on_selector("#device-view .fer-live", "e => e.dataset.config"))
    with urllib.request.urlopen(url + "fer-live/model.json") as r:  # the model live now (switched with --feedback)
        assert json.loads(r.read())["name"] == config["modelName"] == DEFAULT_ONNX.name
    refused = urllib.request.Request(url + "fer-live/correct", data=b"{}", method="POST")
    with pytest.raises(urllib.error.HTTPError, match="403"):  # no --feedback: no corrections, and no control
        urllib.request.urlopen(refused)
    assert page.query_selector("#device-view .fer-correct") is None
    for path in ("fer-live/model.pkl", "fer-live/static/../../main.py", "fer-live/static/%2e%2e/main.py",
                 "fer-live/static/../../../exports/fer2013_effnet_lite0.pkl"):
        with pytest.raises(urllib.error.HTTPError, match="404"):
            urllib.request.urlopen(url + path)


# --- calibrated probabilities, face quality and "not sure" in the page ---------------------------------------

CALIBRATED = """async ({faces, n}) => {
  const {session, config} = window.parity;
  const base = new URL(config.moduleUrl, document.baseURI).href.replace(/main\\.js$/, '');
  const classify = await import(base + 'classify.js');
  const bytes = await (await fetch(new URL(config.modelUrl, document.baseURI).href)).arrayBuffer();
  const data = Uint8Array.from(atob(faces), (c) => c.charCodeAt(0));
  const probs = await session.classifier.predictProba(data);
  const input = new window.parity.ort.Tensor('uint8', data, [n, 1, 48, 48]);
  const result = await session.classifier.session.run({[session.classifier.session.inputNames[0]]: input});
  const plain = classify.softmax(result[session.classifier.session.outputNames[0]].data, config.classes.length);
  return {metadata: classify.onnxMetadata(bytes), temperature: session.classifier.temperature,
          probs: probs.map((p) => Array.from(p)), uncalibrated: plain.map((p) => Array.from(p))};
}"""


@pytest.mark.browser
@pytest.mark.slow
def test_page_gives_pythons_calibrated_probabilities(parity_page):
    """The page reads the model's temperature from the file's own metadata and divides the logits by it, as
    OnnxFacePredictor does: the same calibrated probabilities for the same faces."""
    page, recognizer = parity_page
    rng = np.random.default_rng(0)
    frame = astronaut_frame()
    boxes = recognizer.detector.detect(frame)
    faces = [to_face(c) for c in recognizer.crops(frame, boxes)] + [
        rng.integers(0, 256, (48, 48), dtype=np.uint8) for _ in range(5)] + [np.full((48, 48), 128, np.uint8)]
    js = page.evaluate(CALIBRATED, {"faces": base64.b64encode(np.stack(faces).tobytes()).decode(), "n": len(faces)})
    assert js["metadata"] == dict(recognizer.predictor.session.get_modelmeta().custom_metadata_map)
    assert js["temperature"] == recognizer.predictor.temperature
    python = recognizer.predictor.predict_proba(faces)
    assert np.abs(np.asarray(js["probs"]) - python).max() <= 1e-5
    if recognizer.predictor.temperature != 1:  # the temperature is applied: not the plain softmax
        assert np.abs(np.asarray(js["uncalibrated"]) - python).max() > 1e-3


QUALITY = """async ({frame, boxes, faces}) => {
  const {session, faces: crops, box: boxes_, config, image} = window.parity;
  const base = new URL(config.moduleUrl, document.baseURI).href.replace(/main\\.js$/, '');
  const quality = await import(base + 'quality.js');
  const img = image(frame);
  const given = Uint8Array.from(atob(faces), (c) => c.charCodeAt(0));
  const same = boxes.map((b, i) => quality.faceQuality(boxes_.Box.from(b), given.subarray(i * 2304, (i + 1) * 2304), config.quality));
  const found = await session.detector.detect(img);
  const own = crops.facesArray(img, found, session.classifier.crop);
  const page = found.map((b, i) => quality.faceQuality(b, own.subarray(i * 2304, (i + 1) * 2304), config.quality));
  return {same, page};
}"""


@pytest.mark.browser
@pytest.mark.slow
def test_page_measures_face_quality_as_python_does(parity_page):
    """quality.js against fer/serving/quality.py: on Python's own boxes and crops, every measure to 1e-9; on the
    page's own detections (boxes within IoU 0.9, crops within 1 grey level), the same band."""
    from fer.serving.quality import face_quality

    page, recognizer = parity_page
    for name, frame in scenes().items():
        boxes = recognizer.video_detector.detect(frame)
        faces = [to_face(c) for c in recognizer.crops(frame, boxes)]
        python = [face_quality(b, f) for b, f in zip(boxes, faces)]
        as_js = [{**b.as_dict(), "landmarks": [list(p) for p in b.landmarks], "score": b.score} for b in boxes]
        js = page.evaluate(QUALITY, {"frame": b64(frame), "boxes": as_js,
                                     "faces": base64.b64encode(np.stack(faces).tobytes()).decode() if faces else ""})
        for i, (py, same, own) in enumerate(zip(python, js["same"], js["page"])):
            where = f"{name}, face {i}"
            for key, value in {"quality": py.value, "size": py.size, "score": py.score, "roll": py.roll,
                               "yaw": py.yaw, "sharpness": py.sharpness}.items():
                assert same[key] == pytest.approx(value, rel=1e-9, abs=1e-9), f"{where}: {key}"
            assert (same["band"], same["limit"]) == (py.band, py.limit), where
            assert own["band"] == py.band and own["quality"] == pytest.approx(py.value, abs=0.05), where


NOT_SURE_PANEL = """async ({probs, quality, rule}) => {
  const {config} = window.parity;
  const base = new URL(config.moduleUrl, document.baseURI).href.replace(/main\\.js$/, '');
  const draw = await import(base + 'draw.js');
  const panel = document.createElement('div');
  draw.drawProbabilities(panel, probs, config.classes, config.colours, {quality, rule});
  return {head: panel.querySelector('.fer-label').textContent, seen: panel.querySelector('.fer-quality')?.textContent};
}"""


@pytest.mark.browser
@pytest.mark.slow
def test_page_says_not_sure_under_the_apps_rule(parity_page):
    from fer_app.settings import NOT_SURE_MIN_CONFIDENCE, NOT_SURE_MIN_QUALITY

    page, recognizer = parity_page
    config = json.loads(page.eval_on_selector("#device-view .fer-live", "e => e.dataset.config"))
    assert config["notSure"] == {"minConfidence": NOT_SURE_MIN_CONFIDENCE, "minQuality": NOT_SURE_MIN_QUALITY}
    classes = recognizer.classes
    sure = [0.05] * len(classes)
    sure[classes.index("happy")] = 1 - 0.05 * (len(classes) - 1)
    unsure = [1 / len(classes)] * len(classes)
    good = {"quality": 0.9, "band": "good", "limit": "size"}
    poor = {"quality": 0.1, "band": "poor", "limit": "sharpness"}
    said = lambda probs, quality: page.evaluate(NOT_SURE_PANEL, {"probs": probs, "quality": quality,  # noqa: E731
                                                                 "rule": config["notSure"]})
    assert said(sure, good)["head"] == "happy" and "good" in said(sure, good)["seen"]
    assert said(unsure, good)["head"].startswith("?")  # a low top probability
    shown = said(sure, poor)
    assert shown["head"].startswith("? not sure") and "limited by sharpness" in shown["seen"]  # a poor face
