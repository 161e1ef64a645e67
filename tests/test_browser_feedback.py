"""Corrections in the real page (headless Chromium, as tests/test_browser.py): with `--feedback DIR`, a
correction from the Upload tab lands in DIR/<class>/ with its manifest row, the page counts it, deletes
everything on request, and switches to a personal model in DIR."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PIL import Image

from apprunner import CHROMIUM, FLAGS, running_app
from fer import feedback
from fer.labels import FER2013_CLASSES

pytestmark = [pytest.mark.browser, pytest.mark.slow,
              pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium (scripts/setup.sh)")]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("feedback") / "fb"


@pytest.fixture(scope="module")
def page(request, folder):
    from playwright.sync_api import sync_playwright

    from fer.model_files import DEFAULT_ONNX

    # the shipped ONNX model (torch-free, quick to start); the tiny one is trained only when it is missing
    model = DEFAULT_ONNX if DEFAULT_ONNX.exists() else request.getfixturevalue("tiny_model").with_suffix(".onnx")
    folder.mkdir(parents=True)
    shutil.copy(model, folder / "mine.onnx")  # a "personal" model for the menu (the same weights)
    with running_app(model, "--feedback", str(folder)) as (url, _, _), sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_context(viewport={"width": 1280, "height": 1000}).new_page()
        page.goto(url)
        page.wait_for_selector("#feedback-summary:has-text('none yet')")
        yield page
        browser.close()


def test_an_upload_correction_lands_in_the_folder_with_its_manifest_row(page, folder, tmp_path, astronaut):
    assert str(folder.resolve()) in page.inner_text("#feedback-summary")  # says where corrections go
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


def test_delete_all_empties_the_folder(page, folder):
    assert feedback.count_corrections(folder)
    page.click("#feedback-delete")
    page.click("#feedback-confirm")
    page.wait_for_selector("#feedback-summary:has-text('none yet')", timeout=30_000)
    assert feedback.count_corrections(folder) == {} and not (folder / feedback.MANIFEST).exists()
    assert (folder / "mine.onnx").exists()  # personal models stay


def test_the_page_switches_to_a_personal_model_and_says_which_is_live(page, folder):
    page.click("#model-menu input")
    page.click("li:has-text('personal: mine.onnx')")
    page.wait_for_selector("#live-model:has-text('mine.onnx')", timeout=60_000)
