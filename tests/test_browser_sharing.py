"""The cross-site attack of issue 32 in headless Chromium: the app (with ``--feedback``) is reached by a name that
is not localhost (``fer-app.test``), and a page of another site (``evil.test``; both names mapped to this
machine with ``--host-resolver-rules``) tries what worked before: save a correction through
``fer-live/correct``, delete every correction through ``gradio_api/call/delete_corrections`` and switch the
model through ``gradio_api/call/switch_model``, by CORS fetches (credentials included) and by a "simple"
request that needs no preflight. Every one is refused and nothing changes, while the app's own page, on the
same non-localhost name, still analyses a photo and saves the same correction. With sign-in, a user who is
not the operator does not see the operator's controls."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from conftest import synthetic_face
from PIL import Image

from fer.core.labels import FER2013_CLASSES
from fer.serving import feedback
from fer.serving.model_files import DEFAULT_ONNX
from fer_app.testing import CHROMIUM, FLAGS, running_app

pytestmark = [pytest.mark.browser, pytest.mark.slow,
              pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium (scripts/setup.sh)")]

APP_HOST, EVIL = "fer-app.test", "http://evil.test"
RESOLVE = f"--host-resolver-rules=MAP {APP_HOST} 127.0.0.1, MAP evil.test 127.0.0.1"


def correction() -> dict:
    return {"face": base64.b64encode(synthetic_face(3, 0).tobytes()).decode(), "label": "happy", "predicted": "sad",
            "probs": [0.1, 0.1, 0.1, 0.1, 0.4, 0.1, 0.1], "model": "fer2013_effnet_lite0.onnx"}


#: What the other site's page does to the app at ``base``; each attempt's outcome (a status, or the browser's
#: refusal to let the page see one).
ATTACK = """async ([base, correction]) => {
    const tries = {
        correct: () => fetch(base + 'fer-live/correct', {method: 'POST', credentials: 'include',
            headers: {'content-type': 'application/json'}, body: JSON.stringify(correction)}),
        delete_all: () => fetch(base + 'gradio_api/call/delete_corrections', {method: 'POST', credentials: 'include',
            headers: {'content-type': 'application/json'}, body: JSON.stringify({data: []})}),
        switch_model: () => fetch(base + 'gradio_api/call/switch_model', {method: 'POST', credentials: 'include',
            headers: {'content-type': 'application/json'}, body: JSON.stringify({data: ['personal/mine.onnx']})}),
        delete_all_simple: () => fetch(base + 'gradio_api/call/delete_corrections', {method: 'POST',
            mode: 'no-cors', credentials: 'include', headers: {'content-type': 'text/plain'},
            body: JSON.stringify({data: []})}),
    };
    const outcome = {};
    for (const [name, attempt] of Object.entries(tries)) {
        try { const r = await attempt(); outcome[name] = r.type === 'opaque' ? 'opaque' : r.status; }
        catch (e) { outcome[name] = 'refused: ' + e.message; }
    }
    return outcome;
}"""


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sharing") / "corrections"
    classes = list(FER2013_CLASSES)
    for i in range(3):
        feedback.save_correction(folder, synthetic_face(i, i), "sad", "upload", "m.onnx", "sad",
                                 {c: 1 / 7 for c in classes}, classes)
    (folder / "mine.onnx").write_bytes(DEFAULT_ONNX.read_bytes())
    return folder


@pytest.fixture(scope="module")
def evil():
    """The other site: a page served from this machine too (so the browser treats both as local, as it would
    treat two public sites), at ``http://evil.test:PORT``."""
    import http.server
    import threading

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # the name http.server calls
            body = b"<!doctype html><title>cute cats</title><p>cute cats</p>"
            self.send_response(200)
            self.send_header("content-type", "text/html")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"{EVIL}:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[*FLAGS, RESOLVE])
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def app(folder):
    with running_app(DEFAULT_ONNX, "--feedback", str(folder)) as (url, _, _):
        yield url.replace("127.0.0.1", APP_HOST)  # the name a LAN or share link would give


def test_another_sites_page_cannot_act_for_a_viewer(app, evil, browser, folder):
    context = browser.new_context()
    own = context.new_page()
    own.goto(app)  # the viewer has the app open: whatever it keeps in the browser, the attack could use
    own.wait_for_selector("#feedback-summary:has-text('3')")
    other = context.new_page()
    other.goto(f"{evil}/cats.html")
    before = feedback.read_manifest(folder)
    outcome = other.evaluate(ATTACK, [app, correction()])
    assert all(str(v).startswith("refused") for k, v in outcome.items() if k != "delete_all_simple"), outcome
    assert outcome["delete_all_simple"] == "opaque"  # sent without asking: the page cannot see the answer...
    assert feedback.read_manifest(folder) == before and feedback.count_corrections(folder) == {"sad": 3}  # ...a 403
    served = own.evaluate("async (base) => (await fetch(base + 'fer-live/model.json')).json()", app)
    assert served["name"] == "fer2013_effnet_lite0.onnx"  # not switched
    assert not (folder / feedback.ACTIONS_LOG).exists()
    context.close()


def test_the_apps_own_page_still_works_on_that_name(app, browser, folder, tmp_path, astronaut):
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    page.goto(app)
    page.click("button[role=tab]:has-text('Upload')")
    photo = tmp_path / "astronaut.png"
    Image.fromarray(astronaut).save(photo)
    page.set_input_files("#upload input[type=file]", str(photo))
    page.wait_for_selector("#status:has-text('Found 1 face')", timeout=90_000)
    status = page.evaluate("""async ([base, correction]) => (await fetch(base + 'fer-live/correct', {method: 'POST',
        headers: {'content-type': 'application/json'}, body: JSON.stringify(correction)})).status""",
                           [app, correction()])
    assert status == 200 and feedback.count_corrections(folder) == {"happy": 1, "sad": 3}
    page.click("#feedback-delete")
    page.click("#feedback-confirm")
    page.wait_for_selector("#feedback-summary:has-text('none yet')", timeout=30_000)
    assert feedback.count_corrections(folder) == {}
    assert "deleted all 4 corrections" in (folder / feedback.ACTIONS_LOG).read_text()
    context.close()


def test_only_the_operator_sees_the_operators_controls(browser, tmp_path):
    users = tmp_path / "users.txt"
    users.write_text("olga:operator-password\nguest:guest-password\n")
    with running_app(DEFAULT_ONNX, "--feedback", str(tmp_path / "fb"), "--auth-file", str(users)) as (url, _, _):
        for user, password, sees in (("guest", "guest-password", False), ("olga", "operator-password", True)):
            context = browser.new_context()
            page = context.new_page()
            page.goto(url.replace("127.0.0.1", APP_HOST))
            page.fill("input[type=text]", user)
            page.fill("input[type=password]", password)
            page.keyboard.press("Enter")
            page.wait_for_selector("#feedback-summary", timeout=60_000)
            page.wait_for_timeout(1000)  # the page's load event decides
            assert page.is_visible("#feedback-delete") is sees and page.is_visible("#model-menu") is sees, user
            context.close()
