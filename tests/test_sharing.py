"""A shared app (issue 32) through its HTTP interfaces: sign-in, the operator's actions, limits on corrections,
bad corrections as clear 400s, exact ETags, no server paths shown, and nothing left behind by a killed run.
The cross-site attack itself is tests/test_browser_sharing.py (it needs a browser)."""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import time
from contextlib import contextmanager

import httpx
import numpy as np
import pytest
from conftest import run_cli, synthetic_face
from PIL import Image

from fer.serving import feedback
from fer.serving.model_files import DEFAULT_ONNX
from fer_app.testing import running_app

OPERATOR, GUEST = ("operator", "operator-password"), ("guest", "guest-password")


@pytest.mark.parametrize("shared", [["--share"], ["--host", "0.0.0.0"]])
def test_a_shared_app_with_corrections_does_not_start_without_sign_in(tmp_path, shared):
    result = run_cli("-m", "fer_app", "--feedback", str(tmp_path / "fb"), *shared, check=False, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"error: {shared[0]}") and "needs sign-in (--auth USER:PASS or --auth-file FILE)" in line
    assert not (tmp_path / "fb").exists()  # refused before anything was made


def test_bad_sign_in_options_are_one_line_errors(tmp_path):
    users = tmp_path / "users.txt"
    users.write_text("# the operator first\nann:long-enough-1\nbob:short\n")
    for args, message in ((["--auth", "ann"], "--auth ann:...: expected USER:PASSWORD"),
                          (["--auth-file", str(users)], f"--auth-file {users}, line 3: the password of bob is shorter"),
                          (["--auth", "ann:long-enough-1", "--operator", "zoe"], "--operator zoe: not one of the users")):
        result = run_cli("-m", "fer_app", *args, check=False, timeout=120)
        assert result.returncode == 2 and message in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("shared") / "corrections"


@pytest.fixture(scope="module")
def app(folder):
    users = folder.parent / "users.txt"
    users.write_text(f"{OPERATOR[0]}:{OPERATOR[1]}\n{GUEST[0]}:{GUEST[1]}\n")
    folder.mkdir()
    (folder / "mine.onnx").write_bytes(DEFAULT_ONNX.read_bytes())  # a personal model for the menu
    with running_app(DEFAULT_ONNX, "--feedback", str(folder), "--auth-file", str(users)) as (url, proc, log):
        yield url, proc, log


@contextmanager
def signed_in(url: str, user: tuple[str, str]):
    """An HTTP client signed in as ``user`` (Gradio's session cookie)."""
    with httpx.Client(base_url=url, timeout=60) as client:
        answer = client.post("login", data={"username": user[0], "password": user[1]})
        assert answer.status_code == 200, answer.text
        yield client


def gradio(url: str, user: tuple[str, str]):
    from gradio_client import Client

    return Client(url, auth=user, verbose=False)


def correction(**change) -> dict:
    face = synthetic_face(3, 0)
    return {"face": base64.b64encode(face.tobytes()).decode(), "label": "happy", "predicted": "sad",
            "probs": [0.1, 0.1, 0.1, 0.1, 0.4, 0.1, 0.1], "model": "fer2013_effnet_lite0.onnx", **change}


def test_nothing_answers_before_sign_in(app):
    url = app[0]
    with httpx.Client(base_url=url, timeout=60) as anyone:
        assert anyone.post("gradio_api/call/delete_corrections", json={"data": []}).status_code == 401
        for path in ("fer-live/model.onnx", "fer-live/model.json"):
            assert anyone.get(path).status_code == 401
        assert anyone.post("fer-live/correct", json=correction()).status_code == 401
        assert anyone.post("login", data={"username": "guest", "password": "wrong-password"}).status_code == 400


