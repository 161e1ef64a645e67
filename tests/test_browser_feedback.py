"""Corrections in the real page (headless Chromium, as tests/test_browser.py): with `--feedback DIR`, a
correction from the Upload tab and one from the in-page live view (its fake camera shows the astronaut) land
in DIR/<class>/ with their manifest rows, the page counts them, switches to a personal model in DIR (the live
view then runs it: the personal model here always says "disgust"), and deletes everything on request."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fer.core.labels import FER2013_CLASSES
from fer.serving import feedback
from fer_app.testing import CHROMIUM, FLAGS, running_app, write_y4m

PERSONAL_SAYS = "disgust"  # what the test's personal model says of every face

pytestmark = [pytest.mark.browser, pytest.mark.slow,
              pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium (scripts/setup.sh)")]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("feedback") / "fb"


def biased_copy(model: Path, out: Path, label: str, by: float = 40.0) -> Path:
    """``model`` with ``by`` added to ``label``'s logit: a "personal" model that says ``label`` of every face
    (its classes and card kept), so the test can tell which model the page runs."""
    onnx = pytest.importorskip("onnx")
    from onnx import helper, numpy_helper

    graph = onnx.load(str(model))
    logits = graph.graph.output[0].name
    for node in graph.graph.node:
        node.output[:] = [f"{o}_base" if o == logits else o for o in node.output]
    bias = np.zeros(len(FER2013_CLASSES), np.float32)
    bias[list(FER2013_CLASSES).index(label)] = by
    graph.graph.initializer.append(numpy_helper.from_array(bias, "personal_bias"))
    graph.graph.node.append(helper.make_node("Add", [f"{logits}_base", "personal_bias"], [logits]))
    onnx.save(graph, str(out))
    return out


@pytest.fixture(scope="module")
def page(request, folder, tmp_path_factory):
    from playwright.sync_api import sync_playwright

    from fer.bench import astronaut_frame
    from fer.serving.model_files import DEFAULT_ONNX

    # the shipped ONNX model (torch-free, quick to start); the tiny one is trained only when it is missing
    model = DEFAULT_ONNX if DEFAULT_ONNX.exists() else request.getfixturevalue("tiny_model").with_suffix(".onnx")
    folder.mkdir(parents=True)
    biased_copy(model, folder / "mine.onnx", PERSONAL_SAYS)  # a personal model for the menu
    frame = astronaut_frame()
    camera = write_y4m(tmp_path_factory.mktemp("camera") / "astronaut.y4m",
                       [np.roll(frame, 2 * i, axis=1) for i in range(10)])
    with running_app(model, "--feedback", str(folder)) as (url, _, _), sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM,
                                    args=[*FLAGS, f"--use-file-for-fake-video-capture={camera}"])
        page = browser.new_context(viewport={"width": 1280, "height": 1000}, permissions=["camera"]).new_page()
        page.goto(url)
        page.wait_for_selector("#feedback-summary:has-text('none yet')")
        yield page
        browser.close()


def test_an_upload_correction_lands_in_the_folder_with_its_manifest_row(page, folder, tmp_path, astronaut):
    summary = page.inner_text("#feedback-summary")  # says where corrections go: the folder's name, not its path
    assert f"saved in {folder.name}" in summary and str(folder.parent) not in summary
    page.click("button[role=tab]:has-text('Upload')")
    photo = tmp_path / "astronaut.png"
    Image.fromarray(astronaut).save(photo)
    page.set_input_files("#upload input[type=file]", str(photo))
    page.wait_for_selector("#status:has-text('Found 1 face')", timeout=60_000)
    page.wait_for_selector("#correct-label", state="visible", timeout=30_000)
    page.click("#correct-label label:has-text('surprise')")
    page.click("#correct-save")
    page.wait_for_selector("#correct-status:has-text('Saved as surprise')", timeout=30_000)
    page.wait_for_selector("#feedback-summary:has-text('surprise 1')", timeout=30_000)
    files = list((folder / "surprise").glob("*.png"))
    assert len(files) == 1 and Image.open(files[0]).size == (48, 48)
    (row,) = feedback.read_manifest(folder)
    assert row["file"] == f"surprise/{files[0].name}" and row["source"] == "upload" and row["label"] == "surprise"
    assert row["predicted"] in FER2013_CLASSES and row["model"].endswith(".onnx")
    assert abs(sum(float(row[f"p_{c}"]) for c in FER2013_CLASSES) - 1) < 1e-3


def test_a_live_view_correction_lands_in_the_folder_with_its_manifest_row(page, folder):
    page.click("button[role=tab]:has-text('Webcam')")
    live = "#device-view"
    assert page.inner_text(f"{live} .fer-model-name") == "fer2013_effnet_lite0.onnx"
    page.click(f"{live} .fer-start:enabled", timeout=60_000)
    page.wait_for_function("performance.getEntriesByName('fer-frame').some((e) => e.detail.faces > 0)",
                           timeout=120_000)
    shown = page.inner_text(f"{live} .fer-label")  # what the page says of the largest face
    page.select_option(f"{live} .fer-correct-label", "angry")
    page.click(f"{live} .fer-correct-save:enabled")
    page.wait_for_selector(f"{live} .fer-correct-status:has-text('Saved as angry')", timeout=30_000)
    page.wait_for_selector("#feedback-summary:has-text('angry 1')", timeout=30_000)  # the panel counted it
    (saved,) = (folder / "angry").glob("*.png")
    face = np.asarray(Image.open(saved))
    assert face.shape == (48, 48) and face.std() > 20  # the grey crop of a face, not an empty frame
    row = feedback.read_manifest(folder)[-1]
    assert row["file"] == f"angry/{saved.name}" and row["source"] == "live" and row["label"] == "angry"
    assert row["model"] == "fer2013_effnet_lite0.onnx" and row["predicted"] in FER2013_CLASSES
    assert abs(sum(float(row[f"p_{c}"]) for c in FER2013_CLASSES) - 1) < 1e-3
    assert shown in FER2013_CLASSES


def test_the_correction_endpoint_names_a_bad_correction(page):
    body = json.dumps({"face": base64.b64encode(b"\0" * 10).decode(), "label": "angry", "probs": [1 / 7] * 7,
                       "model": "m.onnx"}).encode()
    request = urllib.request.Request(page.url + "fer-live/correct", data=body, method="POST",
                                     headers={"content-type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request)
    assert refused.value.code == 400 and "expected 2304" in json.loads(refused.value.read())["error"]
    form = urllib.request.Request(page.url + "fer-live/correct", data=body, method="POST",
                                  headers={"content-type": "text/plain"})  # what another site could send unasked
    with pytest.raises(urllib.error.HTTPError, match="415"):
        urllib.request.urlopen(form)


def test_the_menu_switches_the_model_the_live_view_runs(page, folder):
    """The personal model (which says "disgust" of every face) picked in the menu: the server says it is live,
    the live view loads it and names it, and the faces it labels are labelled by it."""
    live = "#device-view"
    page.click("#model-menu input")
    page.click("li:has-text('personal: mine.onnx')")
    page.wait_for_selector("#live-model:has-text('mine.onnx')", timeout=60_000)
    page.wait_for_selector(f"{live} .fer-model-name:text-is('mine.onnx')", timeout=60_000)
    page.wait_for_selector(f"{live} .fer-label:text-is('{PERSONAL_SAYS}')", timeout=60_000)
    with urllib.request.urlopen(page.url + "fer-live/model.onnx") as r:  # the file the page fetched
        assert r.headers["x-fer-model"] == "mine.onnx" and r.read() == (folder / "mine.onnx").read_bytes()
    page.select_option(f"{live} .fer-correct-label", "happy")
    page.click(f"{live} .fer-correct-save:enabled")
    page.wait_for_selector(f"{live} .fer-correct-status:has-text('Saved as happy')", timeout=30_000)
    row = feedback.read_manifest(folder)[-1]
    assert row["model"] == "mine.onnx" and row["predicted"] == PERSONAL_SAYS and row["source"] == "live"


def test_delete_all_empties_the_folder(page, folder):
    assert feedback.count_corrections(folder)
    page.click("#feedback-delete")
    page.click("#feedback-confirm")
    page.wait_for_selector("#feedback-summary:has-text('none yet')", timeout=30_000)
    assert feedback.count_corrections(folder) == {} and not (folder / feedback.MANIFEST).exists()
    assert (folder / "mine.onnx").exists()  # personal models stay