def test_a_guest_corrects_but_cannot_delete_or_switch(app, folder):
    url = app[0]
    with signed_in(url, GUEST) as guest:
        saved = guest.post("fer-live/correct", json=correction())
        assert saved.status_code == 200 and "Saved as happy" in saved.json()["message"]
    client = gradio(url, GUEST)
    said = client.predict(api_name="/delete_corrections")
    assert "Only the operator of this app may delete corrections" in said
    assert feedback.count_corrections(folder) == {"happy": 1}
    said = client.predict("personal/mine.onnx", api_name="/switch_model")
    assert "Only the operator" in said and "fer2013_effnet_lite0.onnx" in said
    assert not (folder / feedback.ACTIONS_LOG).exists()  # nothing happened, nothing recorded


def test_the_operator_switches_and_deletes_and_each_is_recorded(app, folder):
    url = app[0]
    client = gradio(url, OPERATOR)
    assert "Live model: **mine.onnx**" in client.predict("personal/mine.onnx", api_name="/switch_model")
    with signed_in(url, GUEST) as guest:  # every viewer gets the model switched to
        assert guest.get("fer-live/model.onnx").headers["x-fer-model"] == "mine.onnx"
    said = client.predict(api_name="/delete_corrections")
    assert said.startswith("Deleted ") and feedback.count_corrections(folder) == {}
    lines = (folder / feedback.ACTIONS_LOG).read_text().splitlines()
    assert [line.split("\t")[1:] for line in lines][-2:] == [["operator", "switched the model to mine.onnx"],
                                                             ["operator", lines[-1].split("\t")[2]]]
    assert re.fullmatch(r"deleted all \d+ corrections", lines[-1].split("\t")[2])
    assert all(re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", line.split("\t")[0]) for line in lines)
    client.predict("started", api_name="/switch_model")


BAD_BODIES = {  # the body, and what the answer says
    "1e400": (json.dumps(correction(probs=[0.1] * 7)).replace("0.1", "1e400"), "between 0 and 1"),  # inf once parsed
    "10**400": (json.dumps(correction()).replace("0.4", "1" + "0" * 400), "between 0 and 1"),  # too large for a float
    "Infinity": (json.dumps(correction()).replace("0.4", "Infinity"), "Infinity is not a number"),
    "NaN": (json.dumps(correction()).replace("0.4", "NaN"), "NaN is not a number"),
    "strings": (json.dumps(correction(probs=["0.1"] * 7)), "each must be a number"),
    "booleans": (json.dumps(correction(probs=[True] * 7)), "each must be a number"),
    "30,000 nested arrays": ("[" * 30000 + "]" * 30000, "RecursionError"),  # under the 64 KB cap
    "a formula as the model": (json.dumps(correction(model='=HYPERLINK("http://evil.example")')), "model:"),
}


@pytest.mark.parametrize("body, message", list(BAD_BODIES.values()), ids=list(BAD_BODIES))
def test_bad_corrections_are_400_with_the_reason(app, body, message):
    with signed_in(app[0], GUEST) as guest:
        answer = guest.post("fer-live/correct", content=body, headers={"content-type": "application/json"})
    assert answer.status_code == 400 and message in answer.json()["error"]
    assert "Traceback" not in answer.text


def test_corrections_are_rate_limited_per_user(app, folder):
    from fer_app.settings import CORRECTIONS_PER_MINUTE

    with signed_in(app[0], OPERATOR) as operator:
        codes = [operator.post("fer-live/correct", json=correction()).status_code
                 for _ in range(CORRECTIONS_PER_MINUTE + 1)]
        refused = operator.post("fer-live/correct", json=correction())
    assert codes == [200] * CORRECTIONS_PER_MINUTE + [429]
    assert refused.status_code == 429 and "corrections a minute" in refused.json()["error"]
    with signed_in(app[0], GUEST) as guest:  # another user has a limit of their own
        assert guest.post("fer-live/correct", json=correction()).status_code == 200


def test_etags_match_exactly_and_star_matches_any(app):
    with signed_in(app[0], GUEST) as guest:
        etag = guest.get("fer-live/model.onnx").headers["etag"]
        for header, code in (("*", 304), (etag, 304), (f'"other", {etag}', 304), (f"W/{etag}", 304),
                             (f'"x{etag[1:-1]}x"', 200), (etag[:-2] + '"', 200), ('"other"', 200)):
            assert guest.get("fer-live/model.onnx", headers={"if-none-match": header}).status_code == code, header


def test_no_server_path_reaches_a_viewer(app, folder):
    """Issue 32: the feedback folder's absolute path was on the page and the model menu's paths in view_api."""
    url, _, log = app
    log.seek(0)
    temp = re.search(r"temporary files: (\S+)", log.read()).group(1)
    with signed_in(url, GUEST) as guest:
        shown = guest.get("config").text + guest.get("gradio_api/info").text + guest.get("/").text
    for secret in (str(folder.resolve()), str(folder.parent), str(DEFAULT_ONNX.parent)):
        assert secret not in shown, secret
    # the temporary folder only inside Gradio's own file references (the page's example photos are served from
    # it, as every result file is: gradio_api/file=...), never as a setting or a message
    unreferenced = re.sub(r'("path":\s*"|gradio_api/file=)' + re.escape(temp), "", shown)
    assert temp not in unreferenced
    assert "personal/mine.onnx" in shown and "`corrections`" in shown  # the menu's keys, the folder's name


def test_a_killed_runs_uploads_are_removed_at_the_next_start(tmp_path, astronaut):
    """Issue 32: after `kill -9` the temporary folder kept the uploads, and a restart made a new one beside it."""
    from gradio_client import Client, handle_file

    temp = tmp_path / "tmp"
    temp.mkdir()
    photo = tmp_path / "astronaut.png"
    Image.fromarray(astronaut).save(photo)
    other = temp / "fer-app-not-ours"  # the same prefix without an owner file: not identified, so kept
    other.mkdir()
    with running_app(DEFAULT_ONNX, env={"TMPDIR": str(temp)}) as (url, proc, log):
        Client(url, verbose=False).predict(handle_file(str(photo)), api_name="/analyze")
        (dead,) = [p for p in temp.glob("fer-app-*") if p != other]
        assert any(p.suffix == ".png" for p in dead.rglob("*"))  # the upload
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert dead.exists()  # nothing cleaned up after kill -9
    with running_app(DEFAULT_ONNX, env={"TMPDIR": str(temp)}) as (url, proc, log):
        time.sleep(0.5)
        log.seek(0)
        assert f"removed the temporary files of a run that did not stop cleanly: {dead}" in log.read()
        assert not dead.exists() and other.exists()
        assert len([p for p in temp.glob("fer-app-*") if p != other]) == 1  # this run's own


def test_a_live_run_and_another_users_folder_are_never_removed(tmp_path):
    from fer_app.files import OWNER_FILE, owned_temp_folder, process_start, remove_dead_runs

    mine = owned_temp_folder(tmp_path)  # this process: alive
    reused = tmp_path / "fer-app-reused"  # a live PID, but started at another time: another process, so dead
    reused.mkdir()
    (reused / OWNER_FILE).write_text(f"{os.getpid()} {process_start(os.getpid()) - 1}\n")
    link = tmp_path / "fer-app-link"  # a link to elsewhere is never followed
    target = tmp_path / "elsewhere"
    target.mkdir()
    (target / OWNER_FILE).write_text("999999999 1\n")
    link.symlink_to(target)
    assert remove_dead_runs(tmp_path) == [reused]
    assert mine.exists() and target.exists() and link.exists()


def test_frames_sent_to_the_stream_are_decoded_within_the_limits(tmp_path):
    """The webcam stream took any image at full size (1.54 GB); now each frame goes through the decode limits."""
    from fer_app.layout import stream_frame

    big = tmp_path / "big.png"
    Image.new("RGB", (9000, 9000)).save(big)
    assert stream_frame({"path": str(big)}) is None  # over the budget: skipped, the stream goes on
    small = tmp_path / "small.png"
    Image.fromarray(np.zeros((48, 64, 3), np.uint8)).save(small)
    assert stream_frame({"path": str(small)}).shape == (48, 64, 3)
    assert stream_frame(None) is None and stream_frame({"url": "data:image/png;base64,!!"}) is None


ORIGIN_CASES = [  # (method, headers, refused?)
    ("POST", {"host": "abcd.gradio.live", "origin": "https://abcd.gradio.live"}, False),  # the share link, TLS proxy
    ("POST", {"host": "192.168.1.20:7860", "origin": "http://192.168.1.20:7860"}, False),  # a LAN address
    ("POST", {"host": "[::1]:7860", "origin": "http://[::1]:7860"}, False),
    ("POST", {"host": "127.0.0.1:7860", "x-forwarded-host": "fer.example.org", "origin": "https://fer.example.org"}, False),
    ("POST", {"host": "abcd.gradio.live", "origin": "https://evil.example"}, True),  # issue 32's attack
    ("OPTIONS", {"host": "abcd.gradio.live", "origin": "https://evil.example",
                 "access-control-request-method": "POST"}, True),  # its preflight
    ("GET", {"host": "abcd.gradio.live", "origin": "https://evil.example"}, True),  # reading the app's answers
    ("POST", {"host": "192.168.1.20:7860", "origin": "http://192.168.1.20:8080"}, True),  # another port
    ("POST", {"host": "192.168.1.20:7860", "origin": "null"}, True),  # a sandboxed frame, a file
    ("POST", {"host": "192.168.1.20:7860", "sec-fetch-site": "cross-site"}, True),
    ("POST", {"host": "192.168.1.20:7860", "sec-fetch-site": "same-site"}, True),
    ("POST", {"host": "192.168.1.20:7860", "referer": "http://evil.example/page"}, True),
    ("POST", {"host": "192.168.1.20:7860", "sec-fetch-site": "same-origin"}, False),
    ("POST", {"host": "192.168.1.20:7860"}, False),  # curl, gradio_client: sign-in is their check
    ("GET", {"host": "192.168.1.20:7860", "referer": "http://evil.example/page"}, False),  # a link to the app
]


@pytest.mark.parametrize("method, headers, refused", ORIGIN_CASES)
def test_requests_from_another_site_are_refused_whatever_the_host(method, headers, refused):
    from fer_app.origin import cross_site_reason

    scope = {"type": "http", "method": method,
             "headers": [(k.encode(), v.encode()) for k, v in headers.items()]}
    assert (cross_site_reason(scope) is not None) is refused


def test_a_name_that_keeps_failing_to_sign_in_is_locked_out():
    from fer_app.access import MAX_FAILED_SIGN_INS, Access

    access = Access({"ann": "long-enough-1", "bob": "long-enough-2"})
    assert access.operator == "ann" and access.check("ann", "long-enough-1")
    for _ in range(MAX_FAILED_SIGN_INS):
        assert not access.check("ann", "guess")
    assert not access.check("ann", "long-enough-1")  # even the right password, for a while
    assert access.check("bob", "long-enough-2")  # the others are not affected
    assert access.is_operator("ann") and not access.is_operator("bob") and Access().is_operator(None)


def test_the_job_with_the_least_left_goes_next_frame_by_frame():
    import threading

    from fer_app.jobs import JobCancelled, ShortestFirst

    jobs, done, order = ShortestFirst(), {}, []

    def run(name: str, frames: int, wait_s: float) -> None:
        time.sleep(wait_s)
        with jobs.job(name) as job:
            try:
                for i in range(frames):
                    jobs.turn(job, frames - i)
                    order.append(name)
                    time.sleep(0.005)
            except JobCancelled:
                order.append(f"{name} stopped")
        done[name] = time.perf_counter()

    threads = [threading.Thread(target=run, args=("long", 200, 0)), threading.Thread(target=run, args=("short", 20, 0.2)),
               threading.Thread(target=run, args=("cancelled", 500, 0.1))]
    for t in threads:
        t.start()
    time.sleep(0.15)
    assert jobs.cancel("cancelled") == 1
    for t in threads:
        t.join()
    first_short = order.index("short")
    assert order[first_short:first_short + 20] == ["short"] * 20  # once there, the short job ran to its end
    assert done["short"] < done["long"] and "cancelled stopped" in order
